//! Reading `.deb` files: an `ar` archive holding `control.tar.*` and `data.tar.*`.

use std::io::Read;

use super::error::StackError;
use crate::layer::{Owner, normalize_layer_path};

/// What one tar entry of a package is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebEntryKind {
    /// A directory.
    Dir,
    /// A regular file with its content.
    File(Vec<u8>),
    /// A symbolic link, target verbatim.
    Symlink(String),
    /// A hard link to another path of the same package (normalized, relative).
    HardLink(String),
}

/// One entry of a package's `data.tar`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebEntry {
    /// Normalized relative path (no `./`).
    pub path: String,
    /// What it is.
    pub kind: DebEntryKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner as the package ships it.
    pub owner: Owner,
}

/// The parts of a package kiln uses.
#[derive(Debug, Clone)]
pub struct DebContents {
    /// The `control` file.
    pub control: String,
    /// The `data.tar` entries in archive order (the root `./` is dropped).
    pub entries: Vec<DebEntry>,
}

/// Read a `.deb` held in memory. `package` names it in errors.
pub fn read_deb(bytes: &[u8], package: &str) -> Result<DebContents, StackError> {
    let read_error = |source| StackError::ReadDeb {
        package: package.to_owned(),
        source,
    };
    let mut archive = ar::Archive::new(bytes);
    let mut control = None;
    let mut entries = None;
    while let Some(member) = archive.next_entry() {
        let mut member = member.map_err(read_error)?;
        let name = String::from_utf8_lossy(member.header().identifier())
            .trim_end_matches('/')
            .to_owned();
        let mut raw = Vec::new();
        if name.starts_with("control.tar") || name.starts_with("data.tar") {
            member.read_to_end(&mut raw).map_err(read_error)?;
        } else {
            continue;
        }
        let tar = decompressor(&name, raw, package)?;
        if name.starts_with("control.tar") {
            control = Some(read_control(tar).map_err(read_error)?);
        } else {
            entries = Some(read_data(tar, package)?);
        }
    }
    Ok(DebContents {
        control: control
            .flatten()
            .ok_or_else(|| StackError::DebMissingMember {
                package: package.to_owned(),
                member: "control.tar",
            })?,
        entries: entries.ok_or_else(|| StackError::DebMissingMember {
            package: package.to_owned(),
            member: "data.tar",
        })?,
    })
}

fn decompressor(name: &str, raw: Vec<u8>, package: &str) -> Result<Box<dyn Read>, StackError> {
    let cursor = std::io::Cursor::new(raw);
    Ok(match name.rsplit('.').next() {
        Some("xz") => Box::new(liblzma::read::XzDecoder::new_multi_decoder(cursor)),
        Some("zst") => Box::new(zstd::stream::read::Decoder::new(cursor).map_err(|source| {
            StackError::ReadDeb {
                package: package.to_owned(),
                source,
            }
        })?),
        Some("gz") => Box::new(flate2::read::MultiGzDecoder::new(cursor)),
        Some("tar") => Box::new(cursor),
        _ => {
            return Err(StackError::DebMissingMember {
                package: package.to_owned(),
                member: "data.tar.{xz,zst,gz}",
            });
        }
    })
}

fn read_control(tar: Box<dyn Read>) -> std::io::Result<Option<String>> {
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let is_control = entry.path_bytes().as_ref() == b"./control"
            || entry.path_bytes().as_ref() == b"control";
        if is_control {
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            return Ok(Some(text));
        }
    }
    Ok(None)
}

fn read_data(tar: Box<dyn Read>, package: &str) -> Result<Vec<DebEntry>, StackError> {
    let read_error = |source| StackError::ReadDeb {
        package: package.to_owned(),
        source,
    };
    let path_error = |source| StackError::DebPath {
        package: package.to_owned(),
        source,
    };
    let mut archive = tar::Archive::new(tar);
    let mut entries = Vec::new();
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        // The archive root (`./`) is not an entry of the image.
        if raw_path.trim_matches(['.', '/']).is_empty() {
            continue;
        }
        let path = normalize_layer_path(&raw_path).map_err(path_error)?;
        let header = entry.header();
        let mode = header.mode().map_err(read_error)? & 0o7777;
        let owner = Owner {
            uid: header.uid().map_err(read_error)? as u32,
            gid: header.gid().map_err(read_error)? as u32,
        };
        let entry_type = header.entry_type();
        let target = entry
            .link_name_bytes()
            .map(|target| String::from_utf8_lossy(&target).into_owned());
        let link = || -> Result<String, StackError> {
            target
                .clone()
                .ok_or_else(|| StackError::UnsupportedDebEntry {
                    package: package.to_owned(),
                    path: path.clone(),
                    kind: "link without a target".to_owned(),
                })
        };
        let kind = match entry_type {
            tar::EntryType::Directory => DebEntryKind::Dir,
            tar::EntryType::Symlink => DebEntryKind::Symlink(link()?),
            tar::EntryType::Link => {
                DebEntryKind::HardLink(normalize_layer_path(&link()?).map_err(path_error)?)
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut content = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut content).map_err(read_error)?;
                DebEntryKind::File(content)
            }
            other => {
                return Err(StackError::UnsupportedDebEntry {
                    package: package.to_owned(),
                    path,
                    kind: format!("{other:?}"),
                });
            }
        };
        entries.push(DebEntry {
            path,
            kind,
            mode,
            owner,
        });
    }
    Ok(entries)
}
