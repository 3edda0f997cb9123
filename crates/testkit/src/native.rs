//! The native host (crates/native) in a real Envoy: its bootstrap from the one renderer,
//! started off the async runtime, and the catalogue's series as it names them
//! (`envoy_vrata_mirror_*`, real labels).

use crate::config::Setup;
use crate::envoy::{admin_get, native_module, Envoy};
use vrata_mirror_render::envoy::{Bootstrap, Mirroring};

/// `setup`'s bootstrap with the native module in place of the wasm one, the filter once per
/// worker of `workers`.
pub fn bootstrap(setup: &Setup, workers: u32) -> Bootstrap {
    let mut bootstrap = setup.bootstrap();
    bootstrap.mirroring = Mirroring::DynamicModule {
        module: native_module().display().to_string(),
        plugin: setup.plugin_json.clone(),
        workers,
    };
    bootstrap
}

/// Starts Envoy (`workers` workers, `args` added) on a blocking thread; fails loudly with
/// its log.
pub async fn start(yaml: String, workers: u32, args: &'static [&'static str]) -> Envoy {
    tokio::task::spawn_blocking(move || match Envoy::try_start_env(&yaml, workers, args, &[]) {
        Ok(envoy) => envoy,
        Err(failure) => panic!("Envoy did not start:\n{}", failure.log),
    })
    .await
    .expect("envoy start task")
}

/// Whether Envoy's admin says it is live.
pub fn alive(envoy: &Envoy) -> bool {
    admin_get(envoy.admin, "/ready").is_some_and(|r| r.contains("LIVE"))
}

/// `envoy_vrata_mirror_requests_total{route,destination="shadow"}`.
pub fn requests(envoy: &Envoy, route: &str) -> f64 {
    envoy.metric(
        "envoy_vrata_mirror_requests_total",
        &[("route", route), ("destination", "shadow")],
    )
}

/// `envoy_vrata_mirror_responses_total{route,destination="shadow",class}`.
pub fn responses(envoy: &Envoy, route: &str, class: &str) -> f64 {
    envoy.metric(
        "envoy_vrata_mirror_responses_total",
        &[("route", route), ("destination", "shadow"), ("class", class)],
    )
}

/// Every `envoy_vrata_mirror_skipped_total` series of `route`, summed.
pub fn skipped_any(envoy: &Envoy, route: &str) -> f64 {
    let prefix = "envoy_vrata_mirror_skipped_total{";
    let route = format!("route=\"{route}\"");
    envoy
        .prometheus()
        .lines()
        .filter(|l| l.starts_with(prefix) && l.contains(&route))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |sum, n| sum + n)
}
