//! The rootfs cache: each image's layers unpacked once, under `rootfs/<chain id>`, and shared
//! by every later run (runs write into an overlay, never here).
//!
//! Keyed by the OCI chain id of the diff_ids, so images sharing all their layers share a
//! rootfs whatever their manifests or compression. Built in a scratch directory and renamed
//! into place, so a directory under `rootfs/` is always complete; a per-chain lock makes
//! concurrent runs of the same image unpack it once.

use std::path::{Path, PathBuf};

use super::RunLayer;
use super::error::RunError;
use super::inroot::{Root, remove_tree};
use super::unpack::Unpacker;
use crate::cache::{Bucket, Cache};
use crate::oci::{BlobStore, Digest};

/// OCI chain id: `chain(0) = diff_id(0)`, `chain(n) = sha256(chain(n-1) + " " + diff_id(n))`.
pub(super) fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    let mut ids = diff_ids.iter();
    let mut chain = ids.next()?.clone();
    for diff_id in ids {
        chain = Digest::of_bytes(format!("{chain} {diff_id}").as_bytes());
    }
    Some(chain)
}

/// Key of the rootfs of `layers` (an image without layers gets the empty chain's key).
fn rootfs_key(layers: &[RunLayer]) -> String {
    let diff_ids: Vec<Digest> = layers.iter().map(|layer| layer.diff_id.clone()).collect();
    match chain_id(&diff_ids) {
        Some(chain) => chain.hex().to_owned(),
        None => "empty".to_owned(),
    }
}

/// A directory removed (whatever its modes) when dropped.
pub(super) struct ScratchDir(PathBuf);

impl ScratchDir {
    pub(super) fn new(path: PathBuf) -> Self {
        Self(path)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Best effort: leftovers in tmp/ are what `kiln cache prune` clears.
        let _ = remove_tree(&self.0);
    }
}

/// The cached rootfs of `layers`, unpacking it first when absent.
pub(super) fn ensure(
    cache: &Cache,
    layers: &[RunLayer],
    blobs: &BlobStore,
) -> Result<PathBuf, RunError> {
    let key = rootfs_key(layers);
    let target = cache.dir(Bucket::Rootfs).join(&key);
    if target.is_dir() {
        return Ok(target);
    }
    let _lock = cache
        .lock_exclusive(&format!("rootfs-{key}"))
        .map_err(|source| RunError::PrepareCache { source })?;
    if target.is_dir() {
        return Ok(target); // another run unpacked it while we waited
    }
    let scratch = cache
        .temp_dir("rootfs")
        .map_err(|source| RunError::PrepareCache { source })?
        .keep();
    let scratch = ScratchDir::new(scratch);
    let staging = scratch.path().join("rootfs");
    let store_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::StoreRootfs { path, source }
    };
    fs_err::create_dir(&staging).map_err(store_error(&staging))?;
    fs_err::set_permissions(
        &staging,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .map_err(store_error(&staging))?;
    let root = Root::open(&staging).map_err(store_error(&staging))?;
    let mut unpacker = Unpacker::new(&root);
    for layer in layers {
        unpacker.apply_layer(layer, blobs)?;
    }
    unpacker.finish()?;
    fs_err::rename(&staging, &target).map_err(store_error(&target))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_follows_the_oci_definition() {
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        assert_eq!(chain_id(&[]), None);
        assert_eq!(chain_id(std::slice::from_ref(&a)), Some(a.clone()));
        let expected = Digest::of_bytes(format!("{a} {b}").as_bytes());
        assert_eq!(chain_id(&[a.clone(), b.clone()]), Some(expected));
        assert_ne!(chain_id(&[a.clone(), b.clone()]), chain_id(&[b, a]));
    }
}
