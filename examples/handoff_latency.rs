//! Measures what the hand-off from the request to the root context adds:
//! how long after the primary received a request its copy reached the
//! shadow, through the real Envoy. Part of `make bench`.
//!
//!     cargo run --example handoff_latency -- [requests] [concurrency]
//!
//! The copy leaves when the request has ended, through a shared queue to the
//! root context, which dispatches it (see README, "How it works").

// Measurement tooling, not filter code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bytes::Bytes;
use std::collections::HashMap;
use std::time::Duration;
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::rig::Rig;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let requests = args.first().copied().unwrap_or(2000);
    let concurrency = args.get(1).copied().unwrap_or(4);
    let rig = Rig::start(r#"{"forward": {"mirror": {"destinationId": "shadow"}}}"#).await;
    let replies = client::load(&rig.url("/api/handoff"), requests, concurrency, "GET", Bytes::new()).await;
    assert!(replies.iter().all(|r| r.status == 200), "client errors");
    let copies = rig.shadow.wait_for(requests, Duration::from_secs(10)).await;
    assert_eq!(copies.len(), requests, "every request mirrored");

    let primary_at: HashMap<String, std::time::Instant> = rig
        .primary
        .received()
        .into_iter()
        .map(|r| (r.header("x-request-id").unwrap().to_owned(), r.arrived))
        .collect();
    let mut delays_us: Vec<u128> = copies
        .iter()
        .map(|c| {
            let primary = primary_at[c.header("x-request-id").unwrap()];
            c.arrived.saturating_duration_since(primary).as_micros()
        })
        .collect();
    delays_us.sort_unstable();
    let at = |q: f64| delays_us[((delays_us.len() - 1) as f64 * q) as usize];
    println!(
        "hand-off: copy reached the shadow after the primary by p50 {} us, p90 {} us, p99 {} us, max {} us \
         ({requests} GETs at concurrency {concurrency}, one Envoy worker)",
        at(0.50),
        at(0.90),
        at(0.99),
        delays_us[delays_us.len() - 1]
    );
}
