//! Unit tests of layer application (no namespaces needed).
use super::*;

#[test]
fn media_types() {
    use LayerCompression::*;
    let cases = [
        ("application/vnd.oci.image.layer.v1.tar", Some(None)),
        ("application/vnd.oci.image.layer.v1.tar+gzip", Some(Gzip)),
        ("application/vnd.oci.image.layer.v1.tar+zstd", Some(Zstd)),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            Some(Gzip),
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Some(Gzip),
        ),
        ("application/vnd.docker.image.rootfs.diff.tar", Some(None)),
        ("application/vnd.oci.image.config.v1+json", Option::None),
        ("application/vnd.oci.image.layer.v1.tar+bzip2", Option::None),
    ];
    for (media_type, expected) in cases {
        assert_eq!(
            LayerCompression::from_media_type(media_type),
            expected,
            "{media_type}"
        );
    }
}

/// Entries for a test tar: (path, mode, content); `None` content makes a directory.
fn layer_tar(entries: &[(&str, u32, Option<&[u8]>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, mode, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(*mode);
        header.set_entry_type(if content.is_some() {
            tar::EntryType::Regular
        } else {
            tar::EntryType::Directory
        });
        let data = content.unwrap_or_default();
        header.set_size(data.len() as u64);
        builder.append_data(&mut header, path, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn apply(root_dir: &std::path::Path, layers: &[Vec<u8>]) -> Result<(), RunError> {
    let store_dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::for_layout(store_dir.path());
    let root = Root::open(root_dir).unwrap();
    let mut unpacker = Unpacker::new(&root);
    for tar in layers {
        let digest = blobs.put_bytes(tar).unwrap();
        let layer = RunLayer {
            digest: digest.clone(),
            diff_id: digest,
            media_type: "application/vnd.oci.image.layer.v1.tar".to_owned(),
        };
        unpacker.apply_layer(&layer, &blobs)?;
    }
    unpacker.finish()
}

#[test]
fn opaque_dirs_hide_lower_content_but_keep_their_own_layer() {
    let root = tempfile::tempdir().unwrap();
    let lower = layer_tar(&[("a/x", 0o644, Some(b"x")), ("a/sub/y", 0o644, Some(b"y"))]);
    let upper = layer_tar(&[
        ("a/sub", 0o755, None),
        ("a/.wh..wh..opq", 0o644, Some(b"")),
        ("a/new", 0o644, Some(b"n")),
        ("a/sub/z", 0o644, Some(b"z")),
    ]);
    apply(root.path(), &[lower, upper]).unwrap();
    let a = root.path().join("a");
    assert!(!a.join("x").exists());
    assert!(!a.join("sub/y").exists());
    assert!(a.join("new").exists() && a.join("sub/z").exists());
    assert!(!a.join(".wh..wh..opq").exists());
}

#[test]
fn whiteouts_remove_files_and_trees_and_entries_replace_each_other() {
    let root = tempfile::tempdir().unwrap();
    let lower = layer_tar(&[
        ("gone/deep/file", 0o644, Some(b"1")),
        ("file-then-dir", 0o644, Some(b"2")),
        ("dir-then-file/inner", 0o644, Some(b"3")),
    ]);
    let upper = layer_tar(&[
        (".wh.gone", 0o644, Some(b"")),
        ("file-then-dir", 0o755, None),
        ("dir-then-file", 0o644, Some(b"now a file")),
    ]);
    apply(root.path(), &[lower, upper]).unwrap();
    assert!(!root.path().join("gone").exists());
    assert!(root.path().join("file-then-dir").is_dir());
    assert_eq!(
        std::fs::read(root.path().join("dir-then-file")).unwrap(),
        b"now a file"
    );
}

#[test]
fn modes_are_exact_except_setuid_and_locked_dirs_come_last() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let layer = layer_tar(&[
        ("locked", 0o555, None),
        ("locked/tool", 0o4755, Some(b"#!/bin/sh\n")),
    ]);
    apply(root.path(), &[layer]).unwrap();
    let mode = |path: &str| {
        std::fs::metadata(root.path().join(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("locked"), 0o555);
    assert_eq!(mode("locked/tool"), 0o755);
    super::super::remove_tree(&root.path().join("locked")).unwrap();
}

#[test]
fn a_wrong_diff_id_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::for_layout(store_dir.path());
    let tar = layer_tar(&[("f", 0o644, Some(b"f"))]);
    let digest = blobs.put_bytes(&tar).unwrap();
    let layer = RunLayer {
        digest,
        diff_id: crate::oci::Digest::of_bytes(b"something else"),
        media_type: "application/vnd.oci.image.layer.v1.tar".to_owned(),
    };
    let root = Root::open(root.path()).unwrap();
    let error = Unpacker::new(&root)
        .apply_layer(&layer, &blobs)
        .unwrap_err();
    assert!(
        matches!(error, RunError::DiffIdMismatch { .. }),
        "{error:?}"
    );
}

#[test]
fn components_refuse_parent_references() {
    assert_eq!(safe_components(b"./usr//bin/").unwrap(), ["usr", "bin"]);
    assert_eq!(safe_components(b"/etc/passwd").unwrap(), ["etc", "passwd"]);
    assert!(safe_components(b"./").unwrap().is_empty());
    assert!(safe_components(b"../etc").is_none());
    assert!(safe_components(b"a/../../b").is_none());
}
