//! One in-module filter config: the parsed plugin JSON, the worker it acts on, its metric ids
//! and its worker's state.
//!
//! Envoy's config object is shared by every worker, and keeps the config-level streams in an
//! unsynchronised map (crates/native/NOTES.md), so a config acts on exactly one worker: the bootstrap
//! puts the filter in the chain once per worker, named `vrata-mirror/worker-<i>-of-<N>`. Filters of this
//! config on other workers are do-nothing filters. Everything mutable here is touched only on
//! the owner worker's thread (see [`WorkerCell`]).

use crate::host::ConfigHandle;
use crate::native_host::{CatalogueIds, NativeHost, NativeWorker};
use rand::rngs::SmallRng;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// The filter's name in the chain, and the stem of its per-worker form `vrata-mirror/worker-<i>-of-<N>`.
pub const FILTER_NAME: &str = "vrata-mirror";

/// Metric ids, defined in `on_http_filter_config_new` (Envoy freezes definitions after it).
#[derive(Debug, Clone, Copy)]
pub struct MetricIds {
    /// `panics_total`: panics caught by the guard.
    pub panics: Option<usize>,
    /// The catalogue's metrics (`native_host::define_catalogue`).
    pub catalogue: CatalogueIds,
}

/// State only the owner worker touches.
pub struct WorkerCell<T> {
    owner: u32,
    /// The owner worker's thread, learnt on first use: a stream's hooks carry no worker index,
    /// so they are let in by thread.
    owner_thread: OnceLock<ThreadId>,
    value: RefCell<T>,
}

// SAFETY: the `RefCell` (and the `Rc`s inside the worker) are only reached through
// `WorkerCell::on` and `WorkerCell::on_owner_thread`, which check that the caller runs on the
// owner worker's thread, so one thread only uses them while the config is live. The other
// accesses are the main thread building the value in `on_http_filter_config_new` before Envoy
// hands the config to workers, and the destroying thread taking it in
// `on_http_filter_config_destroy`. That runs after the last filter (which held Envoy's
// shared_ptr) is gone, so no filter hook can run; a stream hook still can, on the owner
// worker, so the destroy first waits (bounded) until no copy is in flight
// (`NativeConfig::in_flight`, published with Release by the owner after each hook), after
// which Envoy has no stream left to call a hook for. Only if that wait runs out does a hook
// race the destroy (crates/native/NOTES.md, "Teardown").
unsafe impl<T> Sync for WorkerCell<T> {}

impl<T> WorkerCell<T> {
    pub fn new(owner: u32, value: T) -> WorkerCell<T> {
        WorkerCell {
            owner,
            owner_thread: OnceLock::new(),
            value: RefCell::new(value),
        }
    }

    /// The worker index this state belongs to.
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// Runs `f` on the state if `worker` (Envoy's worker index of the running hook) is the owner.
    /// A re-entrant call (a hook inside a hook) gets `None` instead of panicking.
    pub fn on<R>(&self, worker: u32, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if worker != self.owner {
            return None;
        }
        let here = std::thread::current().id();
        if *self.owner_thread.get_or_init(|| here) != here {
            return None;
        }
        let mut value = self.value.try_borrow_mut().ok()?;
        Some(f(&mut value))
    }

    /// Runs `f` on the state from a hook that carries no worker index (a stream's answer):
    /// only on the thread the owner worker was seen on.
    pub fn on_owner_thread<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if self.owner_thread.get() != Some(&std::thread::current().id()) {
            return None;
        }
        let mut value = self.value.try_borrow_mut().ok()?;
        Some(f(&mut value))
    }

    /// Whether the caller runs on the owner worker's thread (false before its first hook).
    pub fn on_owner_thread_now(&self) -> bool {
        self.owner_thread.get() == Some(&std::thread::current().id())
    }

    /// The state, when the caller knows no hook can run (destroy).
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

/// What one worker holds for this config: the worker core, its host, and the worker's
/// sampling draws (seeded once from the OS, never per request).
pub struct WorkerState {
    pub worker: NativeWorker,
    pub host: NativeHost,
    pub rng: SmallRng,
}

/// One config-stream event, owned, kept while the worker was busy (see `NativeConfig::missed`).
pub enum Missed {
    Headers(u64, Vec<(Vec<u8>, Vec<u8>)>),
    Data(u64, Vec<u8>),
    Trailers(u64, Vec<(Vec<u8>, Vec<u8>)>),
    /// The stream ended (`true`: by a reset).
    End(u64, bool),
}

/// Borrowed views of owned header pairs, as the host's answer methods take them.
fn borrowed(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<(&[u8], &[u8])> {
    pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect()
}

/// Owned copies of a hook's header pairs.
pub fn owned_pairs(pairs: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
    pairs.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
}

pub struct NativeConfig {
    pub envoy: ConfigHandle,
    pub metrics: MetricIds,
    pub worker: WorkerCell<WorkerState>,
    /// Copies in flight on the owner worker, as of its last hook: what the destroy waits for.
    pub in_flight: AtomicUsize,
    /// The longest a copy of this config can be in flight (its largest `timeoutMs`) plus a
    /// margin: the destroy's bound.
    pub teardown_wait: Duration,
    /// Stream events Envoy reported while the worker was busy: from inside one of the
    /// worker's own calls to Envoy (`start_http_stream`, `send_data`, `send_trailers`,
    /// `reset_stream`), when the state is borrowed. Envoy does so with its own replies: a
    /// shadow cluster with no healthy host is answered `503 no healthy upstream` (headers,
    /// body, end) from inside `start_http_stream`. Replayed in order right after
    /// ([`NativeConfig::settle_missed`]), so that such a copy is classified from what Envoy
    /// said and no copy is left in flight without an exit. Only Envoy's own small replies
    /// arrive this way (a shadow's bytes come from the event loop, never from inside a call),
    /// so what is kept is small. A `Mutex` for `Sync`; only the owner worker touches it,
    /// never across a host call.
    pub missed: Mutex<Vec<Missed>>,
    pub has_missed: AtomicBool,
}

impl NativeConfig {
    /// Keeps a stream event the worker could not take (see `missed`).
    pub fn keep_missed(&self, event: Missed) {
        if let Ok(mut missed) = self.missed.lock() {
            missed.push(event);
            self.has_missed.store(true, Ordering::Relaxed);
        }
    }

    /// Replays, in order, the stream events Envoy reported while the worker was busy. A stream
    /// the host forgot first (the worker's own reset) is not in flight any more and is ignored.
    pub fn settle_missed(&self, state: &mut WorkerState) {
        if !self.has_missed.swap(false, Ordering::Relaxed) {
            return;
        }
        let missed = self
            .missed
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default();
        for event in missed {
            match event {
                Missed::Headers(id, headers) => state.host.answer_headers(id, &borrowed(&headers)),
                Missed::Data(id, data) => state.host.answer_data(id, &[data.as_slice()]),
                Missed::Trailers(id, trailers) => state.host.answer_trailers(id, &borrowed(&trailers)),
                Missed::End(id, reset) => NativeHost::call_ended(&state.worker, &mut state.host, id, reset),
            }
        }
    }

    /// Publishes the owner worker's in-flight count (after each of its hooks).
    pub fn publish_in_flight(&self, state: &WorkerState) {
        self.in_flight.store(state.host.in_flight(), Ordering::Release);
    }

    /// At destroy, off the owner worker: waits until the owner has no copy in flight, at most
    /// `teardown_wait`. How long it waited, and whether copies were still in flight.
    pub fn wait_for_copies(&self) -> (Duration, bool) {
        let started = Instant::now();
        if self.worker.on_owner_thread_now() {
            // Envoy's resets after the destroy are then on this thread: nothing races.
            return (Duration::ZERO, self.in_flight.load(Ordering::Acquire) > 0);
        }
        loop {
            if self.in_flight.load(Ordering::Acquire) == 0 {
                return (started.elapsed(), false);
            }
            if started.elapsed() >= self.teardown_wait {
                return (started.elapsed(), true);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The destroy's bound for `plugin`: its largest `timeoutMs` plus a second.
pub fn teardown_wait(plugin: &vrata_mirror_core::config::PluginConfig) -> Duration {
    let longest = std::iter::once(&plugin.default_policy)
        .chain(plugin.routes.iter().map(|(_, policy)| policy))
        .flat_map(|policy| policy.mirrors.iter())
        .map(|mirror| u64::from(mirror.timeout_ms))
        .max()
        .unwrap_or(0);
    Duration::from_millis(longest.saturating_add(1_000))
}

/// Which worker a filter named `name` acts on, given the server's worker count (main thread).
///
/// One worker: `vrata-mirror`. N workers: the filter N times, `vrata-mirror/worker-<i>-of-<N>`
/// (crates/render's `dynamic_module_filter_name`). Anything else is refused at load, because
/// a config acting on two workers would crash Envoy, and a worker without a config would not
/// mirror.
pub fn owner_worker(name: &str, concurrency: u32) -> Result<u32, String> {
    let workers = concurrency.max(1);
    let layout = || {
        if workers == 1 {
            format!("with 1 worker, name it {FILTER_NAME}")
        } else {
            format!(
                "with {workers} workers (--concurrency {workers}) the filter goes in the chain {workers} times, named \
                 {FILTER_NAME}/worker-0-of-{workers} to {FILTER_NAME}/worker-{}-of-{workers}, because Envoy's \
                 config-level streams are not safe across workers (`vrata-mirror envoy --dynamic-module \
                 --concurrency {workers}` renders this)",
                workers - 1
            )
        }
    };
    let refuse = || {
        format!(
            "vrata-mirror: filter_name {name:?} does not fit this Envoy: {}",
            layout()
        )
    };
    let parsed = match name.strip_prefix(FILTER_NAME) {
        Some("") => Some((0, 1)),
        Some(rest) => rest.strip_prefix("/worker-").and_then(|rest| {
            let (index, of) = rest.split_once("-of-")?;
            Some((index.parse::<u32>().ok()?, of.parse::<u32>().ok()?))
        }),
        None => None,
    };
    match parsed {
        Some((index, of)) if of == workers && index < of => Ok(index),
        _ => Err(refuse()),
    }
}

impl NativeConfig {
    /// Defines the metrics (inside `on_http_filter_config_new`).
    pub fn define_metrics(envoy: &ConfigHandle) -> MetricIds {
        MetricIds {
            panics: envoy.define_counter(vrata_mirror_core::telemetry::names::NATIVE_PANICS_TOTAL, &[]),
            catalogue: crate::native_host::define_catalogue(envoy),
        }
    }
}
