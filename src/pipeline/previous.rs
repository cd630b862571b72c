//! The previous image of the app (`--previous-image`, by default the name being published):
//! only its manifest and config are fetched. Its `io.buildpacks.lifecycle.metadata` label says
//! which metadata each launch layer was built with; layers whose metadata still fits are
//! restored from it (see `buildpack::PreviousLayers`), and layers whose diff_id matches (the
//! app layer, the process types) are referenced by its blob digest. Either way nothing is
//! re-tarred, recompressed or re-uploaded: the blobs are already in (or mountable into) the
//! target repository. Directory layers a buildpack may read are unpacked from their blob on
//! demand, the only case that downloads layer bytes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::buildpack::{
    BuildpackFailure, EnvAction, EnvChange, LayerFetch, LayerTypes, PreviousLayer, PreviousLayers,
};
use crate::diagnostic::{Diagnose, ErrorClass};
use crate::layer::{ExtractError, WrittenLayer, extract_subtree};
use crate::oci::cnb::{self, LayerEnv, LifecycleMetadata};
use crate::oci::layer_reader::uncompressed_reader;
use crate::oci::{BlobStore, Digest, Image, LayerRef, OciError};
use crate::registry::{BlobOrigins, Reference, RegistryClient, RegistryError};

/// Why the previous image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PreviousImageError {
    #[error("`{reference}` is not a registry reference for --previous-image")]
    Reference {
        reference: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("cannot read the previous image `{reference}`")]
    Pull {
        reference: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("the previous image `{reference}` is not a valid image")]
    Read {
        reference: String,
        #[source]
        source: OciError,
    },
}

impl Diagnose for PreviousImageError {
    fn class(&self) -> ErrorClass {
        match self {
            PreviousImageError::Reference { .. } => ErrorClass::User,
            PreviousImageError::Pull { source, .. } => source.class(),
            PreviousImageError::Read { source, .. } => crate::images::oci_error_class(source),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            PreviousImageError::Pull { source, .. } => source.hint(),
            PreviousImageError::Read { .. } => Some(
                "pass --previous-image with another image, or --clear-cache to ignore it"
                    .to_owned(),
            ),
            PreviousImageError::Reference { .. } => Some(
                "name it like the image you publish, e.g. registry.example/team/app:1".to_owned(),
            ),
        }
    }
}

/// A previous image: its pinned reference, manifest and config, and its CNB label.
#[derive(Debug, Clone)]
pub struct PreviousImage {
    /// The reference pinned to the manifest digest.
    pub reference: Reference,
    /// Manifest and config (its layers stay on the registry).
    pub image: Image,
    lifecycle: LifecycleMetadata,
    layers: Vec<LayerRef>,
}

impl PreviousImage {
    /// Fetch the manifest and config of `text` (`REF` or `docker://REF`); `None` when the
    /// registry has no such image (the first publish).
    pub fn open(
        text: &str,
        client: &RegistryClient,
        store: &BlobStore,
    ) -> Result<Option<Self>, PreviousImageError> {
        let reference =
            Reference::parse(text.strip_prefix("docker://").unwrap_or(text)).map_err(|source| {
                PreviousImageError::Reference {
                    reference: text.to_owned(),
                    source: Box::new(source),
                }
            })?;
        let pulled = match client.pull_manifest_and_config(&reference, store) {
            Ok(pulled) => pulled,
            Err(error) if error.is_not_found() => return Ok(None),
            Err(source) => {
                return Err(PreviousImageError::Pull {
                    reference: reference.to_string(),
                    source: Box::new(source),
                });
            }
        };
        let read = |source| PreviousImageError::Read {
            reference: reference.to_string(),
            source,
        };
        let image = Image::load(
            store,
            &pulled.manifest_digest,
            Some(pulled.manifest_bytes.len() as u64),
        )
        .map_err(read)?;
        let layers = image.layers(&pulled.reference.to_string()).map_err(read)?;
        // An image without (or with an unreadable) label is still a source of blobs by diff_id.
        let lifecycle =
            cnb::parse_label(&image.labels(), cnb::LIFECYCLE_METADATA).unwrap_or_default();
        Ok(Some(Self {
            reference: pulled.reference,
            image,
            lifecycle,
            layers,
        }))
    }

    /// Record where every layer blob lives, so pushes mount or skip them.
    pub fn add_origins(&self, origins: &mut BlobOrigins) {
        origins.add_all(
            self.layers.iter().map(|layer| &layer.digest),
            &self.reference,
        );
    }

    /// The blob of the layer with this diff_id, when it is compressed as `media_type`.
    pub fn layer_with_diff_id(&self, diff_id: &Digest, media_type: &str) -> Option<WrittenLayer> {
        self.layers
            .iter()
            .find(|layer| &layer.diff_id == diff_id && layer.media_type == media_type)
            .map(written)
    }

    /// What the label recorded for `buildpack`'s launch layers, restorable through `fetch`.
    pub fn buildpack_layers(&self, buildpack: &str, fetch: Arc<dyn LayerFetch>) -> PreviousLayers {
        let mut layers = BTreeMap::new();
        let recorded = self
            .lifecycle
            .buildpacks
            .iter()
            .find(|entry| entry.key == buildpack);
        for (name, metadata) in recorded.into_iter().flat_map(|entry| &entry.layers) {
            let Ok(diff_id) = metadata.sha.parse::<Digest>() else {
                continue;
            };
            let Some(layer) = self.layers.iter().find(|layer| layer.diff_id == diff_id) else {
                continue;
            };
            layers.insert(
                name.clone(),
                PreviousLayer {
                    metadata: metadata.data.clone(),
                    types: LayerTypes {
                        launch: metadata.launch,
                        build: metadata.build,
                        cache: metadata.cache,
                    },
                    env: metadata.env.iter().filter_map(env_change).collect(),
                    blob: written(layer),
                },
            );
        }
        PreviousLayers::new(layers, fetch)
    }
}

fn written(layer: &LayerRef) -> WrittenLayer {
    WrittenLayer {
        diff_id: layer.diff_id.clone(),
        digest: layer.digest.clone(),
        size: layer.size,
        // Not recorded in manifests, and nothing downstream needs it for a reused blob.
        uncompressed_size: 0,
        media_type: layer.media_type.clone(),
    }
}

/// A label env entry as the buildpack contract's change; unknown actions are dropped.
pub fn env_change(entry: &LayerEnv) -> Option<EnvChange> {
    let action = match entry.action.as_str() {
        "override" => EnvAction::Override,
        "default" => EnvAction::Default,
        "prepend" => EnvAction::Prepend,
        "append" => EnvAction::Append,
        _ => return None,
    };
    Some(EnvChange {
        name: entry.name.clone(),
        action,
        value: entry.value.clone(),
    })
}

/// A buildpack contract env change as a label entry.
pub fn label_env(change: &EnvChange) -> LayerEnv {
    let action = match change.action {
        EnvAction::Override => "override",
        EnvAction::Default => "default",
        EnvAction::Prepend => "prepend",
        EnvAction::Append => "append",
    };
    LayerEnv {
        name: change.name.clone(),
        action: action.to_owned(),
        value: change.value.clone(),
    }
}

/// Why a layer could not be unpacked from a registry blob.
#[derive(Debug, thiserror::Error)]
pub enum LayerFetchError {
    #[error("cannot download layer {digest}")]
    Pull {
        digest: Digest,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("cannot read layer {digest}")]
    Read {
        digest: Digest,
        #[source]
        source: OciError,
    },
    #[error("cannot unpack layer {digest}")]
    Extract {
        digest: Digest,
        #[source]
        source: ExtractError,
    },
}

impl Diagnose for LayerFetchError {
    fn class(&self) -> ErrorClass {
        match self {
            LayerFetchError::Pull { source, .. } => source.class(),
            LayerFetchError::Read { .. } | LayerFetchError::Extract { .. } => ErrorClass::User,
        }
    }
}

/// Unpacks layers of an image in a registry repository: the blob is downloaded into the blob
/// store (verified) and its directory extracted (diff_id checked).
pub struct RegistryLayerFetch {
    /// The client.
    pub client: Arc<RegistryClient>,
    /// The repository holding the blobs.
    pub repository: Reference,
    /// Where downloaded blobs go.
    pub store: BlobStore,
}

impl RegistryLayerFetch {
    /// Download `blob` if needed and extract `image_path` from it into `dest`.
    pub fn unpack_layer(
        &self,
        blob: &WrittenLayer,
        image_path: &str,
        dest: &Path,
    ) -> Result<(), LayerFetchError> {
        self.client
            .pull_blob(&self.repository, &blob.digest, Some(blob.size), &self.store)
            .map_err(|source| LayerFetchError::Pull {
                digest: blob.digest.clone(),
                source: Box::new(source),
            })?;
        let layer = LayerRef {
            digest: blob.digest.clone(),
            size: blob.size,
            media_type: blob.media_type.clone(),
            diff_id: blob.diff_id.clone(),
        };
        let reader =
            uncompressed_reader(&self.store, &layer).map_err(|source| LayerFetchError::Read {
                digest: blob.digest.clone(),
                source,
            })?;
        extract_subtree(reader, image_path, dest, &blob.diff_id).map_err(|source| {
            LayerFetchError::Extract {
                digest: blob.digest.clone(),
                source,
            }
        })
    }
}

impl LayerFetch for RegistryLayerFetch {
    fn unpack(
        &self,
        blob: &WrittenLayer,
        image_path: &str,
        dest: &Path,
    ) -> Result<(), BuildpackFailure> {
        Ok(self.unpack_layer(blob, image_path, dest)?)
    }
}
