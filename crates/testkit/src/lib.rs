//! Test tooling shared by the end-to-end tests (tests/e2e), the wasm host
//! harness (tests/harness), crates/cli's tests, the soak, `make run`
//! (examples/upstream.rs) and the benchmark's examples: the real Envoy,
//! upstream HTTP and gRPC servers, clients, on loopback; and the expectations
//! more than one of them checks (binomial bounds, compare results, what a
//! client gets without mirroring), written once.
// Test tooling, not filter code: a failed expectation should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod client;
pub mod compare;
pub mod config;
pub mod envoy;
pub mod grpc;
pub mod host;
pub mod lds;
pub mod native;
pub mod rig;
pub mod sampling;
pub mod stream_shadow;
pub mod upstream;

use std::path::Path;

/// The repository's root: where `.venv/`, `scripts/`, `envoy/` and
/// `target/` are, and the directory Envoy runs in (the reference configs
/// name the module by a path relative to it).
pub fn repo_root() -> &'static Path {
    let testkit = Path::new(env!("CARGO_MANIFEST_DIR"));
    testkit.ancestors().nth(2).unwrap_or(testkit)
}
