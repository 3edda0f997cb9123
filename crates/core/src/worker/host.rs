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
//! - [`Stream`]: for a host that can stream a copy (the native module),
//!   opening it with the request's head and feeding it the body's chunks
//!   and the trailers as they pass; a host that cannot (proxy-wasm) keeps
//!   the defaults, and the worker buffers each copy for [`Dispatch::send`].
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

/// A streamed copy's head, as it opens.
#[derive(Debug, Clone, Copy)]
pub struct Opening<'a> {
    /// The cluster.
    pub destination: &'a str,
    /// Shaped as for a buffered copy: no framing headers.
    pub headers: &'a HeaderList,
    /// The request's declared body length (not 0), which the copy carries
    /// as its `content-length`; `None`: the host frames it (chunked on
    /// HTTP/1.1).
    pub content_length: Option<u64>,
    /// The request ended with its headers: the copy is whole now.
    pub end_stream: bool,
    pub timeout_ms: u32,
}

/// Streaming copies: a copy opens when its request's headers arrive, and
/// each body chunk and the trailers go as they pass, never pausing or
/// buffering the primary. The worker decides everything (when to open,
/// what each copy may hold, when to reset one, how it ended); the host
/// only carries. The defaults are a host that cannot stream: the worker
/// then buffers each copy and [`Dispatch::send`]s it whole.
///
/// The token of an open copy is a call in flight as from [`Stream::open`]:
/// its end is reported with [`Worker::call_ended`](super::Worker::call_ended),
/// also when it comes before the request's end (a shadow that answers
/// early). None of these calls may re-enter the worker.
pub trait Stream: Dispatch {
    /// Whether this host can stream copies at all: a constant, so that a
    /// host that cannot (proxy-wasm, built for size) carries none of the
    /// streaming code (measured: +300 wasm instructions per sampled-out
    /// request when it was only the runtime [`Stream::streams`]).
    const STREAMS: bool = false;

    /// Whether this host streams copies (asked at each request's headers,
    /// only when [`Stream::STREAMS`]).
    fn streams(&self) -> bool {
        Self::STREAMS
    }

    /// Opens a copy: its head goes now. `Err`: as for [`Dispatch::send`].
    fn open(&mut self, _copy: Opening<'_>) -> Result<Self::Token, Refused> {
        Err(Refused)
    }

    /// One chunk of the copy's body (possibly empty when `end_stream` ends
    /// the copy). `false`: the host no longer has the stream.
    fn send_data(&mut self, _token: Self::Token, _chunk: &[u8], _end_stream: bool) -> bool {
        false
    }

    /// The copy's trailers, which end it. `false`: as for [`Stream::send_data`].
    fn send_trailers(&mut self, _token: Self::Token, _trailers: &HeaderList) -> bool {
        false
    }

    /// Resets the copy: the host forgets it at once and reports no end
    /// for it (the worker ends it itself).
    fn reset(&mut self, _token: Self::Token) {}
}

/// Everything a worker needs of its host.
pub trait Host: Clock + Telemetry + Dispatch + Stream + SharedStore {}

impl<T: Clock + Telemetry + Dispatch + Stream + SharedStore> Host for T {}
