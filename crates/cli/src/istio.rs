//! `vrata-mirror istio`: the WasmPlugin and the VirtualService for a
//! plugin configuration, from the one renderer (crates/render).

use crate::{check, read_config, Failure};
use std::path::PathBuf;
use vrata_mirror_render::istio::{manifests, pin_oci_url, stats_annotation, IstioOptions};

/// Print Istio manifests for a plugin configuration: a WasmPlugin (phase
/// STATS, failStrategy FAIL_OPEN, the configuration as pluginConfig) and a
/// VirtualService with one named http route per entry of "routes" plus the
/// catch-all, each forwarding to its forward.destinations, weighted. In
/// Istio every destinationId is the sidecar's cluster name,
/// outbound|<port>|<subset>|<service FQDN>.
#[derive(Debug, Clone, clap::Args)]
pub struct IstioArgs {
    /// The plugin configuration (JSON), checked with the filter's parser.
    pub config: PathBuf,
    /// Where sidecars fetch the module: oci://…, https://… (with --sha256)
    /// or file://….
    #[arg(long)]
    pub url: String,
    /// The module's SHA-256, hex (for an https:// URL).
    #[arg(long, value_name = "HEX", value_parser = sha256, conflicts_with_all = ["image_digest", "image_layout"])]
    pub sha256: Option<String>,
    /// The OCI image's digest (what `vrata-mirror image` and the registry
    /// print): pins the WasmPlugin, as `@sha256:…` in the oci:// URL and as
    /// its sha256 field, which Istio checks against the pulled manifest.
    #[arg(long, value_name = "sha256:HEX", conflicts_with = "image_layout")]
    pub image_digest: Option<String>,
    /// An OCI image layout of `vrata-mirror image` (e.g. target/image/vrata_mirror):
    /// pins the WasmPlugin to its digest, as --image-digest does.
    #[arg(long, value_name = "DIR")]
    pub image_layout: Option<PathBuf>,
    /// imagePullPolicy: IfNotPresent, or Always (pull again when the
    /// WasmPlugin changes; a pinned module is never pulled again).
    #[arg(long, value_enum, default_value_t = PullPolicy::IfNotPresent)]
    pub image_pull_policy: PullPolicy,
    /// imagePullSecret: a Secret of type kubernetes.io/dockerconfigjson in
    /// the WasmPlugin's namespace, for a private registry.
    #[arg(long, value_name = "SECRET")]
    pub image_pull_secret: Option<String>,
    /// The namespace of both resources.
    #[arg(long)]
    pub namespace: String,
    /// The name of both resources.
    #[arg(long, default_value = "vrata-mirror")]
    pub name: String,
    /// A label of the workloads that load the plugin (WasmPlugin selector).
    #[arg(long = "selector", value_name = "KEY=VALUE", value_parser = pair)]
    pub selector: Vec<(String, String)>,
    /// A host the VirtualService applies to (at least one).
    #[arg(long = "host", required = true)]
    pub hosts: Vec<String>,
    /// A gateway the VirtualService binds to (none: the mesh's sidecars).
    #[arg(long = "gateway")]
    pub gateways: Vec<String>,
    /// The URI prefix an http route matches (default: /NAME).
    #[arg(long = "route", value_name = "NAME=PREFIX", value_parser = pair)]
    pub prefixes: Vec<(String, String)>,
    /// The name of the catch-all http route.
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub default_route: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    #[value(name = "IfNotPresent")]
    IfNotPresent,
    #[value(name = "Always")]
    Always,
}

impl PullPolicy {
    pub fn name(self) -> &'static str {
        match self {
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Always => "Always",
        }
    }
}

/// The URL and sha256 field: pinned to the image's digest when one is
/// given (or read from a layout).
fn pinned(args: &IstioArgs) -> Result<(String, Option<String>), Failure> {
    let digest = match (&args.image_digest, &args.image_layout) {
        (Some(digest), _) => digest.clone(),
        (None, Some(dir)) => crate::oci::Layout::read(dir).map_err(Failure::new)?.digest,
        (None, None) => return Ok((args.url.clone(), args.sha256.clone())),
    };
    let url = pin_oci_url(&args.url, &digest).map_err(Failure::new)?;
    let hex = digest.trim_start_matches("sha256:").to_owned();
    Ok((url, Some(hex)))
}

pub fn pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() && !value.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

fn sha256(text: &str) -> Result<String, String> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a SHA-256 (64 lower-case hex digits)"))
    }
}

pub fn run(args: &IstioArgs) -> Result<String, Failure> {
    let text = read_config(&args.config)?;
    let config = check::check(&text).map_err(Failure::new)?;
    // The same document, key order kept (serde_json's preserve_order).
    let plugin: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| Failure::new(format!("{}: {e}", args.config.display())))?;
    let mut header = vec![
        format!("Generated by `vrata-mirror istio` from {}.", args.config.display()),
        String::new(),
    ];
    header.extend(stats_annotation());
    header.push(String::new());
    let (url, sha256) = pinned(args)?;
    let options = IstioOptions {
        name: args.name.clone(),
        namespace: args.namespace.clone(),
        url,
        sha256,
        pull_policy: args.image_pull_policy.name().to_owned(),
        pull_secret: args.image_pull_secret.clone(),
        selector: args.selector.clone(),
        hosts: args.hosts.clone(),
        gateways: args.gateways.clone(),
        prefixes: args.prefixes.clone(),
        default_route: args.default_route.clone(),
        header,
    };
    manifests(&plugin, &config, &options).map_err(Failure::new)
}
