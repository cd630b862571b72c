//! Building images on a base, written through the canonical writer.

use std::collections::BTreeMap;

use oci_spec::image::{
    Arch, Config, Descriptor, History, HistoryBuilder, ImageConfiguration,
    ImageConfigurationBuilder, ImageManifestBuilder, MediaType, Os, RootFs,
};

use super::blobs::BlobStore;
use super::canonical;
use super::digest::Digest;
use super::error::{OciError, Result};
use super::image::{Image, LayerRef, OCI_CONFIG, OCI_MANIFEST, oci_media_type};

/// The creation time used when nothing else is asked for: 1980-01-01T00:00:01Z, as CNB does.
pub const DEFAULT_CREATED: &str = "1980-01-01T00:00:01Z";

/// Builds an image: a base's layers and config, plus appended layers and config changes.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    base_config: ImageConfiguration,
    runtime: Config,
    layers: Vec<LayerRef>,
    history: Vec<History>,
    annotations: BTreeMap<String, String>,
    created: String,
}

impl ImageBuilder {
    /// Start from a base image: its layers, history and runtime config. Docker media types
    /// are renamed to their OCI twins (same bytes) so the result is a pure OCI image.
    pub fn from_base(base: &Image, location: &str) -> Result<Self> {
        let layers = base
            .layers(location)?
            .into_iter()
            .map(|layer| LayerRef {
                media_type: oci_media_type(&layer.media_type).to_owned(),
                ..layer
            })
            .collect();
        Ok(Self {
            runtime: base.config.config().clone().unwrap_or_default(),
            history: base.config.history().clone().unwrap_or_default(),
            base_config: base.config.clone(),
            layers,
            annotations: BTreeMap::new(),
            created: DEFAULT_CREATED.to_owned(),
        })
    }

    /// Start from nothing (linux/amd64).
    pub fn scratch() -> Self {
        let base_config = ImageConfigurationBuilder::default()
            .os(Os::Linux)
            .architecture(Arch::Amd64)
            .rootfs(RootFs::default())
            .build()
            .expect("all required fields set");
        Self {
            base_config,
            runtime: Config::default(),
            layers: Vec::new(),
            history: Vec::new(),
            annotations: BTreeMap::new(),
            created: DEFAULT_CREATED.to_owned(),
        }
    }

    /// The layers so far, bottom first.
    pub fn layers(&self) -> &[LayerRef] {
        &self.layers
    }

    /// Append a layer with a history entry saying what created it.
    pub fn push_layer(&mut self, layer: LayerRef, created_by: &str) {
        self.layers.push(layer);
        self.history.push(
            HistoryBuilder::default()
                .created_by(created_by.to_owned())
                .build()
                .expect("no required fields"),
        );
    }

    /// Set the creation time (RFC 3339) of the config and of the history entries added here.
    pub fn set_created(&mut self, created: &str) {
        created.clone_into(&mut self.created);
    }

    /// The runtime config (Env, Entrypoint, User, labels…), for reading.
    pub fn runtime(&self) -> &Config {
        &self.runtime
    }

    /// The runtime config, for changing.
    pub fn runtime_mut(&mut self) -> &mut Config {
        &mut self.runtime
    }

    /// Set one config label.
    pub fn set_label(&mut self, key: &str, value: &str) {
        let mut labels = self.runtime.labels().clone().unwrap_or_default();
        labels.insert(key.to_owned(), value.to_owned());
        self.runtime.set_labels(Some(labels));
    }

    /// Set one manifest annotation.
    pub fn annotate(&mut self, key: &str, value: &str) {
        self.annotations.insert(key.to_owned(), value.to_owned());
    }

    /// Write config and manifest into `store` through the canonical writer. Cmd is always
    /// cleared: a base's CMD must never become the app's arguments.
    pub fn build(self, store: &BlobStore) -> Result<Image> {
        let mut runtime = self.runtime;
        runtime.set_cmd(None);
        let base_history_len = self.base_config.history().as_ref().map_or(0, Vec::len);
        let history: Vec<History> = self
            .history
            .into_iter()
            .enumerate()
            .map(|(index, mut entry)| {
                if index >= base_history_len {
                    entry.set_created(Some(self.created.clone()));
                }
                entry
            })
            .collect();
        let mut config = self.base_config;
        config.set_created(Some(self.created));
        config.set_config(Some(runtime));
        config.set_history((!history.is_empty()).then_some(history));
        config.set_rootfs(RootFs::default());
        config.rootfs_mut().set_diff_ids(
            self.layers
                .iter()
                .map(|layer| layer.diff_id.to_string())
                .collect(),
        );
        let config_bytes = canonical::to_vec(&config).map_err(|source| OciError::Serialize {
            what: "image config",
            source,
        })?;
        let config_digest = store.put_bytes(&config_bytes)?;
        let layer_descriptors: Vec<Descriptor> = self
            .layers
            .iter()
            .map(|layer| {
                Descriptor::new(
                    MediaType::from(layer.media_type.as_str()),
                    layer.size,
                    layer.digest.to_oci(),
                )
            })
            .collect();
        let mut manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::from(OCI_MANIFEST))
            .config(Descriptor::new(
                MediaType::from(OCI_CONFIG),
                config_bytes.len() as u64,
                config_digest.to_oci(),
            ))
            .layers(layer_descriptors)
            .build()
            .expect("all required fields set");
        if !self.annotations.is_empty() {
            manifest.set_annotations(Some(self.annotations.into_iter().collect()));
        }
        let manifest_bytes =
            canonical::to_vec(&manifest).map_err(|source| OciError::Serialize {
                what: "image manifest",
                source,
            })?;
        let manifest_digest: Digest = store.put_bytes(&manifest_bytes)?;
        let image = Image::parse(manifest_bytes, config_bytes, store.location())?;
        debug_assert_eq!(image.manifest_digest, manifest_digest);
        Ok(image)
    }
}
