//! What maintainer scripts would have created, made deterministically instead: users,
//! name service config, the CA bundle, the usr-merge links and the CNB directories.

use std::sync::Arc;

use super::usr_merge::MERGED_DIRS;
use crate::layer::{EntryKind, FileSource, LayerEntries, Owner};

/// Where the ca-certificates package keeps the certificates its script would link.
pub const CA_SOURCE_DIR: &str = "usr/share/ca-certificates";
/// The bundle TLS libraries read on Debian.
pub const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
cnb:x:1000:1000:cnb:/home/cnb:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";

const GROUP: &str = "root:x:0:\ncnb:x:1000:\nnogroup:x:65534:\n";

/// Files only: there is no NSS module or daemon beyond glibc's built-ins in the image.
const NSSWITCH: &str = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n\
protocols: files\nservices: files\nethers: files\nrpc: files\n";

/// Add the synthesized files of a run image to `entries` (after all packages).
pub fn synthesize_run_image(
    entries: &mut LayerEntries,
) -> Result<(), crate::layer::EntryPathError> {
    for (path, text) in [
        ("etc/passwd", PASSWD),
        ("etc/group", GROUP),
        ("etc/nsswitch.conf", NSSWITCH),
    ] {
        entries.add_bytes(path, text.as_bytes().to_vec(), 0o644, Owner::ROOT)?;
    }
    if let Some(bundle) = ca_bundle(entries) {
        entries.add_bytes(CA_BUNDLE, bundle, 0o644, Owner::ROOT)?;
    }
    // usr-merge links as Debian makes them on amd64: bin, sbin, lib and lib64 always, the
    // other multilib directories only when some package uses them.
    for dir in MERGED_DIRS {
        let merged = format!("usr/{dir}");
        let used = entries
            .iter()
            .any(|(path, _)| path == merged || path.starts_with(&format!("{merged}/")));
        if matches!(dir, "bin" | "sbin" | "lib" | "lib64") || used {
            if !entries.contains(&merged) {
                entries.add_dir(&merged, 0o755, Owner::ROOT)?;
            }
            entries.add_symlink(dir, &merged, Owner::ROOT)?;
        }
    }
    entries.add_dir("tmp", 0o1777, Owner::ROOT)?;
    if !entries.contains("root") {
        entries.add_dir("root", 0o700, Owner::ROOT)?;
    }
    for dir in ["home/cnb", "workspace", "layers"] {
        entries.add_dir(dir, 0o755, Owner::CNB)?;
    }
    entries.add_missing_parents(0o755, Owner::ROOT);
    Ok(())
}

/// The certificate files the ca-certificates package ships, sorted by path, with content.
pub fn ca_certificates(entries: &LayerEntries) -> Vec<(String, Arc<Vec<u8>>)> {
    let mut certificates: Vec<(String, Arc<Vec<u8>>)> = entries
        .iter()
        .filter(|(path, _)| {
            path.starts_with(&format!("{CA_SOURCE_DIR}/")) && path.ends_with(".crt")
        })
        .filter_map(|(path, entry)| match &entry.kind {
            EntryKind::File(FileSource::Bytes(bytes)) => Some((path, bytes.clone())),
            _ => None,
        })
        .collect();
    certificates.sort_by(|a, b| a.0.cmp(&b.0));
    certificates
}

/// The concatenated bundle, as `update-ca-certificates` writes it; `None` without certs.
pub fn ca_bundle(entries: &LayerEntries) -> Option<Vec<u8>> {
    let certificates = ca_certificates(entries);
    if certificates.is_empty() {
        return None;
    }
    let mut bundle = Vec::new();
    for (_, bytes) in certificates {
        bundle.extend_from_slice(&bytes);
        if !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
    }
    Some(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A symlink entry (used when checking what the image resolves).
    fn symlink_target(entries: &LayerEntries, path: &str) -> Option<String> {
        match entries.get(path) {
            Some(crate::layer::Entry {
                kind: EntryKind::Symlink(target),
                ..
            }) => Some(target.clone()),
            _ => None,
        }
    }

    #[test]
    fn synthesizes_users_links_directories_and_bundle() {
        let mut entries = LayerEntries::new();
        entries
            .add_bytes(
                "usr/share/ca-certificates/mozilla/B.crt",
                b"B".to_vec(),
                0o644,
                Owner::ROOT,
            )
            .unwrap();
        entries
            .add_bytes(
                "usr/share/ca-certificates/mozilla/A.crt",
                b"A\n".to_vec(),
                0o644,
                Owner::ROOT,
            )
            .unwrap();
        entries
            .add_bytes("usr/bin/sh", b"elf".to_vec(), 0o755, Owner::ROOT)
            .unwrap();
        synthesize_run_image(&mut entries).unwrap();
        let EntryKind::File(FileSource::Bytes(bundle)) = &entries.get(CA_BUNDLE).unwrap().kind
        else {
            panic!("no bundle");
        };
        assert_eq!(bundle.as_slice(), b"A\nB\n");
        assert_eq!(symlink_target(&entries, "bin").as_deref(), Some("usr/bin"));
        assert_eq!(
            symlink_target(&entries, "lib64").as_deref(),
            Some("usr/lib64")
        );
        assert_eq!(
            symlink_target(&entries, "sbin").as_deref(),
            Some("usr/sbin")
        );
        assert!(symlink_target(&entries, "libx32").is_none());
        assert_eq!(entries.get("tmp").unwrap().mode, 0o1777);
        assert_eq!(entries.get("workspace").unwrap().owner, Owner::CNB);
        assert_eq!(entries.get("home").unwrap().owner, Owner::ROOT);
        assert_eq!(entries.get("home/cnb").unwrap().owner, Owner::CNB);
    }
}
