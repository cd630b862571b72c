//! The lock: the exact packages (name, version, sha256) of the base and of each runtime, so
//! builds are reproducible until `--update`. Kept in the cache, or in a file the user commits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::StackError;
use crate::cache::{Bucket, Cache, atomic_write};
use crate::oci::Digest;

/// Format version of the lock file.
pub const LOCK_VERSION: u32 = 1;

/// How to treat an existing lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Use the locked packages when the lock matches the builder; otherwise resolve and
    /// record the result.
    Prefer,
    /// Resolve against fresh indexes and rewrite the lock (`--update`).
    Update,
    /// Use the lock only; a missing or outdated entry is an error (CI).
    Frozen,
}

/// One pinned package.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedPackage {
    /// Package name.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// `amd64` or `all`.
    pub arch: String,
    /// sha256 of the `.deb`.
    pub sha256: String,
    /// Size of the `.deb`.
    pub size: u64,
    /// Suite it was resolved from.
    pub suite: String,
    /// Path of the `.deb` under the archive root.
    pub filename: String,
}

/// A pinned package set and the inputs it was resolved from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSet {
    /// [`super::BuilderStack::inputs_digest`] of the request.
    pub inputs: Digest,
    /// The packages, sorted by name.
    pub packages: Vec<ResolvedPackage>,
}

/// The lock file's content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Format version.
    pub version: u32,
    /// The run image's packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<LockedSet>,
    /// Runtime package sets by runtime name.
    #[serde(default)]
    pub runtimes: BTreeMap<String, LockedSet>,
}

impl Default for Lock {
    fn default() -> Self {
        Self {
            version: LOCK_VERSION,
            base: None,
            runtimes: BTreeMap::new(),
        }
    }
}

impl Lock {
    /// Read a lock; a missing file is an empty lock.
    pub fn load(path: &Path) -> Result<Self, StackError> {
        let text = match fs_err::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            Err(source) => {
                return Err(StackError::ReadLock {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|source| StackError::ParseLock {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    /// Write the lock atomically.
    pub fn save(&self, path: &Path) -> Result<(), StackError> {
        let body = toml::to_string(self).map_err(|source| StackError::SerializeLock { source })?;
        let text = format!(
            "# kiln stack lock: the exact Debian packages of the run image and runtimes.\n\
             # Rewritten by `kiln base build --update`; commit it to pin a builder.\n{body}"
        );
        atomic_write(path, text.as_bytes())?;
        Ok(())
    }
}

/// Where the lock of stack `id` is kept in the cache.
pub fn cached_lock_path(cache: &Cache, id: &str) -> PathBuf {
    let file: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    cache
        .dir(Bucket::Layers)
        .join("debian-stacks")
        .join(format!("{file}.lock.toml"))
}

/// Digest identifying a package set (the `io.buildpacks.base` package-set digest, and the
/// reuse key of runtime layers).
pub fn package_set_digest(domain: &str, packages: &[ResolvedPackage]) -> Digest {
    let mut text = format!("{domain}\n");
    for package in packages {
        text.push_str(&format!(
            "{} {} {} {}\n",
            package.name, package.version, package.arch, package.sha256
        ));
    }
    Digest::of_bytes(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.lock.toml");
        assert_eq!(Lock::load(&path).unwrap(), Lock::default());
        let package = ResolvedPackage {
            name: "dash".to_owned(),
            version: "0.5.12-2".to_owned(),
            arch: "amd64".to_owned(),
            sha256: "0".repeat(64),
            size: 1,
            suite: "bookworm".to_owned(),
            filename: "pool/main/d/dash/dash_0.5.12-2_amd64.deb".to_owned(),
        };
        let set = LockedSet {
            inputs: Digest::of_bytes(b"x"),
            packages: vec![package],
        };
        let mut lock = Lock {
            base: Some(set.clone()),
            ..Lock::default()
        };
        lock.runtimes.insert("python".to_owned(), set);
        lock.save(&path).unwrap();
        assert_eq!(Lock::load(&path).unwrap(), lock);
        std::fs::write(&path, "version = \"x\"").unwrap();
        assert!(matches!(
            Lock::load(&path),
            Err(StackError::ParseLock { .. })
        ));
    }
}
