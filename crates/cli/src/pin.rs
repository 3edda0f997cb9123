//! The image options `vrata-mirror istio` and `vrata-mirror gateway` share:
//! the digest that pins the module's OCI image (given, or read from a
//! layout of `vrata-mirror image`), the pull policy and the pull secret.

use crate::Failure;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct ImagePin {
    /// The OCI image's digest (what `vrata-mirror image` and the registry
    /// print): pins the module, as `@sha256:…` in the image URL and as the
    /// sha256 field, which Istio and Envoy Gateway check against the pulled
    /// manifest.
    #[arg(long, value_name = "sha256:HEX", conflicts_with = "image_layout")]
    pub image_digest: Option<String>,
    /// An OCI image layout of `vrata-mirror image` (e.g. target/image/vrata_mirror):
    /// pins the module to its digest, as --image-digest does.
    #[arg(long, value_name = "DIR")]
    pub image_layout: Option<PathBuf>,
    /// The pull policy: IfNotPresent, or Always (pull again when the
    /// resource changes; a pinned module is never pulled again). Istio's
    /// WasmPlugin gets IfNotPresent when not given; Envoy Gateway's policy
    /// leaves it to Envoy Gateway (IfNotPresent, except for :latest).
    #[arg(long, value_enum)]
    pub image_pull_policy: Option<PullPolicy>,
    /// A Secret of type kubernetes.io/dockerconfigjson in the resources'
    /// namespace, for a private registry.
    #[arg(long, value_name = "SECRET")]
    pub image_pull_secret: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    #[value(name = "IfNotPresent")]
    IfNotPresent,
    #[value(name = "Always")]
    Always,
}

impl PullPolicy {
    pub fn name(self) -> &'static str {
        match self {
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Always => "Always",
        }
    }
}

impl ImagePin {
    /// The digest (`sha256:…`), if the image is pinned.
    pub fn digest(&self) -> Result<Option<String>, Failure> {
        match (&self.image_digest, &self.image_layout) {
            (Some(digest), _) => Ok(Some(digest.clone())),
            (None, Some(dir)) => Ok(Some(crate::oci::Layout::read(dir).map_err(Failure::new)?.digest)),
            (None, None) => Ok(None),
        }
    }

    /// The pinned `oci://` URL and the sha256 field's hex, or `None`.
    pub fn pin(&self, oci_url: &str) -> Result<Option<(String, String)>, Failure> {
        let Some(digest) = self.digest()? else {
            return Ok(None);
        };
        let url = vrata_mirror_render::istio::pin_oci_url(oci_url, &digest).map_err(Failure::new)?;
        Ok(Some((url, digest.trim_start_matches("sha256:").to_owned())))
    }
}
