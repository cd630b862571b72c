//! Unpacking one layer directory back out of a layer tar (`layers/<buildpack>/<layer>/…`), so
//! a layer whose blob came from a registry (previous image, cache image) can be restored as
//! the directory a buildpack reuses. Only what kiln's own writer emits is accepted: regular
//! files, directories, symlinks and hard links inside the subtree; nothing is written outside
//! the destination, and the tar must hash to the expected diff_id.

use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::oci::{Digest, HashingReader};

/// Why a layer directory could not be restored from a tar.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("cannot read the layer tar")]
    ReadTar(#[source] io::Error),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the layer entry `{entry}` would be written outside its directory")]
    UnsafeEntry { entry: String },
    #[error("the layer entry `{entry}` is a {kind}, which kiln layers never contain")]
    UnsupportedEntry { entry: String, kind: String },
    #[error("the layer tar hashes to {actual}, not its diff_id {expected}")]
    DiffIdMismatch { expected: Digest, actual: Digest },
}

/// Unpack the entries under `prefix` (e.g. `layers/kiln_python/deps`) of the layer tar read
/// from `tar` into `dest`, which must not exist yet. The whole stream is hashed and must
/// equal `diff_id`; on any failure `dest` is removed again.
pub fn extract_subtree(
    tar: impl Read,
    prefix: &str,
    dest: &Path,
    diff_id: &Digest,
) -> Result<(), ExtractError> {
    let result = extract_into(tar, prefix.trim_matches('/'), dest, diff_id);
    if result.is_err() {
        let _ = fs_err::remove_dir_all(dest);
    }
    result
}

fn extract_into(
    tar: impl Read,
    prefix: &str,
    dest: &Path,
    diff_id: &Digest,
) -> Result<(), ExtractError> {
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExtractError::Write { path, source }
    };
    fs_err::create_dir(dest).map_err(write_error(dest))?;
    let mut hashing = HashingReader::new(tar);
    let mut archive = tar::Archive::new(&mut hashing);
    let mut directories = Vec::new();
    for entry in archive.entries().map_err(ExtractError::ReadTar)? {
        let mut entry = entry.map_err(ExtractError::ReadTar)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(relative) = relative_to(&name, prefix)? else {
            continue;
        };
        let target = dest.join(&relative);
        let mode = entry.header().mode().map_err(ExtractError::ReadTar)?;
        let kind = entry.header().entry_type();
        if relative.as_os_str().is_empty() {
            if kind.is_dir() {
                directories.push((target, mode));
            }
            continue;
        }
        ensure_real_parents(dest, &relative)?;
        match kind {
            tar::EntryType::Directory => {
                if !target.is_dir() {
                    fs_err::create_dir(&target).map_err(write_error(&target))?;
                }
                directories.push((target, mode));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove_existing(&target)?;
                let mut file = fs_err::File::create(&target).map_err(write_error(&target))?;
                io::copy(&mut entry, &mut file).map_err(write_error(&target))?;
                set_mode(&target, mode)?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(ExtractError::ReadTar)?
                    .ok_or_else(|| ExtractError::UnsafeEntry {
                        entry: name.clone(),
                    })?;
                remove_existing(&target)?;
                std::os::unix::fs::symlink(&link, &target).map_err(write_error(&target))?;
            }
            tar::EntryType::Link => {
                let link_name = entry
                    .link_name_bytes()
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_default();
                let source = relative_to(&link_name, prefix)?
                    .filter(|source| !source.as_os_str().is_empty())
                    .ok_or_else(|| ExtractError::UnsafeEntry {
                        entry: name.clone(),
                    })?;
                ensure_real_parents(dest, &source)?;
                remove_existing(&target)?;
                fs_err::copy(dest.join(source), &target).map_err(write_error(&target))?;
            }
            other => {
                return Err(ExtractError::UnsupportedEntry {
                    entry: name,
                    kind: format!("{other:?}").to_lowercase(),
                });
            }
        }
    }
    // Directory modes last, deepest first, so a read-only directory still received its files.
    for (path, mode) in directories.into_iter().rev() {
        set_mode(&path, mode)?;
    }
    // The tar's end-of-archive padding is part of the diff_id.
    let reader = archive.into_inner();
    io::copy(reader, &mut io::sink()).map_err(ExtractError::ReadTar)?;
    let (actual, _) = hashing.finish();
    if &actual != diff_id {
        return Err(ExtractError::DiffIdMismatch {
            expected: diff_id.clone(),
            actual,
        });
    }
    Ok(())
}

/// The path of `name` below `prefix`: `None` when the entry is outside the subtree (parents
/// such as `layers/`), an empty path for the subtree's own directory. `..` anywhere is an
/// error rather than something to resolve.
fn relative_to(name: &str, prefix: &str) -> Result<Option<PathBuf>, ExtractError> {
    let trimmed = name.trim_start_matches("./").trim_start_matches('/');
    let trimmed = trimmed.trim_end_matches('/');
    let rest = if trimmed == prefix {
        ""
    } else if let Some(rest) = trimmed
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
    {
        rest
    } else {
        return Ok(None);
    };
    let mut relative = PathBuf::new();
    for component in Path::new(rest).components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            _ => {
                return Err(ExtractError::UnsafeEntry {
                    entry: name.to_owned(),
                });
            }
        }
    }
    Ok(Some(relative))
}

/// Refuse to write through a symlink an earlier entry placed: every parent of `relative`
/// below `dest` must be a real directory (or not exist yet, when the tar lacks parent entries).
fn ensure_real_parents(dest: &Path, relative: &Path) -> Result<(), ExtractError> {
    let mut current = dest.to_path_buf();
    let parents: Vec<Component<'_>> = relative.components().collect();
    for component in &parents[..parents.len().saturating_sub(1)] {
        current.push(component);
        match fs_err::symlink_metadata(&current) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => {
                return Err(ExtractError::UnsafeEntry {
                    entry: relative.display().to_string(),
                });
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                fs_err::create_dir(&current).map_err(|source| ExtractError::Write {
                    path: current.clone(),
                    source,
                })?;
            }
            Err(source) => {
                return Err(ExtractError::Write {
                    path: current,
                    source,
                });
            }
        }
    }
    Ok(())
}

fn remove_existing(path: &Path) -> Result<(), ExtractError> {
    match fs_err::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => fs_err::remove_dir_all(path),
        Ok(_) => fs_err::remove_file(path),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
    .map_err(|source| ExtractError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Permission bits as the tar has them, without setuid/setgid: layer content is owned by
/// whoever runs kiln, and kiln never hands out elevated bits.
fn set_mode(path: &Path, mode: u32) -> Result<(), ExtractError> {
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o1777)).map_err(
        |source| ExtractError::Write {
            path: path.to_path_buf(),
            source,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{DirOptions, LayerEntries, Owner, entries_from_dir, write_tar};

    fn layer_tar(entries: &LayerEntries) -> (Vec<u8>, Digest) {
        let tar = write_tar(entries, Vec::new()).unwrap();
        let digest = Digest::of_bytes(&tar);
        (tar, digest)
    }

    #[test]
    fn a_written_layer_directory_comes_back_and_tars_to_the_same_diff_id() {
        let source = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(source.path().join("bin")).unwrap();
        std::fs::write(source.path().join("bin/tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            source.path().join("bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(source.path().join("lib.py"), "x = 1\n").unwrap();
        std::os::unix::fs::symlink("lib.py", source.path().join("alias.py")).unwrap();
        let prefix = "layers/kiln_python/deps";
        let build = |dir: &Path| {
            let mut entries = entries_from_dir(dir, DirOptions::APP, |_, _| true)
                .unwrap()
                .prefixed(prefix)
                .unwrap();
            entries.add_dir(prefix, 0o755, Owner::CNB).unwrap();
            entries.add_missing_parents(0o755, Owner::CNB);
            entries
        };
        let (tar, diff_id) = layer_tar(&build(source.path()));
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("deps");
        extract_subtree(tar.as_slice(), prefix, &dest, &diff_id).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("lib.py")).unwrap(),
            "x = 1\n"
        );
        assert_eq!(
            std::fs::read_link(dest.join("alias.py")).unwrap(),
            Path::new("lib.py")
        );
        let (_, again) = layer_tar(&build(&dest));
        assert_eq!(
            again, diff_id,
            "re-tarring the restored directory is stable"
        );
    }

    #[test]
    fn a_wrong_diff_id_removes_what_was_written() {
        let mut entries = LayerEntries::new();
        entries
            .add_bytes("layers/bp/l/file", b"data".to_vec(), 0o644, Owner::CNB)
            .unwrap();
        entries.add_missing_parents(0o755, Owner::CNB);
        let (tar, _) = layer_tar(&entries);
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("l");
        let error = extract_subtree(
            tar.as_slice(),
            "layers/bp/l",
            &dest,
            &Digest::of_bytes(b"x"),
        )
        .unwrap_err();
        assert!(
            matches!(error, ExtractError::DiffIdMismatch { .. }),
            "{error}"
        );
        assert!(!dest.exists());
    }

    #[test]
    fn entries_through_a_symlink_are_refused() {
        let mut entries = LayerEntries::new();
        entries
            .add_symlink("layers/bp/l/escape", "/etc", Owner::CNB)
            .unwrap();
        entries
            .add_bytes(
                "layers/bp/l/escape/passwd",
                b"x".to_vec(),
                0o644,
                Owner::CNB,
            )
            .unwrap();
        entries.add_missing_parents(0o755, Owner::CNB);
        let (tar, diff_id) = layer_tar(&entries);
        let out = tempfile::tempdir().unwrap();
        let error = extract_subtree(
            tar.as_slice(),
            "layers/bp/l",
            &out.path().join("l"),
            &diff_id,
        )
        .unwrap_err();
        assert!(matches!(error, ExtractError::UnsafeEntry { .. }), "{error}");
    }
}
