//! A test rig: a primary and a shadow upstream, and Envoy with the filter in
//! front of them, all on ephemeral loopback ports and all stopped on drop.

use super::config::Setup;
use super::envoy::Envoy;
use super::upstream::{Behaviour, Upstream};
use std::time::Duration;

/// How long to wait for copies that should arrive; generous for a loaded CI box.
pub const ARRIVAL: Duration = Duration::from_secs(10);
/// How long to wait before asserting that nothing (more) arrived.
pub const QUIET: Duration = Duration::from_millis(500);
/// The plugin configuration of the run without mirroring (percentage 0,
/// so the filter is loaded but copies nothing): the baseline that "clients
/// unaffected" compares every mirrored run with.
pub const MIRROR_OFF: &str = r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 0}}}"#;

pub struct Rig {
    pub primary: Upstream,
    pub shadow: Upstream,
    pub envoy: Envoy,
}

impl Rig {
    /// A healthy primary and shadow, Envoy with `plugin_json`.
    pub async fn start(plugin_json: &str) -> Rig {
        Self::build(plugin_json, Behaviour::Answer, |_| {}).await
    }

    /// Full control: the shadow's behaviour and any change to the setup.
    pub async fn build(plugin_json: &str, shadow: Behaviour, customize: impl FnOnce(&mut Setup)) -> Rig {
        let primary = Upstream::start("primary", Behaviour::Answer).await;
        let shadow = Upstream::start("shadow", shadow).await;
        let mut setup = Setup::new(plugin_json, primary.port(), shadow.port());
        customize(&mut setup);
        let envoy = start_envoy(setup.render(), 1).await;
        Rig { primary, shadow, envoy }
    }

    pub fn url(&self, path: &str) -> String {
        self.envoy.url(path)
    }

    /// `vrata_mirror_requests_total{route, destination}`.
    pub fn mirrored(&self, route: &str, destination: &str) -> f64 {
        self.envoy.metric(
            "vrata_mirror_requests_total",
            &[("route", route), ("destination", destination)],
        )
    }

    /// `vrata_mirror_skipped_total{route, destination, reason}`.
    pub fn skipped(&self, route: &str, destination: &str, reason: &str) -> f64 {
        self.envoy.metric(
            "vrata_mirror_skipped_total",
            &[("route", route), ("destination", destination), ("reason", reason)],
        )
    }

    /// `vrata_mirror_responses_total{route, destination, class}`.
    pub fn responses(&self, route: &str, destination: &str, class: &str) -> f64 {
        self.envoy.metric(
            "vrata_mirror_responses_total",
            &[("route", route), ("destination", destination), ("class", class)],
        )
    }
}

/// Starts Envoy off the async runtime (startup polls and sleeps).
pub async fn start_envoy(yaml: String, concurrency: u32) -> Envoy {
    tokio::task::spawn_blocking(move || Envoy::start(&yaml, concurrency))
        .await
        .expect("envoy start task")
}

/// Polls `check` until it holds or `timeout` passes; returns whether it held.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
