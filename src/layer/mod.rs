//! Layers: entries, the deterministic tar writer, compression, and writing blobs.

mod cache;
mod compress;
mod entry;
mod error;
mod extract;
mod from_dir;
mod tar_writer;

use std::io::BufWriter;

pub use cache::{LayerCache, LayerCacheError, LayerRecord};
pub use compress::{Compression, Encoder};
pub use entry::{
    Entry, EntryKind, EntryPathError, FileSource, LayerEntries, Owner, normalize_layer_path,
};
pub use error::LayerError;
pub use extract::{ExtractError, extract_subtree};
pub use from_dir::{DirOptions, entries_from_dir, normalized_mode};
pub use tar_writer::{LAYER_MTIME, write_tar};

use crate::oci::{BlobStore, Digest, HashingWriter};

/// A layer written into a blob store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WrittenLayer {
    /// sha256 of the uncompressed tar (what image configs list in `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// sha256 of the compressed blob.
    pub digest: Digest,
    /// Size of the compressed blob.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// The blob's media type.
    pub media_type: String,
}

/// Write `entries` as one layer blob in a single streaming pass: tar → diff_id hash →
/// compressor → digest hash → temp file, renamed into `store` when complete.
pub fn write_layer(
    entries: &LayerEntries,
    compression: Compression,
    store: &BlobStore,
) -> Result<WrittenLayer, LayerError> {
    let write_error = |source| LayerError::WriteTar { source };
    let blob = store.writer()?;
    let encoder = compression.encoder(blob).map_err(write_error)?;
    let tar_sink = HashingWriter::new(BufWriter::with_capacity(256 * 1024, encoder));
    let tar_sink = write_tar(entries, tar_sink)?;
    let (buffered, diff_id, uncompressed_size) = tar_sink.finish();
    let encoder = buffered
        .into_inner()
        .map_err(|error| write_error(error.into_error()))?;
    let blob = encoder.finish().map_err(write_error)?;
    let (digest, size) = blob.commit(None)?;
    Ok(WrittenLayer {
        diff_id,
        digest,
        size,
        uncompressed_size,
        media_type: compression.media_type().to_owned(),
    })
}

/// The diff_id and size of the tar `entries` would make, without compressing or storing
/// anything: hashing is an order of magnitude faster than compressing, so a layer whose
/// diff_id matches a stored blob is reused without recompression.
pub fn tar_digest(entries: &LayerEntries) -> Result<(Digest, u64), LayerError> {
    let sink = HashingWriter::new(std::io::sink());
    let sink = write_tar(entries, BufWriter::with_capacity(256 * 1024, sink))?;
    let sink = sink.into_inner().map_err(|error| LayerError::WriteTar {
        source: error.into_error(),
    })?;
    let (_, digest, size) = sink.finish();
    Ok((digest, size))
}

/// Write several independent layers, compressing them in parallel. Results keep input order.
///
/// One plain thread per layer, not rayon tasks: each gzip writer joins a helper thread that
/// deflates on the rayon pool, so a rayon worker blocked in that join could leave the pool
/// without a free thread and deadlock (two large layers on two cores did).
pub fn write_layers(
    layers: &[&LayerEntries],
    compression: Compression,
    store: &BlobStore,
) -> Result<Vec<WrittenLayer>, LayerError> {
    std::thread::scope(|scope| {
        let writers: Vec<_> = layers
            .iter()
            .map(|entries| scope.spawn(move || write_layer(entries, compression, store)))
            .collect();
        writers
            .into_iter()
            .map(|writer| {
                writer
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn several_large_layers_are_written_in_parallel_without_deadlock() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::for_layout(dir.path());
        // Enough incompressible data per layer for several gzip batches.
        let layers: Vec<LayerEntries> = (0..4u64)
            .map(|seed| {
                let mut state = seed + 1;
                let noise: Vec<u8> = (0..12 << 20)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                let mut entries = LayerEntries::new();
                entries
                    .add_bytes("noise", noise, 0o644, Owner::CNB)
                    .unwrap();
                entries
            })
            .collect();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let references: Vec<&LayerEntries> = layers.iter().collect();
            let written =
                write_layers(&references, Compression::Gzip, &store).map(|written| written.len());
            let _ = done.send(written);
        });
        let written = finished
            .recv_timeout(std::time::Duration::from_secs(300))
            .expect("write_layers finishes (no deadlock)");
        assert_eq!(written.unwrap(), 4);
    }

    #[test]
    fn written_layer_digests_match_blob_and_tar() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::for_layout(dir.path());
        let mut entries = LayerEntries::new();
        entries
            .add_bytes("workspace/a.txt", b"alpha".to_vec(), 0o644, Owner::CNB)
            .unwrap();
        entries.add_missing_parents(0o755, Owner::CNB);
        for compression in [Compression::Gzip, Compression::Zstd] {
            let layer = write_layer(&entries, compression, &store).unwrap();
            let blob = store
                .read_verified(&layer.digest, Some(layer.size))
                .unwrap();
            let tar = match compression {
                Compression::Gzip => {
                    let mut tar = Vec::new();
                    flate2::read::GzDecoder::new(blob.as_slice())
                        .read_to_end(&mut tar)
                        .unwrap();
                    tar
                }
                Compression::Zstd => zstd::decode_all(blob.as_slice()).unwrap(),
            };
            assert_eq!(Digest::of_bytes(&tar), layer.diff_id);
            assert_eq!(tar, write_tar(&entries, Vec::new()).unwrap());
            assert_eq!(layer.uncompressed_size, tar.len() as u64);
        }
    }
}
