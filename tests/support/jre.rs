//! A run image that already has Java: the busybox test base plus one layer holding the
//! host's JRE 17 (symlinks followed) with the shared libraries it loads and
//! `/usr/bin/java`. It stands for a user's own JRE base image (`BP_JAVA_RUN_IMAGE_VERSION`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln::layer::{Compression, Entry, EntryKind, FileSource, LayerEntries, Owner, write_layer};
use kiln::oci::{BlobStore, Digest};

/// The host JRE.
pub const HOST_JVM: &str = "/usr/lib/jvm/java-17-openjdk-amd64";

/// JDK-only parts a JRE image does not need (compiler modules, sources, docs).
const SKIPPED: &[&str] = &[
    "jmods",
    "lib/src.zip",
    "lib/ct.sym",
    "include",
    "man",
    "demo",
    "legal",
];

/// Write the base into `dir` (an OCI layout, tag `latest`) and return `oci:DIR:latest`.
pub fn host_jre_base(dir: &Path) -> String {
    assert!(
        Path::new(HOST_JVM).join("bin/java").is_file(),
        "{HOST_JVM} is missing: install openjdk-17-jdk-headless (scripts/test.sh does)"
    );
    super::busybox_base(dir, "jre");
    let mut entries = LayerEntries::new();
    let mut libraries = BTreeSet::new();
    // Broken links (e.g. a cacerts whose keystore package is absent) are skipped.
    for entry in walkdir::WalkDir::new(HOST_JVM)
        .follow_links(true)
        .into_iter()
        .filter_map(Result::ok)
    {
        let relative = entry.path().strip_prefix(HOST_JVM).unwrap();
        if SKIPPED.iter().any(|skipped| relative.starts_with(skipped))
            || !entry.file_type().is_file()
        {
            continue;
        }
        let path = entry.path();
        if path.extension().is_some_and(|extension| extension == "so")
            || relative.starts_with("bin")
        {
            libraries.extend(needed_libraries(path));
        }
        add_file(
            &mut entries,
            &format!(
                "{}/{}",
                HOST_JVM.trim_start_matches('/'),
                relative.display()
            ),
            path,
        );
    }
    for library in libraries {
        add_file(
            &mut entries,
            library.to_str().unwrap().trim_start_matches('/'),
            &library,
        );
    }
    entries
        .add_symlink("usr/bin/java", &format!("{HOST_JVM}/bin/java"), Owner::ROOT)
        .unwrap();
    entries.add_missing_parents(0o755, Owner::ROOT);
    append_layer(dir, &entries);
    format!("oci:{}:latest", dir.display())
}

fn add_file(entries: &mut LayerEntries, path: &str, source: &Path) {
    let metadata = std::fs::metadata(source).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o7777;
    let entry = Entry {
        kind: EntryKind::File(FileSource::Path {
            path: source.to_path_buf(),
            size: metadata.len(),
        }),
        mode,
        owner: Owner::ROOT,
    };
    entries.insert(path, entry).unwrap();
}

/// Libraries `ldd` resolves for `binary`, the dynamic loader included, outside the JVM dir.
fn needed_libraries(binary: &Path) -> Vec<PathBuf> {
    let Ok(output) = Command::new("ldd").arg(binary).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().find(|word| word.starts_with('/')))
        .map(PathBuf::from)
        .filter(|path| !path.starts_with(HOST_JVM) && path.is_file())
        .collect()
}

/// Add a layer to the single image of the layout at `dir`, rewriting config, manifest and
/// index by hand (not with kiln's image builder, which is what the tests check).
fn append_layer(dir: &Path, entries: &LayerEntries) {
    let store = BlobStore::for_layout(dir);
    let layer = write_layer(entries, Compression::Zstd, &store).unwrap();
    let read_json = |digest: &str| -> serde_json::Value {
        let hex = digest.trim_start_matches("sha256:");
        serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let index_path = dir.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let mut manifest = read_json(index["manifests"][0]["digest"].as_str().unwrap());
    let mut config = read_json(manifest["config"]["digest"].as_str().unwrap());
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(layer.diff_id.to_string().into());
    config["history"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"created_by": "host JRE 17", "created": "2020-01-01T00:00:00Z"}));
    let put = |value: &serde_json::Value| -> (Digest, usize) {
        let bytes = serde_json::to_vec(value).unwrap();
        (store.put_bytes(&bytes).unwrap(), bytes.len())
    };
    let (config_digest, config_size) = put(&config);
    manifest["config"]["digest"] = config_digest.to_string().into();
    manifest["config"]["size"] = config_size.into();
    manifest["layers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": layer.media_type, "digest": layer.digest.to_string(), "size": layer.size
        }));
    let (manifest_digest, manifest_size) = put(&manifest);
    index["manifests"][0]["digest"] = manifest_digest.to_string().into();
    index["manifests"][0]["size"] = manifest_size.into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}
