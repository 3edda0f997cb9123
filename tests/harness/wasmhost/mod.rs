//! A proxy-wasm host of our own, on wasmtime, for testing vrata_mirror.wasm
//! exactly as Envoy drives it (proxy-wasm-test-framework cannot load a
//! wasm32-wasip1 module). Each test owns one `Host`: its own Store, instance
//! and records; tests run in parallel and share only the compiled module.
//!
//! ```ignore
//! let mut host = Host::load(CONFIG);
//! host.request().post("/upload").body_chunks(&[b"ab", b"cd"]).send().assert_never_paused();
//! host.turn();                                  // the root dispatches on the next event-loop turn
//! let call = host.single_dispatched_call();
//! assert_eq!(call.body, b"abcd");
//! host.respond(call.token, 200);
//! assert_eq!(host.requests_total("unnamed", "shadow"), 1);
//! ```
//!
//! The module is `VRATA_WASM`, else `target/wasm32-wasip1/release/vrata_mirror.wasm`
//! (`make build`).

pub mod abi;
mod guest;
mod host;
pub mod imports;
pub mod names;
mod observe;
mod request;
mod response;
mod state;
pub mod wasm;
mod wire;

pub use {
    abi::{level, Status},
    host::Host,
    request::pattern_byte,
    response::Response,
    state::HostState,
};

/// A configuration mirroring every request to `shadow`, plus `extra` fields
/// in the mirror object (e.g. `"maxInFlight": 2`).
pub fn mirror_config(extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!(r#"{{"forward": {{"mirror": {{"destinationId": "shadow"{extra}}}}}}}"#)
}
