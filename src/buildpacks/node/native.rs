//! Native addons (`*.node`): compiled against the Node that built them. Unless they use the
//! stable N-API, an addon built by the host's Node fails to load on a runtime of another
//! major, so such a mismatch stops the build instead of shipping a broken image.

use std::path::{Path, PathBuf};

/// How a native addon binds to Node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddonKind {
    /// N-API only: loads on any Node with that N-API version.
    NodeApi,
    /// Registers through `node_module_register`: tied to one NODE_MODULE_VERSION.
    AbiSpecific,
}

/// Classify an addon from its bytes: ABI-specific addons import `node_module_register`; N-API
/// ones only export `napi_register_module_v1`. Both names sit in the ELF dynamic string table,
/// so a byte search answers without parsing ELF.
pub fn classify(bytes: &[u8]) -> AddonKind {
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|window| window == needle);
    if contains(b"node_module_register") || !contains(b"napi_register_module_v1") {
        AddonKind::AbiSpecific
    } else {
        AddonKind::NodeApi
    }
}

/// ABI-specific addons under `root` (relative paths, sorted). `prebuilds/` directories are
/// skipped: node-gyp-build picks the file matching the running Node from them at load time.
pub fn abi_specific_addons(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(item) = walker.next() {
        let item = item.map_err(std::io::Error::other)?;
        let name = item.file_name();
        if item.file_type().is_dir() && (name == "prebuilds" || name == ".git") {
            walker.skip_current_dir();
            continue;
        }
        if !item.file_type().is_file() || !name.to_string_lossy().ends_with(".node") {
            continue;
        }
        let bytes = fs_err::read(item.path())?;
        if classify(&bytes) == AddonKind::AbiSpecific {
            found.push(
                item.path()
                    .strip_prefix(root)
                    .unwrap_or(item.path())
                    .to_path_buf(),
            );
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_registration_symbol() {
        assert_eq!(
            classify(b"\x7fELF...napi_register_module_v1..."),
            AddonKind::NodeApi
        );
        assert_eq!(
            classify(b"\x7fELF...node_module_register...napi_register_module_v1"),
            AddonKind::AbiSpecific
        );
        assert_eq!(classify(b"\x7fELF..."), AddonKind::AbiSpecific);
    }

    #[test]
    fn finds_abi_specific_addons_outside_prebuilds() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, bytes: &[u8]| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        };
        write(
            "node_modules/a/build/Release/a.node",
            b"node_module_register",
        );
        write(
            "node_modules/b/build/Release/b.node",
            b"napi_register_module_v1",
        );
        write(
            "node_modules/c/prebuilds/linux-x64/node.abi115.node",
            b"node_module_register",
        );
        write("node_modules/d/index.js", b"node_module_register");
        assert_eq!(
            abi_specific_addons(dir.path()).unwrap(),
            [PathBuf::from("node_modules/a/build/Release/a.node")]
        );
    }
}
