//! `vrata-mirror observability DIR`: writes the Grafana dashboard, the
//! Prometheus alert rules and a scrape job (crates/render's observability) into DIR;
//! envoy/observability/ is its output.

use crate::Failure;
use std::path::{Path, PathBuf};
use vrata_mirror_render::observability::{dashboard, rules_file, scrape_file};

/// The dashboard's file name.
pub const DASHBOARD: &str = "grafana-dashboard.json";
/// The rules' file name.
pub const RULES: &str = "alerts.yaml";
/// The scrape job's file name (with the native host's relabel rule).
pub const SCRAPE: &str = "prometheus-scrape.yaml";

/// Write the Grafana dashboard (grafana-dashboard.json), the Prometheus
/// alerting rules (alerts.yaml) and a scrape job (prometheus-scrape.yaml,
/// with the rule that gives the native host's metrics the wasm host's
/// names) for the filter's metrics into DIR.
#[derive(Debug, Clone, clap::Args)]
pub struct ObservabilityArgs {
    /// The directory to write into (created if missing).
    pub dir: PathBuf,
}

/// The files and their contents.
pub fn files() -> Vec<(&'static str, String)> {
    let dashboard = serde_json::to_string_pretty(&dashboard()).unwrap_or_default() + "\n";
    vec![(DASHBOARD, dashboard), (RULES, rules_file()), (SCRAPE, scrape_file())]
}

pub fn run(args: &ObservabilityArgs) -> Result<String, Failure> {
    write(&args.dir)
}

fn write(dir: &Path) -> Result<String, Failure> {
    std::fs::create_dir_all(dir).map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
    let mut written = String::new();
    for (name, contents) in files() {
        let path = dir.join(name);
        std::fs::write(&path, contents).map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))?;
        written.push_str(&format!("wrote {}\n", path.display()));
    }
    Ok(written)
}
