//! The worker: everything one Envoy worker decides and keeps between a
//! request's headers and its copy's last answer, for any host.
//!
//! A host (the proxy-wasm filter in `src/proxy`, a native module) makes one
//! [`Worker`] per Envoy worker (a wasm VM, a worker thread) and calls it
//! from its callbacks; single-threaded, so its state is in `Cell`s and
//! `RefCell`s, never borrowed across a host call. What it needs of the host
//! is in [`host`]: a clock, telemetry, and dispatch.
//!
//! A copy's way through it:
//! 1. [`Worker::request_headers`]: the decision (`mirror::decide`), each
//!    admitted copy a [`MirrorCopy`](copy::MirrorCopy);
//! 2. [`Worker::request_body`] / [`Worker::request_trailers`]: the body
//!    copied chunk by chunk, then the copies handed over: queued, and the
//!    host woken ([`Dispatch::wake`](host::Dispatch::wake));
//! 3. [`Worker::dispatch_pending`]: each copy sent, or refused;
//! 4. [`Worker::call_ended`]: its class and latency counted, its slot
//!    freed, its pair told.
//!
//! Why copies are queued rather than sent from the request: the proxy-wasm
//! SDK delivers a call's answer to the context that sent it and drops it
//! when that context is gone, which for a request is the usual case (its
//! response often ends first). Sent from the worker's root context, every
//! answer comes back, so the in-flight count is exact.

pub mod active;
pub mod calls;
pub mod compare;
pub mod copy;
pub mod host;
mod request;

pub use copy::leaked_copies;
pub use request::MirroredRequest;

use self::active::ActiveConfig;
use self::calls::{Calls, InFlight, Streamed};
use self::compare::Pairs;
use self::host::{Host, Outgoing, Refused};
use self::request::ReadyCopy;
use crate::config;
use crate::dispatch::outcome::CallEnd;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// The line a host logs when it refuses a configuration.
pub fn refusal_line(message: &str) -> String {
    format!("vrata-mirror: invalid plugin configuration: {message}")
}

/// What the host needs to tell how a call ended without an answer's head
/// (see [`Worker::call_ended`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTiming {
    pub elapsed_ms: u64,
    pub timeout_ms: u32,
}

pub struct Worker<H: Host> {
    active: RefCell<Option<Rc<ActiveConfig<H::Ids>>>>,
    /// Copies handed over, waiting to be sent, in order.
    pending: RefCell<VecDeque<ReadyCopy<H::Ids>>>,
    calls: RefCell<Calls<H::Token, H::Ids>>,
    /// The body bytes of the streamed calls among them.
    streamed: RefCell<Streamed<H::Token>>,
    /// Copies sent with `compare`, waiting for both answers.
    pairs: RefCell<Pairs<H::Ids>>,
}

impl<H: Host> Default for Worker<H> {
    fn default() -> Self {
        Worker {
            active: RefCell::new(None),
            pending: RefCell::new(VecDeque::new()),
            calls: RefCell::new(Calls::default()),
            streamed: RefCell::new(Streamed::default()),
            pairs: RefCell::new(Pairs::default()),
        }
    }
}

impl<H: Host> Worker<H> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads a plugin configuration (its JSON text) in place of the active
    /// one, carrying destination states over (see [`ActiveConfig::new`]).
    /// `Err`: why it is refused, one line naming the field; the active one
    /// stays.
    pub fn configure(&self, text: &[u8]) -> Result<(), String> {
        let config = config::parse(text).map_err(|err| err.to_string())?;
        if let Some(message) = compare::refusal(&config) {
            return Err(message);
        }
        let previous = self.active();
        let next = ActiveConfig::new(config, previous.as_deref());
        *self.active.borrow_mut() = Some(Rc::new(next));
        Ok(())
    }

    pub fn active(&self) -> Option<Rc<ActiveConfig<H::Ids>>> {
        self.active.borrow().clone()
    }

    /// Copies sent and not yet ended.
    pub fn calls_in_flight(&self) -> usize {
        self.calls.borrow().len()
    }

    /// Copies handed over and not yet sent.
    pub fn copies_pending(&self) -> usize {
        self.pending.borrow().len()
    }

    /// Pairs waiting for their second side.
    pub fn pairs_pending(&self) -> usize {
        self.pairs.borrow().len()
    }

    /// Sends every copy waiting. Each the host accepts is in flight until
    /// [`Worker::call_ended`]; each it refuses ends at once.
    pub fn dispatch_pending(&self, host: &mut H) {
        let batch = std::mem::take(&mut *self.pending.borrow_mut());
        if batch.is_empty() {
            return;
        }
        let now = host.now_ms();
        for ReadyCopy {
            copy,
            headers,
            body,
            trailers,
        } in batch
        {
            let outgoing = Outgoing {
                destination: &copy.mirror().destination,
                headers: &headers,
                body: &body,
                trailers: &trailers,
                timeout_ms: copy.mirror().timeout_ms,
            };
            match host.send(outgoing) {
                Ok(token) => {
                    copy.sent(host);
                    self.calls
                        .borrow_mut()
                        .insert(token, InFlight { copy, started_ms: now });
                }
                Err(Refused) => copy.refused(host, &self.pairs, now),
            }
        }
    }

    /// The call `token` ended: `end` says how, given how long it took
    /// against its timeout (the wasm host tells a timeout from an answer cut
    /// short by that). The shadow's body (`body_size` bytes, read by
    /// `read_body`, `None` if the host refused) is read only if its
    /// comparison needs it. An unknown token is ignored.
    pub fn call_ended(
        &self,
        host: &mut H,
        token: H::Token,
        end: impl FnOnce(CallTiming) -> CallEnd,
        body_size: usize,
        read_body: impl FnOnce() -> Option<Vec<u8>>,
    ) {
        let Some(InFlight { copy, started_ms }) = self.calls.borrow_mut().remove(&token) else {
            return;
        };
        if H::STREAMS {
            if let Some(bytes) = self.streamed.borrow_mut().remove(&token) {
                copy.release_body(bytes.held);
            }
        }
        let now = host.now_ms();
        let elapsed_ms = now.saturating_sub(started_ms);
        let end = end(CallTiming {
            elapsed_ms,
            timeout_ms: copy.mirror().timeout_ms,
        });
        copy.finish(host, &self.pairs, &end, elapsed_ms, now, body_size, read_body);
    }
}

#[cfg(test)]
mod tests;
