//! What the run prints at its end: the summary tables and the checks.

use crate::accounting::Check;
use crate::checks::RunRecord;
use crate::plan::{self, Phase};
use crate::report;
use std::collections::BTreeMap;
use vrata_mirror_core::compare::CompareResult;
use vrata_mirror_core::telemetry::{ResponseClass, SkipReason};

/// The summary: Markdown tables of what the clients sent, what the filter
/// counted, Envoy's memory and latency by shadow phase.
pub fn print(record: &RunRecord) {
    let RunRecord {
        metrics: m,
        clients: stats,
        memory,
        pushes,
        host_stats,
        ..
    } = record;
    let warm_up = record.warm_up;
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
    let results: Vec<String> = CompareResult::ALL
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
    println!("\nthe host's health stats at the end:\n{}", host_stats.trim_end());
}

/// Prints each check and the verdict; whether every check passed.
pub fn print_checks(checks: &[Check]) -> bool {
    println!("\n== checks");
    let mut passed = true;
    for check in checks {
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
    passed
}
