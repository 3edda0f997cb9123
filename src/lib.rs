//! vrata-mirror: Vrata's `forward.mirror` as an Envoy proxy-wasm HTTP filter.
//!
//! A sampled copy of each request (same method, path, headers and body) goes
//! to a shadow cluster, fire-and-forget: the primary is never paused, changed
//! or failed, whatever the shadow does.
//!
//! This crate is the `.wasm` Envoy loads: the thin proxy-wasm layer
//! (`proxy`, wasm32 only) over `vrata-mirror-core` (crates/core), where
//! every decision lives. Natively it compiles to [`wire`] alone.

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

#[cfg(target_arch = "wasm32")]
mod proxy;
pub mod wire;
