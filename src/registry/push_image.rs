//! Whole-image pushes: per blob `HEAD` → cross-repository mount → upload, blobs in parallel,
//! manifest last. A blob need not be in the local store when a repository is known to have it
//! ([`BlobOrigins`]): it is then found present or mounted, and only downloaded (to be
//! uploaded) when the registry can do neither, e.g. when it lives on another registry.

use super::auth::Scope;
use super::client::{MountOutcome, RegistryClient};
use super::credentials::Credential;
use super::error::RegistryError;
use super::origins::BlobOrigins;
use super::push::{StoredBlob, Upload};
use super::reference::Reference;
use crate::oci::{BlobStore, Digest, OciError};

/// What happened to each blob of a pushed image, and the manifest's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Blobs whose bytes were sent.
    pub uploaded: Vec<Digest>,
    /// Blobs linked from another repository without sending bytes.
    pub mounted: Vec<Digest>,
    /// Blobs the repository already had.
    pub skipped: Vec<Digest>,
    /// Bytes of blob content sent.
    pub bytes_uploaded: u64,
    /// Digest of the manifest as stored.
    pub manifest_digest: Digest,
}

/// How one blob reached the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlobOutcome {
    Uploaded,
    Mounted,
    Skipped,
}

/// What every blob of one push shares.
struct PushPlan<'a> {
    target: &'a Reference,
    store: &'a BlobStore,
    origins: &'a BlobOrigins,
    scopes: &'a [Scope],
    credential: &'a Credential,
}

impl RegistryClient {
    /// Push an image whose blobs are all in `store`: each blob is checked (`HEAD`), mounted
    /// from `mount_from` on the same registry when given, else uploaded; up to
    /// `push_concurrency` at once. The manifest goes last, so a failed push never leaves the
    /// tag pointing at a missing blob.
    pub fn push_image(
        &self,
        reference: &Reference,
        manifest_bytes: &[u8],
        media_type: &str,
        blobs: &[(Digest, u64)],
        store: &BlobStore,
        mount_from: Option<&str>,
    ) -> Result<PushReport, RegistryError> {
        let mut origins = BlobOrigins::new();
        if let Some(from) = mount_from {
            let repository = reference.in_repository(from)?;
            origins.add_all(blobs.iter().map(|(digest, _)| digest), &repository);
        }
        self.push_image_with(
            reference,
            manifest_bytes,
            media_type,
            blobs,
            store,
            &origins,
        )
    }

    /// Push an image whose blobs are in `store` or in a repository `origins` names. A blob in
    /// the target repository is skipped; one whose origin is on the same registry is mounted;
    /// anything else is uploaded, after downloading it from its origin if it is not local.
    pub fn push_image_with(
        &self,
        reference: &Reference,
        manifest_bytes: &[u8],
        media_type: &str,
        blobs: &[(Digest, u64)],
        store: &BlobStore,
        origins: &BlobOrigins,
    ) -> Result<PushReport, RegistryError> {
        let mut unique: Vec<(Digest, u64)> = Vec::with_capacity(blobs.len());
        for (digest, size) in blobs {
            if !unique.iter().any(|(seen, _)| seen == digest) {
                unique.push((digest.clone(), *size));
            }
        }
        // Fail before any network traffic when a blob is neither local nor known elsewhere.
        for (digest, _) in &unique {
            if !store.contains(digest) && !origins.contains(digest) {
                return Err(RegistryError::ReadUploadSource {
                    digest: digest.clone(),
                    source: Box::new(OciError::MissingBlob {
                        location: store.location().to_owned(),
                        digest: digest.clone(),
                    }),
                });
            }
        }
        let credential = self.credential(reference)?;
        // One scope set for every request of this push, so one token serves them all.
        let mut scopes = vec![Scope::push(reference.repository())];
        for (digest, _) in &unique {
            if let Some(origin) = origins.get(digest)
                && mountable(reference, origin)
            {
                let scope = Scope::pull(origin.repository());
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
        }
        let plan = PushPlan {
            target: reference,
            store,
            origins,
            scopes: &scopes,
            credential: &credential,
        };
        let outcomes = self.for_each_bounded(&unique, |(digest, size)| {
            self.push_one(&plan, digest, *size)
        })?;
        let manifest_digest =
            self.put_manifest_as(reference, manifest_bytes, media_type, &scopes, &credential)?;
        let mut report = PushReport {
            uploaded: Vec::new(),
            mounted: Vec::new(),
            skipped: Vec::new(),
            bytes_uploaded: 0,
            manifest_digest,
        };
        for ((digest, size), outcome) in unique.into_iter().zip(outcomes) {
            match outcome {
                BlobOutcome::Uploaded => {
                    report.bytes_uploaded += size;
                    report.uploaded.push(digest);
                }
                BlobOutcome::Mounted => report.mounted.push(digest),
                BlobOutcome::Skipped => report.skipped.push(digest),
            }
        }
        Ok(report)
    }

    fn push_one(
        &self,
        plan: &PushPlan<'_>,
        digest: &Digest,
        size: u64,
    ) -> Result<BlobOutcome, RegistryError> {
        let target = plan.target;
        if self.blob_exists_as(target, digest, plan.scopes, plan.credential)? {
            return Ok(BlobOutcome::Skipped);
        }
        let origin = plan.origins.get(digest);
        let mut session = None;
        if let Some(origin) = origin.filter(|origin| mountable(target, origin)) {
            match self.mount_blob_as(
                target,
                origin.repository(),
                digest,
                plan.scopes,
                plan.credential,
            )? {
                MountOutcome::Mounted => return Ok(BlobOutcome::Mounted),
                MountOutcome::UploadStarted { location } => session = Some(location),
            }
        }
        if !plan.store.contains(digest)
            && let Some(origin) = origin
        {
            // Neither present nor mountable: the bytes have to travel through this machine.
            self.pull_blob(origin, digest, Some(size), plan.store)?;
        }
        let source = StoredBlob {
            store: plan.store,
            digest,
            size,
        };
        self.upload(
            &Upload {
                repository: target,
                digest,
                size,
                source: &source,
                scopes: plan.scopes,
                credential: plan.credential,
            },
            session,
        )?;
        Ok(BlobOutcome::Uploaded)
    }
}

/// Whether a blob in `origin` can be mounted into `target`: another repository on the same
/// registry.
fn mountable(target: &Reference, origin: &Reference) -> bool {
    origin.registry() == target.registry() && origin.repository() != target.repository()
}
