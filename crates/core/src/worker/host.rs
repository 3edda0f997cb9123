//! What a worker needs of its host, as small traits. Each host (the
//! proxy-wasm filter, the native module) implements them over its own calls;
//! the worker decides everything else.
//!
//! - [`Clock`]: the time, in milliseconds.
//! - [`Telemetry`]: counting the worker's [`Event`](crate::telemetry::catalogue::Event)s.
//! - [`Dispatch`]: sending a finished copy, which gives a token or a
//!   refusal, and waking the worker to send what it has queued.
//! - [`SharedStore`]: the store every worker of one Envoy sees (proxy-wasm
//!   shared data), for the noise tables of `compare.secondary`.
//!
//! How a call ended comes back as a [`CallEnd`](crate::dispatch::outcome::CallEnd)
//! with [`Worker::call_ended`](super::Worker::call_ended): the host reads the
//! answer's head (through [`AnswerHead`](crate::dispatch::outcome::AnswerHead)'s
//! readers) and tells resets, timeouts and answers cut short apart as well
//! as it can (the wasm host by the time the call took).

use crate::http::HeaderList;
pub use crate::rate::SharedStore;
pub use crate::telemetry::series::Telemetry;
use std::hash::Hash;

/// Host time.
pub trait Clock {
    /// Milliseconds since the epoch (or any fixed origin: only differences
    /// and the back-off's deadlines are used).
    fn now_ms(&mut self) -> u64;
}

/// A copy, whole, as it goes to the host.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The cluster.
    pub destination: &'a str,
    /// Names and values as bytes, passed to the host's call unchanged.
    pub headers: &'a HeaderList,
    /// Empty: no body.
    pub body: &'a [u8],
    /// Empty: none.
    pub trailers: &'a HeaderList,
    pub timeout_ms: u32,
}

/// The host would not take a copy (an unknown cluster, a missing header, a
/// full circuit breaker): counted as `dispatch_failed`, and it feeds the
/// back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// Sending copies.
pub trait Dispatch {
    /// Names one call in flight until its end is reported.
    type Token: Copy + Eq + Hash;

    /// Sends one copy.
    fn send(&mut self, copy: Outgoing<'_>) -> Result<Self::Token, Refused>;

    /// Arranges for [`Worker::dispatch_pending`](super::Worker::dispatch_pending)
    /// to run soon on this worker. `false`: it cannot, and the worker skips
    /// what it queued rather than hold it forever.
    fn wake(&mut self) -> bool;
}

/// What reporting a comparison needs of the host: the clock, telemetry,
/// and shared data (the noise tables).
pub trait Reporting: Clock + Telemetry + SharedStore {}

impl<T: Clock + Telemetry + SharedStore> Reporting for T {}

/// Everything a worker needs of its host.
pub trait Host: Clock + Telemetry + Dispatch + SharedStore {}

impl<T: Clock + Telemetry + Dispatch + SharedStore> Host for T {}
