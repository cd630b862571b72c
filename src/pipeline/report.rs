//! The build report: what each layer did and why. Tests and CI read it; it holds no timings.

use serde::{Deserialize, Serialize};

/// What happened to one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Buildpack id, or `app` / `process-types` for the layers kiln makes itself.
    pub buildpack: String,
    /// Layer name.
    pub name: String,
    /// The buildpack reused the cached content (no rebuild).
    pub reused: bool,
    /// Why it was rebuilt (empty when reused).
    pub reasons: Vec<String>,
    /// Whether a tar was written and compressed this time.
    pub compressed: bool,
    /// diff_id.
    pub diff_id: String,
    /// Blob digest.
    pub digest: String,
    /// Blob size.
    pub size: u64,
}

/// The report of one build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildReport {
    /// The image name built.
    pub image: String,
    /// Its manifest digest.
    pub digest: String,
    /// The run image reference.
    pub run_image: String,
    /// The buildpacks that ran.
    pub buildpacks: Vec<String>,
    /// Image layers added on top of the run image, bottom first.
    pub layers: Vec<LayerReport>,
    /// Where the image was written.
    pub outputs: Vec<crate::export::Exported>,
    /// The default process type.
    pub default_process: String,
}
