//! End-to-end tests: the real Envoy (`VRATA_ENVOY`, else the pinned 1.40 in
//! `.venv/`) with the compiled module, real upstreams and clients on
//! ephemeral loopback ports (crates/testkit). One test binary, one module
//! per topic; `make test-envoys` runs it against every supported Envoy.
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
