//! Opening images from any location (local store, layouts, archives, registries) into the
//! shared blob store, verifying every blob on the way in.

use crate::cache::Cache;
use crate::diagnostic::{Diagnose, ErrorClass};
use crate::oci::archive::{import_docker_archive, import_oci_archive};
use crate::oci::{Image, ImageLocation, Layout, OciError};
use crate::registry::{
    BlobOrigins, Reference, RegistryClient, RegistryError, RegistryOptions, TransportOptions,
};

/// Why an image could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenImageError {
    #[error("cannot read image `{location}`")]
    Read {
        location: String,
        #[source]
        source: OciError,
    },
    #[error("no image named `{name}` in the local image store")]
    NotInStore {
        name: String,
        available: Vec<String>,
    },
    #[error("cannot pull `{reference}`")]
    Pull {
        reference: String,
        #[source]
        source: RegistryError,
    },
}

impl OpenImageError {
    /// Whether the registry said there is no such image.
    pub fn is_not_found(&self) -> bool {
        matches!(self, OpenImageError::Pull { source, .. } if source.is_not_found())
    }
}

impl Diagnose for OpenImageError {
    fn class(&self) -> ErrorClass {
        match self {
            OpenImageError::Read { source, .. } => oci_error_class(source),
            OpenImageError::NotInStore { .. } => ErrorClass::User,
            OpenImageError::Pull { source, .. } => source.class(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            OpenImageError::NotInStore { name, .. } if looks_published(name) => Some(format!(
                "`kiln build --publish` writes the registry, not the local store: use docker://{name}"
            )),
            OpenImageError::NotInStore { available, .. } if available.is_empty() => {
                Some("the store is empty: build one with `kiln build NAME`, or name a location such as oci:DIR".to_owned())
            }
            OpenImageError::NotInStore { available, .. } => Some(format!("the store has: {}", available.join(", "))),
            OpenImageError::Read { source, .. } => oci_error_hint(source),
            OpenImageError::Pull { source, .. } => source.hint(),
        }
    }
}

impl Diagnose for OciError {
    fn class(&self) -> ErrorClass {
        oci_error_class(self)
    }

    fn hint(&self) -> Option<String> {
        oci_error_hint(self)
    }
}

/// Whether a store name starts with a registry host (`reg.example/…`, `127.0.0.1:5000/…`).
fn looks_published(name: &str) -> bool {
    name.split_once('/').is_some_and(|(first, _)| {
        first.contains('.') || first.contains(':') || first == "localhost"
    })
}

/// The class of an image-side error: bad or missing input is the user's; failing to write
/// or serialize is kiln's.
pub fn oci_error_class(error: &OciError) -> ErrorClass {
    match error {
        OciError::Serialize { .. } | OciError::WriteBlob { .. } | OciError::Lock { .. } => {
            ErrorClass::Internal
        }
        _ => ErrorClass::User,
    }
}

/// A hint for an image-side error, where one helps.
pub fn oci_error_hint(error: &OciError) -> Option<String> {
    match error {
        OciError::DigestMismatch { .. } | OciError::SizeMismatch { .. } => {
            Some("the image is corrupt: copy it again from its source".to_owned())
        }
        OciError::NotALayout { .. } => Some(
            "oci:DIR expects an OCI image layout (as written by skopeo, umoci or kiln)".to_owned(),
        ),
        OciError::TagNotFound { available, .. } if !available.is_empty() => {
            Some(format!("available tags: {}", available.join(", ")))
        }
        OciError::AmbiguousImage { .. } => Some("name one with oci:DIR:TAG".to_owned()),
        _ => None,
    }
}

/// Open the image at `location`; its blobs end up (verified) in the cache's blob store.
/// `registry` says how to reach registries (`--registry-ca`, `--insecure-registry`).
pub fn open_image(
    location: &ImageLocation,
    cache: &Cache,
    registry: &TransportOptions,
) -> Result<Image, OpenImageError> {
    let read = |source| OpenImageError::Read {
        location: location.to_string(),
        source,
    };
    let blobs = cache.blobs();
    match location {
        ImageLocation::Store(name) => {
            let store = Layout::open_or_create(&cache.store_dir()).map_err(read)?;
            match store.read_image(Some(name)) {
                Ok(image) => Ok(image),
                Err(OciError::TagNotFound { available, .. }) => Err(OpenImageError::NotInStore {
                    name: name.clone(),
                    available,
                }),
                Err(other) => Err(read(other)),
            }
        }
        ImageLocation::OciLayout { dir, tag } => {
            let layout = Layout::open(dir).map_err(read)?;
            let image = layout.read_image(tag.as_deref()).map_err(read)?;
            for (digest, size) in image.blobs(&location.to_string()).map_err(read)? {
                blobs
                    .copy_from(layout.blobs(), &digest, Some(size))
                    .map_err(read)?;
            }
            image.store_metadata(&blobs).map_err(read)?;
            Ok(image)
        }
        ImageLocation::OciArchive { path, tag } => {
            import_oci_archive(path, tag.as_deref(), &blobs).map_err(read)
        }
        ImageLocation::DockerArchive { path, .. } => {
            import_docker_archive(path, &blobs).map_err(read)
        }
        ImageLocation::Registry(text) => {
            let pull = |source| OpenImageError::Pull {
                reference: text.clone(),
                source,
            };
            let reference = Reference::parse(text).map_err(pull)?;
            let client = RegistryOptions::from_env_with(registry)
                .and_then(RegistryClient::new)
                .map_err(pull)?;
            // Blobs already in the shared store are not transferred again.
            let pulled = client.pull_image(&reference, &blobs).map_err(pull)?;
            let image = Image::load(
                &blobs,
                &pulled.manifest_digest,
                Some(pulled.manifest_bytes.len() as u64),
            )
            .map_err(read)?;
            image.store_metadata(&blobs).map_err(read)?;
            Ok(image)
        }
    }
}

/// Open only the manifest and config of the image at `location`: from a registry no layer is
/// downloaded, and `origins` learns which repository holds its layer blobs (a push then
/// mounts them or finds them present). Other locations are read as [`open_image`] does.
pub fn open_image_metadata(
    location: &ImageLocation,
    cache: &Cache,
    registry: &TransportOptions,
    origins: &mut BlobOrigins,
) -> Result<Image, OpenImageError> {
    let ImageLocation::Registry(text) = location else {
        return open_image(location, cache, registry);
    };
    let pull = |source| OpenImageError::Pull {
        reference: text.clone(),
        source,
    };
    let reference = Reference::parse(text).map_err(pull)?;
    let client = RegistryOptions::from_env_with(registry)
        .and_then(RegistryClient::new)
        .map_err(pull)?;
    let blobs = cache.blobs();
    let pulled = client
        .pull_manifest_and_config(&reference, &blobs)
        .map_err(pull)?;
    let image = Image::load(
        &blobs,
        &pulled.manifest_digest,
        Some(pulled.manifest_bytes.len() as u64),
    )
    .map_err(|source| OpenImageError::Read {
        location: location.to_string(),
        source,
    })?;
    origins.add_all(
        pulled.layers.iter().map(|layer| &layer.digest),
        &pulled.reference,
    );
    Ok(image)
}
