//! What the app is, as plain data shared by detection and build: the module, how its
//! dependencies arrive, its main packages and which of them to build.

use std::collections::BTreeMap;

use super::constraint::BuildTags;
use super::error::GoError;
use super::gomod::GoMod;
use super::targets::{self, TargetChoice};
use crate::buildpack::{BuildEnv, Detection, PlanEntry, Target};
use crate::source::SourceTree;

/// Where module dependencies come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModMode {
    /// `vendor/modules.txt` is present: `-mod=vendor`, nothing is downloaded.
    Vendor,
    /// The module cache, never modifying go.mod: `-mod=readonly`.
    Readonly,
}

impl ModMode {
    /// The `-mod=` flag value.
    pub fn flag(self) -> &'static str {
        match self {
            ModMode::Vendor => "vendor",
            ModMode::Readonly => "readonly",
        }
    }
}

/// The app as the Go buildpack sees it.
#[derive(Debug)]
pub struct GoApp {
    /// Parsed go.mod.
    pub gomod: GoMod,
    /// How dependencies arrive.
    pub mod_mode: ModMode,
    /// Every main package (`.`, `./cmd/api`…).
    pub main_packages: Vec<String>,
    /// The targets to build, or why none could be chosen.
    pub choice: Result<TargetChoice, GoError>,
}

/// Read the app; `None` when there is no go.mod.
pub fn analyze(
    source: &SourceTree,
    env: &BuildEnv,
    target: &Target,
) -> Result<Option<GoApp>, GoError> {
    let read = |file: &str| {
        source
            .read_to_string(file)
            .map_err(|source| GoError::ReadSource {
                file: file.to_owned(),
                source: Box::new(source),
            })
    };
    let Some(text) = read("go.mod")? else {
        return Ok(None);
    };
    let gomod = GoMod::parse(&text)?;
    let mod_mode = if source.exists("vendor/modules.txt") {
        ModMode::Vendor
    } else {
        ModMode::Readonly
    };
    let tags = BuildTags::new(&target.os, &target.arch);
    let main_packages = targets::main_packages(source, &tags)?;
    // A broken Procfile is the Procfile buildpack's to report; here it only names nothing.
    let started = read("Procfile")?
        .and_then(|text| crate::buildpacks::procfile::parse_procfile(&text).ok())
        .map(|processes| targets::procfile_programs(&processes))
        .unwrap_or_default();
    let choice = targets::choose(
        &gomod,
        &main_packages,
        env.user_var("BP_GO_TARGETS"),
        &started,
    );
    Ok(Some(GoApp {
        gomod,
        mod_mode,
        main_packages,
        choice,
    }))
}

/// Detection: a go.mod with at least one main package passes. A choice that cannot be made
/// (several mains, a bad `BP_GO_TARGETS`) still passes, saying why, so the build reports it
/// as an error instead of another buildpack silently taking over.
pub fn detection(app: Option<&GoApp>) -> Detection {
    let Some(app) = app else {
        return Detection::fail("no go.mod");
    };
    let module = format!("go.mod (module {})", app.gomod.module);
    let mut metadata = BTreeMap::from([
        ("module".to_owned(), app.gomod.module.clone()),
        (
            "go_directive".to_owned(),
            app.gomod
                .go
                .as_ref()
                .map_or_else(|| "none".to_owned(), ToString::to_string),
        ),
        ("mod".to_owned(), app.mod_mode.flag().to_owned()),
        ("main_packages".to_owned(), app.main_packages.join(", ")),
    ]);
    let reason = match &app.choice {
        Err(GoError::NoMainPackage { .. }) => {
            return Detection::fail(format!("{module} has no main package"));
        }
        Err(problem) => format!("{module}; cannot choose what to build: {problem}"),
        Ok(choice) => {
            let targets: Vec<&str> = choice
                .targets
                .iter()
                .map(|target| target.package.as_str())
                .collect();
            metadata.insert("targets".to_owned(), targets.join(", "));
            format!("{module}; {}", choice.describe())
        }
    };
    Detection::Pass {
        reason,
        plan: vec![PlanEntry {
            name: "go".to_owned(),
            metadata,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(files: &[(&str, &str)], user_env: &[(&str, &str)]) -> Detection {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        let source = SourceTree::open(dir.path()).unwrap();
        let env = BuildEnv::new(
            user_env
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        );
        let target = Target {
            os: "linux".to_owned(),
            arch: "amd64".to_owned(),
            distro: None,
        };
        detection(analyze(&source, &env, &target).unwrap().as_ref())
    }

    #[test]
    fn a_library_module_does_not_pass() {
        let detection = detect(
            &[
                ("go.mod", "module example.com/lib\n"),
                ("lib.go", "package lib\n"),
            ],
            &[],
        );
        assert_eq!(
            detection,
            Detection::fail("go.mod (module example.com/lib) has no main package")
        );
        assert_eq!(
            detect(&[("main.go", "package main\n")], &[]),
            Detection::fail("no go.mod")
        );
    }

    #[test]
    fn skips_vendor_testdata_nested_modules_and_other_platforms() {
        let main = "package main\n";
        let detection = detect(
            &[
                ("go.mod", "module example.com/app\n"),
                ("cmd/app/main.go", main),
                ("vendor/example.com/tool/main.go", main),
                ("cmd/app/testdata/main.go", main),
                ("_scratch/main.go", main),
                ("tools/go.mod", "module example.com/tools\n"),
                ("tools/lint/main.go", main),
                ("cmd/winsvc/main_windows.go", main),
            ],
            &[],
        );
        let Detection::Pass { reason, plan } = detection else {
            panic!("passes");
        };
        assert_eq!(
            reason,
            "go.mod (module example.com/app); the only main package is ./cmd/app"
        );
        assert_eq!(plan[0].metadata["main_packages"], "./cmd/app");
        assert_eq!(plan[0].metadata["mod"], "readonly");
    }

    #[test]
    fn a_bad_bp_go_targets_still_detects_and_says_why() {
        let detection = detect(
            &[("go.mod", "module m\n"), ("main.go", "package main\n")],
            &[("BP_GO_TARGETS", "./nope")],
        );
        let Detection::Pass { reason, .. } = detection else {
            panic!("passes");
        };
        assert!(reason.contains("BP_GO_TARGETS names `./nope`"), "{reason}");
    }
}
