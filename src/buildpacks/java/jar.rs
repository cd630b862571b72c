//! Reading built jars: the manifest's `Main-Class` / `Class-Path`, and the newest class
//! file version inside, so bytecode too new for the runtime is caught at build time.

use std::io::Read;
use std::path::Path;

use super::error::JavaError;

/// Class file major version of Java 1.0…1.1 is 45; Java N (N ≥ 2) is 44 + N.
const CLASS_VERSION_OFFSET: u16 = 44;

/// The manifest attributes the buildpack uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JarManifest {
    /// `Main-Class`.
    pub main_class: Option<String>,
    /// `Class-Path` entries.
    pub class_path: Vec<String>,
}

/// Parse `META-INF/MANIFEST.MF` text: `Name: value` lines, continued by lines starting
/// with one space; only the main section (before the first blank line) counts.
pub fn parse_manifest(text: &str) -> JarManifest {
    let mut attributes: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if let Some(continued) = line.strip_prefix(' ') {
            if let Some((_, value)) = attributes.last_mut() {
                value.push_str(continued);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            attributes.push((name.trim().to_owned(), value.trim_start().to_owned()));
        }
    }
    let get = |wanted: &str| {
        attributes
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, value)| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    JarManifest {
        main_class: get("Main-Class"),
        class_path: get("Class-Path")
            .map(|value| value.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
    }
}

fn open(path: &Path) -> Result<zip::ZipArchive<fs_err::File>, JavaError> {
    let read_error = |source| JavaError::ReadJar {
        path: path.to_path_buf(),
        source,
    };
    let file =
        fs_err::File::open(path).map_err(|error| read_error(zip::result::ZipError::Io(error)))?;
    zip::ZipArchive::new(file).map_err(read_error)
}

/// The jar's manifest (empty when it has none).
pub fn read_manifest(path: &Path) -> Result<JarManifest, JavaError> {
    let mut archive = open(path)?;
    let mut entry = match archive.by_name("META-INF/MANIFEST.MF") {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(JarManifest::default()),
        Err(source) => {
            return Err(JavaError::ReadJar {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut bytes = Vec::new();
    entry
        .read_to_end(&mut bytes)
        .map_err(|error| JavaError::ReadJar {
            path: path.to_path_buf(),
            source: zip::result::ZipError::Io(error),
        })?;
    Ok(parse_manifest(&String::from_utf8_lossy(&bytes)))
}

/// Jars Maven attaches beside the main artifact; never the app.
const ATTACHED_SUFFIXES: &[&str] = &[
    "-sources.jar",
    "-javadoc.jar",
    "-tests.jar",
    "-test-sources.jar",
];

/// The project's jar in `target_dir`: the one named `expected_stem.jar`, else the only jar
/// that is not an attached artifact (sources, javadoc, tests) or a shade leftover.
pub fn find_app_jar(
    target_dir: &Path,
    expected_stem: Option<&str>,
    dir_label: &str,
) -> Result<std::path::PathBuf, JavaError> {
    if let Some(stem) = expected_stem {
        let expected = target_dir.join(format!("{stem}.jar"));
        if expected.is_file() {
            return Ok(expected);
        }
    }
    let mut candidates: Vec<String> = match fs_err::read_dir(target_dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".jar"))
            .filter(|name| {
                !name.starts_with("original-")
                    && !ATTACHED_SUFFIXES
                        .iter()
                        .any(|suffix| name.ends_with(suffix))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    candidates.sort();
    match candidates.as_slice() {
        [only] => Ok(target_dir.join(only)),
        [] => Err(JavaError::NoJar {
            dir: dir_label.to_owned(),
        }),
        _ => Err(JavaError::SeveralJars {
            dir: dir_label.to_owned(),
            jars: candidates,
        }),
    }
}

/// The Java version a class file's header needs, from its first 8 bytes.
pub fn class_java_version(header: &[u8]) -> Option<u32> {
    match header {
        [0xCA, 0xFE, 0xBA, 0xBE, _, _, major_high, major_low, ..] => {
            let major = u16::from_be_bytes([*major_high, *major_low]);
            Some(u32::from(major.saturating_sub(CLASS_VERSION_OFFSET).max(1)))
        }
        _ => None,
    }
}

/// The class needing the newest Java in a jar, with that version. Multi-release entries
/// (`META-INF/versions/N/…`) are skipped: an older JVM never loads them.
pub fn newest_class(path: &Path) -> Result<Option<(String, u32)>, JavaError> {
    let mut archive = open(path)?;
    let mut newest: Option<(String, u32)> = None;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|source| JavaError::ReadJar {
                path: path.to_path_buf(),
                source,
            })?;
        // A name that does not decode cannot be a class the JVM loads by name.
        let Ok(name) = entry.name().map(|name| name.into_owned()) else {
            continue;
        };
        if !name.ends_with(".class") || name.starts_with("META-INF/versions/") {
            continue;
        }
        let mut header = [0u8; 8];
        // A damaged or truncated entry is the JVM's problem, not a version verdict.
        if entry.read_exact(&mut header).is_err() {
            continue;
        }
        if let Some(version) = class_java_version(&header)
            && newest.as_ref().is_none_or(|(_, known)| version > *known)
        {
            newest = Some((name, version));
        }
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn manifest_main_section_with_continuations() {
        let text = "Manifest-Version: 1.0\r\nMain-Class: dev.kiln.samples.\r\n VeryLongMainClassName\r\nClass-Path: lib/a.jar\r\n  lib/b.jar\r\n\r\nName: x\r\nMain-Class: ignored\r\n";
        assert_eq!(
            parse_manifest(text),
            JarManifest {
                main_class: Some("dev.kiln.samples.VeryLongMainClassName".to_owned()),
                class_path: vec!["lib/a.jar".to_owned(), "lib/b.jar".to_owned()],
            }
        );
        assert_eq!(
            parse_manifest("Manifest-Version: 1.0\n"),
            JarManifest::default()
        );
    }

    #[test]
    fn finds_the_project_jar() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path();
        assert!(matches!(
            find_app_jar(target, None, "target"),
            Err(JavaError::NoJar { .. })
        ));
        for name in [
            "app-1.0.jar",
            "app-1.0-sources.jar",
            "original-app-1.0.jar",
            "notes.txt",
        ] {
            fs_err::write(target.join(name), "").unwrap();
        }
        assert_eq!(
            find_app_jar(target, None, "target").unwrap(),
            target.join("app-1.0.jar")
        );
        fs_err::write(target.join("other.jar"), "").unwrap();
        assert!(
            matches!(find_app_jar(target, None, "target"), Err(JavaError::SeveralJars { jars, .. }) if jars == ["app-1.0.jar", "other.jar"])
        );
        assert_eq!(
            find_app_jar(target, Some("other"), "target").unwrap(),
            target.join("other.jar")
        );
    }

    #[test]
    fn class_versions() {
        assert_eq!(
            class_java_version(&[0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 61]),
            Some(17)
        );
        assert_eq!(
            class_java_version(&[0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 52]),
            Some(8)
        );
        assert_eq!(
            class_java_version(&[0xCA, 0xFE, 0xBA, 0xBE, 0, 3, 0, 45]),
            Some(1)
        );
        assert_eq!(class_java_version(b"PK\x03\x04abcd"), None);
    }

    #[test]
    fn reads_a_jar_and_finds_the_newest_class() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.jar");
        let mut writer = zip::ZipWriter::new(fs_err::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        writer.start_file("META-INF/MANIFEST.MF", options).unwrap();
        writer
            .write_all(b"Manifest-Version: 1.0\nMain-Class: a.Main\n")
            .unwrap();
        for (name, major) in [
            ("a/Main.class", 61u8),
            ("a/Old.class", 52),
            ("META-INF/versions/21/a/New.class", 65),
        ] {
            writer.start_file(name, options).unwrap();
            writer
                .write_all(&[0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, major, 1, 2, 3])
                .unwrap();
        }
        writer.finish().unwrap();
        assert_eq!(
            read_manifest(&path).unwrap().main_class.as_deref(),
            Some("a.Main")
        );
        assert_eq!(
            newest_class(&path).unwrap(),
            Some(("a/Main.class".to_owned(), 17))
        );
        let broken = dir.path().join("broken.jar");
        fs_err::write(&broken, b"not a zip").unwrap();
        assert!(matches!(
            read_manifest(&broken),
            Err(JavaError::ReadJar { .. })
        ));
    }
}
