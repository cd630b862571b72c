//! The blocking client: options, construction, and the single-request operations (manifests,
//! blob HEAD, mounts). The request loop lives in `exchange.rs`, downloads in `pull.rs`,
//! uploads in `push.rs`.

use std::sync::Arc;

use ureq::http::Method;

use super::auth::{AuthState, Scope};
use super::credentials::{Credential, CredentialStore};
use super::error::{RegistryError, RequestError};
use super::exchange::{Exchange, RequestBody, expect, header, read_limited};
use super::manifest::{MANIFEST_ACCEPT, MANIFEST_SIZE_LIMIT, ManifestKind, effective_media_type};
use super::reference::Reference;
use super::retry::RetryPolicy;
use super::transport::{Transport, TransportOptions, without_credentials};
use crate::oci::Digest;

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
}
