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
    // api/v1alpha1/dynamic_module_types.go: DynamicModule.
    let dynamic_module = Object(vec![
        (
            "name",
            StringWith(module_name, "^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"),
            true,
        ),
        (
            "filterName",
            StringWith(|s| s.len() <= 253, "at most 253 characters"),
            false,
        ),
        ("config", Any, false),
        ("terminalFilter", Bool, false),
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
                ("dynamicModule", List(Box::new(dynamic_module)), false),
            ]),
            true,
        ),
    ])
}

/// `^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`, at most 253 characters: a dynamic
/// module's name in Envoy Gateway's allow-list and in a policy.
fn module_name(s: &str) -> bool {
    let inner_ok = s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    s.len() <= 253 && inner_ok && edge(s.as_bytes().first()) && edge(s.as_bytes().last())
}

fn envoy_proxy() -> Schema {
    let bootstrap = Object(vec![
        ("type", Enum(&["Merge", "Replace", "JSONPatch"]), false),
        ("value", String, false),
    ]);
    // api/v1alpha1/dynamic_module_types.go: DynamicModuleEntry, DynamicModuleSource.
    let source = Object(vec![
        ("type", Enum(&["Local", "Remote"]), false),
        (
            "local",
            Object(vec![(
                "path",
                StringWith(|s| s.starts_with('/'), "an absolute path"),
                true,
            )]),
            false,
        ),
        (
            "remote",
            Object(vec![
                (
                    "url",
                    StringWith(|s| s.starts_with("http://") || s.starts_with("https://"), "^https?://"),
                    true,
                ),
                (
                    "sha256",
                    StringWith(
                        |s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                        "^[a-f0-9]{64}$",
                    ),
                    true,
                ),
            ]),
            false,
        ),
    ]);
    let module = Object(vec![
        (
            "name",
            StringWith(module_name, "^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"),
            true,
        ),
        ("source", source, true),
        ("doNotClose", Bool, false),
        ("loadGlobally", Bool, false),
    ]);
    Object(vec![
        ("apiVersion", Enum(&["gateway.envoyproxy.io/v1alpha1"]), true),
        ("kind", Enum(&["EnvoyProxy"]), true),
        ("metadata", metadata(), true),
        (
            "spec",
            Object(vec![
                ("bootstrap", bootstrap, false),
                ("concurrency", Int(0, i64::from(i32::MAX)), false),
                ("dynamicModules", List(Box::new(module)), false),
            ]),
            true,
        ),
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
    gateway_with(&["--image", "oci://ghcr.io/example/vrata-mirror:0.1.0"], config, extra)
}

/// `vrata-mirror gateway` with `module` (the module's flags) and `extra`.
fn gateway_with(module: &[&str], config: &str, extra: &[&str]) -> (bool, std::string::String, std::string::String) {
    let file = TempFile::new("plugin.json", config.as_bytes());
    let mut args = vec!["gateway", file.path()];
    args.extend_from_slice(module);
    args.extend(["--namespace", "shop", "--gateway", "infra/eg"]);
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

const NATIVE_SO: &str = "/usr/lib/envoy/modules/libvrata_mirror_native.so";

/// Everything of FULL but the image's flags.
fn full_without_image() -> Vec<&'static str> {
    let mut args = Vec::new();
    let mut i = 0;
    while i < FULL.len() {
        if FULL[i].starts_with("--image") {
            i += 2;
            continue;
        }
        args.push(FULL[i]);
        i += 1;
    }
    args
}

/// `--dynamic-module PATH --concurrency 2`: the policy's `dynamicModule` holds
/// the native host once per worker (filter names `vrata-mirror/worker-<i>-of-2`,
/// the module's per-worker layout), each with the same config; the EnvoyProxy
/// registers the module in its `dynamicModules` allow-list under the name the
/// entries reference, sets `concurrency` to 2, and its bootstrap merge has
/// the clusters but neither stats tags (real labels) nor a buffer limit.
#[test]
fn with_the_native_host_the_policy_loads_the_module_once_per_worker_from_the_allow_list() {
    let mut extra = full_without_image();
    extra.extend(["--concurrency", "2"]);
    let (ok, yaml, stderr) = gateway_with(&["--dynamic-module", NATIVE_SO], CONFIG, &extra);
    assert!(ok, "{stderr}");
    let docs = documents(&yaml);
    assert_eq!(docs.len(), 3, "{yaml}");
    check(&docs[0], &http_route(), "HTTPRoute").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    check(&docs[1], &extension_policy(), "EnvoyExtensionPolicy").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    check(&docs[2], &envoy_proxy(), "EnvoyProxy").unwrap_or_else(|e| panic!("{e}\n{yaml}"));

    let policy = &docs[1]["spec"];
    assert!(policy.get("wasm").is_none(), "{yaml}");
    let filters = policy["dynamicModule"].as_array().unwrap();
    let names: Vec<(&str, &str)> = filters
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["filterName"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("vrata-mirror", "vrata-mirror/worker-0-of-2"),
            ("vrata-mirror", "vrata-mirror/worker-1-of-2")
        ]
    );
    // The filter names are the native host's own layout.
    for (i, (_, filter_name)) in names.iter().enumerate() {
        assert_eq!(
            *filter_name,
            vrata_mirror_render::envoy::dynamic_module_filter_name(u32::try_from(i).unwrap(), 2)
        );
    }
    // Each the wasm policy's config: "routes" keyed by Envoy Gateway's route names.
    let (ok, wasm_yaml, stderr) = gateway(CONFIG, FULL);
    assert!(ok, "{stderr}");
    let wasm_config = &documents(&wasm_yaml)[1]["spec"]["wasm"][0]["config"];
    for filter in filters {
        assert_eq!(filter["config"], *wasm_config);
        vrata_mirror_core::config::parse(filter["config"].to_string().as_bytes()).unwrap();
    }

    let proxy = &docs[2]["spec"];
    assert_eq!(proxy["concurrency"], 2);
    assert_eq!(
        proxy["dynamicModules"],
        json!([{"name": "vrata-mirror", "source": {"type": "Local", "local": {"path": NATIVE_SO}}, "doNotClose": true}])
    );
    let patch = documents(proxy["bootstrap"]["value"].as_str().unwrap()).remove(0);
    let keys: Vec<&str> = patch
        .as_object()
        .unwrap()
        .keys()
        .map(std::string::String::as_str)
        .collect();
    assert_eq!(keys, ["static_resources"], "{patch}");
    let clusters: Vec<&str> = patch["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(clusters, ["api-canary", "search-shadow"]);

    // Fetched over HTTPS, checked against its digest.
    let sha = "ab".repeat(32);
    let url = "https://modules.example.com/libvrata_mirror_native.so";
    let (ok, yaml, stderr) = gateway_with(
        &["--dynamic-module-url", url, "--dynamic-module-sha256", &sha],
        CONFIG,
        &full_without_image(),
    );
    assert!(ok, "{stderr}");
    let docs = documents(&yaml);
    check(&docs[2], &envoy_proxy(), "EnvoyProxy").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(
        docs[2]["spec"]["dynamicModules"][0]["source"],
        json!({"type": "Remote", "remote": {"url": url, "sha256": sha}})
    );
    // The default worker count: 2, on both sides.
    assert_eq!(docs[2]["spec"]["concurrency"], 2);
    assert_eq!(docs[1]["spec"]["dynamicModule"].as_array().unwrap().len(), 2);
}

#[test]
fn the_native_hosts_flags_are_refused_with_one_line_naming_what_is_wrong() {
    let extra = full_without_image();
    for (module, error) in [
        (
            &["--dynamic-module", "libvrata_mirror_native.so"][..],
            "is not an absolute path",
        ),
        (
            &[
                "--dynamic-module-url",
                "ftp://x/y.so",
                "--dynamic-module-sha256",
                &"ab".repeat(32),
            ][..],
            "is not an http(s) URL",
        ),
        (
            &[
                "--dynamic-module-url",
                "https://x/y.so",
                "--dynamic-module-sha256",
                "ABC",
            ][..],
            "is not 64 lower-case hex digits",
        ),
        (
            &["--dynamic-module", NATIVE_SO, "--image-digest", DIGEST][..],
            "are for the wasm module's image",
        ),
    ] {
        let (ok, stdout, stderr) = gateway_with(module, CONFIG, &extra);
        assert!(!ok && stdout.is_empty(), "{module:?}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(error), "{module:?}: {stderr}");
    }
    // --image and --dynamic-module together, or neither: usage errors.
    let (ok, _, stderr) = gateway_with(
        &["--image", "ghcr.io/x/y:1", "--dynamic-module", NATIVE_SO],
        CONFIG,
        &extra,
    );
    assert!(!ok && stderr.contains("cannot be used with"), "{stderr}");
    let (ok, _, stderr) = gateway_with(&[], CONFIG, &extra);
    assert!(!ok && stderr.contains("--image"), "{stderr}");
}
