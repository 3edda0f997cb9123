//! State one root context shares with its HTTP contexts (all in one worker
//! VM, one thread): the active configuration, and the hand-off of finished
//! copies from HTTP contexts to the root, which dispatches them.
//!
//! Why the root dispatches: the SDK delivers a call's response to the context
//! that dispatched it and silently drops it when that context is gone, which
//! for an HTTP context is the usual case (the client's response often ends
//! first). Calls owned by the root always report back, so in-flight
//! accounting is exact and every outcome is counted.

use super::host;
use super::metrics::{MetricCache, Series};
use super::pairing::{CompareSlot, Pairs};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use vrata_mirror_core::compare::LogLimiter;
use vrata_mirror_core::config::{MirrorPolicy, PluginConfig};
use vrata_mirror_core::dispatch::destination::{Admission, DestinationState};
use vrata_mirror_core::http::HeaderList;
use vrata_mirror_core::telemetry::SkipReason;

/// One configuration and what is derived from it.
pub struct Loaded {
    pub config: PluginConfig,
    /// Aligned with `config.destinations`.
    pub destinations: Vec<Rc<RefCell<DestinationState>>>,
    pub metrics: MetricCache,
    /// `logMismatches` limiters, one per mirror with `compare`, made on first use.
    limiters: RefCell<Vec<(Rc<MirrorPolicy>, MismatchLimiter)>>,
}

/// One mirror's mismatch-log limiter (per worker VM).
pub type MismatchLimiter = Rc<RefCell<LogLimiter>>;

impl Loaded {
    /// Builds the active state, carrying over destination states by name so
    /// that copies in flight across a reconfiguration stay accounted.
    pub fn new(config: PluginConfig, previous: Option<&Loaded>) -> Loaded {
        let destinations = config
            .destinations
            .iter()
            .map(|name| {
                previous
                    .and_then(|p| {
                        let i = p.config.destinations.iter().position(|d| d == name)?;
                        p.destinations.get(i).cloned()
                    })
                    .unwrap_or_default()
            })
            .collect();
        Loaded {
            config,
            destinations,
            metrics: MetricCache::default(),
            limiters: RefCell::new(Vec::new()),
        }
    }

    /// The mismatch-log limiter of a mirror with `compare`.
    pub fn limiter(&self, mirror: &Rc<MirrorPolicy>) -> Option<MismatchLimiter> {
        if !super::pairing::ENABLED {
            return None;
        }
        let compare = mirror.compare.as_ref()?;
        let mut limiters = self.limiters.borrow_mut();
        if let Some((_, limiter)) = limiters.iter().find(|(m, _)| Rc::ptr_eq(m, mirror)) {
            return Some(limiter.clone());
        }
        let limiter = Rc::new(RefCell::new(LogLimiter::new(compare.log_mismatches)));
        limiters.push((mirror.clone(), limiter.clone()));
        Some(limiter)
    }
}

/// One admitted mirror of one request: everything needed to send it or to
/// account for not sending it.
pub struct Target {
    pub mirror: Rc<MirrorPolicy>,
    pub series: Rc<Series>,
    pub destination: Rc<RefCell<DestinationState>>,
    pub admission: Admission,
    /// The mismatch-log limiter, when the mirror compares.
    pub limiter: Option<MismatchLimiter>,
}

impl Target {
    /// Ends this admitted copy without sending it, counting why.
    pub fn skip(self, reason: SkipReason) {
        self.series.count_skip(reason);
        self.destination.borrow_mut().abandon(self.admission);
    }
}

/// A copy's headers, shared by the `copies` of one mirror.
pub type SharedHeaders = Rc<HeaderList>;

/// A finished copy waiting for the root to dispatch it.
pub struct PendingCopy {
    pub target: Target,
    pub headers: SharedHeaders,
    /// Shared by every copy of the request.
    pub body: Rc<Vec<u8>>,
    pub trailers: Rc<Vec<(String, String)>>,
    pub compare: CompareSlot,
}

impl PendingCopy {
    /// Ends this copy without sending it: its pair (if any) is forgotten.
    pub fn skip(self, pairs: &RefCell<Pairs>, reason: SkipReason) {
        if let CompareSlot::Paired(id) = self.compare {
            pairs.borrow_mut().cancel(id);
        }
        self.target.skip(reason);
    }
}

/// How HTTP contexts wake the root when copies are waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waker {
    /// A shared queue registered by the root: its `on_queue_ready` runs on the
    /// next event-loop turn (measured: copies wait ~0.5 ms).
    Queue(u32),
    /// The root's tick, armed on demand (measured: copies wait ~2 ms). Used
    /// only if the host refused to register the queue.
    Tick,
}

pub struct VmState {
    active: RefCell<Option<Rc<Loaded>>>,
    pending: RefCell<VecDeque<PendingCopy>>,
    waker: Cell<Waker>,
    /// Copies sent with `compare`, waiting for both answers.
    pub pairs: RefCell<Pairs>,
}

impl VmState {
    pub fn new() -> VmState {
        VmState {
            active: RefCell::new(None),
            pending: RefCell::new(VecDeque::new()),
            waker: Cell::new(Waker::Tick),
            pairs: RefCell::new(Pairs::default()),
        }
    }

    pub fn active(&self) -> Option<Rc<Loaded>> {
        self.active.borrow().clone()
    }

    pub fn set_active(&self, active: Loaded) {
        *self.active.borrow_mut() = Some(Rc::new(active));
    }

    pub fn set_waker(&self, waker: Waker) {
        self.waker.set(waker);
    }

    /// Hands finished copies to the root. Only the transition from empty to
    /// non-empty wakes it: one wake-up per batch, none per request under load.
    pub fn submit(&self, copies: Vec<PendingCopy>) {
        if copies.is_empty() {
            return;
        }
        let was_empty = {
            let mut pending = self.pending.borrow_mut();
            let was_empty = pending.is_empty();
            pending.extend(copies);
            was_empty
        };
        if was_empty && !self.wake() {
            // Nothing will ever drain them: account for them now.
            for copy in self.take_pending() {
                copy.skip(&self.pairs, SkipReason::DispatchFailed);
            }
        }
    }

    fn wake(&self) -> bool {
        if let Waker::Queue(id) = self.waker.get() {
            if host::enqueue_shared_queue(id, &[]).is_ok() {
                return true;
            }
            log::debug!("vrata-mirror: enqueue on queue {id} failed; falling back to the tick");
            self.waker.set(Waker::Tick);
        }
        host::set_tick_period_ms(1).is_ok()
    }

    /// Everything waiting, in submission order.
    pub fn take_pending(&self) -> VecDeque<PendingCopy> {
        std::mem::take(&mut *self.pending.borrow_mut())
    }
}

thread_local! {
    /// One generator per VM (each Envoy worker has its own VM), seeded once
    /// from WASI random; never reseeded per request.
    static RNG: RefCell<SmallRng> = RefCell::new(SmallRng::seed_from_u64(seed()));
}

fn seed() -> u64 {
    match getrandom::u64() {
        Ok(seed) => seed,
        // WASI random failing is not expected; the clock still gives a
        // per-VM seed rather than a failure.
        Err(_) => host::now_ms().unwrap_or(0).wrapping_mul(0x9e37_79b9_7f4a_7c15),
    }
}

/// A uniform 32-bit draw for sampling.
pub fn draw_u32() -> u32 {
    RNG.with(|rng| rng.borrow_mut().next_u32())
}

/// A uniform 64-bit draw (queue names).
pub fn draw_u64() -> u64 {
    RNG.with(|rng| rng.borrow_mut().next_u64())
}

/// Calls dispatched by the root, by token.
pub type Calls = HashMap<u32, Call, BuildHasherDefault<TokenHasher>>;

/// Tokens are small integers the host hands out in sequence; Fibonacci
/// hashing spreads them well. (std's SipHash would add its code to the
/// module for no benefit: nobody can choose these keys.)
#[derive(Default)]
pub struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, token: u32) {
        self.0 = u64::from(token).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A call in flight.
pub struct Call {
    pub target: Target,
    pub started_ms: u64,
    pub compare: CompareSlot,
}
