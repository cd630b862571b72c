//! Which main packages to build: `BP_GO_TARGETS`, else the module root, else the only main
//! package, else the ones a Procfile starts. Several candidates and no choice is an error
//! listing them, never a guess.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

use super::constraint::BuildTags;
use super::error::GoError;
use super::gomod::GoMod;
use crate::source::SourceTree;

/// A package to build and the binary it becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoTarget {
    /// Package directory relative to go.mod, as the go command takes it (`.`, `./cmd/api`).
    pub package: String,
    /// Binary file name.
    pub binary: String,
}

/// Why these targets were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChoiceSource {
    /// `BP_GO_TARGETS`.
    Env,
    /// The module root is a main package.
    Root,
    /// The module has exactly one main package.
    OnlyMain,
    /// The Procfile starts these binaries.
    Procfile,
}

/// The chosen targets, first one is the `web` process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetChoice {
    /// Targets in build order.
    pub targets: Vec<GoTarget>,
    /// Why.
    pub source: ChoiceSource,
}

impl TargetChoice {
    /// A sentence for `kiln detect`.
    pub fn describe(&self) -> String {
        let packages: Vec<&str> = self
            .targets
            .iter()
            .map(|target| target.package.as_str())
            .collect();
        match self.source {
            ChoiceSource::Env => format!("BP_GO_TARGETS picks {}", packages.join(", ")),
            ChoiceSource::Root => "main package at the module root".to_owned(),
            ChoiceSource::OnlyMain => format!("the only main package is {}", packages.join(", ")),
            ChoiceSource::Procfile => format!("the Procfile starts {}", packages.join(", ")),
        }
    }
}

/// Every main package of the module for the target, sorted (`.` first). Skips what the go
/// command's `./...` skips: `vendor/`, `testdata/`, `.`/`_` directories and nested modules.
pub fn main_packages(source: &SourceTree, tags: &BuildTags) -> Result<Vec<String>, GoError> {
    let files = source.files().map_err(|source| GoError::ReadSource {
        file: "the app directory".to_owned(),
        source: Box::new(source),
    })?;
    let nested_modules: Vec<&Path> = files
        .iter()
        .filter(|path| path.file_name().is_some_and(|name| name == "go.mod"))
        .filter_map(|path| path.parent())
        .filter(|dir| !dir.as_os_str().is_empty())
        .collect();
    let mut packages: BTreeMap<String, bool> = BTreeMap::new();
    for path in &files {
        let (Some(dir), Some(name)) = (
            path.parent(),
            path.file_name().and_then(|name| name.to_str()),
        ) else {
            continue;
        };
        if !name.ends_with(".go")
            || skipped_dir(dir)
            || nested_modules.iter().any(|module| dir.starts_with(module))
        {
            continue;
        }
        let Some(relative) = path.to_str() else {
            continue;
        };
        let text = source
            .read_to_string(relative)
            .map_err(|source| GoError::ReadSource {
                file: relative.to_owned(),
                source: Box::new(source),
            })?;
        let Some(package) = text.and_then(|text| tags.package_of(name, &text)) else {
            continue;
        };
        *packages.entry(package_dir(dir)).or_default() |= package == "main";
    }
    Ok(packages
        .into_iter()
        .filter(|(_, is_main)| *is_main)
        .map(|(dir, _)| dir)
        .collect())
}

fn skipped_dir(dir: &Path) -> bool {
    dir.components().any(|component| {
        let name = component.as_os_str().to_string_lossy();
        name == "vendor" || name == "testdata" || name.starts_with('.') || name.starts_with('_')
    })
}

fn package_dir(dir: &Path) -> String {
    if dir.as_os_str().is_empty() {
        ".".to_owned()
    } else {
        format!("./{}", dir.to_string_lossy())
    }
}

/// Choose the targets. `requested` is `BP_GO_TARGETS` (`:`-separated); `started` are the
/// program names a Procfile runs.
pub fn choose(
    gomod: &GoMod,
    candidates: &[String],
    requested: Option<&str>,
    started: &BTreeSet<String>,
) -> Result<TargetChoice, GoError> {
    let target = |package: &str| GoTarget {
        package: package.to_owned(),
        binary: binary_name(gomod, package),
    };
    if let Some(requested) = requested.filter(|value| !value.trim().is_empty()) {
        let mut targets = Vec::new();
        for entry in requested
            .split(':')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let package = normalize_target(entry)?;
            if !candidates.contains(&package) {
                return Err(GoError::TargetNotMain {
                    target: entry.to_owned(),
                    candidates: candidates.to_vec(),
                });
            }
            targets.push(target(&package));
        }
        return with_unique_binaries(targets, ChoiceSource::Env);
    }
    match candidates {
        [] => Err(GoError::NoMainPackage {
            module: gomod.module.clone(),
        }),
        [only] if only == "." => with_unique_binaries(vec![target(only)], ChoiceSource::Root),
        [only] => with_unique_binaries(vec![target(only)], ChoiceSource::OnlyMain),
        _ if candidates.iter().any(|package| package == ".") => {
            with_unique_binaries(vec![target(".")], ChoiceSource::Root)
        }
        _ => {
            let named: Vec<GoTarget> = candidates
                .iter()
                .map(|package| target(package))
                .filter(|target| started.contains(&target.binary))
                .collect();
            if named.is_empty() {
                return Err(GoError::AmbiguousMainPackage {
                    candidates: candidates.to_vec(),
                });
            }
            with_unique_binaries(named, ChoiceSource::Procfile)
        }
    }
}

fn with_unique_binaries(
    targets: Vec<GoTarget>,
    source: ChoiceSource,
) -> Result<TargetChoice, GoError> {
    for (index, target) in targets.iter().enumerate() {
        if let Some(earlier) = targets[..index]
            .iter()
            .find(|earlier| earlier.binary == target.binary)
        {
            return Err(GoError::DuplicateBinary {
                binary: target.binary.clone(),
                first: earlier.package.clone(),
                second: target.package.clone(),
            });
        }
    }
    Ok(TargetChoice { targets, source })
}

/// `cmd/a`, `./cmd/a/` → `./cmd/a`; `.` and `./` → `.`. Absolute paths and `..` are refused.
fn normalize_target(entry: &str) -> Result<String, GoError> {
    let outside = || GoError::TargetOutsideModule {
        target: entry.to_owned(),
    };
    let mut parts = Vec::new();
    for component in Path::new(entry).components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) => parts.push(part.to_str().ok_or_else(outside)?),
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(outside());
            }
        }
    }
    Ok(if parts.is_empty() {
        ".".to_owned()
    } else {
        format!("./{}", parts.join("/"))
    })
}

/// The name `go build` would give: the directory's name, or for the root the module's.
fn binary_name(gomod: &GoMod, package: &str) -> String {
    match package.rsplit('/').next() {
        Some(name) if package != "." => name.to_owned(),
        _ => gomod.root_binary_name(),
    }
}

/// Program names a Procfile starts (the first word of each command, without its directory).
pub fn procfile_programs(processes: &[crate::buildpack::Process]) -> BTreeSet<String> {
    processes
        .iter()
        .filter_map(|process| process.command.first())
        .filter_map(|command| command.split_whitespace().next())
        .filter_map(|program| program.rsplit('/').next())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gomod() -> GoMod {
        GoMod::parse("module example.com/shop\n").unwrap()
    }

    fn packages(list: &[&str]) -> Vec<String> {
        list.iter().map(|package| (*package).to_owned()).collect()
    }

    fn none() -> BTreeSet<String> {
        BTreeSet::new()
    }

    #[test]
    fn root_wins_then_the_only_main_package() {
        let choice = choose(&gomod(), &packages(&[".", "./cmd/tool"]), None, &none()).unwrap();
        assert_eq!(choice.source, ChoiceSource::Root);
        assert_eq!(choice.targets[0].binary, "shop");
        let choice = choose(&gomod(), &packages(&["./cmd/server"]), None, &none()).unwrap();
        assert_eq!(choice.source, ChoiceSource::OnlyMain);
        assert_eq!(
            choice.targets,
            [GoTarget {
                package: "./cmd/server".to_owned(),
                binary: "server".to_owned()
            }]
        );
    }

    #[test]
    fn several_mains_need_a_choice() {
        let candidates = packages(&["./cmd/a", "./cmd/b"]);
        let error = choose(&gomod(), &candidates, None, &none()).unwrap_err();
        assert!(
            matches!(&error, GoError::AmbiguousMainPackage { candidates } if candidates.len() == 2)
        );
        assert!(error.to_string().contains("./cmd/a, ./cmd/b"), "{error}");

        let choice = choose(&gomod(), &candidates, Some("cmd/b/"), &none()).unwrap();
        assert_eq!(
            (choice.source, choice.targets[0].package.as_str()),
            (ChoiceSource::Env, "./cmd/b")
        );
        let both = choose(&gomod(), &candidates, Some("./cmd/a:./cmd/b"), &none()).unwrap();
        assert_eq!(both.targets.len(), 2);

        let started: BTreeSet<String> = ["b".to_owned()].into();
        let choice = choose(&gomod(), &candidates, None, &started).unwrap();
        assert_eq!(
            (choice.source, choice.targets[0].binary.as_str()),
            (ChoiceSource::Procfile, "b")
        );
    }

    #[test]
    fn requested_targets_must_be_main_packages_inside_the_module() {
        let candidates = packages(&["./cmd/a", "./tools/a"]);
        for (requested, expect_outside) in [("../x", true), ("/abs", true), ("./cmd/c", false)] {
            let error = choose(&gomod(), &candidates, Some(requested), &none()).unwrap_err();
            assert_eq!(
                matches!(error, GoError::TargetOutsideModule { .. }),
                expect_outside,
                "{requested}: {error}"
            );
        }
        let error = choose(&gomod(), &candidates, Some("./cmd/a:./tools/a"), &none()).unwrap_err();
        assert!(matches!(error, GoError::DuplicateBinary { .. }), "{error}");
        assert!(matches!(
            choose(&gomod(), &[], None, &none()),
            Err(GoError::NoMainPackage { .. })
        ));
    }
}
