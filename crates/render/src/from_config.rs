//! From a plugin configuration (parsed by the filter's own parser) to an
//! Envoy bootstrap: the routes of `routes` and the default, each forwarding
//! to its `forward.destinations` as `weighted_clusters`; the filter with the
//! plugin JSON; a cluster for every destination and mirror, each from a
//! `--cluster NAME=HOST:PORT[,h2]`.

use crate::envoy::{
    Address, Bootstrap, Cluster, Mirroring, NativeMirror, Route, ShadowLimits, REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT,
    SHADOW_LIMITS,
};
use vrata_mirror_core::config::{AuthorityRewrite, Destination, ForwardPolicy, MirrorPolicy, PluginConfig};

/// `NAME=HOST:PORT[,h2]`: where a destination's cluster is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub name: String,
    pub address: Address,
    pub http2: bool,
}

impl ClusterSpec {
    pub fn parse(text: &str) -> Result<ClusterSpec, String> {
        let (name, rest) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?} is not NAME=HOST:PORT[,h2]"))?;
        if name.is_empty() {
            return Err(format!("{text:?} is not NAME=HOST:PORT[,h2] (no name)"));
        }
        let (address, http2) = match rest.split_once(',') {
            None => (rest, false),
            Some((address, "h2")) => (address, true),
            Some((_, option)) => {
                return Err(format!(
                    "{text:?}: unknown option {option:?} (the one option is h2: speak HTTP/2 to the cluster)"
                ))
            }
        };
        Ok(ClusterSpec {
            name: name.to_owned(),
            address: Address::parse(address).map_err(|e| format!("{name}: {e}"))?,
            http2,
        })
    }
}

/// How copies are made (`--mirroring`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirroringMode {
    /// The wasm filter with the plugin JSON (the default).
    Wasm,
    /// The native host (crates/native), the dynamic module at
    /// `EnvoyOptions::module`, for an Envoy with `workers` workers.
    DynamicModule { workers: u32 },
    /// Envoy's own `request_mirror_policies` (for comparing against it):
    /// only a destination and a percentage can be expressed.
    Native,
    /// No filter and no mirroring (a baseline).
    None,
}

/// Everything `vrata-mirror envoy` needs besides the configuration.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// The filter module's path as Envoy should open it: the `.wasm`, or
    /// the native host's `.so` (`MirroringMode::DynamicModule`).
    pub module: String,
    pub listen: Address,
    pub admin: Address,
    pub clusters: Vec<ClusterSpec>,
    /// `NAME=PREFIX`: the match of a route (default `/NAME`). A name that
    /// "routes" does not have adds a route of that name, before the
    /// catch-all, that uses the default block.
    pub prefixes: Vec<(String, String)>,
    /// The catch-all route's name (prefix `/`).
    pub default_route: String,
    pub mirroring: MirroringMode,
    pub shadow_limits: ShadowLimits,
    pub node: String,
    /// `http.async_response_buffer_limit` (see [`Bootstrap`]).
    pub async_response_buffer_limit: Option<u64>,
    pub header: Vec<String>,
}

impl EnvoyOptions {
    pub fn new(module: &str, listen: Address, admin: Address) -> EnvoyOptions {
        EnvoyOptions {
            module: module.to_owned(),
            listen,
            admin,
            clusters: Vec::new(),
            prefixes: Vec::new(),
            default_route: "default".to_owned(),
            mirroring: MirroringMode::Wasm,
            shadow_limits: SHADOW_LIMITS,
            node: "vrata-mirror".to_owned(),
            async_response_buffer_limit: Some(REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT),
            header: Vec::new(),
        }
    }
}

/// The block that serves the catch-all route `default_route`: its own entry
/// in "routes" if it has one, else the top-level "forward", with the field
/// path errors name it by.
pub fn default_block<'a>(config: &'a PluginConfig, default_route: &str) -> (&'a ForwardPolicy, String) {
    let at = if config.routes.iter().any(|(n, _)| n == default_route) {
        format!("routes[{default_route:?}].forward")
    } else {
        "forward".to_owned()
    };
    (config.policy_for(Some(default_route)), at)
}

/// The path prefix a `--route NAME=PREFIX` gives `name` (the last one wins).
pub fn prefix_of(prefixes: &[(String, String)], name: &str) -> Option<String> {
    prefixes.iter().rev().find(|(n, _)| n == name).map(|(_, p)| p.clone())
}

/// The bootstrap for `config` (parsed from `text`, which the filter gets
/// as written). Errors are one line and name what is missing or wrong.
pub fn bootstrap(text: &str, config: &PluginConfig, options: &EnvoyOptions) -> Result<Bootstrap, String> {
    let (default_policy, default_at) = default_block(config, &options.default_route);
    let fallback = (default_policy.destinations.as_slice(), default_at.as_str());
    let prefix_or = |name: &str, default: String| prefix_of(&options.prefixes, name).unwrap_or(default);

    let mut routes = Vec::new();
    for (name, policy) in config.routes.iter().filter(|(n, _)| *n != options.default_route) {
        let at = format!("routes[{name:?}].forward");
        let clusters = weighted(policy, &at, fallback)?;
        routes.push(Route {
            name: Some(name.clone()),
            prefix: prefix_or(name, format!("/{name}")),
            grpc: false,
            clusters,
            native_mirrors: native_mirrors(policy, &at, options.mirroring)?,
            comment: Vec::new(),
        });
    }
    // A `--route` name that "routes" does not have: a route of its own (its
    // metrics labelled with its name) that uses the default block.
    let mut extra: Vec<&str> = Vec::new();
    for (name, _) in &options.prefixes {
        let known = *name == options.default_route || config.routes.iter().any(|(n, _)| n == name);
        if !known && !extra.contains(&name.as_str()) {
            extra.push(name);
        }
    }
    for name in extra {
        routes.push(Route {
            name: Some(name.to_owned()),
            prefix: prefix_or(name, format!("/{name}")),
            grpc: false,
            clusters: weighted(default_policy, &default_at, (&[], &default_at))?,
            native_mirrors: native_mirrors(default_policy, &default_at, options.mirroring)?,
            comment: Vec::new(),
        });
    }
    routes.push(Route {
        name: Some(options.default_route.clone()),
        prefix: prefix_or(&options.default_route, "/".to_owned()),
        grpc: false,
        clusters: weighted(default_policy, &default_at, (&[], &default_at))?,
        native_mirrors: native_mirrors(default_policy, &default_at, options.mirroring)?,
        comment: vec![format!(
            "Every other request: the configuration's {default_at:?} block."
        )],
    });

    let clusters = clusters(config, &routes, options)?;
    let mut bootstrap = Bootstrap::new(options.listen.clone(), options.admin.clone());
    bootstrap.node = options.node.clone();
    bootstrap.routes = routes;
    bootstrap.clusters = clusters;
    bootstrap.async_response_buffer_limit = options.async_response_buffer_limit;
    bootstrap.header = options.header.clone();
    bootstrap.mirroring = match options.mirroring {
        MirroringMode::Wasm => Mirroring::Wasm {
            wasm: options.module.clone(),
            plugin: text.to_owned(),
        },
        MirroringMode::DynamicModule { workers } => Mirroring::DynamicModule {
            module: options.module.clone(),
            plugin: text.to_owned(),
            workers,
        },
        MirroringMode::Native => Mirroring::Native,
        MirroringMode::None => Mirroring::None,
    };
    Ok(bootstrap)
}

/// A block's `destinations` as weighted clusters; a block without any
/// forwards like `fallback` (the default route's).
pub fn weighted(
    policy: &ForwardPolicy,
    at: &str,
    fallback: (&[Destination], &str),
) -> Result<Vec<(String, u32)>, String> {
    let (list, at) = if policy.destinations.is_empty() {
        fallback
    } else {
        (policy.destinations.as_slice(), at)
    };
    if list.is_empty() {
        return Err(format!(
            "{at}.destinations: missing; the default route needs at least one destination to forward to \
             (routes without \"destinations\" forward like the default route)"
        ));
    }
    let written = list.iter().filter(|d| d.weight.is_some()).count();
    if written != 0 && written != list.len() {
        let i = list.iter().position(|d| d.weight.is_none()).unwrap_or(0);
        return Err(format!(
            "{at}.destinations[{i}].weight: missing while other destinations have one; give every destination a weight"
        ));
    }
    let mut clusters: Vec<(String, u32)> = Vec::with_capacity(list.len());
    let mut total: u64 = 0;
    for (i, destination) in list.iter().enumerate() {
        if clusters.iter().any(|(name, _)| *name == destination.id) {
            return Err(format!(
                "{at}.destinations[{i}].destinationId: {:?} is listed twice; list each cluster once",
                destination.id
            ));
        }
        let weight = match destination.weight {
            None if list.len() == 1 => 100,
            None => 1,
            Some(w) => u32::try_from(w).map_err(|_| {
                format!(
                    "{at}.destinations[{i}].weight: {w} is over Envoy's limit of {}",
                    u32::MAX
                )
            })?,
        };
        total += u64::from(weight);
        clusters.push((destination.id.clone(), weight));
    }
    if total == 0 {
        return Err(format!(
            "{at}.destinations: every weight is 0; Envoy needs at least one positive weight"
        ));
    }
    if total > u64::from(u32::MAX) {
        return Err(format!(
            "{at}.destinations: the weights add up to {total}, over Envoy's limit of {}",
            u32::MAX
        ));
    }
    Ok(clusters)
}

/// With `--mirroring native`, a block's mirrors as Envoy's own; a mirror
/// that sets what Envoy's native mirroring cannot do is an error.
fn native_mirrors(policy: &ForwardPolicy, at: &str, mode: MirroringMode) -> Result<Vec<NativeMirror>, String> {
    if mode != MirroringMode::Native {
        return Ok(Vec::new());
    }
    policy
        .mirrors
        .iter()
        .map(|mirror| {
            if let Some(field) = not_native(mirror) {
                return Err(format!(
                    "--mirroring native: {at}: the mirror to {:?} sets {field}, which Envoy's native mirroring cannot do",
                    mirror.destination
                ));
            }
            Ok(NativeMirror {
                cluster: mirror.destination.clone(),
                percentage: percentage(mirror),
            })
        })
        .collect()
}

fn not_native(mirror: &MirrorPolicy) -> Option<&'static str> {
    if mirror.sample_by.is_some() {
        Some("sampleBy")
    } else if mirror.methods.is_some() {
        Some("methods")
    } else if mirror.authority != AuthorityRewrite::Keep {
        Some("authority or hostSuffix")
    } else if !mirror.add_headers.is_empty() {
        Some("addHeaders")
    } else if !mirror.remove_headers.is_empty() {
        Some("removeHeaders")
    } else if mirror.compare.is_some() {
        Some("compare")
    } else {
        None
    }
}

/// A mirror's percentage as configured (to the sampler's precision).
pub fn percentage(mirror: &MirrorPolicy) -> f64 {
    (mirror.rate.fraction() * 100.0 * 1e6).round() / 1e6
}

/// Every cluster the routes and mirrors name, each from its `--cluster`:
/// forward destinations first, then shadows, in the order they appear.
fn clusters(config: &PluginConfig, routes: &[Route], options: &EnvoyOptions) -> Result<Vec<Cluster>, String> {
    // (name, what names it, is a shadow): a cluster the primary is
    // forwarded to never gets the shadow's limits.
    let mut names: Vec<(String, String, bool)> = Vec::new();
    for route in routes {
        for (cluster, _) in &route.clusters {
            if !names.iter().any(|(n, _, _)| n == cluster) {
                let route_name = route.name.as_deref().unwrap_or("");
                names.push((cluster.clone(), format!("a destination of route {route_name:?}"), false));
            }
        }
    }
    for shadow in &config.destinations {
        if !names.iter().any(|(n, _, _)| n == shadow) {
            names.push((shadow.clone(), "a mirror's destinationId".to_owned(), true));
        }
    }
    for (i, spec) in options.clusters.iter().enumerate() {
        if options
            .clusters
            .get(..i)
            .is_some_and(|e| e.iter().any(|s| s.name == spec.name))
        {
            return Err(format!("--cluster {}: given twice", spec.name));
        }
        if !names.iter().any(|(n, _, _)| *n == spec.name) {
            let known: Vec<String> = names.iter().map(|(n, _, _)| format!("{n:?}")).collect();
            return Err(format!(
                "--cluster {}: unknown cluster; the configuration names {}",
                spec.name,
                known.join(", ")
            ));
        }
    }
    names
        .into_iter()
        .map(|(name, role, is_shadow)| {
            let spec = options
                .clusters
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(|| format!("{name:?} ({role}) has no --cluster; add --cluster {name}=HOST:PORT"))?;
            let shadow = is_shadow.then_some(options.shadow_limits);
            Ok(Cluster {
                name,
                address: spec.address.clone(),
                http2: spec.http2,
                shadow,
            })
        })
        .collect()
}
