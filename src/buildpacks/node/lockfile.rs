//! Lockfiles: which one the app has, its format version, its hash, and (for npm) whether it
//! still matches package.json.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::error::NodeError;
use super::package_json::PackageJson;
use super::package_manager::PackageManager;
use super::semver::{Range, Version};

/// A lockfile's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockfileFormat {
    /// `package-lock.json` / `npm-shrinkwrap.json` with its `lockfileVersion` (1–3).
    Npm(u8),
    /// `yarn.lock` written by Yarn 1.
    YarnClassic,
    /// `pnpm-lock.yaml` with its `lockfileVersion` (`5.4`, `6.0`, `9.0`…).
    Pnpm(String),
}

/// The app's lockfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockfile {
    /// File name, relative to the app.
    pub file: &'static str,
    /// Its format.
    pub format: LockfileFormat,
    /// sha256 of its bytes, hex.
    pub sha256: String,
    /// Its text.
    pub text: String,
}

impl Lockfile {
    /// The package manager that reads it.
    pub fn manager(&self) -> PackageManager {
        match self.format {
            LockfileFormat::Npm(_) => PackageManager::Npm,
            LockfileFormat::YarnClassic => PackageManager::Yarn,
            LockfileFormat::Pnpm(_) => PackageManager::Pnpm,
        }
    }

    /// `package-lock.json v3`, for logs and plans.
    pub fn describe(&self) -> String {
        match &self.format {
            LockfileFormat::Npm(version) => format!("{} v{version}", self.file),
            LockfileFormat::YarnClassic => format!("{} v1", self.file),
            LockfileFormat::Pnpm(version) => format!("{} v{version}", self.file),
        }
    }

    /// Read a lockfile's format from its name and text.
    pub fn parse(file: &'static str, text: String) -> Result<Self, NodeError> {
        let format = match file {
            "package-lock.json" | "npm-shrinkwrap.json" => {
                LockfileFormat::Npm(npm_lockfile_version(file, &text)?)
            }
            "yarn.lock" => yarn_lockfile_format(&text)?,
            "pnpm-lock.yaml" => LockfileFormat::Pnpm(pnpm_lockfile_version(&text)?),
            _ => {
                return Err(NodeError::UnknownLockfileVersion {
                    file: file.to_owned(),
                    version: "unknown".to_owned(),
                });
            }
        };
        Ok(Self {
            file,
            format,
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            text,
        })
    }
}

/// Lockfile names, in the order npm itself prefers them.
pub const LOCKFILE_NAMES: &[&str] = &[
    "npm-shrinkwrap.json",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
];

/// `lockfileVersion` of an npm lockfile; npm 5/6 lockfiles may lack it and are v1.
pub fn npm_lockfile_version(file: &str, text: &str) -> Result<u8, NodeError> {
    let value: Value = serde_json::from_str(text).map_err(|source| NodeError::ParseLockfile {
        file: file.to_owned(),
        source,
    })?;
    match value.get("lockfileVersion") {
        None => Ok(1),
        Some(Value::Number(number)) => match number.as_u64() {
            Some(version @ 1..=3) => Ok(version as u8),
            _ => Err(NodeError::UnknownLockfileVersion {
                file: file.to_owned(),
                version: number.to_string(),
            }),
        },
        Some(other) => Err(NodeError::UnknownLockfileVersion {
            file: file.to_owned(),
            version: other.to_string(),
        }),
    }
}

/// Yarn 1 writes a `# yarn lockfile v1` header; Yarn 2+ (Berry) writes YAML with `__metadata`.
pub fn yarn_lockfile_format(text: &str) -> Result<LockfileFormat, NodeError> {
    if text.lines().any(|line| line.starts_with("__metadata:")) {
        return Err(NodeError::YarnBerry);
    }
    if text
        .lines()
        .take(5)
        .any(|line| line.trim() == "# yarn lockfile v1")
    {
        return Ok(LockfileFormat::YarnClassic);
    }
    Err(NodeError::UnknownLockfileVersion {
        file: "yarn.lock".to_owned(),
        version: "no `# yarn lockfile v1` header".to_owned(),
    })
}

/// The top-level `lockfileVersion:` of a pnpm lockfile (quoted or not).
pub fn pnpm_lockfile_version(text: &str) -> Result<String, NodeError> {
    text.lines()
        .find_map(|line| line.strip_prefix("lockfileVersion:"))
        .map(|version| version.trim().trim_matches(['\'', '"']).to_owned())
        .filter(|version| !version.is_empty())
        .ok_or_else(|| NodeError::UnknownLockfileVersion {
            file: "pnpm-lock.yaml".to_owned(),
            version: "missing".to_owned(),
        })
}

/// Why an npm lockfile does not match package.json (the check `npm ci` makes, done up front
/// so the error names the dependency); `None` when they agree.
pub fn npm_sync_problem(package: &PackageJson, lockfile: &Lockfile) -> Option<String> {
    let LockfileFormat::Npm(version) = lockfile.format else {
        return None;
    };
    let value: Value = serde_json::from_str(&lockfile.text).ok()?;
    let file = lockfile.file;
    let wanted: Vec<(&str, &BTreeMap<String, String>)> = vec![
        ("dependencies", &package.dependencies),
        ("devDependencies", &package.dev_dependencies),
        ("optionalDependencies", &package.optional_dependencies),
    ];
    if version == 1 {
        let locked = value.get("dependencies").and_then(Value::as_object);
        for (_, dependencies) in wanted {
            for (name, range) in dependencies {
                let Some(entry) = locked.and_then(|locked| locked.get(name)) else {
                    return Some(format!("`{name}` is in package.json but not in {file}"));
                };
                let locked_version = entry
                    .get("version")
                    .and_then(Value::as_str)
                    .and_then(Version::parse);
                if let (Some(locked_version), Ok(range)) = (locked_version, Range::parse(range))
                    && !range.matches(&locked_version)
                {
                    return Some(format!(
                        "package.json wants `{name}@{}` but {file} locks {locked_version}",
                        range_text(dependencies, name)
                    ));
                }
            }
        }
        return None;
    }
    let root = value.get("packages").and_then(|packages| packages.get(""));
    for (field, dependencies) in wanted {
        let locked: BTreeMap<String, String> = root
            .and_then(|root| root.get(field))
            .and_then(Value::as_object)
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|(name, range)| Some((name.clone(), range.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        for (name, range) in dependencies {
            match locked.get(name) {
                None => {
                    return Some(format!(
                        "`{name}` is in package.json `{field}` but not in {file}"
                    ));
                }
                Some(locked_range) if locked_range != range => {
                    return Some(format!(
                        "package.json `{field}` has `{name}@{range}` but {file} was made for `{name}@{locked_range}`"
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(name) = locked.keys().find(|name| !dependencies.contains_key(*name)) {
            return Some(format!(
                "{file} has `{name}` in `{field}`, but package.json no longer does"
            ));
        }
    }
    None
}

fn range_text<'a>(dependencies: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    dependencies.get(name).map(String::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(json: &str) -> PackageJson {
        PackageJson::parse(json, "package.json").unwrap()
    }

    #[test]
    fn npm_versions() {
        assert_eq!(
            npm_lockfile_version("p", r#"{"lockfileVersion": 3}"#).unwrap(),
            3
        );
        assert_eq!(
            npm_lockfile_version("p", r#"{"lockfileVersion": 2}"#).unwrap(),
            2
        );
        assert_eq!(
            npm_lockfile_version("p", r#"{"dependencies": {}}"#).unwrap(),
            1
        );
        assert!(matches!(
            npm_lockfile_version("p", r#"{"lockfileVersion": 4}"#),
            Err(NodeError::UnknownLockfileVersion { .. })
        ));
        assert!(matches!(
            npm_lockfile_version("p", "{"),
            Err(NodeError::ParseLockfile { .. })
        ));
    }

    #[test]
    fn yarn_and_pnpm_formats() {
        assert_eq!(
            yarn_lockfile_format("# THIS IS AN AUTOGENERATED FILE.\n# yarn lockfile v1\n\n")
                .unwrap(),
            LockfileFormat::YarnClassic
        );
        assert!(matches!(
            yarn_lockfile_format("__metadata:\n  version: 6\n"),
            Err(NodeError::YarnBerry)
        ));
        assert_eq!(
            pnpm_lockfile_version("lockfileVersion: '9.0'\n\nsettings:\n").unwrap(),
            "9.0"
        );
        assert_eq!(
            pnpm_lockfile_version("lockfileVersion: 5.4\n").unwrap(),
            "5.4"
        );
        assert!(pnpm_lockfile_version("importers:\n").is_err());
    }

    #[test]
    fn npm_v3_sync_compares_root_ranges() {
        let lock = |text: &str| Lockfile::parse("package-lock.json", text.to_owned()).unwrap();
        let locked =
            lock(r#"{"lockfileVersion":3,"packages":{"":{"dependencies":{"ms":"^2.1.3"}}}}"#);
        assert_eq!(
            npm_sync_problem(&package(r#"{"dependencies":{"ms":"^2.1.3"}}"#), &locked),
            None
        );
        let problem =
            npm_sync_problem(&package(r#"{"dependencies":{"ms":"^2.0.0"}}"#), &locked).unwrap();
        assert!(
            problem.contains("ms@^2.0.0") && problem.contains("ms@^2.1.3"),
            "{problem}"
        );
        let problem = npm_sync_problem(
            &package(r#"{"dependencies":{"ms":"^2.1.3","debug":"4"}}"#),
            &locked,
        )
        .unwrap();
        assert!(problem.contains("`debug`"), "{problem}");
        let problem = npm_sync_problem(&package(r#"{}"#), &locked).unwrap();
        assert!(problem.contains("no longer"), "{problem}");
    }

    #[test]
    fn npm_v1_sync_checks_presence_and_version() {
        let locked = Lockfile::parse(
            "package-lock.json",
            r#"{"lockfileVersion":1,"dependencies":{"ms":{"version":"2.1.3"}}}"#.to_owned(),
        )
        .unwrap();
        assert_eq!(
            npm_sync_problem(&package(r#"{"dependencies":{"ms":"^2.1.0"}}"#), &locked),
            None
        );
        assert!(
            npm_sync_problem(&package(r#"{"dependencies":{"ms":"^3.0.0"}}"#), &locked).is_some()
        );
        assert!(
            npm_sync_problem(&package(r#"{"devDependencies":{"debug":"4"}}"#), &locked).is_some()
        );
    }
}
