//! The build report: what each layer did and why. Tests and CI read it; it holds no timings.

use serde::{Deserialize, Serialize};

/// Where a layer blob came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlobFrom {
    /// Tarred and compressed by this build.
    Built,
    /// Recorded in the local layer cache by an earlier build.
    Cache,
    /// The previous image's blob, referenced by digest (it stays on the registry).
    PreviousImage,
}

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
    /// Where the layer's blob came from.
    pub blob_from: BlobFrom,
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
    /// The previous image whose layers were reusable, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_image: Option<PreviousImageReport>,
    /// The cache image, when one was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_image: Option<CacheImageReport>,
    /// Problems that did not fail the build (e.g. the cache image could not be saved).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What the build did with its cache image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheImageReport {
    /// Its reference.
    pub reference: String,
    /// `buildpack/layer` of the layers restored from it before the build.
    pub restored: Vec<String>,
    /// Its new manifest digest, when it was saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// How its blobs reached the registry, when it was saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<crate::export::PushStats>,
}

impl CacheImageReport {
    /// A cache image that restored `restored`.
    pub fn new(reference: &crate::registry::Reference, restored: Vec<String>) -> Self {
        Self {
            reference: reference.to_string(),
            restored,
            digest: None,
            push: None,
        }
    }

    /// Note a successful save.
    pub fn record_push(&mut self, pushed: &crate::registry::PushReport) {
        self.digest = Some(pushed.manifest_digest.to_string());
        self.push = Some(crate::export::PushStats::from(pushed));
    }
}

/// The previous image a build reused layers from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousImageReport {
    /// Its reference, pinned.
    pub reference: String,
    /// Its manifest digest.
    pub digest: String,
}
