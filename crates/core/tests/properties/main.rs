#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! Property tests of the pure modules through the crate's public API: what
//! must hold for every input, not just the examples the unit tests pick.
//! Statistical bounds are computed from the binomial distribution (six
//! standard deviations: a false alarm about once in 500 million runs).

mod strategies;

mod body;
mod config;
mod headers;
mod noise;
mod sampler;
