//! `make soak` (issue 14): the real Envoy 1.40 with 2 workers and the
//! comparison module, its listener read through LDS from a watched
//! directory; steady GET/POST (small and 200 KiB) over HTTP/1.1 and HTTP/2
//! and gRPC unary calls; shadows that cycle through their failures every
//! 5 s; a new plugin configuration pushed every 15 s, one in four invalid.
//! Asserts: no client-visible difference and no socket error, every copy
//! accounted for (crates/soak/src/accounting.rs), RSS growth after warm-up
//! within a bound, every valid push in force within 2 s and every invalid
//! one rejected, no wasm VM failure. Prints a summary (Markdown tables).
//!
//! `vrata-mirror-soak [--seconds N]` (default 120). Exit status 1 when a
//! check fails.

// A test program: a failed expectation stops it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod accounting;
mod plan;
mod report;

use accounting::{Check, Metrics, Sent, UpstreamCount};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use plan::Phase;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vrata_mirror_core::telemetry::{ResponseClass, SkipReason};
use vrata_mirror_render::envoy::{Bootstrap, Cluster as EnvoyCluster, Route as EnvoyRoute};
use vrata_mirror_testkit::config::{Cluster, Setup};
use vrata_mirror_testkit::envoy::{admin_get, envoy_version, Envoy};
use vrata_mirror_testkit::grpc::{self, GrpcClient, GrpcServer, Rpc};
use vrata_mirror_testkit::lds::LdsConfig;
use vrata_mirror_testkit::upstream::{Behaviour, Upstream};

/// Envoy's workers.
const WORKERS: u32 = 2;
/// Client tasks, and the requests per second they send together.
const CLIENTS: u64 = 8;
const RATE: u64 = 160;
/// The large upload.
const LARGE_BODY: usize = 200 * 1024;
/// Envoy's heap in use once idle may exceed its value under load at
/// warm-up's end by this much (the stats of series first seen later).
const HEAP_SLACK: u64 = 4 << 20;
/// A valid push must be in force within this long.
const TAKE_EFFECT: Duration = Duration::from_secs(2);
/// A client request that takes longer is a socket error.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn main() {
    let mut seconds: u64 = 120;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--seconds takes a number")
            }
            "-h" | "--help" => {
                println!("vrata-mirror-soak [--seconds N]   (default 120; see make soak)");
                return;
            }
            other => panic!("unknown argument {other}; try --help"),
        }
    }
    assert!(seconds >= 30, "--seconds: at least 30 (one push, every phase)");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let passed = runtime.block_on(run(Duration::from_secs(seconds)));
    // Leave the runtime's stuck tasks (a stuck shadow's handlers) behind.
    runtime.shutdown_timeout(Duration::from_secs(1));
    if !passed {
        std::process::exit(1);
    }
}

/// The upstreams: a primary for HTTP and one for gRPC, two shadows that
/// cycle, and the witness.
struct Upstreams {
    primary: Upstream,
    primary_grpc: GrpcServer,
    shadows: [Upstream; 2],
    witnesses: [Upstream; 2],
}

/// The witness route `probe` mirrors to in configuration `config`.
fn witness_of(up: &Upstreams, config: u32) -> &Upstream {
    &up.witnesses[(config % 2) as usize]
}

/// The Envoy configuration with plugin configuration `json`: routes
/// `grpc`, `api`, `probe`, `extra` and the default, clusters for every
/// upstream, all HTTP/2; printed by the project's renderer.
fn bootstrap(up: &Upstreams, json: &str) -> Bootstrap {
    let mut setup = Setup::new(json, up.primary.port(), up.shadows[0].port());
    setup.http2_upstreams = true;
    setup.compare_module = true;
    setup.shadows = vec![
        Cluster {
            name: plan::SHADOWS[0],
            port: up.shadows[0].port(),
            max_requests: 1024,
        },
        Cluster {
            name: plan::SHADOWS[1],
            port: up.shadows[1].port(),
            max_requests: 1024,
        },
        Cluster {
            name: plan::WITNESSES[0],
            port: up.witnesses[0].port(),
            max_requests: 1024,
        },
        Cluster {
            name: plan::WITNESSES[1],
            port: up.witnesses[1].port(),
            max_requests: 1024,
        },
    ];
    let mut bootstrap = setup.bootstrap();
    bootstrap.routes = vec![
        EnvoyRoute::to_one(Some("grpc"), "/test.Echo/", "primary_grpc"),
        EnvoyRoute::to_one(Some("api"), "/api", "primary"),
        EnvoyRoute::to_one(Some("probe"), "/probe", "primary"),
        EnvoyRoute::to_one(Some("extra"), "/extra", "primary"),
        EnvoyRoute::to_one(Some("default"), "/", "primary"),
    ];
    let mut grpc_primary = EnvoyCluster::primary(
        "primary_grpc",
        vrata_mirror_render::envoy::Address::loopback(up.primary_grpc.port()),
    );
    grpc_primary.http2 = true;
    bootstrap.clusters.push(grpc_primary);
    bootstrap
}

/// What the clients saw.
#[derive(Default)]
struct ClientStats {
    sent: Sent,
    h1: u64,
    h2: u64,
    grpc: u64,
    differences: u64,
    socket_errors: u64,
    examples: Vec<String>,
    /// Latency samples (µs) by the phase the request was sent in.
    latency: [Vec<u32>; 8],
}

impl ClientStats {
    fn problem(&mut self, socket: bool, what: String) {
        if socket {
            self.socket_errors += 1;
        } else {
            self.differences += 1;
        }
        if self.examples.len() < 10 {
            self.examples.push(what);
        }
    }
}

struct Shared {
    started: Instant,
    stop: AtomicBool,
    seq: AtomicU64,
    stats: Mutex<ClientStats>,
    envoy_addr: SocketAddr,
    admin: SocketAddr,
    envoy: Arc<Envoy>,
}

impl Shared {
    fn phase(&self) -> Phase {
        Phase::at(self.started.elapsed())
    }
}

fn connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    // Headers and body leave in separate writes: no Nagle wait between them.
    connector.set_nodelay(true);
    connector
}

fn http1_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(connector())
}

fn h2_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector())
}

/// One HTTP request: `Ok((status, body))` or a socket-level error.
async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<(u16, Bytes), String> {
    let mut request = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body)).expect("request");
    let exchange = async {
        let response = client.request(request).await.map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok((status, body))
    };
    match tokio::time::timeout(CLIENT_TIMEOUT, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {CLIENT_TIMEOUT:?}")),
    }
}

/// What the HTTP primary answers to `method uri` with a body of `len` bytes.
fn primary_answer(method: &str, uri: &str, len: usize) -> String {
    format!("primary saw {method} {uri} with {len} body bytes\n")
}

/// One client task: requests in a fixed mix until told to stop, paced so
/// that all clients together send [`RATE`] a second.
async fn client_task(shared: Arc<Shared>) {
    let base = format!("http://{}", shared.envoy_addr);
    let h1 = http1_client();
    let h2 = h2_client();
    let mut grpc_client = GrpcClient::connect(&base).await;
    let small = Bytes::from_static(b"a small body of a request, mirrored or not");
    let large = Bytes::from(vec![b'L'; LARGE_BODY]);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 * CLIENTS / RATE));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !shared.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let seq = shared.seq.fetch_add(1, Ordering::Relaxed);
        let phase = shared.phase();
        let started = Instant::now();
        let key = format!("k{seq}");
        // (route, protocol, method, path, body, key)
        let (route, h2_used, method, path, body) = match seq % 10 {
            0 | 8 => ("api", false, "GET", format!("/api/get?n={seq}"), Bytes::new()),
            1 => ("api", true, "GET", format!("/api/get?n={seq}"), Bytes::new()),
            2 => ("api", false, "POST", format!("/api/post/{seq}"), small.clone()),
            3 => ("api", true, "POST", format!("/api/post/{seq}"), small.clone()),
            4 => ("default", false, "GET", format!("/web/{seq}"), Bytes::new()),
            6 => ("default", true, "POST", format!("/web/post/{seq}"), small.clone()),
            5 | 7 => ("grpc", true, "", String::new(), Bytes::new()),
            _ if (seq / 10).is_multiple_of(2) => ("api", false, "POST", format!("/api/upload/{seq}"), large.clone()),
            _ => ("default", true, "POST", format!("/web/upload/{seq}"), large.clone()),
        };
        let outcome: Result<(), (bool, String)> = if route == "grpc" {
            let message = Bytes::from(format!("call {seq}"));
            let rpc = Rpc {
                path: grpc::UNARY,
                messages: vec![message.clone()],
                metadata: vec![],
                timeout: Some(CLIENT_TIMEOUT),
            };
            let got = grpc_client.call(&rpc).await;
            let want = grpc::replies("primary", grpc::UNARY, &[message]);
            if got.code == tonic::Code::Ok && got.replies == want {
                Ok(())
            } else {
                let socket = got.status_message.contains("transport") || got.code == tonic::Code::Unavailable;
                Err((socket, format!("gRPC call {seq}: {got:?}")))
            }
        } else {
            let url = format!("{base}{path}");
            let client = if h2_used { &h2 } else { &h1 };
            let headers: Vec<(&str, &str)> = if route == "default" {
                vec![("x-soak-key", key.as_str())]
            } else {
                vec![]
            };
            let len = body.len();
            match send(client, method, &url, &headers, body).await {
                Ok((status, got)) => {
                    let want = primary_answer(method, &path, len);
                    if status == 200 && got == want.as_bytes() {
                        Ok(())
                    } else {
                        Err((
                            false,
                            format!(
                                "{method} {path}: {status} {:?}, expected 200 {want:?}",
                                String::from_utf8_lossy(&got[..got.len().min(200)])
                            ),
                        ))
                    }
                }
                Err(e) => Err((true, format!("{method} {path} (h2 {h2_used}): {e}"))),
            }
        };
        let micros = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        let mut stats = shared.stats.lock().unwrap();
        stats.latency[phase.index()].push(micros);
        match route {
            "grpc" => stats.grpc += 1,
            _ if h2_used => stats.h2 += 1,
            _ => stats.h1 += 1,
        }
        match outcome {
            Ok(()) => match route {
                "api" => stats.sent.api += 1,
                "grpc" => stats.sent.grpc += 1,
                _ => {
                    stats.sent.default += 1;
                    if plan::sampled(&key, plan::DEFAULT_PERCENTAGES[0]) {
                        stats.sent.default_in_low += 1;
                    }
                    if plan::sampled(&key, plan::DEFAULT_PERCENTAGES[1]) {
                        stats.sent.default_in_high += 1;
                    }
                }
            },
            Err((socket, what)) => stats.problem(socket, what),
        }
    }
}

/// Sets the shadows' behaviour for `phase`.
async fn enter(phase: Phase, shadows: &[Upstream; 2]) {
    for shadow in shadows {
        if phase != Phase::Refusing {
            shadow.listen_again().await;
        }
        shadow.set_behaviour(match phase {
            Phase::Healthy | Phase::Refusing => Behaviour::GrpcStatus(0),
            Phase::Stuck => Behaviour::Stuck,
            Phase::Status500 => Behaviour::Status(500),
            Phase::Reset => Behaviour::Reset,
            Phase::Slow => Behaviour::SlowMs(plan::SLOW_MS),
            Phase::GrpcError => Behaviour::GrpcStatus(plan::GRPC_ERROR),
            Phase::BigAnswer => Behaviour::LargeAnswer(plan::BIG_ANSWER_BYTES),
        });
        if phase == Phase::Refusing {
            shadow.stop_listening();
        }
    }
}

async fn admin(addr: SocketAddr, path: &str) -> String {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || admin_get(addr, &path).unwrap_or_default())
        .await
        .expect("admin task")
}

async fn stat(addr: SocketAddr, name: &str) -> u64 {
    let text = admin(addr, &format!("/stats?filter=^{}$", name.replace('.', "\\."))).await;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn metrics(addr: SocketAddr) -> Metrics {
    Metrics::parse(&admin(addr, "/stats/prometheus").await)
}

/// Envoy's memory every 5 s: RSS, anonymous RSS (`/proc`), and the heap
/// in use (`server.memory_allocated`, from the allocator).
#[derive(Default)]
struct Memory {
    rss: Vec<(Duration, u64)>,
    anon: Vec<(Duration, u64)>,
    heap: Vec<(Duration, u64)>,
}

impl Memory {
    async fn sample(&mut self, t: Duration, envoy: &Envoy) {
        self.rss.push((t, envoy.rss_bytes()));
        self.anon.push((t, envoy.rss_anon_bytes()));
        self.heap.push((t, stat(envoy.admin, "server.memory_allocated").await));
    }
}

/// Counters that went down (or vanished) between two scrapes: a counter
/// that restarts from 0 loses counts (seen in a first 30-minute run on the
/// pairs that came and went; see `plan::WITNESSES`).
#[derive(Default)]
struct Resets {
    last: BTreeMap<String, f64>,
    events: Vec<(Duration, String, f64, f64)>,
}

impl Resets {
    fn scrape(&mut self, t: Duration, prometheus: &str) {
        let now: BTreeMap<String, f64> = prometheus
            .lines()
            .filter(|l| l.starts_with("vrata_mirror_") && l.contains("_total{"))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_owned(), value.trim().parse().ok()?))
            })
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
    fn on_kept_pairs(&self) -> Vec<&(Duration, String, f64, f64)> {
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

/// What a push did.
struct PushResult {
    index: u32,
    valid: bool,
    /// How long until it was seen in force (valid) or rejected (invalid).
    took: Option<Duration>,
    problem: Option<String>,
    /// The byte range of Envoy's log written while an invalid push was
    /// being rejected: its refusal lines belong there and nowhere else.
    log_window: Option<(usize, usize)>,
}

/// Sends one request on a new connection (a probe must not ride a
/// connection still draining on the old listener's filter chain).
async fn probe(shared: &Shared, path: &str, key: &str) -> Result<(), String> {
    let client = http1_client();
    let url = format!("http://{}{path}", shared.envoy_addr);
    let (status, body) = send(&client, "GET", &url, &[("x-soak-key", key)], Bytes::new()).await?;
    if status == 200 && body == primary_answer("GET", path, 0).as_bytes() {
        Ok(())
    } else {
        Err(format!("probe {path}: {status}"))
    }
}

/// The configuration tag the witness saw on the copy of `path`, waiting up to 300 ms.
async fn witness_tag(witness: &Upstream, path: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        if let Some(copy) = witness.received().iter().rev().find(|c| c.uri == path) {
            return copy.header("x-soak-config").map(str::to_owned);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Probes `route_prefix` until the witness sees a copy tagged `config`,
/// for up to 10 s; returns how long it took.
async fn until_tagged(
    shared: &Shared,
    witness: &Upstream,
    route_prefix: &str,
    config: u32,
    push: u32,
    since: Instant,
) -> Option<Duration> {
    let key = plan::never_sampled_key(u64::from(push) * 1000);
    for n in 0.. {
        let path = format!("{route_prefix}/p{push}-{n}");
        let sent = probe(shared, &path, &key).await;
        count_probe(shared, route_prefix, &sent);
        if sent.is_ok() && witness_tag(witness, &path).await.as_deref() == Some(config.to_string().as_str()) {
            return Some(since.elapsed());
        }
        if since.elapsed() > Duration::from_secs(10) {
            return None;
        }
    }
    None
}

fn count_probe(shared: &Shared, route_prefix: &str, sent: &Result<(), String>) {
    let mut stats = shared.stats.lock().unwrap();
    stats.h1 += 1;
    match sent {
        Ok(()) if route_prefix == "/probe" => stats.sent.probe += 1,
        Ok(()) => stats.sent.extra += 1,
        Err(e) => stats.problem(true, e.clone()),
    }
}

async fn do_push(shared: &Shared, up: &Upstreams, lds: &LdsConfig, index: u32) -> PushResult {
    let push = plan::push(index);
    let admin_addr = shared.admin;
    let rejected_before = stat(admin_addr, "listener_manager.lds.update_rejected").await;
    let log_before = shared.envoy.log().len();
    let started = Instant::now();
    lds.publish(&bootstrap(up, &push.json));
    let mut result = PushResult {
        index,
        valid: push.valid,
        took: None,
        problem: None,
        log_window: None,
    };
    if push.valid {
        // Where route probe's copies go: the configuration's witness, tagged with its number.
        let mut took = until_tagged(
            shared,
            witness_of(up, push.config),
            "/probe",
            push.config,
            index,
            started,
        )
        .await;
        if plan::has_extra(push.config) {
            let extra = until_tagged(shared, &up.witnesses[0], "/extra", push.config, index, started).await;
            took = match (took, extra) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        } else {
            // Without the entry, route extra's requests (keys out of every
            // sample) are not copied at all.
            let before = up.witnesses[0]
                .received()
                .iter()
                .filter(|c| c.uri.starts_with("/extra"))
                .count();
            let key = plan::never_sampled_key(u64::from(index) * 1000);
            for n in 0..3 {
                let sent = probe(shared, &format!("/extra/q{index}-{n}"), &key).await;
                count_probe(shared, "/extra", &sent);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let after = up.witnesses[0]
                .received()
                .iter()
                .filter(|c| c.uri.starts_with("/extra"))
                .count();
            if after != before {
                result.problem = Some(format!("route extra copied {} times without its entry", after - before));
            }
        }
        result.took = took;
        if took.is_none_or(|t| t > TAKE_EFFECT) && result.problem.is_none() {
            result.problem = Some(format!("in force after {took:?}, over {TAKE_EFFECT:?}"));
        }
    } else {
        loop {
            if stat(admin_addr, "listener_manager.lds.update_rejected").await > rejected_before {
                result.took = Some(started.elapsed());
                // Every worker's refusal is logged by then, or very soon.
                tokio::time::sleep(Duration::from_millis(500)).await;
                result.log_window = Some((log_before, shared.envoy.log().len()));
                break;
            }
            if started.elapsed() > Duration::from_secs(10) {
                result.problem = Some("not rejected within 10 s".to_owned());
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The last good configuration still works.
        let path = format!("/probe/r{index}");
        let key = plan::never_sampled_key(0);
        let sent = probe(shared, &path, &key).await;
        count_probe(shared, "/probe", &sent);
        let tag = witness_tag(witness_of(up, push.config), &path).await;
        if tag.as_deref() != Some(push.config.to_string().as_str()) {
            result.problem = Some(format!(
                "after the rejected push the probe's copy was tagged {tag:?}, expected {}",
                push.config
            ));
        }
    }
    result
}

async fn run(duration: Duration) -> bool {
    let up = Arc::new(Upstreams {
        primary: Upstream::start_counting("primary", Behaviour::Answer).await,
        primary_grpc: GrpcServer::start("primary", grpc::always_ok).await,
        shadows: [
            Upstream::start_counting(plan::SHADOWS[0], Behaviour::GrpcStatus(0)).await,
            Upstream::start_counting(plan::SHADOWS[1], Behaviour::GrpcStatus(0)).await,
        ],
        witnesses: [
            Upstream::start(plan::WITNESSES[0], Behaviour::GrpcStatus(0)).await,
            Upstream::start(plan::WITNESSES[1], Behaviour::GrpcStatus(0)).await,
        ],
    });
    let initial = bootstrap(&up, &plan::plugin_json(0));
    let lds = LdsConfig::new(&initial, "soak");
    lds.publish(&initial);
    let yaml = lds.bootstrap.clone();
    let envoy = tokio::task::spawn_blocking(move || {
        Envoy::start_with(
            &yaml,
            WORKERS,
            &["--drain-time-s", "1", "--drain-strategy", "immediate"],
        )
    })
    .await
    .expect("envoy start");
    let envoy = Arc::new(envoy);
    println!(
        "== soak: {} s, Envoy {} with {WORKERS} workers, vrata_mirror_compare.wasm, listener over LDS; \
         {RATE} requests/s from {CLIENTS} clients; shadow phases of {:?}, a push every {:?}",
        duration.as_secs(),
        envoy_version(),
        plan::PHASE,
        plan::PUSH_EVERY
    );

    let shared = Arc::new(Shared {
        started: Instant::now(),
        stop: AtomicBool::new(false),
        seq: AtomicU64::new(0),
        stats: Mutex::new(ClientStats::default()),
        envoy_addr: envoy.listener,
        admin: envoy.admin,
        envoy: envoy.clone(),
    });
    let mut memory = Memory::default();
    let mut resets = Resets::default();
    memory.sample(Duration::ZERO, &envoy).await;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(client_task(shared.clone())))
        .collect();

    // The shadows' phases, in a task of their own (a push takes the main
    // loop a moment); the pushes and the RSS samples, until the end.
    let phases = {
        let (up, shared) = (up.clone(), shared.clone());
        tokio::spawn(async move {
            let mut phase = Phase::Healthy;
            while !shared.stop.load(Ordering::Relaxed) {
                let current = shared.phase();
                if current != phase {
                    enter(current, &up.shadows).await;
                    phase = current;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let mut pushes: Vec<PushResult> = Vec::new();
    let mut next_push = 1u32;
    let mut next_rss = Duration::from_secs(5);
    let mut next_minute = Duration::from_secs(60);
    let (warm_up, anon_bound) = plan::memory_rule(duration.as_secs());
    loop {
        let now = shared.started.elapsed();
        if now >= duration {
            break;
        }
        if now >= next_rss {
            memory.sample(now, &envoy).await;
            resets.scrape(now, &admin(envoy.admin, "/stats/prometheus").await);
            next_rss += Duration::from_secs(5);
        }
        if now >= next_minute {
            let growth = report::rss_growth(&memory.anon, warm_up)
                .map(|(_, g)| format!("+{} MiB after warm-up", report::mb(g)))
                .unwrap_or_else(|| "warming up".to_owned());
            let last = |v: &[(Duration, u64)]| report::mb(v.last().map_or(0, |(_, b)| *b));
            let stats = shared.stats.lock().unwrap();
            println!(
                "minute {:>3}: RSS {} MiB, anonymous {} MiB ({growth}), heap in use {} MiB; \
                 {} requests, {} differences, {} socket errors",
                now.as_secs() / 60,
                last(&memory.rss),
                last(&memory.anon),
                last(&memory.heap),
                stats.h1 + stats.h2 + stats.grpc,
                stats.differences,
                stats.socket_errors
            );
            next_minute += Duration::from_secs(60);
        }
        let push_at = plan::PUSH_EVERY * next_push;
        if now >= push_at && push_at + Duration::from_secs(3) < duration {
            let result = do_push(&shared, &up, &lds, next_push).await;
            if let Some(problem) = &result.problem {
                println!("push {}: {problem}", result.index);
            }
            pushes.push(result);
            next_push += 1;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Load stops; every copy's timeout passes; then the accounting.
    shared.stop.store(true, Ordering::Relaxed);
    let mut client_panics = 0;
    for client in clients {
        if client.await.is_err() {
            client_panics += 1;
        }
    }
    let stopped = Instant::now();
    phases.await.expect("the phase task");
    enter(Phase::Healthy, &up.shadows).await;
    memory.sample(shared.started.elapsed(), &envoy).await;
    tokio::time::sleep(Duration::from_millis(plan::TIMEOUT_MS) + Duration::from_secs(1)).await;
    let settle_deadline = Instant::now() + Duration::from_secs(10);
    let mut m = metrics(envoy.admin).await;
    while m.sent(None, None) != m.responses(None, None, None) && Instant::now() < settle_deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        m = metrics(envoy.admin).await;
    }
    let settled_after = stopped.elapsed();
    // Idle now: every copy ended.
    memory.sample(shared.started.elapsed(), &envoy).await;

    let stats = std::mem::take(&mut *shared.stats.lock().unwrap());
    let upstreams: Vec<UpstreamCount> = up
        .shadows
        .iter()
        .zip(plan::SHADOWS)
        .map(|(u, name)| (u, name, true))
        .chain(
            up.witnesses
                .iter()
                .zip(plan::WITNESSES)
                .map(|(u, name)| (u, name, false)),
        )
        .map(|(u, name, exact)| UpstreamCount {
            cluster: name.to_owned(),
            received: u.count() as u64,
            answered: u.answered(),
            exact,
        })
        .collect();
    let mut checks = accounting::checks(
        &m,
        &stats.sent,
        plan::GRPC_COPIES,
        &plan::SHADOWS,
        &plan::KEPT_PAIRS,
        &upstreams,
    );

    // Clients.
    checks.push(Check {
        name: "0 client differences".into(),
        ok: stats.differences == 0,
        detail: format!("{} ({:?})", stats.differences, stats.examples),
    });
    checks.push(Check {
        name: "0 socket errors".into(),
        ok: stats.socket_errors == 0 && client_panics == 0,
        detail: format!("{} errors, {client_panics} client tasks failed", stats.socket_errors),
    });
    let primary_http = up.primary.count() as u64;
    let primary_grpc = up.primary_grpc.calls().len() as u64;
    let http_requests = stats.sent.api + stats.sent.default + stats.sent.probe + stats.sent.extra;
    checks.push(Check {
        name: "the primaries received every request once".into(),
        ok: primary_http == http_requests && primary_grpc == stats.sent.grpc,
        detail: format!(
            "HTTP {primary_http} of {http_requests}, gRPC {primary_grpc} of {}",
            stats.sent.grpc
        ),
    });

    // Pushes.
    let valid: Vec<&PushResult> = pushes.iter().filter(|p| p.valid).collect();
    let invalid: Vec<&PushResult> = pushes.iter().filter(|p| !p.valid).collect();
    let slowest = valid.iter().filter_map(|p| p.took).max();
    let push_problems: Vec<String> = pushes
        .iter()
        .filter_map(|p| p.problem.as_ref().map(|e| format!("push {}: {e}", p.index)))
        .collect();
    checks.push(Check {
        name: format!("every valid push in force within {TAKE_EFFECT:?}, every invalid one rejected"),
        ok: push_problems.is_empty() && !valid.is_empty() && !invalid.is_empty(),
        detail: format!(
            "{} valid (slowest {slowest:?}), {} invalid; {push_problems:?}",
            valid.len(),
            invalid.len()
        ),
    });
    let rejected = stat(envoy.admin, "listener_manager.lds.update_rejected").await;
    let succeeded = stat(envoy.admin, "listener_manager.lds.update_success").await;
    checks.push(Check {
        name: "lds.update_rejected = invalid pushes, update_success = valid pushes + the first".into(),
        ok: rejected == invalid.len() as u64 && succeeded == valid.len() as u64 + 1,
        detail: format!("update_rejected {rejected}, update_success {succeeded}"),
    });

    // Health: wasm stats and the log.
    let wasm_stats = admin(envoy.admin, "/stats?filter=wasm").await;
    let bad_stats: Vec<&str> = wasm_stats
        .lines()
        .filter(|l| !l.contains("wasmcustom."))
        .filter(|l| {
            ["fail", "crash", "reload", "panic", "abort"]
                .iter()
                .any(|w| l.contains(w))
        })
        .filter(|l| l.rsplit_once(": ").is_some_and(|(_, v)| v.trim() != "0"))
        .collect();
    let log = envoy.log();
    let windows: Vec<(usize, usize)> = pushes.iter().filter_map(|p| p.log_window).collect();
    let health = report::log_health(&log, &windows);
    let bad_log = health.unexpected;
    let config_errors = health.refusals;
    checks.push(Check {
        name: "no wasm VM failure, reload or panic (stats and log)".into(),
        ok: bad_stats.is_empty() && bad_log.is_empty(),
        detail: format!(
            "stats {bad_stats:?}; log lines {:?} ({config_errors} lines about refused configurations, all while an invalid push was rejected)",
            bad_log.iter().take(5).collect::<Vec<_>>()
        ),
    });

    // Counters that restarted.
    resets.scrape(shared.started.elapsed(), &admin(envoy.admin, "/stats/prometheus").await);
    let kept_resets = resets.on_kept_pairs();
    checks.push(Check {
        name: "no counter of a pair every configuration keeps restarted (scraped every 5 s)".into(),
        ok: kept_resets.is_empty(),
        detail: format!(
            "{} restarts there {:?}; {} restarts of counters of pairs that came and went, first {:?}",
            kept_resets.len(),
            kept_resets.iter().take(3).collect::<Vec<_>>(),
            resets.events.len() - kept_resets.len(),
            resets.events.iter().take(2).collect::<Vec<_>>()
        ),
    });

    // Memory.
    let growth = report::rss_growth(&memory.anon, warm_up);
    checks.push(Check {
        name: format!(
            "Envoy's anonymous RSS grows by at most {} MiB after warm-up ({warm_up:?})",
            report::mb(anon_bound)
        ),
        ok: growth.is_some_and(|(_, g)| g <= anon_bound),
        detail: growth.map_or("no sample after warm-up".into(), |(base, g)| {
            format!(
                "{} MiB at warm-up's end, +{} MiB at most (RSS with the binary's pages: {})",
                report::mb(base),
                report::mb(g),
                report::rss_growth(&memory.rss, warm_up).map_or(String::new(), |(b, g)| format!(
                    "{} MiB, +{} MiB",
                    report::mb(b),
                    report::mb(g)
                ))
            )
        }),
    });
    let heap_warm = memory.heap.iter().find(|(t, _)| *t >= warm_up).map(|(_, b)| *b);
    let heap_idle = memory.heap.last().map_or(0, |(_, b)| *b);
    checks.push(Check {
        name: format!(
            "Envoy's heap in use once idle at most its value at warm-up's end + {} MiB",
            report::mb(HEAP_SLACK)
        ),
        ok: heap_warm.is_some_and(|w| heap_idle <= w + HEAP_SLACK),
        detail: format!(
            "server.memory_allocated {} MiB at warm-up's end (under load), {} MiB idle at the end",
            report::mb(heap_warm.unwrap_or(0)),
            report::mb(heap_idle)
        ),
    });
    checks.push(Check {
        name: "copies ended after the load stopped (in-flight slots and pairs freed)".into(),
        ok: m.sent(None, None) == m.responses(None, None, None),
        detail: format!("settled {settled_after:?} after the load stopped"),
    });

    print_summary(&m, &stats, &memory, warm_up, &pushes, &wasm_stats);
    println!("\n== checks");
    let mut passed = true;
    for check in &checks {
        println!(
            "{} {}: {}",
            if check.ok { "ok  " } else { "FAIL" },
            check.name,
            check.detail
        );
        passed &= check.ok;
    }
    println!(
        "soak: {} ({} checks, {} failed)",
        if passed { "passed" } else { "FAILED" },
        checks.len(),
        checks.iter().filter(|c| !c.ok).count()
    );
    drop(envoy);
    passed
}

#[allow(clippy::too_many_arguments)]
fn print_summary(
    m: &Metrics,
    stats: &ClientStats,
    memory: &Memory,
    warm_up: Duration,
    pushes: &[PushResult],
    wasm_stats: &str,
) {
    let total = stats.h1 + stats.h2 + stats.grpc;
    println!("\n== summary");
    let valid = pushes.iter().filter(|p| p.valid).count();
    let took: Vec<u128> = pushes
        .iter()
        .filter(|p| p.valid)
        .filter_map(|p| p.took.map(|t| t.as_millis()))
        .collect();
    let mut rows = vec![
        vec![
            "client requests".to_owned(),
            format!(
                "{total} (HTTP/1.1 {}, HTTP/2 {}, gRPC {}); differences {}, socket errors {}",
                stats.h1, stats.h2, stats.grpc, stats.differences, stats.socket_errors
            ),
        ],
        vec![
            "config pushes".to_owned(),
            format!(
                "{} ({valid} valid, in force after {} ms at most; {} invalid, all rejected: see checks)",
                pushes.len(),
                took.iter().max().copied().unwrap_or(0),
                pushes.len() - valid
            ),
        ],
        vec!["copies sent".to_owned(), m.sent(None, None).to_string()],
    ];
    let classes: Vec<String> = ResponseClass::all()
        .map(|c| (c, m.responses(None, None, Some(c))))
        .filter(|(_, n)| *n > 0)
        .map(|(c, n)| format!("{} {n}", c.label()))
        .collect();
    rows.push(vec!["copies by class".to_owned(), classes.join(", ")]);
    let skips: Vec<String> = SkipReason::ALL
        .iter()
        .map(|r| (r, m.skipped(None, None, Some(*r))))
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{} {n}", r.label()))
        .collect();
    rows.push(vec![
        "skipped by reason".to_owned(),
        format!("{} ({})", m.skipped(None, None, None), skips.join(", ")),
    ]);
    let results: Vec<String> = vrata_mirror_core::compare::CompareResult::ALL
        .iter()
        .map(|r| (r, m.compared(None, None, Some(*r))))
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{} {n}", r.label()))
        .collect();
    rows.push(vec!["compare results".to_owned(), results.join(", ")]);
    for (name, samples) in [
        ("Envoy RSS", &memory.rss),
        ("Envoy anonymous RSS", &memory.anon),
        ("Envoy heap in use", &memory.heap),
    ] {
        let growth = report::rss_growth(samples, warm_up);
        rows.push(vec![
            name.to_owned(),
            format!(
                "start {} MiB, after warm-up ({}) {} MiB, end (idle) {} MiB; largest growth after warm-up {} MiB",
                report::mb(samples.first().map_or(0, |(_, b)| *b)),
                report::duration(warm_up),
                growth.map(|(b, _)| report::mb(b)).unwrap_or_default(),
                report::mb(samples.last().map_or(0, |(_, b)| *b)),
                growth.map(|(_, g)| report::mb(g)).unwrap_or_default()
            ),
        ]);
    }
    print!("{}", report::table(&["", ""], &rows));

    println!("\nclient latency by shadow phase (all requests sent during the phase):\n");
    let mut latency_rows = Vec::new();
    let mut healthy = stats.latency[Phase::Healthy.index()].clone();
    let healthy_p99 = report::quantile(&mut healthy, 0.99);
    for phase in Phase::CYCLE {
        let mut samples = stats.latency[phase.index()].clone();
        let p99 = report::quantile(&mut samples, 0.99);
        latency_rows.push(vec![
            phase.name().to_owned(),
            samples.len().to_string(),
            report::ms(report::quantile(&mut samples, 0.5)),
            report::ms(p99),
            match (p99, healthy_p99) {
                (Some(p), Some(h)) => format!("{:+.1}", (f64::from(p) - f64::from(h)) / 1000.0),
                _ => "-".to_owned(),
            },
        ]);
    }
    print!(
        "{}",
        report::table(
            &["shadow phase", "requests", "p50 ms", "p99 ms", "p99 vs healthy, ms"],
            &latency_rows
        )
    );

    println!("\nper route and destination:\n");
    let mut per: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for route in ["api", "grpc", "default", "probe", "extra"] {
        for dest in plan::SHADOWS.iter().chain(&plan::WITNESSES) {
            let sent = m.sent(Some(route), Some(dest));
            let skipped = m.skipped(Some(route), Some(dest), None);
            if sent + skipped > 0 {
                per.insert(
                    (route.to_owned(), (*dest).to_owned()),
                    vec![sent.to_string(), skipped.to_string()],
                );
            }
        }
    }
    let per_rows: Vec<Vec<String>> = per.into_iter().map(|((r, d), v)| [vec![r, d], v].concat()).collect();
    print!(
        "{}",
        report::table(&["route", "destination", "sent", "skipped"], &per_rows)
    );
    println!("\nmemory each minute, MiB (RSS / anonymous RSS / heap in use):");
    let per_minute: Vec<String> = memory
        .rss
        .iter()
        .zip(&memory.anon)
        .zip(&memory.heap)
        .filter(|(((t, _), _), _)| t.as_secs() % 60 < 5)
        .map(|(((t, r), (_, a)), (_, h))| {
            format!(
                "{}m {}/{}/{}",
                (t.as_secs() + 30) / 60,
                report::mb(*r),
                report::mb(*a),
                report::mb(*h)
            )
        })
        .collect();
    let mut per_minute = per_minute;
    per_minute.dedup_by(|b, a| a.split(' ').next() == b.split(' ').next());
    if let (Some(r), Some(a), Some(h)) = (memory.rss.last(), memory.anon.last(), memory.heap.last()) {
        per_minute.push(format!(
            "idle {}/{}/{}",
            report::mb(r.1),
            report::mb(a.1),
            report::mb(h.1)
        ));
    }
    println!("{}", per_minute.join(", "));
    println!("\nwasm stats at the end:\n{}", wasm_stats.trim_end());
}
