//! End to end: `maxRequestsPerSecond` caps what one Envoy sends over all
//! its workers together (a token bucket in proxy-wasm shared data), and
//! `copies` multiplies what the shadow receives. Every test runs Envoy with
//! 2 workers and opens a new connection per request, so that the kernel
//! spreads the load over both (checked with Envoy's per-worker stats).
//!
//! Tolerance of the cap: over a run of `T` seconds with the bucket drained
//! throughout, the shadow receives `burst + rate × T` copies. Allowed: at
//! most `copies + 2` more (the first take of each worker, `copies` tokens,
//! may race with the other's on a bucket not yet stored; and a token may be
//! counted at either edge of the run), and at least 80 % of `rate × T` plus
//! the burst (the load takes a moment to ramp up, and Envoy's clock and the
//! test's differ by a few milliseconds). A bucket per worker would send
//! about twice as many; the bounds exclude that.

use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vrata_mirror_core::telemetry::catalogue::SKIPPED;
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::config::Setup;
use vrata_mirror_testkit::envoy::Envoy;
use vrata_mirror_testkit::host::Host;
use vrata_mirror_testkit::lds::LdsConfig;
use vrata_mirror_testkit::rig::{eventually, mirrored, skipped, start_envoy_on, ARRIVAL, QUIET};
use vrata_mirror_testkit::upstream::{Behaviour, Recorded, Upstream};

const WORKERS: u32 = 2;
/// Clients sending at once: far over any cap below, on both workers.
const CONCURRENCY: usize = 12;

/// What a run of load sent.
struct Sent {
    requests: usize,
    elapsed: Duration,
}

/// GETs (each on a new connection, with `x-seq` numbering them) until
/// `duration` has passed; every one must get the primary's 200.
async fn load_for(url: &str, duration: Duration, headers: &'static [(&'static str, &'static str)]) -> Sent {
    let started = Instant::now();
    let deadline = started + duration;
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (url, next) = (url.to_owned(), next.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let seq = next.fetch_add(1, Ordering::Relaxed).to_string();
                let mut all: Vec<(&str, &str)> = headers.to_vec();
                all.push(("x-seq", &seq));
                let reply = client::http1("GET", &url, &all, "").await;
                assert_eq!(reply.status, 200, "the primary must answer every request");
            }
        }));
    }
    for task in tasks {
        task.await.expect("load task");
    }
    Sent {
        requests: next.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    }
}

/// `n` POSTs (each on a new connection, numbered by `x-seq`), `CONCURRENCY` at a time.
async fn send_numbered(url: &str, n: usize, body: &'static [u8]) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (url, next) = (url.to_owned(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let seq = i.to_string();
                let reply = client::http1("POST", &url, &[("x-seq", &seq)], Bytes::from_static(body)).await;
                assert_eq!(reply.status, 200);
            }
        }));
    }
    for task in tasks {
        task.await.expect("send task");
    }
}

/// Both workers took a real share of the connections (at least a fifth each).
fn assert_spread(envoy: &Envoy) {
    let per_worker = envoy.connections_per_worker(WORKERS);
    let total: u64 = per_worker.iter().sum();
    assert!(
        per_worker.iter().all(|n| *n * 5 >= total) && total > 0,
        "the load must be spread over both workers: connections per worker {per_worker:?}"
    );
}

/// The range of copies a cap of `rate` with `burst` lets through in
/// `elapsed`, `copies` to a request (see the module's doc for the bounds).
fn capped_bounds(rate: f64, burst: u32, copies: u64, elapsed: Duration) -> (u64, u64) {
    let steady = rate * elapsed.as_secs_f64();
    let low = (f64::from(burst) + 0.8 * steady).floor() as u64;
    let high = (f64::from(burst) + steady).ceil() as u64 + copies + 2;
    (low, high)
}

/// Waits until the shadow has stopped receiving and the counters agree with it.
async fn settled(shadow: &Upstream, envoy: &Envoy, mirrored: impl Fn() -> f64) -> Vec<Recorded> {
    let mut copies = shadow.settle(QUIET).await;
    loop {
        let more = shadow.settle(QUIET).await;
        if more.len() == copies.len() {
            break;
        }
        copies = more;
    }
    let n = copies.len() as f64;
    assert!(
        eventually(ARRIVAL, || mirrored() == n).await,
        "requests_total {} but the shadow received {n}:\n{}",
        mirrored(),
        envoy.prometheus()
    );
    copies
}

/// Envoy with `WORKERS` workers and `plugin` on `host`.
async fn on_two_workers(host: Host, plugin: &str, primary: &Upstream, shadow: &Upstream) -> Envoy {
    let mut setup = Setup::new(plugin, primary.port(), shadow.port()).on(host);
    setup.workers = WORKERS;
    setup.start().await
}

async fn the_cap_holds_across_both_workers_and_every_excess_copy_is_counted(host: Host) {
    const RATE: f64 = 20.0;
    const BURST: u32 = 20;
    const COPIES: u64 = 1;
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let plugin =
        format!(r#"{{"forward": {{"mirror": {{"destinationId": "shadow", "maxRequestsPerSecond": {RATE}}}}}}}"#);
    let envoy = on_two_workers(host, &plugin, &primary, &shadow).await;

    let sent = load_for(&envoy.url("/api/load"), Duration::from_secs(4), &[]).await;
    let mirrored = || mirrored(&envoy, "api", "shadow");
    let copies = settled(&shadow, &envoy, mirrored).await;

    assert_spread(&envoy);
    let received = copies.len() as u64;
    let offered = sent.requests as f64 / sent.elapsed.as_secs_f64();
    let (low, high) = capped_bounds(RATE, BURST, COPIES, sent.elapsed);
    eprintln!(
        "cap {RATE}/s (burst {BURST}), 2 workers, connections per worker {:?}: offered {} requests in {:.2} s \
         ({offered:.0}/s); the shadow received {received} (expected {low}..={high}, a bucket per worker would be \
         about {})",
        envoy.connections_per_worker(WORKERS),
        sent.requests,
        sent.elapsed.as_secs_f64(),
        2 * (u64::from(BURST) + (RATE * sent.elapsed.as_secs_f64()) as u64)
    );
    assert!(
        offered > 5.0 * RATE,
        "the load must be well over the cap: {offered:.0}/s"
    );
    assert!(
        (low..=high).contains(&received),
        "the shadow received {received} copies in {:.2} s at a cap of {RATE}/s with burst {BURST}; \
         expected {low}..={high}",
        sent.elapsed.as_secs_f64()
    );
    let limited = skipped(&envoy, "api", "shadow", "rate_limited") as u64;
    assert_eq!(
        received + limited,
        sent.requests as u64,
        "every request is either mirrored or counted as rate_limited (and nothing else):\n{}",
        envoy.prometheus()
    );
    assert_eq!(skipped(&envoy, "api", "shadow", "rate_unavailable"), 0.0);
}

async fn three_copies_at_100_percent_send_exactly_three_times_the_requests(host: Host) {
    const REQUESTS: usize = 300;
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let plugin = r#"{"forward": {"mirror": {"destinationId": "shadow", "copies": 3}}}"#;
    let envoy = on_two_workers(host, plugin, &primary, &shadow).await;

    send_numbered(&envoy.url("/api/copies"), REQUESTS, b"payload").await;
    assert_eq!(primary.count(), REQUESTS, "the primary gets each request once");
    let copies = shadow.wait_for(3 * REQUESTS, ARRIVAL).await;
    assert_eq!(copies.len(), 3 * REQUESTS);
    let mirrored = || mirrored(&envoy, "api", "shadow");
    let copies = settled(&shadow, &envoy, mirrored).await;
    assert_eq!(copies.len(), 3 * REQUESTS, "exactly 3 ×, nothing more");
    let mut per_request: BTreeMap<String, usize> = BTreeMap::new();
    for copy in &copies {
        assert_eq!(
            (copy.method.as_str(), copy.body.as_slice()),
            ("POST", b"payload".as_slice())
        );
        *per_request.entry(copy.header("x-seq").unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(per_request.len(), REQUESTS);
    assert!(
        per_request.values().all(|n| *n == 3),
        "each request 3 times: {per_request:?}"
    );
    assert_spread(&envoy);
    assert_eq!(envoy.mirror_lines(&SKIPPED), Vec::<String>::new(), "nothing skipped");
}

async fn with_copies_each_copy_takes_its_own_token(host: Host) {
    const RATE: f64 = 30.0;
    const BURST: u32 = 30;
    const COPIES: u64 = 3;
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let plugin = format!(
        r#"{{"forward": {{"mirror": {{"destinationId": "shadow", "copies": {COPIES}, "maxRequestsPerSecond": {RATE}}}}}}}"#
    );
    let envoy = on_two_workers(host, &plugin, &primary, &shadow).await;

    let sent = load_for(&envoy.url("/api/copies"), Duration::from_secs(3), &[]).await;
    let mirrored = || mirrored(&envoy, "api", "shadow");
    let copies = settled(&shadow, &envoy, mirrored).await;
    assert_spread(&envoy);
    let received = copies.len() as u64;
    let (low, high) = capped_bounds(RATE, BURST, COPIES, sent.elapsed);
    eprintln!(
        "copies 3, cap {RATE}/s: {} requests in {:.2} s; the shadow received {received} copies (expected {low}..={high})",
        sent.requests,
        sent.elapsed.as_secs_f64()
    );
    assert!(
        (low..=high).contains(&received),
        "{received} copies in {:.2} s, expected {low}..={high}: copies count against the cap one by one",
        sent.elapsed.as_secs_f64()
    );
    let limited = skipped(&envoy, "api", "shadow", "rate_limited") as u64;
    assert_eq!(
        received + limited,
        COPIES * sent.requests as u64,
        "each of 3 copies of every request is mirrored or counted as rate_limited"
    );
}

/// The rate is changed while Envoy runs, by pushing a new listener over
/// LDS (no restart): the new cap binds at once, on both workers. (The new
/// configuration finds the same bucket in shared data, which outlives the
/// old one; tests/harness/rate.rs shows the carry-over.) Copies are told
/// apart by an `x-config` header each configuration adds.
async fn a_new_rate_pushed_over_lds_takes_effect(host: Host) {
    const SLOW: f64 = 10.0;
    const FAST: f64 = 40.0;
    let plugin = |rate: f64, tag: &str| {
        format!(
            r#"{{"forward": {{"mirror": {{"destinationId": "shadow", "maxRequestsPerSecond": {rate}, "addHeaders": {{"x-config": "{tag}"}}}}}}}}"#
        )
    };
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let setup = |json: &str| {
        let mut setup = Setup::new(json, primary.port(), shadow.port()).on(host);
        setup.workers = WORKERS;
        setup
    };
    let lds = LdsConfig::new(&setup(&plugin(SLOW, "slow")).bootstrap(), &format!("rate-{host}"));
    lds.publish(&setup(&plugin(SLOW, "slow")).bootstrap());
    let envoy = start_envoy_on(host, lds.bootstrap.clone(), WORKERS, &[]).await;
    let updates = || envoy.stat("listener_manager.lds.update_success");
    let initial_updates = updates();

    let slow = load_for(&envoy.url("/api/a"), Duration::from_secs(3), &[]).await;
    let count = |tag: &str| {
        shadow
            .received()
            .iter()
            .filter(|c| c.header("x-config") == Some(tag))
            .count() as u64
    };
    shadow.settle(QUIET).await;
    let slow_copies = count("slow");

    lds.publish(&setup(&plugin(FAST, "fast")).bootstrap());
    assert!(
        eventually(ARRIVAL, || updates() > initial_updates).await,
        "Envoy did not take the new listener:\n{}",
        envoy.log()
    );
    let fast = load_for(&envoy.url("/api/b"), Duration::from_secs(3), &[]).await;
    shadow.settle(QUIET).await;
    let fast_copies = count("fast");
    assert_eq!(
        count("slow"),
        slow_copies,
        "no copy under the old configuration after the push"
    );
    assert_spread(&envoy);

    let (slow_low, slow_high) = capped_bounds(SLOW, 10, 1, slow.elapsed);
    // After the push the bucket refills at the new rate while Envoy
    // switches (up to the new burst) and then at 40/s.
    let (fast_low, fast_high) = capped_bounds(FAST, 40, 1, fast.elapsed);
    let fast_low = fast_low.saturating_sub(40);
    eprintln!(
        "LDS push of the rate: {SLOW}/s -> {} copies of {} requests in {:.2} s (expected {slow_low}..={slow_high}); \
         {FAST}/s -> {} of {} in {:.2} s (expected {fast_low}..={fast_high})",
        slow_copies,
        slow.requests,
        slow.elapsed.as_secs_f64(),
        fast_copies,
        fast.requests,
        fast.elapsed.as_secs_f64()
    );
    assert!(
        (slow_low..=slow_high).contains(&slow_copies),
        "{slow_copies} at {SLOW}/s"
    );
    assert!(
        (fast_low..=fast_high).contains(&fast_copies),
        "{fast_copies} at {FAST}/s"
    );
    let limited = skipped(&envoy, "api", "shadow", "rate_limited") as u64;
    assert_eq!(
        slow_copies + fast_copies + limited,
        (slow.requests + fast.requests) as u64
    );
}

vrata_mirror_testkit::on_each_host!(
    async the_cap_holds_across_both_workers_and_every_excess_copy_is_counted,
    async three_copies_at_100_percent_send_exactly_three_times_the_requests,
    async with_copies_each_copy_takes_its_own_token,
    async a_new_rate_pushed_over_lds_takes_effect,
);
