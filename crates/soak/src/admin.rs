//! Reads from Envoy's admin interface (blocking calls, off the runtime's
//! worker threads).

use crate::accounting::Metrics;
use std::net::SocketAddr;
use vrata_mirror_testkit::envoy::admin_get;

pub async fn get(addr: SocketAddr, path: &str) -> String {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || admin_get(addr, &path).unwrap_or_default())
        .await
        .expect("admin task")
}

pub async fn stat(addr: SocketAddr, name: &str) -> u64 {
    let text = get(addr, &format!("/stats?filter=^{}$", name.replace('.', "\\."))).await;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

pub async fn metrics(addr: SocketAddr) -> Metrics {
    Metrics::parse(&get(addr, "/stats/prometheus").await)
}
