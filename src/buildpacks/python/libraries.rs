//! Whether compiled extensions in the dependency layer will load in the image: every
//! `DT_NEEDED` library must be in the image (run image or runtime layer), bundled by the
//! wheel and reachable through `RUNPATH` (`$ORIGIN/../pkg.libs`, as auditwheel writes it), or
//! be another shared object of the layer (the loader reuses an already loaded soname).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::elf::dynamic_info;
use super::error::PythonError;
use crate::layer::LayerEntries;

/// One library an extension needs that the image does not have.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MissingLibrary {
    /// The extension, relative to the layer.
    pub module: String,
    /// The `DT_NEEDED` name.
    pub library: String,
}

/// Whether a file name looks like a shared object (`x.so`, `libx.so.1.2`).
pub fn is_shared_object_name(name: &str) -> bool {
    name.ends_with(".so") || name.contains(".so.")
}

/// Shared library file names a root layer provides in its library directories.
pub fn libraries_in_entries(entries: &LayerEntries) -> BTreeSet<String> {
    entries
        .iter()
        .filter(|(path, _)| path.starts_with("usr/lib") || path.starts_with("lib"))
        .filter_map(|(path, _)| path.rsplit('/').next().map(str::to_owned))
        .filter(|name| is_shared_object_name(name))
        .collect()
}

/// Check every shared object under `layer_dir` against `available` (library file names in the
/// image). Files that are not ELF, or that cannot be parsed, are not extensions we can judge
/// and are skipped.
pub fn check_layer(
    layer_dir: &Path,
    available: &BTreeSet<String>,
) -> Result<Vec<MissingLibrary>, PythonError> {
    let walk_error = |source: walkdir::Error| PythonError::ProcessDeps {
        path: source.path().unwrap_or(layer_dir).to_path_buf(),
        source: source.into(),
    };
    let mut objects: Vec<PathBuf> = Vec::new();
    for entry in walkdir::WalkDir::new(layer_dir).sort_by_file_name() {
        let entry = entry.map_err(walk_error)?;
        if entry.file_type().is_file()
            && is_shared_object_name(&entry.file_name().to_string_lossy())
        {
            objects.push(entry.into_path());
        }
    }
    let in_layer: BTreeSet<String> = objects
        .iter()
        .filter_map(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .collect();
    let mut missing = BTreeSet::new();
    for object in &objects {
        let file = fs_err::File::open(object).map_err(|source| PythonError::ProcessDeps {
            path: object.clone(),
            source,
        })?;
        let Ok(Some(info)) = dynamic_info(file.file()) else {
            continue;
        };
        let origin = object.parent().unwrap_or(layer_dir);
        for library in &info.needed {
            let found = available.contains(library)
                || in_layer.contains(library)
                || info
                    .search_path
                    .iter()
                    .filter_map(|dir| expand_origin(dir, origin, layer_dir))
                    .any(|dir| dir.join(library).is_file());
            if !found {
                missing.insert(MissingLibrary {
                    module: object
                        .strip_prefix(layer_dir)
                        .unwrap_or(object)
                        .display()
                        .to_string(),
                    library: library.clone(),
                });
            }
        }
    }
    Ok(missing.into_iter().collect())
}

/// A search path entry as a directory inside the layer: `$ORIGIN`/`${ORIGIN}` is the
/// object's directory. Absolute entries name build-machine paths and are not searched.
fn expand_origin(dir: &str, origin: &Path, layer_dir: &Path) -> Option<PathBuf> {
    let rest = dir
        .strip_prefix("$ORIGIN")
        .or_else(|| dir.strip_prefix("${ORIGIN}"))?;
    let joined = origin.join(rest.trim_start_matches('/'));
    let mut resolved = PathBuf::new();
    for component in joined.components() {
        match component {
            std::path::Component::ParentDir => {
                resolved.pop();
            }
            std::path::Component::CurDir => {}
            other => resolved.push(other),
        }
    }
    resolved.starts_with(layer_dir).then_some(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Owner;

    fn copy_host_extension(to: &Path) {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(
            "/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so",
            to,
        )
        .unwrap();
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn reports_libraries_the_image_lacks() {
        let layer = tempfile::tempdir().unwrap();
        copy_host_extension(&layer.path().join("ssl_ext/_ssl.so"));
        std::fs::write(layer.path().join("not_elf.so"), "text").unwrap();
        let missing = check_layer(layer.path(), &names(&["libc.so.6"])).unwrap();
        let libraries: Vec<&str> = missing.iter().map(|item| item.library.as_str()).collect();
        assert_eq!(libraries, ["libcrypto.so.3", "libssl.so.3"]);
        assert_eq!(missing[0].module, "ssl_ext/_ssl.so");
        assert!(
            check_layer(
                layer.path(),
                &names(&["libc.so.6", "libssl.so.3", "libcrypto.so.3"])
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn libraries_bundled_in_the_layer_count() {
        let layer = tempfile::tempdir().unwrap();
        copy_host_extension(&layer.path().join("pkg/_ssl.so"));
        // Bundled next to the wheel, as auditwheel does (`pkg.libs/`), found by soname.
        std::fs::create_dir_all(layer.path().join("pkg.libs")).unwrap();
        std::fs::write(layer.path().join("pkg.libs/libssl.so.3"), "").unwrap();
        std::fs::write(layer.path().join("pkg.libs/libcrypto.so.3"), "").unwrap();
        assert!(
            check_layer(layer.path(), &names(&["libc.so.6"]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn origin_expands_inside_the_layer_only() {
        let layer = Path::new("/layer");
        let origin = Path::new("/layer/pkg/sub");
        assert_eq!(
            expand_origin("$ORIGIN/../../pkg.libs", origin, layer),
            Some(PathBuf::from("/layer/pkg.libs"))
        );
        assert_eq!(
            expand_origin("${ORIGIN}", origin, layer),
            Some(PathBuf::from("/layer/pkg/sub"))
        );
        assert_eq!(expand_origin("$ORIGIN/../../../etc", origin, layer), None);
        assert_eq!(expand_origin("/usr/lib", origin, layer), None);
    }

    #[test]
    fn runtime_entries_give_library_names() {
        let mut entries = LayerEntries::new();
        entries
            .add_bytes(
                "usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0",
                vec![],
                0o644,
                Owner::ROOT,
            )
            .unwrap();
        entries
            .add_bytes(
                "usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so",
                vec![],
                0o644,
                Owner::ROOT,
            )
            .unwrap();
        entries
            .add_bytes("usr/share/doc/x.so.txt", vec![], 0o644, Owner::ROOT)
            .unwrap();
        entries
            .add_bytes("usr/bin/python3.11", vec![], 0o755, Owner::ROOT)
            .unwrap();
        let libraries = libraries_in_entries(&entries);
        assert!(libraries.contains("libpython3.11.so.1.0"));
        assert!(!libraries.contains("python3.11"));
        assert!(!libraries.contains("x.so.txt"));
    }
}
