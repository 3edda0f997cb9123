//! `vrata-mirror istio`: the manifests it prints hold only fields of the
//! Istio CRDs (extensions.istio.io/v1alpha1 WasmPlugin, networking.istio.io/v1
//! VirtualService), with their types and enumerations; the routes carry the
//! names and weighted destinations of "routes"; the pluginConfig is the
//! configuration, and loads in the filter's parser.

use crate::{texts, vrata_mirror, TempFile};
use serde_json::{json, Value};

use crate::schema::{check, documents, Schema, Schema::*};

fn metadata() -> Schema {
    Object(vec![("name", String, true), ("namespace", String, true)])
}

fn wasm_plugin() -> Schema {
    Object(vec![
        ("apiVersion", Enum(&["extensions.istio.io/v1alpha1"]), true),
        ("kind", Enum(&["WasmPlugin"]), true),
        ("metadata", metadata(), true),
        (
            "spec",
            Object(vec![
                (
                    "selector",
                    Object(vec![("matchLabels", MapOf(Box::new(String)), false)]),
                    false,
                ),
                (
                    "url",
                    StringWith(
                        |u| {
                            ["oci://", "https://", "http://", "file://"]
                                .iter()
                                .any(|s| u.starts_with(s))
                        },
                        "oci://, https://, http:// or file://",
                    ),
                    true,
                ),
                (
                    "sha256",
                    StringWith(
                        |s| s.is_empty() || (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())),
                        "^(|[a-f0-9]{64})$",
                    ),
                    false,
                ),
                (
                    "imagePullPolicy",
                    Enum(&["UNSPECIFIED_POLICY", "IfNotPresent", "Always"]),
                    false,
                ),
                ("imagePullSecret", String, false),
                ("phase", Enum(&["UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"]), false),
                ("priority", Int(i64::from(i32::MIN), i64::from(i32::MAX)), false),
                ("pluginName", String, false),
                ("pluginConfig", AnyObject, false),
                ("type", Enum(&["UNSPECIFIED_PLUGIN_TYPE", "HTTP", "NETWORK"]), false),
                ("failStrategy", Enum(&["FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"]), false),
            ]),
            true,
        ),
    ])
}

fn string_match() -> Schema {
    OneOf(vec![("exact", String), ("prefix", String), ("regex", String)])
}

fn virtual_service() -> Schema {
    let destination = Object(vec![
        ("host", String, true),
        ("subset", String, false),
        (
            "port",
            Object(vec![("number", Int(0, i64::from(u32::MAX)), false)]),
            false,
        ),
    ]);
    let http_route = Object(vec![
        ("name", String, false),
        (
            "match",
            List(Box::new(Object(vec![
                ("name", String, false),
                ("uri", string_match(), false),
                ("headers", MapOf(Box::new(string_match())), false),
            ]))),
            false,
        ),
        (
            "route",
            List(Box::new(Object(vec![
                ("destination", destination, true),
                ("weight", Int(0, i64::from(i32::MAX)), false),
            ]))),
            false,
        ),
    ]);
    Object(vec![
        ("apiVersion", Enum(&["networking.istio.io/v1"]), true),
        ("kind", Enum(&["VirtualService"]), true),
        ("metadata", metadata(), true),
        (
            "spec",
            Object(vec![
                ("hosts", List(Box::new(String)), false),
                ("gateways", List(Box::new(String)), false),
                ("http", List(Box::new(http_route)), false),
            ]),
            true,
        ),
    ])
}

const CONFIG: &str = r#"{
  "forward": {
    "destinations": [{"destinationId": "outbound|8080||api.shop.svc.cluster.local", "weight": 100}],
    "mirror": {
      "destinationId": "outbound|8080||api-canary.shop.svc.cluster.local",
      "percentage": 10,
      "sampleBy": "x-user-id",
      "removeHeaders": ["authorization", "cookie"]
    }
  },
  "routes": {
    "checkout": {"forward": {
      "destinations": [{"destinationId": "outbound|8080|v1|checkout.shop.svc.cluster.local", "weight": 90},
                       {"destinationId": "outbound|8080|v2|checkout.shop.svc.cluster.local", "weight": 10}],
      "mirror": null}},
    "search": {"forward": {"mirror": {"destinationId": "outbound|9090||search-shadow.shop.svc.cluster.local"}}}
  }
}"#;

fn istio(config: &str, extra: &[&str]) -> (bool, std::string::String, std::string::String) {
    let file = TempFile::new("plugin.json", config.as_bytes());
    let mut args = vec![
        "istio",
        file.path(),
        "--url",
        "oci://ghcr.io/example/vrata-mirror:0.1.0",
        "--namespace",
        "shop",
        "--selector",
        "app=api",
        "--host",
        "api.shop.svc.cluster.local",
    ];
    args.extend_from_slice(extra);
    let output = vrata_mirror(&args);
    let (stdout, stderr) = texts(&output);
    (output.status.success(), stdout, stderr)
}

#[test]
fn the_manifests_hold_only_crd_fields_of_the_right_types() {
    let (ok, yaml, stderr) = istio(
        CONFIG,
        &[
            "--sha256",
            &"ab".repeat(32),
            "--gateway",
            "istio-system/gw",
            "--route",
            "search=/v2/search",
        ],
    );
    assert!(ok, "{stderr}");
    let docs = documents(&yaml);
    assert_eq!(docs.len(), 2, "{yaml}");
    // The header shows the sidecar annotation of envoy/istio/wasm-plugin.yaml.
    let reference =
        std::fs::read_to_string(vrata_mirror_testkit::repo_root().join("envoy/istio/wasm-plugin.yaml")).unwrap();
    let at = reference.find("proxy.istio.io/config: |").unwrap();
    let start = reference[..at].rfind('\n').unwrap() + 1;
    let end = start + reference[start..].find("    spec:").unwrap();
    for line in reference[start..end].lines().filter(|l| !l.trim().is_empty()) {
        // Indented 8 spaces there, after "#   " here.
        let shown = format!("#   {}", &line[8..]);
        assert!(yaml.contains(&shown), "the header lacks {shown:?}:\n{yaml}");
    }
    check(&docs[0], &wasm_plugin(), "WasmPlugin").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    check(&docs[1], &virtual_service(), "VirtualService").unwrap_or_else(|e| panic!("{e}\n{yaml}"));

    let spec = &docs[0]["spec"];
    assert_eq!(spec["failStrategy"], "FAIL_OPEN");
    assert_eq!(spec["phase"], "STATS");
    assert_eq!(spec["selector"]["matchLabels"], json!({"app": "api"}));
    // pluginConfig is the configuration itself, and the filter loads it.
    let original: Value = serde_json::from_str(CONFIG).unwrap();
    assert_eq!(spec["pluginConfig"], original);
    vrata_mirror_core::config::parse(spec["pluginConfig"].to_string().as_bytes()).unwrap();

    let http = docs[1]["spec"]["http"].as_array().unwrap();
    let names: Vec<&str> = http.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["checkout", "search", "default"]);
    assert_eq!(http[0]["match"], json!([{"uri": {"prefix": "/checkout"}}]));
    assert_eq!(
        http[0]["route"],
        json!([
            {"destination": {"host": "checkout.shop.svc.cluster.local", "subset": "v1", "port": {"number": 8080}}, "weight": 90},
            {"destination": {"host": "checkout.shop.svc.cluster.local", "subset": "v2", "port": {"number": 8080}}, "weight": 10},
        ])
    );
    // search has no destinations: it forwards like the default.
    assert_eq!(http[1]["match"], json!([{"uri": {"prefix": "/v2/search"}}]));
    assert_eq!(http[1]["route"], http[2]["route"]);
    assert!(http[2].get("match").is_none(), "the default route matches everything");
    assert_eq!(docs[1]["spec"]["gateways"], json!(["istio-system/gw"]));
}

/// The schema check itself refuses what Istio would.
#[test]
fn the_schema_check_refuses_unknown_fields_and_bad_values() {
    let good = json!({"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
                      "metadata": {"name": "a", "namespace": "b"}, "spec": {"url": "oci://x"}});
    check(&good, &wasm_plugin(), "w").unwrap();
    for (path, bad) in [
        ("/spec/failStrategy", json!("FAIL_OPENED")),
        ("/spec/urls", json!("oci://x")),
        ("/spec/sha256", json!("xyz")),
        ("/spec/priority", json!("high")),
    ] {
        let mut doc = good.clone();
        let (parent, key) = path.rsplit_once('/').unwrap();
        doc.pointer_mut(parent).unwrap()[key] = bad;
        assert!(check(&doc, &wasm_plugin(), "w").is_err(), "{path}");
    }
}

#[test]
fn destinations_that_are_not_sidecar_clusters_are_errors_naming_the_field() {
    let (ok, stdout, stderr) = istio(
        r#"{"forward": {"destinations": [{"destinationId": "primary"}], "mirror": {"destinationId": "outbound|80||s.ns.svc.cluster.local"}}}"#,
        &[],
    );
    assert!(!ok && stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("forward.destinations[0].destinationId: \"primary\" is not an Istio sidecar cluster name"),
        "{stderr}"
    );
    let (ok, _, stderr) = istio(
        r#"{"forward": {"destinations": [{"destinationId": "outbound|80||p.ns.svc.cluster.local"}], "mirror": {"destinationId": "shadow"}}}"#,
        &[],
    );
    assert!(!ok);
    assert!(
        stderr.contains("forward.mirrors[0].destinationId: \"shadow\" is not an Istio sidecar cluster name"),
        "{stderr}"
    );
}

/// A digest pins the WasmPlugin twice: `@sha256:` in the URL (Istio's cache
/// keys the module by it) and the sha256 field (checked against the pulled
/// manifest's digest); `--image-layout` reads it from the layout.
#[test]
fn an_image_digest_pins_the_url_and_the_sha256_field() {
    let digest = "sha256:ccbe1e338cb58b1651624f74666724fdce9b90eb1ea90768bb06c6a3eb060181";
    let layout = crate::TempDir::new();
    let module = vrata_mirror_testkit::envoy::wasm_module();
    let built = crate::image::image(&module, &layout.0.join("image"), "compat");
    let layout_dir = layout.0.join("image");
    for (pin, expected) in [
        (vec!["--image-digest", digest], digest.to_owned()),
        (vec!["--image-layout", layout_dir.to_str().unwrap()], built),
    ] {
        let mut args = pin.clone();
        args.extend([
            "--image-pull-policy",
            "Always",
            "--image-pull-secret",
            "registry-credentials",
        ]);
        let (ok, yaml, stderr) = istio(CONFIG, &args);
        assert!(ok, "{stderr}");
        let docs = documents(&yaml);
        check(&docs[0], &wasm_plugin(), "WasmPlugin").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let spec = &docs[0]["spec"];
        assert_eq!(spec["url"], format!("oci://ghcr.io/example/vrata-mirror@{expected}"));
        assert_eq!(spec["sha256"], expected.trim_start_matches("sha256:"));
        assert_eq!(spec["imagePullPolicy"], "Always");
        assert_eq!(spec["imagePullSecret"], "registry-credentials");
    }
    // Without a pin: the URL as given, IfNotPresent, no secret.
    let (ok, yaml, _) = istio(CONFIG, &[]);
    assert!(ok);
    let spec = &documents(&yaml)[0]["spec"];
    assert_eq!(spec["url"], "oci://ghcr.io/example/vrata-mirror:0.1.0");
    assert_eq!(spec["imagePullPolicy"], "IfNotPresent");
    assert!(spec.get("sha256").is_none() && spec.get("imagePullSecret").is_none());
    // A digest and --sha256 are two pins of one field: refused together.
    let (ok, _, stderr) = istio(CONFIG, &["--image-digest", digest, "--sha256", &"ab".repeat(32)]);
    assert!(!ok, "{stderr}");
}
