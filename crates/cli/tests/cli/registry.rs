//! The images of `vrata-mirror image` through a real registry: Debian's
//! docker-registry (distribution 2.8) on 127.0.0.1, pushed to with skopeo,
//! pulled back with the ORAS Python client and with skopeo. The module in
//! every pulled image is byte-equal to the built one; the registry reports
//! the layout's digest (what the WasmPlugin pins); the manifest passes the
//! fetcher's rules; and the pulled module, loaded in the real Envoy,
//! mirrors a request. The tools come from scripts/ensure-registry.sh (run by
//! `make test`); without them these tests fail, never skip.

use crate::image::image;
use crate::{envoy_from_command, texts, TempDir, TempFile};
use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vrata_mirror_cli::oci::{self, Layout};
use vrata_mirror_testkit::upstream::{Behaviour, Upstream};

const HOW: &str = "Install them with ./scripts/ensure-registry.sh (`make test` does).";

/// A tool on PATH, or a loud failure saying how to get it.
fn tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("{name} is not installed: the registry tests need docker-registry and skopeo. {HOW}"))
}

fn oras_python() -> PathBuf {
    let python = vrata_mirror_testkit::repo_root().join(".venv-oras/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: the registry tests need PyPI's oras. {HOW}",
        python.display()
    );
    python
}

/// A docker-registry on an ephemeral loopback port, with its own
/// configuration and storage in a scratch directory. Stopped on drop.
struct Registry {
    child: Child,
    host: String,
    dir: TempDir,
}

impl Registry {
    fn start() -> Registry {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = TempDir::new();
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.0.join("data").display()
        );
        let config_path = dir.0.join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.0.join("registry.log")).unwrap();
        let child = Command::new(tool("docker-registry"))
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let registry = Registry {
            child,
            host: format!("127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if ureq::get(&format!("http://{}/v2/", registry.host)).call().is_ok() {
                return registry;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("docker-registry not ready after 20 s:\n{}", registry.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("registry.log")).unwrap_or_default()
    }

    /// The digest the registry reports for `name:tag` (Docker-Content-Digest)
    /// when asked for an OCI manifest, as a fetcher asks.
    fn digest(&self, name: &str, tag: &str) -> String {
        let response = ureq::get(&format!("http://{}/v2/{name}/manifests/{tag}", self.host))
            .header("Accept", oci::MANIFEST)
            .call()
            .unwrap_or_else(|e| panic!("GET manifest {name}:{tag}: {e}\n{}", self.log()));
        let media = response.headers().get("content-type").and_then(|v| v.to_str().ok());
        assert_eq!(media, Some(oci::MANIFEST));
        let digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok());
        digest.unwrap_or_default().to_owned()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- docker-registry log ---\n{}", self.log());
        }
    }
}

fn run(program: &Path, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .current_dir(vrata_mirror_testkit::repo_root())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    let (stdout, stderr) = texts(&output);
    assert!(
        output.status.success(),
        "{} {args:?}:\n{stdout}{stderr}",
        program.display()
    );
}

/// What oras pulled into `dir` (scripts/oras-pull.py): the manifest, and
/// its blobs, each checked against its digest.
fn oras_pulled(dir: &Path) -> (Value, impl Fn(&str) -> Result<Vec<u8>, String> + '_) {
    let manifest = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let blob = move |digest: &str| {
        let bytes = std::fs::read(dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:")))
            .map_err(|e| format!("{digest}: {e}"))?;
        let actual = oci::Blob::new(bytes);
        if actual.digest == digest {
            Ok(actual.bytes)
        } else {
            Err(format!("{digest}: content has digest {}", actual.digest))
        }
    };
    (manifest, blob)
}

/// The manifest against the fetcher's rules for `form`: the OCI manifest
/// media type; compat: one layer, the last (only) one tar+gzip; artifact:
/// exactly two layers, one of them the wasm content layer.
fn check_shape(manifest: &Value, form: &str) {
    assert_eq!(manifest["mediaType"], oci::MANIFEST, "{manifest}");
    let media: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    match form {
        "compat" => assert_eq!(media, [oci::TAR_GZIP_LAYER], "{manifest}"),
        _ => assert_eq!(media, [oci::WASM_LAYER, oci::WASM_CONFIG], "{manifest}"),
    }
}

/// Pushes both forms of the filter module with skopeo, pulls each back with
/// oras and with skopeo, and checks digest, shape and module bytes.
/// Returns the module pulled (by skopeo) from the compat image.
fn push_and_pull_both_forms(registry: &Registry, scratch: &TempDir) -> PathBuf {
    let (skopeo, python) = (tool("skopeo"), oras_python());
    let oras_pull = vrata_mirror_testkit::repo_root().join("scripts/oras-pull.py");
    let module_path = vrata_mirror_testkit::envoy::wasm_module();
    let module = std::fs::read(&module_path).unwrap();
    let mut pulled_compat = PathBuf::new();
    for form in ["compat", "artifact"] {
        let layout = scratch.0.join(format!("built-{form}"));
        let digest = image(&module_path, &layout, form);
        let name = format!("vrata-mirror-{form}");
        let remote = format!("{}/{name}:test", registry.host);
        run(
            &skopeo,
            &[
                "copy",
                "--dest-tls-verify=false",
                &format!("oci:{}:test", layout.display()),
                &format!("docker://{remote}"),
            ],
        );
        // skopeo pushed the manifest unchanged: the registry's digest is the
        // layout's, the one `vrata-mirror istio --image-layout` pins.
        assert_eq!(registry.digest(&name, "test"), digest, "{form}");

        let by_oras = scratch.0.join(format!("oras-{form}"));
        run(
            &python,
            &[oras_pull.to_str().unwrap(), &remote, by_oras.to_str().unwrap()],
        );
        let (manifest, blob) = oras_pulled(&by_oras);
        check_shape(&manifest, form);
        assert!(
            oci::module_of(&manifest, blob).unwrap() == module,
            "{form}: oras pulled another module"
        );

        let by_skopeo = scratch.0.join(format!("skopeo-{form}"));
        run(
            &skopeo,
            &[
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{remote}"),
                &format!("oci:{}:test", by_skopeo.display()),
            ],
        );
        let pulled = Layout::read(&by_skopeo).unwrap();
        assert_eq!(pulled.digest, digest, "{form}");
        check_shape(&pulled.manifest, form);
        let bytes = oci::module_of(&pulled.manifest, |d| pulled.blob(d)).unwrap();
        assert!(bytes == module, "{form}: skopeo pulled another module");
        if form == "compat" {
            pulled_compat = scratch.0.join("pulled.wasm");
            std::fs::write(&pulled_compat, bytes).unwrap();
        }
    }
    pulled_compat
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_pushed_to_a_real_registry_pull_back_whole_and_the_pulled_module_mirrors_in_envoy() {
    // The registry is stopped once both forms went through it; the
    // scratch directory (the pulled module) lives to the end.
    let (_scratch, pulled) = tokio::task::spawn_blocking(|| {
        let registry = Registry::start();
        let scratch = TempDir::new();
        let pulled = push_and_pull_both_forms(&registry, &scratch);
        (scratch, pulled)
    })
    .await
    .unwrap();

    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let plugin = TempFile::new(
        "plugin.json",
        br#"{"forward": {"destinations": [{"destinationId": "primary"}], "mirror": {"destinationId": "shadow"}}}"#,
    );
    let clusters = [
        format!("primary=127.0.0.1:{}", primary.port()),
        format!("shadow=127.0.0.1:{}", shadow.port()),
    ];
    let envoy = envoy_from_command(&plugin, &pulled, &clusters, "1s").await;
    let reply = vrata_mirror_testkit::client::http1("POST", &envoy.url("/pulled?x=1"), &[], "a body").await;
    assert_eq!(reply.status, 200);
    let copies = shadow.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(copies.len(), 1, "the pulled module did not mirror:\n{}", envoy.log());
    assert_eq!(copies[0].uri, "/pulled?x=1");
    assert_eq!(copies[0].body, b"a body");
    assert_eq!(primary.count(), 1);
}
