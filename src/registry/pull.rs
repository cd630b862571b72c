//! Downloads: single blobs streamed into the store with verification, and whole images: resolve an index to linux/amd64, then fetch the config and layers
//! into the blob store, verified, skipping what the store already has.

use std::io::{self, Read, Write};

use ureq::http::Method;

use super::auth::Scope;
use super::client::{FetchedManifest, RegistryClient};
use super::credentials::Credential;
use super::error::{RegistryError, RequestError};
use super::exchange::{Exchange, RequestBody, expect};
use super::manifest::{BlobDescriptor, ImageManifestParts, IndexParts, ManifestKind};
use super::reference::Reference;
use super::retry::is_retryable_io;
use crate::oci::{BlobStore, Digest, OciError};

/// Pulled blobs are read from the network in pieces of this size.
const PULL_BUFFER: usize = 256 * 1024;

/// An image manifest found through a reference, with its index when there was one.
#[derive(Debug, Clone)]
pub struct ResolvedManifest {
    /// The image manifest (never an index).
    pub manifest: FetchedManifest,
    /// Its config and layers.
    pub parts: ImageManifestParts,
    /// The index the reference named, when it named one.
    pub index_digest: Option<Digest>,
}

/// An image now complete in the blob store.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The reference pinned to the image manifest's digest.
    pub reference: Reference,
    /// The manifest's exact bytes (also stored in the blob store).
    pub manifest_bytes: Vec<u8>,
    /// Their digest.
    pub manifest_digest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// The index the reference named, if any.
    pub index_digest: Option<Digest>,
    /// The config blob.
    pub config: BlobDescriptor,
    /// Layer blobs in order.
    pub layers: Vec<BlobDescriptor>,
    /// Blobs transferred by this pull.
    pub fetched: Vec<Digest>,
    /// Blobs the store already had.
    pub reused: Vec<Digest>,
}

impl RegistryClient {
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

    /// Fetch the image manifest a reference names, following an index to its linux/amd64
    /// entry.
    pub fn resolve_image_manifest(
        &self,
        reference: &Reference,
    ) -> Result<ResolvedManifest, RegistryError> {
        let fetched = self.get_manifest(reference)?;
        match ManifestKind::of(&fetched.media_type) {
            Some(ManifestKind::Image) => {
                let parts = parse_image(reference, &fetched.bytes)?;
                Ok(ResolvedManifest {
                    manifest: fetched,
                    parts,
                    index_digest: None,
                })
            }
            Some(ManifestKind::Index) => {
                let index: IndexParts =
                    serde_json::from_slice(&fetched.bytes).map_err(|source| {
                        RegistryError::ParseManifest {
                            reference: reference.to_string(),
                            source,
                        }
                    })?;
                let entry =
                    index
                        .linux_amd64()
                        .ok_or_else(|| RegistryError::NoMatchingPlatform {
                            reference: reference.to_string(),
                        })?;
                let pinned = reference.with_digest(entry.digest.clone());
                let manifest = self.get_manifest(&pinned)?;
                if ManifestKind::of(&manifest.media_type) != Some(ManifestKind::Image) {
                    return Err(RegistryError::UnsupportedManifest {
                        reference: pinned.to_string(),
                        media_type: manifest.media_type,
                    });
                }
                let parts = parse_image(&pinned, &manifest.bytes)?;
                Ok(ResolvedManifest {
                    manifest,
                    parts,
                    index_digest: Some(fetched.digest),
                })
            }
            None => Err(RegistryError::UnsupportedManifest {
                reference: reference.to_string(),
                media_type: fetched.media_type,
            }),
        }
    }

    /// Pull an image into `store`: manifest, config and layers, each verified against its
    /// digest; blobs already present are not transferred again.
    pub fn pull_image(
        &self,
        reference: &Reference,
        store: &BlobStore,
    ) -> Result<PulledImage, RegistryError> {
        let resolved = self.resolve_image_manifest(reference)?;
        let credential = self.credential(reference)?;
        let mut blobs: Vec<&BlobDescriptor> = Vec::with_capacity(resolved.parts.layers.len() + 1);
        for descriptor in std::iter::once(&resolved.parts.config).chain(&resolved.parts.layers) {
            if !blobs.iter().any(|seen| seen.digest == descriptor.digest) {
                blobs.push(descriptor);
            }
        }
        let (reused, missing): (Vec<&BlobDescriptor>, Vec<&BlobDescriptor>) = blobs
            .into_iter()
            .partition(|descriptor| store.contains(&descriptor.digest));
        self.for_each_bounded(&missing, |descriptor| {
            self.pull_blob_as(
                reference,
                &descriptor.digest,
                Some(descriptor.size),
                store,
                &credential,
            )
        })?;
        let fetched: Vec<Digest> = missing
            .iter()
            .map(|descriptor| descriptor.digest.clone())
            .collect();
        let reused: Vec<Digest> = reused
            .iter()
            .map(|descriptor| descriptor.digest.clone())
            .collect();
        store
            .put_bytes(&resolved.manifest.bytes)
            .map_err(|source| RegistryError::StoreBlob {
                repository: reference.repository().to_owned(),
                digest: resolved.manifest.digest.clone(),
                source: Box::new(source),
            })?;
        Ok(PulledImage {
            reference: reference.with_digest(resolved.manifest.digest.clone()),
            manifest_bytes: resolved.manifest.bytes,
            manifest_digest: resolved.manifest.digest,
            media_type: resolved.manifest.media_type,
            index_digest: resolved.index_digest,
            config: resolved.parts.config,
            layers: resolved.parts.layers,
            fetched,
            reused,
        })
    }
}

impl RegistryClient {
    /// Fetch only an image's manifest and config into `store` (verified), leaving its layers
    /// on the registry: enough to read labels and plan reuse (previous images, rebase).
    pub fn pull_manifest_and_config(
        &self,
        reference: &Reference,
        store: &BlobStore,
    ) -> Result<PulledImage, RegistryError> {
        let resolved = self.resolve_image_manifest(reference)?;
        let config = &resolved.parts.config;
        let fetched = if store.contains(&config.digest) {
            Vec::new()
        } else {
            self.pull_blob(reference, &config.digest, Some(config.size), store)?;
            vec![config.digest.clone()]
        };
        store
            .put_bytes(&resolved.manifest.bytes)
            .map_err(|source| RegistryError::StoreBlob {
                repository: reference.repository().to_owned(),
                digest: resolved.manifest.digest.clone(),
                source: Box::new(source),
            })?;
        Ok(PulledImage {
            reference: reference.with_digest(resolved.manifest.digest.clone()),
            manifest_bytes: resolved.manifest.bytes,
            manifest_digest: resolved.manifest.digest,
            media_type: resolved.manifest.media_type,
            index_digest: resolved.index_digest,
            config: resolved.parts.config,
            layers: resolved.parts.layers,
            fetched,
            reused: Vec::new(),
        })
    }
}

fn parse_image(reference: &Reference, bytes: &[u8]) -> Result<ImageManifestParts, RegistryError> {
    serde_json::from_slice(bytes).map_err(|source| RegistryError::ParseManifest {
        reference: reference.to_string(),
        source,
    })
}
