//! Envoy Gateway manifests for a plugin configuration:
//!
//! - an `HTTPRoute` (gateway.networking.k8s.io/v1) with one named rule per
//!   entry of "routes" and the catch-all, each forwarding to its block's
//!   `forward.destinations` as weighted `backendRefs`;
//! - an `EnvoyExtensionPolicy` (gateway.envoyproxy.io/v1alpha1) on that
//!   route that loads the wasm module from its OCI image, fail-open, with the
//!   plugin JSON as `config`; or the native host (`dynamicModule`, once per
//!   proxy worker, the same `config`);
//! - an `EnvoyProxy` whose bootstrap merge adds the stats tag rules, the
//!   runtime's buffer limit (wasm) and the shadow clusters (Envoy Gateway makes
//!   clusters only for backendRefs, and names them after the route; the
//!   filter dispatches copies to a cluster by its destinationId); for the
//!   native host, its `dynamicModules` allow-list and `concurrency`.
//!
//! Route names: the filter picks a "routes" entry by the Envoy route name,
//! and Envoy Gateway names a rule's route
//! `httproute/<namespace>/<name>/rule/<index>/match/<index>/<hostname, dots as _>`
//! (internal/gatewayapi: irRouteName, and the hostname appended per
//! listener). So the `config` keys "routes" by those names, one per
//! hostname; the metrics' `route` label carries them too.

use crate::envoy::{dynamic_module_filter_name, Address, Bootstrap, Cluster, Mirroring, SHADOW_LIMITS};
use crate::from_config::{default_block, prefix_of, weighted};
use crate::yaml::{print, Entry, Yaml};
use vrata_mirror_core::config::PluginConfig;
use vrata_mirror_core::dispatch::REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT;

/// A Kubernetes Service a destination forwards to (a backendRef).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub id: String,
    pub service: String,
    pub port: u16,
}

impl Backend {
    /// `ID=SERVICE:PORT`.
    pub fn parse(text: &str) -> Result<Backend, String> {
        let parsed = text.split_once('=').and_then(|(id, target)| {
            let (service, port) = target.rsplit_once(':')?;
            let port = port.parse().ok()?;
            (!id.is_empty() && !service.is_empty()).then(|| Backend {
                id: id.to_owned(),
                service: service.to_owned(),
                port,
            })
        });
        parsed.ok_or_else(|| format!("{text:?} is not ID=SERVICE:PORT"))
    }
}

/// The OCI image a gateway pulls the wasm module from.
#[derive(Debug, Clone)]
pub struct WasmImage {
    /// `registry/name:tag` or `registry/name@sha256:…` (no scheme).
    pub url: String,
    /// The image's manifest digest, hex: Envoy Gateway checks the pulled
    /// image against it.
    pub sha256: Option<String>,
    /// `IfNotPresent` or `Always` (Envoy Gateway's default: IfNotPresent,
    /// except for a `:latest` tag).
    pub pull_policy: Option<String>,
    /// A Secret (kubernetes.io/dockerconfigjson) in the policy's namespace.
    pub pull_secret: Option<String>,
}

/// Where the proxy loads the native host's shared library from (Envoy
/// Gateway's `DynamicModuleSource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleSource {
    /// An absolute path on the proxy's filesystem (the EnvoyProxy's owner
    /// puts the `.so` there: a custom image, an init container, a volume).
    Local(String),
    /// Fetched over HTTP(S) by Envoy and checked against its SHA-256 (hex).
    Remote { url: String, sha256: String },
}

/// The native host (crates/native) for Envoy Gateway: the `.so`, and the
/// proxy's worker count, which the filter's per-worker layout needs
/// (`EnvoyProxy.spec.concurrency`).
#[derive(Debug, Clone)]
pub struct DynamicModule {
    pub source: ModuleSource,
    pub workers: u32,
}

/// The name the native host is registered under in the EnvoyProxy's
/// `dynamicModules` allow-list, which the policy's entries reference.
pub const DYNAMIC_MODULE_NAME: &str = "vrata-mirror";

/// What the EnvoyExtensionPolicy loads: the wasm module from its OCI image
/// (the policy's `wasm`), or the native host (the policy's `dynamicModule`,
/// once per worker, and in [`envoy_proxy`] the EnvoyProxy's `dynamicModules`
/// allow-list, which the module must be in, and its `concurrency`).
#[derive(Debug, Clone)]
pub enum Module {
    Wasm(WasmImage),
    DynamicModule(DynamicModule),
}

/// Everything `vrata-mirror gateway` needs besides the configuration.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// `metadata.name` of every resource.
    pub name: String,
    pub namespace: String,
    /// The Gateways the HTTPRoute attaches to: `NAME` or `NAMESPACE/NAME`.
    pub gateways: Vec<String>,
    /// The HTTPRoute's hostnames (needed with "routes": they are part of
    /// the Envoy route names).
    pub hostnames: Vec<String>,
    /// Every forward destination's Service.
    pub backends: Vec<Backend>,
    /// Every mirror destination's address (a static cluster of that name).
    pub shadows: Vec<(String, Address)>,
    /// `NAME=PREFIX`: a rule's path prefix (default `/NAME`).
    pub prefixes: Vec<(String, String)>,
    /// The catch-all rule's name (prefix `/`).
    pub default_route: String,
    pub module: Module,
    pub header: Vec<String>,
}

fn entry(key: &str, value: Yaml, comment: &[&str]) -> Entry {
    Entry {
        key: key.to_owned(),
        value,
        comment: comment.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn metadata(options: &GatewayOptions) -> Yaml {
    Yaml::map([
        ("name", Yaml::str(&options.name)),
        ("namespace", Yaml::str(&options.namespace)),
    ])
}

fn resource(api: &str, kind: &str, options: &GatewayOptions, spec: Vec<Entry>) -> Yaml {
    Yaml::Map(vec![
        entry("apiVersion", Yaml::str(api), &[]),
        entry("kind", Yaml::str(kind), &[]),
        entry("metadata", metadata(options), &[]),
        entry("spec", Yaml::Map(spec), &[]),
    ])
}

/// A rule name as Gateway API allows it (SectionName: a DNS subdomain).
fn section_name(name: &str, at: &str) -> Result<(), String> {
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() <= 253 && name.split('.').all(label) {
        Ok(())
    } else {
        Err(format!(
            "{at}: {name:?} cannot name an HTTPRoute rule (lower-case letters, digits, '-' and '.', \
             each part starting and ending with a letter or digit)"
        ))
    }
}

/// Gateway API's bound on a backendRef's weight.
const MAX_WEIGHT: u32 = 1_000_000;

/// The rules, in order: (name, path prefix, weighted backends, whether
/// "routes" has an entry of that name).
type Rule = (String, Option<String>, Vec<(String, u32)>, bool);

fn rules(config: &PluginConfig, options: &GatewayOptions) -> Result<Vec<Rule>, String> {
    let (default_policy, default_at) = default_block(config, &options.default_route);
    let fallback = (default_policy.destinations.as_slice(), default_at.as_str());
    let mut rules = Vec::new();
    for (name, policy) in config.routes.iter().filter(|(n, _)| *n != options.default_route) {
        let at = format!("routes[{name:?}]");
        section_name(name, &at)?;
        let prefix = prefix_of(&options.prefixes, name).unwrap_or_else(|| format!("/{name}"));
        rules.push((
            name.clone(),
            Some(prefix),
            weighted(policy, &format!("{at}.forward"), fallback)?,
            true,
        ));
    }
    section_name(&options.default_route, "--default-route")?;
    let weights = weighted(default_policy, &default_at, (&[], &default_at))?;
    let in_routes = config.routes.iter().any(|(n, _)| *n == options.default_route);
    let prefix = prefix_of(&options.prefixes, &options.default_route);
    rules.push((options.default_route.clone(), prefix, weights, in_routes));
    Ok(rules)
}

/// The HTTPRoute.
fn http_route(rules: &[Rule], options: &GatewayOptions) -> Result<Yaml, String> {
    let parents = options.gateways.iter().map(|gateway| match gateway.split_once('/') {
        Some((namespace, name)) => Yaml::map([("name", Yaml::str(name)), ("namespace", Yaml::str(namespace))]),
        None => Yaml::map([("name", Yaml::str(gateway))]),
    });
    let mut spec = vec![entry("parentRefs", Yaml::Seq(parents.collect()), &[])];
    if !options.hostnames.is_empty() {
        spec.push(entry(
            "hostnames",
            Yaml::Seq(options.hostnames.iter().map(Yaml::str).collect()),
            &[],
        ));
    }
    let mut out = Vec::new();
    for (name, prefix, weights, _) in rules {
        let mut backends = Vec::new();
        for (id, weight) in weights {
            if *weight > MAX_WEIGHT {
                return Err(format!(
                    "rule {name:?}: the weight of {id:?} is {weight}, over Gateway API's limit of {MAX_WEIGHT}"
                ));
            }
            let backend = options
                .backends
                .iter()
                .find(|b| b.id == *id)
                .ok_or_else(|| format!("destination {id:?} has no Service: give --backend {id}=SERVICE:PORT"))?;
            backends.push(Yaml::map([
                ("name", Yaml::str(&backend.service)),
                ("port", Yaml::int(backend.port)),
                ("weight", Yaml::int(*weight)),
            ]));
        }
        let path = Yaml::map([
            ("type", Yaml::str("PathPrefix")),
            ("value", Yaml::str(prefix.as_deref().unwrap_or("/"))),
        ]);
        out.push(Yaml::map([
            ("name", Yaml::str(name)),
            ("matches", Yaml::Seq(vec![Yaml::map([("path", path.flow())])])),
            ("backendRefs", Yaml::Seq(backends)),
        ]));
    }
    spec.push(entry(
        "rules",
        Yaml::Seq(out),
        &["One rule per entry of the plugin's \"routes\", then the catch-all."],
    ));
    Ok(resource("gateway.networking.k8s.io/v1", "HTTPRoute", options, spec))
}

/// Envoy Gateway's name for the route of rule `index` on `hostname`.
pub fn envoy_route_name(namespace: &str, route: &str, index: usize, hostname: &str) -> String {
    format!(
        "httproute/{namespace}/{route}/rule/{index}/match/0/{}",
        hostname.replace('.', "_")
    )
}

/// The plugin JSON with each "routes" key replaced by Envoy Gateway's
/// route names for it (one per hostname).
fn gateway_config(plugin: &serde_json::Value, rules: &[Rule], options: &GatewayOptions) -> serde_json::Value {
    let mut config = plugin.clone();
    let Some(routes) = plugin.get("routes").and_then(serde_json::Value::as_object) else {
        return config;
    };
    let mut renamed = serde_json::Map::new();
    for (index, (name, _, _, in_routes)) in rules.iter().enumerate() {
        let Some(policy) = routes.get(name).filter(|_| *in_routes) else {
            continue;
        };
        for hostname in &options.hostnames {
            let key = envoy_route_name(&options.namespace, &options.name, index, hostname);
            renamed.insert(key, policy.clone());
        }
    }
    if let Some(object) = config.as_object_mut() {
        object.insert("routes".to_owned(), serde_json::Value::Object(renamed));
    }
    config
}

/// The EnvoyExtensionPolicy: the module on the HTTPRoute, fail-open.
fn extension_policy(config: serde_json::Value, options: &GatewayOptions) -> Yaml {
    let target = Yaml::map([
        ("group", Yaml::str("gateway.networking.k8s.io")),
        ("kind", Yaml::str("HTTPRoute")),
        ("name", Yaml::str(&options.name)),
    ]);
    let mut spec = vec![entry("targetRefs", Yaml::Seq(vec![target]), &[])];
    match &options.module {
        Module::Wasm(image) => {
            let mut source = vec![entry("url", Yaml::str(&image.url), &[])];
            if let Some(sha) = &image.sha256 {
                source.push(entry(
                    "sha256",
                    Yaml::str(sha),
                    &["The image's digest: the pulled image must have it."],
                ));
            }
            if let Some(secret) = &image.pull_secret {
                source.push(entry("pullSecretRef", Yaml::map([("name", Yaml::str(secret))]), &[]));
            }
            let mut code = vec![
                entry("type", Yaml::str("Image"), &[]),
                entry("image", Yaml::Map(source), &[]),
            ];
            if let Some(policy) = &image.pull_policy {
                code.push(entry("pullPolicy", Yaml::str(policy), &[]));
            }
            let wasm = Yaml::Map(vec![
                entry("name", Yaml::str("vrata-mirror"), &[]),
                entry("code", Yaml::Map(code), &[]),
                entry(
                    "failOpen",
                    Yaml::Bool(true),
                    &["If the module cannot load or its VM fails, requests pass unfiltered."],
                ),
                entry(
                    "config",
                    Yaml::from_json(&config),
                    &["The plugin configuration; \"routes\" keyed by Envoy Gateway's route names."],
                ),
            ]);
            spec.push(entry("wasm", Yaml::Seq(vec![wasm]), &[]));
        }
        Module::DynamicModule(module) => {
            let workers = module.workers.max(1);
            let filters = (0..workers)
                .map(|index| {
                    Yaml::Map(vec![
                        entry("name", Yaml::str(DYNAMIC_MODULE_NAME), &[]),
                        entry("filterName", Yaml::str(dynamic_module_filter_name(index, workers)), &[]),
                        entry(
                            "config",
                            Yaml::from_json(&config),
                            if index == 0 {
                                &["The plugin configuration; \"routes\" keyed by Envoy Gateway's route names."]
                            } else {
                                &[]
                            },
                        ),
                    ])
                })
                .collect();
            spec.push(entry(
                "dynamicModule",
                Yaml::Seq(filters),
                &[
                    "The native host, once per proxy worker (the EnvoyProxy's concurrency):",
                    "each filter acts on its own worker only, since Envoy's streams of a",
                    "filter config are not safe across workers. The module is registered in",
                    "the EnvoyProxy's dynamicModules allow-list below.",
                ],
            ));
        }
    }
    resource("gateway.envoyproxy.io/v1alpha1", "EnvoyExtensionPolicy", options, spec)
}

/// The EnvoyProxy: its bootstrap merge (for the wasm module: stats tags,
/// buffer limit; for both: the shadow clusters); for the native host, the
/// worker count and the `dynamicModules` allow-list.
pub fn envoy_proxy(options: &GatewayOptions) -> Yaml {
    let mut bootstrap = Bootstrap::new(Address::loopback(0), Address::loopback(0));
    bootstrap.comments = false;
    bootstrap.clusters = options
        .shadows
        .iter()
        .map(|(name, address)| Cluster::shadow(name, address.clone(), SHADOW_LIMITS))
        .collect();
    let mut spec = Vec::new();
    let comment: &[&str] = match &options.module {
        Module::Wasm(_) => {
            bootstrap.async_response_buffer_limit = Some(REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT);
            &[
                "Merged into Envoy Gateway's bootstrap: the stats tag rules that turn the",
                "filter's metric names into labels, the buffer limit of answers to copies",
                "(README: \"Memory\"), and a cluster per mirror destination.",
            ]
        }
        Module::DynamicModule(module) => {
            // The native host's metrics have real labels, and it drops the
            // answers to copies as they arrive: neither stats tags nor a
            // buffer limit.
            bootstrap.mirroring = Mirroring::DynamicModule {
                module: String::new(),
                plugin: String::new(),
                workers: module.workers,
            };
            spec.push(entry(
                "concurrency",
                Yaml::int(module.workers.max(1)),
                &["The proxy's workers: the policy has the filter once per worker."],
            ));
            let source = match &module.source {
                ModuleSource::Local(path) => Yaml::map([
                    ("type", Yaml::str("Local")),
                    ("local", Yaml::map([("path", Yaml::str(path))])),
                ]),
                ModuleSource::Remote { url, sha256 } => Yaml::map([
                    ("type", Yaml::str("Remote")),
                    (
                        "remote",
                        Yaml::map([("url", Yaml::str(url)), ("sha256", Yaml::str(sha256))]),
                    ),
                ]),
            };
            spec.push(entry(
                "dynamicModules",
                Yaml::Seq(vec![Yaml::Map(vec![
                    entry("name", Yaml::str(DYNAMIC_MODULE_NAME), &[]),
                    entry("source", source, &[]),
                    entry(
                        "doNotClose",
                        Yaml::Bool(true),
                        &["Never dlclose the module: its threads' state outlives a config."],
                    ),
                ])]),
                &[
                    "The allow-list of the modules EnvoyExtensionPolicies may load: the native",
                    "host, built for this proxy's Envoy minor (1.40; README: \"Native module\").",
                ],
            ));
            &["Merged into Envoy Gateway's bootstrap: a cluster per mirror destination."]
        }
    };
    let patch = print(&bootstrap.merge_patch(), &[]);
    spec.push(entry(
        "bootstrap",
        Yaml::map([("type", Yaml::str("Merge")), ("value", Yaml::Block(patch))]),
        comment,
    ));
    resource("gateway.envoyproxy.io/v1alpha1", "EnvoyProxy", options, spec)
}

/// The three manifests, as one YAML stream.
pub fn manifests(
    plugin: &serde_json::Value,
    config: &PluginConfig,
    options: &GatewayOptions,
) -> Result<String, String> {
    if options.gateways.is_empty() {
        return Err("give the Gateway the HTTPRoute attaches to: --gateway NAME (or NAMESPACE/NAME)".to_owned());
    }
    if !config.routes.is_empty() && options.hostnames.is_empty() {
        return Err(
            "\"routes\" needs --hostname: Envoy Gateway names each route after its hostname, and the filter \
             picks a \"routes\" entry by that name"
                .to_owned(),
        );
    }
    for mirror in &config.destinations {
        if !options.shadows.iter().any(|(name, _)| name == mirror) {
            return Err(format!(
                "mirror destination {mirror:?} has no cluster: give --cluster {mirror}=HOST:PORT (the shadow \
                 Service's DNS name)"
            ));
        }
    }
    let rules = rules(config, options)?;
    let route = print(&http_route(&rules, options)?, &options.header);
    let policy = print(&extension_policy(gateway_config(plugin, &rules, options), options), &[]);
    let proxy = print(&envoy_proxy(options), &[]);
    Ok(format!("{route}---\n{policy}---\n{proxy}"))
}
