//! A validator for images kiln writes (and reads): every blob matches its digest and size,
//! every layer's uncompressed tar matches its diff_id, manifest, config and index agree.

use super::blobs::BlobStore;
use super::digest::Digest;
use super::error::{OciError, Result};
use super::image::Image;
use super::layer_reader::uncompressed_reader;
use super::layout::{Layout, resolve_manifest};

/// Validate one image whose blobs are in `store`.
pub fn validate_image(image: &Image, store: &BlobStore) -> Result<()> {
    let location = store.location().to_owned();
    // Re-reading through `Image::load` re-checks manifest ↔ config ↔ layer count.
    let reloaded = Image::load(
        store,
        &image.manifest_digest,
        Some(image.manifest_bytes.len() as u64),
    )?;
    if reloaded.config_bytes != image.config_bytes {
        return Err(OciError::InvalidImage {
            location,
            problem: "the stored config differs from the image's".to_owned(),
        });
    }
    for layer in image.layers(&location)? {
        let reader = uncompressed_reader(store, &layer)?;
        let (diff_id, _) = Digest::of_reader(reader).map_err(|source| match source.kind() {
            std::io::ErrorKind::InvalidData => OciError::DigestMismatch {
                location: location.clone(),
                digest: layer.digest.clone(),
                actual: Digest::of_bytes(b"(unreadable)"),
            },
            _ => OciError::ReadBlob {
                location: location.clone(),
                digest: layer.digest.clone(),
                source,
            },
        })?;
        // The verifying reader underneath has also checked the compressed digest and size.
        store.verify(&layer.digest, Some(layer.size))?;
        if diff_id != layer.diff_id {
            return Err(OciError::DigestMismatch {
                location: format!("{location} (uncompressed layer {})", layer.digest),
                digest: layer.diff_id.clone(),
                actual: diff_id,
            });
        }
    }
    Ok(())
}

/// Validate every image an OCI layout's index points at.
pub fn validate_layout(layout: &Layout) -> Result<usize> {
    let location = layout.dir().display().to_string();
    let index = layout.read_index()?;
    for descriptor in index.manifests() {
        let image = resolve_manifest(layout.blobs(), descriptor, &location)?;
        validate_image(&image, layout.blobs())?;
    }
    Ok(index.manifests().len())
}
