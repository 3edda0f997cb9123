//! `vrata-mirror envoy`: a complete Envoy bootstrap for a plugin
//! configuration, from the one renderer (crates/render).

use crate::{check, read_config, Failure};
use std::path::PathBuf;
use vrata_mirror_render::envoy::{Address, ShadowLimits, REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT, SHADOW_LIMITS};
use vrata_mirror_render::from_config::{bootstrap, ClusterSpec, EnvoyOptions, MirroringMode};

/// Print an Envoy bootstrap (YAML) for a plugin configuration: one route
/// per entry of "routes" plus the default route, each forwarding to its
/// forward.destinations with weighted_clusters; the filter with the plugin
/// JSON and failure_policy FAIL_OPEN; a cluster per destination and mirror
/// (shadows with circuit breakers and outlier detection); the stats_tags.
#[derive(Debug, Clone, clap::Args)]
pub struct EnvoyArgs {
    /// The plugin configuration (JSON), checked with the filter's parser.
    pub config: PathBuf,
    /// The filter module, as Envoy should open it (relative paths resolve
    /// from Envoy's working directory).
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "dynamic_module",
        conflicts_with = "dynamic_module"
    )]
    pub wasm: Option<String>,
    /// The native host instead of the wasm filter: the dynamic module
    /// (libvrata_mirror_native.so, `make build`), for Envoy 1.40. The
    /// bootstrap puts it in the chain once per worker (--concurrency) and
    /// enables HTTP/1.1 trailers on the listener and clusters. Not
    /// `--mirroring native`, which is Envoy's own mirroring.
    #[arg(long, value_name = "PATH")]
    pub dynamic_module: Option<String>,
    /// The Envoy worker count (`envoy --concurrency`) the bootstrap is for:
    /// the native host needs one filter per worker. Run Envoy with the same.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// The listener's address.
    #[arg(long, value_name = "HOST:PORT", value_parser = Address::parse)]
    pub listen: Address,
    /// The admin interface's address (/stats, /stats/prometheus).
    #[arg(long, value_name = "HOST:PORT", value_parser = Address::parse)]
    pub admin: Address,
    /// Where a destination's cluster is: every destination and mirror of
    /// the configuration needs one. `,h2` speaks HTTP/2 to it (gRPC). A
    /// host that is not an IP address is resolved by DNS.
    #[arg(long = "cluster", value_name = "NAME=HOST:PORT[,h2]", value_parser = ClusterSpec::parse)]
    pub clusters: Vec<ClusterSpec>,
    /// The path prefix a route matches (default: /NAME for the routes of
    /// "routes"). A NAME that "routes" does not have adds a route of that
    /// name, before the catch-all, that uses the top-level "forward" block.
    #[arg(long = "route", value_name = "NAME=PREFIX", value_parser = route_prefix)]
    pub prefixes: Vec<(String, String)>,
    /// The name of the catch-all route (prefix /), which uses the top-level
    /// "forward" block unless "routes" has an entry of this name.
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub default_route: String,
    /// `wasm`: the filter (the --wasm module, or the --dynamic-module one).
    /// `native`: Envoy's request_mirror_policies instead (destination and
    /// percentage only). `none`: no mirroring.
    #[arg(long, value_enum, default_value_t = Mirroring::Wasm)]
    pub mirroring: Mirroring,
    /// The shadow clusters' circuit breaker (connections, pending and
    /// active requests): the host's hard cap on what mirroring may cost.
    #[arg(long, value_name = "N", default_value_t = SHADOW_LIMITS.max_requests)]
    pub shadow_max_requests: u32,
    /// Envoy's runtime key http.async_response_buffer_limit: what Envoy may
    /// buffer of each answer to a mirror call (README: "Memory");
    /// `envoy-default` leaves Envoy's own (32 MiB) and the runtime out.
    #[arg(long, value_name = "BYTES|envoy-default", value_parser = buffer_limit,
          default_value_t = BufferLimit(Some(REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT)))]
    pub async_response_buffer_limit: BufferLimit,
    /// How often Envoy flushes its stats (histograms, and so latency
    /// quantiles, are updated then), e.g. 1s; Envoy's default is 5s.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub stats_flush_interval: Option<String>,
    /// Envoy's node id and cluster.
    #[arg(long, value_name = "ID", default_value = "vrata-mirror")]
    pub node: String,
    /// A line for the comment at the top of the output (repeatable).
    #[arg(long = "comment", value_name = "TEXT")]
    pub comments: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mirroring {
    Wasm,
    Native,
    None,
}

/// `--async-response-buffer-limit`: bytes, or Envoy's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferLimit(pub Option<u64>);

impl std::fmt::Display for BufferLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(bytes) => write!(f, "{bytes}"),
            None => f.write_str("envoy-default"),
        }
    }
}

fn buffer_limit(text: &str) -> Result<BufferLimit, String> {
    if text == "envoy-default" {
        return Ok(BufferLimit(None));
    }
    match text.parse::<u64>() {
        Ok(bytes) if bytes > 0 => Ok(BufferLimit(Some(bytes))),
        _ => Err(format!("{text:?} is not a positive number of bytes or envoy-default")),
    }
}

/// A protobuf Duration as YAML spells it: `5s`, `0.5s`.
fn duration(text: &str) -> Result<String, String> {
    match text.strip_suffix('s').map(str::parse::<f64>) {
        Some(Ok(seconds)) if seconds > 0.0 && seconds.is_finite() => Ok(text.to_owned()),
        _ => Err(format!("{text:?} is not a duration in seconds such as 1s or 0.5s")),
    }
}

fn route_prefix(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, prefix)) if !name.is_empty() && prefix.starts_with('/') => Ok((name.to_owned(), prefix.to_owned())),
        _ => Err(format!("{text:?} is not NAME=PREFIX (a prefix starts with /)")),
    }
}

impl EnvoyArgs {
    /// This command line in a canonical form: the generated file names it,
    /// and a test runs it again to see that the file is still what it prints.
    pub fn command_line(&self) -> String {
        let mut words: Vec<String> = vec!["vrata-mirror".into(), "envoy".into(), self.config.display().to_string()];
        match (&self.wasm, &self.dynamic_module) {
            (_, Some(module)) => words.extend(["--dynamic-module".into(), module.clone()]),
            (Some(wasm), None) => words.extend(["--wasm".into(), wasm.clone()]),
            (None, None) => {}
        }
        words.extend([
            "--listen".into(),
            address(&self.listen),
            "--admin".into(),
            address(&self.admin),
        ]);
        if self.concurrency != 1 {
            words.extend(["--concurrency".into(), self.concurrency.to_string()]);
        }
        for cluster in &self.clusters {
            let h2 = if cluster.http2 { ",h2" } else { "" };
            words.push("--cluster".into());
            words.push(format!("{}={}{h2}", cluster.name, address(&cluster.address)));
        }
        for (name, prefix) in &self.prefixes {
            words.push("--route".into());
            words.push(format!("{name}={prefix}"));
        }
        if self.default_route != "default" {
            words.extend(["--default-route".into(), self.default_route.clone()]);
        }
        match self.mirroring {
            Mirroring::Wasm => {}
            Mirroring::Native => words.extend(["--mirroring".into(), "native".into()]),
            Mirroring::None => words.extend(["--mirroring".into(), "none".into()]),
        }
        if self.shadow_max_requests != SHADOW_LIMITS.max_requests {
            words.extend(["--shadow-max-requests".into(), self.shadow_max_requests.to_string()]);
        }
        match self.async_response_buffer_limit.0 {
            Some(REFERENCE_ASYNC_RESPONSE_BUFFER_LIMIT) => {}
            Some(bytes) => words.extend(["--async-response-buffer-limit".into(), bytes.to_string()]),
            None => words.extend(["--async-response-buffer-limit".into(), "envoy-default".into()]),
        }
        if let Some(interval) = &self.stats_flush_interval {
            words.extend(["--stats-flush-interval".into(), interval.clone()]);
        }
        if self.node != "vrata-mirror" {
            words.extend(["--node".into(), self.node.clone()]);
        }
        for comment in &self.comments {
            words.extend(["--comment".into(), comment.clone()]);
        }
        shell_words::join(words)
    }
}

fn address(address: &Address) -> String {
    if address.host.contains(':') {
        format!("[{}]:{}", address.host, address.port)
    } else {
        format!("{}:{}", address.host, address.port)
    }
}

pub fn run(args: &EnvoyArgs) -> Result<String, Failure> {
    let text = read_config(&args.config)?;
    let config = check::check(&text).map_err(Failure::new)?;
    let plugin = String::from_utf8(text).map_err(|_| Failure::new(format!("{}: not UTF-8", args.config.display())))?;
    let module = args
        .dynamic_module
        .as_ref()
        .or(args.wasm.as_ref())
        .cloned()
        .unwrap_or_default();
    let mut options = EnvoyOptions::new(&module, args.listen.clone(), args.admin.clone());
    options.clusters = args.clusters.clone();
    options.prefixes = args.prefixes.clone();
    options.default_route = args.default_route.clone();
    options.mirroring = match (args.mirroring, &args.dynamic_module) {
        (Mirroring::Wasm, None) => MirroringMode::Wasm,
        (Mirroring::Wasm, Some(_)) => MirroringMode::DynamicModule {
            workers: args.concurrency,
        },
        (Mirroring::Native | Mirroring::None, Some(_)) => {
            return Err(Failure::new(
                "--dynamic-module is the native host (the filter as a dynamic module); --mirroring native|none \
                 render Envoy's own mirroring or none, with no filter: give one of them"
                    .to_owned(),
            ))
        }
        (Mirroring::Native, None) => MirroringMode::Native,
        (Mirroring::None, None) => MirroringMode::None,
    };
    options.shadow_limits = ShadowLimits {
        max_requests: args.shadow_max_requests,
        ..SHADOW_LIMITS
    };
    options.node = args.node.clone();
    options.async_response_buffer_limit = args.async_response_buffer_limit.0;
    let mut header = vec![
        format!("Generated by `{}`:", args.command_line()),
        "regenerate it rather than edit it.".to_owned(),
    ];
    header.extend(args.comments.iter().cloned());
    options.header = header;
    options.header.extend([
        format!("  listener  {}   (send requests here)", address(&args.listen)),
        format!(
            "  admin     {}    (`vrata-mirror report --admin http://{}` shows what was mirrored)",
            address(&args.admin),
            address(&args.admin)
        ),
        String::new(),
    ]);
    let mut bootstrap = bootstrap(&plugin, &config, &options).map_err(Failure::new)?;
    bootstrap.stats_flush_interval = args.stats_flush_interval.clone();
    Ok(bootstrap.render())
}
