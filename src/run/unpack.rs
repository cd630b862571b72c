//! Apply layer tars onto a root directory: OCI whiteouts, no escapes, no device nodes.
//!
//! Ownership in the tar is not applied: an unprivileged user cannot chown, and a rootfs owned
//! by the caller is what lets the runner map the caller to the image user so the app sees its
//! files as its own (see `idmap`). Setuid/setgid bits are dropped for the same reason (they
//! could only ever switch to the caller's own id) and so no setuid binary of an untrusted
//! image sits on the host. Directories keep write access for us while layers are applied;
//! their exact modes are set when the last layer is in.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::{self, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, futimens, mkdirat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{linkat, mkfifoat, symlinkat};

use super::RunLayer;
use super::error::RunError;
use super::inroot::{Missing, Root, clear_dir, file_type, lstat_at, remove_at, split_components};
use crate::oci::{BlobStore, HashingReader};

/// Prefix of OCI whiteout files.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Name of the OCI opaque-directory marker.
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Permission bits kept from the tar (setuid/setgid dropped, sticky kept).
const KEPT_MODE_BITS: u32 = 0o1777;

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

impl LayerCompression {
    /// Recognize OCI and Docker layer media types (distributable or not).
    pub(super) fn from_media_type(media_type: &str) -> Option<Self> {
        let is_layer = media_type.starts_with("application/vnd.oci.image.layer.")
            || media_type.starts_with("application/vnd.docker.image.rootfs.");
        if !is_layer {
            return None;
        }
        if media_type.ends_with(".tar") || media_type.ends_with(".diff.tar") {
            Some(Self::None)
        } else if media_type.ends_with("+gzip") || media_type.ends_with(".gzip") {
            Some(Self::Gzip)
        } else if media_type.ends_with("+zstd") || media_type.ends_with(".zstd") {
            Some(Self::Zstd)
        } else {
            None
        }
    }
}

/// Applies layers in order onto one root.
pub(super) struct Unpacker<'root> {
    root: &'root Root,
    /// Directories whose final mode withholds access from their owner, set last.
    restricted_dirs: Vec<(Vec<OsString>, u32)>,
}

impl<'root> Unpacker<'root> {
    pub(super) fn new(root: &'root Root) -> Self {
        Self {
            root,
            restricted_dirs: Vec::new(),
        }
    }

    /// Read the layer blob, apply its entries and check its diff_id.
    pub(super) fn apply_layer(
        &mut self,
        layer: &RunLayer,
        blobs: &BlobStore,
    ) -> Result<(), RunError> {
        let compression =
            LayerCompression::from_media_type(&layer.media_type).ok_or_else(|| {
                RunError::UnsupportedLayerMediaType {
                    digest: layer.digest.clone(),
                    media_type: layer.media_type.clone(),
                }
            })?;
        let blob =
            blobs
                .open_verified(&layer.digest, None)
                .map_err(|source| RunError::OpenLayer {
                    digest: layer.digest.clone(),
                    source,
                })?;
        let read_error = |source| RunError::ReadLayer {
            digest: layer.digest.clone(),
            source,
        };
        let decompressed: Box<dyn Read> = match compression {
            LayerCompression::None => Box::new(blob),
            LayerCompression::Gzip => {
                Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(blob)))
            }
            LayerCompression::Zstd => Box::new(zstd::Decoder::new(blob).map_err(read_error)?),
        };
        let mut tar_stream = HashingReader::new(decompressed);
        let mut written = HashSet::new();
        {
            let mut archive = tar::Archive::new(&mut tar_stream);
            for entry in archive.entries().map_err(read_error)? {
                let mut entry = entry.map_err(read_error)?;
                self.apply_entry(&mut entry, &mut written, layer)?;
            }
        }
        // The tar reader stops at the end-of-archive marker; hash the padding too.
        io::copy(&mut tar_stream, &mut io::sink()).map_err(read_error)?;
        let (actual, _) = tar_stream.finish();
        if actual != layer.diff_id {
            return Err(RunError::DiffIdMismatch {
                digest: layer.digest.clone(),
                expected: layer.diff_id.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Set the modes withheld while unpacking, deepest first so parents stay enterable.
    pub(super) fn finish(mut self) -> Result<(), RunError> {
        self.restricted_dirs
            .sort_by_key(|(components, _)| std::cmp::Reverse(components.len()));
        for (components, mode) in &self.restricted_dirs {
            let Some((name, parents)) = components.split_last() else {
                continue;
            };
            let result = self.root.dir(parents, Missing::Fail).and_then(|parent| {
                match lstat_at(&parent, name)? {
                    Some(stat) if file_type(&stat) == SFlag::S_IFDIR => fchmodat(
                        &parent,
                        name.as_os_str(),
                        Mode::from_bits_truncate(*mode),
                        FchmodatFlags::FollowSymlink,
                    )
                    .map_err(io::Error::from),
                    _ => Ok(()),
                }
            });
            match result {
                Ok(()) => {}
                Err(error)
                    if matches!(error.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {}
                Err(source) => {
                    return Err(RunError::WriteRootfs {
                        path: display(components),
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    fn apply_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        written: &mut HashSet<Vec<OsString>>,
        layer: &RunLayer,
    ) -> Result<(), RunError> {
        let raw_path = entry.path_bytes().into_owned();
        let components = safe_components(&raw_path).ok_or_else(|| RunError::UnsafeLayerEntry {
            digest: layer.digest.clone(),
            path: String::from_utf8_lossy(&raw_path).into_owned(),
        })?;
        let Some((name, parents)) = components.split_last() else {
            return Ok(()); // the root itself
        };
        let write_error = |source: io::Error| RunError::WriteRootfs {
            path: display(&components),
            source,
        };
        if let Some(hidden) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX) {
            if name.as_bytes() == OPAQUE_MARKER {
                return self.opaque(parents, written).map_err(write_error);
            }
            let mut target = parents.to_vec();
            target.push(OsStr::from_bytes(hidden).to_os_string());
            if !written.contains(&target) {
                self.whiteout(parents, OsStr::from_bytes(hidden))
                    .map_err(write_error)?;
            }
            return Ok(());
        }
        let header = entry.header();
        let mode = header.mode().map_err(write_error)? & KEPT_MODE_BITS;
        let mtime = header.mtime().unwrap_or(0);
        let kind = header.entry_type();
        let link_name = entry.link_name_bytes().map(|name| name.into_owned());
        let parent = self
            .root
            .dir(parents, Missing::Create)
            .map_err(write_error)?;
        match kind {
            tar::EntryType::Directory => self
                .create_dir(&parent, name, &components, mode)
                .map_err(write_error)?,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                create_file(&parent, name, entry, mode, mtime).map_err(write_error)?
            }
            tar::EntryType::Symlink => {
                let target = link_name.unwrap_or_default();
                replace_existing(&parent, name, false).map_err(write_error)?;
                symlinkat(OsStr::from_bytes(&target), &parent, name.as_os_str())
                    .map_err(|e| write_error(e.into()))?;
                let time = TimeSpec::new(mtime as i64, 0);
                // Some filesystems refuse symlink times; they do not matter for running.
                let _ = utimensat(
                    &parent,
                    name.as_os_str(),
                    &time,
                    &time,
                    UtimensatFlags::NoFollowSymlink,
                );
            }
            tar::EntryType::Link => {
                let target = link_name.unwrap_or_default();
                self.hard_link(&parent, name, &components, &target, layer)?
            }
            tar::EntryType::Fifo => {
                replace_existing(&parent, name, false).map_err(write_error)?;
                mkfifoat(&parent, name.as_os_str(), Mode::from_bits_truncate(0o600))
                    .map_err(|e| write_error(e.into()))?;
                fchmodat(
                    &parent,
                    name.as_os_str(),
                    Mode::from_bits_truncate(mode),
                    FchmodatFlags::FollowSymlink,
                )
                .map_err(|e| write_error(e.into()))?;
            }
            // Device nodes cannot be created unprivileged and have no business in an app image;
            // the runner provides its own minimal /dev.
            _ => return Ok(()),
        }
        written.insert(components);
        Ok(())
    }

    fn create_dir(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        components: &[OsString],
        mode: u32,
    ) -> io::Result<()> {
        if !replace_existing(parent, name, true)? {
            match mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(error) => return Err(error.into()),
            }
        }
        fchmodat(
            parent,
            name,
            Mode::from_bits_truncate(mode | 0o700),
            FchmodatFlags::FollowSymlink,
        )?;
        if mode & 0o700 != 0o700 {
            self.restricted_dirs.push((components.to_vec(), mode));
        }
        Ok(())
    }

    fn hard_link(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        components: &[OsString],
        target: &[u8],
        layer: &RunLayer,
    ) -> Result<(), RunError> {
        let unsafe_entry = || RunError::UnsafeLayerEntry {
            digest: layer.digest.clone(),
            path: format!(
                "{} (hard link to {})",
                display(components),
                String::from_utf8_lossy(target)
            ),
        };
        let target_components = safe_components(target).ok_or_else(unsafe_entry)?;
        if target_components == components {
            return Ok(());
        }
        let (target_name, target_parents) =
            target_components.split_last().ok_or_else(unsafe_entry)?;
        let link_error = |source: io::Error| RunError::HardLink {
            path: display(components),
            target: display(&target_components),
            source,
        };
        // The target's parent is resolved inside the root like any path; the target itself is
        // never followed (linkat without AT_SYMLINK_FOLLOW links a symlink, not what it names).
        let target_dir = self
            .root
            .dir(target_parents, Missing::Fail)
            .map_err(link_error)?;
        if lstat_at(&target_dir, target_name)
            .map_err(link_error)?
            .is_none()
        {
            return Err(link_error(Errno::ENOENT.into()));
        }
        replace_existing(parent, name, false).map_err(|source| RunError::WriteRootfs {
            path: display(components),
            source,
        })?;
        linkat(
            &target_dir,
            target_name.as_os_str(),
            parent,
            name,
            AtFlags::empty(),
        )
        .map_err(|error| link_error(error.into()))
    }

    fn whiteout(&self, parents: &[OsString], hidden: &OsStr) -> io::Result<()> {
        match self.root.dir(parents, Missing::Fail) {
            Ok(dir) => remove_at(&dir, hidden),
            Err(error) if matches!(error.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Hide everything lower layers put in the directory; keep what this layer wrote.
    fn opaque(&self, parents: &[OsString], written: &HashSet<Vec<OsString>>) -> io::Result<()> {
        let dir = self.root.dir(parents, Missing::Create)?;
        clear_lower(&dir, &mut parents.to_vec(), written)
    }
}

fn clear_lower(
    dir: &OwnedFd,
    prefix: &mut Vec<OsString>,
    written: &HashSet<Vec<OsString>>,
) -> io::Result<()> {
    let readable = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut kept_dirs = Vec::new();
    clear_dir(&readable, &mut |name| {
        prefix.push(name.to_os_string());
        let keep = written.contains(prefix.as_slice());
        prefix.pop();
        if keep {
            kept_dirs.push(name.to_os_string());
        }
        keep
    })?;
    for name in kept_dirs {
        if let Some(stat) = lstat_at(&readable, &name)?
            && file_type(&stat) == SFlag::S_IFDIR
        {
            let child = openat(
                &readable,
                name.as_os_str(),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            prefix.push(name);
            clear_lower(&child, prefix, written)?;
            prefix.pop();
        }
    }
    Ok(())
}

/// Remove whatever is at `name` unless both it and the new entry are directories (then the
/// directory is kept and merged into). Returns whether a directory was kept.
fn replace_existing(parent: impl AsFd, name: &OsStr, new_is_dir: bool) -> io::Result<bool> {
    match lstat_at(parent.as_fd(), name)? {
        None => Ok(false),
        Some(stat) if new_is_dir && file_type(&stat) == SFlag::S_IFDIR => Ok(true),
        Some(_) => remove_at(parent, name).map(|()| false),
    }
}

fn create_file<R: Read>(
    parent: &OwnedFd,
    name: &OsStr,
    content: &mut R,
    mode: u32,
    mtime: u64,
) -> io::Result<()> {
    replace_existing(parent, name, false)?;
    let fd = openat(
        parent,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    let mut file = std::fs::File::from(fd);
    io::copy(content, &mut file)?;
    fchmod(&file, Mode::from_bits_truncate(mode))?;
    let time = TimeSpec::new(mtime as i64, 0);
    futimens(&file, &time, &time)?;
    Ok(())
}

/// Components of a tar path relative to the root, or `None` when it has a `..` component
/// (no tool writes those; they only exist to escape, so the layer is refused).
pub(super) fn safe_components(path: &[u8]) -> Option<Vec<OsString>> {
    let components: Vec<OsString> = split_components(path)
        .into_iter()
        .filter(|part| part != ".")
        .collect();
    if components.iter().any(|part| part == "..") {
        return None;
    }
    Some(components)
}

fn display(components: &[OsString]) -> String {
    let mut text = String::from("/");
    let parts: Vec<String> = components
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    text.push_str(&parts.join("/"));
    text
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
