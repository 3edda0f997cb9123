//! `make soak`: the real Envoy 1.40 with 2 workers and the comparison
//! module, its listener read through LDS from a watched directory; steady
//! GET/POST (small and 200 KiB) over HTTP/1.1 and HTTP/2 and gRPC unary
//! calls; shadows that cycle through their failures every 5 s; a new plugin
//! configuration pushed every 15 s, one in four invalid. Hours of this show
//! what no short test can: a leak, a counter that loses counts, a push that
//! breaks traffic.
//!
//! Asserts: no client-visible difference and no socket error, every copy
//! accounted for (accounting.rs), RSS growth after warm-up within a bound,
//! every valid push in force within 2 s and every invalid one rejected, no
//! wasm VM failure. Prints a summary (Markdown tables).
//!
//! One job a file: the upstreams and Envoy's configuration (topology.rs),
//! the client load (load.rs), the shadows' phases (phases.rs), the pushes
//! (pushes.rs), memory samples (memory.rs) and counter restarts
//! (resets.rs), the final checks (checks.rs) and what is printed
//! (summary.rs); what happens when (plan.rs), the copy accounting
//! (accounting.rs) and the figures (report.rs) are pure and unit-tested.
//! This file starts everything and runs the clock.
//!
//! `vrata-mirror-soak [--seconds N]` (default 120). Exit status 1 when a
//! check fails.

// A test program: a failed expectation stops it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod accounting;
mod admin;
mod checks;
mod load;
mod memory;
mod phases;
mod plan;
mod pushes;
mod report;
mod resets;
mod summary;
mod topology;

use accounting::UpstreamCount;
use checks::RunRecord;
use load::{ClientStats, Shared, CLIENTS, RATE};
use memory::Memory;
use plan::Phase;
use pushes::PushResult;
use resets::Resets;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use topology::{bootstrap, Host, Upstreams, WORKERS};
use vrata_mirror_testkit::envoy::{envoy_version, Envoy};
use vrata_mirror_testkit::grpc::{self, GrpcServer};
use vrata_mirror_testkit::lds::LdsConfig;
use vrata_mirror_testkit::upstream::{Behaviour, Upstream};

fn main() {
    let mut seconds: u64 = 120;
    let mut host = Host::Wasm;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--seconds takes a number")
            }
            "--host" => {
                host = args
                    .next()
                    .as_deref()
                    .and_then(Host::parse)
                    .expect("--host takes wasm or native")
            }
            "-h" | "--help" => {
                println!("vrata-mirror-soak [--seconds N] [--host wasm|native]   (default 120, wasm; see make soak)");
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
    let passed = runtime.block_on(run(Duration::from_secs(seconds), host));
    // Leave the runtime's stuck tasks (a stuck shadow's handlers) behind.
    runtime.shutdown_timeout(Duration::from_secs(1));
    if !passed {
        std::process::exit(1);
    }
}

async fn run(duration: Duration, host: Host) -> bool {
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
    let initial = bootstrap(&up, &plan::plugin_json(0), host);
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
        "== soak: {} s, Envoy {} with {WORKERS} workers, {}, listener over LDS; \
         {RATE} requests/s from {CLIENTS} clients; shadow phases of {:?}, a push every {:?}",
        duration.as_secs(),
        envoy_version(),
        host.module(),
        plan::PHASE,
        plan::PUSH_EVERY
    );

    let shared = Arc::new(Shared {
        host,
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
        .map(|_| tokio::spawn(load::client_task(shared.clone())))
        .collect();

    // The shadows' phases run beside; the pushes and the memory samples
    // here, until the end.
    let phases = phases::spawn(up.clone(), shared.clone());
    let mut push_results: Vec<PushResult> = Vec::new();
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
            resets.scrape(now, &admin::get(envoy.admin, "/stats/prometheus").await);
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
            let result = pushes::push_config(&shared, &up, &lds, next_push).await;
            if let Some(problem) = &result.problem {
                println!("push {}: {problem}", result.index);
            }
            push_results.push(result);
            next_push += 1;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Load stops; every copy's timeout passes; then the accounting.
    shared.stop.store(true, Ordering::Relaxed);
    let mut client_panics: u64 = 0;
    for client in clients {
        if client.await.is_err() {
            client_panics += 1;
        }
    }
    let stopped = Instant::now();
    phases.await.expect("the phase task");
    phases::enter(Phase::Healthy, &up.shadows).await;
    memory.sample(shared.started.elapsed(), &envoy).await;
    tokio::time::sleep(Duration::from_millis(plan::TIMEOUT_MS) + Duration::from_secs(1)).await;
    let settle_deadline = Instant::now() + Duration::from_secs(10);
    let mut m = admin::metrics(envoy.admin).await;
    while m.sent(None, None) != m.responses(None, None, None) && Instant::now() < settle_deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        m = admin::metrics(envoy.admin).await;
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
    let lds_rejected = admin::stat(envoy.admin, "listener_manager.lds.update_rejected").await;
    let lds_succeeded = admin::stat(envoy.admin, "listener_manager.lds.update_success").await;
    let host_stats = admin::get(envoy.admin, host.health_stats()).await;
    let log = envoy.log();
    resets.scrape(
        shared.started.elapsed(),
        &admin::get(envoy.admin, "/stats/prometheus").await,
    );
    let record = RunRecord {
        metrics: m,
        clients: stats,
        client_panics,
        primary_http: up.primary.count() as u64,
        primary_grpc: up.primary_grpc.calls().len() as u64,
        upstreams,
        settled_after,
        pushes: push_results,
        lds_rejected,
        lds_succeeded,
        host_stats,
        log,
        resets,
        memory,
        warm_up,
        anon_bound,
    };
    let checks = checks::all(&record);
    summary::print(&record);
    let passed = summary::print_checks(&checks);
    drop(envoy);
    passed
}
