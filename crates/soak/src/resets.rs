//! Counters that restarted: a scrape every 5 s compared with the one before.

use crate::plan;
use std::collections::BTreeMap;
use std::time::Duration;

/// Counters that went down (or vanished) between two scrapes: a counter
/// that restarts from 0 loses counts (seen in a first 30-minute run on the
/// pairs that came and went; see `plan::WITNESSES`).
#[derive(Default)]
pub struct Resets {
    pub last: BTreeMap<String, f64>,
    pub events: Vec<(Duration, String, f64, f64)>,
}

impl Resets {
    pub fn scrape(&mut self, t: Duration, prometheus: &str) {
        let now: BTreeMap<String, f64> = prometheus
            .lines()
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                // Either host's names, as the wasm host's.
                let (name, labels) = series.split_once('{')?;
                let name = vrata_mirror_core::telemetry::names::from_prometheus(name);
                Some((format!("{name}{{{labels}"), value.trim().parse().ok()?))
            })
            .filter(|(series, _)| series.starts_with("vrata_mirror_") && series.contains("_total{"))
            .collect();
        for (series, old) in &self.last {
            let new = now.get(series).copied().unwrap_or(0.0);
            if new < *old {
                self.events.push((t, series.clone(), *old, new));
            }
        }
        self.last = now;
    }

    /// Events on a kept pair.
    pub fn on_kept_pairs(&self) -> Vec<&(Duration, String, f64, f64)> {
        self.events
            .iter()
            .filter(|(_, series, _, _)| {
                plan::KEPT_PAIRS.iter().any(|(route, dest)| {
                    series.contains(&format!("route=\"{route}\""))
                        && series.contains(&format!("destination=\"{dest}\""))
                })
            })
            .collect()
    }
}
