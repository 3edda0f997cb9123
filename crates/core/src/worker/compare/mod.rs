//! Canary comparison as one unit: `on.rs` with the `compare` feature (the
//! comparison module), `off.rs`, the same interface doing nothing, without
//! it. This is the one place the feature is looked at.

#[cfg(feature = "compare")]
mod on;
#[cfg(feature = "compare")]
pub use on::*;

#[cfg(not(feature = "compare"))]
mod off;
#[cfg(not(feature = "compare"))]
pub use off::*;
