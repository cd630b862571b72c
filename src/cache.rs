//! The one data/cache directory every part of kiln shares.
//!
//! Layout under `$KILN_HOME/v1/` (the version segment lets a future format live beside this
//! one):
//!
//! ```text
//! store/      OCI image layout: the local image store (tags = image names) and the shared
//!             content-addressed blob bucket (store/blobs/sha256) every other part writes into
//! layers/     layer cache records (metadata deciding reuse, and the blobs they produced)
//! downloads/  verified downloads by sha256 (Debian indexes and packages)
//! rootfs/     unpacked root filesystems for `kiln run`, by manifest digest
//! tmp/        scratch space on the same filesystem, so finished work can be renamed into place
//! locks/      lock files
//! ```
//!
//! Every write is atomic (temp file + rename), so a killed process never leaves a half entry,
//! and shared state is guarded by file locks, so concurrent kiln processes are safe.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::oci::BlobStore;

/// Format version of the cache layout.
const LAYOUT_VERSION: &str = "v1";

/// A part of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// The local image store (an OCI layout) and its blobs.
    Store,
    /// Layer cache records.
    Layers,
    /// Verified downloads.
    Downloads,
    /// Unpacked root filesystems.
    Rootfs,
    /// Scratch space.
    Tmp,
    /// Lock files.
    Locks,
}

impl Bucket {
    const ALL: [Bucket; 6] = [
        Bucket::Store,
        Bucket::Layers,
        Bucket::Downloads,
        Bucket::Rootfs,
        Bucket::Tmp,
        Bucket::Locks,
    ];

    fn dir_name(self) -> &'static str {
        match self {
            Bucket::Store => "store",
            Bucket::Layers => "layers",
            Bucket::Downloads => "downloads",
            Bucket::Rootfs => "rootfs",
            Bucket::Tmp => "tmp",
            Bucket::Locks => "locks",
        }
    }
}

/// Errors of the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot find a home for kiln's data: set KILN_HOME (or HOME)")]
    NoHome,
    #[error("cannot create kiln's data directory {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot clean up {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Handle on `$KILN_HOME/v1`.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// Where kiln keeps its data when `KILN_HOME` is not set: `$XDG_DATA_HOME/kiln`, else
/// `~/.local/share/kiln`.
pub fn default_home() -> Result<PathBuf, CacheError> {
    if let Some(home) = std::env::var_os("KILN_HOME").filter(|value| !value.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|value| !value.is_empty()) {
        return Ok(PathBuf::from(data).join("kiln"));
    }
    let home = std::env::var_os("HOME")
        .filter(|value| !value.is_empty())
        .ok_or(CacheError::NoHome)?;
    Ok(PathBuf::from(home).join(".local/share/kiln"))
}

impl Cache {
    /// Open (creating if needed) the cache at the default home.
    pub fn open_default() -> Result<Self, CacheError> {
        Self::open(&default_home()?)
    }

    /// Open (creating if needed) the cache under `home`.
    pub fn open(home: &Path) -> Result<Self, CacheError> {
        let root = home.join(LAYOUT_VERSION);
        for bucket in Bucket::ALL {
            let path = root.join(bucket.dir_name());
            fs_err::create_dir_all(&path).map_err(|source| CacheError::Create { path, source })?;
        }
        Ok(Self { root })
    }

    /// `$KILN_HOME/v1`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of a bucket.
    pub fn dir(&self, bucket: Bucket) -> PathBuf {
        self.root.join(bucket.dir_name())
    }

    /// The local image store's layout directory.
    pub fn store_dir(&self) -> PathBuf {
        self.dir(Bucket::Store)
    }

    /// The shared content-addressed blob bucket.
    pub fn blobs(&self) -> BlobStore {
        BlobStore::for_layout(&self.store_dir())
    }

    /// A fresh scratch directory on the cache's filesystem, removed when dropped.
    pub fn temp_dir(&self, purpose: &str) -> Result<tempfile::TempDir, CacheError> {
        let parent = self.dir(Bucket::Tmp);
        tempfile::Builder::new()
            .prefix(&format!("{purpose}-"))
            .tempdir_in(&parent)
            .map_err(|source| CacheError::Create {
                path: parent,
                source,
            })
    }

    /// Take an exclusive lock named `name`, waiting for other holders.
    pub fn lock_exclusive(&self, name: &str) -> Result<CacheLock, CacheError> {
        self.lock(name, true)
    }

    /// Take a shared lock named `name`, waiting while someone holds it exclusively.
    pub fn lock_shared(&self, name: &str) -> Result<CacheLock, CacheError> {
        self.lock(name, false)
    }

    fn lock(&self, name: &str, exclusive: bool) -> Result<CacheLock, CacheError> {
        let path = self.dir(Bucket::Locks).join(format!("{name}.lock"));
        let lock_error = |source| CacheError::Lock {
            path: path.clone(),
            source,
        };
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(lock_error)?;
        if exclusive {
            file.lock().map_err(lock_error)?;
        } else {
            file.lock_shared().map_err(lock_error)?;
        }
        Ok(CacheLock { _file: file })
    }
}

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

/// Name of the lock every build and run holds shared, and `kiln cache prune` holds exclusive,
/// so pruning never deletes what a running build is about to reference.
pub const GC_LOCK: &str = "gc";

/// Write `bytes` to `path` atomically: a temp file in the same directory, synced, then renamed.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let write_error = |source| CacheError::Write {
        path: path.to_path_buf(),
        source,
    };
    let parent = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent).map_err(write_error)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(parent)
        .map_err(write_error)?;
    temp.write_all(bytes).map_err(write_error)?;
    temp.as_file().sync_data().map_err(write_error)?;
    temp.persist(path)
        .map_err(|error| write_error(error.error))?;
    Ok(())
}

/// What `prune` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// Blobs deleted.
    pub blobs: usize,
    /// Bytes freed by deleting blobs.
    pub bytes: u64,
    /// Scratch entries (temp dirs of killed builds, half-written blobs) deleted.
    pub scratch: usize,
}

impl Cache {
    /// Delete every blob that no tagged image and no layer record references, and all
    /// scratch space. Holds the GC lock exclusively, so it waits for running builds.
    pub fn prune(&self) -> Result<Pruned, PruneError> {
        let _gc = self.lock_exclusive(GC_LOCK)?;
        let mut pruned = Pruned::default();
        let keep = self.referenced_blobs()?;
        let blobs = self.blobs();
        pruned.scratch += blobs
            .remove_stale_temps()
            .map_err(|source| PruneError::Remove {
                path: self.store_dir(),
                source,
            })?;
        for digest in blobs.list()? {
            if keep.contains(&digest) {
                continue;
            }
            pruned.bytes += blobs.size(&digest).unwrap_or_default();
            blobs.remove(&digest).map_err(|source| PruneError::Remove {
                path: blobs.path(&digest),
                source,
            })?;
            pruned.blobs += 1;
        }
        for entry in fs_err::read_dir(self.dir(Bucket::Tmp))
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            let removed = if path.is_dir() {
                fs_err::remove_dir_all(&path)
            } else {
                fs_err::remove_file(&path)
            };
            removed.map_err(|source| PruneError::Remove { path, source })?;
            pruned.scratch += 1;
        }
        Ok(pruned)
    }

    /// Blobs reachable from the store's tags and from layer cache records.
    fn referenced_blobs(
        &self,
    ) -> Result<std::collections::HashSet<crate::oci::Digest>, PruneError> {
        let mut keep = std::collections::HashSet::new();
        let store = crate::oci::Layout::open_or_create(&self.store_dir())?;
        for tag in store.tags()? {
            let image = store.read_image(Some(&tag))?;
            keep.insert(image.manifest_digest.clone());
            for (digest, _) in image.blobs(&tag)? {
                keep.insert(digest);
            }
        }
        for entry in walkdir::WalkDir::new(self.dir(Bucket::Layers))
            .into_iter()
            .flatten()
        {
            if entry
                .path()
                .extension()
                .is_some_and(|extension| extension == "json")
                && let Ok(bytes) = std::fs::read(entry.path())
                && let Ok(record) = serde_json::from_slice::<crate::layer::LayerRecord>(&bytes)
                && let Some(written) = record.written
            {
                keep.insert(written.digest);
            }
        }
        Ok(keep)
    }
}

/// Errors of `prune`.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("cannot read the local image store")]
    Store(#[from] crate::oci::OciError),
    #[error("cannot remove {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl crate::diagnostic::Diagnose for PruneError {
    fn class(&self) -> crate::diagnostic::ErrorClass {
        crate::diagnostic::ErrorClass::Internal
    }
}

impl crate::diagnostic::Diagnose for CacheError {
    fn class(&self) -> crate::diagnostic::ErrorClass {
        match self {
            CacheError::NoHome => crate::diagnostic::ErrorClass::User,
            _ => crate::diagnostic::ErrorClass::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            CacheError::Create { .. } | CacheError::Write { .. } => Some(
                "check that KILN_HOME (or ~/.local/share/kiln) is writable and the disk has space"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_versioned_buckets() {
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::open(home.path()).unwrap();
        for bucket in Bucket::ALL {
            assert!(cache.dir(bucket).is_dir());
        }
        assert!(cache.store_dir().starts_with(home.path().join("v1")));
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/file.json");
        atomic_write(&path, b"one").unwrap();
        atomic_write(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }

    #[test]
    fn exclusive_lock_waits_for_shared_holders() {
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::open(home.path()).unwrap();
        let shared = cache.lock_shared("test").unwrap();
        let path = cache.dir(Bucket::Locks).join("test.lock");
        let other = File::options().write(true).open(&path).unwrap();
        assert!(other.try_lock().is_err());
        drop(shared);
        assert!(other.try_lock().is_ok());
    }
}
