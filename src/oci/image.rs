//! The image model: a manifest and a config, parsed and as their exact bytes.

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest, MediaType};

use super::blobs::BlobStore;
use super::digest::Digest;
use super::error::{OciError, Result};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Uncompressed OCI layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// gzip OCI layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// zstd OCI layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Annotation naming the base image of an image (as ko writes it, read by crane).
pub const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";
/// Annotation with the base image's manifest digest.
pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// The OCI media type with the same meaning as a Docker one (same bytes, other name); OCI
/// types pass through unchanged.
pub fn oci_media_type(media_type: &str) -> &str {
    match media_type {
        DOCKER_MANIFEST => OCI_MANIFEST,
        DOCKER_MANIFEST_LIST => OCI_INDEX,
        "application/vnd.docker.container.image.v1+json" => OCI_CONFIG,
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => OCI_LAYER_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => OCI_LAYER_ZSTD,
        "application/vnd.docker.image.rootfs.diff.tar" => OCI_LAYER_TAR,
        other => other,
    }
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEncoding {
    /// A plain tar.
    Tar,
    /// gzip-compressed tar.
    Gzip,
    /// zstd-compressed tar.
    Zstd,
}

impl LayerEncoding {
    /// The encoding a layer media type names, if it is a layer type kiln understands.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        match oci_media_type(media_type) {
            OCI_LAYER_TAR => Some(Self::Tar),
            OCI_LAYER_GZIP => Some(Self::Gzip),
            OCI_LAYER_ZSTD => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// One layer as the manifest and the config list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    /// Digest of the (compressed) blob.
    pub digest: Digest,
    /// Size of the blob.
    pub size: u64,
    /// Media type of the blob.
    pub media_type: String,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
}

/// An image manifest and config, with their exact bytes.
#[derive(Debug, Clone)]
pub struct Image {
    /// Parsed manifest.
    pub manifest: ImageManifest,
    /// The manifest's exact bytes (what its digest is computed over).
    pub manifest_bytes: Vec<u8>,
    /// Digest of `manifest_bytes`.
    pub manifest_digest: Digest,
    /// Media type the manifest was stored under.
    pub manifest_media_type: String,
    /// Parsed config.
    pub config: ImageConfiguration,
    /// The config's exact bytes.
    pub config_bytes: Vec<u8>,
}

impl Image {
    /// Parse and cross-check a manifest and its config.
    pub fn parse(manifest_bytes: Vec<u8>, config_bytes: Vec<u8>, location: &str) -> Result<Self> {
        let manifest: ImageManifest = parse_json(&manifest_bytes, location, "image manifest")?;
        let config: ImageConfiguration = parse_json(&config_bytes, location, "image config")?;
        let manifest_media_type = manifest
            .media_type()
            .as_ref()
            .map(|media_type| media_type.to_string())
            .unwrap_or_else(|| OCI_MANIFEST.to_owned());
        let image = Self {
            manifest_digest: Digest::of_bytes(&manifest_bytes),
            manifest,
            manifest_bytes,
            manifest_media_type,
            config,
            config_bytes,
        };
        image.check(location)?;
        Ok(image)
    }

    /// Load an image whose manifest and config are in `store`, verifying both.
    pub fn load(
        store: &BlobStore,
        manifest_digest: &Digest,
        manifest_size: Option<u64>,
    ) -> Result<Self> {
        let manifest_bytes = store.read_verified(manifest_digest, manifest_size)?;
        let manifest: ImageManifest =
            parse_json(&manifest_bytes, store.location(), "image manifest")?;
        let config_digest = digest_of(manifest.config(), store.location())?;
        let config_bytes = store.read_verified(&config_digest, Some(manifest.config().size()))?;
        Self::parse(manifest_bytes, config_bytes, store.location())
    }

    fn check(&self, location: &str) -> Result<()> {
        let invalid = |problem: String| OciError::InvalidImage {
            location: location.to_owned(),
            problem,
        };
        let config_digest = digest_of(self.manifest.config(), location)?;
        if config_digest != Digest::of_bytes(&self.config_bytes) {
            return Err(invalid(format!(
                "its config does not match digest {config_digest}"
            )));
        }
        let diff_ids = self.config.rootfs().diff_ids();
        if diff_ids.len() != self.manifest.layers().len() {
            return Err(invalid(format!(
                "the manifest lists {} layers but the config lists {} diff_ids",
                self.manifest.layers().len(),
                diff_ids.len()
            )));
        }
        for layer in self.manifest.layers() {
            let media_type = layer.media_type().to_string();
            if LayerEncoding::from_media_type(&media_type).is_none() {
                return Err(OciError::UnsupportedMediaType {
                    location: location.to_owned(),
                    media_type,
                });
            }
        }
        self.layers(location).map(|_| ())
    }

    /// The config blob's digest.
    pub fn config_digest(&self) -> Digest {
        Digest::of_bytes(&self.config_bytes)
    }

    /// The layers, bottom first, with their diff_ids.
    pub fn layers(&self, location: &str) -> Result<Vec<LayerRef>> {
        let diff_ids = self.config.rootfs().diff_ids();
        self.manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(descriptor, diff_id)| {
                Ok(LayerRef {
                    digest: digest_of(descriptor, location)?,
                    size: descriptor.size(),
                    media_type: descriptor.media_type().to_string(),
                    diff_id: diff_id.parse().map_err(|source| OciError::BadDigest {
                        location: location.to_owned(),
                        source,
                    })?,
                })
            })
            .collect()
    }

    /// The diff_ids of the layers, bottom first.
    pub fn diff_ids(&self) -> Vec<String> {
        self.config.rootfs().diff_ids().clone()
    }

    /// A descriptor pointing at this image's manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            MediaType::from(self.manifest_media_type.as_str()),
            self.manifest_bytes.len() as u64,
            self.manifest_digest.to_oci(),
        )
    }

    /// Every blob the manifest references (config first, then layers) with its size.
    pub fn blobs(&self, location: &str) -> Result<Vec<(Digest, u64)>> {
        let mut blobs = vec![(self.config_digest(), self.config_bytes.len() as u64)];
        for layer in self.layers(location)? {
            blobs.push((layer.digest, layer.size));
        }
        Ok(blobs)
    }

    /// The config labels, sorted.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config
            .config()
            .as_ref()
            .and_then(|config| config.labels().clone())
            .map(|labels| labels.into_iter().collect())
            .unwrap_or_default()
    }

    /// The manifest annotations, sorted.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.manifest
            .annotations()
            .clone()
            .map(|annotations| annotations.into_iter().collect())
            .unwrap_or_default()
    }

    /// The config's environment as `(name, value)` pairs, in order.
    pub fn env(&self) -> Vec<(String, String)> {
        self.config
            .config()
            .as_ref()
            .and_then(|config| config.env().clone())
            .unwrap_or_default()
            .iter()
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => (pair.clone(), String::new()),
            })
            .collect()
    }

    /// `os/architecture` of the config, e.g. `linux/amd64`.
    pub fn platform(&self) -> String {
        format!("{}/{}", self.config.os(), self.config.architecture())
    }

    /// Store the manifest and config bytes into `store`.
    pub fn store_metadata(&self, store: &BlobStore) -> Result<()> {
        store.put_bytes(&self.config_bytes)?;
        store.put_bytes(&self.manifest_bytes)?;
        Ok(())
    }
}

/// The sha256 digest of a descriptor.
pub fn digest_of(descriptor: &Descriptor, location: &str) -> Result<Digest> {
    Digest::from_oci(descriptor.digest()).map_err(|source| OciError::BadDigest {
        location: location.to_owned(),
        source,
    })
}

/// Parse JSON, naming what and where on failure.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    location: &str,
    what: &'static str,
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| OciError::ParseJson {
        location: location.to_owned(),
        what,
        source,
    })
}
