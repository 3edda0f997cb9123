//! Harness tests: the compiled `vrata_mirror.wasm` (`make build`) in our own
//! proxy-wasm host on wasmtime ([`wasmhost`]), driven as Envoy drives it.
//! One test binary: wasmtime is compiled and linked once. One module per topic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod wasmhost;

mod backoff;
mod compare;
mod config;
mod cost;
mod faults;
mod imports;
mod lifecycle;
mod limits;
mod memory;
mod noise;
mod rate;
mod requests;
mod responses;
mod sampling;
