//! Turning a directory on disk into layer entries.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::entry::{Entry, EntryKind, FileSource, LayerEntries, Owner};
use super::error::LayerError;

/// How files from disk become entries.
#[derive(Debug, Clone, Copy)]
pub struct DirOptions {
    /// Owner of every entry.
    pub owner: Owner,
    /// Normalize modes (dirs 0755, files 0644 or 0755 when executable by the owner) instead
    /// of keeping them from disk; app and buildpack content is normalized so the umask and
    /// checkout of the build machine cannot change digests.
    pub normalize_modes: bool,
}

impl DirOptions {
    /// App and buildpack content: owned by the stack user, normalized modes.
    pub const APP: DirOptions = DirOptions {
        owner: Owner::CNB,
        normalize_modes: true,
    };
}

/// Normalized permission bits for a file or directory.
pub fn normalized_mode(is_dir: bool, disk_mode: u32) -> u32 {
    if is_dir || disk_mode & 0o100 != 0 {
        0o755
    } else {
        0o644
    }
}

/// Entries for everything under `root` (not `root` itself) that `keep` accepts; `keep` gets
/// the path relative to `root` and whether it is a directory. Skipped directories are not
/// descended into. Sockets, FIFOs and device nodes are skipped.
pub fn entries_from_dir(
    root: &Path,
    options: DirOptions,
    mut keep: impl FnMut(&Path, bool) -> bool,
) -> Result<LayerEntries, LayerError> {
    let mut entries = LayerEntries::new();
    let mut first_path_of_inode: HashMap<(u64, u64), String> = HashMap::new();
    let mut walker = walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(item) = walker.next() {
        let item = item.map_err(|error| LayerError::Walk {
            path: error.path().unwrap_or(root).to_path_buf(),
            source: error.into(),
        })?;
        let relative = item
            .path()
            .strip_prefix(root)
            .expect("walkdir stays under root");
        let file_type = item.file_type();
        if !keep(relative, file_type.is_dir()) {
            if file_type.is_dir() {
                walker.skip_current_dir();
            }
            continue;
        }
        let metadata = item.metadata().map_err(|error| LayerError::Walk {
            path: item.path().to_path_buf(),
            source: error.into(),
        })?;
        let layer_path = relative
            .to_str()
            .ok_or_else(|| super::entry::EntryPathError::NotUtf8(relative.to_path_buf()))?
            .to_owned();
        let disk_mode = metadata.mode() & 0o7777;
        let mode = |is_dir| {
            if options.normalize_modes {
                normalized_mode(is_dir, disk_mode)
            } else {
                disk_mode
            }
        };
        let kind = if file_type.is_dir() {
            EntryKind::Dir
        } else if file_type.is_symlink() {
            let target =
                std::fs::read_link(item.path()).map_err(|source| LayerError::ReadFile {
                    path: item.path().to_path_buf(),
                    source,
                })?;
            EntryKind::Symlink(target.to_string_lossy().into_owned())
        } else if file_type.is_file() {
            let inode = (metadata.dev(), metadata.ino());
            match first_path_of_inode.get(&inode) {
                Some(first) if metadata.nlink() > 1 => EntryKind::HardLink(first.clone()),
                _ => {
                    if metadata.nlink() > 1 {
                        first_path_of_inode.insert(inode, layer_path.clone());
                    }
                    EntryKind::File(FileSource::Path {
                        path: item.path().to_path_buf(),
                        size: metadata.len(),
                    })
                }
            }
        } else {
            debug_assert!(
                file_type.is_socket()
                    || file_type.is_fifo()
                    || file_type.is_block_device()
                    || file_type.is_char_device()
            );
            continue;
        };
        let mode = match kind {
            EntryKind::Symlink(_) => 0o777,
            EntryKind::Dir => mode(true),
            _ => mode(false),
        };
        entries.insert(
            &layer_path,
            Entry {
                kind,
                mode,
                owner: options.owner,
            },
        )?;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn walks_sorted_with_links_and_normalized_modes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/run.sh"), "#!/bin/sh").unwrap();
        std::fs::set_permissions(
            root.join("sub/run.sh"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::fs::write(root.join("b.txt"), "b").unwrap();
        std::fs::set_permissions(root.join("b.txt"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        std::fs::hard_link(root.join("b.txt"), root.join("c.txt")).unwrap();
        std::os::unix::fs::symlink("b.txt", root.join("a-link")).unwrap();
        let entries = entries_from_dir(root, DirOptions::APP, |_, _| true).unwrap();
        let listed: Vec<(String, u32)> = entries
            .iter()
            .map(|(path, entry)| (path, entry.mode))
            .collect();
        assert_eq!(
            listed,
            [
                ("a-link".to_owned(), 0o777),
                ("b.txt".to_owned(), 0o644),
                ("c.txt".to_owned(), 0o644),
                ("sub".to_owned(), 0o755),
                ("sub/run.sh".to_owned(), 0o755)
            ]
        );
        assert!(
            matches!(&entries.get("c.txt").unwrap().kind, EntryKind::HardLink(target) if target == "b.txt")
        );
        assert!(
            matches!(&entries.get("a-link").unwrap().kind, EntryKind::Symlink(target) if target == "b.txt")
        );
    }

    #[test]
    fn skipped_directories_are_not_descended() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git/objects")).unwrap();
        std::fs::write(dir.path().join(".git/objects/x"), "x").unwrap();
        std::fs::write(dir.path().join("app.py"), "print()").unwrap();
        let entries = entries_from_dir(dir.path(), DirOptions::APP, |path, _| {
            path != Path::new(".git")
        })
        .unwrap();
        let listed: Vec<String> = entries.iter().map(|(path, _)| path).collect();
        assert_eq!(listed, ["app.py"]);
    }
}
