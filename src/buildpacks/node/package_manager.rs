//! Which package manager installs the app (from the lockfile and `packageManager`), and the
//! exact commands each one needs.

use std::fmt;
use std::path::{Path, PathBuf};

use super::error::NodeError;
use super::lockfile::Lockfile;
use super::package_json::PackageJson;
use super::semver::Version;

/// A Node package manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageManager {
    /// npm, shipped with Node (the host's is used).
    Npm,
    /// Yarn 1 ("classic").
    Yarn,
    /// pnpm.
    Pnpm,
}

impl PackageManager {
    /// Its command name.
    pub fn name(self) -> &'static str {
        match self {
            PackageManager::Npm => "npm",
            PackageManager::Yarn => "yarn",
            PackageManager::Pnpm => "pnpm",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "npm" => Some(PackageManager::Npm),
            "yarn" => Some(PackageManager::Yarn),
            "pnpm" => Some(PackageManager::Pnpm),
            _ => None,
        }
    }
}

impl fmt::Display for PackageManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `packageManager` field: `NAME@VERSION`, optionally `+sha512.…` (Corepack's form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageManagerField {
    /// Which one.
    pub manager: PackageManager,
    /// The exact version.
    pub version: Version,
}

impl PackageManagerField {
    /// Parse the field's value.
    pub fn parse(text: &str) -> Result<Self, NodeError> {
        let bad = || NodeError::BadPackageManagerField {
            value: text.to_owned(),
        };
        let (name, version) = text.trim().split_once('@').ok_or_else(bad)?;
        let manager = PackageManager::from_name(name).ok_or_else(bad)?;
        // The hash after `+` is Corepack's integrity check of its own download; kiln installs
        // through npm, which verifies the registry's integrity data instead.
        let version =
            Version::parse(version.split('+').next().unwrap_or(version)).ok_or_else(bad)?;
        Ok(Self { manager, version })
    }
}

/// How the app's dependencies will be installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The package manager.
    pub manager: PackageManager,
    /// The version to use: from `packageManager`, else a default for yarn and pnpm
    /// (a range npm resolves), else whatever npm the host has.
    pub version: Option<String>,
    /// The lockfile, when there is one.
    pub lockfile: Option<Lockfile>,
    /// Why this choice, for logs and `kiln detect`.
    pub reason: String,
}

/// Yarn 1 is the only Yarn kiln supports; its last release line.
const YARN_CLASSIC_DEFAULT: &str = "1";

/// The pnpm major that writes a lockfile version (`9.0` is written by pnpm 9 and 10).
fn pnpm_default_for_lockfile(lockfile_version: &str) -> Option<&'static str> {
    let major = lockfile_version.split('.').next()?.parse::<u32>().ok()?;
    match major {
        9 => Some("9"),
        6 => Some("8"),
        5 => Some("7"),
        _ => None,
    }
}

/// Decide the package manager from the lockfiles present and the `packageManager` field.
pub fn choose(package: &PackageJson, mut lockfiles: Vec<Lockfile>) -> Result<Choice, NodeError> {
    let field = package
        .package_manager
        .as_deref()
        .map(PackageManagerField::parse)
        .transpose()?;
    let lockfile = match (lockfiles.len(), &field) {
        (0, _) => None,
        (1, _) => lockfiles.pop(),
        (_, Some(field)) => lockfiles
            .into_iter()
            .find(|lockfile| lockfile.manager() == field.manager),
        (_, None) => {
            let managers: Vec<PackageManager> = lockfiles.iter().map(Lockfile::manager).collect();
            if managers.iter().all(|manager| *manager == managers[0]) {
                // npm-shrinkwrap.json and package-lock.json: npm reads the shrinkwrap.
                lockfiles.into_iter().next()
            } else {
                return Err(NodeError::SeveralLockfiles {
                    files: lockfiles
                        .iter()
                        .map(|lockfile| lockfile.file.to_owned())
                        .collect(),
                });
            }
        }
    };
    if let (Some(field), Some(lockfile)) = (&field, &lockfile)
        && field.manager != lockfile.manager()
    {
        return Err(NodeError::PackageManagerConflict {
            field: package.package_manager.clone().unwrap_or_default(),
            lockfile: lockfile.file.to_owned(),
        });
    }
    let manager = lockfile
        .as_ref()
        .map(Lockfile::manager)
        .or(field.as_ref().map(|field| field.manager))
        .unwrap_or(PackageManager::Npm);
    if manager == PackageManager::Yarn
        && field.as_ref().is_some_and(|field| field.version.major >= 2)
    {
        return Err(NodeError::YarnBerry);
    }
    let version = match (&field, manager, &lockfile) {
        (Some(field), _, _) => Some(field.version.to_string()),
        (None, PackageManager::Npm, _) => None,
        (None, PackageManager::Yarn, _) => Some(YARN_CLASSIC_DEFAULT.to_owned()),
        (None, PackageManager::Pnpm, Some(lockfile)) => match &lockfile.format {
            super::lockfile::LockfileFormat::Pnpm(version) => Some(
                pnpm_default_for_lockfile(version)
                    .ok_or_else(|| NodeError::UnknownLockfileVersion {
                        file: lockfile.file.to_owned(),
                        version: version.clone(),
                    })?
                    .to_owned(),
            ),
            _ => None,
        },
        (None, PackageManager::Pnpm, None) => Some("9".to_owned()),
    };
    let reason = match (&lockfile, &field) {
        (Some(lockfile), Some(_)) => format!(
            "{} and packageManager `{}`",
            lockfile.describe(),
            package.package_manager.as_deref().unwrap_or("")
        ),
        (Some(lockfile), None) => lockfile.describe(),
        (None, Some(_)) => format!(
            "packageManager `{}`, no lockfile",
            package.package_manager.as_deref().unwrap_or("")
        ),
        (None, None) => "no lockfile".to_owned(),
    };
    Ok(Choice {
        manager,
        version,
        lockfile,
        reason,
    })
}

/// Whether a tool's actual version satisfies what was asked: an exact version must be equal,
/// a bare major (a default) must share the major.
pub fn version_fits(wanted: &str, actual: &str) -> bool {
    match (Version::parse(wanted), Version::parse(actual)) {
        (Some(wanted), Some(actual)) => wanted == actual,
        (None, Some(actual)) => wanted
            .parse::<u64>()
            .is_ok_and(|major| major == actual.major),
        _ => false,
    }
}

/// A package manager ready to run: its program and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedManager {
    /// Which one.
    pub manager: PackageManager,
    /// Program to run (a name on the build PATH or a path in a tool layer).
    pub program: PathBuf,
    /// Its version (`npm --version`).
    pub version: String,
}

/// What an install should include.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Dependencies and devDependencies (to run a build script or dev tools at start).
    WithDev,
    /// Production dependencies only.
    Production,
}

impl ResolvedManager {
    /// `npm 11.1.0`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.manager, self.version)
    }

    /// Arguments installing the dependencies into `node_modules`.
    pub fn install_args(&self, frozen: bool, scope: Scope, cache: &Path) -> Vec<String> {
        let cache = cache.display().to_string();
        let mut args: Vec<String> = match (self.manager, frozen) {
            (PackageManager::Npm, true) => vec!["ci".into()],
            // No lockfile: do not write one into the image either.
            (PackageManager::Npm, false) => vec!["install".into(), "--no-package-lock".into()],
            (PackageManager::Yarn, true) => vec!["install".into(), "--frozen-lockfile".into()],
            (PackageManager::Yarn, false) => vec!["install".into(), "--no-lockfile".into()],
            (PackageManager::Pnpm, true) => vec!["install".into(), "--frozen-lockfile".into()],
            (PackageManager::Pnpm, false) => vec![
                "install".into(),
                "--no-frozen-lockfile".into(),
                "--no-lockfile".into(),
            ],
        };
        let production = scope == Scope::Production;
        match self.manager {
            PackageManager::Npm => {
                args.push(
                    if production {
                        "--omit=dev"
                    } else {
                        "--include=dev"
                    }
                    .into(),
                );
                args.extend(["--no-audit".into(), "--no-fund".into()]);
            }
            PackageManager::Yarn => {
                args.push(format!("--production={production}"));
                args.extend(["--non-interactive".into(), "--cache-folder".into(), cache]);
            }
            PackageManager::Pnpm => {
                args.push(format!("--prod={production}"));
                args.extend(pnpm_settings(&cache));
            }
        }
        args
    }

    /// Arguments removing devDependencies from an installed `node_modules`.
    pub fn prune_args(&self, frozen: bool, cache: &Path) -> Vec<String> {
        let cache = cache.display().to_string();
        match self.manager {
            PackageManager::Npm => {
                let mut args = vec![
                    "prune".into(),
                    "--omit=dev".into(),
                    "--no-audit".into(),
                    "--no-fund".into(),
                ];
                if !frozen {
                    args.push("--no-package-lock".into());
                }
                args
            }
            // Yarn 1 has no prune: a production install over the tree removes what is left.
            PackageManager::Yarn => {
                let mut args = self.install_args(frozen, Scope::Production, Path::new(&cache));
                args.push("--prefer-offline".into());
                args
            }
            PackageManager::Pnpm => {
                let mut args = vec!["prune".into(), "--prod".into()];
                args.extend(pnpm_settings(&cache));
                args
            }
        }
    }

    /// Arguments running a package.json script.
    pub fn run_args(&self, script: &str) -> Vec<String> {
        vec!["run".into(), script.into()]
    }

    /// Extra environment for every command of this manager.
    pub fn env(&self, cache: &Path) -> Vec<(String, String)> {
        match self.manager {
            PackageManager::Npm => vec![
                ("npm_config_cache".into(), cache.display().to_string()),
                ("npm_config_update_notifier".into(), "false".into()),
            ],
            PackageManager::Yarn | PackageManager::Pnpm => Vec::new(),
        }
    }

    /// Whether a failed install's output says the lockfile does not match package.json.
    pub fn says_out_of_sync(&self, lines: &[String]) -> bool {
        let needle: &[&str] = match self.manager {
            PackageManager::Npm => &[
                "are in sync",
                "in sync. Please update your lock file",
                "Missing: ",
            ],
            PackageManager::Yarn => &["Your lockfile needs to be updated"],
            PackageManager::Pnpm => &["ERR_PNPM_OUTDATED_LOCKFILE"],
        };
        lines
            .iter()
            .any(|line| needle.iter().any(|needle| line.contains(needle)))
    }
}

/// pnpm settings passed as `--config.` options, which every pnpm command accepts.
fn pnpm_settings(store: &str) -> Vec<String> {
    vec![
        format!("--config.store-dir={store}"),
        // Without a TTY pnpm would otherwise wait for a confirmation nobody can give.
        "--config.confirmModulesPurge=false".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(json: &str) -> PackageJson {
        PackageJson::parse(json, "package.json").unwrap()
    }

    fn lock(file: &'static str, text: &str) -> Lockfile {
        Lockfile::parse(file, text.to_owned()).unwrap()
    }

    fn npm_lock() -> Lockfile {
        lock("package-lock.json", r#"{"lockfileVersion":3}"#)
    }

    fn yarn_lock() -> Lockfile {
        lock("yarn.lock", "# yarn lockfile v1\n")
    }

    #[test]
    fn lockfile_decides_and_defaults_versions() {
        let plain = package("{}");
        assert_eq!(choose(&plain, vec![]).unwrap().manager, PackageManager::Npm);
        assert_eq!(choose(&plain, vec![npm_lock()]).unwrap().version, None);
        let yarn = choose(&plain, vec![yarn_lock()]).unwrap();
        assert_eq!(
            (yarn.manager, yarn.version.as_deref()),
            (PackageManager::Yarn, Some("1"))
        );
        let pnpm = choose(
            &plain,
            vec![lock("pnpm-lock.yaml", "lockfileVersion: '6.0'\n")],
        )
        .unwrap();
        assert_eq!(
            (pnpm.manager, pnpm.version.as_deref()),
            (PackageManager::Pnpm, Some("8"))
        );
    }

    #[test]
    fn package_manager_field_pins_the_version_and_picks_among_lockfiles() {
        let pinned = package(r#"{"packageManager":"yarn@1.22.19+sha512.abcdef"}"#);
        let choice = choose(&pinned, vec![npm_lock(), yarn_lock()]).unwrap();
        assert_eq!(choice.manager, PackageManager::Yarn);
        assert_eq!(choice.version.as_deref(), Some("1.22.19"));
        assert_eq!(choice.lockfile.unwrap().file, "yarn.lock");
    }

    #[test]
    fn conflicts_and_unsupported_choices_are_errors() {
        assert!(matches!(
            choose(&package("{}"), vec![npm_lock(), yarn_lock()]),
            Err(NodeError::SeveralLockfiles { .. })
        ));
        assert!(matches!(
            choose(
                &package(r#"{"packageManager":"pnpm@9.0.0"}"#),
                vec![yarn_lock()]
            ),
            Err(NodeError::PackageManagerConflict { .. })
        ));
        assert!(matches!(
            choose(&package(r#"{"packageManager":"yarn@4.1.0"}"#), vec![]),
            Err(NodeError::YarnBerry)
        ));
        assert!(matches!(
            choose(&package(r#"{"packageManager":"bun@1.0.0"}"#), vec![]),
            Err(NodeError::BadPackageManagerField { .. })
        ));
    }

    #[test]
    fn versions_fit_exactly_or_by_default_major() {
        assert!(version_fits("1.22.22", "1.22.22"));
        assert!(!version_fits("1.22.22", "1.22.19"));
        assert!(version_fits("9", "9.15.9"));
        assert!(!version_fits("9", "10.0.0"));
    }

    #[test]
    fn commands_per_manager() {
        let cache = Path::new("/cache");
        let npm = ResolvedManager {
            manager: PackageManager::Npm,
            program: "npm".into(),
            version: "10.0.0".into(),
        };
        assert_eq!(
            npm.install_args(true, Scope::Production, cache)[..2],
            ["ci", "--omit=dev"]
        );
        assert_eq!(
            npm.install_args(false, Scope::WithDev, cache)[..3],
            ["install", "--no-package-lock", "--include=dev"]
        );
        let pnpm = ResolvedManager {
            manager: PackageManager::Pnpm,
            ..npm.clone()
        };
        assert!(
            pnpm.install_args(true, Scope::WithDev, cache)
                .contains(&"--config.store-dir=/cache".to_owned())
        );
        assert!(pnpm.says_out_of_sync(&[" ERR_PNPM_OUTDATED_LOCKFILE  Cannot install".to_owned()]));
    }
}
