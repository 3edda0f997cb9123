//! An Envoy bootstrap with the filter: one listener whose routes forward
//! with `weighted_clusters`, the wasm filter (or the native host, the
//! dynamic module; or Envoy's native mirroring, or nothing, for the
//! benchmark's baselines), the clusters, and the
//! `stats_tags` from the metric catalogue. Every Envoy config of the
//! project is printed here: `vrata-mirror envoy`, envoy/envoy.yaml (which
//! that command generates), the tests' and the benchmark's.

use crate::yaml::{print, Entry, Yaml};
use vrata_mirror_core::telemetry::catalogue;

pub use vrata_mirror_core::dispatch::{ASYNC_RESPONSE_BUFFER_LIMIT_KEY, REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT};

/// `host:port`; a host that is not an IP address is resolved by DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub port: u16,
}

impl Address {
    pub fn new(host: impl Into<String>, port: u16) -> Address {
        Address {
            host: host.into(),
            port,
        }
    }

    /// `127.0.0.1` on `port` (0: Envoy picks one).
    pub fn loopback(port: u16) -> Address {
        Address::new("127.0.0.1", port)
    }

    /// Parses `HOST:PORT` (`[::1]:8080` for IPv6).
    pub fn parse(text: &str) -> Result<Address, String> {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?} is not HOST:PORT"))?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("{text:?} is not HOST:PORT (no host)"));
        }
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("{text:?} is not HOST:PORT (the port must be a number from 0 to 65535)"))?;
        Ok(Address::new(host, port))
    }

    fn is_ip(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }

    fn socket(&self) -> Yaml {
        Yaml::map([(
            "socket_address",
            Yaml::map([("address", Yaml::str(&self.host)), ("port_value", Yaml::int(self.port))]).flow(),
        )])
    }
}

/// How requests are mirrored.
#[derive(Debug, Clone, PartialEq)]
pub enum Mirroring {
    /// The wasm filter, loaded from `wasm` with the plugin JSON `plugin`
    /// (as written: it is not checked here, so that tests can hand Envoy a
    /// bad one).
    Wasm { wasm: String, plugin: String },
    /// The native host (crates/native): the dynamic module at `module`
    /// (a path Envoy opens), with the plugin JSON `plugin` (as written),
    /// for an Envoy running `workers` workers (`--concurrency`): the filter
    /// goes in the chain once per worker (see [`dynamic_module_filter_name`]).
    DynamicModule {
        module: String,
        plugin: String,
        workers: u32,
    },
    /// Envoy's own `request_mirror_policies` on each route (see
    /// [`Route::native_mirrors`]); no filter. Not the native host.
    Native,
    /// Neither: no filter, no mirroring.
    None,
}

/// The native host's `metrics_namespace`: its counter `requests_total` is
/// `envoy_vrata_mirror_requests_total` in /stats/prometheus (Envoy puts
/// `envoy_` before every dynamic-module metric; crates/native/NOTES.md gives the
/// Prometheus rule that takes it off).
pub const DYNAMIC_MODULE_METRICS_NAMESPACE: &str = vrata_mirror_core::telemetry::names::NATIVE_NAMESPACE;

/// The `filter_name` of the native host's filter for worker `index` of
/// `workers`: the module reads which worker a config acts on from it
/// (crates/native/src/config.rs), because Envoy's config-level streams are
/// not safe across workers. One worker: plain `vrata-mirror`.
pub fn dynamic_module_filter_name(index: u32, workers: u32) -> String {
    if workers <= 1 {
        "vrata-mirror".to_owned()
    } else {
        format!("vrata-mirror/worker-{index}-of-{workers}")
    }
}

/// Envoy's native mirroring of one route to one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeMirror {
    pub cluster: String,
    /// 0 to 100.
    pub percentage: f64,
}

/// One route of the listener.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// What the plugin's `routes` map and the metrics' `route` label see
    /// (`None`: an unnamed route).
    pub name: Option<String>,
    pub prefix: String,
    /// Match gRPC requests only (`grpc: {}`).
    pub grpc: bool,
    /// `weighted_clusters`: cluster and weight.
    pub clusters: Vec<(String, u32)>,
    /// Only with [`Mirroring::Native`].
    pub native_mirrors: Vec<NativeMirror>,
    /// Comment lines above the route.
    pub comment: Vec<String>,
}

impl Route {
    /// A route forwarding everything under `prefix` to one cluster.
    pub fn to_one(name: Option<&str>, prefix: &str, cluster: &str) -> Route {
        Route {
            name: name.map(str::to_owned),
            prefix: prefix.to_owned(),
            grpc: false,
            clusters: vec![(cluster.to_owned(), 100)],
            native_mirrors: Vec::new(),
            comment: Vec::new(),
        }
    }
}

/// What makes a cluster a shadow: limits that are the host's hard cap on
/// what mirroring may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowLimits {
    /// The circuit breaker's max_connections, max_pending_requests and
    /// max_requests.
    pub max_requests: u32,
    /// Eject a shadow whose connections fail (not one that answers 5xx).
    pub outlier_detection: bool,
}

/// The documented shadow limits (README, "Defaults chosen by this benchmark").
pub const SHADOW_LIMITS: ShadowLimits = ShadowLimits {
    max_requests: 128,
    outlier_detection: true,
};

/// An upstream cluster with one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: String,
    pub address: Address,
    /// Speak HTTP/2 (h2c) to it: gRPC, and request trailers.
    pub http2: bool,
    /// `Some` for a shadow (a mirror destination).
    pub shadow: Option<ShadowLimits>,
}

impl Cluster {
    pub fn primary(name: &str, address: Address) -> Cluster {
        Cluster {
            name: name.to_owned(),
            address,
            http2: false,
            shadow: None,
        }
    }

    pub fn shadow(name: &str, address: Address, limits: ShadowLimits) -> Cluster {
        Cluster {
            name: name.to_owned(),
            address,
            http2: false,
            shadow: Some(limits),
        }
    }
}

/// A whole bootstrap.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    /// `node.id` and `node.cluster`.
    pub node: String,
    pub admin: Address,
    pub listen: Address,
    /// `stats_flush_interval` (Envoy's default, 5s, when `None`).
    pub stats_flush_interval: Option<String>,
    /// Let WebSocket upgrades through the listener.
    pub websocket: bool,
    pub routes: Vec<Route>,
    pub mirroring: Mirroring,
    pub clusters: Vec<Cluster>,
    /// `http.async_response_buffer_limit` in a static runtime layer, with
    /// an admin layer after it (`None`: no `layered_runtime`; Envoy's
    /// default, 32 MiB).
    pub async_response_buffer_limit: Option<u64>,
    /// Print the explanatory comments.
    pub comments: bool,
    /// Comment lines at the top.
    pub header: Vec<String>,
}

impl Bootstrap {
    /// A bootstrap with nothing configured but the addresses.
    pub fn new(listen: Address, admin: Address) -> Bootstrap {
        Bootstrap {
            node: "vrata-mirror".to_owned(),
            admin,
            listen,
            stats_flush_interval: None,
            websocket: true,
            routes: Vec::new(),
            mirroring: Mirroring::None,
            clusters: Vec::new(),
            async_response_buffer_limit: None,
            comments: true,
            header: Vec::new(),
        }
    }

    /// The YAML text.
    pub fn render(&self) -> String {
        print(&self.tree(), &self.header)
    }

    /// The YAML tree (for tests that look into it).
    pub fn tree(&self) -> Yaml {
        let mut top = Vec::new();
        let node = Yaml::map([("id", Yaml::str(&self.node)), ("cluster", Yaml::str(&self.node))]);
        top.push(self.entry("node", node, &[]));
        top.push(self.entry("admin", Yaml::map([("address", self.admin.socket())]), &[]));
        if let Some(interval) = &self.stats_flush_interval {
            top.push(self.entry("stats_flush_interval", Yaml::str(interval), &[]));
        }
        if !self.is_dynamic_module() {
            top.push(self.stats_config());
        }
        if let Some(limit) = self.async_response_buffer_limit.filter(|_| !self.is_dynamic_module()) {
            top.push(self.runtime(limit));
        }
        let listeners = Yaml::Seq(vec![self.listener()]);
        let clusters = Yaml::Seq(self.clusters.iter().map(|c| self.cluster(c)).collect());
        top.push(self.entry(
            "static_resources",
            Yaml::map([("listeners", listeners), ("clusters", clusters)]),
            &[],
        ));
        Yaml::Map(top)
    }

    fn is_dynamic_module(&self) -> bool {
        matches!(self.mirroring, Mirroring::DynamicModule { .. })
    }

    /// The wasm filter's metric names carry their labels; these rules turn
    /// them into tags. (The native host's metrics have real labels.)
    fn stats_config(&self) -> Entry {
        self.entry(
            "stats_config",
            Yaml::map([("stats_tags", stats_tags())]),
            &[
                "The filter encodes its labels in the metric name, Istio-style",
                "(route=.=api;.;destination=.=shadow;.;vrata_mirror_requests_total). These",
                "rules turn them into Prometheus labels:",
                "  vrata_mirror_requests_total{route=\"api\",destination=\"shadow\"} 3",
                "They can only live in the bootstrap (not in a listener or over xDS).",
            ],
        )
    }

    /// What a gateway's bootstrap merge takes of this bootstrap (Envoy
    /// Gateway's `EnvoyProxy.spec.bootstrap`, type Merge: lists are
    /// appended to its own): the stats_tags (not for the native host, whose
    /// metrics have real labels), the runtime's static layer
    /// (no admin layer: the gateway's bootstrap decides that) and the
    /// clusters, without listeners (the gateway serves those over xDS).
    pub fn merge_patch(&self) -> Yaml {
        let mut top = Vec::new();
        if !self.is_dynamic_module() {
            top.push(self.entry("stats_config", Yaml::map([("stats_tags", stats_tags())]), &[]));
        }
        if let Some(limit) = self.async_response_buffer_limit {
            let mut runtime = self.runtime(limit);
            if let Yaml::Map(entries) = &mut runtime.value {
                for entry in entries.iter_mut() {
                    if let Yaml::Seq(layers) = &mut entry.value {
                        layers.retain(|layer| layer.get("admin_layer").is_none());
                    }
                }
            }
            runtime.comment.clear();
            top.push(runtime);
        }
        let clusters = Yaml::Seq(self.clusters.iter().map(|c| self.cluster(c)).collect());
        top.push(self.entry("static_resources", Yaml::map([("clusters", clusters)]), &[]));
        Yaml::Map(top)
    }

    /// The bootstrap's runtime: the buffer limit of dispatched calls'
    /// answers (README: "Memory"), and the admin layer that keeps
    /// /runtime_modify working.
    fn runtime(&self, limit: u64) -> Entry {
        let layers = Yaml::Seq(vec![
            Yaml::map([
                ("name", Yaml::str("vrata-mirror")),
                (
                    "static_layer",
                    Yaml::map([(
                        ASYNC_RESPONSE_BUFFER_LIMIT_KEY,
                        Yaml::int(i64::try_from(limit).unwrap_or(i64::MAX)),
                    )]),
                ),
            ]),
            Yaml::map([("name", Yaml::str("admin")), ("admin_layer", Yaml::Map(Vec::new()))]),
        ]);
        let cap = self
            .clusters
            .iter()
            .filter_map(|c| c.shadow.map(|limits| limits.max_requests))
            .max();
        let at_a_time = match cap {
            Some(n) => format!("at most {n} at a time per shadow here: its circuit breakers"),
            None => "at most as many as the shadows' circuit breakers allow".to_owned(),
        };
        let size = if limit.is_multiple_of(1024 * 1024) {
            format!("{}\u{a0}MiB", limit / (1024 * 1024))
        } else {
            format!("{limit}\u{a0}bytes")
        };
        let comment = wrap(&format!(
            "What Envoy may buffer of each answer to a mirror call (README: \"Memory\"). \
             dispatch_http_call's client holds a call's whole answer until it ends, up to this \
             runtime key (Envoy's default: 32 MiB). With {size}, Envoy holds at most {size} per \
             answer it is receiving ({at_a_time}); an answer over it fails the call, counted as \
             class=\"too_large_or_reset\" and never backed off. The key applies to every such \
             client in this Envoy: ext_authz's HTTP service, Lua's httpCall and remote data \
             sources (a remote wasm module) fail on answers over {size}; native mirroring and \
             gRPC clients are not affected. The admin layer keeps /runtime_modify working."
        ));
        let comment: Vec<&str> = comment.iter().map(String::as_str).collect();
        self.entry("layered_runtime", Yaml::map([("layers", layers)]), &comment)
    }

    fn entry(&self, key: &str, value: Yaml, comment: &[&str]) -> Entry {
        Entry {
            key: key.to_owned(),
            value,
            comment: if self.comments {
                comment.iter().map(|s| (*s).to_owned()).collect()
            } else {
                Vec::new()
            },
        }
    }

    fn listener(&self) -> Yaml {
        let mut hcm = vec![
            self.entry(
                "@type",
                Yaml::str("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"),
                &[],
            ),
            self.entry("stat_prefix", Yaml::str("ingress"), &[]),
            self.entry("codec_type", Yaml::str("AUTO"), &[]),
        ];
        if self.is_dynamic_module() {
            hcm.push(self.entry(
                "http_protocol_options",
                Yaml::map([("enable_trailers", Yaml::Bool(true))]).flow(),
                &["HTTP/1.1 trailers reach the filter, which sends them on the copy."],
            ));
        }
        if self.websocket {
            hcm.push(self.entry(
                "upgrade_configs",
                Yaml::Seq(vec![Yaml::map([("upgrade_type", Yaml::str("websocket"))])]),
                &["WebSockets pass through; the filter never mirrors an upgrade."],
            ));
        }
        let routes = Yaml::Seq(
            self.routes
                .iter()
                .enumerate()
                .map(|(i, r)| self.route(r, i == 0))
                .collect(),
        );
        let virtual_host = Yaml::Map(vec![
            self.entry("name", Yaml::str("all"), &[]),
            self.entry("domains", Yaml::Seq(vec![Yaml::str("*")]).flow(), &[]),
            self.entry(
                "routes",
                routes,
                &[
                    "Route names are what the plugin's \"routes\" map keys on, and",
                    "what the metrics' `route` label shows.",
                ],
            ),
        ]);
        hcm.push(self.entry(
            "route_config",
            Yaml::map([
                ("name", Yaml::str("local")),
                ("virtual_hosts", Yaml::Seq(vec![virtual_host])),
            ]),
            &[],
        ));
        let mut filters = Vec::new();
        match &self.mirroring {
            Mirroring::Wasm { wasm, plugin } => filters.push(self.wasm_filter(wasm, plugin)),
            Mirroring::DynamicModule {
                module,
                plugin,
                workers,
            } => {
                let workers = (*workers).max(1);
                filters.extend((0..workers).map(|i| self.dynamic_module_filter(module, plugin, i, workers)));
            }
            Mirroring::Native | Mirroring::None => {}
        }
        filters.push(Yaml::map([
            ("name", Yaml::str("envoy.filters.http.router")),
            (
                "typed_config",
                Yaml::map([(
                    "@type",
                    Yaml::str("type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"),
                )]),
            ),
        ]));
        hcm.push(self.entry("http_filters", Yaml::Seq(filters), &[]));
        Yaml::map([
            ("name", Yaml::str("ingress")),
            ("address", self.listen.socket()),
            (
                "filter_chains",
                Yaml::Seq(vec![Yaml::map([(
                    "filters",
                    Yaml::Seq(vec![Yaml::map([
                        ("name", Yaml::str("envoy.filters.network.http_connection_manager")),
                        ("typed_config", Yaml::Map(hcm)),
                    ])]),
                )])]),
            ),
        ])
    }

    fn route(&self, route: &Route, first: bool) -> Yaml {
        let mut entries = Vec::new();
        let comment: Vec<&str> = route.comment.iter().map(String::as_str).collect();
        let mut first_comment = Some(comment.as_slice());
        let mut push = |entries: &mut Vec<Entry>, key: &str, value: Yaml| {
            entries.push(self.entry(key, value, first_comment.take().unwrap_or(&[])));
        };
        if let Some(name) = &route.name {
            push(&mut entries, "name", Yaml::str(name));
        }
        let mut matcher = vec![("prefix", Yaml::str(&route.prefix))];
        if route.grpc {
            matcher.push(("grpc", Yaml::Map(Vec::new())));
        }
        push(&mut entries, "match", Yaml::map(matcher).flow());
        let clusters = Yaml::Seq(
            route
                .clusters
                .iter()
                .map(|(name, weight)| Yaml::map([("name", Yaml::str(name)), ("weight", Yaml::int(*weight))]).flow())
                .collect(),
        );
        let explain: &[&str] = if first {
            &[
                "The primary: Vrata's forward.destinations, as Envoy's",
                "weighted_clusters. The filter does not route.",
            ]
        } else {
            &[]
        };
        let mut action = vec![self.entry("weighted_clusters", Yaml::map([("clusters", clusters)]), explain)];
        if self.mirroring == Mirroring::Native && !route.native_mirrors.is_empty() {
            let policies = route.native_mirrors.iter().map(native_mirror).collect();
            action.push(self.entry("request_mirror_policies", Yaml::Seq(policies), &[]));
        }
        push(&mut entries, "route", Yaml::Map(action));
        Yaml::Map(entries)
    }

    fn wasm_filter(&self, wasm: &str, plugin: &str) -> Yaml {
        let code = Yaml::map([("local", Yaml::map([("filename", Yaml::str(wasm))]))]);
        let vm = Yaml::map([
            ("vm_id", Yaml::str("vrata_mirror")),
            ("runtime", Yaml::str("envoy.wasm.runtime.v8")),
            ("code", code),
        ]);
        let configuration = Yaml::map([
            ("@type", Yaml::str("type.googleapis.com/google.protobuf.StringValue")),
            ("value", Yaml::Block(format!("{}\n", plugin.trim()))),
        ]);
        let config = Yaml::Map(vec![
            self.entry("name", Yaml::str("vrata_mirror"), &[]),
            self.entry("root_id", Yaml::str("vrata_mirror"), &[]),
            self.entry(
                "failure_policy",
                Yaml::str("FAIL_OPEN"),
                &[
                    "If the VM ever fails, requests pass unfiltered: a mirror must",
                    "never take the primary down with it.",
                ],
            ),
            self.entry("vm_config", vm, &[]),
            self.entry("configuration", configuration, &[]),
        ]);
        Yaml::map([
            ("name", Yaml::str("vrata.mirror")),
            (
                "typed_config",
                Yaml::map([
                    (
                        "@type",
                        Yaml::str("type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"),
                    ),
                    ("config", config),
                ]),
            ),
        ])
    }

    /// The native host's filter for worker `index` of `workers`.
    fn dynamic_module_filter(&self, module: &str, plugin: &str, index: u32, workers: u32) -> Yaml {
        let module_config = Yaml::Map(vec![
            self.entry(
                "module",
                Yaml::map([("local", Yaml::map([("filename", Yaml::str(module))]).flow())]),
                &[],
            ),
            self.entry(
                "do_not_close",
                Yaml::Bool(true),
                &["Never dlclose the module: its threads' state outlives a config."],
            ),
            self.entry(
                "metrics_namespace",
                Yaml::str(DYNAMIC_MODULE_METRICS_NAMESPACE),
                &["Prometheus: envoy_vrata_mirror_requests_total{route,destination}, ..."],
            ),
        ]);
        let filter_config = Yaml::map([
            ("@type", Yaml::str("type.googleapis.com/google.protobuf.StringValue")),
            ("value", Yaml::Block(format!("{}\n", plugin.trim()))),
        ]);
        let comment: &[&str] = if index == 0 && workers > 1 {
            &[
                "The native host, once per worker: each config acts only on its own",
                "worker (Envoy's config-level streams are not safe across workers).",
                "Run Envoy with --concurrency equal to the number of these filters.",
            ]
        } else {
            &[]
        };
        let typed_config = Yaml::Map(vec![
            self.entry(
                "@type",
                Yaml::str("type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter"),
                &[],
            ),
            self.entry("dynamic_module_config", module_config, &[]),
            self.entry(
                "filter_name",
                Yaml::str(dynamic_module_filter_name(index, workers)),
                &[],
            ),
            self.entry("filter_config", filter_config, &[]),
        ]);
        let name = if workers > 1 {
            format!("vrata.mirror.worker{index}")
        } else {
            "vrata.mirror".to_owned()
        };
        Yaml::Map(vec![
            self.entry("name", Yaml::str(&name), comment),
            self.entry("typed_config", typed_config, &[]),
        ])
    }

    fn cluster(&self, cluster: &Cluster) -> Yaml {
        let mut entries = Vec::new();
        let comment: &[&str] = if cluster.shadow.is_some() {
            &[
                "A shadow. Its limits are the host's hard cap on what mirroring may",
                "cost: when they are full a copy is refused at once (counted as",
                "`dispatch_failed`), never queued behind the primary's traffic.",
            ]
        } else {
            &[]
        };
        entries.push(self.entry("name", Yaml::str(&cluster.name), comment));
        let kind = if cluster.address.is_ip() {
            "STATIC"
        } else {
            "STRICT_DNS"
        };
        entries.push(self.entry("type", Yaml::str(kind), &[]));
        let timeout = if cluster.shadow.is_some() { "0.25s" } else { "1s" };
        entries.push(self.entry("connect_timeout", Yaml::str(timeout), &[]));
        if !cluster.http2 && self.is_dynamic_module() {
            let options = Yaml::map([
                (
                    "@type",
                    Yaml::str("type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"),
                ),
                (
                    "explicit_http_config",
                    Yaml::map([(
                        "http_protocol_options",
                        Yaml::map([("enable_trailers", Yaml::Bool(true))]).flow(),
                    )]),
                ),
            ]);
            entries.push(self.entry(
                "typed_extension_protocol_options",
                Yaml::map([("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", options)]),
                &["HTTP/1.1 trailers go upstream (the primary's and the copy's)."],
            ));
        }
        if cluster.http2 {
            let options = Yaml::map([
                (
                    "@type",
                    Yaml::str("type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"),
                ),
                (
                    "explicit_http_config",
                    Yaml::map([("http2_protocol_options", Yaml::Map(Vec::new()))]).flow(),
                ),
            ]);
            entries.push(self.entry(
                "typed_extension_protocol_options",
                Yaml::map([("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", options)]),
                &[],
            ));
        }
        if let Some(limits) = cluster.shadow {
            let max = Yaml::int(limits.max_requests);
            let threshold = Yaml::map([
                ("priority", Yaml::str("DEFAULT")),
                ("max_connections", max.clone()),
                ("max_pending_requests", max.clone()),
                ("max_requests", max),
                ("max_retries", Yaml::int(0)),
            ]);
            entries.push(self.entry(
                "circuit_breakers",
                Yaml::map([("thresholds", Yaml::Seq(vec![threshold]))]),
                &[],
            ));
            if limits.outlier_detection {
                entries.push(self.entry(
                    "outlier_detection",
                    outlier_detection(),
                    &[
                        "Eject a shadow whose connections fail (refused, reset) so copies fail",
                        "fast with no socket work; its 5xx answers are what the mirror is for",
                        "and never eject it.",
                    ],
                ));
            }
        }
        let endpoint = Yaml::map([(
            "lb_endpoints",
            Yaml::Seq(vec![Yaml::map([(
                "endpoint",
                Yaml::map([("address", cluster.address.socket())]),
            )])]),
        )]);
        entries.push(self.entry(
            "load_assignment",
            Yaml::map([
                ("cluster_name", Yaml::str(&cluster.name)),
                ("endpoints", Yaml::Seq(vec![endpoint])),
            ]),
            &[],
        ));
        Yaml::Map(entries)
    }
}

/// `text` as comment lines of at most 78 characters (a no-break space
/// keeps two words on one line).
fn wrap(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    // Split at plain spaces only: a no-break space keeps its two words.
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !line.is_empty() && line.len() + 1 + word.len() > 78 {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines.into_iter().map(|l| l.replace('\u{a0}', " ")).collect()
}

/// The bootstrap's `stats_tags`: one per label of the metric catalogue.
pub fn stats_tags() -> Yaml {
    Yaml::Seq(
        catalogue::stats_tags()
            .into_iter()
            .map(|(name, regex)| Yaml::map([("tag_name", Yaml::str(name)), ("regex", Yaml::str(regex))]))
            .collect(),
    )
}

fn outlier_detection() -> Yaml {
    Yaml::map([
        ("split_external_local_origin_errors", Yaml::Bool(true)),
        ("consecutive_local_origin_failure", Yaml::int(5)),
        ("enforcing_consecutive_local_origin_failure", Yaml::int(100)),
        ("enforcing_consecutive_5xx", Yaml::int(0)),
        ("enforcing_consecutive_gateway_failure", Yaml::int(0)),
        ("enforcing_success_rate", Yaml::int(0)),
        ("interval", Yaml::str("1s")),
        ("base_ejection_time", Yaml::str("5s")),
        ("max_ejection_percent", Yaml::int(100)),
    ])
}

/// `request_mirror_policies` entry: the percentage as a fraction of a
/// hundred when whole, else of a million.
fn native_mirror(mirror: &NativeMirror) -> Yaml {
    let whole = mirror.percentage.fract() == 0.0;
    let (numerator, denominator) = if whole {
        (mirror.percentage, "HUNDRED")
    } else {
        (mirror.percentage * 10_000.0, "MILLION")
    };
    let fraction = Yaml::map([
        ("numerator", Yaml::int(numerator.round().clamp(0.0, 1_000_000.0) as i64)),
        ("denominator", Yaml::str(denominator)),
    ]);
    Yaml::map([
        ("cluster", Yaml::str(&mirror.cluster)),
        ("runtime_fraction", Yaml::map([("default_value", fraction.flow())])),
    ])
}
