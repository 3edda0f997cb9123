//! End-to-end tests: the real Envoy (`VRATA_ENVOY`, else the pinned 1.40 in
//! `.venv/`) with the compiled filter, real upstreams and clients on
//! ephemeral loopback ports (crates/testkit). One test binary, one module
//! per topic; each case runs on both hosts (`testkit::on_each_host!`): the
//! wasm module as `TOPIC::wasm::CASE`, the native module (Envoy 1.40 only) as
//! `TOPIC::native::CASE`, and where the hosts differ a case asserts each
//! host's behaviour and names the README's table row it follows. `make
//! test-envoys` runs the wasm host's tests against every supported Envoy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod compare;
mod config;
mod copy;
mod grpc;
mod headers;
mod loops;
mod memory;
mod noise;
mod pushes;
mod rate;
mod routes_metrics;
mod sampling;
mod shadow_failures;
