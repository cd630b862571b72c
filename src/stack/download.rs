//! HTTP downloads into the shared cache: verified by sha256, written atomically under a
//! per-file lock, so concurrent builds share them and a second run downloads nothing.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::error::StackError;
use crate::cache::{Bucket, Cache, atomic_write};

/// Who vouches for an expected checksum (named in mismatch errors).
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// sha256, lowercase hex.
    pub sha256: &'a str,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// What lists the checksum: "the signed Release …", "the Packages index", "the lock …".
    pub authority: &'a str,
}

/// An HTTP client bound to the cache.
#[derive(Debug, Clone)]
pub struct Fetcher {
    agent: ureq::Agent,
    cache: Cache,
}

impl Fetcher {
    /// A fetcher writing into `cache`.
    pub fn new(cache: &Cache) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: config.into(),
            cache: cache.clone(),
        }
    }

    /// GET a small file that has no known checksum yet (an `InRelease`). Never cached: its
    /// signature is what makes it trustworthy, and it must be fresh.
    pub fn get(&self, url: &str) -> Result<Vec<u8>, StackError> {
        let mut response = self
            .agent
            .get(url)
            .call()
            .map_err(|error| http_error(url, error))?;
        let mut bytes = Vec::new();
        response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .reader()
            .read_to_end(&mut bytes)
            .map_err(|source| StackError::Fetch {
                url: url.to_owned(),
                source: Box::new(ureq::Error::Io(source)),
            })?;
        Ok(bytes)
    }

    /// Where a download with this sha256 lives in the cache.
    pub fn cached_path(&self, sha256: &str) -> PathBuf {
        self.cache
            .dir(Bucket::Downloads)
            .join("sha256")
            .join(sha256)
    }

    /// The bytes with sha256 `expected`: from the cache (re-verified, since anything on
    /// disk may have been changed) or downloaded from the first of `urls` that exists.
    pub fn fetch_verified(
        &self,
        urls: &[String],
        expected: Expected<'_>,
    ) -> Result<Vec<u8>, StackError> {
        let path = self.cached_path(expected.sha256);
        if let Some(bytes) = self.read_cached(&path, expected.sha256)? {
            return Ok(bytes);
        }
        let _lock = self
            .cache
            .lock_exclusive(&format!("download-{}", expected.sha256))?;
        // Another process may have finished the same download while we waited.
        if let Some(bytes) = self.read_cached(&path, expected.sha256)? {
            return Ok(bytes);
        }
        let mut last_error = None;
        for url in urls {
            match self.download(url, expected) {
                Ok(bytes) => {
                    atomic_write(&path, &bytes)?;
                    return Ok(bytes);
                }
                // A by-hash URL may be gone while the plain path still serves the same bytes.
                Err(error @ StackError::HttpStatus { status: 404, .. }) => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| StackError::HttpStatus {
            url: String::new(),
            status: 404,
        }))
    }

    fn read_cached(
        &self,
        path: &std::path::Path,
        sha256: &str,
    ) -> Result<Option<Vec<u8>>, StackError> {
        let bytes = match fs_err::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StackError::ReadDownload {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != sha256 {
            return Err(StackError::CorruptDownload {
                path: path.to_path_buf(),
                expected: sha256.to_owned(),
                actual,
            });
        }
        Ok(Some(bytes))
    }

    fn download(&self, url: &str, expected: Expected<'_>) -> Result<Vec<u8>, StackError> {
        let mut response = self
            .agent
            .get(url)
            .call()
            .map_err(|error| http_error(url, error))?;
        // Read at most one byte more than announced, so an endless body cannot fill memory.
        let limit = expected.size.map_or(u64::MAX, |size| size + 1);
        let mut bytes =
            Vec::with_capacity(expected.size.unwrap_or(0).min(256 * 1024 * 1024) as usize);
        response
            .body_mut()
            .with_config()
            .limit(limit)
            .reader()
            .read_to_end(&mut bytes)
            .map_err(|source| StackError::Fetch {
                url: url.to_owned(),
                source: Box::new(ureq::Error::Io(source)),
            })?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != expected.sha256 {
            return Err(StackError::DigestMismatch {
                url: url.to_owned(),
                authority: expected.authority.to_owned(),
                expected: expected.sha256.to_owned(),
                actual,
            });
        }
        Ok(bytes)
    }
}

fn http_error(url: &str, error: ureq::Error) -> StackError {
    match error {
        ureq::Error::StatusCode(status) => StackError::HttpStatus {
            url: url.to_owned(),
            status,
        },
        other => StackError::Fetch {
            url: url.to_owned(),
            source: Box::new(other),
        },
    }
}
