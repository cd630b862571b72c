//! The Cloud Native Buildpacks labels, with key names exactly as the CNB lifecycle writes
//! them, so pack/lifecycle can read kiln images and kiln can read theirs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `io.buildpacks.lifecycle.metadata`.
pub const LIFECYCLE_METADATA: &str = "io.buildpacks.lifecycle.metadata";
/// `io.buildpacks.lifecycle.cache.metadata`, the label of a cache image.
pub const CACHE_METADATA: &str = "io.buildpacks.lifecycle.cache.metadata";
/// `io.buildpacks.build.metadata`.
pub const BUILD_METADATA: &str = "io.buildpacks.build.metadata";
/// `io.buildpacks.project.metadata`.
pub const PROJECT_METADATA: &str = "io.buildpacks.project.metadata";
/// `io.buildpacks.rebasable`.
pub const REBASABLE: &str = "io.buildpacks.rebasable";
/// Prefix of the labels a base (run image) owns.
pub const BASE_LABEL_PREFIX: &str = "io.buildpacks.base.";
/// Legacy prefix of stack labels, synced like base labels.
pub const STACK_LABEL_PREFIX: &str = "io.buildpacks.stack.";
/// Distro name label of a base.
pub const BASE_DISTRO_NAME: &str = "io.buildpacks.base.distro.name";
/// Distro version label of a base.
pub const BASE_DISTRO_VERSION: &str = "io.buildpacks.base.distro.version";
/// The platform API kiln's images follow.
pub const PLATFORM_API: &str = "0.13";

/// `{"sha": "sha256:…"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sha {
    /// A diff_id.
    pub sha: String,
}

/// One layer of a buildpack in the lifecycle label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerMetadata {
    /// diff_id of the layer.
    pub sha: String,
    /// The layer's metadata.
    #[serde(default)]
    pub data: Value,
    /// Layer types.
    #[serde(default)]
    pub build: bool,
    /// Layer types.
    #[serde(default)]
    pub launch: bool,
    /// Layer types.
    #[serde(default)]
    pub cache: bool,
    /// The launch environment changes the layer makes. kiln bakes layer env into the image
    /// Env, so reusing a layer from a previous or cache image needs them back; CNB tools
    /// ignore the key.
    #[serde(rename = "kiln.env", default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<LayerEnv>,
}

/// One environment change of a layer, as recorded in labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerEnv {
    /// Variable name.
    pub name: String,
    /// `override`, `default`, `prepend` or `append`.
    pub action: String,
    /// The value.
    pub value: String,
}

/// `io.buildpacks.lifecycle.cache.metadata`: the cached layers of each buildpack.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheMetadata {
    /// Buildpacks and their cached layers.
    #[serde(default)]
    pub buildpacks: Vec<BuildpackLayers>,
    /// Unknown fields (e.g. `sbom` from lifecycle caches) kept verbatim.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One buildpack in the lifecycle label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildpackLayers {
    /// Buildpack id.
    pub key: String,
    /// Buildpack version.
    pub version: String,
    /// Its launch layers by name.
    #[serde(default)]
    pub layers: BTreeMap<String, LayerMetadata>,
    /// Unknown fields kept verbatim.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `runImage` in the lifecycle label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunImage {
    /// diff_id of the run image's top layer.
    #[serde(default)]
    pub top_layer: String,
    /// Digest reference of the run image.
    #[serde(default)]
    pub reference: String,
    /// The run image name as given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Mirrors of the run image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

/// The deprecated `stack.runImage` copy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackRunImage {
    /// Name.
    #[serde(default)]
    pub image: String,
    /// Mirrors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

/// `stack` in the lifecycle label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stack {
    /// The run image.
    #[serde(default)]
    pub run_image: StackRunImage,
}

/// `io.buildpacks.lifecycle.metadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LifecycleMetadata {
    /// App layers.
    #[serde(default)]
    pub app: Vec<Sha>,
    /// Process-types layer.
    #[serde(
        rename = "process-types",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub process_types: Option<Sha>,
    /// Buildpacks and their layers.
    #[serde(default)]
    pub buildpacks: Vec<BuildpackLayers>,
    /// The run image.
    #[serde(rename = "runImage", default)]
    pub run_image: RunImage,
    /// Deprecated copy of the run image name.
    #[serde(default)]
    pub stack: Stack,
    /// Unknown fields (e.g. `launcher`, `config`, `sbom` from lifecycle images) kept verbatim.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A buildpack in `io.buildpacks.build.metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackInfo {
    /// Id.
    pub id: String,
    /// Version.
    pub version: String,
    /// Homepage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
}

/// A process in `io.buildpacks.build.metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessMetadata {
    /// Type.
    pub r#type: String,
    /// Command (array, Platform API ≥ 0.10).
    pub command: Vec<String>,
    /// Default args.
    #[serde(default)]
    pub args: Vec<String>,
    /// Direct exec (true) or shell.
    pub direct: bool,
    /// The buildpack that defined it.
    #[serde(rename = "buildpackID")]
    pub buildpack_id: String,
    /// Working directory.
    #[serde(
        rename = "working-dir",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
}

/// `io.buildpacks.build.metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildMetadata {
    /// The buildpacks that ran.
    #[serde(default)]
    pub buildpacks: Vec<BuildpackInfo>,
    /// Processes, sorted by type.
    #[serde(default)]
    pub processes: Vec<ProcessMetadata>,
    /// The default process type.
    #[serde(
        rename = "buildpack-default-process-type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_process: Option<String>,
    /// Unknown fields kept verbatim.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Parse a JSON label, `None` when absent or not valid.
pub fn parse_label<T: serde::de::DeserializeOwned>(
    labels: &BTreeMap<String, String>,
    key: &str,
) -> Option<T> {
    serde_json::from_str(labels.get(key)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_label_uses_cnb_key_names_and_keeps_unknown_fields() {
        let text = r#"{"app":[{"sha":"sha256:a"}],"launcher":{"sha":"sha256:l"},"process-types":{"sha":"sha256:p"},
            "buildpacks":[{"key":"x/y","version":"1.0.0","layers":{"deps":{"sha":"sha256:d","data":{"v":1},"launch":true,"cache":true}}}],
            "runImage":{"topLayer":"sha256:t","reference":"r@sha256:1","image":"r"},"stack":{"runImage":{"image":"r"}}}"#;
        let metadata: LifecycleMetadata = serde_json::from_str(text).unwrap();
        assert_eq!(metadata.run_image.top_layer, "sha256:t");
        assert!(metadata.buildpacks[0].layers["deps"].launch);
        let round = serde_json::to_value(&metadata).unwrap();
        assert_eq!(round["launcher"]["sha"], "sha256:l");
        assert_eq!(round["runImage"]["topLayer"], "sha256:t");
        assert_eq!(round["stack"]["runImage"]["image"], "r");
        assert_eq!(round["process-types"]["sha"], "sha256:p");
    }
}
