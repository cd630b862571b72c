//! Path resolution confined to a root directory, the way the kernel resolves paths for a
//! process chrooted there: symlinks are followed *inside* the root (an absolute target starts
//! over at the root, `..` stops at it), so no layer entry can reach a host path through a
//! symlink planted by an earlier entry. Every step is an `openat` with `O_NOFOLLOW` relative to
//! a directory descriptor, never a host path lookup.
//!
//! Manual walking rather than `openat2(RESOLVE_IN_ROOT)`: it also creates missing directories
//! where a symlink points (as containerd does for dangling links such as `/var/run -> /run`)
//! and works on kernels and seccomp profiles without `openat2`. Nobody else writes into a
//! rootfs while it is unpacked (it lives in a private temp dir), so walking is race-free.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, SFlag, fchmodat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// How many symlinks one resolution may follow, as Linux allows (`MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// Mode of directories created only because an entry needed them as a parent.
pub(super) const IMPLICIT_DIR_MODE: u32 = 0o755;

/// A directory treated as `/`.
#[derive(Debug)]
pub(super) struct Root {
    fd: OwnedFd,
}

/// What to do when a directory on the way does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Missing {
    /// Fail with `ENOENT`.
    Fail,
    /// Create it (mode [`IMPLICIT_DIR_MODE`]).
    Create,
}

impl Root {
    /// Open `path` as a root.
    pub(super) fn open(path: &Path) -> io::Result<Self> {
        let fd = openat(
            AT_FDCWD,
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self { fd })
    }

    /// Resolve the directory `components` name (relative to the root), following symlinks
    /// inside the root. Returns an `O_PATH` descriptor usable as the base of `*at` calls.
    pub(super) fn dir(&self, components: &[OsString], missing: Missing) -> io::Result<OwnedFd> {
        let mut stack = vec![self.fd.try_clone()?];
        let mut queue: VecDeque<OsString> = components.iter().cloned().collect();
        let mut links_followed = 0;
        while let Some(name) = queue.pop_front() {
            match name.as_bytes() {
                b"" | b"." => continue,
                b".." => {
                    if stack.len() > 1 {
                        stack.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let current = stack.last().expect("the root is never popped");
            let step = match open_nofollow(current, &name) {
                Ok(step) => step,
                Err(Errno::ENOENT) if missing == Missing::Create => {
                    match mkdirat(current, name.as_os_str(), Mode::from_bits_truncate(0o700)) {
                        Ok(()) => fchmodat(
                            current,
                            name.as_os_str(),
                            Mode::from_bits_truncate(IMPLICIT_DIR_MODE),
                            FchmodatFlags::FollowSymlink,
                        )?,
                        Err(Errno::EEXIST) => {}
                        Err(error) => return Err(error.into()),
                    }
                    open_nofollow(current, &name)?
                }
                Err(error) => return Err(error.into()),
            };
            let kind = file_type(&nix::sys::stat::fstat(&step)?);
            if kind == SFlag::S_IFLNK {
                links_followed += 1;
                if links_followed > MAX_SYMLINKS {
                    return Err(Errno::ELOOP.into());
                }
                let target = readlinkat(current, name.as_os_str())?;
                if target.as_bytes().starts_with(b"/") {
                    stack.truncate(1);
                }
                for part in split_components(target.as_bytes()).into_iter().rev() {
                    queue.push_front(part);
                }
            } else if kind == SFlag::S_IFDIR {
                stack.push(step);
            } else {
                return Err(Errno::ENOTDIR.into());
            }
        }
        Ok(stack.pop().expect("the root is never popped"))
    }

    /// Open the file at `components` for reading, following symlinks inside the root.
    pub(super) fn open_file(&self, components: &[OsString]) -> io::Result<std::fs::File> {
        let (name, parents) = components.split_last().ok_or(Errno::EISDIR)?;
        let mut queue = parents.to_vec();
        let mut target = name.clone();
        for _ in 0..MAX_SYMLINKS {
            let dir = self.dir(&queue, Missing::Fail)?;
            match openat(
                &dir,
                target.as_os_str(),
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => return Ok(std::fs::File::from(fd)),
                Err(Errno::ELOOP) => {
                    let link = readlinkat(&dir, target.as_os_str())?;
                    let mut next = if link.as_bytes().starts_with(b"/") {
                        Vec::new()
                    } else {
                        queue
                    };
                    next.extend(split_components(link.as_bytes()));
                    let Some(last) = next.pop() else {
                        return Err(Errno::EISDIR.into());
                    };
                    queue = next;
                    target = last;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(Errno::ELOOP.into())
    }

    /// Whether something exists at `components` (symlinks followed inside the root).
    pub(super) fn exists(&self, components: &[OsString]) -> bool {
        let Some((name, parents)) = components.split_last() else {
            return true;
        };
        let Ok(dir) = self.dir(parents, Missing::Fail) else {
            return false;
        };
        match lstat_at(&dir, name) {
            Ok(Some(stat)) if file_type(&stat) == SFlag::S_IFLNK => {
                self.dir(components, Missing::Fail).is_ok() || self.open_file(components).is_ok()
            }
            Ok(Some(_)) => true,
            _ => false,
        }
    }

    /// Names in the directory at `components`, sorted (empty when it does not exist).
    pub(super) fn list(&self, components: &[OsString]) -> Vec<String> {
        let Ok(dir) = self.dir(components, Missing::Fail) else {
            return Vec::new();
        };
        let Ok(dir) = openat(
            &dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            return Vec::new();
        };
        let Ok(mut dir) = Dir::from_fd(dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = dir
            .iter()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name != "." && name != "..")
            .collect();
        names.sort();
        names
    }
}

/// Split a path into its components, dropping empty ones (a leading `/` gives none).
pub(super) fn split_components(path: &[u8]) -> Vec<OsString> {
    path.split(|byte| *byte == b'/')
        .filter(|part| !part.is_empty())
        .map(|part| OsStr::from_bytes(part).to_os_string())
        .collect()
}

fn open_nofollow(dir: impl AsFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The file type bits of a stat result.
pub(super) fn file_type(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
}

/// `lstat` of `name` in `dir`; `None` when it does not exist.
pub(super) fn lstat_at(dir: impl AsFd, name: &OsStr) -> io::Result<Option<FileStat>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(stat)),
        Err(Errno::ENOENT) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Remove `name` in `dir`, recursively when it is a directory, never following symlinks.
/// Directories we may not read or write (images ship `0555` and `0000` ones) are made
/// accessible first: we own everything we unpacked.
pub(super) fn remove_at(dir: impl AsFd, name: &OsStr) -> io::Result<()> {
    let Some(stat) = lstat_at(dir.as_fd(), name)? else {
        return Ok(());
    };
    if file_type(&stat) != SFlag::S_IFDIR {
        return unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(Into::into);
    }
    if stat.st_mode & 0o700 != 0o700 {
        fchmodat(
            dir.as_fd(),
            name,
            Mode::from_bits_truncate(0o700),
            FchmodatFlags::FollowSymlink,
        )?;
    }
    let child = openat(
        dir.as_fd(),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    clear_dir(&child, &mut |_| false)?;
    unlinkat(dir, name, UnlinkatFlags::RemoveDir).map_err(Into::into)
}

/// Remove the children of the open directory `dir` for which `keep(name)` is false.
pub(super) fn clear_dir(dir: &OwnedFd, keep: &mut dyn FnMut(&OsStr) -> bool) -> io::Result<()> {
    let mut listing = Dir::from_fd(dir.try_clone()?)?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name != "." && name != ".." && !keep(name) {
            names.push((name.to_os_string(), entry.file_type()));
        }
    }
    for (name, kind) in names {
        if kind == Some(Type::Directory) || kind.is_none() {
            remove_at(dir, &name)?;
        } else {
            unlinkat(dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir)?;
        }
    }
    Ok(())
}

/// Remove a whole tree at a host path (per-run state, failed unpacks), coping with
/// unwritable directories. A missing path is not an error.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Errno::EINVAL.into());
    };
    let parent = openat(
        AT_FDCWD,
        parent,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    remove_at(&parent, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn parts(path: &str) -> Vec<OsString> {
        split_components(path.as_bytes())
    }

    #[test]
    fn absolute_and_relative_symlinks_stay_inside() {
        let outside = tempfile::tempdir().unwrap();
        let root_dir = tempfile::tempdir().unwrap();
        let root = Root::open(root_dir.path()).unwrap();
        symlink(outside.path(), root_dir.path().join("abs")).unwrap();
        symlink("../../../../..", root_dir.path().join("up")).unwrap();
        let created = root.dir(&parts("abs/x"), Missing::Create).unwrap();
        drop(created);
        root.dir(&parts("up/y"), Missing::Create).unwrap();
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        let inside = root_dir
            .path()
            .join(outside.path().strip_prefix("/").unwrap())
            .join("x");
        assert!(inside.is_dir());
        assert!(root_dir.path().join("y").is_dir());
    }

    #[test]
    fn symlink_loops_fail() {
        let root_dir = tempfile::tempdir().unwrap();
        symlink("b", root_dir.path().join("a")).unwrap();
        symlink("a", root_dir.path().join("b")).unwrap();
        let root = Root::open(root_dir.path()).unwrap();
        let error = root.dir(&parts("a/c"), Missing::Create).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn open_file_follows_links_inside_root() {
        let root_dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(root_dir.path().join("etc")).unwrap();
        std::fs::write(root_dir.path().join("etc/real"), b"inside").unwrap();
        symlink("/etc/real", root_dir.path().join("etc/passwd")).unwrap();
        let root = Root::open(root_dir.path()).unwrap();
        let content =
            std::io::read_to_string(root.open_file(&parts("etc/passwd")).unwrap()).unwrap();
        assert_eq!(content, "inside");
        assert!(root.exists(&parts("/etc/passwd")));
        assert!(!root.exists(&parts("/etc/shadow")));
    }

    #[test]
    fn remove_tree_handles_unwritable_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("locked/inner")).unwrap();
        std::fs::write(tree.join("locked/inner/file"), b"x").unwrap();
        std::fs::set_permissions(
            tree.join("locked/inner"),
            std::os::unix::fs::PermissionsExt::from_mode(0o000),
        )
        .unwrap();
        std::fs::set_permissions(
            tree.join("locked"),
            std::os::unix::fs::PermissionsExt::from_mode(0o555),
        )
        .unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
        remove_tree(&tree).unwrap();
    }
}
