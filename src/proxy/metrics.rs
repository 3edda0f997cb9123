//! The filter's metrics, defined once per (route, destination[, reason |
//! class]) and cached: every `define_metric` call creates a new id in Envoy,
//! so defining per request would leak. A definition that fails is not
//! retried; its increments are dropped (metrics never fail a request).

use super::host::{self, MetricKind};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use vrata_mirror_core::compare::CompareResult;
use vrata_mirror_core::config::MirrorPolicy;
use vrata_mirror_core::telemetry::{names, ResponseClass, SkipReason};

#[derive(Clone, Copy)]
enum Slot {
    Undefined,
    Defined(u32),
    Failed,
}

/// One metric, defined on first use.
struct Lazy(Cell<Slot>);

impl Lazy {
    fn new() -> Self {
        Lazy(Cell::new(Slot::Undefined))
    }

    fn id(&self, kind: MetricKind, name: impl FnOnce() -> String) -> Option<u32> {
        match self.0.get() {
            Slot::Defined(id) => Some(id),
            Slot::Failed => None,
            Slot::Undefined => {
                let name = name();
                let slot = match host::define_metric(kind, &name) {
                    Ok(id) => Slot::Defined(id),
                    Err(err) => {
                        log::debug!("vrata-mirror: define_metric({name}) failed: {err:?}");
                        Slot::Failed
                    }
                };
                self.0.set(slot);
                match slot {
                    Slot::Defined(id) => Some(id),
                    _ => None,
                }
            }
        }
    }
}

/// The metrics of one (route, destination) pair.
pub struct Series {
    route: String,
    destination: String,
    requests: Lazy,
    skipped: [Lazy; SkipReason::ALL.len()],
    responses: [Lazy; ResponseClass::COUNT],
    latency: Lazy,
    compared: [Lazy; CompareResult::ALL.len()],
    primary_latency: Lazy,
}

impl Series {
    fn new(route: String, destination: String) -> Self {
        Series {
            route,
            destination,
            requests: Lazy::new(),
            skipped: std::array::from_fn(|_| Lazy::new()),
            responses: std::array::from_fn(|_| Lazy::new()),
            latency: Lazy::new(),
            compared: std::array::from_fn(|_| Lazy::new()),
            primary_latency: Lazy::new(),
        }
    }

    /// A copy Envoy accepted.
    pub fn count_request(&self) {
        let id = self.requests.id(MetricKind::Counter, || {
            names::requests_total(&self.route, &self.destination)
        });
        increment(id);
    }

    /// A sampled request that was not mirrored.
    pub fn count_skip(&self, reason: SkipReason) {
        let slot = SkipReason::ALL
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.skipped.get(i));
        if let Some(lazy) = slot {
            let id = lazy.id(MetricKind::Counter, || {
                names::skipped_total(&self.route, &self.destination, reason)
            });
            increment(id);
        }
    }

    /// How a call ended, and its latency when the shadow answered.
    pub fn count_response(&self, class: ResponseClass, latency_ms: Option<u64>) {
        let slot = self.responses.get(class.index());
        if let Some(lazy) = slot {
            let id = lazy.id(MetricKind::Counter, || {
                names::responses_total(&self.route, &self.destination, class)
            });
            increment(id);
        }
        if let Some(ms) = latency_ms {
            let id = self.latency.id(MetricKind::Histogram, || {
                names::latency_ms(&self.route, &self.destination)
            });
            if let Some(id) = id {
                let _ = host::record_metric(id, ms);
            }
        }
    }
}

impl Series {
    pub fn route(&self) -> &str {
        &self.route
    }

    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// How a copy sent with `compare` ended.
    pub fn count_compare(&self, result: CompareResult) {
        if let Some(lazy) = self.compared.get(result.index()) {
            let id = lazy.id(MetricKind::Counter, || {
                names::compare_total(&self.route, &self.destination, result)
            });
            increment(id);
        }
    }

    /// The primary's latency on a compared request.
    pub fn record_primary_latency(&self, ms: u64) {
        let id = self.primary_latency.id(MetricKind::Histogram, || {
            names::primary_latency_ms(&self.route, &self.destination)
        });
        if let Some(id) = id {
            let _ = host::record_metric(id, ms);
        }
    }
}

fn increment(id: Option<u32>) {
    if let Some(id) = id {
        let _ = host::increment_metric(id, 1);
    }
}

/// One route's series, by destination index.
type SeriesByDestination = Vec<Option<Rc<Series>>>;

/// Series by raw route name (as the host reports it) and destination index.
/// A list, not a map: a VM sees a handful of routes, and a hash map here
/// would cost the module more bytes than the lookups ever cost time.
#[derive(Default)]
pub struct MetricCache {
    routes: RefCell<Vec<(Vec<u8>, SeriesByDestination)>>,
}

impl MetricCache {
    /// The series for a route (`None`: the route name is absent) and a
    /// mirror's destination.
    pub fn series(&self, route: Option<&[u8]>, mirror: &MirrorPolicy) -> Rc<Series> {
        let key = route.unwrap_or_default();
        let mut routes = self.routes.borrow_mut();
        let index = match routes.iter().position(|(name, _)| name == key) {
            Some(index) => index,
            None => {
                routes.push((key.to_vec(), Vec::new()));
                routes.len() - 1
            }
        };
        let slot = routes.get_mut(index).and_then(|(_, by_destination)| {
            if by_destination.len() <= mirror.destination_index {
                by_destination.resize(mirror.destination_index + 1, None);
            }
            by_destination.get_mut(mirror.destination_index)
        });
        match slot {
            Some(Some(series)) => series.clone(),
            Some(empty) => {
                let series = Rc::new(Series::new(names::route_label(route), mirror.destination.clone()));
                *empty = Some(series.clone());
                series
            }
            // Unreachable (the entry was just ensured); a fresh series is still correct.
            None => Rc::new(Series::new(names::route_label(route), mirror.destination.clone())),
        }
    }
}
