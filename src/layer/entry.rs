//! The entries of one layer, kept sorted the way they are written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Owner of an entry in the written tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    /// Numeric user id.
    pub uid: u32,
    /// Numeric group id.
    pub gid: u32,
}

impl Owner {
    /// uid/gid 0.
    pub const ROOT: Owner = Owner { uid: 0, gid: 0 };
    /// The stack's non-root user (`cnb`, 1000:1000) that owns app and buildpack content.
    pub const CNB: Owner = Owner {
        uid: 1000,
        gid: 1000,
    };
}

/// Where a regular file's bytes come from.
#[derive(Debug, Clone)]
pub enum FileSource {
    /// Read from this path when the layer is written; `size` is what was seen when listed.
    Path { path: PathBuf, size: u64 },
    /// Bytes already in memory.
    Bytes(Arc<Vec<u8>>),
}

impl FileSource {
    /// Size of the content.
    pub fn size(&self) -> u64 {
        match self {
            FileSource::Path { size, .. } => *size,
            FileSource::Bytes(bytes) => bytes.len() as u64,
        }
    }
}

/// What an entry is.
#[derive(Debug, Clone)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file.
    File(FileSource),
    /// A symbolic link with its target, kept verbatim.
    Symlink(String),
    /// A hard link to another entry of the same layer (its layer path).
    HardLink(String),
}

/// One tar entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits (including setuid/setgid/sticky).
    pub mode: u32,
    /// Owner written into the tar header.
    pub owner: Owner,
}

/// Sort key that orders paths component by component, so a directory's children follow
/// it directly (`a`, `a/b`, `a-b` rather than `a`, `a-b`, `a/b`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PathKey(Vec<u8>);

impl PathKey {
    fn new(path: &str) -> Self {
        Self(
            path.bytes()
                .map(|b| if b == b'/' { 0 } else { b })
                .collect(),
        )
    }

    fn path(&self) -> String {
        let bytes: Vec<u8> = self
            .0
            .iter()
            .map(|&b| if b == 0 { b'/' } else { b })
            .collect();
        String::from_utf8(bytes).expect("keys are built from strings")
    }
}

/// Why a path cannot be a layer entry.
#[derive(Debug, thiserror::Error)]
pub enum EntryPathError {
    #[error("layer path `{0}` is empty or escapes the layer root")]
    Escapes(String),
    #[error("layer path `{0}` is not valid UTF-8")]
    NotUtf8(PathBuf),
}

/// Normalize a path to the relative, slash-separated form entries use: no leading `/` or
/// `./`, no trailing `/`, no `.`/`..`/empty components.
pub fn normalize_layer_path(path: &str) -> Result<String, EntryPathError> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err(EntryPathError::Escapes(path.to_owned())),
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Err(EntryPathError::Escapes(path.to_owned()));
    }
    Ok(parts.join("/"))
}

/// The entries of one layer, sorted by path with parents first.
#[derive(Debug, Clone, Default)]
pub struct LayerEntries {
    entries: BTreeMap<PathKey, Entry>,
}

impl LayerEntries {
    /// No entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Insert or replace an entry. `path` is normalized first.
    pub fn insert(&mut self, path: &str, entry: Entry) -> Result<(), EntryPathError> {
        let path = normalize_layer_path(path)?;
        self.entries.insert(PathKey::new(&path), entry);
        Ok(())
    }

    /// Add a directory (replacing any entry at that path).
    pub fn add_dir(&mut self, path: &str, mode: u32, owner: Owner) -> Result<(), EntryPathError> {
        self.insert(
            path,
            Entry {
                kind: EntryKind::Dir,
                mode,
                owner,
            },
        )
    }

    /// Add a file with in-memory content.
    pub fn add_bytes(
        &mut self,
        path: &str,
        bytes: Vec<u8>,
        mode: u32,
        owner: Owner,
    ) -> Result<(), EntryPathError> {
        self.insert(
            path,
            Entry {
                kind: EntryKind::File(FileSource::Bytes(Arc::new(bytes))),
                mode,
                owner,
            },
        )
    }

    /// Add a symlink.
    pub fn add_symlink(
        &mut self,
        path: &str,
        target: &str,
        owner: Owner,
    ) -> Result<(), EntryPathError> {
        self.insert(
            path,
            Entry {
                kind: EntryKind::Symlink(target.to_owned()),
                mode: 0o777,
                owner,
            },
        )
    }

    /// Whether an entry exists at `path`.
    pub fn contains(&self, path: &str) -> bool {
        normalize_layer_path(path).is_ok_and(|path| self.entries.contains_key(&PathKey::new(&path)))
    }

    /// The entry at `path`.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        let path = normalize_layer_path(path).ok()?;
        self.entries.get(&PathKey::new(&path))
    }

    /// Remove and return the entry at `path`.
    pub fn remove(&mut self, path: &str) -> Option<Entry> {
        let path = normalize_layer_path(path).ok()?;
        self.entries.remove(&PathKey::new(&path))
    }

    /// Add a directory entry for every missing ancestor of every entry.
    pub fn add_missing_parents(&mut self, mode: u32, owner: Owner) {
        let mut missing = Vec::new();
        for key in self.entries.keys() {
            let path = key.path();
            let mut parent = Path::new(&path).parent();
            while let Some(dir) = parent.filter(|dir| !dir.as_os_str().is_empty()) {
                let dir_text = dir.to_string_lossy().into_owned();
                if !self.entries.contains_key(&PathKey::new(&dir_text)) {
                    missing.push(dir_text);
                }
                parent = dir.parent();
            }
        }
        for dir in missing {
            self.entries.entry(PathKey::new(&dir)).or_insert(Entry {
                kind: EntryKind::Dir,
                mode,
                owner,
            });
        }
    }

    /// Move every entry under `prefix` (e.g. `workspace`).
    pub fn prefixed(self, prefix: &str) -> Result<Self, EntryPathError> {
        let prefix = normalize_layer_path(prefix)?;
        let mut out = LayerEntries::new();
        for (key, mut entry) in self.entries {
            if let EntryKind::HardLink(target) = &entry.kind {
                entry.kind = EntryKind::HardLink(format!("{prefix}/{target}"));
            }
            out.entries
                .insert(PathKey::new(&format!("{prefix}/{}", key.path())), entry);
        }
        Ok(out)
    }

    /// Merge another set of entries in; entries of `other` replace same-path entries here.
    pub fn extend(&mut self, other: LayerEntries) {
        self.entries.extend(other.entries);
    }

    /// Iterate `(path, entry)` in write order.
    pub fn iter(&self) -> impl Iterator<Item = (String, &Entry)> {
        self.entries.iter().map(|(key, entry)| (key.path(), entry))
    }

    /// Total bytes of file content (for progress and benchmarks).
    pub fn content_size(&self) -> u64 {
        self.entries
            .values()
            .map(|entry| match &entry.kind {
                EntryKind::File(source) => source.size(),
                _ => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_children_right_after_their_parent() {
        let mut entries = LayerEntries::new();
        for path in ["a-b", "a/b", "a", "a/b/c", "B", "a.txt"] {
            entries.add_dir(path, 0o755, Owner::ROOT).unwrap();
        }
        let order: Vec<String> = entries.iter().map(|(path, _)| path).collect();
        assert_eq!(order, ["B", "a", "a/b", "a/b/c", "a-b", "a.txt"]);
    }

    #[test]
    fn normalizes_and_rejects_escapes() {
        assert_eq!(normalize_layer_path("/./usr//bin/").unwrap(), "usr/bin");
        assert!(normalize_layer_path("../etc").is_err());
        assert!(normalize_layer_path("a/../../b").is_err());
        assert!(normalize_layer_path("/").is_err());
    }

    #[test]
    fn adds_missing_parents_with_given_owner() {
        let mut entries = LayerEntries::new();
        entries
            .add_bytes("layers/bp/x/file", b"hi".to_vec(), 0o644, Owner::CNB)
            .unwrap();
        entries.add_missing_parents(0o755, Owner::CNB);
        let order: Vec<String> = entries.iter().map(|(path, _)| path).collect();
        assert_eq!(
            order,
            ["layers", "layers/bp", "layers/bp/x", "layers/bp/x/file"]
        );
        assert_eq!(entries.get("layers").unwrap().owner, Owner::CNB);
    }
}
