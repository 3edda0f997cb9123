//! Renders an Envoy config shaped like envoy/envoy.yaml (same filter wiring,
//! same stats_tags) for one test: its plugin JSON, routes and clusters, on
//! ephemeral ports.

use super::envoy::wasm_module;
use vrata_mirror_core::telemetry::catalogue;

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
        }
    }

    pub fn render(&self) -> String {
        let routes: String = self.routes.iter().map(render_route).collect();
        let protocol = if self.http2_upstreams { HTTP2_UPSTREAM } else { "" };
        let shadows: String = self.shadows.iter().map(|c| render_shadow(c, protocol)).collect();
        let plugin = serde_json::to_string(&self.plugin_json).expect("json string");
        let wasm = wasm_module();
        let stats_tags: String = catalogue::stats_tags()
            .iter()
            .map(|(name, regex)| format!("  - {{ tag_name: {name}, regex: '{regex}' }}\n"))
            .collect();
        format!(
            r#"node: {{ id: vrata-e2e, cluster: vrata-e2e }}
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
stats_flush_interval: 0.2s
stats_config:
  stats_tags:
{stats_tags}static_resources:
  listeners:
  - name: ingress
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          codec_type: AUTO
          upgrade_configs: [{{ upgrade_type: websocket }}]
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
{routes}          http_filters:
          - name: vrata.mirror
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: vrata_mirror
                root_id: vrata_mirror
                failure_policy: FAIL_OPEN
                vm_config:
                  vm_id: vrata_mirror
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: "{wasm}" }} }}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {plugin}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: primary
    type: STATIC
    connect_timeout: 1s
{protocol}    load_assignment:
      cluster_name: primary
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {primary} }} }} }} }}] }}]
{shadows}"#,
            wasm = wasm.display(),
            primary = self.primary_port,
        )
    }
}

fn render_route(route: &Route) -> String {
    let name = route.name.map(|n| format!("name: {n}, ")).unwrap_or_default();
    format!(
        "              - {{ {name}match: {{ prefix: \"{}\" }}, route: {{ weighted_clusters: {{ clusters: [{{ name: primary, weight: 100 }}] }} }} }}\n",
        route.prefix
    )
}

const HTTP2_UPSTREAM: &str = r#"    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }
"#;

fn render_shadow(cluster: &Cluster, protocol: &str) -> String {
    format!(
        r#"  - name: {name}
    type: STATIC
    connect_timeout: 0.25s
{protocol}    circuit_breakers:
      thresholds:
      - {{ priority: DEFAULT, max_connections: {max}, max_pending_requests: {max}, max_requests: {max}, max_retries: 0 }}
    load_assignment:
      cluster_name: {name}
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }} }}] }}]
"#,
        name = cluster.name,
        max = cluster.max_requests,
        port = cluster.port,
    )
}
