//! The worker core's host traits (`vrata_mirror_core::worker::host`) over Envoy's dynamic-module
//! calls, for one per-worker config: the clock, the catalogue's metrics as labelled Envoy
//! metrics counted through the config (answers arrive after their request is gone), the
//! mismatch log in Envoy's log, and each copy streamed as a config-level stream (opened with
//! the request's head, fed each chunk and the trailers as they pass; the worker decides when).
//!
//! Everything here is touched only on the config's owner worker (`config::WorkerCell`), and
//! at its destroy (`NativeHost::teardown`).

use crate::abi::{attribute_id, header_type, log_level};
use crate::host::{self, ConfigHandle, Hook};
use crate::series::Series as CarriedSeries;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};
use vrata_mirror_core::config::PluginConfig;
use vrata_mirror_core::dispatch::outcome::{headerless_end, AnswerHead, CallEnd, ENVOY_REPLY_PREFIX};
use vrata_mirror_core::http::HeaderList;
use vrata_mirror_core::mirror::decide::RequestView;
use vrata_mirror_core::mirror::request::RequestHead;
use vrata_mirror_core::mirror::select::HeaderLookup;
use vrata_mirror_core::rate::{SharedStore, StoreError};
use vrata_mirror_core::telemetry::catalogue::{LabelledPoint, Measure, Metric, MetricKind, Point, METRICS};
use vrata_mirror_core::telemetry::names;
use vrata_mirror_core::telemetry::series::Series;
use vrata_mirror_core::worker::host::{Clock, Dispatch, Opening, Outgoing, Refused, Stream, Telemetry};
use vrata_mirror_core::worker::{CallTiming, Worker};

/// This config's worker.
pub type NativeWorker = Worker<NativeHost>;

/// The Envoy metric ids of the catalogue, in `METRICS` order (`None`: Envoy refused it).
pub type CatalogueIds = [Option<usize>; METRICS.len()];

/// Defines one Envoy metric per catalogue metric, with its label names (inside
/// `on_http_filter_config_new`: Envoy freezes definitions after it). The names lose the
/// catalogue's namespace, which the config's `metrics_namespace` (`NATIVE_NAMESPACE`) gives
/// back: `vrata_mirror_requests_total` is defined as `requests_total`, which
/// `/stats/prometheus` shows as `envoy_vrata_mirror_requests_total` (crates/native/NOTES.md).
pub fn define_catalogue(envoy: &ConfigHandle) -> CatalogueIds {
    METRICS.map(|metric| {
        let name = names::native_short_name(metric.name).unwrap_or(metric.name);
        let labels: Vec<&str> = metric.labels.iter().map(|l| l.name()).collect();
        match metric.kind {
            MetricKind::Counter => envoy.define_counter(name, &labels),
            MetricKind::Histogram => envoy.define_histogram(name, &labels),
        }
    })
}

/// The most of a shadow's answer body a comparison of `plugin` can need: the largest
/// `compare.maxBodyBytes` of its comparing mirrors, 0 when none compares. One bound for every
/// copy of the worker: simpler than one per copy, and only comparing configs keep anything.
pub fn compare_keep_bytes(plugin: &PluginConfig) -> usize {
    std::iter::once(&plugin.default_policy)
        .chain(plugin.routes.iter().map(|(_, policy)| policy))
        .flat_map(|policy| policy.mirrors.iter())
        .filter_map(|mirror| mirror.compare.as_ref())
        .map(|compare| compare.max_body_bytes)
        .max()
        .unwrap_or(0)
}

/// A copy's answer as its stream hooks report it, until it ends.
#[derive(Default)]
struct Answer {
    head: Option<AnswerHead>,
    body_size: usize,
    /// The start of the body: what a comparison needs, or an Envoy reply's text.
    kept: Vec<u8>,
}

pub struct NativeHost {
    envoy: ConfigHandle,
    /// The catalogue's series through this config (series.rs: each new config takes every
    /// known counter series into its scope).
    series: CarriedSeries,
    /// The copies in flight, by stream id.
    answers: HashMap<u64, Answer>,
    /// See [`compare_keep_bytes`].
    compare_keep: usize,
}

impl NativeHost {
    pub fn new(envoy: ConfigHandle, series: CarriedSeries, compare_keep: usize) -> NativeHost {
        NativeHost {
            envoy,
            series,
            answers: HashMap::new(),
            compare_keep,
        }
    }

    /// Copies sent and not yet ended.
    pub fn in_flight(&self) -> usize {
        self.answers.len()
    }

    /// The answer's headers (stream `id`).
    pub fn answer_headers(&mut self, id: u64, headers: &[(&[u8], &[u8])]) {
        if let Some(answer) = self.answers.get_mut(&id) {
            answer.head = Some(AnswerHead::from_headers(headers.iter().copied()));
        }
    }

    /// A chunk of the answer's body: counted, and kept only as far as needed.
    pub fn answer_data(&mut self, id: u64, chunks: &[&[u8]]) {
        let Some(answer) = self.answers.get_mut(&id) else {
            return;
        };
        let reply_text = answer.head.as_ref().is_some_and(AnswerHead::needs_reply_text);
        let keep = if reply_text {
            self.compare_keep.max(ENVOY_REPLY_PREFIX)
        } else {
            self.compare_keep
        };
        for chunk in chunks {
            answer.body_size = answer.body_size.saturating_add(chunk.len());
            let room = keep.saturating_sub(answer.kept.len());
            if room > 0 {
                answer.kept.extend(chunk.iter().take(room));
            }
        }
    }

    /// The answer's trailers: a gRPC answer's `grpc-status`.
    pub fn answer_trailers(&mut self, id: u64, trailers: &[(&[u8], &[u8])]) {
        if let Some(head) = self.answers.get_mut(&id).and_then(|a| a.head.as_mut()) {
            head.read_trailer_status(trailers.len(), |name| {
                trailers
                    .iter()
                    .find(|(k, _)| *k == name.as_bytes())
                    .map(|(_, v)| v.to_vec())
            });
        }
    }

    /// The stream ended (`complete`) or was reset (`reset`): tells the worker how.
    ///
    /// A reset after the answer's head ends the answer as the wasm host's headerless end does,
    /// and the core tells which by the time since the send (`headerless_end`): cut short before
    /// `timeoutMs`, else a timeout (Envoy resets a stream whose timeout fires mid-answer).
    /// Before the head, `Reset`. Envoy 1.40 always passes the reason `LocalReset`
    /// (filter_config.cc), so the reason tells nothing.
    pub fn call_ended(worker: &NativeWorker, host: &mut NativeHost, id: u64, reset: bool) {
        let Some(Answer {
            head,
            body_size,
            mut kept,
        }) = host.answers.remove(&id)
        else {
            return;
        };
        let head = head.map(|mut head| {
            if head.needs_reply_text() {
                head.envoy_reply = Some(kept.iter().take(ENVOY_REPLY_PREFIX).copied().collect());
            }
            head
        });
        kept.truncate(host.compare_keep);
        let end = move |timing: CallTiming| match head {
            Some(_) if reset => headerless_end(timing.elapsed_ms, timing.timeout_ms),
            Some(head) => CallEnd::Answered(head),
            None => CallEnd::Reset,
        };
        worker.call_ended(host, id, end, body_size, || Some(kept));
    }

    /// At config destroy: every copy still in flight, ended as `Reset` (Envoy resets them after
    /// the destroy hook returns and calls no hook for them, crates/native/NOTES.md). How many.
    pub fn teardown(worker: &NativeWorker, host: &mut NativeHost) -> usize {
        let ids: Vec<u64> = host.answers.keys().copied().collect();
        for id in &ids {
            host.answers.remove(id);
            worker.call_ended(host, *id, |_| CallEnd::Reset, 0, || None);
        }
        ids.len()
    }
}

impl NativeHost {
    /// The catalogue index of a metric.
    fn index_of(metric: &Metric) -> Option<usize> {
        METRICS.iter().position(|m| m.name == metric.name)
    }
}

impl Clock for NativeHost {
    fn now_ms(&mut self) -> u64 {
        now_ms()
    }
}

/// Milliseconds since the epoch (the rate cap's stamps and the back-off's deadlines).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Telemetry for NativeHost {
    type Ids = ();

    fn measure(&mut self, series: &Series<()>, point: Point, measure: Measure) {
        let Some(index) = Self::index_of(point.metric) else {
            return;
        };
        let mut labels: Vec<&[u8]> = vec![series.route().as_bytes(), series.destination().as_bytes()];
        labels.extend(point.value.map(str::as_bytes));
        labels.truncate(point.metric.labels.len());
        // Metrics never fail a request: a refused count is dropped (series.rs).
        match measure {
            Measure::Increment => self.series.count(index, &labels, 1),
            Measure::Record(value) => self.series.record(index, &labels, value),
        }
    }

    fn count_labelled(&mut self, series: &Series<()>, point: LabelledPoint<'_>) {
        let Some(index) = Self::index_of(point.metric) else {
            return;
        };
        let mut labels: Vec<&[u8]> = vec![series.route().as_bytes(), series.destination().as_bytes()];
        labels.extend(point.values.iter().map(|v| v.as_bytes()));
        labels.truncate(point.metric.labels.len());
        self.series.count(index, &labels, 1);
    }

    fn mismatch_log_enabled(&mut self) -> bool {
        host::log_enabled(log_level::INFO)
    }

    fn log_mismatch(&mut self, line: &str) {
        host::log(log_level::INFO, line);
    }
}

impl Dispatch for NativeHost {
    type Token = u64;

    /// Never called: this host streams ([`Stream::streams`]), so the worker opens each copy
    /// with [`Stream::open`] instead of handing it over whole.
    fn send(&mut self, _copy: Outgoing<'_>) -> Result<u64, Refused> {
        Err(Refused)
    }

    /// Never called either (nothing is queued): a copy opens in the request hook itself.
    fn wake(&mut self) -> bool {
        false
    }
}

/// Each copy is one config-level stream, on this worker (crates/native/NOTES.md): its headers
/// leave at `open`, each chunk at `send_data` (Envoy copies it into its own buffer, so the
/// module keeps nothing), the trailers at `send_trailers`. Envoy gives no backpressure on such
/// streams; the worker bounds what they hold (`mirror::body::Carriage::Streamed`).
impl Stream for NativeHost {
    const STREAMS: bool = true;

    fn streams(&self) -> bool {
        true
    }

    fn open(&mut self, copy: Opening<'_>) -> Result<u64, Refused> {
        let mut headers: Vec<(&[u8], &[u8])> = copy.headers.iter().collect();
        let length = copy.content_length.map(|n| n.to_string());
        if let Some(length) = &length {
            headers.push((b"content-length", length.as_bytes()));
        }
        let id = self
            .envoy
            .start_stream(
                copy.destination,
                &headers,
                &[],
                copy.end_stream,
                u64::from(copy.timeout_ms),
            )
            .map_err(|refused| {
                if host::log_enabled(log_level::DEBUG) {
                    host::log(
                        log_level::DEBUG,
                        &format!(
                            "vrata-mirror: stream to {} refused (init result {})",
                            copy.destination, refused.0
                        ),
                    );
                }
                Refused
            })?;
        self.answers.insert(id, Answer::default());
        Ok(id)
    }

    fn send_data(&mut self, id: u64, chunk: &[u8], end_stream: bool) -> bool {
        self.answers.contains_key(&id) && self.envoy.send_data(id, chunk, end_stream)
    }

    fn send_trailers(&mut self, id: u64, trailers: &HeaderList) -> bool {
        let trailers: Vec<(&[u8], &[u8])> = trailers.iter().collect();
        self.answers.contains_key(&id) && self.envoy.send_trailers(id, &trailers)
    }

    /// Forgets the stream first, so that the reset hook Envoy calls from inside
    /// `reset_stream` (re-entrant, and dropped by the glue) finds nothing to report.
    fn reset(&mut self, id: u64) {
        if self.answers.remove(&id).is_some() {
            self.envoy.reset_stream(id);
        }
    }
}

/// The request being decided on, read through the running filter hook (`'h`): its headers
/// once, as bytes, and only when the worker asks.
pub struct NativeRequest<'a, 'h> {
    hook: &'a Hook<'h>,
    headers: Option<Vec<(&'h [u8], &'h [u8])>>,
    rng: &'a mut SmallRng,
}

impl<'a, 'h> NativeRequest<'a, 'h> {
    pub fn new(hook: &'a Hook<'h>, rng: &'a mut SmallRng) -> Self {
        NativeRequest {
            hook,
            headers: None,
            rng,
        }
    }

    fn headers(&mut self) -> &[(&'h [u8], &'h [u8])] {
        let hook = self.hook;
        self.headers
            .get_or_insert_with(|| hook.headers(header_type::REQUEST_HEADER))
    }
}

impl HeaderLookup for NativeRequest<'_, '_> {
    fn header(&mut self, name: &str) -> Option<Vec<u8>> {
        self.headers()
            .iter()
            .find(|(k, _)| *k == name.as_bytes())
            .map(|(_, v)| v.to_vec())
    }
}

/// The rate cap's buckets and the noise tables: one store per process, shared by every worker
/// and every config (proxy-wasm's shared data, which the dynamic-module ABI has no equivalent of), with its
/// compare-and-swap: each value has a version, bumped by every write; a write naming another
/// version than the stored one is a `Conflict`, version 0 writes whatever is stored. One lock
/// for every key: taken twice per capped copy (load, store), never across a host call.
type ProcessStore = Mutex<HashMap<String, (Vec<u8>, u32)>>;

fn process_store() -> &'static ProcessStore {
    static STORE: OnceLock<ProcessStore> = OnceLock::new();
    STORE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn shared_load(key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
    let store = process_store().lock().map_err(|_| StoreError::Failed)?;
    Ok(store.get(key).cloned())
}

fn shared_store(key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
    let mut store = process_store().lock().map_err(|_| StoreError::Failed)?;
    let version = store.get(key).map_or(0, |(_, version)| *version);
    if cas != 0 && cas != version {
        return Err(StoreError::Conflict);
    }
    store.insert(key.to_owned(), (value.to_vec(), version.wrapping_add(1).max(1)));
    Ok(())
}

impl SharedStore for NativeRequest<'_, '_> {
    fn load(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        shared_load(key)
    }

    fn store(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        shared_store(key, value, cas)
    }
}

/// The noise tables (`compare.secondary`), in the same store.
impl SharedStore for NativeHost {
    fn load(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        shared_load(key)
    }

    fn store(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        shared_store(key, value, cas)
    }
}

impl RequestView for NativeRequest<'_, '_> {
    fn route_name(&mut self) -> Option<Vec<u8>> {
        self.hook
            .attribute_string(attribute_id::XDS_ROUTE_NAME)
            .map(<[u8]>::to_vec)
    }

    fn head(&mut self) -> Option<RequestHead> {
        Some(RequestHead::from_pairs(self.headers().iter().copied()))
    }

    fn now_ms(&mut self) -> u64 {
        now_ms()
    }

    fn draw_u32(&mut self) -> u32 {
        self.rng.next_u32()
    }
}

/// A generator for one worker, seeded from the OS (the clock if that fails).
pub fn worker_rng() -> SmallRng {
    let seed = getrandom::u64().unwrap_or_else(|_| now_ms().wrapping_mul(0x9e37_79b9_7f4a_7c15));
    SmallRng::seed_from_u64(seed)
}
