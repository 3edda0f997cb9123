//! The worker's host traits over proxy-wasm (`vrata_mirror_core::worker::host`):
//! the clock, metrics defined once per point of a series and cached, the
//! mismatch log, and dispatch from the root context, woken through a shared
//! queue.

use super::host::{self, HostError};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use vrata_mirror_core::http::HeaderList;
use vrata_mirror_core::rate::{SharedStore, StoreError};
use vrata_mirror_core::telemetry::catalogue::{LabelledPoint, Measure, MetricKind, Point};
use vrata_mirror_core::telemetry::names;
use vrata_mirror_core::telemetry::series::Series;
use vrata_mirror_core::worker::host::{Clock, Dispatch, Outgoing, Refused, Stream, Telemetry};
use vrata_mirror_core::worker::Worker;

/// The host of one root context and its HTTP contexts: how they wake the
/// root. Per root context, not per VM: after a configuration push a VM has
/// an old root context (draining its requests) beside the new one, and each
/// must wake itself, or the old one's queued copies are never sent.
#[derive(Clone, Default)]
pub struct ProxyWasm {
    waker: Rc<Cell<Waker>>,
    /// The labelled points' metric ids, by name (`None`: the definition
    /// failed). As many as the noise tables bound (see the catalogue's
    /// `LabelledPoint`).
    labelled: Rc<RefCell<HashMap<String, Option<u32>>>>,
}

/// This VM's worker.
pub type VmWorker = Worker<ProxyWasm>;

impl Clock for ProxyWasm {
    fn now_ms(&mut self) -> u64 {
        host::now_ms().unwrap_or(0)
    }
}

/// One point's metric id, defined on first use. A definition that fails
/// is not retried; its increments are dropped (metrics never fail a request).
#[derive(Clone, Copy)]
enum MetricId {
    Undefined,
    Defined(u32),
    Failed,
}

/// What a series keeps: every `define_metric` creates a new metric in
/// Envoy, so each point is defined once per series and its id kept here.
pub struct MetricIds([Cell<MetricId>; Point::SLOTS]);

impl Default for MetricIds {
    fn default() -> Self {
        MetricIds(std::array::from_fn(|_| Cell::new(MetricId::Undefined)))
    }
}

fn metric_id(series: &Series<MetricIds>, point: &Point) -> Option<u32> {
    let cell = series.ids().0.get(point.slot)?;
    match cell.get() {
        MetricId::Defined(id) => Some(id),
        MetricId::Failed => None,
        MetricId::Undefined => {
            let name = names::point_name(series.route(), series.destination(), point);
            let id = match host::define_metric(point.metric.kind, &name) {
                Ok(id) => MetricId::Defined(id),
                Err(err) => {
                    log::debug!("vrata-mirror: define_metric({name}) failed: {err:?}");
                    MetricId::Failed
                }
            };
            cell.set(id);
            match id {
                MetricId::Defined(id) => Some(id),
                _ => None,
            }
        }
    }
}

impl Telemetry for ProxyWasm {
    type Ids = MetricIds;

    fn measure(&mut self, series: &Series<MetricIds>, point: Point, measure: Measure) {
        let Some(id) = metric_id(series, &point) else {
            return;
        };
        let _ = match measure {
            Measure::Increment => host::increment_metric(id, 1),
            Measure::Record(value) => host::record_metric(id, value),
        };
    }

    fn count_labelled(&mut self, series: &Series<MetricIds>, point: LabelledPoint<'_>) {
        let name = names::labelled_name(series.route(), series.destination(), &point);
        let id = *self.labelled.borrow_mut().entry(name).or_insert_with_key(|name| {
            host::define_metric(MetricKind::Counter, name)
                .map_err(|err| log::debug!("vrata-mirror: define_metric({name}) failed: {err:?}"))
                .ok()
        });
        if let Some(id) = id {
            let _ = host::increment_metric(id, 1);
        }
    }

    fn mismatch_log_enabled(&mut self) -> bool {
        log::log_enabled!(log::Level::Info)
    }

    fn log_mismatch(&mut self, line: &str) {
        log::info!("{line}");
    }
}

/// proxy-wasm shared data: one store per Envoy (per `vm_id`), every
/// worker's VM sees it. The rate cap's buckets and the noise tables.
impl SharedStore for ProxyWasm {
    fn load(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        shared_load(key)
    }

    fn store(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        shared_store(key, value, cas)
    }
}

/// [`SharedStore::load`] over proxy-wasm's shared data.
pub fn shared_load(key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
    host::shared_data(key).map_err(|_| StoreError::Failed)
}

/// [`SharedStore::store`] over proxy-wasm's shared data.
pub fn shared_store(key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
    host::set_shared_data(key, value, cas).map_err(|err| match err {
        HostError::CasMismatch => StoreError::Conflict,
        _ => StoreError::Failed,
    })
}

/// How HTTP contexts wake the root when copies are waiting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Waker {
    /// A shared queue registered by the root: its `on_queue_ready` runs on the
    /// next event-loop turn (measured: copies wait ~0.5 ms).
    Queue(u32),
    /// The root's tick, armed on demand (measured: copies wait ~2 ms). Used
    /// only if the host refused to register the queue.
    #[default]
    Tick,
}

impl ProxyWasm {
    /// Registers the root's wake-up queue, named at random: names are
    /// global to the host, and a taken name would be silently stolen from
    /// another worker's VM.
    pub fn register_waker(&self) {
        let name = format!("vrata_mirror.dispatch.{:016x}", draw_u64());
        let waker = match host::register_shared_queue(&name) {
            Ok(id) => Waker::Queue(id),
            Err(err) => {
                log::warn!("vrata-mirror: shared queue unavailable ({err:?}); dispatching on the tick instead");
                Waker::Tick
            }
        };
        self.waker.set(waker);
    }
}

/// proxy-wasm cannot stream a copy (`dispatch_http_call` takes it whole):
/// the worker buffers each copy and sends it with `Dispatch::send`.
impl Stream for ProxyWasm {}

impl Dispatch for ProxyWasm {
    type Token = u32;

    /// Through the SDK, which registers the token so that the response
    /// comes back to the root context (this is only called from there).
    fn send(&mut self, copy: Outgoing<'_>) -> Result<u32, Refused> {
        let (headers, trailers) = (sdk_pairs(copy.headers), sdk_pairs(copy.trailers));
        let body = (!copy.body.is_empty()).then_some(copy.body);
        let timeout = Duration::from_millis(u64::from(copy.timeout_ms));
        proxy_wasm::hostcalls::dispatch_http_call(copy.destination, headers, body, trailers, timeout).map_err(
            |status| {
                // Unknown cluster, or the shadow's circuit breaker is full.
                log::debug!("vrata-mirror: dispatch to {} refused: {status:?}", copy.destination);
                Refused
            },
        )
    }

    fn wake(&mut self) -> bool {
        if let Waker::Queue(id) = self.waker.get() {
            if host::enqueue_shared_queue(id, &[]).is_ok() {
                return true;
            }
            log::debug!("vrata-mirror: enqueue on queue {id} failed; falling back to the tick");
            self.waker.set(Waker::Tick);
        }
        host::set_tick_period_ms(1).is_ok()
    }
}

/// A header list as the SDK's `dispatch_http_call` takes it (see [`sdk_str`]).
fn sdk_pairs(list: &HeaderList) -> Vec<(&str, &str)> {
    list.iter()
        .map(|(name, value)| (sdk_str(name), sdk_str(value)))
        .collect()
}

/// Header bytes as the `&str` the SDK's `dispatch_http_call` takes, with no
/// UTF-8 check: a latin-1 value (which Envoy accepts) must reach the shadow
/// unchanged, and the SDK has no call taking bytes. The call must be the
/// SDK's: it registers the token so that the answer comes back to the root
/// context, and it panics on an answer to a token it never registered (so
/// the raw `proxy_http_call` import cannot be used instead).
fn sdk_str(bytes: &[u8]) -> &str {
    // SAFETY: `str` has the same layout as `[u8]`, and UTF-8 is a library
    // invariant of `str`, not a validity one: the standard library documents
    // that a non-UTF-8 `&str` is not undefined behaviour by itself, only code
    // that relies on its UTF-8 can make it so. These strings go only to
    // proxy-wasm 0.2.5's `hostcalls::dispatch_http_call` (the version is
    // pinned with `=` in Cargo.toml), whose `utils::serialize_map` reads them
    // with `len()` and `as_bytes()` alone, and no other code sees them.
    // Re-check on any SDK bump, as for sdk_defaults.rs.
    unsafe { &*(bytes as *const [u8] as *const str) }
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
