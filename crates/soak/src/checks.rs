//! The verdict: every check the soak makes once the load has stopped and
//! every copy has ended, from what the run recorded. No I/O here, so the
//! checks read as one list.

use crate::accounting::{self, Check, Metrics, UpstreamCount};
use crate::load::ClientStats;
use crate::memory::Memory;
use crate::plan;
use crate::pushes::{PushResult, TAKE_EFFECT};
use crate::report;
use crate::resets::Resets;
use std::time::Duration;

/// Envoy's heap in use once idle may exceed its value under load at
/// warm-up's end by this much (the stats of series first seen later).
const HEAP_SLACK: u64 = 4 << 20;

/// What the run recorded, read once the load stopped and the copies ended.
pub struct RunRecord {
    /// The filter's metrics, scraped once every copy had ended (or the
    /// wait for that gave up).
    pub metrics: Metrics,
    pub clients: ClientStats,
    /// Client tasks that panicked (each one a failure the clients did not count).
    pub client_panics: u64,
    /// Requests the primaries received: HTTP, and gRPC calls.
    pub primary_http: u64,
    pub primary_grpc: u64,
    /// What each shadow and witness received and answered.
    pub upstreams: Vec<UpstreamCount>,
    /// How long after the load stopped every copy had ended.
    pub settled_after: Duration,
    pub pushes: Vec<PushResult>,
    /// `listener_manager.lds.update_rejected` and `update_success`.
    pub lds_rejected: u64,
    pub lds_succeeded: u64,
    /// Envoy's `/stats?filter=wasm`.
    pub host_stats: String,
    /// Envoy's whole log.
    pub log: String,
    pub resets: Resets,
    pub memory: Memory,
    /// How long Envoy's memory may grow freely, and by how much after.
    pub warm_up: Duration,
    pub anon_bound: u64,
}

/// Every check, in the order printed.
pub fn all(record: &RunRecord) -> Vec<Check> {
    let RunRecord {
        metrics: m,
        clients: stats,
        client_panics,
        primary_http,
        primary_grpc,
        upstreams,
        settled_after,
        pushes,
        lds_rejected: rejected,
        lds_succeeded: succeeded,
        host_stats,
        log,
        resets,
        memory,
        warm_up,
        anon_bound,
    } = record;
    let mut checks = accounting::checks(
        m,
        &stats.sent,
        plan::GRPC_COPIES,
        &plan::SHADOWS,
        &plan::KEPT_PAIRS,
        upstreams,
    );

    // Clients.
    checks.push(Check {
        name: "0 client differences".into(),
        ok: stats.differences == 0,
        detail: format!("{} ({:?})", stats.differences, stats.examples),
    });
    checks.push(Check {
        name: "0 socket errors".into(),
        ok: stats.socket_errors == 0 && *client_panics == 0,
        detail: format!("{} errors, {client_panics} client tasks failed", stats.socket_errors),
    });
    let http_requests = stats.sent.api + stats.sent.default + stats.sent.probe + stats.sent.extra;
    checks.push(Check {
        name: "the primaries received every request once".into(),
        ok: *primary_http == http_requests && *primary_grpc == stats.sent.grpc,
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
    checks.push(Check {
        name: "lds.update_rejected = invalid pushes, update_success = valid pushes + the first".into(),
        ok: *rejected == invalid.len() as u64 && *succeeded == valid.len() as u64 + 1,
        detail: format!("update_rejected {rejected}, update_success {succeeded}"),
    });

    // Health: wasm stats and the log.
    let bad_stats: Vec<&str> = host_stats
        .lines()
        .filter(|l| !l.contains("wasmcustom."))
        .filter(|l| {
            ["fail", "crash", "reload", "panic", "abort"]
                .iter()
                .any(|w| l.contains(w))
        })
        .filter(|l| l.rsplit_once(": ").is_some_and(|(_, v)| v.trim() != "0"))
        .collect();
    let windows: Vec<(usize, usize)> = pushes.iter().filter_map(|p| p.log_window).collect();
    let health = report::log_health(log, &windows);
    let bad_log = health.unexpected;
    let config_errors = health.refusals;
    checks.push(Check {
        name: "no wasm VM failure, reload or panic, or native host panic (stats and log)".into(),
        ok: bad_stats.is_empty() && bad_log.is_empty(),
        detail: format!(
            "stats {bad_stats:?}; log lines {:?} ({config_errors} lines about refused configurations, all while an invalid push was rejected)",
            bad_log.iter().take(5).collect::<Vec<_>>()
        ),
    });

    // Counters that restarted.
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
    let growth = report::rss_growth(&memory.anon, *warm_up);
    checks.push(Check {
        name: format!(
            "Envoy's anonymous RSS grows by at most {} MiB after warm-up ({warm_up:?})",
            report::mb(*anon_bound)
        ),
        ok: growth.is_some_and(|(_, g)| g <= *anon_bound),
        detail: growth.map_or("no sample after warm-up".into(), |(base, g)| {
            format!(
                "{} MiB at warm-up's end, +{} MiB at most (RSS with the binary's pages: {})",
                report::mb(base),
                report::mb(g),
                report::rss_growth(&memory.rss, *warm_up).map_or(String::new(), |(b, g)| format!(
                    "{} MiB, +{} MiB",
                    report::mb(b),
                    report::mb(g)
                ))
            )
        }),
    });
    let heap_warm = memory.heap.iter().find(|(t, _)| *t >= *warm_up).map(|(_, b)| *b);
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
    checks
}
