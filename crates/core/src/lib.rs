//! vrata-mirror's core: everything the filter decides, as plain Rust with no
//! host calls and no proxy-wasm dependency (the compiler keeps the seam), so
//! that it is unit-tested natively and reused by the tools.
//!
//! Layers, each importing only from those before it:
//! 1. [`http`], [`abi`], [`sampling`], [`rate`], [`telemetry`]: vocabulary.
//!    HTTP and gRPC wire values and the copy's header rules; proxy-wasm wire
//!    formats, decoded defensively; the sampling draw; the rate cap's token
//!    bucket in shared data; metric names, skip reasons and response classes.
//! 2. [`config`]: the plugin JSON -> validated policies.
//! 3. [`mirror`] (per request: decide, copy the body, shape the copy's
//!    headers), [`dispatch`] (per worker VM: in-flight cap, back-off, how a
//!    call ended), [`compare`] (the shadow's answer against the primary's).
//!
//! The filter crate (the repository root) is the proxy-wasm glue over these.
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod abi;
pub mod compare;
pub mod config;
pub mod dispatch;
pub mod http;
pub mod mirror;
pub mod rate;
pub mod sampling;
pub mod telemetry;
