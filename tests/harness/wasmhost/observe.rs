//! What a test reads back from a `Host`: metrics by name, the module's
//! logs, memory, and the invariants every test ends with; and the knobs it
//! turns: the clock, faults, properties.

use super::host::Host;
use super::names;
use super::state::{Faults, LogLine};
use std::collections::{BTreeMap, BTreeSet};

/// Memory a test with small requests may end with: the module starts at
/// about 1.1 MiB; a leak of per-request state or a retained body shows.
pub const SMALL_TEST_MEMORY: usize = 4 << 20;

impl Host {
    // ----- metrics --------------------------------------------------------

    /// A counter's value by name (0 if never defined or incremented).
    pub fn counter(&self, name: &str) -> i64 {
        self.store.data().records.values.get(name).copied().unwrap_or(0)
    }

    /// A histogram's recorded samples by name.
    pub fn histogram(&self, name: &str) -> Vec<u64> {
        self.store.data().records.samples.get(name).cloned().unwrap_or_default()
    }

    /// How many times `proxy_define_metric` was called with this name.
    pub fn definitions_of(&self, name: &str) -> usize {
        self.store
            .data()
            .records
            .definitions
            .iter()
            .filter(|d| d.name == name)
            .count()
    }

    /// Every name the module defined, sorted, deduplicated.
    pub fn metric_names(&self) -> Vec<String> {
        let names: BTreeSet<String> = self
            .store
            .data()
            .records
            .definitions
            .iter()
            .map(|d| d.name.clone())
            .collect();
        names.into_iter().collect()
    }

    /// Increments and records the host refused (0 deltas, unknown ids...).
    pub fn refused_metric_ops(&self) -> &[(&'static str, u32, i64)] {
        &self.store.data().records.refused_metric_ops
    }

    pub fn requests_total(&self, route: &str, destination: &str) -> i64 {
        self.counter(&names::requests(route, destination))
    }

    pub fn skipped(&self, route: &str, destination: &str, reason: &str) -> i64 {
        self.counter(&names::skipped(route, destination, reason))
    }

    pub fn responses(&self, route: &str, destination: &str, class: &str) -> i64 {
        self.counter(&names::responses(route, destination, class))
    }

    /// The non-zero skip counters of a (route, destination), by reason.
    pub fn skips(&self, route: &str, destination: &str) -> BTreeMap<&'static str, i64> {
        names::SKIP_REASONS
            .iter()
            .map(|reason| (*reason, self.skipped(route, destination, reason)))
            .filter(|(_, n)| *n != 0)
            .collect()
    }

    /// The non-zero response counters of a (route, destination), by class.
    pub fn response_classes(&self, route: &str, destination: &str) -> BTreeMap<&'static str, i64> {
        names::RESPONSE_CLASSES
            .iter()
            .map(|class| (*class, self.responses(route, destination, class)))
            .filter(|(_, n)| *n != 0)
            .collect()
    }

    /// Sampled requests accounted for: mirrored plus skipped for any reason.
    pub fn accounted(&self, route: &str, destination: &str) -> i64 {
        self.requests_total(route, destination) + self.skips(route, destination).values().sum::<i64>()
    }

    /// The invariants of every test: no request callback paused, each of
    /// `sampled` requests is in exactly one of requests_total or one skip
    /// reason, and memory stayed small.
    pub fn assert_accounted(&mut self, route: &str, destination: &str, sampled: i64) {
        self.assert_never_paused();
        assert_eq!(
            self.accounted(route, destination),
            sampled,
            "mirrored {} + skipped {:?} must equal the {sampled} sampled requests",
            self.requests_total(route, destination),
            self.skips(route, destination)
        );
        self.assert_memory_bounded();
    }

    /// Linear memory is at most `SMALL_TEST_MEMORY`.
    pub fn assert_memory_bounded(&mut self) {
        let memory = self.memory_bytes();
        assert!(
            memory <= SMALL_TEST_MEMORY,
            "linear memory grew to {memory} bytes (limit {SMALL_TEST_MEMORY})"
        );
    }

    // ----- clock, logs, faults, memory ------------------------------------

    /// Moves the host clock (`proxy_get_current_time_nanoseconds`) forward.
    pub fn advance_clock_ms(&mut self, ms: u64) {
        self.store.data_mut().clock_ns += ms * 1_000_000;
    }

    pub fn logs(&self) -> &[LogLine] {
        &self.store.data().records.logs
    }

    /// Log lines at `min_level` or above.
    pub fn logs_at_least(&self, min_level: u32) -> Vec<LogLine> {
        self.logs().iter().filter(|l| l.level >= min_level).cloned().collect()
    }

    pub(super) fn log_tail(&self, lines: usize) -> String {
        let logs = self.logs();
        logs.get(logs.len().saturating_sub(lines)..)
            .unwrap_or_default()
            .iter()
            .map(|l| format!("  [{}] {}", l.level, l.message))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Host calls to fail from now on.
    pub fn faults(&mut self) -> &mut Faults {
        &mut self.store.data_mut().faults
    }

    /// How many times the module called an import.
    pub fn import_calls(&self, name: &str) -> u64 {
        self.store.data().records.import_calls.get(name).copied().unwrap_or(0)
    }

    /// Every import the module called so far, with how many times.
    pub fn import_call_counts(&self) -> BTreeMap<&'static str, u64> {
        self.store.data().records.import_calls.clone()
    }

    /// Every entry of the host into the VM so far, by export, with how many
    /// times (callbacks and `proxy_on_memory_allocate`).
    pub fn vm_entry_counts(&self) -> BTreeMap<String, u64> {
        self.store.data().records.vm_entries.clone()
    }

    /// Names of the shared queues the module registered.
    pub fn queue_names(&self) -> Vec<String> {
        self.store.data().queues.iter().map(|q| q.name.clone()).collect()
    }

    /// Wasm instructions the module has run so far (wasmtime's fuel: one
    /// unit per instruction, most of them).
    pub fn wasm_instructions(&self) -> u64 {
        match self.store.get_fuel() {
            Ok(left) => u64::MAX - left,
            Err(err) => panic!("harness: fuel: {err:?}"),
        }
    }

    /// Current size of the guest's linear memory, in bytes.
    pub fn memory_bytes(&mut self) -> usize {
        match self.instance.get_memory(&mut self.store, "memory") {
            Some(memory) => memory.data_size(&self.store),
            None => panic!("harness: the module exports no memory"),
        }
    }
}
