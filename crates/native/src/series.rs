//! The catalogue's labelled series carried across config generations (an LDS push).
//!
//! Why (Envoy 1.40, `filter_config.cc` and `thread_local_store.cc`): every Envoy filter config
//! makes its own stats scope (`createScope(metrics_namespace + ".")`), and a labelled series is
//! created in the scope of the config that first counts it. Envoy's allocator keeps one stat per
//! name, reference-counted by the scopes that hold it: a second scope asking for the same name
//! and labels gets the same counter, and a counter is freed when the last scope holding it goes.
//! So after a push a series that only the old configs had counted is freed with them and starts
//! again at 0 when the new config counts it (measured: `sent + skipped != sampled` in the soak).
//!
//! What this does: every series of the catalogue is put in the scope of every live config.
//! - A counter is created in a scope by adding 0 to it through that config: a config made by a
//!   push adds 0 to every counter series known so far (in `on_http_filter_config_new`, while
//!   the old configs still hold them), and a series first counted by one config gets 0 added
//!   through every other live config. So while one config is live, no counter is freed.
//! - A histogram cannot be created without a sample, so a real sample goes to a live config
//!   whose scope does not hold that series yet (each config gets one); after a push, the
//!   first samples of a series go to the new configs. Only a histogram series with no sample
//!   between a push and the end of the old configs' drain restarts.
//!
//! Soundness of using another config's handle: a config is in [`Registry::live`] from the end
//! of its `on_http_filter_config_new` until the start of its `on_http_filter_config_destroy`,
//! and Envoy frees its config (and scope) only after that hook returns; every use of another
//! config's handle happens with the registry locked, so that config is live. Envoy's metric
//! calls through a config only read its metric definitions (frozen after `config_new`) and
//! go through its stats scope, whose stat lookups are thread-safe (Envoy's workers share
//! scopes). Known series are never forgotten: their number is bounded by the routes,
//! destinations and classes ever seen, like Envoy's own series.

use crate::host::ConfigHandle;
use crate::native_host::CatalogueIds;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// A series: the catalogue index of its metric and its label values.
type Key = (usize, Vec<Vec<u8>>);

/// Series by a hash of (metric, labels), so that a lookup with borrowed labels allocates
/// nothing; equal hashes are told apart by comparing the labels.
struct SeriesMap<V> {
    hasher: RandomState,
    buckets: HashMap<u64, Vec<(Key, V)>>,
}

impl<V> SeriesMap<V> {
    fn new() -> SeriesMap<V> {
        SeriesMap {
            hasher: RandomState::new(),
            buckets: HashMap::new(),
        }
    }

    fn hash(&self, metric: usize, labels: &[&[u8]]) -> u64 {
        let mut h = self.hasher.build_hasher();
        metric.hash(&mut h);
        for label in labels {
            label.hash(&mut h);
        }
        h.finish()
    }

    fn get_mut(&mut self, metric: usize, labels: &[&[u8]]) -> Option<&mut V> {
        let hash = self.hash(metric, labels);
        self.buckets
            .get_mut(&hash)?
            .iter_mut()
            .find(|((m, l), _)| *m == metric && l.iter().map(Vec::as_slice).eq(labels.iter().copied()))
            .map(|(_, v)| v)
    }

    /// The value of the series, inserted with `new` if it is not there, and whether it was
    /// inserted (`None` cannot happen: the entry is there or was just pushed).
    fn entry(&mut self, metric: usize, labels: &[&[u8]], new: impl FnOnce() -> V) -> Option<(&mut V, bool)> {
        let hash = self.hash(metric, labels);
        let bucket = self.buckets.entry(hash).or_default();
        let found = bucket
            .iter()
            .position(|((m, l), _)| *m == metric && l.iter().map(Vec::as_slice).eq(labels.iter().copied()));
        match found {
            Some(i) => bucket.get_mut(i).map(|(_, v)| (v, false)),
            None => {
                bucket.push(((metric, labels.iter().map(|l| l.to_vec()).collect()), new()));
                bucket.last_mut().map(|(_, v)| (v, true))
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&Key, &V)> {
        self.buckets.values().flatten().map(|(k, v)| (k, v))
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.buckets.values_mut().flatten().map(|(_, v)| v)
    }
}

/// A live config, as the registry can reach it.
struct Live {
    serial: u64,
    envoy: ConfigHandle,
    ids: CatalogueIds,
}

/// Every live config and every series seen. Locked only when a config comes or goes and when
/// one config sees a series for the first time.
struct Registry {
    live: Vec<Live>,
    counters: SeriesMap<()>,
    /// The serials of the live configs whose scope holds the histogram series.
    histograms: SeriesMap<Vec<u64>>,
}

// SAFETY: `Live::envoy` is a raw pointer to Envoy's config, used only with the registry locked
// and only while the config is registered (see the module's doc: Envoy frees it after our
// destroy hook, which unregisters it first); Envoy's metric calls through it are thread-safe.
unsafe impl Send for Registry {}

/// Bumped (with the registry locked) each time a config is registered: a config's note that
/// every live config holds a histogram series is good while the epoch has not moved.
static EPOCH: AtomicU64 = AtomicU64::new(0);
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    let lock = REGISTRY.get_or_init(|| {
        Mutex::new(Registry {
            live: Vec::new(),
            counters: SeriesMap::new(),
            histograms: SeriesMap::new(),
        })
    });
    // A panic while locked (caught by the guard) leaves consistent data: every step keeps the
    // maps valid, at worst a series is not yet in every scope.
    lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One config's side: what it already put in the registry (touched only on its owner worker).
pub struct Series {
    serial: u64,
    envoy: ConfigHandle,
    ids: CatalogueIds,
    /// Counter series this config has registered (so the registry is locked once per series).
    counted: SeriesMap<()>,
    /// Histogram series every live config held at the given epoch.
    everywhere: SeriesMap<u64>,
}

impl Series {
    /// Registers a config whose metrics are defined (in `on_http_filter_config_new`, on the
    /// main thread): it adds 0 to every counter series known, so that its scope holds them
    /// before the configs it replaces go.
    pub fn register(envoy: ConfigHandle, ids: CatalogueIds) -> Series {
        let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
        let mut registry = registry();
        for ((metric, labels), ()) in registry.counters.iter() {
            if let Some(id) = ids.get(*metric).copied().flatten() {
                let labels: Vec<&[u8]> = labels.iter().map(Vec::as_slice).collect();
                envoy.increment_counter(id, &labels, 0);
            }
        }
        registry.live.push(Live { serial, envoy, ids });
        EPOCH.fetch_add(1, Ordering::Release);
        drop(registry);
        Series {
            serial,
            envoy,
            ids,
            counted: SeriesMap::new(),
            everywhere: SeriesMap::new(),
        }
    }

    /// This config's number in the registry (for [`unregister`]).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Adds `value` to a counter series (catalogue index `metric`).
    pub fn count(&mut self, metric: usize, labels: &[&[u8]], value: u64) {
        let Some(id) = self.ids.get(metric).copied().flatten() else {
            return;
        };
        let _ = self.envoy.increment_counter(id, labels, value);
        if self.counted.get_mut(metric, labels).is_some() {
            return;
        }
        self.counted.entry(metric, labels, || ());
        let mut registry = registry();
        if registry
            .counters
            .entry(metric, labels, || ())
            .is_some_and(|(_, new)| new)
        {
            for other in registry.live.iter().filter(|l| l.serial != self.serial) {
                if let Some(id) = other.ids.get(metric).copied().flatten() {
                    let _ = other.envoy.increment_counter(id, labels, 0);
                }
            }
        }
    }

    /// Records `value` in a histogram series: in this config's scope if it holds the series
    /// everywhere already, else through a live config whose scope lacks it.
    pub fn record(&mut self, metric: usize, labels: &[&[u8]], value: u64) {
        let epoch = EPOCH.load(Ordering::Acquire);
        if self.everywhere.get_mut(metric, labels).is_some_and(|at| *at == epoch) {
            if let Some(id) = self.ids.get(metric).copied().flatten() {
                let _ = self.envoy.record_histogram(id, labels, value);
            }
            return;
        }
        let mut registry = registry();
        let Registry { live, histograms, .. } = &mut *registry;
        let Some((holders, _)) = histograms.entry(metric, labels, Vec::new) else {
            return;
        };
        let target = if holders.contains(&self.serial) {
            live.iter().find(|l| !holders.contains(&l.serial))
        } else {
            live.iter().find(|l| l.serial == self.serial)
        };
        match target {
            Some(target) => {
                if let Some(id) = target.ids.get(metric).copied().flatten() {
                    let _ = target.envoy.record_histogram(id, labels, value);
                    holders.push(target.serial);
                }
            }
            None => {
                if let Some(id) = self.ids.get(metric).copied().flatten() {
                    let _ = self.envoy.record_histogram(id, labels, value);
                }
            }
        }
        if live.iter().all(|l| holders.contains(&l.serial)) {
            // Read with the lock held: registering bumps the epoch under the same lock.
            if let Some((at, _)) = self.everywhere.entry(metric, labels, || 0) {
                *at = EPOCH.load(Ordering::Acquire);
            }
        }
    }
}

/// Unregisters config `serial` (first thing in its destroy hook, on whichever thread): no
/// other config uses its handle after this returns. Its own later counts (a stream hook on
/// its worker while the destroy waits) still go to its own scope, which is live until the
/// hook returns.
pub fn unregister(serial: u64) {
    let mut registry = registry();
    registry.live.retain(|l| l.serial != serial);
    for holders in registry.histograms.values_mut() {
        holders.retain(|s| *s != serial);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn a_series_map_finds_a_series_by_its_borrowed_labels() {
        let mut map: SeriesMap<u32> = SeriesMap::new();
        let (v, new) = map.entry(1, &[b"api", b"shadow"], || 7).unwrap();
        assert!(new);
        *v += 1;
        assert_eq!(map.get_mut(1, &[b"api", b"shadow"]).copied(), Some(8));
        assert!(map.get_mut(1, &[b"api", b"other"]).is_none());
        assert!(map.get_mut(2, &[b"api", b"shadow"]).is_none());
        assert!(map.get_mut(1, &[b"api"]).is_none());
        let (_, new) = map.entry(1, &[b"api", b"shadow"], || 0).unwrap();
        assert!(!new);
        assert_eq!(map.iter().count(), 1);
    }
}
