//! `vrata-mirror gateway`: the manifests it prints hold only fields of the
//! published CRDs (Gateway API v1 HTTPRoute as Envoy Gateway's chart ships
//! it, bundle v1.6.1; Envoy Gateway's EnvoyExtensionPolicy and EnvoyProxy,
//! gateway.envoyproxy.io/v1alpha1), with their types, patterns and ranges;
//! the rules carry the names and weighted backends of "routes"; the config
//! loads in the filter's parser with "routes" keyed by Envoy Gateway's route
//! names; the bootstrap merge is an Envoy bootstrap fragment with the stats
//! tags and the shadow clusters; a digest pins the image.

use crate::schema::{check, documents, Schema, Schema::*};
use crate::{texts, vrata_mirror, TempFile};
use serde_json::{json, Value};

fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
fn dns_subdomain(s: &str) -> bool {
    s.split('.').all(dns_label)
}

fn metadata() -> Schema {
    Object(vec![("name", String, true), ("namespace", String, true)])
}

fn object_ref(kind_default: bool) -> Vec<(&'static str, Schema, bool)> {
    vec![
        (
            "group",
            StringWith(|s| s.is_empty() || dns_subdomain(s), "a DNS subdomain"),
            !kind_default,
        ),
        (
            "kind",
            StringWith(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "a kind"),
            !kind_default,
        ),
        ("name", String, true),
    ]
}

fn http_route() -> Schema {
    let mut parent = object_ref(true);
    parent.extend([
        ("namespace", StringWith(dns_label, "a DNS label"), false),
        ("port", Int(1, 65535), false),
        ("sectionName", StringWith(dns_subdomain, "a DNS subdomain"), false),
    ]);
    let path = Object(vec![
        ("type", Enum(&["Exact", "PathPrefix", "RegularExpression"]), false),
        ("value", StringWith(|s| s.starts_with('/'), "an absolute path"), false),
    ]);
    let mut backend = object_ref(true);
    backend.extend([
        ("namespace", StringWith(dns_label, "a DNS label"), false),
        ("port", Int(1, 65535), false),
        ("weight", Int(0, 1_000_000), false),
    ]);
    let rule = Object(vec![
        ("name", StringWith(dns_subdomain, "a DNS subdomain"), false),
        ("matches", List(Box::new(Object(vec![("path", path, false)]))), false),
        ("backendRefs", List(Box::new(Object(backend))), false),
    ]);
    Object(vec![
        ("apiVersion", Enum(&["gateway.networking.k8s.io/v1"]), true),
        ("kind", Enum(&["HTTPRoute"]), true),
        ("metadata", metadata(), true),
        (
            "spec",
            Object(vec![
                ("parentRefs", List(Box::new(Object(parent))), false),
                (
                    "hostnames",
                    List(Box::new(StringWith(
                        |h| dns_subdomain(h.strip_prefix("*.").unwrap_or(h)),
                        "a hostname",
                    ))),
                    false,
                ),
                ("rules", List(Box::new(rule)), false),
            ]),
            true,
        ),
    ])
}

fn extension_policy() -> Schema {
    let sha = StringWith(
        |s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()),
        "^[a-f0-9]{64}$",
    );
    let mut secret = object_ref(true);
    secret.push(("namespace", StringWith(dns_label, "a DNS label"), false));
    let image = Object(vec![
        ("url", String, true),
        ("sha256", sha, false),
        ("pullSecretRef", Object(secret), false),
    ]);
    let code = Object(vec![
        ("type", Enum(&["HTTP", "Image", "ConfigMap"]), true),
        ("image", image, false),
        ("pullPolicy", Enum(&["IfNotPresent", "Always"]), false),
    ]);
    let wasm = Object(vec![
        ("name", String, false),
        ("rootID", String, false),
        ("code", code, true),
        ("config", Any, false),
        ("failOpen", Bool, false),
        ("env", Object(vec![("hostKeys", List(Box::new(String)), false)]), false),
    ]);
    let mut target = object_ref(false);
    target.push(("sectionName", StringWith(dns_subdomain, "a DNS subdomain"), false));
    Object(vec![
        ("apiVersion", Enum(&["gateway.envoyproxy.io/v1alpha1"]), true),
        ("kind", Enum(&["EnvoyExtensionPolicy"]), true),
        ("metadata", metadata(), true),
        (
            "spec",
            Object(vec![
                ("targetRefs", List(Box::new(Object(target))), false),
                ("wasm", List(Box::new(wasm)), false),
            ]),
            true,
        ),
    ])
}

fn envoy_proxy() -> Schema {
    let bootstrap = Object(vec![
        ("type", Enum(&["Merge", "Replace", "JSONPatch"]), false),
        ("value", String, false),
    ]);
    Object(vec![
        ("apiVersion", Enum(&["gateway.envoyproxy.io/v1alpha1"]), true),
        ("kind", Enum(&["EnvoyProxy"]), true),
        ("metadata", metadata(), true),
        ("spec", Object(vec![("bootstrap", bootstrap, false)]), true),
    ])
}

const CONFIG: &str = r#"{
  "forward": {
    "destinations": [{"destinationId": "api", "weight": 100}],
    "mirror": {"destinationId": "api-canary", "percentage": 10, "removeHeaders": ["authorization"]}
  },
  "routes": {
    "checkout": {"forward": {
      "destinations": [{"destinationId": "checkout-v1", "weight": 90}, {"destinationId": "checkout-v2", "weight": 10}],
      "mirror": null}},
    "search": {"forward": {"mirror": {"destinationId": "search-shadow"}}}
  }
}"#;

const DIGEST: &str = "sha256:ccbe1e338cb58b1651624f74666724fdce9b90eb1ea90768bb06c6a3eb060181";

fn gateway(config: &str, extra: &[&str]) -> (bool, std::string::String, std::string::String) {
    let file = TempFile::new("plugin.json", config.as_bytes());
    let mut args = vec![
        "gateway",
        file.path(),
        "--image",
        "oci://ghcr.io/example/vrata-mirror:0.1.0",
        "--namespace",
        "shop",
        "--gateway",
        "infra/eg",
    ];
    args.extend_from_slice(extra);
    let output = vrata_mirror(&args);
    let (stdout, stderr) = texts(&output);
    (output.status.success(), stdout, stderr)
}

const FULL: &[&str] = &[
    "--hostname",
    "api.shop.example.com",
    "--backend",
    "api=api:8080",
    "--backend",
    "checkout-v1=checkout-v1:8080",
    "--backend",
    "checkout-v2=checkout-v2:8080",
    "--cluster",
    "api-canary=api-canary.shop.svc.cluster.local:8080",
    "--cluster",
    "search-shadow=search-shadow.shop.svc.cluster.local:9090",
    "--route",
    "search=/v2/search",
    "--image-digest",
    DIGEST,
    "--image-pull-secret",
    "registry-credentials",
];

#[test]
fn the_manifests_hold_only_crd_fields_of_the_right_types() {
    let (ok, yaml, stderr) = gateway(CONFIG, FULL);
    assert!(ok, "{stderr}");
    let docs = documents(&yaml);
    assert_eq!(docs.len(), 3, "{yaml}");
    check(&docs[0], &http_route(), "HTTPRoute").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    check(&docs[1], &extension_policy(), "EnvoyExtensionPolicy").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    check(&docs[2], &envoy_proxy(), "EnvoyProxy").unwrap_or_else(|e| panic!("{e}\n{yaml}"));

    let route = &docs[0]["spec"];
    assert_eq!(route["parentRefs"], json!([{"name": "eg", "namespace": "infra"}]));
    let rules = route["rules"].as_array().unwrap();
    let names: Vec<&str> = rules.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["checkout", "search", "default"]);
    assert_eq!(
        rules[0]["matches"],
        json!([{"path": {"type": "PathPrefix", "value": "/checkout"}}])
    );
    assert_eq!(
        rules[0]["backendRefs"],
        json!([{"name": "checkout-v1", "port": 8080, "weight": 90}, {"name": "checkout-v2", "port": 8080, "weight": 10}])
    );
    assert_eq!(rules[1]["matches"][0]["path"]["value"], "/v2/search");
    // search has no destinations: it forwards like the default.
    assert_eq!(rules[1]["backendRefs"], rules[2]["backendRefs"]);
    assert_eq!(
        rules[2]["backendRefs"],
        json!([{"name": "api", "port": 8080, "weight": 100}])
    );

    let wasm = &docs[1]["spec"]["wasm"][0];
    assert_eq!(docs[1]["spec"]["targetRefs"][0]["name"], docs[0]["metadata"]["name"]);
    assert_eq!(wasm["failOpen"], true);
    assert_eq!(wasm["code"]["type"], "Image");
    assert_eq!(
        wasm["code"]["image"]["url"],
        format!("ghcr.io/example/vrata-mirror@{DIGEST}")
    );
    assert_eq!(wasm["code"]["image"]["sha256"], DIGEST.trim_start_matches("sha256:"));
    assert_eq!(
        wasm["code"]["image"]["pullSecretRef"],
        json!({"name": "registry-credentials"})
    );
    // The config is the configuration with "routes" keyed by Envoy
    // Gateway's route names (rule index, match 0, hostname with dots as _).
    let config = &wasm["config"];
    let mut expected: Value = serde_json::from_str(CONFIG).unwrap();
    let routes = expected["routes"].take();
    expected["routes"] = json!({
        "httproute/shop/vrata-mirror/rule/0/match/0/api_shop_example_com": routes["checkout"],
        "httproute/shop/vrata-mirror/rule/1/match/0/api_shop_example_com": routes["search"],
    });
    assert_eq!(*config, expected);
    let parsed = vrata_mirror_core::config::parse(config.to_string().as_bytes()).unwrap();
    let search = parsed.policy_for(Some("httproute/shop/vrata-mirror/rule/1/match/0/api_shop_example_com"));
    assert_eq!(search.mirrors[0].destination, "search-shadow");

    // The bootstrap merge: an Envoy bootstrap fragment (YAML in a string).
    let bootstrap = &docs[2]["spec"]["bootstrap"];
    assert_eq!(bootstrap["type"], "Merge");
    let patch = documents(bootstrap["value"].as_str().unwrap()).remove(0);
    let keys: Vec<&str> = patch
        .as_object()
        .unwrap()
        .keys()
        .map(std::string::String::as_str)
        .collect();
    assert_eq!(keys, ["stats_config", "layered_runtime", "static_resources"]);
    let tags: Vec<&str> = patch["stats_config"]["stats_tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag_name"].as_str().unwrap())
        .collect();
    assert!(tags.contains(&"route") && tags.contains(&"destination"), "{tags:?}");
    let layers = patch["layered_runtime"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "no admin layer: the gateway's bootstrap owns that");
    assert!(patch["static_resources"].get("listeners").is_none());
    let clusters = patch["static_resources"]["clusters"].as_array().unwrap();
    let names: Vec<&str> = clusters.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["api-canary", "search-shadow"]);
    for cluster in clusters {
        assert_eq!(cluster["type"], "STRICT_DNS");
        assert!(
            cluster["circuit_breakers"]["thresholds"][0]["max_requests"].is_u64(),
            "{cluster}"
        );
    }
}

/// The bootstrap fragment, merged as Envoy Gateway merges it (lists
/// appended), is a bootstrap the real Envoy accepts: validated with the
/// fragment's clusters and stats tags in a minimal bootstrap.
#[test]
fn the_bootstrap_merge_is_valid_envoy_configuration() {
    let (ok, yaml, stderr) = gateway(CONFIG, FULL);
    assert!(ok, "{stderr}");
    let docs = documents(&yaml);
    let patch = docs[2]["spec"]["bootstrap"]["value"].as_str().unwrap();
    let bootstrap =
        format!("admin:\n  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}\n{patch}");
    let (valid, log) = vrata_mirror_testkit::envoy::validate(&bootstrap);
    assert!(valid, "{log}\n{bootstrap}");
}

#[test]
fn missing_services_clusters_and_hostnames_are_errors_naming_what_to_give() {
    let without = |flag: &str, value: &str| -> Vec<&'static str> {
        let mut args = Vec::new();
        let mut i = 0;
        while i < FULL.len() {
            if FULL[i] == flag && FULL[i + 1] == value {
                i += 2;
                continue;
            }
            args.push(FULL[i]);
            i += 1;
        }
        args
    };
    for (flag, value, error) in [
        (
            "--backend",
            "checkout-v2=checkout-v2:8080",
            "--backend checkout-v2=SERVICE:PORT",
        ),
        (
            "--cluster",
            "search-shadow=search-shadow.shop.svc.cluster.local:9090",
            "--cluster search-shadow=HOST:PORT",
        ),
        ("--hostname", "api.shop.example.com", "\"routes\" needs --hostname"),
    ] {
        let (ok, stdout, stderr) = gateway(CONFIG, &without(flag, value));
        assert!(!ok && stdout.is_empty(), "{flag} {value}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(error), "{stderr}");
    }
    let (ok, _, stderr) = gateway(
        r#"{"forward": {"destinations": [{"destinationId": "api"}]}, "routes": {"Bad_Name": {"forward": {}}}}"#,
        &["--hostname", "a.example.com", "--backend", "api=api:80"],
    );
    assert!(!ok);
    assert!(stderr.contains("cannot name an HTTPRoute rule"), "{stderr}");
}

/// The schema check itself refuses what the CRDs would.
#[test]
fn the_schema_check_refuses_unknown_fields_and_bad_values() {
    let (ok, yaml, stderr) = gateway(CONFIG, FULL);
    assert!(ok, "{stderr}");
    let docs = documents(&yaml);
    for (doc, schema, path, bad) in [
        (0, http_route(), "/spec/rules/0/backendRefs/0/weight", json!(1_000_001)),
        (0, http_route(), "/spec/rules/0/name", json!("Checkout")),
        (0, http_route(), "/spec/rules/0/backendRef", json!([])),
        (1, extension_policy(), "/spec/wasm/0/code/pullPolicy", json!("Never")),
        (1, extension_policy(), "/spec/wasm/0/code/image/sha256", json!(DIGEST)),
        (1, extension_policy(), "/spec/wasm/0/failOpen", json!("true")),
        (2, envoy_proxy(), "/spec/bootstrap/type", json!("merge")),
    ] {
        let mut broken = docs[doc].clone();
        let (parent, key) = path.rsplit_once('/').unwrap();
        broken.pointer_mut(parent).unwrap()[key] = bad;
        assert!(check(&broken, &schema, "doc").is_err(), "{path}");
    }
}
