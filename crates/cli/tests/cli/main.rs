//! `vrata-mirror`'s tests: the library the binary runs, the binary itself,
//! and what it renders through the real Envoy. One test binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod check;
mod compose;
mod envoy;
mod gateway;
mod image;
mod istio;
mod observability;
mod registry;
mod report;
mod schema;
mod strategies;

use std::process::{Command, Output};

/// Runs the built `vrata-mirror` with `args`.
pub fn vrata_mirror(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vrata-mirror"))
        .args(args)
        .current_dir(vrata_mirror_testkit::repo_root())
        .output()
        .expect("run vrata-mirror")
}

/// Standard output and error of a run, as text.
pub fn texts(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A scratch directory of its own, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vrata-cli-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Default for TempDir {
    fn default() -> TempDir {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A scratch file with `contents`, removed (with its directory, held
/// for its drop) on drop.
pub struct TempFile(pub std::path::PathBuf, #[allow(dead_code)] TempDir);

impl TempFile {
    pub fn new(name: &str, contents: &[u8]) -> TempFile {
        let dir = TempDir::new();
        let path = dir.0.join(name);
        std::fs::write(&path, contents).unwrap();
        TempFile(path, dir)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

/// A real Envoy started from what `vrata-mirror envoy` prints for `plugin`
/// with the module `wasm` and `clusters` (`NAME=HOST:PORT`), listener and
/// admin on ephemeral loopback ports, stats flushed every `stats_flush`.
pub async fn envoy_from_command(
    plugin: &TempFile,
    wasm: &std::path::Path,
    clusters: &[String],
    stats_flush: &str,
) -> vrata_mirror_testkit::envoy::Envoy {
    envoy_from_command_with(plugin, "--wasm", wasm, clusters, stats_flush).await
}

/// As [`envoy_from_command`], with the module given by `flag`: `--wasm`, or
/// `--dynamic-module` for the native host (one worker).
pub async fn envoy_from_command_with(
    plugin: &TempFile,
    flag: &str,
    module: &std::path::Path,
    clusters: &[String],
    stats_flush: &str,
) -> vrata_mirror_testkit::envoy::Envoy {
    let yaml = render_from_command(plugin, flag, module, clusters, stats_flush);
    tokio::task::spawn_blocking(move || vrata_mirror_testkit::envoy::Envoy::start(&yaml, 1))
        .await
        .unwrap()
}

/// What `vrata-mirror envoy` prints for [`envoy_from_command_with`].
pub fn render_from_command(
    plugin: &TempFile,
    flag: &str,
    module: &std::path::Path,
    clusters: &[String],
    stats_flush: &str,
) -> String {
    let mut args = vec![
        "envoy",
        plugin.path(),
        flag,
        module.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--stats-flush-interval",
        stats_flush,
    ];
    for cluster in clusters {
        args.extend(["--cluster", cluster.as_str()]);
    }
    let output = vrata_mirror(&args);
    let (yaml, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    yaml
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["check", "envoy", "istio", "report", "observability", "image", "gateway"] {
        let output = vrata_mirror(&[sub, "--help"]);
        let (stdout, _) = texts(&output);
        assert!(output.status.success(), "{sub} --help");
        assert!(stdout.contains("Usage: vrata-mirror"), "{sub} --help:\n{stdout}");
    }
    let output = vrata_mirror(&["--help"]);
    let (stdout, _) = texts(&output);
    for sub in ["check", "envoy", "istio", "report", "observability", "image", "gateway"] {
        assert!(stdout.contains(sub), "--help lists {sub}:\n{stdout}");
    }
}
