//! The few manifest facts the client needs: media types, which blobs an image references, and
//! which index entry is linux/amd64. Deliberately minimal: the image model lives in `oci/`.

use serde::Deserialize;

use crate::oci::Digest;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The `Accept` header for manifest GETs: every kind kiln reads.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// Registries must accept manifests up to 4 MiB; anything larger is not a manifest.
pub const MANIFEST_SIZE_LIMIT: u64 = 4 * 1024 * 1024;

/// What kind of document a manifest media type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest (OCI or Docker v2s2).
    Image,
    /// An index of platform manifests (OCI index or Docker manifest list).
    Index,
}

impl ManifestKind {
    /// Classify a media type; `None` for kinds kiln does not read (e.g. Docker schema 1).
    pub fn of(media_type: &str) -> Option<Self> {
        match media_type {
            OCI_MANIFEST | DOCKER_MANIFEST => Some(ManifestKind::Image),
            OCI_INDEX | DOCKER_MANIFEST_LIST => Some(ManifestKind::Index),
            _ => None,
        }
    }
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobDescriptor {
    /// Media type of the referenced content.
    #[serde(default)]
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Platform, for index entries.
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// An index entry's platform.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    /// e.g. `linux`.
    #[serde(default)]
    pub os: String,
    /// e.g. `amd64`.
    #[serde(default)]
    pub architecture: String,
    /// e.g. `v8` for arm64.
    #[serde(default)]
    pub variant: Option<String>,
}

/// The parts of an image manifest the client uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifestParts {
    /// Media type inside the document, when present.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: BlobDescriptor,
    /// Layer blobs in order.
    #[serde(default)]
    pub layers: Vec<BlobDescriptor>,
}

/// The parts of an index the client uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexParts {
    /// Media type inside the document, when present.
    #[serde(default)]
    pub media_type: Option<String>,
    /// Entries.
    #[serde(default)]
    pub manifests: Vec<BlobDescriptor>,
}

impl IndexParts {
    /// The linux/amd64 image entry (attestation manifests carry `unknown/unknown` and are
    /// skipped by the platform match).
    pub fn linux_amd64(&self) -> Option<&BlobDescriptor> {
        self.manifests.iter().find(|entry| {
            entry
                .platform
                .as_ref()
                .is_some_and(|platform| platform.os == "linux" && platform.architecture == "amd64")
                && ManifestKind::of(&entry.media_type) != Some(ManifestKind::Index)
        })
    }
}

/// Media type of a manifest document: the response's `Content-Type` when it names a known kind,
/// else the document's own `mediaType` (some registries answer `application/json`).
pub fn effective_media_type(content_type: Option<&str>, bytes: &[u8]) -> String {
    let header = content_type
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .filter(|value| ManifestKind::of(value).is_some());
    if let Some(header) = header {
        return header;
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(Probe {
            media_type: Some(media_type),
            ..
        }) => media_type,
        // OCI allows omitting mediaType; an index is recognizable by its `manifests`.
        Ok(Probe {
            manifests: Some(_), ..
        }) => OCI_INDEX.to_owned(),
        Ok(_) => OCI_MANIFEST.to_owned(),
        Err(_) => content_type.unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_linux_amd64_from_an_index() {
        let digest = |byte: &[u8]| Digest::of_bytes(byte).to_string();
        let index: IndexParts = serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": digest(b"arm"), "size": 1, "platform": {"os": "linux", "architecture": "arm64"}},
                {"mediaType": OCI_MANIFEST, "digest": digest(b"amd"), "size": 2, "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": OCI_MANIFEST, "digest": digest(b"att"), "size": 3, "platform": {"os": "unknown", "architecture": "unknown"}}
            ]
        }))
        .unwrap();
        assert_eq!(index.linux_amd64().unwrap().size, 2);
    }

    #[test]
    fn media_type_from_header_or_document() {
        assert_eq!(
            effective_media_type(Some(DOCKER_MANIFEST), b"{}"),
            DOCKER_MANIFEST
        );
        assert_eq!(
            effective_media_type(
                Some("application/json"),
                br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#
            ),
            OCI_INDEX
        );
        assert_eq!(
            effective_media_type(None, br#"{"manifests":[]}"#),
            OCI_INDEX
        );
        assert_eq!(
            effective_media_type(None, br#"{"config":{}}"#),
            OCI_MANIFEST
        );
    }
}
