//! Reading layer blobs back as plain tar streams.

use std::io::{BufReader, Read};

use super::blobs::BlobStore;
use super::error::{OciError, Result};
use super::image::{LayerEncoding, LayerRef};

/// A reader of a layer's uncompressed tar, checking the blob's digest at end of stream.
pub fn uncompressed_reader(store: &BlobStore, layer: &LayerRef) -> Result<Box<dyn Read + Send>> {
    let encoding = LayerEncoding::from_media_type(&layer.media_type).ok_or_else(|| {
        OciError::UnsupportedMediaType {
            location: store.location().to_owned(),
            media_type: layer.media_type.clone(),
        }
    })?;
    let blob = BufReader::with_capacity(
        256 * 1024,
        store.open_verified(&layer.digest, Some(layer.size))?,
    );
    Ok(match encoding {
        LayerEncoding::Tar => Box::new(blob),
        // Multi-member gzip (as pigz and others may write) must be read to the end.
        LayerEncoding::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(blob)),
        LayerEncoding::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(blob).map_err(
            |source| OciError::ReadBlob {
                location: store.location().to_owned(),
                digest: layer.digest.clone(),
                source,
            },
        )?),
    })
}
