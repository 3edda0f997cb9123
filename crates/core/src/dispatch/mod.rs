//! Bookkeeping of copies between admission and the end of their call, per
//! worker VM: the in-flight cap, the back-off, and how a call ended.

pub mod destination;
pub mod outcome;

/// The Envoy runtime key that bounds how much of each dispatched call's
/// answer Envoy buffers (its AsyncClient holds the whole answer until it
/// ends; Envoy's default is 32 MiB). An answer over it fails the call, which
/// the filter counts as `too_large_or_reset`.
pub const ASYNC_RESPONSE_BUFFER_LIMIT_KEY: &str = "http.async_response_buffer_limit";

/// The value the reference configurations give that key (1 MiB): Envoy then
/// holds at most this much per copy in flight. See the README's "Memory".
pub const REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT: u64 = 1024 * 1024;
