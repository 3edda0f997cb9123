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
//! What this does: a process-wide list of every counter series any config has counted, and a
//! config made by a push adds 0 to each of them through itself, in `on_http_filter_config_new`,
//! while the configs it replaces still hold them (Envoy creates the new configs before it
//! destroys the old). So a counter series is always held by a live config, and goes on from its
//! value. A histogram cannot be created without a sample: a histogram series with no sample on
//! the new configuration between a push and the end of the old one's drain starts again.
//!
//! Each config's handle is used only by that config's own hooks (its worker, or the main thread
//! in its `config_new` before any worker has it): never by another config or another worker,
//! so this adds no concurrent use of Envoy's per-config state (its stat name pool is not
//! thread-safe). Known series are never forgotten: their number is bounded by the routes,
//! destinations and classes ever seen, like Envoy's own series.

use crate::host::ConfigHandle;
use crate::native_host::CatalogueIds;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
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
}

/// Every counter series any config has counted. Locked when a config is made and when one
/// config sees a series for the first time.
struct Registry {
    counters: SeriesMap<()>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    let lock = REGISTRY.get_or_init(|| {
        Mutex::new(Registry {
            counters: SeriesMap::new(),
        })
    });
    // A panic while locked (caught by the guard) leaves consistent data: every step keeps the
    // map valid.
    lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One config's side: its handle, and the counter series it already put in the registry
/// (touched only by its own hooks).
pub struct Series {
    envoy: ConfigHandle,
    ids: CatalogueIds,
    /// Counter series this config has registered (so the registry is locked once per series).
    counted: SeriesMap<()>,
}

impl Series {
    /// A config whose metrics are defined (in `on_http_filter_config_new`, on the main thread,
    /// before any worker has it): it adds 0 to every counter series known, so that its scope
    /// holds them before the configs it replaces go.
    pub fn register(envoy: ConfigHandle, ids: CatalogueIds) -> Series {
        let registry = registry();
        for ((metric, labels), ()) in registry.counters.iter() {
            if let Some(id) = ids.get(*metric).copied().flatten() {
                let labels: Vec<&[u8]> = labels.iter().map(Vec::as_slice).collect();
                let _ = envoy.increment_counter(id, &labels, 0);
            }
        }
        drop(registry);
        Series {
            envoy,
            ids,
            counted: SeriesMap::new(),
        }
    }

    /// Adds `value` to a counter series (catalogue index `metric`), and makes the series known
    /// to the configs made after this one.
    pub fn count(&mut self, metric: usize, labels: &[&[u8]], value: u64) {
        let Some(id) = self.ids.get(metric).copied().flatten() else {
            return;
        };
        let _ = self.envoy.increment_counter(id, labels, value);
        if self.counted.get_mut(metric, labels).is_some() {
            return;
        }
        self.counted.entry(metric, labels, || ());
        registry().counters.entry(metric, labels, || ());
    }

    /// Records `value` in a histogram series, in this config's scope.
    pub fn record(&mut self, metric: usize, labels: &[&[u8]], value: u64) {
        if let Some(id) = self.ids.get(metric).copied().flatten() {
            let _ = self.envoy.record_histogram(id, labels, value);
        }
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
