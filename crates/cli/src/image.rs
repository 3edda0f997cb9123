//! `vrata-mirror image`: an OCI image layout of a wasm module that Istio
//! and Envoy Gateway pull (crates/cli/src/oci.rs), and its digest.

use crate::oci::{image, write_layout, Form};
use crate::Failure;
use std::path::PathBuf;

/// Write an OCI image layout of a wasm module (`make image` runs it for
/// both modules) and print its digest: the manifest's, which is what
/// `--image-digest` pins and what a registry reports. Reproducible: the
/// same module gives the same digest. Push it with `skopeo copy
/// oci:DIR:TAG docker://REGISTRY/NAME:TAG`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImageArgs {
    /// The module (e.g. target/wasm32-wasip1/release/vrata_mirror.wasm).
    #[arg(long, value_name = "PATH")]
    pub wasm: PathBuf,
    /// The layout's directory (replaced if it exists).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The tag inside the layout (oci:DIR:TAG).
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    pub tag: String,
    /// `compat`: one tar+gzip layer holding plugin.wasm. `artifact`: the
    /// two-layer wasm artifact (application/vnd.module.wasm.content.layer.v1+wasm).
    #[arg(long, value_enum, default_value_t = Form::Compat)]
    pub form: Form,
}

pub fn run(args: &ImageArgs) -> Result<String, Failure> {
    let module =
        std::fs::read(&args.wasm).map_err(|e| Failure::new(format!("cannot read {}: {e}", args.wasm.display())))?;
    // The fetcher (and Envoy) refuse anything but a wasm binary; say so here.
    if !module.starts_with(b"\0asm") {
        return Err(Failure::new(format!("{} is not a wasm module", args.wasm.display())));
    }
    let built = image(&module, args.form).map_err(Failure::new)?;
    write_layout(&args.out, &built, &args.tag).map_err(Failure::new)?;
    Ok(format!(
        "{} {}:{}\n",
        built.manifest.digest,
        args.out.display(),
        args.tag
    ))
}
