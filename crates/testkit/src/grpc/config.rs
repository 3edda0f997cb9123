//! Envoy for the gRPC tests: HTTP/2 (h2c) to both clusters, the service on
//! its own route; and the mirror metrics of that route.

use super::{ROUTE, SHADOW};
use crate::config::{Route, Setup};
use crate::envoy::{prometheus_value, Envoy};
use crate::host::Host;
use vrata_mirror_core::telemetry::catalogue::{LATENCY, RESPONSES};

/// Envoy with the filter, HTTP/2 (h2c) to the primary and to the shadow
/// cluster `shadow`; the gRPC service on the route named `grpc`.
pub async fn start_envoy_for_grpc(plugin_json: &str, primary_port: u16, shadow_port: u16) -> Envoy {
    start_envoy_for_grpc_with(plugin_json, primary_port, shadow_port, |_| {}).await
}

/// As [`start_envoy_for_grpc`], with the filter on `host`.
pub async fn start_envoy_for_grpc_on(host: Host, plugin_json: &str, primary_port: u16, shadow_port: u16) -> Envoy {
    start_envoy_for_grpc_with(plugin_json, primary_port, shadow_port, |setup| setup.host = host).await
}

/// As [`start_envoy_for_grpc`], with any change to the setup (e.g. the
/// comparison module, or the host).
pub async fn start_envoy_for_grpc_with(
    plugin_json: &str,
    primary_port: u16,
    shadow_port: u16,
    customize: impl FnOnce(&mut Setup),
) -> Envoy {
    let mut setup = Setup::new(plugin_json, primary_port, shadow_port);
    setup.http2_upstreams = true;
    setup.routes = vec![
        Route {
            name: Some(ROUTE),
            prefix: "/test.Echo/",
        },
        Route {
            name: Some("default"),
            prefix: "/",
        },
    ];
    customize(&mut setup);
    setup.start().await
}

/// `vrata_mirror_requests_total` for the gRPC route (on either host).
pub fn mirrored(envoy: &Envoy) -> f64 {
    crate::rig::mirrored(envoy, ROUTE, SHADOW)
}

/// `vrata_mirror_skipped_total{reason}` for the gRPC route (on either host).
pub fn skipped(envoy: &Envoy, reason: &str) -> f64 {
    crate::rig::skipped(envoy, ROUTE, SHADOW, reason)
}

/// `vrata_mirror_responses_total{class}` for the gRPC route (on either host).
pub fn responses(envoy: &Envoy, class: &str) -> f64 {
    crate::rig::responses(envoy, ROUTE, SHADOW, class)
}

/// Every non-zero `vrata_mirror_responses_total` class of the gRPC route.
pub fn response_classes(envoy: &Envoy) -> Vec<(String, f64)> {
    let text = envoy.prometheus();
    let name = envoy.host().metric_name(&RESPONSES);
    let mut classes: Vec<(String, f64)> = envoy
        .mirror_lines(&RESPONSES)
        .iter()
        .filter_map(|line| {
            let class = line.split("class=\"").nth(1)?.split('"').next()?.to_owned();
            let value = prometheus_value(
                &text,
                &name,
                &[("route", ROUTE), ("destination", SHADOW), ("class", &class)],
            )?;
            (value > 0.0).then_some((class, value))
        })
        .collect();
    classes.sort_by(|a, b| a.0.cmp(&b.0));
    classes.dedup();
    classes
}

/// `vrata_mirror_response_time_ms_count` for the gRPC route (on either host).
pub fn timed_responses(envoy: &Envoy) -> f64 {
    envoy.mirror_histogram(&LATENCY, "count", &[("route", ROUTE), ("destination", SHADOW)])
}
