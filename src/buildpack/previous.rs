//! Layers a previous image of the app recorded, restorable the way the CNB restorer does it: a
//! launch layer whose recorded metadata equals what the buildpack asks for now is `Restored`,
//! and its blob is reused from the previous image instead of being rebuilt, re-tarred,
//! recompressed or re-uploaded. The image side supplies the records and, for directory
//! layers a buildpack may read, a way to unpack the blob ([`LayerFetch`]); this module knows
//! nothing of registries.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::BuildpackFailure;
use super::layers::{EnvChange, LayerTypes, invalidation_reasons};
use crate::layer::WrittenLayer;

/// One layer as a previous image recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousLayer {
    /// The metadata it was built with (the label's `data`).
    pub metadata: Value,
    /// Its types then.
    pub types: LayerTypes,
    /// Its launch environment changes.
    pub env: Vec<EnvChange>,
    /// Its blob in the previous image.
    pub blob: WrittenLayer,
}

/// Unpacks a previous image's layer blob as a directory.
pub trait LayerFetch: Send + Sync {
    /// Write the content found under `image_path` (`layers/<buildpack>/<layer>`) in `blob`
    /// into `dest`, which does not exist yet.
    fn unpack(
        &self,
        blob: &WrittenLayer,
        image_path: &str,
        dest: &Path,
    ) -> Result<(), BuildpackFailure>;
}

/// One buildpack's layers in the previous image, and which of them this build restored.
#[derive(Clone)]
pub struct PreviousLayers {
    layers: BTreeMap<String, PreviousLayer>,
    fetch: Arc<dyn LayerFetch>,
    restored: Arc<Mutex<BTreeMap<String, WrittenLayer>>>,
}

impl std::fmt::Debug for PreviousLayers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviousLayers")
            .field("layers", &self.layers)
            .finish_non_exhaustive()
    }
}

impl PreviousLayers {
    /// Records of one buildpack, with the way to fetch their content.
    pub fn new(layers: BTreeMap<String, PreviousLayer>, fetch: Arc<dyn LayerFetch>) -> Self {
        Self {
            layers,
            fetch,
            restored: Arc::default(),
        }
    }

    /// The recorded layer `name`, when it may be restored for a layer of `types` with
    /// `metadata`: the CNB restorer's rule (a launch layer, not a build-only-uncached one)
    /// plus equal metadata. `Err` carries why not, for the report.
    pub(super) fn matching(
        &self,
        name: &str,
        types: LayerTypes,
        metadata: &Value,
    ) -> Result<&PreviousLayer, Vec<String>> {
        let Some(layer) = self.layers.get(name) else {
            return Err(vec!["not in the previous image".to_owned()]);
        };
        if !types.launch || !layer.types.launch || (types.build && !types.cache) {
            return Err(vec![
                "the previous image cannot restore a build-time layer".to_owned(),
            ]);
        }
        let reasons = invalidation_reasons(&layer.metadata, metadata);
        if reasons.is_empty() {
            Ok(layer)
        } else {
            Err(reasons)
        }
    }

    /// Unpack a recorded layer's content into `dest`.
    pub(super) fn unpack(
        &self,
        layer: &PreviousLayer,
        image_path: &str,
        dest: &Path,
    ) -> Result<(), BuildpackFailure> {
        self.fetch.unpack(&layer.blob, image_path, dest)
    }

    /// Note that layer `name` was restored with `blob`.
    pub(super) fn mark_restored(&self, name: &str, blob: WrittenLayer) {
        self.restored
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(name.to_owned(), blob);
    }

    /// The previous image's blob of layer `name`, when this build restored it from there.
    pub fn restored_blob(&self, name: &str) -> Option<WrittenLayer> {
        self.restored
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(name)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;
    use crate::buildpack::{BuildpackId, EnvAction, LayerState, LayerStore};
    use crate::layer::LayerCache;
    use crate::oci::Digest;

    /// Writes one file per unpack and counts the calls.
    #[derive(Default)]
    struct FakeFetch {
        calls: AtomicUsize,
    }

    impl LayerFetch for FakeFetch {
        fn unpack(
            &self,
            _blob: &WrittenLayer,
            image_path: &str,
            dest: &Path,
        ) -> Result<(), BuildpackFailure> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            std::fs::create_dir_all(dest).unwrap();
            std::fs::write(dest.join("from"), image_path).unwrap();
            Ok(())
        }
    }

    fn blob(name: &str) -> WrittenLayer {
        WrittenLayer {
            diff_id: Digest::of_bytes(format!("tar {name}").as_bytes()),
            digest: Digest::of_bytes(format!("gz {name}").as_bytes()),
            size: 10,
            uncompressed_size: 0,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".to_owned(),
        }
    }

    fn store(root: &Path, fetch: Arc<FakeFetch>, clear: bool) -> LayerStore {
        let env = vec![EnvChange {
            name: "PYTHONPATH".to_owned(),
            action: EnvAction::Override,
            value: "/layers/kiln_python/deps".to_owned(),
        }];
        let layers = BTreeMap::from([
            (
                "deps".to_owned(),
                PreviousLayer {
                    metadata: json!({"requirements": "aa"}),
                    types: LayerTypes::LAUNCH_CACHED,
                    env: env.clone(),
                    blob: blob("deps"),
                },
            ),
            (
                "runtime".to_owned(),
                PreviousLayer {
                    metadata: json!({"python": "3.11.2"}),
                    types: LayerTypes::LAUNCH_CACHED,
                    env,
                    blob: blob("runtime"),
                },
            ),
        ]);
        LayerStore::new(
            BuildpackId::new("kiln/python").unwrap(),
            LayerCache::new(root.join("cache")),
            root.join("staging"),
            clear,
        )
        .with_previous(PreviousLayers::new(layers, fetch))
    }

    #[test]
    fn matching_launch_layers_are_restored_from_the_previous_image() {
        let root = tempfile::tempdir().unwrap();
        let fetch = Arc::new(FakeFetch::default());
        let layers = store(root.path(), fetch.clone(), false);

        let deps = layers
            .dir_layer(
                "deps",
                LayerTypes::LAUNCH_CACHED,
                json!({"requirements": "aa"}),
            )
            .unwrap();
        assert_eq!(deps.state, LayerState::Restored);
        assert_eq!(
            deps.env[0].name, "PYTHONPATH",
            "env comes back with the layer"
        );
        let dir = deps.dir().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("from")).unwrap(),
            "layers/kiln_python/deps"
        );
        assert_eq!(layers.restored_from_previous("deps"), Some(blob("deps")));

        let runtime = layers
            .root_layer("runtime", json!({"python": "3.11.2"}))
            .unwrap();
        assert_eq!(runtime.state, LayerState::Restored);
        assert_eq!(
            fetch.calls.load(Ordering::SeqCst),
            1,
            "a root layer needs no content: its blob is the layer"
        );
        assert_eq!(
            layers.restored_from_previous("runtime"),
            Some(blob("runtime"))
        );
    }

    #[test]
    fn changed_metadata_build_layers_and_clear_cache_rebuild() {
        let root = tempfile::tempdir().unwrap();
        let fetch = Arc::new(FakeFetch::default());
        let layers = store(root.path(), fetch.clone(), false);
        let changed = layers
            .dir_layer(
                "deps",
                LayerTypes::LAUNCH_CACHED,
                json!({"requirements": "bb"}),
            )
            .unwrap();
        assert_eq!(
            changed.state,
            LayerState::Empty {
                reasons: vec!["requirements aa → bb".to_owned()]
            }
        );
        let build_only = LayerTypes {
            launch: true,
            build: true,
            cache: false,
        };
        let build_layer = layers
            .dir_layer("deps", build_only, json!({"requirements": "aa"}))
            .unwrap();
        assert!(!build_layer.is_restored());
        assert_eq!(layers.restored_from_previous("deps"), None);

        let cleared = store(root.path(), fetch.clone(), true);
        assert!(
            !cleared
                .root_layer("runtime", json!({"python": "3.11.2"}))
                .unwrap()
                .is_restored()
        );
        assert_eq!(fetch.calls.load(Ordering::SeqCst), 0);
    }
}
