#!/usr/bin/env python3
"""Renders the benchmark's configs (standard library only).

  render_config.py envoy CASE --listen L --admin A --primary P --shadow S --wasm FILE
      An Envoy bootstrap (JSON, which Envoy reads as YAML) for one bench case.
  render_config.py nginx --dir DIR --name NAME --port P [--status-port T]
      An nginx config answering 200 "ok\\n" to anything on 127.0.0.1:P.

The Envoy config has the shape of envoy/envoy.yaml: one listener, the routes
`api` and `default` forwarding with weighted_clusters to `primary`, the
`shadow` cluster with the same connect timeout, circuit breakers and outlier
detection, and the same stats_tags. Only mirroring differs per case.
"""
import argparse
import json
import sys

# case -> (mirroring, percentage); the shadow's address is chosen by
# shadow_port_for in bench/lib.sh.
CASES = {
    "none": (None, 0),
    "native100": ("native", 100),
    "native10": ("native", 10),
    "wasm0": ("wasm", 0),
    "wasm10": ("wasm", 10),
    "wasm100": ("wasm", 100),
    "nativedead": ("native", 100),
    "wasmdead": ("wasm", 100),
    "nativeslow": ("native", 100),
    "wasmslow": ("wasm", 100),
}

# Copied from envoy/envoy.yaml (shadow cluster and bootstrap stats_tags);
# check_reference() warns when that file no longer says the same.
SHADOW_CONNECT_TIMEOUT = "0.25s"
SHADOW_CIRCUIT_BREAKERS = {
    "thresholds": [{
        "priority": "DEFAULT",
        "max_connections": 128,
        "max_pending_requests": 128,
        "max_requests": 128,
        "max_retries": 0,
    }]
}
SHADOW_OUTLIER_DETECTION = {
    "split_external_local_origin_errors": True,
    "consecutive_local_origin_failure": 5,
    "enforcing_consecutive_local_origin_failure": 100,
    "enforcing_consecutive_5xx": 0,
    "enforcing_consecutive_gateway_failure": 0,
    "enforcing_success_rate": 0,
    "interval": "1s",
    "base_ejection_time": "5s",
    "max_ejection_percent": 100,
}
STATS_TAGS = [
    {"tag_name": name, "regex": f"({name}=\\.=(.*?);\\.;)"}
    for name in ("route", "destination", "reason", "class")
]


def check_reference(path):
    """Warn (stderr) if envoy/envoy.yaml's shadow settings differ from ours."""
    try:
        text = open(path, encoding="utf-8").read()
    except OSError:
        return
    expected = [f"connect_timeout: {SHADOW_CONNECT_TIMEOUT}"]
    expected += [f"{k}: {v}" for k, v in SHADOW_CIRCUIT_BREAKERS["thresholds"][0].items()]
    expected += [f"{k}: {str(v).lower() if isinstance(v, bool) else v}"
                 for k, v in SHADOW_OUTLIER_DETECTION.items()]
    missing = [line for line in expected if line not in text]
    if missing:
        print(f"warning: {path} no longer contains {missing}; "
              "update bench/render_config.py to match", file=sys.stderr)


def address(port):
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def cluster(name, port, **extra):
    return {
        "name": name,
        "type": "STATIC",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address(port)}}]}],
        },
        **extra,
    }


def envoy_config(case, listen, admin, primary, shadow, wasm):
    mirroring, percentage = CASES[case]
    route = {"weighted_clusters": {"clusters": [{"name": "primary", "weight": 100}]}}
    if mirroring == "native":
        route["request_mirror_policies"] = [{
            "cluster": "shadow",
            "runtime_fraction": {"default_value": {
                "numerator": percentage, "denominator": "HUNDRED"}},
        }]
    http_filters = []
    if mirroring == "wasm":
        plugin = {"forward": {"mirror": {"destinationId": "shadow", "percentage": percentage}}}
        http_filters.append({
            "name": "vrata.mirror",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": "vrata_mirror",
                    "root_id": "vrata_mirror",
                    "failure_policy": "FAIL_OPEN",
                    "vm_config": {
                        "vm_id": "vrata_mirror",
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": wasm}},
                    },
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": json.dumps(plugin),
                    },
                },
            },
        })
    http_filters.append({
        "name": "envoy.filters.http.router",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    })
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                 "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "codec_type": "AUTO",
        "route_config": {
            "name": "local",
            "virtual_hosts": [{
                "name": "all",
                "domains": ["*"],
                "routes": [
                    {"name": "api", "match": {"prefix": "/api"}, "route": route},
                    {"name": "default", "match": {"prefix": "/"}, "route": route},
                ],
            }],
        },
        "http_filters": http_filters,
    }
    return {
        "node": {"id": "vrata-mirror-bench", "cluster": "vrata-mirror-bench"},
        "admin": {"address": address(admin)},
        "stats_config": {"stats_tags": STATS_TAGS},
        "static_resources": {
            "listeners": [{
                "name": "ingress",
                "address": address(listen),
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm,
                }]}],
            }],
            "clusters": [
                cluster("primary", primary, connect_timeout="1s"),
                cluster("shadow", shadow,
                        connect_timeout=SHADOW_CONNECT_TIMEOUT,
                        circuit_breakers=SHADOW_CIRCUIT_BREAKERS,
                        outlier_detection=SHADOW_OUTLIER_DETECTION),
            ],
        },
    }


def nginx_config(directory, name, port, status_port):
    status = ""
    if status_port:
        # stub_status counts every request this nginx instance handled.
        status = f"""
    server {{
        listen 127.0.0.1:{status_port};
        location / {{ stub_status; }}
    }}"""
    return f"""# generated by bench/render_config.py
daemon off;
master_process off;
worker_processes 1;
pid {directory}/nginx-{name}.pid;
error_log {directory}/nginx-{name}.error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_max_body_size 0;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    client_body_temp_path {directory}/nginx-{name}-body;
    proxy_temp_path {directory}/nginx-{name}-proxy;
    fastcgi_temp_path {directory}/nginx-{name}-fastcgi;
    uwsgi_temp_path {directory}/nginx-{name}-uwsgi;
    scgi_temp_path {directory}/nginx-{name}-scgi;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\\n"; }}
    }}{status}
}}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    e = sub.add_parser("envoy")
    e.add_argument("case", choices=sorted(CASES))
    for flag in ("--listen", "--admin", "--primary", "--shadow"):
        e.add_argument(flag, type=int, required=True)
    e.add_argument("--wasm", required=True)
    e.add_argument("--reference", default="envoy/envoy.yaml")
    n = sub.add_parser("nginx")
    n.add_argument("--dir", required=True)
    n.add_argument("--name", required=True)
    n.add_argument("--port", type=int, required=True)
    n.add_argument("--status-port", type=int)
    args = parser.parse_args()
    if args.what == "envoy":
        check_reference(args.reference)
        json.dump(envoy_config(args.case, args.listen, args.admin, args.primary,
                               args.shadow, args.wasm), sys.stdout, indent=1)
        print()
    else:
        sys.stdout.write(nginx_config(args.dir, args.name, args.port, args.status_port))


if __name__ == "__main__":
    main()
