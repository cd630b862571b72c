//! Exporters: one trait, one sink per kind of output (local store, OCI layout, archives,
//! registry). Every sink copies verified blobs from the shared blob store.

use std::path::PathBuf;

use crate::cache::Cache;
use crate::diagnostic::{Diagnose, ErrorClass};
use crate::images::{oci_error_class, oci_error_hint};
use crate::oci::archive::{write_docker_archive, write_oci_archive};
use crate::oci::{BlobStore, Image, ImageLocation, Layout, OciError};
use crate::registry::{
    Reference, RegistryClient, RegistryError, RegistryOptions, TransportOptions,
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
        source: RegistryError,
    },
    #[error("cannot prepare scratch space")]
    Scratch(#[source] crate::cache::CacheError),
}

impl Diagnose for ExportError {
    fn class(&self) -> ErrorClass {
        match self {
            ExportError::Write { source, .. } => oci_error_class(source),
            ExportError::Publish { source, .. } => source.class(),
            ExportError::Scratch(_) => ErrorClass::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ExportError::Write { source, .. } => oci_error_hint(source),
            ExportError::Publish { source, .. } => source.hint(),
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
    match location {
        ImageLocation::Store(name) => Box::new(LayoutSink {
            dir: cache.store_dir(),
            tag: name.clone(),
            destination: name.clone(),
        }),
        ImageLocation::OciLayout { dir, tag } => Box::new(LayoutSink {
            dir: dir.clone(),
            tag: tag.clone().unwrap_or_else(|| "latest".to_owned()),
            destination: location.to_string(),
        }),
        ImageLocation::OciArchive { path, tag } => Box::new(OciArchiveSink {
            path: path.clone(),
            tag: tag.clone().unwrap_or_else(|| "latest".to_owned()),
        }),
        ImageLocation::DockerArchive { path, name } => Box::new(DockerArchiveSink {
            path: path.clone(),
            repo_tag: name.clone().unwrap_or_else(|| docker_repo_tag(default_tag)),
            cache: cache.clone(),
        }),
        ImageLocation::Registry(reference) => Box::new(RegistrySink {
            reference: reference.clone(),
            transport: registry.clone(),
        }),
    }
}

/// `myapp` → `myapp:latest`, the form `docker load` tags with.
fn docker_repo_tag(name: &str) -> String {
    crate::oci::reference::normalize_store_name(name)
}

struct LayoutSink {
    dir: PathBuf,
    tag: String,
    destination: String,
}

impl Exporter for LayoutSink {
    fn export(&self, image: &Image, blobs: &BlobStore) -> Result<Exported, ExportError> {
        let write = |source| ExportError::Write {
            destination: self.destination.clone(),
            source,
        };
        let layout = Layout::open_or_create(&self.dir).map_err(write)?;
        layout.write_image(image, blobs, &self.tag).map_err(write)?;
        Ok(Exported {
            destination: self.destination.clone(),
            digest: image.manifest_digest.to_string(),
        })
    }
}

struct OciArchiveSink {
    path: PathBuf,
    tag: String,
}

impl Exporter for OciArchiveSink {
    fn export(&self, image: &Image, blobs: &BlobStore) -> Result<Exported, ExportError> {
        write_oci_archive(image, blobs, &self.path, &self.tag).map_err(|source| {
            ExportError::Write {
                destination: format!("oci-archive:{}", self.path.display()),
                source,
            }
        })?;
        Ok(Exported {
            destination: format!("oci-archive:{}", self.path.display()),
            digest: image.manifest_digest.to_string(),
        })
    }
}

struct DockerArchiveSink {
    path: PathBuf,
    repo_tag: String,
    cache: Cache,
}

impl Exporter for DockerArchiveSink {
    fn export(&self, image: &Image, blobs: &BlobStore) -> Result<Exported, ExportError> {
        let scratch = self
            .cache
            .temp_dir("docker-archive")
            .map_err(ExportError::Scratch)?;
        write_docker_archive(image, blobs, &self.path, &self.repo_tag, scratch.path()).map_err(
            |source| ExportError::Write {
                destination: format!("docker-archive:{}", self.path.display()),
                source,
            },
        )?;
        Ok(Exported {
            destination: format!("docker-archive:{}", self.path.display()),
            digest: image.manifest_digest.to_string(),
        })
    }
}

/// Pushes to a registry: blobs the repository has are skipped, the manifest goes last.
struct RegistrySink {
    reference: String,
    transport: TransportOptions,
}

impl Exporter for RegistrySink {
    fn export(&self, image: &Image, blobs: &BlobStore) -> Result<Exported, ExportError> {
        let publish = |source| ExportError::Publish {
            reference: self.reference.clone(),
            source,
        };
        let reference = Reference::parse(&self.reference).map_err(publish)?;
        let destination = format!("docker://{reference}");
        let blob_list = image
            .blobs(&destination)
            .map_err(|source| ExportError::Write {
                destination: destination.clone(),
                source,
            })?;
        let client = RegistryOptions::from_env_with(&self.transport)
            .and_then(RegistryClient::new)
            .map_err(publish)?;
        let report = client
            .push_image(
                &reference,
                &image.manifest_bytes,
                &image.manifest_media_type,
                &blob_list,
                blobs,
                None,
            )
            .map_err(publish)?;
        Ok(Exported {
            destination,
            digest: report.manifest_digest.to_string(),
        })
    }
}
