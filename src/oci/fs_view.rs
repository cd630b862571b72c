//! A listing of an image's merged filesystem (whiteouts applied), for the few questions a
//! build asks of its base: is there a `/bin/sh`, what does `/etc/os-release` say.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use super::blobs::BlobStore;
use super::error::{OciError, Result};
use super::image::Image;
use super::layer_reader::uncompressed_reader;

/// What a path is in the merged filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A directory.
    Dir,
    /// A regular file (or hard link).
    File,
    /// A symlink and its target.
    Symlink(String),
    /// Anything else.
    Other,
}

/// The merged filesystem of an image, with the content of requested small files.
#[derive(Debug, Default)]
pub struct FsView {
    nodes: BTreeMap<String, NodeKind>,
    contents: BTreeMap<String, Vec<u8>>,
}

const MAX_CAPTURED_FILE: u64 = 1 << 20;

impl FsView {
    /// Read every layer of `image`, keeping the content of the files named in `capture`
    /// (relative paths such as `etc/os-release`).
    pub fn of_image(image: &Image, store: &BlobStore, capture: &[&str]) -> Result<Self> {
        let mut view = FsView::default();
        let capture: BTreeSet<&str> = capture.iter().copied().collect();
        for layer in image.layers(store.location())? {
            let read_error = |source| OciError::ReadBlob {
                location: store.location().to_owned(),
                digest: layer.digest.clone(),
                source,
            };
            let mut archive = tar::Archive::new(uncompressed_reader(store, &layer)?);
            for entry in archive.entries().map_err(read_error)? {
                let mut entry = match entry {
                    Ok(entry) => entry,
                    // Some tools (umoci 0.4's `insert`) end layers without padding or the
                    // end-of-archive blocks; everything listed so far is still right.
                    // (the tar crate reports that as a plain "unexpected EOF…" error).
                    Err(error)
                        if error.kind() == std::io::ErrorKind::UnexpectedEof
                            || error.to_string().starts_with("unexpected EOF") =>
                    {
                        break;
                    }
                    Err(error) => return Err(read_error(error)),
                };
                let raw_path = entry
                    .path()
                    .map_err(read_error)?
                    .to_string_lossy()
                    .into_owned();
                let path = clean(&raw_path);
                if path.is_empty() {
                    continue;
                }
                let (parent, name) = match path.rsplit_once('/') {
                    Some((parent, name)) => (parent.to_owned(), name),
                    None => (String::new(), path.as_str()),
                };
                if name == ".wh..wh..opq" {
                    view.remove_children(&parent);
                    continue;
                }
                if let Some(hidden) = name.strip_prefix(".wh.") {
                    let target = if parent.is_empty() {
                        hidden.to_owned()
                    } else {
                        format!("{parent}/{hidden}")
                    };
                    view.remove_tree(&target);
                    continue;
                }
                let header = entry.header();
                let kind = match header.entry_type() {
                    tar::EntryType::Directory => NodeKind::Dir,
                    tar::EntryType::Regular | tar::EntryType::Link | tar::EntryType::Continuous => {
                        NodeKind::File
                    }
                    tar::EntryType::Symlink => NodeKind::Symlink(
                        entry
                            .link_name()
                            .map_err(read_error)?
                            .map(|target| target.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    ),
                    _ => NodeKind::Other,
                };
                if kind != NodeKind::Dir {
                    view.remove_tree(&path);
                }
                if kind == NodeKind::File
                    && capture.contains(path.as_str())
                    && header.size().unwrap_or(0) <= MAX_CAPTURED_FILE
                {
                    let mut content = Vec::new();
                    entry.read_to_end(&mut content).map_err(read_error)?;
                    view.contents.insert(path.clone(), content);
                }
                view.nodes.insert(path, kind);
            }
        }
        Ok(view)
    }

    fn remove_tree(&mut self, path: &str) {
        self.nodes.remove(path);
        self.contents.remove(path);
        self.remove_children(path);
    }

    fn remove_children(&mut self, dir: &str) {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let doomed: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(path, _)| path.starts_with(&prefix))
            .map(|(path, _)| path.clone())
            .collect();
        for path in doomed {
            self.nodes.remove(&path);
            self.contents.remove(&path);
        }
    }

    /// Follow symlinks (inside the image) to what `path` finally names.
    pub fn resolve(&self, path: &str) -> Option<(String, &NodeKind)> {
        let mut current = clean(path);
        for _ in 0..40 {
            let mut resolved = String::new();
            let mut followed = false;
            let parts: Vec<&str> = current.split('/').filter(|part| !part.is_empty()).collect();
            for (index, part) in parts.iter().enumerate() {
                let candidate = if resolved.is_empty() {
                    (*part).to_owned()
                } else {
                    format!("{resolved}/{part}")
                };
                match self.nodes.get(&candidate) {
                    Some(NodeKind::Symlink(target)) => {
                        let base = if target.starts_with('/') {
                            String::new()
                        } else {
                            resolved.clone()
                        };
                        let rest = parts[index + 1..].join("/");
                        current = clean(&format!("{base}/{target}/{rest}"));
                        followed = true;
                        break;
                    }
                    Some(_) => resolved = candidate,
                    None => return None,
                }
            }
            if !followed {
                return self
                    .nodes
                    .get(&resolved)
                    .map(|kind| (resolved.clone(), kind));
            }
        }
        None
    }

    /// Names directly inside the directory `path` resolves to, or `None` when it is not a
    /// directory.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        let (dir, kind) = self.resolve(path)?;
        if *kind != NodeKind::Dir {
            return None;
        }
        let prefix = format!("{dir}/");
        Some(
            self.nodes
                .range(prefix.clone()..)
                .take_while(|(child, _)| child.starts_with(&prefix))
                .filter(|(child, _)| !child[prefix.len()..].contains('/'))
                .map(|(child, _)| child[prefix.len()..].to_owned())
                .collect(),
        )
    }

    /// Whether `path` resolves to a regular file.
    pub fn is_file(&self, path: &str) -> bool {
        matches!(self.resolve(path), Some((_, NodeKind::File)))
    }

    /// Content of a captured file (following symlinks).
    pub fn captured(&self, path: &str) -> Option<&[u8]> {
        let (resolved, _) = self.resolve(path)?;
        self.contents.get(&resolved).map(Vec::as_slice)
    }
}

/// Normalize a tar path lexically: no leading `/` or `./`, `..` resolved (never above root).
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_through_usr_merge_links_and_relative_targets() {
        let mut view = FsView::default();
        view.nodes
            .insert("bin".into(), NodeKind::Symlink("usr/bin".into()));
        view.nodes.insert("usr".into(), NodeKind::Dir);
        view.nodes.insert("usr/bin".into(), NodeKind::Dir);
        view.nodes.insert("usr/bin/dash".into(), NodeKind::File);
        view.nodes
            .insert("usr/bin/sh".into(), NodeKind::Symlink("dash".into()));
        assert!(view.is_file("/bin/sh"));
        assert_eq!(view.resolve("bin/sh").unwrap().0, "usr/bin/dash");
        assert!(!view.is_file("/bin/bash"));
    }

    #[test]
    fn whiteouts_remove_trees() {
        let mut view = FsView::default();
        view.nodes.insert("etc".into(), NodeKind::Dir);
        view.nodes.insert("etc/a".into(), NodeKind::File);
        view.nodes.insert("etc/b".into(), NodeKind::File);
        view.remove_children("etc");
        assert!(view.resolve("etc/a").is_none());
        assert!(view.resolve("etc").is_some());
    }
}
