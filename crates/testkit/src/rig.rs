//! A test rig: a primary and a shadow upstream, and Envoy with the filter in
//! front of them, all on ephemeral loopback ports and all stopped on drop.

use super::config::Setup;
use super::envoy::Envoy;
use super::host::Host;
use super::upstream::{Behaviour, Upstream};
use std::time::Duration;
use vrata_mirror_core::telemetry::catalogue::{REQUESTS, RESPONSES, SKIPPED};

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
    /// A healthy primary and shadow, Envoy with `plugin_json` in the wasm module.
    pub async fn start(plugin_json: &str) -> Rig {
        Self::start_on(Host::Wasm, plugin_json).await
    }

    /// As [`Rig::start`], with the filter on `host`.
    pub async fn start_on(host: Host, plugin_json: &str) -> Rig {
        Self::build_on(host, plugin_json, Behaviour::Answer, |_| {}).await
    }

    /// Full control: the shadow's behaviour and any change to the setup
    /// (which starts on the wasm host, 1 worker).
    pub async fn build(plugin_json: &str, shadow: Behaviour, customize: impl FnOnce(&mut Setup)) -> Rig {
        Self::build_on(Host::Wasm, plugin_json, shadow, customize).await
    }

    /// As [`Rig::build`], with the filter on `host`.
    pub async fn build_on(host: Host, plugin_json: &str, shadow: Behaviour, customize: impl FnOnce(&mut Setup)) -> Rig {
        let primary = Upstream::start("primary", Behaviour::Answer).await;
        let shadow = Upstream::start("shadow", shadow).await;
        let mut setup = Setup::new(plugin_json, primary.port(), shadow.port()).on(host);
        customize(&mut setup);
        let envoy = setup.start().await;
        Rig { primary, shadow, envoy }
    }

    /// The filter's host in this rig's Envoy.
    pub fn host(&self) -> Host {
        self.envoy.host()
    }

    pub fn url(&self, path: &str) -> String {
        self.envoy.url(path)
    }

    /// `vrata_mirror_requests_total{route, destination}` (on either host).
    pub fn mirrored(&self, route: &str, destination: &str) -> f64 {
        mirrored(&self.envoy, route, destination)
    }

    /// `vrata_mirror_skipped_total{route, destination, reason}` (on either host).
    pub fn skipped(&self, route: &str, destination: &str, reason: &str) -> f64 {
        skipped(&self.envoy, route, destination, reason)
    }

    /// `vrata_mirror_responses_total{route, destination, class}` (on either host).
    pub fn responses(&self, route: &str, destination: &str, class: &str) -> f64 {
        responses(&self.envoy, route, destination, class)
    }
}

/// `vrata_mirror_requests_total{route, destination}` of any Envoy, under its host's name.
pub fn mirrored(envoy: &Envoy, route: &str, destination: &str) -> f64 {
    envoy.mirror_metric(&REQUESTS, &[("route", route), ("destination", destination)])
}

/// `vrata_mirror_skipped_total{route, destination, reason}` of any Envoy, under its host's name.
pub fn skipped(envoy: &Envoy, route: &str, destination: &str, reason: &str) -> f64 {
    envoy.mirror_metric(
        &SKIPPED,
        &[("route", route), ("destination", destination), ("reason", reason)],
    )
}

/// `vrata_mirror_responses_total{route, destination, class}` of any Envoy, under its host's name.
pub fn responses(envoy: &Envoy, route: &str, destination: &str, class: &str) -> f64 {
    envoy.mirror_metric(
        &RESPONSES,
        &[("route", route), ("destination", destination), ("class", class)],
    )
}

impl Setup {
    /// Envoy with this setup's config, its host and [`Setup::workers`].
    pub async fn start(&self) -> Envoy {
        self.start_with(&[], &[]).await
    }

    /// As [`Setup::start`], with more command-line arguments and variables
    /// added to Envoy's environment (e.g. the native host's test switches).
    pub async fn start_with(&self, extra_args: &[&str], env: &[(&str, &str)]) -> Envoy {
        spawn_start(self.host, self.render(), self.workers, extra_args, env).await
    }
}

/// Starts Envoy off the async runtime (startup polls and sleeps).
pub async fn start_envoy(yaml: String, concurrency: u32) -> Envoy {
    start_envoy_on(Host::Wasm, yaml, concurrency, &[]).await
}

/// As [`start_envoy`], for a config whose filter runs on `host`, with more
/// command-line arguments (e.g. `--drain-time-s 1` for an LDS push).
pub async fn start_envoy_on(host: Host, yaml: String, concurrency: u32, extra_args: &[&str]) -> Envoy {
    spawn_start(host, yaml, concurrency, extra_args, &[]).await
}

async fn spawn_start(host: Host, yaml: String, concurrency: u32, extra_args: &[&str], env: &[(&str, &str)]) -> Envoy {
    let owned = |pairs: &[&str]| pairs.iter().map(|a| (*a).to_owned()).collect::<Vec<String>>();
    let args = owned(extra_args);
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match Envoy::try_start_on(host, &yaml, concurrency, &args, &env) {
            Ok(envoy) => envoy,
            Err(failure) => panic!("Envoy did not start:\n{}", failure.log),
        }
    })
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
