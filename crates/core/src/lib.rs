//! vrata-mirror's core: everything the filter decides, as plain Rust with no
//! host calls and no proxy-wasm dependency (the compiler keeps the seam), so
//! that it is unit-tested natively and reused by the tools.
//!
//! Layers, each importing only from those before it:
//! 1. [`http`], [`sampling`], [`rate`], [`telemetry`]: vocabulary.
//!    HTTP and gRPC wire values and the copy's header rules; the sampling
//!    draw; the rate cap's token bucket in shared data; metric names, skip
//!    reasons, response classes, and the telemetry a host implements.
//! 2. [`config`]: the plugin JSON -> validated policies.
//! 3. [`mirror`] (per request: decide, copy the body, shape the copy's
//!    headers), [`dispatch`] (per destination: in-flight cap, back-off; how
//!    a call ended), [`compare`] (the shadow's answer against the primary's).
//! 4. [`worker`]: one Envoy worker's bookkeeping of its copies, from a
//!    request's headers to its copy's last answer, generic over small host
//!    traits ([`worker::host`]).
//!
//! The filter crate (the repository root) is the proxy-wasm glue over
//! [`worker`]; a native host is a second glue over the same. The feature
//! `compare` turns the comparison on in [`worker`] (see `worker::compare`).
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod compare;
pub mod config;
pub mod dispatch;
pub mod http;
pub mod mirror;
pub mod rate;
pub mod sampling;
pub mod telemetry;
pub mod worker;
