//! Everything the host knows and records, kept in the wasmtime `Store` so the
//! imports can reach it. One per test: tests run in parallel and share nothing.

use super::abi::{MetricKind, Status};
use super::response::Response;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// One header as the host holds it: bytes, because a real request may carry
/// a value that is not UTF-8.
pub type RawPair = (Vec<u8>, Vec<u8>);

/// Host calls a test can make fail. `None` means "behave like Envoy".
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// `proxy_http_call` answers this instead of dispatching (Envoy uses
    /// BadArgument for an unknown cluster, InternalFailure for a full breaker).
    pub dispatch: Option<Status>,
    /// `proxy_define_metric` answers this for every name containing the
    /// filter (empty filter: every name).
    pub define_metric: Option<(Status, String)>,
    /// `proxy_get_buffer_bytes` on the request body answers this.
    pub request_body: Option<Status>,
    /// `proxy_get_header_map_pairs` on the request headers answers this.
    pub request_headers: Option<Status>,
    /// `proxy_get_property` answers this for every path.
    pub property: Option<Status>,
    /// `proxy_register_shared_queue` answers this.
    pub register_queue: Option<Status>,
    /// `proxy_enqueue_shared_queue` answers this.
    pub enqueue: Option<Status>,
    /// `proxy_set_tick_period_milliseconds` answers this.
    pub set_tick: Option<Status>,
    /// `proxy_get_current_time_nanoseconds` answers this.
    pub clock: Option<Status>,
    /// `proxy_get_shared_data` answers this.
    pub get_shared_data: Option<Status>,
    /// `proxy_set_shared_data` answers this without writing (`CasMismatch`:
    /// another VM always wins the race).
    pub set_shared_data: Option<Status>,
    /// `proxy_set_shared_data` answers `CasMismatch` to this many writes
    /// (as if another VM wrote first each time), then behaves.
    pub set_shared_data_conflicts: u32,
}

/// Envoy's shared data (proxy-wasm-cpp-host `SharedData`): one store per
/// process (per `vm_id`), seen by every worker's VM. Each value carries a
/// version (its CAS) from one process-wide counter that starts at 1 and
/// skips 0; a write with CAS 0, or to a key not present, always succeeds;
/// any other CAS must be the value's current version. Hosts built with the
/// same `SharedData` are VMs of one Envoy.
#[derive(Debug, Default)]
pub struct SharedData {
    pub values: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    last_cas: u32,
}

impl SharedData {
    pub fn get(&self, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        self.values.get(key).cloned()
    }

    pub fn set(&mut self, key: &[u8], value: &[u8], cas: u32) -> Status {
        if let Some((_, current)) = self.values.get(key) {
            if cas != 0 && cas != *current {
                return Status::CasMismatch;
            }
        }
        self.last_cas = self.last_cas.wrapping_add(1).max(1);
        self.values.insert(key.to_vec(), (value.to_vec(), self.last_cas));
        Status::Ok
    }
}

/// A `SharedData` several hosts (VMs) can hold.
pub type SharedDataHandle = Arc<Mutex<SharedData>>;

/// Locks a shared store; a test that panicked while holding it poisoned
/// nothing the others need.
pub fn lock(shared: &SharedDataHandle) -> MutexGuard<'_, SharedData> {
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the host holds for one live HTTP context.
#[derive(Debug, Default)]
pub struct Stream {
    pub headers: Vec<RawPair>,
    pub trailers: Option<Vec<RawPair>>,
    /// The chunk of the `proxy_on_request_body` running now, if any: the
    /// filter never pauses, so Envoy hands over only the new bytes.
    pub body_chunk: Option<Vec<u8>>,
    /// The primary's response, as far as it has been delivered.
    pub response_headers: Option<Vec<RawPair>>,
    pub response_trailers: Option<Vec<RawPair>>,
    /// The chunk of the `proxy_on_response_body` running now, if any.
    pub response_body_chunk: Option<Vec<u8>>,
    /// Stream properties by NUL-joined path, such as `xds\0route_name`.
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
}

/// A shared queue registered by the module.
#[derive(Debug)]
pub struct Queue {
    pub name: String,
    /// The context that registered it: Envoy wakes that context.
    pub owner: u32,
    pub items: VecDeque<Vec<u8>>,
}

/// Work Envoy would run on a later event-loop turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    QueueReady { owner: u32, queue_id: u32 },
}

/// A call the module asked the host to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchedCall {
    pub token: u32,
    pub cluster: String,
    /// As text (bytes that are not UTF-8 shown as U+FFFD).
    pub headers: Vec<(String, String)>,
    /// The same headers, byte for byte as the module serialized them.
    pub raw_headers: Vec<RawPair>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    pub timeout_ms: u32,
    /// Host clock when it was dispatched.
    pub at_ms: u64,
}

impl DispatchedCall {
    /// The first value of a header (names compared case-insensitively, as Envoy does).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a header as bytes, exactly as sent.
    pub fn raw_header(&self, name: &str) -> Option<&[u8]> {
        self.raw_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }

    /// How many times a header name occurs.
    pub fn count_of(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }
}

/// A call `proxy_http_call` refused, with the status it answered.
#[derive(Debug, Clone)]
pub struct RefusedCall {
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub status: Status,
}

/// One `proxy_define_metric`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricDefinition {
    pub id: u32,
    pub kind: MetricKind,
    pub name: String,
}

/// One line the module logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: u32,
    pub message: String,
}

/// What the module did through the host, for assertions.
#[derive(Debug, Default)]
pub struct Records {
    pub calls: Vec<DispatchedCall>,
    pub refused_calls: Vec<RefusedCall>,
    pub definitions: Vec<MetricDefinition>,
    /// Counter and gauge values by metric name (Envoy keys stats by name, so
    /// two ids defined with one name share a value).
    pub values: BTreeMap<String, i64>,
    /// Histogram samples by metric name.
    pub samples: BTreeMap<String, Vec<u64>>,
    /// Increments and records the host refused, as (import, metric id, value).
    pub refused_metric_ops: Vec<(&'static str, u32, i64)>,
    pub logs: Vec<LogLine>,
    /// Bytes written through WASI `fd_write`, by file descriptor.
    pub fd_output: BTreeMap<i32, Vec<u8>>,
    /// How many times each import was called.
    pub import_calls: BTreeMap<&'static str, u64>,
    /// How many times the host entered the VM, by export: every callback
    /// the host runs (`Host::call`) and every `proxy_on_memory_allocate`
    /// it makes to hand bytes to the guest (`guest::return_bytes`).
    pub vm_entries: BTreeMap<String, u64>,
}

/// The host side of one instance.
pub struct HostState {
    pub plugin_config: Vec<u8>,
    pub log_level: u32,
    pub clock_ns: u64,
    /// Clusters `proxy_http_call` knows; any other is BAD_ARGUMENT, as in Envoy.
    pub clusters: Vec<String>,
    pub faults: Faults,
    /// The context of the callback running now (0: none), changed by
    /// `proxy_set_effective_context`.
    pub active_context: u32,
    /// Contexts the module knows about (created and not deleted).
    pub live_contexts: Vec<u32>,
    pub streams: HashMap<u32, Stream>,
    /// Properties every context sees.
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
    /// The response `proxy_on_http_call_response` is delivering now.
    pub call_response: Option<Response>,
    pub queues: Vec<Queue>,
    /// Shared data: this host's own unless built with another's.
    pub shared_data: SharedDataHandle,
    pub tick_period_ms: u32,
    pub events: VecDeque<Event>,
    pub next_token: u32,
    pub next_metric_id: u32,
    pub metric_kinds: HashMap<u32, (MetricKind, String)>,
    /// State of the xorshift generator behind WASI `random_get`.
    pub random_state: u64,
    pub records: Records,
}

impl HostState {
    pub fn new(clusters: Vec<String>, log_level: u32, random_seed: u64) -> HostState {
        HostState {
            plugin_config: Vec::new(),
            log_level,
            // 2025-01-01T00:00:00Z: a realistic epoch, far from 0 so that no
            // subtraction in the module can hide behind a zero clock.
            clock_ns: 1_735_689_600_000_000_000,
            clusters,
            faults: Faults::default(),
            active_context: 0,
            live_contexts: Vec::new(),
            streams: HashMap::new(),
            properties: HashMap::new(),
            call_response: None,
            queues: Vec::new(),
            shared_data: SharedDataHandle::default(),
            tick_period_ms: 0,
            events: VecDeque::new(),
            next_token: 1,
            next_metric_id: 1,
            metric_kinds: HashMap::new(),
            random_state: random_seed | 1,
            records: Records::default(),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.clock_ns / 1_000_000
    }

    /// The stream of the running callback, if it is an HTTP context.
    pub fn active_stream(&self) -> Option<&Stream> {
        self.streams.get(&self.active_context)
    }

    pub fn count_import(&mut self, name: &'static str) {
        *self.records.import_calls.entry(name).or_default() += 1;
    }

    /// Counts one entry of the host into the VM through `export`.
    pub fn count_vm_entry(&mut self, export: &str) {
        match self.records.vm_entries.get_mut(export) {
            Some(n) => *n += 1,
            None => {
                self.records.vm_entries.insert(export.to_owned(), 1);
            }
        }
    }

    /// The next 8 bytes of the deterministic WASI random stream.
    pub fn next_random(&mut self) -> u64 {
        // xorshift64*: deterministic per seed, so a failing test replays.
        let mut x = self.random_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.random_state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
