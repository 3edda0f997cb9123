//! Istio manifests for a plugin configuration: the `WasmPlugin` that loads
//! the filter with it, and a `VirtualService` whose http routes carry the
//! names of "routes" (the route name the filter reads) and forward to each
//! block's `forward.destinations`, weighted. In Istio a destination is the
//! sidecar's cluster name, `outbound|<port>|<subset>|<host>`: that is what
//! the filter dispatches copies to, and what the VirtualService routes to.

use crate::from_config::{default_block, prefix_of, weighted};
use crate::yaml::{print, Entry, Yaml};
use vrata_mirror_core::config::PluginConfig;
use vrata_mirror_core::dispatch::{ASYNC_RESPONSE_BUFFER_LIMIT_KEY, REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT};
use vrata_mirror_core::telemetry::catalogue::Label;

/// Everything `vrata-mirror istio` needs besides the configuration.
#[derive(Debug, Clone)]
pub struct IstioOptions {
    /// `metadata.name` of both resources.
    pub name: String,
    pub namespace: String,
    /// The module: `oci://…`, `https://…` or `file://…`.
    pub url: String,
    /// `spec.sha256`: the module's SHA-256 (hex) for an `https://` URL; for
    /// an `oci://` one, the image's manifest digest (what Istio's fetcher
    /// compares it with).
    pub sha256: Option<String>,
    /// `spec.imagePullPolicy`: `IfNotPresent` or `Always`.
    pub pull_policy: String,
    /// `spec.imagePullSecret`: a Secret in the WasmPlugin's namespace.
    pub pull_secret: Option<String>,
    /// `spec.selector.matchLabels` of the WasmPlugin.
    pub selector: Vec<(String, String)>,
    /// `spec.hosts` of the VirtualService.
    pub hosts: Vec<String>,
    /// `spec.gateways` (none: the mesh's sidecars).
    pub gateways: Vec<String>,
    /// `NAME=PREFIX`: a route's URI prefix (default `/NAME`).
    pub prefixes: Vec<(String, String)>,
    /// The catch-all http route's name (prefix `/`).
    pub default_route: String,
    pub header: Vec<String>,
}

/// An Istio sidecar's cluster name, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IstioCluster {
    pub port: u16,
    pub subset: Option<String>,
    pub host: String,
}

impl IstioCluster {
    /// `outbound|8080||api.shop.svc.cluster.local` (with a subset:
    /// `outbound|8080|v2|api.shop.svc.cluster.local`).
    pub fn parse(name: &str) -> Option<IstioCluster> {
        let mut parts = name.split('|');
        let (Some("outbound"), Some(port), Some(subset), Some(host), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let port = port.parse().ok()?;
        if host.is_empty() {
            return None;
        }
        Some(IstioCluster {
            port,
            subset: (!subset.is_empty()).then(|| subset.to_owned()),
            host: host.to_owned(),
        })
    }
}

fn istio_cluster(id: &str, at: &str) -> Result<IstioCluster, String> {
    IstioCluster::parse(id).ok_or_else(|| {
        format!(
            "{at}: {id:?} is not an Istio sidecar cluster name; in Istio a destination is \
             \"outbound|<port>||<service FQDN>\" (or \"outbound|<port>|<subset>|<service FQDN>\")"
        )
    })
}

/// An `oci://` URL pinned to an image digest (`sha256:HEX`): its tag, if
/// any, replaced by `@sha256:HEX`. Istio's cache keys the module by that
/// digest (pkg/wasm/cache.go), so a pinned URL never pulls another image.
pub fn pin_oci_url(url: &str, digest: &str) -> Result<String, String> {
    let Some(reference) = url.strip_prefix("oci://") else {
        return Err(format!(
            "{url:?}: an image digest pins an oci:// URL (for an https:// one, give the file's --sha256)"
        ));
    };
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .ok_or_else(|| format!("{digest:?} is not an image digest (sha256: and 64 lower-case hex digits)"))?;
    // The repository: up to any @digest, then up to a tag's ':' after the
    // last '/' (a ':' before it is a registry's port).
    let repository = reference.split('@').next().unwrap_or(reference);
    let repository = match repository.rsplit_once('/') {
        Some((registry_and_path, name)) => format!("{registry_and_path}/{}", name.split(':').next().unwrap_or(name)),
        None => repository.split(':').next().unwrap_or(repository).to_owned(),
    };
    Ok(format!("oci://{repository}@sha256:{hex}"))
}

/// The two manifests, as one YAML stream.
pub fn manifests(plugin: &serde_json::Value, config: &PluginConfig, options: &IstioOptions) -> Result<String, String> {
    // Mirrors are dispatched to the sidecar's cluster by name.
    let blocks = std::iter::once(("forward".to_owned(), &config.default_policy)).chain(
        config
            .routes
            .iter()
            .map(|(name, policy)| (format!("routes[{name:?}].forward"), policy)),
    );
    for (at, policy) in blocks {
        for (i, mirror) in policy.mirrors.iter().enumerate() {
            istio_cluster(&mirror.destination, &format!("{at}.mirrors[{i}].destinationId"))?;
        }
    }
    let plugin_doc = print(&wasm_plugin(plugin, options), &options.header);
    let service = print(&virtual_service(config, options)?, &[]);
    Ok(format!("{plugin_doc}---\n{service}"))
}

fn metadata(options: &IstioOptions) -> Yaml {
    Yaml::map([
        ("name", Yaml::str(&options.name)),
        ("namespace", Yaml::str(&options.namespace)),
    ])
}

fn entry(key: &str, value: Yaml, comment: &[&str]) -> Entry {
    Entry {
        key: key.to_owned(),
        value,
        comment: comment.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// The WasmPlugin: after authentication and authorization (phase STATS),
/// failing open, with the plugin JSON as `pluginConfig`.
pub fn wasm_plugin(plugin: &serde_json::Value, options: &IstioOptions) -> Yaml {
    let mut spec = Vec::new();
    if !options.selector.is_empty() {
        let labels = Yaml::map(options.selector.iter().map(|(k, v)| (k.clone(), Yaml::str(v))));
        spec.push(entry("selector", Yaml::map([("matchLabels", labels)]), &[]));
    }
    spec.push(entry("url", Yaml::str(&options.url), &[]));
    if let Some(sha) = &options.sha256 {
        spec.push(entry("sha256", Yaml::str(sha), &[]));
    }
    spec.push(entry("imagePullPolicy", Yaml::str(&options.pull_policy), &[]));
    if let Some(secret) = &options.pull_secret {
        spec.push(entry("imagePullSecret", Yaml::str(secret), &[]));
    }
    spec.push(entry(
        "phase",
        Yaml::str("STATS"),
        &["After authentication and authorization: only traffic the workload accepts is mirrored."],
    ));
    spec.push(entry("type", Yaml::str("HTTP"), &[]));
    spec.push(entry(
        "failStrategy",
        Yaml::str("FAIL_OPEN"),
        &["If the module cannot load or its VM fails, requests pass unfiltered."],
    ));
    spec.push(entry("pluginConfig", Yaml::from_json(plugin), &[]));
    Yaml::Map(vec![
        entry("apiVersion", Yaml::str("extensions.istio.io/v1alpha1"), &[]),
        entry("kind", Yaml::str("WasmPlugin"), &[]),
        entry("metadata", metadata(options), &[]),
        entry("spec", Yaml::Map(spec), &[]),
    ])
}

/// The VirtualService: one named http route per entry of "routes", then
/// the catch-all, each forwarding to its block's destinations (a route
/// without any forwards like the catch-all).
pub fn virtual_service(config: &PluginConfig, options: &IstioOptions) -> Result<Yaml, String> {
    let (default_policy, default_at) = default_block(config, &options.default_route);
    let fallback = (default_policy.destinations.as_slice(), default_at.as_str());
    let mut http = Vec::new();
    for (name, policy) in config.routes.iter().filter(|(n, _)| *n != options.default_route) {
        let at = format!("routes[{name:?}].forward");
        let (list, list_at) = if policy.destinations.is_empty() {
            fallback
        } else {
            (policy.destinations.as_slice(), at.as_str())
        };
        let weights = weighted(policy, &at, fallback)?;
        http.push(http_route(
            name,
            Some(prefix_of(&options.prefixes, name).unwrap_or_else(|| format!("/{name}"))),
            list,
            list_at,
            &weights,
        )?);
    }
    let weights = weighted(default_policy, &default_at, (&[], &default_at))?;
    let prefix = prefix_of(&options.prefixes, &options.default_route);
    http.push(http_route(
        &options.default_route,
        prefix,
        &default_policy.destinations,
        &default_at,
        &weights,
    )?);
    let mut spec = vec![entry(
        "hosts",
        Yaml::Seq(options.hosts.iter().map(Yaml::str).collect()),
        &[],
    )];
    if !options.gateways.is_empty() {
        spec.push(entry(
            "gateways",
            Yaml::Seq(options.gateways.iter().map(Yaml::str).collect()),
            &[],
        ));
    }
    spec.push(entry(
        "http",
        Yaml::Seq(http),
        &[
            "Each http route's name is the Envoy route name the filter reads",
            "(xds.route_name): the keys of the plugin's \"routes\", and the metrics' `route`.",
        ],
    ));
    Ok(Yaml::Map(vec![
        entry("apiVersion", Yaml::str("networking.istio.io/v1"), &[]),
        entry("kind", Yaml::str("VirtualService"), &[]),
        entry("metadata", metadata(options), &[]),
        entry("spec", Yaml::Map(spec), &[]),
    ]))
}

fn http_route(
    name: &str,
    prefix: Option<String>,
    destinations: &[vrata_mirror_core::config::Destination],
    at: &str,
    weights: &[(String, u32)],
) -> Result<Yaml, String> {
    let mut route = vec![entry("name", Yaml::str(name), &[])];
    if let Some(prefix) = prefix {
        let uri = Yaml::map([("prefix", Yaml::str(prefix))]);
        route.push(entry("match", Yaml::Seq(vec![Yaml::map([("uri", uri.flow())])]), &[]));
    }
    let mut targets = Vec::new();
    for (i, (id, weight)) in weights.iter().enumerate() {
        let index = destinations.iter().position(|d| d.id == *id).unwrap_or(i);
        let cluster = istio_cluster(id, &format!("{at}.destinations[{index}].destinationId"))?;
        let mut destination = vec![entry("host", Yaml::str(&cluster.host), &[])];
        if let Some(subset) = &cluster.subset {
            destination.push(entry("subset", Yaml::str(subset), &[]));
        }
        destination.push(entry(
            "port",
            Yaml::map([("number", Yaml::int(cluster.port))]).flow(),
            &[],
        ));
        targets.push(Yaml::map([
            ("destination", Yaml::Map(destination)),
            ("weight", Yaml::int(*weight)),
        ]));
    }
    route.push(entry("route", Yaml::Seq(targets), &[]));
    Ok(Yaml::Map(route))
}

/// Comment lines: the annotation that exports the filter's metrics from a
/// workload's sidecar with their labels (the metric catalogue's), and
/// bounds what Envoy buffers of each answer to a copy (README: "Memory").
pub fn stats_annotation() -> Vec<String> {
    let mut lines = vec![
        "Export the filter's metrics with their labels and bound what Envoy buffers of".to_owned(),
        "each answer to a copy (README: \"Memory\"), on the workload's pod template:".to_owned(),
        "  proxy.istio.io/config: |".to_owned(),
        "    proxyStatsMatcher:".to_owned(),
        "      inclusionRegexps:".to_owned(),
        "      - \".*vrata_mirror_.*\"".to_owned(),
        "    extraStatTags:".to_owned(),
    ];
    lines.extend(Label::ALL.iter().map(|label| format!("    - {}", label.name())));
    lines.push("    runtimeValues:".to_owned());
    lines.push(format!(
        "      \"{ASYNC_RESPONSE_BUFFER_LIMIT_KEY}\": \"{REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT}\""
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::pin_oci_url;

    const DIGEST: &str = "sha256:ccbe1e338cb58b1651624f74666724fdce9b90eb1ea90768bb06c6a3eb060181";

    #[test]
    fn a_pinned_url_has_the_digest_instead_of_the_tag() {
        let pinned = format!("oci://ghcr.io/org/vrata-mirror@{DIGEST}");
        for url in [
            "oci://ghcr.io/org/vrata-mirror:0.1.0",
            "oci://ghcr.io/org/vrata-mirror",
            "oci://ghcr.io/org/vrata-mirror@sha256:0000",
        ] {
            assert_eq!(pin_oci_url(url, DIGEST).as_deref(), Ok(pinned.as_str()), "{url}");
        }
        // A registry's port is not a tag.
        assert_eq!(
            pin_oci_url("oci://127.0.0.1:5000/vrata-mirror:latest", DIGEST).as_deref(),
            Ok(format!("oci://127.0.0.1:5000/vrata-mirror@{DIGEST}").as_str())
        );
    }

    #[test]
    fn only_oci_urls_and_sha256_digests_pin() {
        assert!(pin_oci_url("https://example.com/m.wasm", DIGEST).is_err());
        assert!(pin_oci_url("oci://ghcr.io/org/m:1", "sha256:ABC").is_err());
        assert!(pin_oci_url("oci://ghcr.io/org/m:1", &DIGEST.replace("sha256", "sha512")).is_err());
    }
}
