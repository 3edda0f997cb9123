#!/usr/bin/env python3
"""Turns the benchmark's raw results (one JSON line per measured phase, from
bench/phase.py) into the markdown report: the side-by-side table (medians
across rounds), the shadow side, the module size, the targets, the memory
check, and every error. Exits 1 if any case had errors. Standard library only.

  report.py results.jsonl --wasm FILE --envoy BINARY --wall-seconds N --settings TEXT
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys

CASE_ORDER = ["none", "native100", "native10", "floor0", "wasm0", "wasm10", "floor100", "wasm100", "wasmrate",
              "nativedead", "wasmdead", "nativeslow", "wasmslow", "dyn0", "dyn100", "dyndead",
              "wasmcompare", "wasmsecondary"]
SHAPE_NAMES = {"get": "GET", "post": "POST 16 KiB"}
# The case each one is compared with in the "vs native" column.
NATIVE_OF = {"wasm100": "native100", "wasm10": "native10", "wasmdead": "nativedead",
             "wasmslow": "nativeslow", "wasm0": "none",
             "dyn100": "native100", "dyndead": "nativedead", "dyn0": "none"}
# Wasm cases whose shadow is healthy: the mirror counter must equal what the
# shadow answered, in every round.
HEALTHY_WASM = ("wasm0", "wasm10", "wasm100", "wasmrate", "dyn0", "dyn100")
# The comparison cases (vrata_mirror_compare.wasm): wasmsecondary's copies go
# to two destinations (the candidate and its secondary), so they are paired
# with each other, not with the shadow count.
# "Shadow count": requests Envoy actually sent to the shadow over a
# connection, i.e. that the shadow received. Not upstream_rq_completed: that
# one also counts Envoy's local replies (503 for a refused connection or a full
# circuit breaker, 504 for a timeout), so it is not 0 for a dead shadow.
SHADOW_COUNT = "cluster.shadow.upstream_rq_total"
MIRROR_COUNTER = "vrata_mirror_requests_total"
MODULE_LIMIT = 200 * 1024


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=0):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}".replace(",", " ") if digits == 0 else f"{value:.{digits}f}"


class Group:
    """The rounds of one (case, shape)."""

    def __init__(self, rows):
        self.rows = rows
        self.case = rows[0]["case"]
        self.shape = rows[0]["shape"]

    def med(self, key):
        return median([r.get(key) for r in self.rows])

    def stat(self, name):
        return median([r["stats"].get(name, 0) for r in self.rows])

    def stats_with_prefix(self, prefix):
        names = sorted({k for r in self.rows for k in r["stats"] if k.startswith(prefix)})
        return {n[len(prefix):]: self.stat(n) for n in names}

    def total(self, key):
        return sum(r.get(key) or 0 for r in self.rows)

    @property
    def is_wasm(self):
        """The filter's cases, either host (wasm*, and dyn*: the dynamic module)."""
        return self.case.startswith(("wasm", "dyn"))

    def rss_growth(self):
        return median([growth(r) for r in self.rows])


def ratio(a, b):
    return a / b if a is not None and b else None


def header(args, rows):
    try:
        version = subprocess.run([args.envoy, "--version"], capture_output=True, text=True,
                                 check=False).stdout.split("version:")[-1].strip()
    except OSError:
        version = "?"
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                                text=True, check=False).stdout.strip() or "?"
    except OSError:
        commit = "?"
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    data = open(args.wasm, "rb").read()
    rounds = max([int(r["round"]) for r in rows if r["kind"] == "case"] or [0])
    return [
        "# vrata-mirror benchmark: wasm filter vs Envoy's native mirroring",
        "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- commit: {commit}",
        f"- Envoy: {version}; `--concurrency 1`, pinned to core 0; wrk, nginx and the shadows on core 1",
        f"- machine: {os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}",
        f"- module: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}…",
        f"- settings: {args.settings}",
        f"- wall time of the run: {args.wall_seconds // 60} min {args.wall_seconds % 60} s",
        "",
        f"Medians over {rounds} round(s); each case run is a fresh Envoy. "
        "Ratios compare medians of the same request shape.",
        "",
    ]


def main_table(groups, noisy_pct):
    out = [
        "## Results",
        "",
        "| case | shape | req/s | vs none | vs native | p50 ms | p99 ms | Envoy CPU µs/req "
        "| RSS before → after MB | mirror counter | shadow count | non-2xx | socket errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for g in groups:
        none = find(groups, "none", g.shape)
        native = find(groups, NATIVE_OF.get(g.case), g.shape)
        noisy = max(r["others_cpu_pct"] for r in g.rows) > noisy_pct
        out.append("| " + " | ".join([
            g.case + (" †" if noisy else ""),
            SHAPE_NAMES.get(g.shape, g.shape),
            fmt(g.med("rps")),
            fmt(ratio(g.med("rps"), none.med("rps")) if none else None, 2),
            fmt(ratio(g.med("rps"), native.med("rps")), 2) if native else "—",
            fmt(g.med("p50_ms"), 2),
            fmt(g.med("p99_ms"), 2),
            fmt(g.med("envoy_cpu_us_per_req"), 1),
            f"{fmt(g.med('rss_before_mb'), 1)} → {fmt(g.med('rss_after_mb'), 1)}",
            fmt(g.stat(MIRROR_COUNTER)) if g.is_wasm else "n/a",
            fmt(g.stat(SHADOW_COUNT)),
            str(g.total("non2xx")),
            str(g.total("socket_errors")),
        ]) + " |")
    out += [
        "",
        "- *mirror counter*: `vrata_mirror_requests_total` (summed over labels), delta over the "
        "measured phase; *shadow count*: Envoy's `cluster.shadow.upstream_rq_total` (requests "
        "Envoy sent to the shadow over a connection, i.e. that the shadow received), same phase "
        "(`upstream_rq_completed` would also count Envoy's local 503/504 replies for refused "
        "connections, a full circuit breaker and timeouts). Both include the copies still in "
        "flight when wrk stopped (the script waits up to 2 s for them).",
        "- *Envoy CPU µs/req*: utime+stime of the whole Envoy process over the wrk run, divided by "
        "the requests wrk completed; *RSS*: VmRSS right before and right after the wrk run.",
        "- *non-2xx* and *socket errors* are totals over all rounds (wrk's counts).",
        f"- † other processes on the machine used more than {noisy_pct:.0f} % of a core "
        "during at least one round of this row, even after repeating it (see the next table): "
        "treat it as noisy.",
        "",
    ]
    return out


def shadow_table(groups):
    out = [
        "## Shadow side and machine load (medians)",
        "",
        "| case | shape | sent to shadow | nginx received | completed incl. local replies "
        "| cx_connect_fail | pending_failure_eject | pending_overflow | rq_timeout | healthy_panic "
        "| filter skipped | filter responses | req/s by round | CPU µs/req by round "
        "| Envoy CPU % | core 0 / core 1 busy % | others' CPU % (max) | runs repeated |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for g in groups:
        skipped = g.stats_with_prefix("vrata_mirror_skipped_total.")
        responses = g.stats_with_prefix("vrata_mirror_responses_total.")
        busy = [median([r["cpu_busy_pct"].get(c) for r in g.rows]) for c in ("cpu0", "cpu1")]
        out.append("| " + " | ".join([
            g.case, SHAPE_NAMES.get(g.shape, g.shape),
            fmt(g.stat(SHADOW_COUNT)),
            fmt(g.med("shadow_nginx_requests")) if not g.case.endswith(("dead", "slow")) else "—",
            fmt(g.stat("cluster.shadow.upstream_rq_completed")),
            fmt(g.stat("cluster.shadow.upstream_cx_connect_fail")),
            fmt(g.stat("cluster.shadow.upstream_rq_pending_failure_eject")),
            fmt(g.stat("cluster.shadow.upstream_rq_pending_overflow")),
            fmt(g.stat("cluster.shadow.upstream_rq_timeout")),
            fmt(g.stat("cluster.shadow.lb_healthy_panic")),
            ", ".join(f"{k} {fmt(v)}" for k, v in skipped.items() if v) or "—",
            ", ".join(f"{k} {fmt(v)}" for k, v in responses.items() if v) or "—",
            " / ".join(fmt(r["rps"]) for r in g.rows),
            " / ".join(fmt(r["envoy_cpu_us_per_req"], 0) for r in g.rows),
            fmt(g.med("envoy_cpu_pct")),
            " / ".join(fmt(b) for b in busy),
            f"{fmt(g.med('others_cpu_pct'))} ({fmt(max(r['others_cpu_pct'] for r in g.rows))})",
            str(sum(int(r.get("attempt", 1)) - 1 for r in g.rows)),
        ]) + " |")
    out += [
        "",
        "- Shadow columns are Envoy's `cluster.shadow.*` counters over the measured phase; "
        "*nginx received* is the shadow nginx's own request count (stub_status), healthy cases "
        "only. *healthy_panic*: requests routed to the shadow although it was ejected (one host, "
        "so the cluster is below its panic threshold and Envoy uses it anyway).",
        "- *filter skipped* / *filter responses*: `vrata_mirror_skipped_total` by reason and "
        "`vrata_mirror_responses_total` by class (wasm cases).",
        "- *by round*: the values the medians come from, in round order; their spread is the "
        "noise of this machine.",
        "- *Envoy CPU %*: of one core over the wrk run; *others' CPU %*: every CPU tick on the "
        "machine not spent by Envoy, nginx, the shadows or wrk, in % of one core (includes some "
        "softirq time of our own loopback traffic); *runs repeated*: runs thrown away and run "
        "again because other processes were busy.",
        "",
    ]
    return out


def paired(groups, case, base, shape):
    """Per round, (case run, base run) of one shape: each pair ran minutes
    apart at most, so the machine's slow drift cancels out of the pair."""
    a, b = find(groups, case, shape), find(groups, base, shape)
    if not (a and b):
        return []
    base_by_round = {r["round"]: r for r in b.rows}
    return [(r, base_by_round[r["round"]]) for r in a.rows if r["round"] in base_by_round]


def floor_figures(groups, case, base, shape):
    """Paired medians: (req/s case ÷ base, CPU µs/req case − base, pairs)."""
    pairs = paired(groups, case, base, shape)
    if not pairs:
        return None
    return (median([a["rps"] / b["rps"] for a, b in pairs if b["rps"]]),
            median([a["envoy_cpu_us_per_req"] - b["envoy_cpu_us_per_req"] for a, b in pairs]),
            len(pairs))


def floors_section(groups):
    """Our module against the floors (issue 13): floor0, a filter that does
    nothing, under wasm0; floor100, a mirror that does only what every
    proxy-wasm mirror must, under wasm100. native100 for context."""
    rows = []
    for shape in ("get", "post"):
        zero = floor_figures(groups, "wasm0", "floor0", shape)
        full = floor_figures(groups, "wasm100", "floor100", shape)
        native = floor_figures(groups, "floor100", "native100", shape)
        if not (zero or full):
            continue
        rows.append("| " + " | ".join([
            SHAPE_NAMES[shape],
            f"{fmt(full[0], 3)}" if full else "n/a",
            f"{full[1]:+.1f}" if full else "n/a",
            f"{fmt(zero[0], 3)}" if zero else "n/a",
            f"{zero[1]:+.1f}" if zero else "n/a",
            f"{fmt(native[0], 3)}" if native else "n/a",
            str(max(f[2] for f in (zero, full) if f)),
        ]) + " |")
    if not rows:
        return []
    return [
        "## Against the floor (paired medians)",
        "",
        "The part of a mirrored request that is this filter's own: `floor100` is a mirror that "
        "does only what every proxy-wasm mirror must (one header read, the body chunks copied, "
        "`dispatch_http_call` at end of stream, the answer ignored: `bench/floor/mirror`), "
        "`floor0` a filter that does nothing (`bench/floor`); both have our module's exports "
        "trimmed the same way. Each figure is the median over rounds of one run against the "
        "other run of the same round and shape.",
        "",
        "| shape | wasm100 ÷ floor100 req/s | CPU above floor100 µs/req | wasm0 ÷ floor0 req/s "
        "| CPU above floor0 µs/req | floor100 ÷ native100 req/s (context) | pairs |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ] + rows + [""]


def dyn_section(groups):
    """The native host (the dynamic module, issue 21) against Envoy's own
    mirror, paired per round: dyn100 ÷ native100 (the target: ≥ 1.0 × its
    req/s at no more than its CPU per request), wasm100 ÷ native100 of the
    same rounds for context, dyn0 ÷ none and dyndead ÷ nativedead."""
    def ratios(case, base, shape):
        pairs = paired(groups, case, base, shape)
        if not pairs:
            return None
        return (median([a["rps"] / b["rps"] for a, b in pairs if b["rps"]]),
                median([a["envoy_cpu_us_per_req"] / b["envoy_cpu_us_per_req"]
                        for a, b in pairs if b["envoy_cpu_us_per_req"]]),
                [a["rps"] / b["rps"] for a, b in pairs if b["rps"]],
                len(pairs))
    rows = []
    for shape in ("get", "post"):
        for case, base in (("dyn100", "native100"), ("wasm100", "native100"), ("dyn0", "none"),
                           ("dyndead", "nativedead")):
            r = ratios(case, base, shape)
            if not r:
                continue
            rows.append("| " + " | ".join([
                SHAPE_NAMES[shape], f"{case} ÷ {base}", fmt(r[0], 2), fmt(r[1], 2),
                ", ".join(f"{x:.2f}" for x in r[2]), str(r[3])]) + " |")
    if not rows:
        return []
    return [
        "## The native host (paired ratios)",
        "",
        "`dyn*` run the filter as an Envoy dynamic module (`libvrata_mirror_native.so`, the "
        "same worker core as the wasm module). Each figure is the median over rounds of one "
        "run against the other run of the same round and shape.",
        "",
        "| shape | pair | req/s ratio | Envoy CPU/req ratio | req/s ratio per round | pairs |",
        "|---|---|--:|--:|---|--:|",
    ] + rows + [""]


def compare_section(groups):
    """The comparison module (issue 23): wasmcompare (`compare` on every
    request) against wasm100 (mirroring only), and wasmsecondary (noise
    cancellation: a second copy, to the secondary, and the field table in
    shared data) against wasmcompare, paired per round."""
    rows = []
    for shape in ("get", "post"):
        for case, base in (("wasmcompare", "wasm100"), ("wasmsecondary", "wasmcompare")):
            pairs = paired(groups, case, base, shape)
            if not pairs:
                continue
            rps = [a["rps"] / b["rps"] for a, b in pairs if b["rps"]]
            cpu = [a["envoy_cpu_us_per_req"] - b["envoy_cpu_us_per_req"] for a, b in pairs]
            rows.append("| " + " | ".join([
                SHAPE_NAMES[shape], f"{case} ÷ {base}", fmt(median(rps), 2), fmt(median(cpu), 1),
                ", ".join(f"{x:.2f}" for x in rps), str(len(pairs))]) + " |")
    if not rows:
        return []
    return [
        "## Comparison and noise cancellation (paired)",
        "",
        "`wasmcompare` and `wasmsecondary` run `vrata_mirror_compare.wasm` with `\"compare\": "
        "{\"body\": \"json\"}` on every request, `wasmsecondary` with a `secondary` (the shadow's "
        "nginx under a second cluster name): each request then makes two copies and counts its "
        "fields in shared data. Medians over rounds of one run against the other of the same round.",
        "",
        "| shape | pair | req/s ratio | Envoy CPU/req difference µs | req/s ratio per round | pairs |",
        "|---|---|--:|--:|---|--:|",
    ] + rows + [""]


def find(groups, case, shape):
    return next((g for g in groups if g.case == case and g.shape == shape), None)


def targets(groups, module_size, mem):
    out = ["## Targets", ""]

    def line(ok, text):
        status = "n/a (not measured)" if ok is None else ("MET" if ok else "NOT MET")
        out.append(f"- **{status}** {text}")

    def rps_at_least(shape, case, base, factor):
        """The median req/s of `case` against `factor` × that of `base`, same shape."""
        name = SHAPE_NAMES[shape]
        measured, reference = find(groups, case, shape), find(groups, base, shape)
        if not (measured and reference):
            line(None, f"{name}: {case} vs {base} (req/s)")
            return
        a, b = measured.med("rps"), reference.med("rps")
        line(a >= factor * b, f"{name}: {case} req/s ≥ {factor:.2f} × {base}: {fmt(a)} vs "
             f"{fmt(factor * b)} ({base} {fmt(b)}; ratio {fmt(a / b, 2)})")

    for shape in ("get", "post"):
        name = SHAPE_NAMES[shape]
        rps_at_least(shape, "wasm100", "native100", 0.90)
        w100, n100 = find(groups, "wasm100", shape), find(groups, "native100", shape)
        if w100 and n100:
            a, b = w100.med("envoy_cpu_us_per_req"), n100.med("envoy_cpu_us_per_req")
            line(a <= b + 10, f"{name}: wasm100 Envoy CPU/req ≤ native100 + 10 µs: "
                 f"{fmt(a, 1)} µs vs {fmt(b + 10, 1)} µs (native100 {fmt(b, 1)} µs; "
                 f"difference {a - b:+.1f} µs)")
        else:
            line(None, f"{name}: wasm100 vs native100 (CPU/req)")
        rps_at_least(shape, "wasm0", "none", 0.92)
        rps_at_least(shape, "wasmdead", "nativedead", 1.2)
        w0 = find(groups, "wasm0", shape)
        ws = find(groups, "wasmslow", shape)
        if ws and w0:
            a, b = ws.med("p99_ms"), w0.med("p99_ms")
            line(a <= 1.2 * b, f"{name}: wasmslow p99 ≤ 1.2 × wasm0 p99: {fmt(a, 2)} ms vs "
                 f"{fmt(1.2 * b, 2)} ms (wasm0 {fmt(b, 2)} ms)")
        else:
            line(None, f"{name}: wasmslow p99 vs wasm0 p99")
        if ws:
            slow_growth = ws.rss_growth()
            line(slow_growth <= 10, f"{name}: Envoy RSS growth over the wasmslow phase ≤ 10 MB: "
                 f"{slow_growth:+.1f} MB (median; rounds: "
                 + ", ".join(f"{growth(r):+.1f}" for r in ws.rows)
                 + ")")
        else:
            line(None, f"{name}: RSS growth over the wasmslow phase")
    for shape in ("get", "post"):
        name = SHAPE_NAMES[shape]
        rps_at_least(shape, "dyn100", "native100", 1.0)
        d100, n100 = find(groups, "dyn100", shape), find(groups, "native100", shape)
        if d100 and n100:
            a, b = d100.med("envoy_cpu_us_per_req"), n100.med("envoy_cpu_us_per_req")
            line(a <= b, f"{name}: dyn100 Envoy CPU/req ≤ native100's: {fmt(a, 1)} µs vs {fmt(b, 1)} µs "
                 f"(difference {a - b:+.1f} µs)")
        else:
            line(None, f"{name}: dyn100 vs native100 (CPU/req)")
    for shape in ("get", "post"):
        name = SHAPE_NAMES[shape]
        full = floor_figures(groups, "wasm100", "floor100", shape)
        if full:
            line(full[0] >= 0.95, f"{name}: wasm100 req/s ≥ 0.95 × floor100 (paired median): {full[0]:.3f}")
            line(full[1] <= 5, f"{name}: wasm100 Envoy CPU ≤ floor100 + 5 µs/req (paired median): {full[1]:+.1f} µs")
        else:
            line(None, f"{name}: wasm100 against floor100")
        zero = floor_figures(groups, "wasm0", "floor0", shape)
        if zero:
            line(abs(zero[1]) <= 1, f"{name}: wasm0 Envoy CPU within 1 µs/req of floor0 (paired median): "
                 f"{zero[1]:+.1f} µs")
        else:
            line(None, f"{name}: wasm0 against floor0")
    line(module_size <= MODULE_LIMIT,
         f"module ≤ 200 KiB ({MODULE_LIMIT} bytes): {module_size} bytes ({module_size / 1024:.1f} KiB)")
    steady = mem.get(("wasm100", "steady"))
    if steady:
        g = median([growth(r) for r in steady])
        none_steady = mem.get(("none", "steady"))
        ref = f"; none: {median([growth(r) for r in none_steady]):+.1f} MB" if none_steady else ""
        line(g <= 2, f"16 MiB uploads, wasm100: Envoy RSS growth over the steady phase ≤ 2 MB: "
             f"{g:+.1f} MB (median{ref})")
        share = filter_share(mem)
        if share is not None:
            line(share <= 2, f"16 MiB uploads: the filter's share of Envoy's RSS growth "
                 f"(wasm100 minus none, both phases) ≤ 2 MB: {share:+.1f} MB")
        phases = [r for key, rows in mem.items() if key[0] == "wasm100" for r in rows]
        skipped = sum(r["stats"].get("vrata_mirror_skipped_total.body_too_large", 0) for r in phases)
        copies = sum(r["stats"].get(MIRROR_COUNTER, 0) for r in phases)
        uploads = sum(r["requests"] for r in phases)
        line(skipped >= uploads > 0 and copies == 0,
             f"16 MiB uploads, wasm100: skipped{{reason=\"body_too_large\"}} rose by {skipped} "
             f"for {uploads} completed uploads (it also counts uploads cut off when wrk stops); "
             f"copies sent: {copies}")
    else:
        line(None, "16 MiB uploads: RSS growth and body_too_large skips")
    out.append("")
    return out


def growth(r):
    return r["rss_after_mb"] - r["rss_before_mb"]


def memory_section(mem):
    """mem: (case, phase) -> the rows of every round."""
    if not mem:
        return []
    out = [
        "## Memory check: 16 MiB POST uploads (over the default maxBodyBytes of 1 MiB)",
        "",
        "Same concurrency as above; the primary reads every body before answering "
        "(bench/upload_sink.py). Per round, a fresh Envoy: `first` runs right after a 16 KiB POST "
        "warm-up, so Envoy's own connection buffers grow here (with or without the filter); "
        "`steady` runs the same load again on the same Envoy. Medians over rounds.",
        "",
        "| config | phase | uploads/s | MB/s | p99 ms | RSS before → after MB | growth MB (rounds) "
        "| copies sent | skipped body_too_large | non-2xx | socket errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for case in ("none", "wasm100"):
        for phase in ("first", "steady"):
            rows = mem.get((case, phase))
            if not rows:
                continue
            stat = lambda name: median([r["stats"].get(name, 0) for r in rows])
            rps = median([r["rps"] for r in rows])
            out.append("| " + " | ".join([
                case, phase, fmt(rps, 1), fmt(rps * 16 * 1024 * 1024 / 1e6),
                fmt(median([r["p99_ms"] for r in rows]), 1),
                f"{fmt(median([r['rss_before_mb'] for r in rows]), 1)} → "
                f"{fmt(median([r['rss_after_mb'] for r in rows]), 1)}",
                f"{median([growth(r) for r in rows]):+.1f} ("
                + ", ".join(f"{growth(r):+.1f}" for r in rows) + ")",
                fmt(stat(MIRROR_COUNTER)) if case != "none" else "n/a",
                fmt(stat("vrata_mirror_skipped_total.body_too_large")) if case != "none" else "n/a",
                str(sum(r["non2xx"] for r in rows)), str(sum(r["socket_errors"] for r in rows)),
            ]) + " |")
    share = filter_share(mem)
    if share is not None:
        out += ["", f"The filter's share of the growth: {share:+.1f} MB (median growth over both "
                "phases with wasm100 minus the same without the filter)."]
    out.append("")
    return out


def filter_share(mem):
    """Median RSS growth over first+steady with wasm100 minus the same for none."""
    def total(case):
        firsts = {r.get("round"): r for r in mem.get((case, "first"), [])}
        values = [s["rss_after_mb"] - firsts[s.get("round")]["rss_before_mb"]
                  for s in mem.get((case, "steady"), []) if s.get("round") in firsts]
        return median(values)
    w, n = total("wasm100"), total("none")
    return None if w is None or n is None else w - n


def checks(groups):
    """What the counters say about each failure mode (informational)."""
    out = ["## Checks", ""]
    for g in groups:
        name = f"{g.case} {SHAPE_NAMES.get(g.shape, g.shape)}"
        if g.case == "nativedead":
            out.append(f"- {name}: Envoy's own stats show the dead shadow: "
                       f"{fmt(g.stat('cluster.shadow.upstream_cx_connect_fail'))} connection "
                       f"failures, {fmt(g.stat('cluster.shadow.upstream_rq_pending_failure_eject'))} "
                       f"copies failed before sending, {fmt(g.stat('cluster.shadow.lb_healthy_panic'))} "
                       "routed in panic mode (median per run).")
        if g.is_wasm:
            for r in g.rows:
                sent = r["stats"].get(MIRROR_COUNTER, 0)
                ended = sum(v for k, v in r["stats"].items()
                            if k.startswith("vrata_mirror_responses_total."))
                if sent != ended:
                    out.append(f"- {name} round {r['round']}: {sent} copies sent but {ended} "
                               "ended (responses_total) within the phase plus 2 s (calls still "
                               "in flight, or counted at the phase boundary).")
        if g.case in ("wasmdead", "wasmslow", "dyndead"):
            skipped = g.stats_with_prefix("vrata_mirror_skipped_total.")
            responses = g.stats_with_prefix("vrata_mirror_responses_total.")
            out.append(f"- {name}: copies the filter sent, per run: {fmt(g.stat(MIRROR_COUNTER))} "
                       f"(ended as: {', '.join(f'{k} {fmt(v)}' for k, v in responses.items()) or 'none'}) "
                       f"and skipped {', '.join(f'{k} {fmt(v)}' for k, v in skipped.items()) or 'none'}.")
        if g.case == "wasmrate":
            # The rate cap that binds, next to wasm100 (the same, uncapped).
            seconds = median([r["requests"] / r["rps"] for r in g.rows if r.get("rps")])
            sent, limited = g.stat(MIRROR_COUNTER), g.stat("vrata_mirror_skipped_total.rate_limited")
            line = (f"- {name}: maxRequestsPerSecond 1000 (one Envoy worker): {fmt(sent)} copies sent "
                    f"({fmt(sent / seconds if seconds else None)}/s), {fmt(limited)} skipped as "
                    f"rate_limited, {fmt(g.stat('vrata_mirror_skipped_total.rate_unavailable'))} as "
                    "rate_unavailable (median per run)")
            w100 = find(groups, "wasm100", g.shape)
            if w100:
                a, b = g.med("envoy_cpu_us_per_req"), w100.med("envoy_cpu_us_per_req")
                line += (f"; req/s {fmt(g.med('rps'))} vs wasm100 {fmt(w100.med('rps'))} "
                         f"(ratio {fmt(ratio(g.med('rps'), w100.med('rps')), 2)}), Envoy CPU/req "
                         f"{fmt(a, 1)} µs vs wasm100 {fmt(b, 1)} µs"
                         + (f" ({a - b:+.1f} µs)" if a is not None and b is not None else ""))
            out.append(line + ".")
        if g.case == "nativeslow":
            out.append(f"- {name}: {fmt(g.stat('cluster.shadow.upstream_rq_pending_overflow'))} "
                       "copies refused by the full circuit breaker, "
                       f"{fmt(g.stat('cluster.shadow.upstream_rq_timeout'))} timed out, "
                       f"{fmt(median([r['gauges_after'].get('cluster.shadow.upstream_rq_active', 0) for r in g.rows]))} "
                       "still active at the end (median per run).")
    out.append("")
    return out if len(out) > 3 else []


def errors(rows, groups):
    found = []
    for r in rows:
        where = f"{r['case']} {r.get('shape', r.get('phase'))} round {r.get('round', '-')}"
        if r["non2xx"] or r["socket_errors"]:
            found.append(f"{where}: {r['non2xx']} non-2xx responses, socket errors "
                         f"{r['socket_error_detail']}")
        log = r.get("envoy_log_errors") or {}
        if log.get("count"):
            found.append(f"{where}: {log['count']} error lines in Envoy's log, e.g. "
                         + " / ".join(log["first"]))
        if r["kind"] == "case" and r["case"] in HEALTHY_WASM:
            counter = r["stats"].get(MIRROR_COUNTER, 0)
            shadow = r["stats"].get(SHADOW_COUNT, 0)
            nginx = r.get("shadow_nginx_requests")
            if not counter == shadow == nginx:
                found.append(f"{where}: mirror counter {counter} != shadow count {shadow} "
                             f"(shadow nginx received {nginx}); filter stats: "
                             + json.dumps({k: v for k, v in r["stats"].items()
                                           if k.startswith("vrata_mirror")}))
        if r["kind"] == "mem" and r["case"] == "wasm100" and r["stats"].get(MIRROR_COUNTER, 0):
            found.append(f"{where}: {r['stats'][MIRROR_COUNTER]} copies of 16 MiB uploads were "
                         "sent (over maxBodyBytes: must be skipped)")
    return found


def main():
    p = argparse.ArgumentParser()
    p.add_argument("results")
    p.add_argument("--wasm", required=True)
    p.add_argument("--envoy", required=True)
    p.add_argument("--wall-seconds", type=int, default=0)
    p.add_argument("--settings", default="")
    p.add_argument("--noisy-pct", type=float, default=10.0)
    args = p.parse_args()
    with open(args.results) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    cases = [r for r in rows if r["kind"] == "case"]
    keys = sorted({(r["shape"], r["case"]) for r in cases},
                  key=lambda k: (k[0] != "get", CASE_ORDER.index(k[1])))
    groups = [Group([r for r in cases if (r["shape"], r["case"]) == k]) for k in keys]
    mem = {}
    for r in rows:
        if r["kind"] == "mem":
            mem.setdefault((r["case"], r["phase"]), []).append(r)
    module_size = os.path.getsize(args.wasm)

    out = header(args, rows)
    out += main_table(groups, args.noisy_pct)
    out += shadow_table(groups)
    out += checks(groups)
    out += ["## Module", "", f"`vrata_mirror.wasm`: {module_size} bytes ({module_size / 1024:.1f} KiB)", ""]
    out += floors_section(groups)
    out += dyn_section(groups)
    out += compare_section(groups)
    out += targets(groups, module_size, mem)
    out += memory_section(mem)
    found = errors(rows, groups)
    if found:
        out += ["## ERRORS", ""] + [f"- {e}" for e in found] + [""]
    else:
        out += ["## Errors", "", "None: every response was 2xx, no socket errors, no error lines "
                "in Envoy's logs, and for wasm0/wasm10/wasm100/wasmrate the mirror counter equals the "
                "shadow count and what the shadow nginx received, in every round.", ""]
    print("\n".join(out))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
