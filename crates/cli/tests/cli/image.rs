//! `vrata-mirror image`: the layout it writes is reproducible (the same
//! module gives the same digest and the same bytes, with every varying tar
//! and gzip field fixed), has the shape Istio's fetcher takes, and the
//! fetcher's rules as the tests apply them refuse the shapes Istio refuses.

use crate::{texts, vrata_mirror, TempDir};
use serde_json::json;
use std::path::Path;
use vrata_mirror_cli::oci::{self, Form, Layout};

/// Runs `vrata-mirror image` on `wasm` into `out`: the printed digest.
pub fn image(wasm: &Path, out: &Path, form: &str) -> String {
    let output = vrata_mirror(&[
        "image",
        "--wasm",
        wasm.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--form",
        form,
        "--tag",
        "test",
    ]);
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    let digest = stdout.split_whitespace().next().unwrap().to_owned();
    assert_eq!(stdout, format!("{digest} {}:test\n", out.display()));
    digest
}

/// Every file under `dir`, relative path and bytes, sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                files.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn the_same_module_gives_the_same_digest_and_bytes() {
    let module = vrata_mirror_testkit::envoy::wasm_module();
    for form in ["compat", "artifact"] {
        let dir = TempDir::new();
        let (a, b) = (dir.0.join("a"), dir.0.join("b"));
        let first = image(&module, &a, form);
        // A later build at another time: nothing in it depends on when.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let second = image(&module, &b, form);
        assert_eq!(first, second, "{form}");
        assert_eq!(tree(&a), tree(&b), "{form}: the layouts differ");
        assert_eq!(Layout::read(&a).unwrap().digest, first);

        // One byte more in the module: another digest.
        let mut changed = std::fs::read(&module).unwrap();
        changed.push(0);
        let other = dir.0.join("changed.wasm");
        std::fs::write(&other, &changed).unwrap();
        assert_ne!(image(&other, &dir.0.join("c"), form), first, "{form}");
    }
}

#[test]
fn the_compat_layer_is_plugin_wasm_alone_with_fixed_fields() {
    let module = std::fs::read(vrata_mirror_testkit::envoy::wasm_module()).unwrap();
    let built = oci::image(&module, Form::Compat).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&built.manifest.bytes).unwrap();
    assert_eq!(manifest["mediaType"], oci::MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], oci::IMAGE_CONFIG);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], oci::TAR_GZIP_LAYER);
    let layer = built.blobs.iter().find(|b| b.digest == layers[0]["digest"]).unwrap();
    assert_eq!(layers[0]["size"], layer.bytes.len());
    // gzip: no timestamp (MTIME, bytes 4..8, zero), no file name (FLG 0).
    assert_eq!(&layer.bytes[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&layer.bytes[4..8], &[0, 0, 0, 0]);

    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&layer.bytes[..]));
    let entries: Vec<_> = archive.entries().unwrap().map(Result::unwrap).collect();
    assert_eq!(entries.len(), 1);
    let header = entries[0].header();
    assert_eq!(header.path().unwrap().to_str(), Some("plugin.wasm"));
    assert_eq!(header.mtime().unwrap(), 0);
    assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
    assert_eq!(header.username().unwrap(), Some(""));
    assert_eq!(header.mode().unwrap(), 0o644);
    assert_eq!(oci::untar_plugin(&layer.bytes).unwrap(), module);

    // The config names the uncompressed layer (diff_id), as OCI requires.
    let config = built
        .blobs
        .iter()
        .find(|b| b.digest == manifest["config"]["digest"])
        .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&config.bytes).unwrap();
    let tar = oci::plugin_tar(&module).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"], json!([oci::Blob::new(tar).digest]));
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("wasip1"), Some("wasm"))
    );
}

/// The fetcher's rules (imagefetcher.go), as `oci::module_of` applies them
/// to what the registry tests pull: each shape Istio takes gives the module,
/// each it refuses an error with the fetcher's words.
#[test]
fn the_fetcher_rules_take_both_forms_and_refuse_the_shapes_istio_refuses() {
    let module = b"\0asm\x01\0\0\0 a module".to_vec();
    for form in [Form::Compat, Form::Artifact] {
        let built = oci::image(&module, form).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&built.manifest.bytes).unwrap();
        let blob = |digest: &str| {
            built
                .blobs
                .iter()
                .find(|b| b.digest == digest)
                .map(|b| b.bytes.clone())
                .ok_or_else(|| format!("no blob {digest}"))
        };
        assert_eq!(oci::module_of(&manifest, blob).unwrap(), module, "{form:?}");
    }
    let wasm = oci::Blob::new(module.clone());
    let layer = |media: &str| json!({"mediaType": media, "digest": wasm.digest, "size": 1});
    let blob = |_: &str| Ok(wasm.bytes.clone());
    for (layers, error) in [
        (json!([]), "number of layers must be greater than zero"),
        // oras push of plugin.wasm alone, or wasm-to-oci: one wasm layer.
        (json!([layer(oci::WASM_LAYER)]), "number of layers must be 2 but got 1"),
        (
            json!([layer(oci::WASM_LAYER), layer(oci::WASM_CONFIG), layer(oci::WASM_CONFIG)]),
            "number of layers must be 2 but got 3",
        ),
        (
            json!([layer("application/vnd.oci.image.layer.v1.tar"), layer(oci::WASM_CONFIG)]),
            "no layer of type application/vnd.module.wasm.content.layer.v1+wasm",
        ),
    ] {
        let manifest = json!({"schemaVersion": 2, "mediaType": oci::MANIFEST, "layers": layers});
        let refused = oci::module_of(&manifest, blob).unwrap_err();
        assert!(refused.contains(error), "{refused}");
    }
    // A tar+gzip last layer without plugin.wasm.
    let empty = oci::gzip(&tar::Builder::new(Vec::new()).into_inner().unwrap()).unwrap();
    let manifest = json!({"layers": [{"mediaType": oci::TAR_GZIP_LAYER, "digest": "sha256:x"}]});
    let refused = oci::module_of(&manifest, |_| Ok(empty.clone())).unwrap_err();
    assert!(refused.contains("plugin.wasm not found in the archive"), "{refused}");
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    let file = crate::TempFile::new("x.wasm", b"not wasm");
    let output = vrata_mirror(&["image", "--wasm", file.path(), "--out", "/nonexistent/x"]);
    let (_, stderr) = texts(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("is not a wasm module"), "{stderr}");
}
