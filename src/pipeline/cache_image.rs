//! The cache image (`--cache-image REF`): cached layers kept in a registry so CI runners on
//! different machines share them. It is an image from scratch with one layer per cached
//! content directory (an empty layer when there is none) and the CNB label
//! `io.buildpacks.lifecycle.cache.metadata` recording each layer's metadata, types and env.
//!
//! Before a build its layers are restored into the local layer cache (records plus content),
//! so buildpacks find them as if they had built them here. After a build it is written again:
//! a cached launch layer reuses the app image's blob (same tar), an unchanged cache-only layer
//! reuses the old cache image's blob (same diff_id); only changed cache-only layers are
//! compressed and uploaded.

use std::path::Path;

use serde_json::Value;

use super::assemble::dir_layer_entries;
use super::previous::{env_change, label_env};
use crate::buildpack::{BuildpackId, EnvChange, LayerName, LayerTypes};
use crate::diagnostic::{Diagnose, ErrorClass};
use crate::layer::{
    Compression, ExtractError, LayerCache, LayerCacheError, LayerEntries, LayerError, LayerRecord,
    WrittenLayer, extract_subtree, tar_digest, write_layer,
};
use crate::oci::cnb::{self, BuildpackLayers, CacheMetadata, LayerMetadata};
use crate::oci::layer_reader::uncompressed_reader;
use crate::oci::{BlobStore, Image, ImageBuilder, LayerRef, OciError};
use crate::registry::{BlobOrigins, PushReport, Reference, RegistryClient, RegistryError};

/// Why the cache image could not be read, restored or written.
#[derive(Debug, thiserror::Error)]
pub enum CacheImageError {
    #[error("`{reference}` is not a registry reference for --cache-image")]
    Reference {
        reference: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("cannot read the cache image `{reference}`")]
    Pull {
        reference: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("the cache image `{reference}` is not a valid image")]
    Read {
        reference: String,
        #[source]
        source: OciError,
    },
    #[error("cannot restore cached layer {buildpack}/{layer} from the cache image")]
    Restore {
        buildpack: String,
        layer: String,
        #[source]
        source: ExtractError,
    },
    #[error("cannot record cached layer {buildpack}/{layer}")]
    Record {
        buildpack: String,
        layer: String,
        #[source]
        source: LayerCacheError,
    },
    #[error("cannot write the cache layer {buildpack}/{layer}")]
    Layer {
        buildpack: String,
        layer: String,
        #[source]
        source: Box<super::PipelineError>,
    },
    #[error("cannot write the cache image")]
    Write(#[source] LayerError),
    #[error("cannot push the cache image `{reference}`")]
    Push {
        reference: String,
        #[source]
        source: Box<RegistryError>,
    },
}

impl Diagnose for CacheImageError {
    fn class(&self) -> ErrorClass {
        match self {
            CacheImageError::Reference { .. } => ErrorClass::User,
            CacheImageError::Pull { source, .. } | CacheImageError::Push { source, .. } => {
                source.class()
            }
            CacheImageError::Read { source, .. } => crate::images::oci_error_class(source),
            CacheImageError::Restore { .. } => ErrorClass::User,
            CacheImageError::Record { .. }
            | CacheImageError::Layer { .. }
            | CacheImageError::Write(_) => ErrorClass::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            CacheImageError::Pull { source, reference } => source.hint().or_else(|| {
                Some(format!(
                    "check that the registry of {reference} is reachable from here, or build without --cache-image"
                ))
            }),
            CacheImageError::Push { source, .. } => source.hint(),
            CacheImageError::Read { .. } | CacheImageError::Restore { .. } => Some(
                "build with --clear-cache to ignore the cache image (the next build rewrites it)"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// A cache image as read from the registry (manifest and config; layers on demand).
#[derive(Debug, Clone)]
pub struct CacheImage {
    /// The reference pinned to its digest.
    pub reference: Reference,
    metadata: CacheMetadata,
    layers: Vec<LayerRef>,
}

/// A buildpack whose cached layers go into the cache image.
#[derive(Debug, Clone)]
pub struct CachedBuildpack {
    /// Its id.
    pub id: BuildpackId,
    /// Its version.
    pub version: String,
    /// Its layers with `cache = true`, by name.
    pub layers: Vec<(LayerName, LayerTypes)>,
}

/// What restoring the cache image did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// `buildpack/layer` of every layer unpacked into the local cache.
    pub restored: Vec<String>,
    /// `buildpack/layer` of layers the local cache already had as recorded.
    pub already_local: Vec<String>,
}

/// Parse `REF` or `docker://REF`.
pub fn parse_reference(text: &str) -> Result<Reference, CacheImageError> {
    Reference::parse(text.strip_prefix("docker://").unwrap_or(text)).map_err(|source| {
        CacheImageError::Reference {
            reference: text.to_owned(),
            source: Box::new(source),
        }
    })
}

impl CacheImage {
    /// Fetch the manifest and config of the cache image; `None` when there is none yet.
    pub fn open(
        reference: &Reference,
        client: &RegistryClient,
        store: &BlobStore,
    ) -> Result<Option<Self>, CacheImageError> {
        let pulled = match client.pull_manifest_and_config(reference, store) {
            Ok(pulled) => pulled,
            Err(error) if error.is_not_found() => return Ok(None),
            Err(source) => {
                return Err(CacheImageError::Pull {
                    reference: reference.to_string(),
                    source: Box::new(source),
                });
            }
        };
        let read = |source| CacheImageError::Read {
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
        // A label kiln cannot read restores nothing; the next push replaces it.
        let metadata = cnb::parse_label(&image.labels(), cnb::CACHE_METADATA).unwrap_or_default();
        Ok(Some(Self {
            reference: pulled.reference,
            metadata,
            layers,
        }))
    }

    /// Record where the cache layers live, so the next push finds them present or mounts them.
    pub fn add_origins(&self, origins: &mut BlobOrigins) {
        origins.add_all(
            self.layers.iter().map(|layer| &layer.digest),
            &self.reference,
        );
    }

    /// Unpack every cached layer into the local layer cache under `layers_root` (one scope per
    /// buildpack), unless the local cache already holds it with the same metadata.
    pub fn restore(
        &self,
        layers_root: &Path,
        client: &RegistryClient,
        store: &BlobStore,
    ) -> Result<Restored, CacheImageError> {
        let mut outcome = Restored::default();
        for buildpack in &self.metadata.buildpacks {
            // Names come from a registry: only valid ids and layer names become paths.
            let Ok(id) = BuildpackId::new(&buildpack.key) else {
                continue;
            };
            let cache = LayerCache::new(layers_root.join(id.escaped()));
            for (name, recorded) in &buildpack.layers {
                let (Ok(name), true) = (LayerName::new(name), recorded.cache) else {
                    continue;
                };
                let Some(layer) =
                    recorded.sha.parse().ok().and_then(|diff_id| {
                        self.layers.iter().find(|layer| layer.diff_id == diff_id)
                    })
                else {
                    continue;
                };
                let label = format!("{id}/{name}");
                let local = cache.load(name.as_str());
                if local
                    .is_some_and(|local| local.content.is_some() && local.metadata == recorded.data)
                {
                    outcome.already_local.push(label);
                    continue;
                }
                self.restore_layer(&cache, &id, &name, recorded, layer, client, store)?;
                outcome.restored.push(label);
            }
        }
        Ok(outcome)
    }

    #[allow(clippy::too_many_arguments)]
    fn restore_layer(
        &self,
        cache: &LayerCache,
        id: &BuildpackId,
        name: &LayerName,
        recorded: &LayerMetadata,
        layer: &LayerRef,
        client: &RegistryClient,
        store: &BlobStore,
    ) -> Result<(), CacheImageError> {
        let pull = |source| CacheImageError::Pull {
            reference: self.reference.to_string(),
            source: Box::new(source),
        };
        client
            .pull_blob(&self.reference, &layer.digest, Some(layer.size), store)
            .map_err(pull)?;
        let reader = uncompressed_reader(store, layer).map_err(|source| CacheImageError::Read {
            reference: self.reference.to_string(),
            source,
        })?;
        let record_error = |source| CacheImageError::Record {
            buildpack: id.to_string(),
            layer: name.to_string(),
            source,
        };
        fs_err::create_dir_all(cache.dir()).map_err(|source| {
            record_error(LayerCacheError::Write {
                path: cache.dir().to_path_buf(),
                source,
            })
        })?;
        // Unpacked next to the records (same file system), then moved in by `store`.
        let staging = tempfile::Builder::new()
            .prefix(".restore-")
            .tempdir_in(cache.dir())
            .map_err(|source| {
                record_error(LayerCacheError::Write {
                    path: cache.dir().to_path_buf(),
                    source,
                })
            })?;
        let content = staging.path().join("content");
        let prefix = format!("layers/{}/{}", id.escaped(), name);
        extract_subtree(reader, &prefix, &content, &layer.diff_id).map_err(|source| {
            CacheImageError::Restore {
                buildpack: id.to_string(),
                layer: name.to_string(),
                source,
            }
        })?;
        let env: Vec<EnvChange> = recorded.env.iter().filter_map(env_change).collect();
        let record = LayerRecord {
            metadata: recorded.data.clone(),
            // The cache layer of a launch layer is the image layer's very blob.
            written: recorded.launch.then(|| WrittenLayer {
                diff_id: layer.diff_id.clone(),
                digest: layer.digest.clone(),
                size: layer.size,
                uncompressed_size: 0,
                media_type: layer.media_type.clone(),
            }),
            content: None,
            extra: serde_json::to_value(env).unwrap_or(Value::Null),
        };
        cache
            .store(name.as_str(), record, Some(&content))
            .map_err(record_error)
    }

    fn layer_with_diff_id(
        &self,
        diff_id: &crate::oci::Digest,
        media_type: &str,
    ) -> Option<&LayerRef> {
        self.layers
            .iter()
            .find(|layer| &layer.diff_id == diff_id && layer.media_type == media_type)
    }
}

/// One layer of the cache image being written.
struct CacheLayer {
    buildpack: usize,
    name: String,
    metadata: LayerMetadata,
    blob: WrittenLayer,
}

/// Write the cache image for `buildpacks` from the local layer cache under `layers_root` and
/// push it to `reference`. `old` is the cache image restored before the build; `origins`
/// says where blobs not in `store` live (the published app image, the old cache image).
#[allow(clippy::too_many_arguments)]
pub fn push(
    reference: &Reference,
    buildpacks: &[CachedBuildpack],
    layers_root: &Path,
    old: Option<&CacheImage>,
    origins: &BlobOrigins,
    compression: Compression,
    client: &RegistryClient,
    store: &BlobStore,
) -> Result<PushReport, CacheImageError> {
    let mut layers = Vec::new();
    for (index, buildpack) in buildpacks.iter().enumerate() {
        let cache = LayerCache::new(layers_root.join(buildpack.id.escaped()));
        for (name, types) in &buildpack.layers {
            let Some(record) = cache.load(name.as_str()) else {
                continue;
            };
            // Cached layers without content (runtimes at the image root) live in the image.
            let Some(token) = &record.content else {
                continue;
            };
            let dir = cache.content_dir(name.as_str(), token);
            let blob =
                cache_layer_blob(&buildpack.id, name, &record, &dir, old, compression, store)?;
            let env: Vec<EnvChange> =
                serde_json::from_value(record.extra.clone()).unwrap_or_default();
            layers.push(CacheLayer {
                buildpack: index,
                name: name.to_string(),
                metadata: LayerMetadata {
                    sha: blob.diff_id.to_string(),
                    data: record.metadata.clone(),
                    build: types.build,
                    launch: types.launch,
                    cache: true,
                    env: env.iter().map(label_env).collect(),
                },
                blob,
            });
        }
    }
    let image = cache_image(buildpacks, &layers, compression, store)?;
    let mut origins = origins.clone();
    if let Some(old) = old {
        old.add_origins(&mut origins);
    }
    let blob_list =
        image
            .blobs(&reference.to_string())
            .map_err(|source| CacheImageError::Read {
                reference: reference.to_string(),
                source,
            })?;
    client
        .push_image_with(
            reference,
            &image.manifest_bytes,
            &image.manifest_media_type,
            &blob_list,
            store,
            &origins,
        )
        .map_err(|source| CacheImageError::Push {
            reference: reference.to_string(),
            source: Box::new(source),
        })
}

/// The blob of one cached directory: the recorded image blob of a launch layer, else the old
/// cache image's blob when the content hashes the same, else a freshly compressed one.
fn cache_layer_blob(
    id: &BuildpackId,
    name: &LayerName,
    record: &LayerRecord,
    dir: &Path,
    old: Option<&CacheImage>,
    compression: Compression,
    store: &BlobStore,
) -> Result<WrittenLayer, CacheImageError> {
    let layer_error = |source| CacheImageError::Layer {
        buildpack: id.to_string(),
        layer: name.to_string(),
        source: Box::new(source),
    };
    if let Some(blob) = &record.written {
        return Ok(blob.clone());
    }
    let entries = dir_layer_entries(dir, &format!("layers/{}/{}", id.escaped(), name))
        .map_err(layer_error)?;
    let (diff_id, _) = tar_digest(&entries).map_err(|source| layer_error(source.into()))?;
    if let Some(layer) =
        old.and_then(|old| old.layer_with_diff_id(&diff_id, compression.media_type()))
    {
        return Ok(WrittenLayer {
            diff_id,
            digest: layer.digest.clone(),
            size: layer.size,
            uncompressed_size: 0,
            media_type: layer.media_type.clone(),
        });
    }
    write_layer(&entries, compression, store).map_err(|source| layer_error(source.into()))
}

/// The cache image itself: scratch, the layers in buildpack then name order (an empty layer
/// when there are none, as the CNB exporter does), the metadata label.
fn cache_image(
    buildpacks: &[CachedBuildpack],
    layers: &[CacheLayer],
    compression: Compression,
    store: &BlobStore,
) -> Result<Image, CacheImageError> {
    let mut builder = ImageBuilder::scratch();
    let mut metadata = CacheMetadata::default();
    for (index, buildpack) in buildpacks.iter().enumerate() {
        let mut entry = BuildpackLayers {
            key: buildpack.id.to_string(),
            version: buildpack.version.clone(),
            layers: Default::default(),
            other: Default::default(),
        };
        for layer in layers.iter().filter(|layer| layer.buildpack == index) {
            entry
                .layers
                .insert(layer.name.clone(), layer.metadata.clone());
        }
        metadata.buildpacks.push(entry);
    }
    let empty = match layers.is_empty() {
        true => Some(
            write_layer(&LayerEntries::new(), compression, store)
                .map_err(CacheImageError::Write)?,
        ),
        false => None,
    };
    let mut pushed: Vec<(&WrittenLayer, String)> = layers
        .iter()
        .map(|layer| {
            (
                &layer.blob,
                format!(
                    "kiln cache: {}/{}",
                    buildpacks[layer.buildpack].id, layer.name
                ),
            )
        })
        .collect();
    if let Some(empty) = &empty {
        pushed.push((empty, "kiln cache: empty".to_owned()));
    }
    for (blob, created_by) in pushed {
        builder.push_layer(
            LayerRef {
                digest: blob.digest.clone(),
                size: blob.size,
                media_type: blob.media_type.clone(),
                diff_id: blob.diff_id.clone(),
            },
            &created_by,
        );
    }
    let label = crate::oci::canonical::to_vec(&metadata)
        .map(|bytes| String::from_utf8(bytes).expect("serde_json writes UTF-8"))
        .map_err(|source| {
            CacheImageError::Write(LayerError::Blob(OciError::Serialize {
                what: "cache metadata",
                source,
            }))
        })?;
    builder.set_label(cnb::CACHE_METADATA, &label);
    builder
        .build(store)
        .map_err(|source| CacheImageError::Write(LayerError::Blob(source)))
}
