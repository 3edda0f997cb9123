#!/usr/bin/env python3
"""Measures one phase against a running Envoy and prints one JSON line.

  phase.py --label case=wasm100 --label shape=get ... --envoy-pid PID --admin PORT \
           --url URL --script bench/wrk/get.lua [--warmup-script S] --warmup 2 --seconds 8 \
           --connections 32 --ours PID,PID [--shadow-status PORT]

Steps: wait until the machine is quiet (other processes' CPU below a threshold),
warm up with wrk, let in-flight mirror calls settle, snapshot (Envoy CPU and
RSS, /proc/stat, admin stats, shadow nginx's stub_status), run the measured
wrk, snapshot Envoy's CPU and RSS at once, let in-flight calls settle again,
snapshot the stats. Counters are deltas over the measured phase (settle
included); CPU and RSS cover exactly the wrk run. Standard library only.
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
import urllib.parse
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")
# The native host's series are envoy_vrata_mirror_*: read as the wasm host's names.
PROM_LINE = re.compile(r'^(?:envoy_)?(vrata_mirror_\w+?)(?:\{(.*)\})?\s+(\S+)$')


def http_get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def proc_ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_times():
    """Per CPU (busy, total) in clock ticks, from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                v = [int(x) for x in values[:8]]
                idle = v[3] + v[4]
                out[name] = (sum(v) - idle, sum(v))
    return out


def admin_stats(admin):
    """Integer counters and gauges of the shadow and primary clusters and the
    listener, and the vrata_mirror_* counters summed over their labels
    (skipped by reason, responses by class)."""
    stats = {}
    query = urllib.parse.urlencode(
        {"filter": r"^(cluster\.(shadow|primary)\.|http\.ingress\.downstream_rq_)"})
    for line in http_get(f"http://127.0.0.1:{admin}/stats?{query}").splitlines():
        name, _, value = line.partition(": ")
        if value.isdigit():
            stats[name] = int(value)
    for line in http_get(f"http://127.0.0.1:{admin}/stats/prometheus").splitlines():
        m = PROM_LINE.match(line)
        if not m or m.group(1).startswith(("vrata_mirror_response_time",)):
            continue
        name, labels, value = m.groups()
        key = name
        for part in (labels or "").split(","):
            k, _, v = part.partition("=")
            if k in ("reason", "class"):
                key = f"{name}.{v.strip(chr(34))}"
        stats[key] = stats.get(key, 0) + int(float(value))
    return stats


def shadow_nginx_requests(port):
    """Requests the shadow nginx handled (its stub_status, itself included)."""
    if not port:
        return None
    text = http_get(f"http://127.0.0.1:{port}/")
    return int(text.splitlines()[2].split()[2])


def settle(admin, limit):
    """Waits (at most `limit` s) until no call to the shadow is pending or
    active and the mirror counter stopped moving."""
    deadline = time.monotonic() + limit
    last = None
    while True:
        s = admin_stats(admin)
        now = (s.get("cluster.shadow.upstream_rq_active", 0),
               s.get("cluster.shadow.upstream_rq_pending_active", 0),
               s.get("vrata_mirror_requests_total", 0))
        if now[:2] == (0, 0) and now == last:
            return s
        if time.monotonic() > deadline:
            return s
        last = now
        time.sleep(0.1)


def envoy_log_errors(path):
    """Error and critical lines in Envoy's log (a wasm panic shows up here)."""
    try:
        with open(path, errors="replace") as f:
            lines = [l.rstrip() for l in f if "][error]" in l or "][critical]" in l]
    except OSError:
        return {"count": 0, "first": []}
    return {"count": len(lines), "first": lines[:3]}


def others_ticks(busy_before, busy_after, our_ticks):
    return max(0, sum(busy_after) - sum(busy_before) - our_ticks)


def wait_quiet(ours, threshold, limit):
    """Waits until other processes use less than `threshold` % of one core
    over one second (at most `limit` s); returns the seconds waited."""
    start = time.monotonic()
    while True:
        b0 = [b for b, _ in cpu_times().values()]
        o0 = sum(proc_ticks(p) for p in ours)
        time.sleep(1.0)
        b1 = [b for b, _ in cpu_times().values()]
        o1 = sum(proc_ticks(p) for p in ours)
        pct = 100.0 * others_ticks(b0, b1, o1 - o0) / TICK
        waited = time.monotonic() - start
        if pct < threshold or waited >= limit:
            return round(waited, 1), round(pct, 1)


def run_wrk(args, script, seconds):
    cmd = ["taskset", "-c", args.client_cpu, "wrk", "-t1", f"-c{args.connections}",
           f"-d{seconds}s", "--latency", "-s", script, args.url]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [l for l in done.stdout.splitlines() if l.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.exit(f"wrk failed ({' '.join(cmd)}):\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--label", action="append", default=[], help="key=value copied to the output")
    p.add_argument("--envoy-pid", type=int, required=True)
    p.add_argument("--admin", type=int, required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--script", required=True)
    p.add_argument("--warmup-script")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--ours", default="", help="comma-separated pids of our other processes")
    p.add_argument("--shadow-status", type=int)
    p.add_argument("--envoy-log", help="Envoy's log file: its error lines are counted")
    p.add_argument("--settle", type=float, default=2.0)
    p.add_argument("--quiet-threshold", type=float, default=10.0)
    p.add_argument("--quiet-wait", type=float, default=0)
    args = p.parse_args()

    pid = args.envoy_pid
    ours = [int(x) for x in args.ours.split(",") if x]
    out = dict(kv.split("=", 1) for kv in args.label)
    if args.quiet_wait > 0:
        out["quiet_waited_s"], out["quiet_others_pct"] = wait_quiet(
            [pid] + ours, args.quiet_threshold, args.quiet_wait)
    if args.warmup > 0:
        run_wrk(args, args.warmup_script or args.script, args.warmup)
    stats0 = settle(args.admin, args.settle)
    nginx0 = shadow_nginx_requests(args.shadow_status)

    rss0, cpu0, ours0 = rss_kb(pid), proc_ticks(pid), sum(proc_ticks(p) for p in ours)
    sys0 = cpu_times()
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    wrk = run_wrk(args, args.script, args.seconds)
    wall = time.monotonic() - t0
    rss1, cpu1, ours1 = rss_kb(pid), proc_ticks(pid), sum(proc_ticks(p) for p in ours)
    sys1 = cpu_times()
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)

    stats1 = settle(args.admin, args.settle)
    nginx1 = shadow_nginx_requests(args.shadow_status)

    wrk_ticks = round(TICK * ((child1.ru_utime + child1.ru_stime)
                              - (child0.ru_utime + child0.ru_stime)))
    our_ticks = (cpu1 - cpu0) + (ours1 - ours0) + wrk_ticks
    requests = wrk["requests"]
    out.update({
        "requests": requests,
        "rps": requests / (wrk["duration_us"] / 1e6),
        "p50_ms": wrk["p50_us"] / 1000,
        "p99_ms": wrk["p99_us"] / 1000,
        "max_ms": wrk["max_us"] / 1000,
        "non2xx": wrk["non2xx"],
        "socket_errors": wrk["err_connect"] + wrk["err_read"] + wrk["err_write"] + wrk["err_timeout"],
        "socket_error_detail": {k: wrk[k] for k in ("err_connect", "err_read", "err_write", "err_timeout")},
        "envoy_cpu_us_per_req": (cpu1 - cpu0) / TICK * 1e6 / requests if requests else None,
        "envoy_cpu_pct": 100.0 * (cpu1 - cpu0) / TICK / wall,
        "rss_before_mb": rss0 * 1024 / 1e6,
        "rss_after_mb": rss1 * 1024 / 1e6,
        "cpu_busy_pct": {name: round(100.0 * (sys1[name][0] - sys0[name][0])
                                     / max(1, sys1[name][1] - sys0[name][1]), 1)
                         for name in sorted(sys1)},
        "others_cpu_pct": round(100.0 * others_ticks(
            [b for b, _ in sys0.values()], [b for b, _ in sys1.values()], our_ticks)
            / TICK / wall, 1),
        "shadow_nginx_requests": None if nginx0 is None else nginx1 - nginx0 - 1,
        "stats": {k: v - stats0.get(k, 0) for k, v in sorted(stats1.items())
                  if v - stats0.get(k, 0) != 0},
        "gauges_after": {k: stats1[k] for k in ("cluster.shadow.upstream_rq_active",
                                                 "cluster.shadow.upstream_cx_active")
                         if k in stats1},
    })
    if args.envoy_log:
        out["envoy_log_errors"] = envoy_log_errors(args.envoy_log)
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
