//! Reading and writing the guest's linear memory from inside an import, and
//! handing bytes to the guest the proxy-wasm way: allocated by the guest's
//! own `proxy_on_memory_allocate`, then pointer and size written to the
//! out-parameters the guest passed.

use super::state::HostState;
use wasmtime::{format_err, Caller, Extern, Memory, Result};

type Ctx<'a> = Caller<'a, HostState>;

fn memory(caller: &mut Ctx<'_>) -> Result<Memory> {
    caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| format_err!("harness: the module exports no `memory`"))
}

/// Bytes the guest passed as (pointer, size); out of bounds is a trap, as a
/// real host would refuse it.
pub fn read(caller: &mut Ctx<'_>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let memory = memory(caller)?;
    let (start, size) = (ptr as u32 as usize, len as u32 as usize);
    // Checked before allocating: a garbage length must fail the call, not
    // make the harness allocate gigabytes.
    if start
        .checked_add(size)
        .is_none_or(|end| end > memory.data_size(&*caller))
    {
        return Err(format_err!(
            "harness: guest buffer out of bounds: ptr={ptr:#x} len={len}"
        ));
    }
    let mut bytes = vec![0; size];
    memory
        .read(&*caller, start, &mut bytes)
        .map_err(|_| format_err!("harness: guest buffer out of bounds: ptr={ptr:#x} len={len}"))?;
    Ok(bytes)
}

/// A guest string, lossily (only used for names the module chose).
pub fn read_string(caller: &mut Ctx<'_>, ptr: i32, len: i32) -> Result<String> {
    Ok(String::from_utf8_lossy(&read(caller, ptr, len)?).into_owned())
}

pub fn write(caller: &mut Ctx<'_>, ptr: i32, bytes: &[u8]) -> Result<()> {
    let memory = memory(caller)?;
    memory.write(&mut *caller, ptr as u32 as usize, bytes).map_err(|_| {
        format_err!(
            "harness: guest out-pointer out of bounds: ptr={ptr:#x} len={}",
            bytes.len()
        )
    })
}

pub fn write_u32(caller: &mut Ctx<'_>, ptr: i32, value: u32) -> Result<()> {
    write(caller, ptr, &value.to_le_bytes())
}

pub fn write_u64(caller: &mut Ctx<'_>, ptr: i32, value: u64) -> Result<()> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Gives `bytes` to the guest: allocates them in guest memory and writes the
/// pointer and size to the out-parameters. Like proxy-wasm-cpp-host, empty
/// data is returned as a null pointer and size 0, with no allocation.
pub fn return_bytes(caller: &mut Ctx<'_>, bytes: &[u8], ptr_out: i32, size_out: i32) -> Result<()> {
    let ptr = if bytes.is_empty() {
        0
    } else {
        let allocate = caller
            .get_export("proxy_on_memory_allocate")
            .and_then(Extern::into_func)
            .ok_or_else(|| format_err!("harness: the module exports no `proxy_on_memory_allocate`"))?
            .typed::<i32, i32>(&*caller)?;
        caller.data_mut().count_vm_entry("proxy_on_memory_allocate");
        let ptr = allocate.call(&mut *caller, bytes.len() as i32)?;
        if ptr == 0 {
            return Err(format_err!(
                "harness: proxy_on_memory_allocate({}) returned null",
                bytes.len()
            ));
        }
        write(caller, ptr, bytes)?;
        ptr
    };
    write_u32(caller, ptr_out, ptr as u32)?;
    write_u32(caller, size_out, bytes.len() as u32)
}
