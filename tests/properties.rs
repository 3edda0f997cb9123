#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! Property tests of the pure modules through the crate's public API: what
//! must hold for every input, not just the examples the unit tests pick.
//! Statistical bounds are computed from the binomial distribution (six
//! standard deviations: a false alarm about once in 500 million runs).

#[path = "properties/strategies.rs"]
mod strategies;

#[path = "properties/abi.rs"]
mod abi;
#[path = "properties/body.rs"]
mod body;
#[path = "properties/config.rs"]
mod config;
#[path = "properties/headers.rs"]
mod headers;
#[path = "properties/sampler.rs"]
mod sampler;
