//! Moving and copying `node_modules` trees without following their symlinks.

use std::io;
use std::path::Path;

/// Move a directory: a rename when it stays on one filesystem, else copy and remove.
pub fn move_tree(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        fs_err::create_dir_all(parent)?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::CrossesDevices => {
            copy_tree(from, to, false)?;
            fs_err::remove_dir_all(from)
        }
        Err(error) => Err(fs_err::rename(from, to).err().unwrap_or(error)),
    }
}

/// Copy a directory tree, keeping symlinks as symlinks. With `hard_links`, files are linked
/// rather than copied (falling back to a copy across filesystems): a snapshot that costs no
/// space, safe because package managers replace files rather than rewrite them.
pub fn copy_tree(from: &Path, to: &Path, hard_links: bool) -> io::Result<()> {
    fs_err::create_dir_all(to)?;
    for item in walkdir::WalkDir::new(from).min_depth(1).follow_links(false) {
        let item = item.map_err(io::Error::other)?;
        let relative = item.path().strip_prefix(from).map_err(io::Error::other)?;
        let target = to.join(relative);
        let file_type = item.file_type();
        if file_type.is_dir() {
            fs_err::create_dir_all(&target)?;
        } else if file_type.is_symlink() {
            let link = fs_err::read_link(item.path())?;
            fs_err::os::unix::fs::symlink(&link, &target)?;
        } else if file_type.is_file() {
            let linked = hard_links && std::fs::hard_link(item.path(), &target).is_ok();
            if !linked {
                fs_err::copy(item.path(), &target)?;
            }
        }
    }
    Ok(())
}

/// Remove a directory or symlink if it exists.
pub fn remove_if_present(path: &Path) -> io::Result<bool> {
    match fs_err::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => fs_err::remove_dir_all(path).map(|()| true),
        Ok(_) => fs_err::remove_file(path).map(|()| true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn copies_keep_links_and_hard_link_files() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        std::fs::create_dir_all(from.join("pkg")).unwrap();
        std::fs::write(from.join("pkg/index.js"), "x").unwrap();
        std::os::unix::fs::symlink("pkg", from.join("alias")).unwrap();
        let to = dir.path().join("to");
        copy_tree(&from, &to, true).unwrap();
        assert_eq!(
            std::fs::read_link(to.join("alias")).unwrap(),
            Path::new("pkg")
        );
        assert_eq!(
            std::fs::metadata(to.join("pkg/index.js")).unwrap().nlink(),
            2
        );

        let moved = dir.path().join("moved/deeper");
        move_tree(&to, &moved).unwrap();
        assert!(!to.exists());
        assert!(moved.join("pkg/index.js").is_file());
        assert!(remove_if_present(&moved).unwrap());
        assert!(!remove_if_present(&moved).unwrap());
    }
}
