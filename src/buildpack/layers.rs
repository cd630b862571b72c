//! Typed layer definitions and the handles buildpacks fill, with cache reuse decided by a
//! pure function of the old and new metadata.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ids::LayerName;
use crate::layer::LayerEntries;

/// What a layer is for (CNB layer types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LayerTypes {
    /// Goes into the image.
    pub launch: bool,
    /// Visible to later buildpacks (env, PATH).
    pub build: bool,
    /// Kept between builds.
    pub cache: bool,
}

impl LayerTypes {
    /// In the image and cached: reused without rebuilding when metadata matches.
    pub const LAUNCH_CACHED: LayerTypes = LayerTypes {
        launch: true,
        build: false,
        cache: true,
    };
    /// Only kept between builds (tool caches): never in the image.
    pub const CACHE_ONLY: LayerTypes = LayerTypes {
        launch: false,
        build: false,
        cache: true,
    };
}

/// How an environment variable changes (CNB env file actions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvAction {
    /// Replace the value.
    Override,
    /// Set only when unset.
    Default,
    /// Put in front, joined with `:`.
    Prepend,
    /// Put at the end, joined with `:`.
    Append,
}

/// One environment change a layer makes at launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvChange {
    /// Variable name.
    pub name: String,
    /// What to do.
    pub action: EnvAction,
    /// The value, which may name paths inside the image.
    pub value: String,
}

/// Whether a layer handle holds reusable content from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerState {
    /// Metadata matched the cached layer: its content (and blob) are reused as they are.
    Restored,
    /// New or invalidated: the buildpack must fill it. Reasons say why it was not reused.
    Empty {
        /// Human-readable reasons ("requirements.txt changed", "pip 24.0 → 24.2").
        reasons: Vec<String>,
    },
}

/// Where a layer's files go in the image.
#[derive(Debug, Clone)]
pub enum LayerContent {
    /// A directory the buildpack fills, exported at `/layers/<buildpack>/<name>`.
    Dir(PathBuf),
    /// Entries at the image root (runtimes from Debian packages, which need their own
    /// paths such as `/usr/lib/python3.11`).
    Root(Option<LayerEntries>),
}

/// A layer a buildpack contributes.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Its name (unique per buildpack).
    pub name: LayerName,
    /// Its types.
    pub types: LayerTypes,
    /// Metadata deciding reuse; recorded in the image label as `data`.
    pub metadata: Value,
    /// Restored or empty.
    pub state: LayerState,
    /// Its content.
    pub content: LayerContent,
    /// Environment changes at launch (and for later buildpacks when `build`).
    pub env: Vec<EnvChange>,
}

impl Layer {
    /// The directory to fill (for directory layers).
    pub fn dir(&self) -> Option<&PathBuf> {
        match &self.content {
            LayerContent::Dir(dir) => Some(dir),
            LayerContent::Root(_) => None,
        }
    }

    /// Whether the cached content was reused.
    pub fn is_restored(&self) -> bool {
        self.state == LayerState::Restored
    }

    /// Add an environment change.
    pub fn set_env(&mut self, name: &str, action: EnvAction, value: &str) {
        self.env.push(EnvChange {
            name: name.to_owned(),
            action,
            value: value.to_owned(),
        });
    }
}

/// Why cached metadata does not fit the new metadata; empty means reuse. Pure, so every
/// buildpack's reuse rule is unit-testable and the reasons can be shown with `--verbose`.
pub fn invalidation_reasons(cached: &Value, new: &Value) -> Vec<String> {
    let (Value::Object(cached), Value::Object(new)) = (cached, new) else {
        return if cached == new {
            Vec::new()
        } else {
            vec!["metadata changed".to_owned()]
        };
    };
    let keys: BTreeMap<&String, ()> = cached
        .keys()
        .chain(new.keys())
        .map(|key| (key, ()))
        .collect();
    let mut reasons = Vec::new();
    for key in keys.into_keys() {
        match (cached.get(key), new.get(key)) {
            (Some(old), Some(current)) if old == current => {}
            (Some(old), Some(current)) => reasons.push(describe_change(key, old, current)),
            (None, Some(_)) => reasons.push(format!("{key} is new")),
            (Some(_), None) => reasons.push(format!("{key} is gone")),
            (None, None) => {}
        }
    }
    reasons
}

fn describe_change(key: &str, old: &Value, new: &Value) -> String {
    let text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let (old, new) = (text(old), text(new));
    let looks_like_hash = |value: &str| {
        value.len() >= 32
            && value
                .trim_start_matches("sha256:")
                .chars()
                .all(|c| c.is_ascii_hexdigit())
    };
    if looks_like_hash(&old) || looks_like_hash(&new) || old.len() > 60 || new.len() > 60 {
        format!("{key} changed")
    } else {
        format!("{key} {old} → {new}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn equal_metadata_means_reuse() {
        let metadata = json!({"requirements_sha256": "ab".repeat(32), "pip": "24.0"});
        assert!(invalidation_reasons(&metadata, &metadata).is_empty());
    }

    #[test]
    fn reasons_name_what_changed() {
        let cached = json!({"requirements.txt": "aa".repeat(32), "pip": "24.0", "old": 1});
        let new = json!({"requirements.txt": "bb".repeat(32), "pip": "24.2", "arch": "amd64"});
        assert_eq!(
            invalidation_reasons(&cached, &new),
            [
                "arch is new",
                "old is gone",
                "pip 24.0 → 24.2",
                "requirements.txt changed"
            ]
        );
    }
}
