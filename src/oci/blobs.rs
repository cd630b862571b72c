//! Content-addressed blob directories (`blobs/sha256/<hex>`), written atomically and read
//! with verification.

use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::digest::{Digest, HashingReader, HashingWriter};
use super::error::{OciError, Result};

/// Prefix of in-flight temp files inside a blob directory; readers ignore them.
const TEMP_PREFIX: &str = ".tmp-";

/// A `blobs/sha256` directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
    location: String,
}

impl BlobStore {
    /// The blob directory of the OCI layout at `layout_dir`.
    pub fn for_layout(layout_dir: &Path) -> Self {
        Self {
            dir: layout_dir.join("blobs").join("sha256"),
            location: layout_dir.display().to_string(),
        }
    }

    /// Human-readable name of where these blobs live, for errors.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Where the blob with this digest is (or would be) stored.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// Whether a blob is present (not verified).
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Size on disk of a present blob.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        std::fs::metadata(self.path(digest))
            .ok()
            .map(|meta| meta.len())
    }

    /// Start writing a new blob; nothing is visible until [`BlobWriter::commit`].
    pub fn writer(&self) -> Result<BlobWriter> {
        let temp = self.temp_file()?;
        Ok(BlobWriter {
            inner: HashingWriter::new(BufWriter::with_capacity(256 * 1024, temp)),
            store: self.clone(),
        })
    }

    fn temp_file(&self) -> Result<NamedTempFile> {
        let write_error = |source| OciError::WriteBlob {
            location: self.location.clone(),
            source,
        };
        fs_err::create_dir_all(&self.dir).map_err(write_error)?;
        tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&self.dir)
            .map_err(write_error)
    }

    /// Store bytes, returning their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of_bytes(bytes);
        if self.contains(&digest) {
            return Ok(digest);
        }
        let mut writer = self.writer()?;
        writer
            .write_all(bytes)
            .map_err(|source| OciError::WriteBlob {
                location: self.location.clone(),
                source,
            })?;
        writer.commit(Some(&digest))?;
        Ok(digest)
    }

    /// Open a blob for streaming; the reader fails at end of stream if the content does not
    /// match `digest` (and `size`, when given).
    pub fn open_verified(
        &self,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<VerifyingReader<fs_err::File>> {
        let file = fs_err::File::open(self.path(digest)).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                OciError::MissingBlob {
                    location: self.location.clone(),
                    digest: digest.clone(),
                }
            } else {
                OciError::ReadBlob {
                    location: self.location.clone(),
                    digest: digest.clone(),
                    source,
                }
            }
        })?;
        Ok(VerifyingReader::new(
            file,
            digest.clone(),
            size,
            self.location.clone(),
        ))
    }

    /// Read a whole (small) blob and verify it.
    pub fn read_verified(&self, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>> {
        let mut reader = self.open_verified(digest, size)?;
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|source| reader.explain(source))?;
        Ok(bytes)
    }

    /// Read a whole blob and check its digest and size, discarding the bytes.
    pub fn verify(&self, digest: &Digest, size: Option<u64>) -> Result<()> {
        let mut reader = self.open_verified(digest, size)?;
        io::copy(&mut reader, &mut io::sink()).map_err(|source| reader.explain(source))?;
        Ok(())
    }

    /// Copy a blob from another store, verifying it on the way. A blob already present here
    /// is not copied again.
    pub fn copy_from(&self, source: &BlobStore, digest: &Digest, size: Option<u64>) -> Result<()> {
        if self.contains(digest) {
            return Ok(());
        }
        let mut reader = source.open_verified(digest, size)?;
        let mut writer = self.writer()?;
        io::copy(&mut reader, &mut writer).map_err(|error| reader.explain(error))?;
        writer.commit(Some(digest))?;
        Ok(())
    }

    /// Digests of every blob present (temp files excluded).
    pub fn list(&self) -> Result<Vec<Digest>> {
        let entries = match fs_err::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(OciError::ReadLayout {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut digests = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| OciError::ReadLayout {
                path: self.dir.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Ok(digest) = format!("sha256:{name}").parse() {
                digests.push(digest);
            }
        }
        digests.sort();
        Ok(digests)
    }

    /// Remove a blob (used by prune).
    pub fn remove(&self, digest: &Digest) -> io::Result<()> {
        fs_err::remove_file(self.path(digest))
    }

    /// Remove temp files left behind by killed writers.
    pub fn remove_stale_temps(&self) -> io::Result<usize> {
        let mut removed = 0;
        let Ok(entries) = fs_err::read_dir(&self.dir) else {
            return Ok(0);
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                fs_err::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// A blob being written: hashed as it goes, renamed into place on commit.
pub struct BlobWriter {
    inner: HashingWriter<BufWriter<NamedTempFile>>,
    store: BlobStore,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.inner.written()
    }

    /// Finish the blob. With `expected`, a different digest is an error and nothing is stored.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let location = self.store.location.clone();
        let write_error = |source| OciError::WriteBlob {
            location: location.clone(),
            source,
        };
        let (buffered, digest, size) = self.inner.finish();
        let temp = buffered
            .into_inner()
            .map_err(|error| write_error(error.into_error()))?;
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(OciError::DigestMismatch {
                location,
                digest: expected.clone(),
                actual: digest,
            });
        }
        let target = self.store.path(&digest);
        if target.exists() {
            return Ok((digest, size));
        }
        temp.as_file().sync_data().map_err(write_error)?;
        temp.persist(&target)
            .map_err(|error| write_error(error.error))?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that checks digest and size when the stream ends.
pub struct VerifyingReader<R> {
    inner: Option<HashingReader<R>>,
    expected: Digest,
    expected_size: Option<u64>,
    location: String,
    mismatch: Option<OciError>,
}

impl<R: Read> VerifyingReader<R> {
    /// Verify `inner` against `expected`.
    pub fn new(inner: R, expected: Digest, expected_size: Option<u64>, location: String) -> Self {
        Self {
            inner: Some(HashingReader::new(inner)),
            expected,
            expected_size,
            location,
            mismatch: None,
        }
    }

    /// Turn an I/O error from this reader into the typed error it stands for.
    pub fn explain(&mut self, error: io::Error) -> OciError {
        self.mismatch.take().unwrap_or_else(|| OciError::ReadBlob {
            location: self.location.clone(),
            digest: self.expected.clone(),
            source: error,
        })
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(0);
        };
        let n = inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let (actual, size) = self.inner.take().expect("present").finish();
            if actual != self.expected {
                self.mismatch = Some(OciError::DigestMismatch {
                    location: self.location.clone(),
                    digest: self.expected.clone(),
                    actual,
                });
            } else if let Some(expected) = self.expected_size.filter(|expected| *expected != size) {
                self.mismatch = Some(OciError::SizeMismatch {
                    location: self.location.clone(),
                    digest: self.expected.clone(),
                    expected,
                    actual: size,
                });
            }
            if self.mismatch.is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "blob does not match its digest",
                ));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_then_read_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::for_layout(dir.path());
        let digest = store.put_bytes(b"content").unwrap();
        assert_eq!(store.read_verified(&digest, Some(7)).unwrap(), b"content");
        assert!(matches!(
            store.read_verified(&digest, Some(8)),
            Err(OciError::SizeMismatch { .. })
        ));
    }

    #[test]
    fn corrupted_blob_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::for_layout(dir.path());
        let digest = store.put_bytes(b"content").unwrap();
        std::fs::write(store.path(&digest), b"tampered").unwrap();
        assert!(matches!(
            store.read_verified(&digest, None),
            Err(OciError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn commit_with_wrong_expected_digest_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::for_layout(dir.path());
        let mut writer = store.writer().unwrap();
        writer.write_all(b"abc").unwrap();
        let wrong = Digest::of_bytes(b"xyz");
        assert!(writer.commit(Some(&wrong)).is_err());
        assert!(store.list().unwrap().is_empty());
        assert_eq!(store.remove_stale_temps().unwrap(), 0);
    }
}
