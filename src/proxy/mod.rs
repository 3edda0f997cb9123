//! The proxy-wasm layer: the one place that talks to the host. Every
//! function here makes or answers a host call; what to do is decided by
//! the VM's worker (`vrata_mirror_core::worker`), which the contexts share.
//!
//! - `root`: configuration, and every copy's dispatch and answer;
//! - `stream`: one request's callbacks, and the host reads each needs;
//! - `wasm_host`: the worker's host traits (clock, metrics, dispatch, wake-up) over proxy-wasm;
//! - `host`: typed host calls that return errors instead of panicking;
//! - `logger`: `log` records to the host;
//! - `sdk_defaults`: inert bodies for SDK trait defaults we never call.

mod host;
mod logger;
mod root;
mod sdk_defaults;
mod stream;
mod wasm_host;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_context_id| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::MirrorRoot::new())
    });
}}
