//! `buildpacks/<id>/buildpack.toml`: a buildpack's identity and targets.

use serde::Deserialize;

use super::ids::BuildpackId;

/// A buildpack descriptor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BuildpackDescriptor {
    /// Buildpack API version it implements.
    pub api: String,
    /// The `[buildpack]` table.
    pub buildpack: BuildpackInfo,
    /// Supported targets.
    #[serde(default)]
    pub targets: Vec<TargetSpec>,
    /// Free-form metadata (e.g. the stack packages of its runtime).
    #[serde(default)]
    pub metadata: toml::Table,
}

/// The `[buildpack]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BuildpackInfo {
    /// Unique id.
    pub id: BuildpackId,
    /// Human name.
    pub name: String,
    /// Version (X.Y.Z).
    pub version: String,
    /// Homepage.
    #[serde(default)]
    pub homepage: Option<String>,
    /// One-line description.
    #[serde(default)]
    pub description: Option<String>,
}

/// A `[[targets]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TargetSpec {
    /// Operating system.
    #[serde(default)]
    pub os: Option<String>,
    /// Architecture.
    #[serde(default)]
    pub arch: Option<String>,
}

/// A descriptor that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("buildpack descriptor {origin} is invalid")]
pub struct DescriptorError {
    /// Where it came from.
    pub origin: String,
    /// The parse failure.
    #[source]
    pub source: toml::de::Error,
}

impl BuildpackDescriptor {
    /// Parse `buildpack.toml` text.
    pub fn parse(text: &str, origin: &str) -> Result<Self, DescriptorError> {
        toml::from_str(text).map_err(|source| DescriptorError {
            origin: origin.to_owned(),
            source,
        })
    }

    /// The id.
    pub fn id(&self) -> &BuildpackId {
        &self.buildpack.id
    }
}
