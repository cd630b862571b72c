//! Exporters: one trait, one sink per kind of output (local store, OCI layout, archives,
//! registry). Every sink copies verified blobs from the shared blob store.

use std::path::PathBuf;

use crate::cache::Cache;
use crate::diagnostic::{Diagnose, ErrorClass};
use crate::images::{oci_error_class, oci_error_hint};
use crate::oci::archive::{write_docker_archive, write_oci_archive};
use crate::oci::{BlobStore, Image, ImageLocation, Layout, OciError};
use crate::registry::{
    BlobOrigins, PushReport, Reference, RegistryClient, RegistryError, RegistryOptions,
    TransportOptions,
};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write the image to {destination}")]
    Write {
        destination: String,
        #[source]
        source: OciError,
    },
    #[error("cannot push the image to `{reference}`")]
    Publish {
        reference: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("cannot prepare scratch space")]
    Scratch(#[source] crate::cache::CacheError),
    #[error("cannot fetch blob {digest} (reused from `{origin}`) to write {destination}")]
    FetchBlob {
        destination: String,
        origin: String,
        digest: crate::oci::Digest,
        #[source]
        source: Box<RegistryError>,
    },
}

impl Diagnose for ExportError {
    fn class(&self) -> ErrorClass {
        match self {
            ExportError::Write { source, .. } => oci_error_class(source),
            ExportError::Publish { source, .. } | ExportError::FetchBlob { source, .. } => {
                source.class()
            }
            ExportError::Scratch(_) => ErrorClass::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ExportError::Write { source, .. } => oci_error_hint(source),
            ExportError::Publish { source, .. } | ExportError::FetchBlob { source, .. } => {
                source.hint()
            }
            ExportError::Scratch(_) => None,
        }
    }
}

/// Where an image went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exported {
    /// The destination as the user named it.
    pub destination: String,
    /// The manifest digest there.
    pub digest: String,
    /// For a registry: the reference pinned to the digest (`reg/repo@sha256:…`), what a
    /// deployment should name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<String>,
    /// For a registry: how the blobs got there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushStats>,
}

impl Exported {
    /// A local destination.
    fn local(destination: String, image: &Image) -> Self {
        Self {
            destination,
            digest: image.manifest_digest.to_string(),
            pinned: None,
            push: None,
        }
    }
}

/// How the blobs of a pushed image reached the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PushStats {
    /// Blobs whose bytes were sent.
    pub uploaded: usize,
    /// Blobs linked from another repository of the same registry.
    pub mounted: usize,
    /// Blobs the repository already had.
    pub skipped: usize,
    /// Bytes of blob content sent.
    pub bytes_uploaded: u64,
}

impl From<&PushReport> for PushStats {
    fn from(report: &PushReport) -> Self {
        Self {
            uploaded: report.uploaded.len(),
            mounted: report.mounted.len(),
            skipped: report.skipped.len(),
            bytes_uploaded: report.bytes_uploaded,
        }
    }
}

/// A place images can be written to.
pub trait Exporter {
    /// Write `image` (its blobs are in `blobs`).
    fn export(&self, image: &Image, blobs: &BlobStore) -> Result<Exported, ExportError>;
}

/// The exporter for `location`; `default_tag` names the image when the location does not;
/// `registry` says how to reach registries (`--registry-ca`, `--insecure-registry`).
pub fn exporter_for(
    location: &ImageLocation,
    cache: &Cache,
    default_tag: &str,
    registry: &TransportOptions,
) -> Box<dyn Exporter> {
    exporter_with_origins(location, cache, default_tag, registry, &BlobOrigins::new())
}

/// [`exporter_for`] an image some of whose blobs may be only on registries (`origins`): a
/// registry sink mounts them or finds them present; other sinks download them first.
pub fn exporter_with_origins(
    location: &ImageLocation,
    cache: &Cache,
    default_tag: &str,
    registry: &TransportOptions,
    origins: &BlobOrigins,
) -> Box<dyn Exporter> {
    let remote = RemoteBlobs {
        origins: origins.clone(),
        transport: registry.clone(),
    };
    match location {
        ImageLocation::Store(name) => Box::new(LayoutSink {
            dir: cache.store_dir(),
            tag: name.clone(),
            destination: name.clone(),
            remote,
        }),
        ImageLocation::OciLayout { dir, tag } => Box::new(LayoutSink {
            dir: dir.clone(),
            tag: tag.clone().unwrap_or_else(|| "latest".to_owned()),
            destination: location.to_string(),
            remote,
        }),
        ImageLocation::OciArchive { path, tag } => Box::new(OciArchiveSink {
            path: path.clone(),
            tag: tag.clone().unwrap_or_else(|| "latest".to_owned()),
            remote,
        }),
        ImageLocation::DockerArchive { path, name } => Box::new(DockerArchiveSink {
            path: path.clone(),
            repo_tag: name.clone().unwrap_or_else(|| docker_repo_tag(default_tag)),
            cache: cache.clone(),
            remote,
        }),
        ImageLocation::Registry(reference) => Box::new(RegistrySink {
            reference: reference.clone(),
            remote,
        }),
    }
}

/// `myapp` → `myapp:latest`, the form `docker load` tags with.
fn docker_repo_tag(name: &str) -> String {
    crate::oci::reference::normalize_store_name(name)
}

/// Blobs that may be only on registries, and how to reach them.
struct RemoteBlobs {
    origins: BlobOrigins,
    transport: TransportOptions,
}

impl RemoteBlobs {
    /// Download the blobs of `image` that are not in `blobs`, for sinks that write every byte.
    fn fetch_missing(
        &self,
        image: &Image,
        blobs: &BlobStore,
        destination: &str,
    ) -> Result<(), ExportError> {
        let missing: Vec<(crate::oci::Digest, u64)> = image
            .blobs(destination)
            .map_err(|source| ExportError::Write {
                destination: destination.to_owned(),
                source,
            })?
            .into_iter()
            .filter(|(digest, _)| !blobs.contains(digest))
            .collect();
        // A blob without a known origin is left for the sink to report as missing.
        let fetchable: Vec<(crate::oci::Digest, u64, &Reference)> = missing
            .into_iter()
            .filter_map(|(digest, size)| {
                let origin = self.origins.get(&digest)?;
                Some((digest, size, origin))
            })
            .collect();
        let Some((first, _, first_origin)) = fetchable.first() else {
            return Ok(());
        };
        let fail =
            |digest: &crate::oci::Digest, origin: &Reference, source| ExportError::FetchBlob {
                destination: destination.to_owned(),
                origin: origin.to_string(),
                digest: digest.clone(),
                source,
            };
        let client = RegistryOptions::from_env_with(&self.transport)
            .and_then(RegistryClient::new)
            .map_err(|source| fail(first, first_origin, Box::new(source)))?;
        for (digest, size, origin) in &fetchable {
            client
                .pull_blob(origin, digest, Some(*size), blobs)
                .map_err(|source| fail(digest, origin, Box::new(source)))?;
        }
        Ok(())
    }
}

struct LayoutSink {
    dir: PathBuf,
    tag: String,
    destination: String,
    remote: RemoteBlobs,
}

impl Exporter for LayoutSink {
    fn export(&self, image: &Image, blobs: &BlobStore) -> Result<Exported, ExportError> {
        let write = |source| ExportError::Write {
            destination: self.destination.clone(),
            source,
        };
        self.remote.fetch_missing(image, blobs, &self.destination)?;
        let layout = Layout::open_or_create(&self.dir).map_err(write)?;
        layout.write_image(image, blobs, &self.tag).map_err(write)?;
        Ok(Exported::local(self.destination.clone(), image))
    }
}

struct OciArchiveSink {
    path: PathBuf,
    tag: String,
    remote: RemoteBlobs,
}

impl Exporter for OciArchiveSink {
    fn export(&self, image: &Image, blobs: &BlobStore) -> Result<Exported, ExportError> {
        let destination = format!("oci-archive:{}", self.path.display());
        self.remote.fetch_missing(image, blobs, &destination)?;
        write_oci_archive(image, blobs, &self.path, &self.tag).map_err(|source| {
            ExportError::Write {
                destination: destination.clone(),
                source,
            }
        })?;
        Ok(Exported::local(destination, image))
    }
}

struct DockerArchiveSink {
    path: PathBuf,
    repo_tag: String,
    cache: Cache,
    remote: RemoteBlobs,
}

impl Exporter for DockerArchiveSink {
    fn export(&self, image: &Image, blobs: &BlobStore) -> Result<Exported, ExportError> {
        let destination = format!("docker-archive:{}", self.path.display());
        self.remote.fetch_missing(image, blobs, &destination)?;
        let scratch = self
            .cache
            .temp_dir("docker-archive")
            .map_err(ExportError::Scratch)?;
        write_docker_archive(image, blobs, &self.path, &self.repo_tag, scratch.path()).map_err(
            |source| ExportError::Write {
                destination: destination.clone(),
                source,
            },
        )?;
        Ok(Exported::local(destination, image))
    }
}

/// Pushes to a registry: blobs the repository has are skipped, blobs of other repositories on
/// the same registry are mounted, the manifest goes last.
struct RegistrySink {
    reference: String,
    remote: RemoteBlobs,
}

impl Exporter for RegistrySink {
    fn export(&self, image: &Image, blobs: &BlobStore) -> Result<Exported, ExportError> {
        let publish = |source| ExportError::Publish {
            reference: self.reference.clone(),
            source: Box::new(source),
        };
        let reference = Reference::parse(&self.reference).map_err(publish)?;
        let destination = format!("docker://{reference}");
        let blob_list = image
            .blobs(&destination)
            .map_err(|source| ExportError::Write {
                destination: destination.clone(),
                source,
            })?;
        let client = RegistryOptions::from_env_with(&self.remote.transport)
            .and_then(RegistryClient::new)
            .map_err(publish)?;
        let report = client
            .push_image_with(
                &reference,
                &image.manifest_bytes,
                &image.manifest_media_type,
                &blob_list,
                blobs,
                &self.remote.origins,
            )
            .map_err(publish)?;
        Ok(Exported {
            destination,
            digest: report.manifest_digest.to_string(),
            pinned: Some(
                reference
                    .with_digest(report.manifest_digest.clone())
                    .to_string(),
            ),
            push: Some(PushStats::from(&report)),
        })
    }
}
