//! The blocking client: one exchange loop (authorization, retries) under the single-request
//! operations (manifests, blob HEAD/GET, mounts). Uploads live in `push.rs`, whole-image
//! transfers in `pull.rs` and `push.rs`.

use std::io::{self, Read, Write};
use std::sync::Arc;

use ureq::SendBody;
use ureq::http::{Method, Response};

use super::auth::{AuthState, Scope, describe_scopes};
use super::credentials::{Credential, CredentialStore};
use super::error::{RegistryError, RequestError};
use super::manifest::{MANIFEST_ACCEPT, MANIFEST_SIZE_LIMIT, ManifestKind, effective_media_type};
use super::reference::Reference;
use super::retry::{
    RetryPolicy, is_retryable_io, is_retryable_status, is_retryable_transport, parse_retry_after,
};
use super::transport::{Transport, TransportOptions, classify, without_credentials};
use crate::oci::{BlobStore, Digest, OciError};

/// Error bodies are small JSON documents; read at most this much of one.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;
/// Pulled blobs are read from the network in pieces of this size.
const PULL_BUFFER: usize = 256 * 1024;

/// How a [`RegistryClient`] behaves.
#[derive(Debug)]
pub struct RegistryOptions {
    /// Where credentials come from.
    pub credentials: CredentialStore,
    /// TLS roots and plain-HTTP hosts.
    pub transport: TransportOptions,
    /// Retries for transient failures.
    pub retry: RetryPolicy,
    /// Blobs uploaded at once by [`RegistryClient::push_image`].
    pub push_concurrency: usize,
    /// Blobs larger than this are uploaded in chunks (`PATCH`) rather than one `PUT`.
    pub chunked_threshold: u64,
    /// Size of one chunk (raised to the registry's `OCI-Chunk-Min-Length` when it asks).
    pub chunk_size: u64,
}

impl RegistryOptions {
    /// Defaults with credentials from the environment (`KILN_REGISTRY_AUTH`, `DOCKER_CONFIG`).
    pub fn from_env() -> Result<Self, RegistryError> {
        Ok(Self::with_credentials(CredentialStore::from_env()?))
    }

    /// Defaults with credentials from the environment and these TLS/plain-HTTP settings
    /// (what the CLI's `--registry-ca` and `--insecure-registry` produce).
    pub fn from_env_with(transport: &TransportOptions) -> Result<Self, RegistryError> {
        let mut options = Self::from_env()?;
        options.transport = transport.clone();
        Ok(options)
    }

    /// Defaults with the given credentials.
    pub fn with_credentials(credentials: CredentialStore) -> Self {
        Self {
            credentials,
            transport: TransportOptions::default(),
            retry: RetryPolicy::default(),
            push_concurrency: 3,
            // Monolithic uploads are one request and what every registry handles best; chunks
            // only pay off when a single huge request is likely to die mid-way.
            chunked_threshold: 512 * 1024 * 1024,
            chunk_size: 32 * 1024 * 1024,
        }
    }
}

/// A blocking OCI distribution client. Cheap to share across threads by reference.
#[derive(Debug)]
pub struct RegistryClient {
    pub(super) transport: Transport,
    pub(super) auth: AuthState,
    pub(super) credentials: Arc<CredentialStore>,
    pub(super) options: ClientSettings,
}

/// The non-credential options, copied out of [`RegistryOptions`].
#[derive(Debug, Clone, Copy)]
pub(super) struct ClientSettings {
    pub(super) retry: RetryPolicy,
    pub(super) push_concurrency: usize,
    pub(super) chunked_threshold: u64,
    pub(super) chunk_size: u64,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transport")
    }
}

/// A manifest as fetched: exact bytes, media type, digest (verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    /// The bytes the registry sent (hashing to `digest`).
    pub bytes: Vec<u8>,
    /// Media type (image manifest or index).
    pub media_type: String,
    /// sha256 of `bytes`.
    pub digest: Digest,
}

/// How a cross-repository mount went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOutcome {
    /// The registry linked the blob (201).
    Mounted,
    /// The registry could not mount and opened an upload session instead (202); uploading into
    /// it saves one request.
    UploadStarted { location: String },
}

/// The body of one request, re-creatable for retries.
pub(super) enum RequestBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    Stream {
        open: &'a (dyn Fn() -> Result<Box<dyn Read + Send + 'a>, OciError> + Sync),
        length: u64,
    },
}

/// One exchange to perform.
pub(super) struct Exchange<'a> {
    pub method: Method,
    pub url: String,
    pub registry: &'a str,
    pub scopes: &'a [Scope],
    pub credential: &'a Credential,
    pub headers: Vec<(&'static str, String)>,
    pub body: RequestBody<'a>,
    /// Return transient failures instead of retrying them: for requests whose retry means
    /// more than resending (an upload session may be spoiled by a half-sent body).
    pub single_attempt: bool,
}

/// A response plus how many attempts it took.
pub(super) struct Answer {
    pub response: Response<ureq::Body>,
    pub attempts: u32,
    pub url: String,
}

impl RegistryClient {
    /// Build a client (reads the CA file and the system roots).
    pub fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        Ok(Self {
            transport: Transport::new(&options.transport)?,
            auth: AuthState::default(),
            credentials: Arc::new(options.credentials),
            options: ClientSettings {
                retry: options.retry,
                push_concurrency: options.push_concurrency.max(1),
                chunked_threshold: options.chunked_threshold,
                chunk_size: options.chunk_size.max(1),
            },
        })
    }

    /// `scheme://host` for a reference's registry.
    pub(super) fn base_url(&self, reference: &Reference) -> String {
        self.transport.base_url(reference.registry())
    }

    pub(super) fn credential(&self, reference: &Reference) -> Result<Credential, RegistryError> {
        self.credentials.lookup(reference.registry())
    }

    /// Fetch a manifest or index exactly as stored, verifying its digest against the pinned
    /// digest or the registry's `Docker-Content-Digest`.
    pub fn get_manifest(&self, reference: &Reference) -> Result<FetchedManifest, RegistryError> {
        let credential = self.credential(reference)?;
        let scopes = [Scope::pull(reference.repository())];
        let fail = |source| RegistryError::GetManifest {
            reference: reference.to_string(),
            source: Box::new(source),
        };
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base_url(reference),
            reference.repository(),
            reference.manifest_selector()
        );
        let answer = self
            .exchange(Exchange {
                method: Method::GET,
                url,
                registry: reference.registry(),
                scopes: &scopes,
                credential: &credential,
                headers: vec![("Accept", MANIFEST_ACCEPT.to_owned())],
                body: RequestBody::Empty,
                single_attempt: false,
            })
            .map_err(fail)?;
        let mut answer = expect(
            answer,
            &[200],
            &scopes,
            &credential,
            reference.registry(),
            || format!("manifest {}", reference),
        )
        .map_err(fail)?;
        let content_type = header(&answer.response, "content-type");
        let registry_digest = header(&answer.response, "docker-content-digest");
        let bytes = read_limited(&mut answer, MANIFEST_SIZE_LIMIT).map_err(fail)?;
        let digest = Digest::of_bytes(&bytes);
        let expected = reference
            .digest()
            .cloned()
            .or_else(|| registry_digest.and_then(|value| value.parse().ok()));
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(RegistryError::ManifestDigestMismatch {
                reference: reference.to_string(),
                expected,
                actual: digest,
            });
        }
        let media_type = effective_media_type(content_type.as_deref(), &bytes);
        if ManifestKind::of(&media_type).is_none() {
            return Err(RegistryError::UnsupportedManifest {
                reference: reference.to_string(),
                media_type,
            });
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Whether the repository has the blob (`HEAD`).
    pub fn blob_exists(
        &self,
        repository: &Reference,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let credential = self.credential(repository)?;
        self.blob_exists_as(
            repository,
            digest,
            &[Scope::pull(repository.repository())],
            &credential,
        )
    }

    pub(super) fn blob_exists_as(
        &self,
        repository: &Reference,
        digest: &Digest,
        scopes: &[Scope],
        credential: &Credential,
    ) -> Result<bool, RegistryError> {
        let fail = |source| RegistryError::CheckBlob {
            repository: repository.repository().to_owned(),
            digest: digest.clone(),
            source: Box::new(source),
        };
        let answer = self
            .exchange(Exchange {
                method: Method::HEAD,
                url: self.blob_url(repository, digest),
                registry: repository.registry(),
                scopes,
                credential,
                headers: Vec::new(),
                body: RequestBody::Empty,
                single_attempt: false,
            })
            .map_err(fail)?;
        match answer.response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => expect(
                answer,
                &[200],
                scopes,
                credential,
                repository.registry(),
                || format!("blob {digest}"),
            )
            .map(|_| true)
            .map_err(fail),
        }
    }

    /// Stream a blob into `store`, verifying digest (and size, when given) before anything is
    /// committed. A blob already in the store is not fetched.
    pub fn pull_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
        size: Option<u64>,
        store: &BlobStore,
    ) -> Result<(), RegistryError> {
        if store.contains(digest) {
            return Ok(());
        }
        let credential = self.credential(repository)?;
        self.pull_blob_as(repository, digest, size, store, &credential)
    }

    pub(super) fn pull_blob_as(
        &self,
        repository: &Reference,
        digest: &Digest,
        size: Option<u64>,
        store: &BlobStore,
        credential: &Credential,
    ) -> Result<(), RegistryError> {
        let scopes = [Scope::pull(repository.repository())];
        let fail = |source| RegistryError::PullBlob {
            repository: repository.repository().to_owned(),
            digest: digest.clone(),
            source: Box::new(source),
        };
        let store_error = |source| RegistryError::StoreBlob {
            repository: repository.repository().to_owned(),
            digest: digest.clone(),
            source: Box::new(source),
        };
        let retry = self.options.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let answer = self
                .exchange(Exchange {
                    method: Method::GET,
                    url: self.blob_url(repository, digest),
                    registry: repository.registry(),
                    scopes: &scopes,
                    credential,
                    headers: Vec::new(),
                    body: RequestBody::Empty,
                    single_attempt: false,
                })
                .map_err(fail)?;
            let mut answer = expect(
                answer,
                &[200],
                &scopes,
                credential,
                repository.registry(),
                || format!("blob {digest}"),
            )
            .map_err(fail)?;
            let url = answer.url.clone();
            let mut writer = store.writer().map_err(store_error)?;
            // Read and write separately: a network failure is worth retrying, a disk failure not.
            let mut body = answer.response.body_mut().as_reader();
            let mut buffer = vec![0u8; PULL_BUFFER];
            let streamed: Result<(), io::Error> = loop {
                match body.read(&mut buffer) {
                    Ok(0) => break Ok(()),
                    Ok(n) => writer.write_all(&buffer[..n]).map_err(|source| {
                        store_error(OciError::WriteBlob {
                            location: store.location().to_owned(),
                            source,
                        })
                    })?,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => break Err(error),
                }
            };
            match streamed {
                Ok(()) => {}
                Err(error) if is_retryable_io(&error) && attempt < retry.max_attempts => {
                    drop(writer);
                    std::thread::sleep(retry.delay(attempt, None));
                    continue;
                }
                Err(source) => return Err(fail(RequestError::ReadBody { url, source })),
            }
            if let Some(expected) = size
                && writer.written() != expected
            {
                return Err(RegistryError::PulledBlobCorrupt {
                    repository: repository.repository().to_owned(),
                    digest: digest.clone(),
                    source: Box::new(OciError::SizeMismatch {
                        location: url,
                        digest: digest.clone(),
                        expected,
                        actual: writer.written(),
                    }),
                });
            }
            return match writer.commit(Some(digest)) {
                Ok(_) => Ok(()),
                Err(source @ OciError::DigestMismatch { .. }) => {
                    Err(RegistryError::PulledBlobCorrupt {
                        repository: repository.repository().to_owned(),
                        digest: digest.clone(),
                        source: Box::new(source),
                    })
                }
                Err(source) => Err(store_error(source)),
            };
        }
    }

    /// Ask the registry to link a blob from another repository on the same registry.
    pub fn mount_blob(
        &self,
        repository: &Reference,
        from_repository: &str,
        digest: &Digest,
    ) -> Result<MountOutcome, RegistryError> {
        let credential = self.credential(repository)?;
        let scopes = [
            Scope::push(repository.repository()),
            Scope::pull(from_repository),
        ];
        self.mount_blob_as(repository, from_repository, digest, &scopes, &credential)
    }

    pub(super) fn mount_blob_as(
        &self,
        repository: &Reference,
        from_repository: &str,
        digest: &Digest,
        scopes: &[Scope],
        credential: &Credential,
    ) -> Result<MountOutcome, RegistryError> {
        let fail = |source| RegistryError::MountBlob {
            repository: repository.repository().to_owned(),
            from_repository: from_repository.to_owned(),
            digest: digest.clone(),
            source: Box::new(source),
        };
        let url = format!(
            "{}/v2/{}/blobs/uploads/?mount={digest}&from={from_repository}",
            self.base_url(repository),
            repository.repository()
        );
        let answer = self
            .exchange(Exchange {
                method: Method::POST,
                url,
                registry: repository.registry(),
                scopes,
                credential,
                headers: vec![("Content-Length", "0".to_owned())],
                body: RequestBody::Empty,
                single_attempt: false,
            })
            .map_err(fail)?;
        let answer = expect(
            answer,
            &[201, 202],
            scopes,
            credential,
            repository.registry(),
            || format!("repository {}", repository.repository()),
        )
        .map_err(fail)?;
        if answer.response.status().as_u16() == 201 {
            return Ok(MountOutcome::Mounted);
        }
        let location = header(&answer.response, "location").ok_or_else(|| {
            fail(RequestError::MissingHeader {
                url: without_credentials(&answer.url),
                header: "Location",
            })
        })?;
        Ok(MountOutcome::UploadStarted { location })
    }

    /// Store a manifest under the reference's tag (or digest) as exactly these bytes; returns
    /// their digest.
    pub fn put_manifest(
        &self,
        reference: &Reference,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RegistryError> {
        let credential = self.credential(reference)?;
        self.put_manifest_as(
            reference,
            bytes,
            media_type,
            &[Scope::push(reference.repository())],
            &credential,
        )
    }

    pub(super) fn put_manifest_as(
        &self,
        reference: &Reference,
        bytes: &[u8],
        media_type: &str,
        scopes: &[Scope],
        credential: &Credential,
    ) -> Result<Digest, RegistryError> {
        let fail = |source| RegistryError::PutManifest {
            reference: reference.to_string(),
            source: Box::new(source),
        };
        let digest = Digest::of_bytes(bytes);
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base_url(reference),
            reference.repository(),
            reference.push_selector()
        );
        let answer = self
            .exchange(Exchange {
                method: Method::PUT,
                url,
                registry: reference.registry(),
                scopes,
                credential,
                headers: vec![
                    ("Content-Type", media_type.to_owned()),
                    ("Content-Length", bytes.len().to_string()),
                ],
                body: RequestBody::Bytes(bytes),
                single_attempt: false,
            })
            .map_err(fail)?;
        let answer = expect(
            answer,
            &[200, 201],
            scopes,
            credential,
            reference.registry(),
            || format!("repository {}", reference.repository()),
        )
        .map_err(fail)?;
        if let Some(stored) = header(&answer.response, "docker-content-digest")
            && stored != digest.to_string()
        {
            return Err(RegistryError::PutManifestDigestMismatch {
                reference: reference.to_string(),
                expected: digest,
                actual: stored,
            });
        }
        Ok(digest)
    }

    pub(super) fn blob_url(&self, repository: &Reference, digest: &Digest) -> String {
        format!(
            "{}/v2/{}/blobs/{digest}",
            self.base_url(repository),
            repository.repository()
        )
    }

    /// Perform one exchange: authorize, send, learn from a 401 once, retry transient failures.
    pub(super) fn exchange(&self, exchange: Exchange<'_>) -> Result<Answer, RequestError> {
        let retry = if exchange.single_attempt {
            RetryPolicy::none()
        } else {
            self.options.retry
        };
        let agent = self.transport.agent();
        let mut attempt = 0;
        let mut reauthorized = false;
        loop {
            attempt += 1;
            let authorization = self.auth.authorization(
                agent,
                &self.options.retry,
                exchange.registry,
                exchange.scopes,
                exchange.credential,
            )?;
            let mut builder = ureq::http::Request::builder()
                .method(exchange.method.clone())
                .uri(&exchange.url);
            for (name, value) in &exchange.headers {
                builder = builder.header(*name, value);
            }
            if let Some(authorization) = &authorization {
                builder = builder.header("Authorization", authorization);
            }
            let bad_url = |_| RequestError::BadUrl {
                url: without_credentials(&exchange.url),
            };
            let result = match &exchange.body {
                RequestBody::Empty => agent.run(builder.body(()).map_err(bad_url)?),
                RequestBody::Bytes(bytes) => agent.run(builder.body(*bytes).map_err(bad_url)?),
                RequestBody::Stream { open, length } => {
                    let mut reader =
                        open().map_err(|source| RequestError::ReadLocalBlob { source })?;
                    let request = builder
                        .header("Content-Length", length.to_string())
                        .body(SendBody::from_reader(&mut reader))
                        .map_err(bad_url)?;
                    agent.run(request)
                }
            };
            let response = match result {
                Ok(response) => response,
                Err(error) => {
                    let error = match local_read_failure(error) {
                        Ok(local) => return Err(RequestError::ReadLocalBlob { source: local }),
                        Err(error) => error,
                    };
                    if is_retryable_transport(&error) && attempt < retry.max_attempts {
                        std::thread::sleep(retry.delay(attempt, None));
                        continue;
                    }
                    return Err(classify(error, &exchange.url, attempt));
                }
            };
            let status = response.status().as_u16();
            if status == 401 && !reauthorized {
                reauthorized = true;
                let challenge = header(&response, "www-authenticate");
                if self.auth.learn(
                    exchange.registry,
                    exchange.scopes,
                    challenge.as_deref(),
                    exchange.credential,
                    authorization.as_deref(),
                ) {
                    // Learning the challenge is not a failed attempt.
                    attempt -= 1;
                    continue;
                }
            }
            if is_retryable_status(status) && attempt < retry.max_attempts {
                let retry_after =
                    header(&response, "retry-after").and_then(|value| parse_retry_after(&value));
                std::thread::sleep(retry.delay(attempt, retry_after));
                continue;
            }
            return Ok(Answer {
                response,
                attempts: attempt,
                url: exchange.url,
            });
        }
    }
}

/// Pull a typed local-read error (the upload source failed, not the network) out of a ureq
/// error, so it is reported as what it is and never retried.
fn local_read_failure(error: ureq::Error) -> Result<OciError, ureq::Error> {
    match error {
        ureq::Error::Io(io_error)
            if io_error
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<OciError>().is_some()) =>
        {
            match io_error
                .into_inner()
                .map(|inner| inner.downcast::<OciError>())
            {
                Some(Ok(local)) => Ok(*local),
                // Unreachable after the check above; keep a usable error rather than panic.
                _ => Err(ureq::Error::ConnectionFailed),
            }
        }
        other => Err(other),
    }
}

/// Check the status against what the operation accepts; map the rest to typed errors.
pub(super) fn expect(
    mut answer: Answer,
    accepted: &[u16],
    scopes: &[Scope],
    credential: &Credential,
    registry: &str,
    what: impl FnOnce() -> String,
) -> Result<Answer, RequestError> {
    let status = answer.response.status().as_u16();
    if accepted.contains(&status) {
        return Ok(answer);
    }
    let message = error_message(&mut answer);
    let url = without_credentials(&answer.url);
    Err(match status {
        401 => RequestError::Unauthorized {
            registry: registry.to_owned(),
            scope: describe_scopes(scopes),
            status,
            message,
            had_credentials: !credential.is_anonymous(),
        },
        403 => RequestError::Denied {
            registry: registry.to_owned(),
            scope: describe_scopes(scopes),
            message,
            had_credentials: !credential.is_anonymous(),
        },
        404 => RequestError::NotFound {
            what: what(),
            url,
            message,
        },
        _ => RequestError::Status {
            url,
            status,
            message,
            attempts: answer.attempts,
        },
    })
}

/// The registry's `{"errors":[{"code","message"}]}` as one line, when there is one.
fn error_message(answer: &mut Answer) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let bytes = answer
        .response
        .body_mut()
        .with_config()
        .limit(ERROR_BODY_LIMIT)
        .read_to_vec()
        .ok()?;
    let parsed: Errors = serde_json::from_slice(&bytes).ok()?;
    let first = parsed.errors.into_iter().next()?;
    Some(match (first.code.is_empty(), first.message.is_empty()) {
        (false, false) => format!("{}: {}", first.code, first.message),
        (false, true) => first.code,
        (true, _) => first.message,
    })
}

/// A response header as text.
pub(super) fn header(response: &Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn read_limited(answer: &mut Answer, limit: u64) -> Result<Vec<u8>, RequestError> {
    let url = without_credentials(&answer.url);
    let mut bytes = Vec::new();
    answer
        .response
        .body_mut()
        .as_reader()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| RequestError::ReadBody {
            url: url.clone(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(RequestError::BodyTooLarge { url, limit });
    }
    Ok(bytes)
}
