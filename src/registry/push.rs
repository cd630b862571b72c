//! Uploads of one blob: monolithic `POST` → `PUT`, or chunked `PATCH`es. Whole images are
//! pushed by `push_image.rs` on top of this.
//!
//! Chunking rule: a blob larger than `chunked_threshold` goes in `PATCH`es of `chunk_size`
//! (raised to the registry's `OCI-Chunk-Min-Length`), and so does any blob whose monolithic
//! `PUT` the registry refuses with 413. A failed upload is restarted in a fresh session: a
//! session that saw part of a body cannot be trusted to take the whole body again.

use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ureq::http::Method;

use super::auth::Scope;
use super::client::RegistryClient;
use super::credentials::Credential;
use super::error::{RegistryError, RequestError};
use super::exchange::{Answer, Exchange, RequestBody, expect, header};
use super::reference::Reference;
use super::retry::{is_retryable_status, is_retryable_transport, parse_retry_after};
use super::transport::{upload_url, without_credentials};
use crate::oci::{BlobStore, Digest, OciError, VerifyingReader};

/// Something an upload can (re)read from the start, once per attempt.
pub trait BlobSource: Sync {
    /// A fresh reader over the whole blob. Read errors carrying an [`OciError`] (via
    /// `io::Error::other`) are reported as local failures, never retried.
    fn open(&self) -> Result<Box<dyn Read + Send + '_>, OciError>;
}

impl BlobSource for [u8] {
    fn open(&self) -> Result<Box<dyn Read + Send + '_>, OciError> {
        Ok(Box::new(self))
    }
}

/// A blob in a [`BlobStore`], verified as it is read so a corrupted local blob is never sent.
#[derive(Debug, Clone, Copy)]
pub struct StoredBlob<'a> {
    /// The store holding it.
    pub store: &'a BlobStore,
    /// Its digest.
    pub digest: &'a Digest,
    /// Its size.
    pub size: u64,
}

impl BlobSource for StoredBlob<'_> {
    fn open(&self) -> Result<Box<dyn Read + Send + '_>, OciError> {
        let reader = self.store.open_verified(self.digest, Some(self.size))?;
        Ok(Box::new(TypedErrors { inner: reader }))
    }
}

/// Carries the store's typed mismatch error through `io::Error` so the uploader can tell a
/// corrupt local blob from a network failure.
struct TypedErrors {
    inner: VerifyingReader<fs_err::File>,
}

impl Read for TypedErrors {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .read(buf)
            .map_err(|error| io::Error::other(self.inner.explain(error)))
    }
}

/// Why one upload attempt failed.
enum AttemptFailure {
    /// Worth a fresh session after a pause.
    Transient {
        error: RequestError,
        retry_after: Option<Duration>,
    },
    /// The registry refused a monolithic body as too large: go chunked.
    TooLarge { error: RequestError },
    /// Final.
    Fatal(RegistryError),
}

/// Everything one upload needs, so the helpers stay small.
pub(super) struct Upload<'a> {
    pub(super) repository: &'a Reference,
    pub(super) digest: &'a Digest,
    pub(super) size: u64,
    pub(super) source: &'a dyn BlobSource,
    pub(super) scopes: &'a [Scope],
    pub(super) credential: &'a Credential,
}

impl RegistryClient {
    /// Upload one blob (no existence check; see [`RegistryClient::push_image`] for that).
    pub fn push_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
        size: u64,
        source: &dyn BlobSource,
    ) -> Result<(), RegistryError> {
        let credential = self.credential(repository)?;
        let scopes = [Scope::push(repository.repository())];
        self.upload(
            &Upload {
                repository,
                digest,
                size,
                source,
                scopes: &scopes,
                credential: &credential,
            },
            None,
        )
    }

    /// Run `work` over `items` on at most `push_concurrency` threads; results keep input order.
    /// The first error stops further items from starting.
    pub(super) fn for_each_bounded<T: Sync, R: Send>(
        &self,
        items: &[T],
        work: impl Fn(&T) -> Result<R, RegistryError> + Sync,
    ) -> Result<Vec<R>, RegistryError> {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<Option<Result<R, RegistryError>>>> =
            Mutex::new(std::iter::repeat_with(|| None).take(items.len()).collect());
        let workers = self.options.push_concurrency.min(items.len());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    while !failed.load(Ordering::Relaxed) {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(index) else { break };
                        let result = work(item);
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        results.lock().unwrap_or_else(|poison| poison.into_inner())[index] =
                            Some(result);
                    }
                });
            }
        });
        let results = results
            .into_inner()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut collected = Vec::with_capacity(items.len());
        let mut first_error = None;
        for result in results {
            match result {
                Some(Ok(value)) => collected.push(value),
                Some(Err(error)) => {
                    first_error.get_or_insert(error);
                }
                None => {}
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(collected),
        }
    }

    /// Upload with whole-session retries; `session` is an already-open upload (from a mount
    /// the registry turned into an upload).
    pub(super) fn upload(
        &self,
        upload: &Upload<'_>,
        mut session: Option<String>,
    ) -> Result<(), RegistryError> {
        let retry = self.options.retry;
        let mut chunked = upload.size > self.options.chunked_threshold;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (location, min_chunk) = match session.take() {
                Some(location) => (location, None),
                None => self.open_upload(upload)?,
            };
            let result = if chunked {
                let chunk_size = self.options.chunk_size.max(min_chunk.unwrap_or(0));
                self.upload_chunked(upload, &location, chunk_size)
            } else {
                self.upload_monolithic(upload, &location)
            };
            let (error, retry_after) = match result {
                Ok(()) => return Ok(()),
                Err(AttemptFailure::Fatal(error)) => return Err(error),
                Err(AttemptFailure::TooLarge { error }) => {
                    if chunked {
                        return Err(self.upload_error(upload, error));
                    }
                    chunked = true;
                    // Switching strategy is not a failed attempt.
                    attempt -= 1;
                    continue;
                }
                Err(AttemptFailure::Transient { error, retry_after }) => (error, retry_after),
            };
            if attempt >= retry.max_attempts {
                return Err(self.upload_error(upload, error));
            }
            std::thread::sleep(retry.delay(attempt, retry_after));
        }
    }

    fn upload_error(&self, upload: &Upload<'_>, source: RequestError) -> RegistryError {
        match source {
            RequestError::ReadLocalBlob { source } => RegistryError::ReadUploadSource {
                digest: upload.digest.clone(),
                source: Box::new(source),
            },
            source => RegistryError::UploadBlob {
                repository: upload.repository.repository().to_owned(),
                digest: upload.digest.clone(),
                source: Box::new(source),
            },
        }
    }

    /// `POST …/blobs/uploads/`: the session's URL and the registry's minimum chunk size.
    fn open_upload(&self, upload: &Upload<'_>) -> Result<(String, Option<u64>), RegistryError> {
        let url = format!(
            "{}/v2/{}/blobs/uploads/",
            self.base_url(upload.repository),
            upload.repository.repository()
        );
        let answer = self
            .exchange(Exchange {
                method: Method::POST,
                url,
                registry: upload.repository.registry(),
                scopes: upload.scopes,
                credential: upload.credential,
                headers: vec![("Content-Length", "0".to_owned())],
                body: RequestBody::Empty,
                single_attempt: false,
            })
            .and_then(|answer| self.expect_upload(answer, upload, &[202]))
            .map_err(|error| self.upload_error(upload, error))?;
        let location = header(&answer.response, "location").ok_or_else(|| {
            self.upload_error(
                upload,
                RequestError::MissingHeader {
                    url: without_credentials(&answer.url),
                    header: "Location",
                },
            )
        })?;
        let min_chunk = header(&answer.response, "oci-chunk-min-length")
            .and_then(|value| value.trim().parse().ok());
        Ok((
            upload_url(&self.base_url(upload.repository), &location, &[]),
            min_chunk,
        ))
    }

    /// One `PUT ?digest=` carrying the whole blob.
    fn upload_monolithic(&self, upload: &Upload<'_>, location: &str) -> Result<(), AttemptFailure> {
        let url = upload_url(
            &self.base_url(upload.repository),
            location,
            &[("digest", upload.digest.to_string())],
        );
        let open = || upload.source.open();
        let result = self.exchange(Exchange {
            method: Method::PUT,
            url,
            registry: upload.repository.registry(),
            scopes: upload.scopes,
            credential: upload.credential,
            headers: vec![("Content-Type", "application/octet-stream".to_owned())],
            body: RequestBody::Stream {
                open: &open,
                length: upload.size,
            },
            single_attempt: true,
        });
        let answer = self.judge(result, upload, &[201])?;
        self.check_stored_digest(&answer, upload)
    }

    /// `PATCH`es of `chunk_size` bytes, then an empty `PUT ?digest=`.
    fn upload_chunked(
        &self,
        upload: &Upload<'_>,
        location: &str,
        chunk_size: u64,
    ) -> Result<(), AttemptFailure> {
        let base = self.base_url(upload.repository);
        let mut location = upload_url(&base, location, &[]);
        let mut reader = upload.source.open().map_err(|source| {
            AttemptFailure::Fatal(RegistryError::ReadUploadSource {
                digest: upload.digest.clone(),
                source: Box::new(source),
            })
        })?;
        let mut offset = 0u64;
        let mut chunk = Vec::new();
        loop {
            chunk.clear();
            (&mut reader)
                .take(chunk_size)
                .read_to_end(&mut chunk)
                .map_err(|error| AttemptFailure::Fatal(self.local_read_error(upload, error)))?;
            if chunk.is_empty() {
                break;
            }
            let end = offset + chunk.len() as u64 - 1;
            let result = self.exchange(Exchange {
                method: Method::PATCH,
                url: location.clone(),
                registry: upload.repository.registry(),
                scopes: upload.scopes,
                credential: upload.credential,
                headers: vec![
                    ("Content-Type", "application/octet-stream".to_owned()),
                    ("Content-Range", format!("{offset}-{end}")),
                    ("Content-Length", chunk.len().to_string()),
                ],
                body: RequestBody::Bytes(&chunk),
                single_attempt: true,
            });
            let answer = self.judge(result, upload, &[202])?;
            let next =
                header(&answer.response, "location").ok_or_else(|| AttemptFailure::Transient {
                    error: RequestError::MissingHeader {
                        url: without_credentials(&answer.url),
                        header: "Location",
                    },
                    retry_after: None,
                })?;
            location = upload_url(&base, &next, &[]);
            offset = end + 1;
        }
        if offset != upload.size {
            return Err(AttemptFailure::Fatal(RegistryError::ReadUploadSource {
                digest: upload.digest.clone(),
                source: Box::new(OciError::SizeMismatch {
                    location: "the upload source".to_owned(),
                    digest: upload.digest.clone(),
                    expected: upload.size,
                    actual: offset,
                }),
            }));
        }
        let url = upload_url(&base, &location, &[("digest", upload.digest.to_string())]);
        let result = self.exchange(Exchange {
            method: Method::PUT,
            url,
            registry: upload.repository.registry(),
            scopes: upload.scopes,
            credential: upload.credential,
            headers: vec![("Content-Length", "0".to_owned())],
            body: RequestBody::Empty,
            single_attempt: true,
        });
        let answer = self.judge(result, upload, &[201])?;
        self.check_stored_digest(&answer, upload)
    }

    fn local_read_error(&self, upload: &Upload<'_>, error: io::Error) -> RegistryError {
        let source = match error.into_inner().map(|inner| inner.downcast::<OciError>()) {
            Some(Ok(typed)) => *typed,
            Some(Err(other)) => OciError::ReadBlob {
                location: "the upload source".to_owned(),
                digest: upload.digest.clone(),
                source: io::Error::other(other.to_string()),
            },
            None => OciError::ReadBlob {
                location: "the upload source".to_owned(),
                digest: upload.digest.clone(),
                source: io::Error::other("read failed"),
            },
        };
        RegistryError::ReadUploadSource {
            digest: upload.digest.clone(),
            source: Box::new(source),
        }
    }

    /// Sort one attempt's outcome into success, transient, too-large or fatal.
    fn judge(
        &self,
        result: Result<Answer, RequestError>,
        upload: &Upload<'_>,
        accepted: &[u16],
    ) -> Result<Answer, AttemptFailure> {
        let answer = match result {
            Ok(answer) => answer,
            Err(RequestError::ReadLocalBlob { source }) => {
                return Err(AttemptFailure::Fatal(RegistryError::ReadUploadSource {
                    digest: upload.digest.clone(),
                    source: Box::new(source),
                }));
            }
            Err(error @ RequestError::Transport { .. }) if matches!(&error, RequestError::Transport { source, .. } if is_retryable_transport(source)) =>
            {
                return Err(AttemptFailure::Transient {
                    error,
                    retry_after: None,
                });
            }
            Err(error) => return Err(AttemptFailure::Fatal(self.upload_error(upload, error))),
        };
        let status = answer.response.status().as_u16();
        let retry_after =
            header(&answer.response, "retry-after").and_then(|value| parse_retry_after(&value));
        match self.expect_upload(answer, upload, accepted) {
            Ok(answer) => Ok(answer),
            Err(error) if status == 413 => Err(AttemptFailure::TooLarge { error }),
            // A session the registry lost (404 BLOB_UPLOAD_UNKNOWN) is worth a fresh one.
            Err(error) if is_retryable_status(status) || status == 404 => {
                Err(AttemptFailure::Transient { error, retry_after })
            }
            Err(error) => Err(AttemptFailure::Fatal(self.upload_error(upload, error))),
        }
    }

    fn expect_upload(
        &self,
        answer: Answer,
        upload: &Upload<'_>,
        accepted: &[u16],
    ) -> Result<Answer, RequestError> {
        expect(
            answer,
            accepted,
            upload.scopes,
            upload.credential,
            upload.repository.registry(),
            || format!("the upload session for blob {}", upload.digest),
        )
    }

    fn check_stored_digest(
        &self,
        answer: &Answer,
        upload: &Upload<'_>,
    ) -> Result<(), AttemptFailure> {
        match header(&answer.response, "docker-content-digest") {
            Some(stored) if stored != upload.digest.to_string() => Err(AttemptFailure::Fatal(
                RegistryError::UploadedDigestMismatch {
                    repository: upload.repository.repository().to_owned(),
                    digest: upload.digest.clone(),
                    actual: stored,
                },
            )),
            _ => Ok(()),
        }
    }
}
