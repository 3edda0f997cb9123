//! `vrata-mirror`: the operator's command. The binary (src/main.rs) only
//! parses arguments and prints; every subcommand is here, so that the tests
//! run exactly what the binary runs.
//!
//! - `check`: the plugin JSON through the filter's own parser.
//! - `envoy`: an Envoy bootstrap for a plugin config (crates/render).
//! - `istio`: a WasmPlugin and a VirtualService for it (crates/render).
//! - `report`: what a running Envoy mirrored, from its admin interface.
//! - `gateway`: Envoy Gateway's HTTPRoute, EnvoyExtensionPolicy, EnvoyProxy.
//! - `image`: an OCI image layout of a module (`oci`), and its digest.
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod check;
pub mod envoy;
pub mod gateway;
pub mod image;
pub mod istio;
pub mod observability;
pub mod oci;
pub mod pin;
pub mod report;

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Check a vrata-mirror plugin configuration, print the Envoy or Istio
/// configuration for it, or report what a running Envoy mirrored.
#[derive(Debug, Parser)]
#[command(name = "vrata-mirror", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Check(CheckArgs),
    Envoy(envoy::EnvoyArgs),
    Istio(istio::IstioArgs),
    Report(report::ReportArgs),
    Observability(observability::ObservabilityArgs),
    Image(image::ImageArgs),
    Gateway(gateway::GatewayArgs),
}

/// Validate a plugin configuration with the filter's own parser; print the
/// effective policy of every route, defaults filled in.
///
/// Exits 1 on an invalid configuration, printing the line the filter logs
/// when Envoy loads it.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The plugin configuration (JSON); `-` reads standard input.
    pub config: PathBuf,
    /// `text` (for a person) or `json` (the effective configuration as
    /// plugin JSON, which loads to the same policies).
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
}

/// A failed command: one line for standard error, and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub code: i32,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
        }
    }
}

/// Parses `args` (the program name first) as the binary does.
pub fn parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(args)
}

/// Runs a command that prints once (every one but `report --watch`): what
/// it prints on success.
pub fn run(cli: &Cli) -> Result<String, Failure> {
    match &cli.command {
        Command::Check(args) => run_check(args),
        Command::Envoy(args) => envoy::run(args),
        Command::Istio(args) => istio::run(args),
        Command::Observability(args) => observability::run(args),
        Command::Image(args) => image::run(args),
        Command::Gateway(args) => gateway::run(args),
        Command::Report(args) => match args.watch {
            // Streams a table per interval to standard output.
            Some(seconds) => report::watch(args, seconds, &mut std::io::stdout()).map(|()| String::new()),
            None => report::once(args),
        },
    }
}

fn run_check(args: &CheckArgs) -> Result<String, Failure> {
    let text = read_config(&args.config)?;
    let config = check::check(&text).map_err(Failure::new)?;
    Ok(match args.format {
        CheckFormat::Text => check::effective_text(&config),
        CheckFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&check::effective_json(&config)).unwrap_or_default()
        ),
    })
}

/// A configuration file's bytes (`-`: standard input).
pub fn read_config(path: &Path) -> Result<Vec<u8>, Failure> {
    if path == Path::new("-") {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut text)
            .map_err(|e| Failure::new(format!("cannot read the configuration from standard input: {e}")))?;
        return Ok(text);
    }
    std::fs::read(path).map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))
}
