//! A series: the metrics of one (route, destination) pair, and the trait a
//! host implements to count them.
//!
//! The worker reports what happened to a copy as an [`Event`] on the copy's
//! series; the catalogue maps it to points (metric, kind, labels), and the
//! host counts each point its own way: the wasm host defines one metric per
//! point, its labels encoded in the name, and caches the id in the series'
//! `ids`; a host with labelled metrics passes the labels with each count.

use super::catalogue::{Event, LabelledPoint, Measure, Point};

/// How a host counts. Counting never fails a request: a host that cannot
/// count a point drops it.
pub trait Telemetry {
    /// What the host keeps per series (metric ids, say); `()` for nothing.
    type Ids: Default;

    /// Applies `measure` at `point` of `series`.
    fn measure(&mut self, series: &Series<Self::Ids>, point: Point, measure: Measure);

    /// Adds one at a labelled point of `series` (the noise tables' counts,
    /// whose labels are bounded by the tables, not enumerated).
    fn count_labelled(&mut self, series: &Series<Self::Ids>, point: LabelledPoint<'_>);

    /// Whether a mismatch line would be written at all (the log level),
    /// checked before one is built.
    fn mismatch_log_enabled(&mut self) -> bool;

    /// Writes one mismatch line to the host's log.
    fn log_mismatch(&mut self, line: &str);
}

/// Reports `event` on `series`.
pub fn report<T: Telemetry + ?Sized>(host: &mut T, series: &Series<T::Ids>, event: Event) {
    for (point, measure) in event.points() {
        host.measure(series, point, measure);
    }
}

/// The labels of one (route, destination) pair, and what the host keeps
/// for it.
#[derive(Debug)]
pub struct Series<I> {
    route: String,
    destination: String,
    ids: I,
}

impl<I: Default> Series<I> {
    pub fn new(route: String, destination: String) -> Self {
        Series {
            route,
            destination,
            ids: I::default(),
        }
    }
}

impl<I> Series<I> {
    pub fn route(&self) -> &str {
        &self.route
    }

    pub fn destination(&self) -> &str {
        &self.destination
    }

    pub fn ids(&self) -> &I {
        &self.ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::SkipReason;

    #[derive(Default)]
    struct Recorder(Vec<(String, Measure)>);

    impl Telemetry for Recorder {
        type Ids = ();
        fn measure(&mut self, series: &Series<()>, point: Point, measure: Measure) {
            let name = crate::telemetry::names::point_name(series.route(), series.destination(), &point);
            self.0.push((name, measure));
        }
        fn count_labelled(&mut self, series: &Series<()>, point: LabelledPoint<'_>) {
            let name = crate::telemetry::names::labelled_name(series.route(), series.destination(), &point);
            self.0.push((name, Measure::Increment));
        }
        fn mismatch_log_enabled(&mut self) -> bool {
            false
        }
        fn log_mismatch(&mut self, _line: &str) {}
    }

    #[test]
    fn an_event_is_reported_at_each_of_its_points() {
        let series = Series::<()>::new("r".into(), "d".into());
        let mut host = Recorder::default();
        report(&mut host, &series, Event::Skipped(SkipReason::Upgrade));
        assert_eq!(
            host.0,
            [(
                crate::telemetry::names::skipped_total("r", "d", SkipReason::Upgrade),
                Measure::Increment
            )]
        );
    }
}
