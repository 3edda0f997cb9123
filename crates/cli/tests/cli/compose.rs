//! envoy/docker-compose.yaml, validated by a real compose implementation:
//! Debian's docker-compose 1.29 (`docker-compose config` parses the file,
//! checks it against the compose schema and resolves variables, without an
//! engine). No container runs here (no Docker engine, and no image registry
//! but the project's own packages is reachable), so this checks the file,
//! the overridable image names and the paths it mounts, not a running stack.
//! docker-compose comes from scripts/ensure-registry.sh (`make test`).

use crate::schema::documents;
use crate::texts;
use std::process::Command;

fn config(env: &[(&str, &str)]) -> serde_json::Value {
    let compose = std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("docker-compose"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("docker-compose is not installed. Install it with ./scripts/ensure-registry.sh (`make test` does).")
        });
    let root = vrata_mirror_testkit::repo_root();
    let mut command = Command::new(compose);
    command
        .args(["-f", "envoy/docker-compose.yaml", "config"])
        .current_dir(root)
        .env_remove("VRATA_ENVOY_IMAGE")
        .env_remove("VRATA_ECHO_IMAGE");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "docker-compose config:\n{stderr}");
    documents(&stdout).remove(0)
}

#[test]
fn docker_compose_validates_the_file_and_its_image_variables() {
    let defaults = config(&[]);
    let services = &defaults["services"];
    assert_eq!(services["envoy"]["image"], "envoyproxy/envoy:v1.40-latest");
    assert_eq!(services["primary"]["image"], "mendhak/http-https-echo:31");
    assert_eq!(services["shadow"]["image"], "mendhak/http-https-echo:31");
    for name in ["envoy", "primary", "shadow"] {
        assert_eq!(services[name]["network_mode"], "host", "{name}");
    }
    // What Envoy mounts is what the repository has and `make build` makes.
    let root = vrata_mirror_testkit::repo_root();
    for volume in services["envoy"]["volumes"].as_array().unwrap() {
        let source = volume.as_str().unwrap().split(':').next().unwrap();
        assert!(std::path::Path::new(source).starts_with(root), "{source}");
        let relative = std::path::Path::new(source).strip_prefix(root).unwrap();
        assert!(
            ["envoy/envoy.yaml", "target/wasm32-wasip1/release/vrata_mirror.wasm"]
                .contains(&relative.to_str().unwrap()),
            "{source}"
        );
    }
    assert!(root.join("envoy/envoy.yaml").is_file());
    assert!(vrata_mirror_testkit::envoy::wasm_module().is_file());

    let local = config(&[
        ("VRATA_ENVOY_IMAGE", "localhost/envoy:dev"),
        ("VRATA_ECHO_IMAGE", "localhost/echo:dev"),
    ]);
    assert_eq!(local["services"]["envoy"]["image"], "localhost/envoy:dev");
    assert_eq!(local["services"]["shadow"]["image"], "localhost/echo:dev");
}
