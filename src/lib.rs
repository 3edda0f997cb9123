//! vrata-mirror: Vrata's `forward.mirror` as an Envoy proxy-wasm HTTP filter.
//!
//! A sampled copy of each request (same method, path, headers and body) goes
//! to a shadow cluster, fire-and-forget: the primary is never paused, changed
//! or failed, whatever the shadow does.
//!
//! The crate is layered so that everything that decides is plain Rust,
//! unit-tested natively, and one thin layer talks to the host:
//! - [`config`]: the plugin JSON -> validated policies;
//! - [`mirror`]: per request: sampling, header policy, body copy, the copy's headers;
//! - [`dispatch`]: per worker VM: in-flight cap, back-off, how a call ended;
//! - [`compare`]: canary comparison: the shadow's answer against the primary's, the mismatch log;
//! - [`http`]: HTTP and gRPC wire vocabulary (gRPC status codes);
//! - [`telemetry`]: metric names and label values;
//! - [`abi`]: proxy-wasm wire formats, decoded defensively;
//! - `proxy` (wasm32 only): the proxy-wasm contexts, over the above.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod abi;
pub mod compare;
pub mod config;
pub mod dispatch;
pub mod http;
pub mod mirror;
pub mod telemetry;

#[cfg(target_arch = "wasm32")]
mod proxy;
