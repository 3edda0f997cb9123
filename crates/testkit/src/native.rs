//! What the native host's own tests (crates/native/tests) read that the
//! rig does not: every skip of a route, whatever its reason, under the
//! native host's names (`envoy_vrata_mirror_*`, real labels).

use crate::envoy::Envoy;

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
