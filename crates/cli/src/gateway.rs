//! `vrata-mirror gateway`: Envoy Gateway's HTTPRoute, EnvoyExtensionPolicy
//! and EnvoyProxy for a plugin configuration, from the one renderer
//! (crates/render).

use crate::pin::ImagePin;
use crate::{check, read_config, Failure};
use std::path::PathBuf;
use vrata_mirror_render::envoy::Address;
use vrata_mirror_render::gateway::{
    manifests, Backend, DynamicModule, GatewayOptions, Module, ModuleSource, WasmImage,
};

/// Print Envoy Gateway manifests for a plugin configuration: an HTTPRoute
/// with one named rule per entry of "routes" plus the catch-all, each
/// forwarding to its forward.destinations as weighted backendRefs; an
/// EnvoyExtensionPolicy on it that loads the wasm module from its OCI image
/// (fail-open, the configuration as config, "routes" keyed by Envoy
/// Gateway's route names), or with --dynamic-module the native host once per
/// worker; and an EnvoyProxy whose bootstrap merge adds the stats tag rules,
/// the buffer limit (wasm) and a cluster per mirror destination, and for the
/// native host its dynamicModules allow-list and concurrency.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// The plugin configuration (JSON), checked with the filter's parser.
    pub config: PathBuf,
    /// The wasm module's OCI image: REGISTRY/NAME:TAG (oci:// is dropped).
    #[arg(long, value_name = "IMAGE", required_unless_present_any = ["dynamic_module", "dynamic_module_url"])]
    pub image: Option<String>,
    /// In place of --image: the native host (the dynamic module), at this
    /// absolute path on the proxy's filesystem; the EnvoyProxy lists it in
    /// its dynamicModules allow-list and the policy loads it once per worker.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["image", "dynamic_module_url"])]
    pub dynamic_module: Option<String>,
    /// In place of --image: the native host, fetched by Envoy from this
    /// http(s) URL (with --dynamic-module-sha256).
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "image",
        requires = "dynamic_module_sha256"
    )]
    pub dynamic_module_url: Option<String>,
    /// The SHA-256 (hex) of the .so at --dynamic-module-url, which Envoy checks.
    #[arg(long, value_name = "HEX", requires = "dynamic_module_url")]
    pub dynamic_module_sha256: Option<String>,
    /// With the native host: the proxy's worker count (EnvoyProxy
    /// concurrency), which the policy's per-worker filters must match.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    #[command(flatten)]
    pub pin: ImagePin,
    /// The namespace of every resource.
    #[arg(long)]
    pub namespace: String,
    /// The name of every resource (the HTTPRoute's is part of the route names).
    #[arg(long, default_value = "vrata-mirror")]
    pub name: String,
    /// A Gateway the HTTPRoute attaches to (at least one).
    #[arg(long = "gateway", value_name = "[NAMESPACE/]NAME", required = true)]
    pub gateways: Vec<String>,
    /// A hostname of the HTTPRoute (needed with "routes").
    #[arg(long = "hostname")]
    pub hostnames: Vec<String>,
    /// The Service a forward destination is: every destination needs one.
    #[arg(long = "backend", value_name = "ID=SERVICE:PORT", value_parser = Backend::parse)]
    pub backends: Vec<Backend>,
    /// Where a mirror destination is (its Service's DNS name): every mirror
    /// needs one; it becomes a bootstrap cluster of that name.
    #[arg(long = "cluster", value_name = "ID=HOST:PORT", value_parser = shadow)]
    pub shadows: Vec<(String, Address)>,
    /// The path prefix a rule matches (default: /NAME).
    #[arg(long = "route", value_name = "NAME=PREFIX", value_parser = crate::istio::pair)]
    pub prefixes: Vec<(String, String)>,
    /// The name of the catch-all rule (prefix /).
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub default_route: String,
}

fn shadow(text: &str) -> Result<(String, Address), String> {
    let (id, address) = text
        .split_once('=')
        .filter(|(id, _)| !id.is_empty())
        .ok_or_else(|| format!("{text:?} is not ID=HOST:PORT"))?;
    Ok((id.to_owned(), Address::parse(address)?))
}

fn module(args: &GatewayArgs) -> Result<Module, Failure> {
    let pin = &args.pin;
    let image_flag = pin.image_digest.is_some()
        || pin.image_layout.is_some()
        || pin.image_pull_policy.is_some()
        || pin.image_pull_secret.is_some();
    if image_flag && (args.dynamic_module.is_some() || args.dynamic_module_url.is_some()) {
        return Err(Failure::new(
            "--image-digest, --image-layout, --image-pull-policy and --image-pull-secret are for the wasm module's \
             image, not for --dynamic-module or --dynamic-module-url",
        ));
    }
    let source = match (
        &args.dynamic_module,
        &args.dynamic_module_url,
        &args.dynamic_module_sha256,
    ) {
        (Some(path), _, _) => {
            if !path.starts_with('/') {
                return Err(Failure::new(format!(
                    "--dynamic-module: {path:?} is not an absolute path (Envoy Gateway loads the module from \
                     the proxy's filesystem by absolute path)"
                )));
            }
            ModuleSource::Local(path.clone())
        }
        (None, Some(url), Some(sha256)) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Failure::new(format!(
                    "--dynamic-module-url: {url:?} is not an http(s) URL"
                )));
            }
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err(Failure::new(format!(
                    "--dynamic-module-sha256: {sha256:?} is not 64 lower-case hex digits"
                )));
            }
            ModuleSource::Remote {
                url: url.clone(),
                sha256: sha256.clone(),
            }
        }
        _ => return Ok(Module::Wasm(image(args)?)),
    };
    Ok(Module::DynamicModule(DynamicModule {
        source,
        workers: args.concurrency,
    }))
}

fn image(args: &GatewayArgs) -> Result<WasmImage, Failure> {
    // Envoy Gateway's image URL has no scheme.
    let url = args.image.as_deref().unwrap_or_default().trim_start_matches("oci://");
    let (url, sha256) = match args.pin.pin(&format!("oci://{url}"))? {
        Some((pinned, hex)) => (pinned.trim_start_matches("oci://").to_owned(), Some(hex)),
        None => (url.to_owned(), None),
    };
    Ok(WasmImage {
        url,
        sha256,
        pull_policy: args.pin.image_pull_policy.map(|p| p.name().to_owned()),
        pull_secret: args.pin.image_pull_secret.clone(),
    })
}

pub fn run(args: &GatewayArgs) -> Result<String, Failure> {
    let text = read_config(&args.config)?;
    let config = check::check(&text).map_err(Failure::new)?;
    let plugin: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| Failure::new(format!("{}: {e}", args.config.display())))?;
    let header = vec![
        format!("Generated by `vrata-mirror gateway` from {}.", args.config.display()),
        String::new(),
        "The Gateway must use the EnvoyProxy below: spec.infrastructure.parametersRef".to_owned(),
        "(group gateway.envoyproxy.io, kind EnvoyProxy), or its GatewayClass's parametersRef.".to_owned(),
        String::new(),
    ];
    let options = GatewayOptions {
        name: args.name.clone(),
        namespace: args.namespace.clone(),
        gateways: args.gateways.clone(),
        hostnames: args.hostnames.clone(),
        backends: args.backends.clone(),
        shadows: args.shadows.clone(),
        prefixes: args.prefixes.clone(),
        default_route: args.default_route.clone(),
        module: module(args)?,
        header,
    };
    manifests(&plugin, &config, &options).map_err(Failure::new)
}
