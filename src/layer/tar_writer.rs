//! The deterministic tar writer: same entries, same bytes, on any machine.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::entry::{EntryKind, FileSource, LayerEntries};
use super::error::LayerError;

/// Every entry's mtime: 1980-01-01T00:00:01Z, as the CNB lifecycle writes it. Never taken
/// from `SOURCE_DATE_EPOCH`, so a commit-time epoch cannot change layer digests.
pub const LAYER_MTIME: u64 = 315_532_801;

/// Write `entries` as an uncompressed tar into `out`, returning `out`.
pub fn write_tar<W: Write>(entries: &LayerEntries, out: W) -> Result<W, LayerError> {
    let write_error = |source| LayerError::WriteTar { source };
    let mut builder = tar::Builder::new(out);
    for (path, entry) in entries.iter() {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(LAYER_MTIME);
        header.set_uid(u64::from(entry.owner.uid));
        header.set_gid(u64::from(entry.owner.gid));
        header.set_mode(entry.mode);
        header.set_size(0);
        match &entry.kind {
            EntryKind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                builder
                    .append_data(&mut header, format!("{path}/"), io::empty())
                    .map_err(write_error)?;
            }
            EntryKind::File(source) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(source.size());
                match source {
                    FileSource::Bytes(bytes) => builder
                        .append_data(&mut header, &path, bytes.as_slice())
                        .map_err(write_error)?,
                    FileSource::Path {
                        path: disk_path,
                        size,
                    } => {
                        let file = fs_err::File::open(disk_path).map_err(|source| {
                            LayerError::ReadFile {
                                path: disk_path.clone(),
                                source,
                            }
                        })?;
                        let mut reader = ExactReader::new(file, *size, disk_path);
                        let result = builder.append_data(&mut header, &path, &mut reader);
                        if let Some(error) = reader.error.take() {
                            return Err(error);
                        }
                        result.map_err(write_error)?;
                    }
                }
            }
            EntryKind::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                builder
                    .append_link(&mut header, &path, target)
                    .map_err(write_error)?;
            }
            EntryKind::HardLink(target) => {
                header.set_entry_type(tar::EntryType::Link);
                builder
                    .append_link(&mut header, &path, target)
                    .map_err(write_error)?;
            }
        }
    }
    builder.into_inner().map_err(write_error)
}

/// Reads exactly `size` bytes and fails if the file turns out shorter or longer, so a file
/// modified during a build cannot produce a tar whose headers lie about sizes.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
    path: PathBuf,
    error: Option<LayerError>,
}

impl<R: Read> ExactReader<R> {
    fn new(inner: R, size: u64, path: &Path) -> Self {
        Self {
            inner,
            remaining: size,
            path: path.to_path_buf(),
            error: None,
        }
    }

    fn changed(&mut self) -> io::Error {
        self.error = Some(LayerError::FileChanged {
            path: self.path.clone(),
        });
        io::Error::other("file changed while archiving")
    }
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe) {
                Ok(0) => Ok(0),
                Ok(_) => Err(self.changed()),
                Err(error) => Err(error),
            };
        }
        let limit = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..limit]).inspect_err(|source| {
            self.error = Some(LayerError::ReadFile {
                path: self.path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            });
        })?;
        if n == 0 {
            return Err(self.changed());
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::Owner;
    use super::*;

    fn sample() -> LayerEntries {
        let mut entries = LayerEntries::new();
        entries
            .add_bytes(
                "workspace/app.py",
                b"print('hi')\n".to_vec(),
                0o644,
                Owner::CNB,
            )
            .unwrap();
        entries
            .add_symlink("workspace/link", "app.py", Owner::CNB)
            .unwrap();
        let long = format!("workspace/{}/file", "d".repeat(150));
        entries
            .add_bytes(&long, b"x".to_vec(), 0o644, Owner::CNB)
            .unwrap();
        entries.add_missing_parents(0o755, Owner::CNB);
        entries
    }

    #[test]
    fn writes_identical_bytes_twice() {
        let first = write_tar(&sample(), Vec::new()).unwrap();
        let second = write_tar(&sample(), Vec::new()).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn headers_are_normalized_and_readable() {
        let bytes = write_tar(&sample(), Vec::new()).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mtime().unwrap(), LAYER_MTIME);
            assert_eq!(header.uid().unwrap(), 1000);
            assert_eq!(header.username_bytes().unwrap_or_default(), b"");
            seen.push(entry.path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(seen[0], "workspace/");
        assert!(
            seen.iter()
                .any(|path| path.ends_with("/file") && path.len() > 150)
        );
    }

    #[test]
    fn file_that_shrank_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "short").unwrap();
        let mut entries = LayerEntries::new();
        entries
            .insert(
                "f",
                super::super::entry::Entry {
                    kind: EntryKind::File(FileSource::Path {
                        path: path.clone(),
                        size: 100,
                    }),
                    mode: 0o644,
                    owner: Owner::ROOT,
                },
            )
            .unwrap();
        assert!(matches!(
            write_tar(&entries, Vec::new()),
            Err(LayerError::FileChanged { .. })
        ));
    }
}
