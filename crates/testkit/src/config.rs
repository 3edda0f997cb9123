//! One test's Envoy config, printed by the project's one renderer
//! (crates/render, which also prints envoy/envoy.yaml and the benchmark's
//! configs): its plugin JSON (as written, valid or not), routes and
//! clusters, on ephemeral ports.

use super::envoy::{compare_module, native_module, validate_with, wasm_module};
use super::host::Host;
use vrata_mirror_render::envoy::{
    Address, Bootstrap, Cluster as EnvoyCluster, Mirroring, Route as EnvoyRoute, ShadowLimits,
    REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT,
};

/// A route to the primary: `name` is what the plugin's `routes` map and the
/// metrics' `route` label see (`None`: an unnamed route).
pub struct Route {
    pub name: Option<&'static str>,
    pub prefix: &'static str,
}

/// A cluster on 127.0.0.1.
pub struct Cluster {
    pub name: &'static str,
    pub port: u16,
    /// Circuit breaker max_requests (and connections / pending).
    pub max_requests: u32,
}

pub struct Setup {
    pub plugin_json: String,
    /// Talk HTTP/2 (h2c) to the upstreams: HTTP/1 upstreams drop request trailers.
    pub http2_upstreams: bool,
    pub routes: Vec<Route>,
    pub primary_port: u16,
    pub shadows: Vec<Cluster>,
    /// `http.async_response_buffer_limit` in the bootstrap's runtime, as
    /// envoy/envoy.yaml sets it (`None`: Envoy's default, 32 MiB).
    pub async_response_buffer_limit: Option<u64>,
    /// Load the comparison module (`vrata_mirror_compare.wasm`) instead of
    /// `vrata_mirror.wasm`. Wasm only: the native host's one `.so` compares.
    pub compare_module: bool,
    /// The filter's host (default: the wasm module).
    pub host: Host,
    /// Envoy's workers (`--concurrency`), default 1: what [`Setup::start`]
    /// and [`Setup::validate`] run Envoy with, and, on the native host, how
    /// many times the filter goes in the chain (one per worker).
    pub workers: u32,
}

impl Setup {
    /// One shadow cluster named `shadow`, routes `api` (/api) and `default` (/).
    pub fn new(plugin_json: &str, primary_port: u16, shadow_port: u16) -> Setup {
        Setup {
            plugin_json: plugin_json.to_owned(),
            http2_upstreams: false,
            routes: vec![
                Route {
                    name: Some("api"),
                    prefix: "/api",
                },
                Route {
                    name: Some("default"),
                    prefix: "/",
                },
            ],
            primary_port,
            shadows: vec![Cluster {
                name: "shadow",
                port: shadow_port,
                max_requests: 1024,
            }],
            async_response_buffer_limit: Some(REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT),
            compare_module: false,
            host: Host::Wasm,
            workers: 1,
        }
    }

    /// The same setup on `host` (builder style: `Setup::new(..).on(host)`).
    pub fn on(mut self, host: Host) -> Setup {
        self.host = host;
        self
    }

    /// The same setup with `workers` Envoy workers (builder style).
    pub fn with_workers(mut self, workers: u32) -> Setup {
        self.workers = workers;
        self
    }

    /// `envoy --mode validate` on the config, at [`Setup::workers`]
    /// (the native host checks its per-worker filters against it):
    /// (accepted, everything Envoy printed).
    pub fn validate(&self) -> (bool, String) {
        validate_with(&self.render(), &["--concurrency", &self.workers.to_string()])
    }

    /// The config, from the project's one renderer (crates/render).
    pub fn render(&self) -> String {
        self.bootstrap().render()
    }

    /// The bootstrap model the config is printed from.
    pub fn bootstrap(&self) -> Bootstrap {
        let mut bootstrap = Bootstrap::new(Address::loopback(0), Address::loopback(0));
        bootstrap.node = "vrata-e2e".to_owned();
        bootstrap.comments = false;
        bootstrap.stats_flush_interval = Some("0.2s".to_owned());
        bootstrap.async_response_buffer_limit = self.async_response_buffer_limit;
        bootstrap.routes = self
            .routes
            .iter()
            .map(|route| EnvoyRoute::to_one(route.name, route.prefix, "primary"))
            .collect();
        bootstrap.mirroring = match self.host {
            Host::Wasm => Mirroring::Wasm {
                wasm: if self.compare_module {
                    compare_module()
                } else {
                    wasm_module()
                }
                .display()
                .to_string(),
                plugin: self.plugin_json.clone(),
            },
            Host::Native => Mirroring::DynamicModule {
                module: native_module().display().to_string(),
                plugin: self.plugin_json.clone(),
                workers: self.workers,
            },
        };
        let mut primary = EnvoyCluster::primary("primary", Address::loopback(self.primary_port));
        primary.http2 = self.http2_upstreams;
        bootstrap.clusters.push(primary);
        for shadow in &self.shadows {
            let limits = ShadowLimits {
                max_requests: shadow.max_requests,
                // Off here, so that a test sees every copy the filter sends
                // to a failing shadow reach it (envoy/envoy.yaml has it on).
                outlier_detection: false,
            };
            let mut cluster = EnvoyCluster::shadow(shadow.name, Address::loopback(shadow.port), limits);
            cluster.http2 = self.http2_upstreams;
            bootstrap.clusters.push(cluster);
        }
        bootstrap
    }
}
