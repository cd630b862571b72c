//! The Jib-like split: third-party runtime jars go into their own cached launch layer,
//! keyed by their exact bytes, so a code change leaves that layer (and its digest) alone;
//! the app's jar and its sibling modules' jars become the app layer (`/workspace`), which is
//! all that changes when only code does.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The runtime jars Maven copied, split by owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependencyJars {
    /// Third-party jars: the dependency layer.
    pub external: Vec<PathBuf>,
    /// Jars of the project's own modules: they change with the code, so the app layer.
    pub reactor: Vec<PathBuf>,
}

/// Sort the jars in `dir` by owner. `reactor_stems` are the project modules' file stems as
/// copy-dependencies names them (`groupId.artifactId-version`).
pub fn split_dependencies(dir: &Path, reactor_stems: &[String]) -> io::Result<DependencyJars> {
    let mut jars = DependencyJars::default();
    if !dir.is_dir() {
        return Ok(jars);
    }
    let mut paths: Vec<PathBuf> = fs_err::read_dir(dir)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<io::Result<_>>()?;
    paths.sort();
    for path in paths {
        let name = file_name(&path);
        let Some(stem) = name.strip_suffix(".jar") else {
            continue;
        };
        // A classifier follows the version after a `-`.
        let is_reactor = reactor_stems.iter().any(|reactor| {
            stem == reactor
                || stem
                    .strip_prefix(reactor.as_str())
                    .is_some_and(|rest| rest.starts_with('-'))
        });
        if is_reactor {
            jars.reactor.push(path);
        } else {
            jars.external.push(path);
        }
    }
    Ok(jars)
}

/// Metadata deciding reuse of the dependency layer: a digest over every jar's name and
/// bytes (so any added, removed, renamed or rebuilt jar counts) plus the count.
pub fn dependencies_metadata(jars: &[PathBuf]) -> io::Result<Value> {
    let mut listing = Sha256::new();
    for jar in jars {
        let mut file = fs_err::File::open(jar)?;
        let mut content = Sha256::new();
        io::copy(&mut file, &mut content)?;
        listing.update(file_name(jar).as_bytes());
        listing.update(b"\0");
        listing.update(hex::encode(content.finalize()).as_bytes());
        listing.update(b"\n");
    }
    Ok(json!({
        "dependency_jars": jars.len(),
        "dependency_jars_sha256": hex::encode(listing.finalize()),
    }))
}

/// Move files into `dir` under their own names.
pub fn move_into(files: &[PathBuf], dir: &Path) -> io::Result<()> {
    fs_err::create_dir_all(dir)?;
    for file in files {
        move_file(file, &dir.join(file_name(file)))?;
    }
    Ok(())
}

/// Replace everything in `app_dir` with `keep` (source path → path relative to
/// `app_dir`). The sources may live inside `app_dir`: they are set aside first.
pub fn replace_app_dir(app_dir: &Path, keep: &[(PathBuf, String)]) -> io::Result<()> {
    let aside = app_dir.join(".kiln-java-keep");
    if aside.exists() {
        fs_err::remove_dir_all(&aside)?;
    }
    fs_err::create_dir_all(&aside)?;
    for (index, (source, _)) in keep.iter().enumerate() {
        move_file(source, &aside.join(index.to_string()))?;
    }
    for entry in fs_err::read_dir(app_dir)? {
        let path = entry?.path();
        if path == aside {
            continue;
        }
        if fs_err::symlink_metadata(&path)?.is_dir() {
            fs_err::remove_dir_all(&path)?;
        } else {
            fs_err::remove_file(&path)?;
        }
    }
    for (index, (_, destination)) in keep.iter().enumerate() {
        let target = app_dir.join(destination);
        if let Some(parent) = target.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::rename(aside.join(index.to_string()), target)?;
    }
    fs_err::remove_dir_all(&aside)
}

/// Rename, or copy when the two paths are on different filesystems.
fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    match fs_err::rename(from, to) {
        Ok(()) => Ok(()),
        Err(error) if error.raw_os_error() == Some(libc::EXDEV) => {
            fs_err::copy(from, to)?;
            fs_err::remove_file(from)
        }
        Err(error) => Err(error),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str, content: &str) -> PathBuf {
        let path = dir.join(name);
        fs_err::write(&path, content).unwrap();
        path
    }

    #[test]
    fn sibling_modules_go_to_the_app_and_the_rest_to_dependencies() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "org.apache.commons.commons-lang3-3.12.0.jar",
            "dev.kiln.core-1.0.jar",
            "dev.kiln.core-1.0-tests.jar",
            "dev.kiln.core-1.0.1.jar",
            "notes.txt",
        ] {
            touch(dir.path(), name, name);
        }
        let jars = split_dependencies(dir.path(), &["dev.kiln.core-1.0".to_owned()]).unwrap();
        let names =
            |paths: &[PathBuf]| paths.iter().map(|path| file_name(path)).collect::<Vec<_>>();
        assert_eq!(
            names(&jars.reactor),
            ["dev.kiln.core-1.0-tests.jar", "dev.kiln.core-1.0.jar"]
        );
        assert_eq!(
            names(&jars.external),
            [
                "dev.kiln.core-1.0.1.jar",
                "org.apache.commons.commons-lang3-3.12.0.jar"
            ]
        );
        assert_eq!(
            split_dependencies(&dir.path().join("none"), &[]).unwrap(),
            DependencyJars::default()
        );
    }

    #[test]
    fn metadata_follows_names_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let a = touch(dir.path(), "a.jar", "one");
        let first = dependencies_metadata(std::slice::from_ref(&a)).unwrap();
        assert_eq!(
            first,
            dependencies_metadata(std::slice::from_ref(&a)).unwrap()
        );
        assert_eq!(first["dependency_jars"], 1);
        touch(dir.path(), "a.jar", "two");
        assert_ne!(
            first,
            dependencies_metadata(std::slice::from_ref(&a)).unwrap(),
            "same name, new bytes"
        );
        let b = dir.path().join("b.jar");
        fs_err::rename(&a, &b).unwrap();
        touch(dir.path(), "b.jar", "one");
        assert_ne!(
            first,
            dependencies_metadata(&[b]).unwrap(),
            "same bytes, new name"
        );
    }

    #[test]
    fn app_dir_keeps_only_the_chosen_files() {
        let app = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(app.path().join("target/classes")).unwrap();
        fs_err::create_dir_all(app.path().join("src/main")).unwrap();
        let jar = touch(&app.path().join("target"), "app-1.0.jar", "jar");
        let sibling = touch(&app.path().join("target"), "core.jar", "core");
        touch(app.path(), ".hidden", "x");
        touch(app.path(), "pom.xml", "<project/>");
        replace_app_dir(
            app.path(),
            &[
                (jar, "app-1.0.jar".to_owned()),
                (sibling, "lib/core.jar".to_owned()),
            ],
        )
        .unwrap();
        let mut left: Vec<String> = walkdir::WalkDir::new(app.path())
            .min_depth(1)
            .into_iter()
            .map(|entry| {
                entry
                    .unwrap()
                    .path()
                    .strip_prefix(app.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        left.sort();
        assert_eq!(left, ["app-1.0.jar", "lib", "lib/core.jar"]);
        assert_eq!(
            fs_err::read_to_string(app.path().join("lib/core.jar")).unwrap(),
            "core"
        );
    }
}
