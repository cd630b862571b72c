//! Merging unpacked packages into one set of layer entries: usr-merge rewriting, conflict
//! detection, and one dpkg `status.d` stanza per package for scanners.

use std::collections::HashMap;
use std::sync::Arc;

use super::deb::{DebContents, DebEntryKind};
use super::error::StackError;
use super::usr_merge::merged_path;
use crate::layer::{Entry, EntryKind, FileSource, LayerEntries, Owner};

/// Where dpkg-aware scanners (trivy, grype, syft) look for distroless-style package records.
pub const STATUS_DIR: &str = "var/lib/dpkg/status.d";

/// Packages merged so far.
#[derive(Debug, Default)]
pub struct PackageTree {
    entries: LayerEntries,
    /// Which package first shipped each non-directory path (for conflict messages).
    shipped_by: HashMap<String, String>,
}

impl PackageTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one package's files and its status stanza. Directories shared between packages
    /// keep the first package's mode; a path shipped with different content, mode or kind
    /// by two packages is an error (dpkg would refuse the second package too).
    pub fn add_package(&mut self, package: &str, contents: DebContents) -> Result<(), StackError> {
        for deb_entry in contents.entries {
            let path = merged_path(&deb_entry.path);
            let kind = match deb_entry.kind {
                DebEntryKind::Dir => EntryKind::Dir,
                DebEntryKind::File(bytes) => EntryKind::File(FileSource::Bytes(Arc::new(bytes))),
                DebEntryKind::Symlink(target) => EntryKind::Symlink(target),
                DebEntryKind::HardLink(target) => EntryKind::HardLink(merged_path(&target)),
            };
            let entry = Entry {
                kind,
                mode: deb_entry.mode,
                owner: deb_entry.owner,
            };
            self.insert(package, &path, entry)?;
        }
        let status = status_stanza(&contents.control);
        self.insert(
            package,
            &format!("{STATUS_DIR}/{package}"),
            Entry {
                kind: EntryKind::File(FileSource::Bytes(Arc::new(status.into_bytes()))),
                mode: 0o644,
                owner: Owner::ROOT,
            },
        )
    }

    fn insert(&mut self, package: &str, path: &str, entry: Entry) -> Result<(), StackError> {
        if let Some(existing) = self.entries.get(path) {
            if same_entry(existing, &entry) {
                return Ok(());
            }
            let first = self
                .shipped_by
                .get(path)
                .cloned()
                .unwrap_or_else(|| "another package".to_owned());
            return Err(StackError::FileConflict {
                path: path.to_owned(),
                first,
                second: package.to_owned(),
            });
        }
        if !matches!(entry.kind, EntryKind::Dir) {
            self.shipped_by.insert(path.to_owned(), package.to_owned());
        }
        self.entries
            .insert(path, entry)
            .map_err(|source| StackError::DebPath {
                package: package.to_owned(),
                source,
            })
    }

    /// The merged entries.
    pub fn into_entries(self) -> LayerEntries {
        self.entries
    }

    /// The entries merged so far.
    pub fn entries(&self) -> &LayerEntries {
        &self.entries
    }
}

/// Whether two packages ship the same thing at one path (directories always merge).
fn same_entry(existing: &Entry, new: &Entry) -> bool {
    match (&existing.kind, &new.kind) {
        (EntryKind::Dir, EntryKind::Dir) => true,
        (EntryKind::Symlink(a), EntryKind::Symlink(b))
        | (EntryKind::HardLink(a), EntryKind::HardLink(b)) => a == b,
        (EntryKind::File(a), EntryKind::File(b)) => {
            existing.mode == new.mode
                && existing.owner == new.owner
                && file_bytes(a) == file_bytes(b)
        }
        _ => false,
    }
}

fn file_bytes(source: &FileSource) -> Option<&[u8]> {
    match source {
        FileSource::Bytes(bytes) => Some(bytes.as_slice()),
        FileSource::Path { .. } => None,
    }
}

/// The package's control file as dpkg's status database records it.
fn status_stanza(control: &str) -> String {
    let mut out = String::with_capacity(control.len() + 32);
    let mut status_written = false;
    for line in control.trim_end().lines() {
        out.push_str(line);
        out.push('\n');
        if !status_written && line.starts_with("Package:") {
            out.push_str("Status: install ok installed\n");
            status_written = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::deb::DebEntry;

    fn file(path: &str, bytes: &[u8]) -> DebEntry {
        DebEntry {
            path: path.to_owned(),
            kind: DebEntryKind::File(bytes.to_vec()),
            mode: 0o644,
            owner: Owner::ROOT,
        }
    }

    fn package(entries: Vec<DebEntry>, name: &str) -> DebContents {
        DebContents {
            control: format!("Package: {name}\nVersion: 1\nArchitecture: amd64\n"),
            entries,
        }
    }

    #[test]
    fn rewrites_usr_merge_paths_and_records_status() {
        let mut tree = PackageTree::new();
        let dir = DebEntry {
            path: "lib".to_owned(),
            kind: DebEntryKind::Dir,
            mode: 0o755,
            owner: Owner::ROOT,
        };
        let hard = DebEntry {
            path: "bin/b".to_owned(),
            kind: DebEntryKind::HardLink("bin/a".to_owned()),
            mode: 0o755,
            owner: Owner::ROOT,
        };
        tree.add_package(
            "libexpat1",
            package(
                vec![
                    dir,
                    file("lib/x/libexpat.so.1", b"elf"),
                    file("bin/a", b"a"),
                    hard,
                ],
                "libexpat1",
            ),
        )
        .unwrap();
        let entries = tree.into_entries();
        assert!(entries.contains("usr/lib/x/libexpat.so.1"));
        assert!(!entries.contains("lib"));
        assert!(
            matches!(&entries.get("usr/bin/b").unwrap().kind, EntryKind::HardLink(target) if target == "usr/bin/a")
        );
        let EntryKind::File(FileSource::Bytes(status)) =
            &entries.get("var/lib/dpkg/status.d/libexpat1").unwrap().kind
        else {
            panic!("no status stanza");
        };
        assert_eq!(
            String::from_utf8_lossy(status),
            "Package: libexpat1\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n"
        );
    }

    #[test]
    fn identical_files_merge_and_different_ones_conflict() {
        let mut tree = PackageTree::new();
        tree.add_package("a", package(vec![file("usr/share/doc/x", b"same")], "a"))
            .unwrap();
        tree.add_package("b", package(vec![file("usr/share/doc/x", b"same")], "b"))
            .unwrap();
        // The old path of a usr-merged file collides with the new one.
        tree.add_package("c", package(vec![file("lib/y", b"one")], "c"))
            .unwrap();
        let error = tree
            .add_package("d", package(vec![file("usr/lib/y", b"two")], "d"))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "usr/lib/y is shipped differently by c and d"
        );
    }
}
