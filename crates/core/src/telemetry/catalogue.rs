//! The one list of what the filter reports: every metric with its kind and
//! labels, every label and the Envoy `stats_tags` rule that makes it a
//! Prometheus label, and the values of the enumerated labels. The filter's
//! metric names ([`super::names`]), the README's table, the reference
//! configs' `stats_tags` and the tools all come from here, or a test checks
//! them against it.

use super::names::{COMPARE_TOTAL, LATENCY_MS, PRIMARY_LATENCY_MS, REQUESTS_TOTAL, RESPONSES_TOTAL, SKIPPED_TOTAL};
use super::{ResponseClass, SkipReason};
use crate::compare::CompareResult;

/// How Envoy stores a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Histogram,
}

/// One metric the filter defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The name Prometheus shows (Envoy's `/stats/prometheus` adds no prefix).
    pub name: &'static str,
    pub kind: MetricKind,
    /// Its labels, in the order they are encoded in the name.
    pub labels: &'static [Label],
    /// One line: what it counts.
    pub help: &'static str,
}

/// A label encoded in metric names (`route=.=api;.;`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Route,
    Destination,
    Reason,
    Class,
    Result,
}

impl Label {
    pub const ALL: [Label; 5] = [
        Label::Route,
        Label::Destination,
        Label::Reason,
        Label::Class,
        Label::Result,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Label::Route => "route",
            Label::Destination => "destination",
            Label::Reason => "reason",
            Label::Class => "class",
            Label::Result => "result",
        }
    }

    /// The `stats_tags` regex that extracts this label from a metric name
    /// (Envoy's `stats_config.stats_tags`; Istio derives the same from
    /// `extraStatTags`).
    pub fn stats_tag_regex(self) -> String {
        format!(r"({}=\.=(.*?);\.;)", self.name())
    }

    /// The values an enumerated label takes; `None` for free-form labels
    /// (route and destination names come from the configuration).
    pub fn values(self) -> Option<Vec<&'static str>> {
        match self {
            Label::Route | Label::Destination => None,
            Label::Reason => Some(SkipReason::ALL.iter().map(|r| r.label()).collect()),
            Label::Class => Some(ResponseClass::all().map(ResponseClass::label).collect()),
            Label::Result => Some(CompareResult::ALL.iter().map(|r| r.label()).collect()),
        }
    }
}

const ROUTE_DESTINATION: &[Label] = &[Label::Route, Label::Destination];

/// Every metric the filter defines.
pub const METRICS: [Metric; 6] = [
    Metric {
        name: REQUESTS_TOTAL,
        kind: MetricKind::Counter,
        labels: ROUTE_DESTINATION,
        help: "Copies Envoy accepted for sending to the shadow.",
    },
    Metric {
        name: SKIPPED_TOTAL,
        kind: MetricKind::Counter,
        labels: &[Label::Route, Label::Destination, Label::Reason],
        help: "Sampled requests not sent, by reason.",
    },
    Metric {
        name: RESPONSES_TOTAL,
        kind: MetricKind::Counter,
        labels: &[Label::Route, Label::Destination, Label::Class],
        help: "How each sent copy ended, by class.",
    },
    Metric {
        name: LATENCY_MS,
        kind: MetricKind::Histogram,
        labels: ROUTE_DESTINATION,
        help: "Milliseconds from sending a copy to the shadow's answer.",
    },
    Metric {
        name: COMPARE_TOTAL,
        kind: MetricKind::Counter,
        labels: &[Label::Route, Label::Destination, Label::Result],
        help: "How each copy sent with compare ended: the shadow's answer against the primary's.",
    },
    Metric {
        name: PRIMARY_LATENCY_MS,
        kind: MetricKind::Histogram,
        labels: ROUTE_DESTINATION,
        help: "Milliseconds from the request's end to the primary's whole answer, on the requests compared.",
    },
];

/// `(tag_name, regex)` for every label: the bootstrap's `stats_tags`.
pub fn stats_tags() -> Vec<(&'static str, String)> {
    Label::ALL
        .iter()
        .map(|label| (label.name(), label.stats_tag_regex()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::names;

    #[test]
    fn every_label_of_every_metric_has_a_stats_tag() {
        let tags: Vec<&str> = stats_tags().iter().map(|(name, _)| *name).collect();
        for metric in METRICS {
            for label in metric.labels {
                assert!(tags.contains(&label.name()), "{} {:?}", metric.name, label);
            }
        }
    }

    #[test]
    fn the_catalogue_names_what_the_filter_defines() {
        let defined = [
            names::requests_total("r", "d"),
            names::skipped_total("r", "d", SkipReason::Backoff),
            names::responses_total("r", "d", ResponseClass::Timeout),
            names::latency_ms("r", "d"),
            names::compare_total("r", "d", CompareResult::ShadowFailed),
            names::primary_latency_ms("r", "d"),
        ];
        for (metric, name) in METRICS.iter().zip(&defined) {
            assert!(name.ends_with(&format!(";.;{}", metric.name)), "{name}");
            let encoded: Vec<&str> = name
                .split(";.;")
                .filter_map(|part| part.split_once("=.="))
                .map(|(l, _)| l)
                .collect();
            let labels: Vec<&str> = metric.labels.iter().map(|l| l.name()).collect();
            assert_eq!(encoded, labels, "{name}");
        }
    }

    #[test]
    fn a_stats_tag_regex_extracts_its_label() {
        assert_eq!(Label::Route.stats_tag_regex(), r"(route=\.=(.*?);\.;)");
        assert_eq!(Label::Class.values().map(|v| v.len()), Some(ResponseClass::COUNT));
        assert_eq!(Label::Reason.values().map(|v| v.len()), Some(SkipReason::ALL.len()));
        assert_eq!(Label::Route.values(), None);
    }
}
