//! The few WASI preview1 functions Rust's std and `getrandom` pull in.
//! No environment, deterministic randomness (a failing test replays), and
//! output captured rather than printed.

use crate::wasmhost::guest;
use crate::wasmhost::state::HostState;
use wasmtime::{format_err, Caller, Linker, Result};

const MODULE: &str = "wasi_snapshot_preview1";
const ERRNO_SUCCESS: i32 = 0;

type Ctx<'a> = Caller<'a, HostState>;

pub fn define(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(MODULE, "random_get", random_get)?;
    linker.func_wrap(MODULE, "environ_get", environ_get)?;
    linker.func_wrap(MODULE, "environ_sizes_get", environ_sizes_get)?;
    linker.func_wrap(MODULE, "fd_write", fd_write)?;
    linker.func_wrap(MODULE, "proc_exit", proc_exit)?;
    Ok(())
}

fn random_get(mut caller: Ctx<'_>, buf: i32, len: i32) -> Result<i32> {
    caller.data_mut().count_import("random_get");
    let mut bytes = Vec::with_capacity(len as u32 as usize);
    while bytes.len() < len as u32 as usize {
        bytes.extend_from_slice(&caller.data_mut().next_random().to_le_bytes());
    }
    bytes.truncate(len as u32 as usize);
    guest::write(&mut caller, buf, &bytes)?;
    Ok(ERRNO_SUCCESS)
}

fn environ_get(mut caller: Ctx<'_>, _environ: i32, _environ_buf: i32) -> Result<i32> {
    caller.data_mut().count_import("environ_get");
    Ok(ERRNO_SUCCESS)
}

fn environ_sizes_get(mut caller: Ctx<'_>, count_out: i32, size_out: i32) -> Result<i32> {
    caller.data_mut().count_import("environ_sizes_get");
    guest::write_u32(&mut caller, count_out, 0)?;
    guest::write_u32(&mut caller, size_out, 0)?;
    Ok(ERRNO_SUCCESS)
}

fn fd_write(mut caller: Ctx<'_>, fd: i32, iovs: i32, iovs_len: i32, written_out: i32) -> Result<i32> {
    caller.data_mut().count_import("fd_write");
    let mut written = 0u32;
    for i in 0..iovs_len {
        let iov = guest::read(&mut caller, iovs + i * 8, 8)?;
        let word = |at: usize| -> i32 {
            let raw: [u8; 4] = iov.get(at..at + 4).and_then(|b| b.try_into().ok()).unwrap_or_default();
            i32::from_le_bytes(raw)
        };
        let data = guest::read(&mut caller, word(0), word(4))?;
        written += data.len() as u32;
        caller
            .data_mut()
            .records
            .fd_output
            .entry(fd)
            .or_default()
            .extend_from_slice(&data);
    }
    guest::write_u32(&mut caller, written_out, written)?;
    Ok(ERRNO_SUCCESS)
}

fn proc_exit(mut caller: Ctx<'_>, code: i32) -> Result<()> {
    caller.data_mut().count_import("proc_exit");
    Err(format_err!(
        "the module called wasi proc_exit({code}): a filter must never exit the VM"
    ))
}
