//! Every import the module has: the ones the filter uses, implemented like
//! Envoy; the ones only the SDK's unused default methods reference, which
//! trap saying so; and any other, which traps naming itself, so a new host
//! dependency shows up as a failing test rather than a silent stub.

mod env;
mod wasi;

use super::state::HostState;
use wasmtime::{format_err, ExternType, Linker, Module, Result, Store};

/// Imports the harness implements, as Envoy does (`env.rs`, `wasi.rs`).
pub const IMPLEMENTED: &[&str] = &[
    "env::proxy_log",
    "env::proxy_get_log_level",
    "env::proxy_get_current_time_nanoseconds",
    "env::proxy_get_buffer_bytes",
    "env::proxy_get_header_map_pairs",
    "env::proxy_get_header_map_value",
    "env::proxy_get_property",
    "env::proxy_get_shared_data",
    "env::proxy_set_shared_data",
    "env::proxy_register_shared_queue",
    "env::proxy_enqueue_shared_queue",
    "env::proxy_dequeue_shared_queue",
    "env::proxy_set_tick_period_milliseconds",
    "env::proxy_define_metric",
    "env::proxy_increment_metric",
    "env::proxy_record_metric",
    "env::proxy_http_call",
    "env::proxy_set_effective_context",
    "wasi_snapshot_preview1::random_get",
    "wasi_snapshot_preview1::environ_get",
    "wasi_snapshot_preview1::environ_sizes_get",
    "wasi_snapshot_preview1::fd_write",
    "wasi_snapshot_preview1::proc_exit",
];

/// Imports the SDK's trait default methods reference but vrata-mirror never
/// calls (it sends no local replies, sets no properties, makes no gRPC
/// calls; its shared data goes through its own typed calls, implemented
/// above). A call to one of these is a bug in the module or a new feature
/// that needs a host implementation here first. Which of them the module
/// imports at all depends on how much dead code the optimiser removed.
pub const NEVER_CALLED: &[&str] = &[
    "proxy_set_buffer_bytes",
    "proxy_set_property",
    "proxy_add_header_map_value",
    "proxy_set_header_map_pairs",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_close_stream",
    "proxy_get_status",
    "proxy_continue_stream",
    "proxy_send_local_response",
    "proxy_resolve_shared_queue",
    "proxy_call_foreign_function",
    "proxy_done",
];

pub fn link(linker: &mut Linker<HostState>, store: &mut Store<HostState>, module: &Module) -> Result<()> {
    env::define(linker)?;
    wasi::define(linker)?;
    for import in module.imports() {
        let (from, name) = (import.module().to_owned(), import.name().to_owned());
        if linker.get(&mut *store, &from, &name).is_ok() {
            continue;
        }
        let ExternType::Func(ty) = import.ty() else {
            return Err(format_err!("harness: the module imports a non-function {from}::{name}"));
        };
        let never_called = from == "env" && (NEVER_CALLED.contains(&name.as_str()) || name.starts_with("proxy_grpc_"));
        let message = if never_called {
            format!(
                "the module called {from}::{name}, which only the proxy-wasm SDK's default trait methods \
                 reference; vrata-mirror must never call it"
            )
        } else {
            format!(
                "the module called {from}::{name}, which this harness does not implement: a new host \
                 dependency must be added deliberately (tests/harness/imports/)"
            )
        };
        linker.func_new(&from, &name, ty, move |_, _, _| Err(format_err!("{message}")))?;
    }
    Ok(())
}
