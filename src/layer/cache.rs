//! The layer cache: per app and buildpack, the metadata a layer was built with, the blob it
//! became, and (for cached layers) its content, so unchanged layers are neither rebuilt,
//! re-tarred nor recompressed.
//!
//! Each record is one JSON file replaced atomically; content lives in a directory whose name
//! carries a random token that the record points at, so a crash at any moment leaves either
//! the old record with its old content or the new record with its new content.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::WrittenLayer;
use crate::cache::{CacheError, atomic_write};

/// What is remembered about one layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Metadata the layer was built with.
    pub metadata: Value,
    /// The launch blob it became, if it was exported.
    pub written: Option<WrittenLayer>,
    /// Token naming the content directory, when content is kept.
    pub content: Option<String>,
    /// Anything else the owner wants back (e.g. the layer's env changes).
    pub extra: Value,
}

/// Records of one scope (an app's buildpack).
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
}

/// Errors of the layer cache.
#[derive(Debug, thiserror::Error)]
pub enum LayerCacheError {
    #[error("cannot read the layer cache at {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot update the layer cache at {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Cache(#[from] CacheError),
}

impl LayerCache {
    /// The scope stored at `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The scope's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// The content directory a record points at.
    pub fn content_dir(&self, name: &str, token: &str) -> PathBuf {
        self.dir.join(format!("{name}.{token}"))
    }

    /// Read a record; a missing or unreadable record (e.g. from an older kiln) is `None`,
    /// which only means "rebuild".
    pub fn load(&self, name: &str) -> Option<LayerRecord> {
        let bytes = std::fs::read(self.record_path(name)).ok()?;
        let record: LayerRecord = serde_json::from_slice(&bytes).ok()?;
        if let Some(token) = &record.content
            && !self.content_dir(name, token).is_dir()
        {
            return Some(LayerRecord {
                content: None,
                ..record
            });
        }
        Some(record)
    }

    /// Store a record. With `new_content`, that directory is moved into the cache first and
    /// becomes the record's content; older content directories of the layer are removed
    /// after the record is in place.
    pub fn store(
        &self,
        name: &str,
        mut record: LayerRecord,
        new_content: Option<&Path>,
    ) -> Result<(), LayerCacheError> {
        let write_error = |source| LayerCacheError::Write {
            path: self.dir.clone(),
            source,
        };
        fs_err::create_dir_all(&self.dir).map_err(write_error)?;
        if let Some(source) = new_content {
            let token = random_token();
            fs_err::rename(source, self.content_dir(name, &token)).map_err(write_error)?;
            record.content = Some(token);
        }
        let bytes = serde_json::to_vec_pretty(&record)
            .map_err(|error| write_error(io::Error::other(error)))?;
        atomic_write(&self.record_path(name), &bytes)?;
        self.remove_stale_content(name, record.content.as_deref())
            .map_err(write_error)
    }

    /// Forget a layer and its content.
    pub fn remove(&self, name: &str) -> Result<(), LayerCacheError> {
        let write_error = |source| LayerCacheError::Write {
            path: self.dir.clone(),
            source,
        };
        match fs_err::remove_file(self.record_path(name)) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(write_error(error)),
        }
        self.remove_stale_content(name, None).map_err(write_error)
    }

    fn remove_stale_content(&self, name: &str, keep: Option<&str>) -> io::Result<()> {
        let prefix = format!("{name}.");
        let Ok(entries) = fs_err::read_dir(&self.dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let Some(token) = file_name.strip_prefix(&prefix) else {
                continue;
            };
            if token == "json" || Some(token) == keep || !entry.path().is_dir() {
                continue;
            }
            fs_err::remove_dir_all(entry.path())?;
        }
        Ok(())
    }

    /// Forget every record of this scope.
    pub fn clear(&self) -> Result<(), LayerCacheError> {
        match fs_err::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(LayerCacheError::Write {
                path: self.dir.clone(),
                source,
            }),
        }
    }
}

fn random_token() -> String {
    let file = tempfile::Builder::new().prefix("").tempfile();
    // A temp file name is a cheap source of randomness without another dependency.
    let from_temp = file.ok().and_then(|file| {
        file.path()
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
    });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{}{nanos:08x}",
        from_temp.unwrap_or_default().replace('.', "")
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn records_and_content_round_trip_and_old_content_is_removed() {
        let root = tempfile::tempdir().unwrap();
        let cache = LayerCache::new(root.path().join("app/bp"));
        assert!(cache.load("deps").is_none());
        let staged = root.path().join("staged");
        std::fs::create_dir(&staged).unwrap();
        std::fs::write(staged.join("lib.py"), "v1").unwrap();
        let record = LayerRecord {
            metadata: json!({"version": 1}),
            ..LayerRecord::default()
        };
        cache.store("deps", record, Some(&staged)).unwrap();
        let first = cache.load("deps").unwrap();
        let first_dir = cache.content_dir("deps", first.content.as_ref().unwrap());
        assert_eq!(
            std::fs::read_to_string(first_dir.join("lib.py")).unwrap(),
            "v1"
        );

        std::fs::create_dir(&staged).unwrap();
        std::fs::write(staged.join("lib.py"), "v2").unwrap();
        cache
            .store(
                "deps",
                LayerRecord {
                    metadata: json!({"version": 2}),
                    ..LayerRecord::default()
                },
                Some(&staged),
            )
            .unwrap();
        let second = cache.load("deps").unwrap();
        assert_eq!(second.metadata, json!({"version": 2}));
        assert!(!first_dir.exists(), "old content is cleaned up");
        let second_dir = cache.content_dir("deps", second.content.as_ref().unwrap());
        assert_eq!(
            std::fs::read_to_string(second_dir.join("lib.py")).unwrap(),
            "v2"
        );
    }

    #[test]
    fn record_whose_content_vanished_has_no_content() {
        let root = tempfile::tempdir().unwrap();
        let cache = LayerCache::new(root.path().to_path_buf());
        let staged = root.path().join("staged");
        std::fs::create_dir(&staged).unwrap();
        cache
            .store("deps", LayerRecord::default(), Some(&staged))
            .unwrap();
        let token = cache.load("deps").unwrap().content.unwrap();
        std::fs::remove_dir_all(cache.content_dir("deps", &token)).unwrap();
        assert_eq!(cache.load("deps").unwrap().content, None);
    }
}
