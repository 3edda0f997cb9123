//! The active configuration of one worker, and what is derived from it.

use super::compare::Limiters;
use crate::config::{MirrorPolicy, PluginConfig};
use crate::dispatch::destination::DestinationState;
use crate::telemetry::names::route_label;
use crate::telemetry::series::Series;
use std::cell::RefCell;
use std::rc::Rc;

/// One configuration, in force on one worker.
pub struct ActiveConfig<I> {
    pub config: PluginConfig,
    /// Aligned with `config.destinations`.
    pub destinations: Vec<Rc<RefCell<DestinationState>>>,
    pub series: SeriesCache<I>,
    pub limiters: Limiters,
}

impl<I> ActiveConfig<I> {
    /// Builds the active state, carrying over destination states by name so
    /// that copies in flight across a reconfiguration stay accounted (their
    /// slots end in the state the new configuration uses) and a shadow in
    /// back-off stays in back-off.
    pub fn new(config: PluginConfig, previous: Option<&ActiveConfig<I>>) -> ActiveConfig<I> {
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
        ActiveConfig {
            config,
            destinations,
            series: SeriesCache::default(),
            limiters: Limiters::default(),
        }
    }
}

/// One route's series, by destination index.
type SeriesByDestination<I> = Vec<Option<Rc<Series<I>>>>;

/// Series by raw route name (as the host reports it) and destination
/// index, made on first use: a host that defines a metric per series (the
/// wasm host: every `define_metric` creates a new id in Envoy) defines it
/// once. A list, not a map: a worker sees a handful of routes, and a hash
/// map here would cost the wasm module more bytes than the lookups ever
/// cost time.
#[derive(Debug)]
pub struct SeriesCache<I> {
    routes: RefCell<Vec<(Vec<u8>, SeriesByDestination<I>)>>,
}

impl<I> Default for SeriesCache<I> {
    fn default() -> Self {
        SeriesCache {
            routes: RefCell::new(Vec::new()),
        }
    }
}

impl<I: Default> SeriesCache<I> {
    /// The series for a route (`None`: the route name is absent) and a
    /// mirror's destination.
    pub fn series(&self, route: Option<&[u8]>, mirror: &MirrorPolicy) -> Rc<Series<I>> {
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
                by_destination.resize_with(mirror.destination_index + 1, || None);
            }
            by_destination.get_mut(mirror.destination_index)
        });
        let fresh = || Rc::new(Series::new(route_label(route), mirror.destination.clone()));
        match slot {
            Some(Some(series)) => series.clone(),
            Some(empty) => {
                let series = fresh();
                *empty = Some(series.clone());
                series
            }
            // Unreachable (the entry was just ensured); a fresh series is still correct.
            None => fresh(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn mirrors() -> Vec<Rc<MirrorPolicy>> {
        let config = parse(br#"{"forward": {"mirrors": [{"destinationId": "a"}, {"destinationId": "b"}]}}"#).unwrap();
        config.default_policy.mirrors.clone()
    }

    #[test]
    fn a_series_is_made_once_per_route_and_destination() {
        let cache: SeriesCache<()> = SeriesCache::default();
        let [a, b] = [&mirrors()[0], &mirrors()[1]];
        let first = cache.series(Some(b"api"), a);
        assert!(Rc::ptr_eq(&first, &cache.series(Some(b"api"), a)));
        assert!(!Rc::ptr_eq(&first, &cache.series(Some(b"api"), b)));
        assert!(!Rc::ptr_eq(&first, &cache.series(Some(b"other"), a)));
        assert_eq!((first.route(), first.destination()), ("api", "a"));
        assert_eq!(cache.series(None, b).route(), "unnamed");
    }

    fn config(json: &str) -> PluginConfig {
        parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn a_reconfiguration_carries_destination_states_over_by_name() {
        let first = ActiveConfig::<()>::new(
            config(r#"{"forward": {"mirrors": [{"destinationId": "a"}, {"destinationId": "b"}]}}"#),
            None,
        );
        let held = first.destinations[1].borrow_mut().admit(10, || 0).unwrap();
        let second = ActiveConfig::new(
            config(r#"{"forward": {"mirrors": [{"destinationId": "b"}, {"destinationId": "c"}]}}"#),
            Some(&first),
        );
        assert!(Rc::ptr_eq(&second.destinations[0], &first.destinations[1]), "b kept");
        assert_eq!(
            second.destinations[0].borrow().outstanding(),
            1,
            "with its copy in flight"
        );
        assert_eq!(second.destinations[1].borrow().outstanding(), 0, "c is new");
        second.destinations[0].borrow_mut().abandon(held);
        assert_eq!(first.destinations[1].borrow().outstanding(), 0);
        let fresh = ActiveConfig::<()>::new(config(r#"{"forward": {"mirror": {"destinationId": "a"}}}"#), None);
        assert!(!Rc::ptr_eq(&fresh.destinations[0], &first.destinations[0]));
    }
}
