//! The proxy-wasm layer: the one place that talks to the host. It holds no
//! decisions of its own; those live in the pure modules it calls.
//!
//! - `root`: configuration, and every mirror call (dispatch and outcome);
//! - `stream`: one request: act on the decision, copy, hand over;
//! - `vm_state`: what the two share inside one worker VM (`VmState`, the `Loaded` configuration);
//! - `pairing`: canary comparison: the primary's answer against the shadow's;
//! - `metrics`: metric ids, defined once and cached;
//! - `host`: typed host calls that return errors instead of panicking;
//! - `logger`: `log` records to the host;
//! - `sdk_defaults`: inert bodies for SDK trait defaults we never call.

mod host;
mod logger;
mod metrics;
mod pairing;
mod root;
mod sdk_defaults;
mod stream;
mod vm_state;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_context_id| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::MirrorRoot::new())
    });
}}
