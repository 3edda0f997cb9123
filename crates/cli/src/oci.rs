//! OCI image layouts of a wasm module, in the shapes Istio's fetcher
//! (istio/istio pkg/wasm/imagefetcher.go) and Envoy Gateway accept:
//!
//! - `compat`: an OCI image manifest whose one layer is
//!   `application/vnd.oci.image.layer.v1.tar+gzip` holding `plugin.wasm`,
//!   with a minimal image config (os `wasip1`, architecture `wasm`).
//! - `artifact`: the two-layer wasm artifact: the module itself as
//!   `application/vnd.module.wasm.content.layer.v1+wasm`, and the config as
//!   a second layer (`application/vnd.module.wasm.config.v1+json`): the
//!   fetcher wants exactly two layers there.
//!
//! Reproducible: the tar entry has a fixed mtime (0), owner (0:0, no names)
//! and mode; the gzip header has no timestamp and no file name; JSON keys
//! are written in a fixed order. The same module gives the same digest.

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const TAR_GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
pub const WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
/// The file the compat layer must hold (the fetcher takes the first entry
/// of this base name).
pub const PLUGIN_FILE: &str = "plugin.wasm";
/// The annotation skopeo and oras read a layout's tag from.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Form {
    /// One tar+gzip layer holding plugin.wasm (Istio, Envoy Gateway).
    Compat,
    /// The two-layer wasm artifact (Istio, Envoy Gateway; not `docker run`).
    Artifact,
}

/// A blob: its bytes and its digest (`sha256:…`).
#[derive(Debug, Clone)]
pub struct Blob {
    pub bytes: Vec<u8>,
    pub digest: String,
}

impl Blob {
    pub fn new(bytes: Vec<u8>) -> Blob {
        let digest = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
        Blob { bytes, digest }
    }

    fn descriptor(&self, media_type: &str) -> Value {
        json!({"mediaType": media_type, "digest": self.digest, "size": self.bytes.len()})
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One image: its manifest (whose digest is the image's) and every blob
/// it names.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest: Blob,
    pub blobs: Vec<Blob>,
}

/// A tar holding `plugin.wasm` alone, with every varying field fixed.
pub fn plugin_tar(module: &[u8]) -> Result<Vec<u8>, String> {
    let mut header = tar::Header::new_ustar();
    header.set_path(PLUGIN_FILE).map_err(|e| format!("tar header: {e}"))?;
    header.set_size(module.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, module).map_err(|e| format!("tar: {e}"))?;
    builder.into_inner().map_err(|e| format!("tar: {e}"))
}

/// Gzip without a timestamp or a file name (the header's mtime is 0).
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut encoder: GzEncoder<Vec<u8>> = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::best());
    encoder.write_all(bytes).map_err(|e| format!("gzip: {e}"))?;
    encoder.finish().map_err(|e| format!("gzip: {e}"))
}

/// The image of `module` in `form`.
pub fn image(module: &[u8], form: Form) -> Result<Image, String> {
    let json_blob = |value: &Value| Blob::new(value.to_string().into_bytes());
    match form {
        Form::Compat => {
            let tar = plugin_tar(module)?;
            let diff_id = Blob::new(tar.clone()).digest;
            let layer = Blob::new(gzip(&tar)?);
            let config = json_blob(&json!({
                "architecture": "wasm",
                "os": "wasip1",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }));
            let manifest = json_blob(&json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": config.descriptor(IMAGE_CONFIG),
                "layers": [layer.descriptor(TAR_GZIP_LAYER)],
            }));
            Ok(Image {
                manifest,
                blobs: vec![config, layer],
            })
        }
        Form::Artifact => {
            let wasm = Blob::new(module.to_vec());
            let config = json_blob(&json!({}));
            let manifest = json_blob(&json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": config.descriptor(WASM_CONFIG),
                "layers": [wasm.descriptor(WASM_LAYER), config.descriptor(WASM_CONFIG)],
            }));
            Ok(Image {
                manifest,
                blobs: vec![config, wasm],
            })
        }
    }
}

/// Writes `image` as an OCI image layout in `dir` (replacing what was
/// there), tagged `tag`.
pub fn write_layout(dir: &Path, image: &Image, tag: &str) -> Result<(), String> {
    let fail = |what: &Path, e: std::io::Error| format!("cannot write {}: {e}", what.display());
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| fail(dir, e))?;
    }
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| fail(&blobs, e))?;
    for blob in image.blobs.iter().chain([&image.manifest]) {
        let path = blobs.join(blob.digest.trim_start_matches("sha256:"));
        std::fs::write(&path, &blob.bytes).map_err(|e| fail(&path, e))?;
    }
    let mut manifest = image.manifest.descriptor(MANIFEST);
    let mut annotations = serde_json::Map::new();
    annotations.insert(REF_NAME.to_owned(), Value::from(tag));
    if let Some(object) = manifest.as_object_mut() {
        object.insert("annotations".to_owned(), Value::Object(annotations));
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": [manifest]});
    let layout = json!({"imageLayoutVersion": "1.0.0"});
    for (name, value) in [("oci-layout", layout), ("index.json", index)] {
        let path = dir.join(name);
        std::fs::write(&path, value.to_string()).map_err(|e| fail(&path, e))?;
    }
    Ok(())
}

/// A layout read back: its one manifest's digest, the manifest, and a way
/// to read its blobs.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: std::path::PathBuf,
    pub digest: String,
    pub manifest: Value,
}

impl Layout {
    /// Reads the layout in `dir`: its index must name exactly one manifest.
    pub fn read(dir: &Path) -> Result<Layout, String> {
        let index_path = dir.join("index.json");
        let index: Value = read_json(&index_path)?;
        let digest = match index.get("manifests").and_then(Value::as_array).map(Vec::as_slice) {
            Some([one]) => one.get("digest").and_then(Value::as_str).unwrap_or_default().to_owned(),
            _ => return Err(format!("{}: expected exactly one manifest", index_path.display())),
        };
        let layout = Layout {
            dir: dir.to_owned(),
            manifest: Value::Null,
            digest,
        };
        let manifest = serde_json::from_slice(&layout.blob(&layout.digest)?)
            .map_err(|e| format!("{}: manifest: {e}", dir.display()))?;
        Ok(Layout { manifest, ..layout })
    }

    /// A blob's bytes, checked against its digest.
    pub fn blob(&self, digest: &str) -> Result<Vec<u8>, String> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| format!("{digest:?} is not a sha256 digest"))?;
        let path = self.dir.join("blobs/sha256").join(hex);
        let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let actual = Blob::new(bytes);
        if actual.digest != digest {
            return Err(format!("{}: content has digest {}", path.display(), actual.digest));
        }
        Ok(actual.bytes)
    }
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The module in an image, by the fetcher's rules (imagefetcher.go): the
/// last layer is tar+gzip and holds `plugin.wasm` (compat), or there are
/// exactly two layers and one is the wasm content layer (artifact).
/// `blob` reads a blob by digest.
pub fn module_of(manifest: &Value, blob: impl Fn(&str) -> Result<Vec<u8>, String>) -> Result<Vec<u8>, String> {
    let layers = manifest
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let media = |layer: &Value| {
        layer
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let digest = |layer: &Value| {
        layer
            .get("digest")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let compat = match layers.last() {
        None => Err("number of layers must be greater than zero".to_owned()),
        Some(last) if media(last) != TAR_GZIP_LAYER => {
            Err(format!("invalid media type {} (expect {TAR_GZIP_LAYER})", media(last)))
        }
        Some(last) => untar_plugin(&blob(&digest(last))?),
    };
    let compat_error = match compat {
        Ok(module) => return Ok(module),
        Err(e) => e,
    };
    if layers.len() != 2 {
        return Err(format!(
            "not a compat image ({compat_error}); not a wasm artifact: number of layers must be 2 but got {}",
            layers.len()
        ));
    }
    match layers.iter().find(|l| media(l) == WASM_LAYER) {
        Some(layer) => blob(&digest(layer)),
        None => Err(format!(
            "not a compat image ({compat_error}); not a wasm artifact: no layer of type {WASM_LAYER}"
        )),
    }
}

/// `plugin.wasm` from a tar+gzip layer: the first entry of that base name.
pub fn untar_plugin(layer: &[u8]) -> Result<Vec<u8>, String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let entries = archive
        .entries()
        .map_err(|e| format!("failed to parse layer as tar.gz: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("tar: {e}"))?;
        let path = entry.path().map_err(|e| format!("tar: {e}"))?.into_owned();
        if path.file_name().and_then(|n| n.to_str()) == Some(PLUGIN_FILE) {
            let mut module = Vec::new();
            entry
                .read_to_end(&mut module)
                .map_err(|e| format!("failed to read {PLUGIN_FILE}: {e}"))?;
            return Ok(module);
        }
    }
    Err(format!("{PLUGIN_FILE} not found in the archive"))
}
