//! `vrata-mirror envoy`: errors that name what is wrong; configs that the
//! real Envoy accepts (`envoy --mode validate`); and one that runs: a real
//! Envoy started from the printed config mirrors a request to the shadow.

use crate::{texts, vrata_mirror, TempFile};
use std::time::Duration;
use vrata_mirror_testkit::envoy::{native_module, validate, validate_with, wasm_module, Envoy};
use vrata_mirror_testkit::upstream::{Behaviour, Upstream};

const PLUGIN: &str = r#"{
  "forward": {
    "destinations": [{"destinationId": "primary", "weight": 100}],
    "mirror": {"destinationId": "shadow", "percentage": 100}
  },
  "routes": {
    "api": {
      "forward": {
        "destinations": [{"destinationId": "primary", "weight": 90}, {"destinationId": "canary", "weight": 10}],
        "mirrors": [{"destinationId": "shadow", "removeHeaders": ["authorization"]},
                    {"destinationId": "grpc-shadow", "percentage": 5}]
      }
    },
    "checkout": {"forward": {"mirror": null}}
  }
}"#;

fn envoy(plugin: &str, extra: &[&str]) -> (bool, String, String) {
    render(plugin, "--wasm", &wasm_module(), extra)
}

/// `vrata-mirror envoy PLUGIN FLAG MODULE` on loopback ports, with `extra`.
fn render(plugin: &str, flag: &str, module: &std::path::Path, extra: &[&str]) -> (bool, String, String) {
    let file = TempFile::new("plugin.json", plugin.as_bytes());
    let mut args = vec![
        "envoy",
        file.path(),
        flag,
        module.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let output = vrata_mirror(&args);
    let (stdout, stderr) = texts(&output);
    (output.status.success(), stdout, stderr)
}

const CLUSTERS: &[&str] = &[
    "--cluster",
    "primary=127.0.0.1:8081",
    "--cluster",
    "canary=localhost:8083",
    "--cluster",
    "shadow=127.0.0.1:8082",
    "--cluster",
    "grpc-shadow=[::1]:50052,h2",
];

#[test]
fn a_missing_or_unknown_cluster_is_one_line_naming_it() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--cluster", "primary=127.0.0.1:1"],
            "\"shadow\" (a mirror's destinationId) has no --cluster; add --cluster shadow=HOST:PORT",
        ),
        (
            &["--cluster", "shadow=127.0.0.1:1"],
            "\"primary\" (a destination of route \"default\") has no --cluster; add --cluster primary=HOST:PORT",
        ),
        (
            &[
                "--cluster",
                "primary=127.0.0.1:1",
                "--cluster",
                "shadow=127.0.0.1:2",
                "--cluster",
                "shadw=127.0.0.1:3",
            ],
            "--cluster shadw: unknown cluster; the configuration names \"primary\", \"shadow\"",
        ),
        (
            &["--cluster", "primary=127.0.0.1", "--cluster", "shadow=127.0.0.1:2"],
            "is not HOST:PORT",
        ),
        (
            &["--cluster", "primary=127.0.0.1:1,h3", "--cluster", "shadow=127.0.0.1:2"],
            "unknown option \"h3\"",
        ),
    ];
    let plugin =
        r#"{"forward": {"destinations": [{"destinationId": "primary"}], "mirror": {"destinationId": "shadow"}}}"#;
    for (args, message) in cases {
        let (ok, stdout, stderr) = envoy(plugin, args);
        assert!(!ok, "{args:?} accepted");
        assert!(stdout.is_empty(), "{args:?} printed a config");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: expected {message:?} in {stderr}");
    }
}

#[test]
fn destinations_envoy_cannot_route_are_errors_naming_the_field() {
    let cases = [
        (
            r#"{"routes": {"api": {"forward": {"mirror": {"destinationId": "s"}}}}}"#,
            "forward.destinations: missing; the default route needs at least one destination",
        ),
        (
            r#"{"forward": {"destinations": [{"destinationId": "a", "weight": 0}], "mirror": {"destinationId": "s"}}}"#,
            "forward.destinations: every weight is 0",
        ),
        (
            r#"{"forward": {"destinations": [{"destinationId": "a", "weight": 1}, {"destinationId": "b"}]}}"#,
            "forward.destinations[1].weight: missing while other destinations have one",
        ),
        (
            r#"{"forward": {"destinations": [{"destinationId": "a"}, {"destinationId": "a"}]}}"#,
            "forward.destinations[1].destinationId: \"a\" is listed twice",
        ),
        (
            r#"{"forward": {"destinations": [{"destinationId": "a", "weight": 5000000000}]}}"#,
            "forward.destinations[0].weight: 5000000000 is over Envoy's limit",
        ),
        (
            r#"{"forward": {"mirror": {"destinationId": "s", "percentge": 1}}}"#,
            "vrata-mirror: invalid plugin configuration: forward.mirror.percentge: unknown key",
        ),
    ];
    for (plugin, message) in cases {
        let (ok, _, stderr) = envoy(plugin, &["--cluster", "a=127.0.0.1:1", "--cluster", "s=127.0.0.1:2"]);
        assert!(!ok, "{plugin} accepted");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(message), "{plugin}: expected {message:?} in {stderr}");
    }
}

#[test]
fn native_mirroring_refuses_what_envoy_cannot_do() {
    let (ok, _, stderr) = envoy(
        r#"{"forward": {"destinations": [{"destinationId": "p"}], "mirror": {"destinationId": "s", "sampleBy": "x-user"}}}"#,
        &[
            "--cluster",
            "p=127.0.0.1:1",
            "--cluster",
            "s=127.0.0.1:2",
            "--mirroring",
            "native",
        ],
    );
    assert!(!ok);
    assert!(
        stderr.contains("--mirroring native: forward: the mirror to \"s\" sets sampleBy"),
        "{stderr}"
    );
}

/// Routes, weights, an HTTP/2 shadow, a DNS cluster, IPv6: every mode's
/// output is a bootstrap the real Envoy accepts.
#[test]
fn rendered_configs_pass_envoy_validate() {
    for mode in ["wasm", "native", "none"] {
        let plugin = if mode == "native" {
            r#"{"forward": {"destinations": [{"destinationId": "primary"}], "mirrors": [{"destinationId": "shadow", "percentage": 12.5}, {"destinationId": "grpc-shadow"}]},
                "routes": {"api": {"forward": {"destinations": [{"destinationId": "primary", "weight": 90}, {"destinationId": "canary", "weight": 10}], "mirror": {"destinationId": "shadow", "percentage": 10}}}}}"#
        } else {
            PLUGIN
        };
        let mut args = CLUSTERS.to_vec();
        args.extend(["--mirroring", mode, "--route", "api=/v1/api"]);
        let (ok, yaml, stderr) = envoy(plugin, &args);
        assert!(ok, "{mode}: {stderr}");
        assert!(yaml.contains("weighted_clusters"), "{yaml}");
        assert_eq!(yaml.contains("vrata.mirror"), mode == "wasm", "{mode}");
        assert_eq!(yaml.contains("request_mirror_policies"), mode == "native", "{mode}");
        let (valid, output) = validate(&yaml);
        assert!(valid, "{mode}: envoy --mode validate refused:\n{output}\n{yaml}");
    }
}

#[test]
fn each_route_forwards_to_its_own_weighted_destinations() {
    let (ok, yaml, stderr) = envoy(PLUGIN, CLUSTERS);
    assert!(ok, "{stderr}");
    let api = &yaml[yaml.find("- name: api\n").unwrap()..yaml.find("- name: checkout\n").unwrap()];
    assert!(api.contains("match: { prefix: /api }"), "{api}");
    assert!(api.contains("- { name: primary, weight: 90 }\n"), "{api}");
    assert!(api.contains("- { name: canary, weight: 10 }\n"), "{api}");
    // checkout has no destinations of its own: it forwards like the default.
    let checkout = &yaml[yaml.find("- name: checkout\n").unwrap()..yaml.find("- name: default\n").unwrap()];
    assert!(checkout.contains("match: { prefix: /checkout }") && checkout.contains("{ name: primary, weight: 100 }"));
    let default = &yaml[yaml.find("- name: default\n").unwrap()..];
    assert!(default.contains("match: { prefix: / }"), "{default}");
    // Shadows get the limits; the primary and the canary do not.
    let cluster = |name: &str| -> &str {
        let start = yaml.find(&format!("  - name: {name}\n    type:")).unwrap();
        let rest = &yaml[start + 4..];
        &rest[..rest.find("\n  - name: ").unwrap_or(rest.len())]
    };
    for shadow in ["shadow", "grpc-shadow"] {
        assert!(cluster(shadow).contains("max_requests: 128"), "{shadow}");
        assert!(cluster(shadow).contains("outlier_detection:"), "{shadow}");
    }
    assert!(cluster("grpc-shadow").contains("http2_protocol_options"));
    assert!(
        cluster("grpc-shadow").contains("address: \"::1\""),
        "{}",
        cluster("grpc-shadow")
    );
    assert!(cluster("canary").contains("type: STRICT_DNS"));
    for primary in ["primary", "canary"] {
        assert!(!cluster(primary).contains("circuit_breakers"), "{primary}");
        assert!(!cluster(primary).contains("http2"), "{primary}");
    }
}

/// A real Envoy from the printed config: a request to the listener reaches
/// the primary, and its copy the shadow, with the route's header policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_envoy_from_the_printed_config_mirrors_a_request() {
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let plugin = r#"{
      "forward": {"destinations": [{"destinationId": "primary", "weight": 100}], "mirror": {"destinationId": "shadow"}},
      "routes": {"api": {"forward": {"mirror": {"destinationId": "shadow", "addHeaders": {"x-route": "api"}}}}}
    }"#;
    let primary_cluster = format!("primary=127.0.0.1:{}", primary.port());
    let shadow_cluster = format!("shadow=127.0.0.1:{}", shadow.port());
    let (ok, yaml, stderr) = envoy(plugin, &["--cluster", &primary_cluster, "--cluster", &shadow_cluster]);
    assert!(ok, "{stderr}");
    let envoy = tokio::task::spawn_blocking(move || Envoy::start(&yaml, 1))
        .await
        .unwrap();

    let reply = vrata_mirror_testkit::client::http1("POST", &envoy.url("/api/orders?x=1"), &[], "a body").await;
    assert_eq!(reply.status, 200);
    let copies = shadow.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(copies.len(), 1, "the copy did not arrive");
    assert_eq!(copies[0].uri, "/api/orders?x=1");
    assert_eq!(copies[0].body, b"a body");
    assert_eq!(copies[0].header("x-route"), Some("api"));
    assert_eq!(primary.count(), 1);
    assert!(
        vrata_mirror_testkit::rig::eventually(Duration::from_secs(5), || {
            envoy.metric(
                "vrata_mirror_requests_total",
                &[("route", "api"), ("destination", "shadow")],
            ) == 1.0
        })
        .await,
        "{}",
        envoy.prometheus()
    );
}

/// envoy/envoy.yaml is generated (`make generated`): its first line names
/// the command, and that command still prints the file, byte for byte.
#[test]
fn the_checked_in_envoy_yaml_is_what_its_command_prints() {
    let path = vrata_mirror_testkit::repo_root().join("envoy/envoy.yaml");
    let checked_in = std::fs::read_to_string(&path).unwrap();
    let first = checked_in.lines().next().unwrap();
    let command = first
        .strip_prefix("# Generated by `")
        .and_then(|rest| rest.strip_suffix("`:"))
        .unwrap_or_else(|| panic!("envoy/envoy.yaml does not start with its command: {first}"));
    let words = shell_words::split(command).unwrap();
    assert_eq!(words[..2], ["vrata-mirror", "envoy"], "{command}");
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    let output = vrata_mirror(&args);
    let (generated, stderr) = texts(&output);
    assert!(output.status.success(), "{command}: {stderr}");
    assert!(
        generated == checked_in,
        "envoy/envoy.yaml differs from what its generator prints; run `make generated` (or edit envoy/plugin.json or the renderer, then regenerate)"
    );
}

/// `--dynamic-module`, in place of `--wasm`: the native host (crates/native), once per worker.
fn envoy_native(plugin: &str, extra: &[&str]) -> (bool, String, String) {
    render(plugin, "--dynamic-module", &native_module(), extra)
}

#[test]
fn the_native_hosts_bootstrap_passes_envoy_validate_at_its_worker_count() {
    for workers in ["1", "3"] {
        let mut extra = CLUSTERS.to_vec();
        extra.extend(["--concurrency", workers]);
        let (ok, yaml, stderr) = envoy_native(PLUGIN, &extra);
        assert!(ok, "{stderr}");
        let filters = yaml
            .matches("envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter")
            .count();
        assert_eq!(filters.to_string(), workers, "one filter per worker:\n{yaml}");
        for needed in [
            "metrics_namespace: vrata_mirror",
            "do_not_close: true",
            "http_protocol_options: { enable_trailers: true }",
        ] {
            assert!(yaml.contains(needed), "no {needed:?} in:\n{yaml}");
        }
        assert!(
            !yaml.contains("envoy.filters.http.wasm"),
            "a wasm filter in the native bootstrap:\n{yaml}"
        );
        assert!(
            !yaml.contains("stats_tags"),
            "the native host's metrics have real labels:\n{yaml}"
        );
        let (valid, log) = validate_with(&yaml, &["--concurrency", workers]);
        assert!(valid, "envoy --mode validate --concurrency {workers} refused:\n{log}");
        assert!(log.contains("Dynamic module ABI version v0.2.0 matched."), "{log}");
    }
}

#[test]
fn dynamic_module_is_not_envoys_native_mirroring() {
    let mut extra = CLUSTERS.to_vec();
    extra.extend(["--mirroring", "native"]);
    let (ok, _, stderr) = envoy_native(PLUGIN, &extra);
    assert!(!ok);
    assert!(stderr.contains("--dynamic-module is the native host"), "{stderr}");
    // And --wasm with --dynamic-module is a usage error.
    let output = vrata_mirror(&["envoy", "x.json", "--wasm", "a.wasm", "--dynamic-module", "b.so"]);
    assert!(!output.status.success());
    assert!(texts(&output).1.contains("cannot be used with"), "{}", texts(&output).1);
}
