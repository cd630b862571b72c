//! The `[stack]` section of a builder's `builder.toml`: suites, run-image packages, exclude
//! list. Other sections (`[[order]]`, …) belong to the buildpack side and are ignored here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::error::StackError;
use super::mirror::{MirrorOverrides, SuiteSetting};
use crate::oci::Digest;

#[derive(Debug, serde::Deserialize)]
struct BuilderFile {
    stack: Option<StackSection>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct StackSection {
    id: String,
    distro: Distro,
    #[serde(default = "default_components")]
    components: Vec<String>,
    suites: Vec<SuiteSetting>,
    #[serde(default)]
    exclude: Vec<String>,
    run_image: RunImageSection,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RunImageSection {
    packages: Vec<String>,
}

fn default_components() -> Vec<String> {
    vec!["main".to_owned()]
}

/// Distribution of a stack, as CNB `io.buildpacks.base.distro.*` labels name it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distro {
    /// `debian`.
    pub name: String,
    /// `12`.
    pub version: String,
}

/// A builder's stack: what the run image and runtimes are made of, and where from.
#[derive(Debug, Clone)]
pub struct BuilderStack {
    /// The builder file it was read from.
    pub path: PathBuf,
    /// Stack id (`io.buildpacks.base.id`).
    pub id: String,
    /// Distribution.
    pub distro: Distro,
    /// Archive components (normally `main`).
    pub components: Vec<String>,
    /// Suites in preference order (for equal versions).
    pub suites: Vec<SuiteSetting>,
    /// Packages never pulled in as dependencies.
    pub exclude: BTreeSet<String>,
    /// Packages the run image is made of (their closure is installed).
    pub run_image_packages: Vec<String>,
    /// Root of the apt configuration to read (`/`).
    pub apt_root: PathBuf,
    /// `KILN_DEBIAN_MIRROR` / `KILN_DEBIAN_KEYRING`.
    pub mirror_overrides: MirrorOverrides,
    /// A lock file to use instead of the one kept in the cache (`--lock FILE`).
    pub lock_file: Option<PathBuf>,
}

impl BuilderStack {
    /// Read a builder file; mirror overrides come from the environment.
    pub fn load(path: &Path) -> Result<Self, StackError> {
        let text = fs_err::read_to_string(path).map_err(|source| StackError::ReadBuilder {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path, MirrorOverrides::from_env())
    }

    /// Parse builder text (`path` only names it).
    pub fn parse(
        text: &str,
        path: &Path,
        mirror_overrides: MirrorOverrides,
    ) -> Result<Self, StackError> {
        let file: BuilderFile =
            toml::from_str(text).map_err(|source| StackError::ParseBuilder {
                path: path.to_path_buf(),
                source: Box::new(source),
            })?;
        let without_stack = || StackError::BuilderWithoutStack {
            path: path.to_path_buf(),
        };
        let stack = file.stack.ok_or_else(without_stack)?;
        if stack.suites.is_empty()
            || stack.run_image.packages.is_empty()
            || stack.components.is_empty()
        {
            return Err(without_stack());
        }
        Ok(Self {
            path: path.to_path_buf(),
            id: stack.id,
            distro: stack.distro,
            components: stack.components,
            suites: stack.suites,
            exclude: stack.exclude.into_iter().collect(),
            run_image_packages: stack.run_image.packages,
            apt_root: PathBuf::from("/"),
            mirror_overrides,
            lock_file: None,
        })
    }

    /// Digest of everything that decides a resolution of `packages` (not the mirror: any
    /// mirror of the same archive yields the same packages, and the lock pins checksums).
    pub fn inputs_digest(&self, packages: &[String], extra_exclude: &[String]) -> Digest {
        let mut text = String::from("kiln-stack-inputs-v1\n");
        let mut exclude: BTreeSet<&String> = self.exclude.iter().collect();
        exclude.extend(extra_exclude);
        let sections: [(&str, Vec<&String>); 4] = [
            (
                "suites",
                self.suites.iter().map(|suite| &suite.name).collect(),
            ),
            ("components", self.components.iter().collect()),
            ("exclude", exclude.into_iter().collect()),
            ("packages", packages.iter().collect()),
        ];
        for (name, values) in sections {
            text.push_str(name);
            for value in values {
                text.push(' ');
                text.push_str(value);
            }
            text.push('\n');
        }
        Digest::of_bytes(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bookworm_builder_parses() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/builders/bookworm/builder.toml"
        ));
        let stack = BuilderStack::parse(
            &fs_err::read_to_string(path).unwrap(),
            path,
            MirrorOverrides::default(),
        )
        .unwrap();
        assert_eq!(stack.distro.name, "debian");
        let suites: Vec<&str> = stack
            .suites
            .iter()
            .map(|suite| suite.name.as_str())
            .collect();
        assert_eq!(
            suites,
            ["bookworm", "bookworm-updates", "bookworm-security"]
        );
        assert!(
            stack
                .run_image_packages
                .iter()
                .any(|package| package == "dash")
        );
        assert!(stack.exclude.contains("debconf") && stack.exclude.contains("perl-base"));
    }

    #[test]
    fn inputs_digest_changes_with_suites_and_packages_only() {
        let text = "[stack]\nid = \"x\"\ndistro = { name = \"debian\", version = \"12\" }\nsuites = [{ name = \"bookworm\" }, { name = \"bookworm-security\", mirror = \"http://127.0.0.1:9/s\" }]\n[stack.run-image]\npackages = [\"dash\"]\n";
        let stack =
            BuilderStack::parse(text, Path::new("b.toml"), MirrorOverrides::default()).unwrap();
        let packages = vec!["dash".to_owned()];
        let mut other_mirror = stack.clone();
        other_mirror.suites[1].mirror = None;
        assert_eq!(
            stack.inputs_digest(&packages, &[]),
            other_mirror.inputs_digest(&packages, &[])
        );
        let mut fewer_suites = stack.clone();
        fewer_suites.suites.pop();
        assert_ne!(
            stack.inputs_digest(&packages, &[]),
            fewer_suites.inputs_digest(&packages, &[])
        );
        assert_ne!(
            stack.inputs_digest(&packages, &[]),
            stack.inputs_digest(&packages, &["x".to_owned()])
        );
        let missing = BuilderStack::parse(
            "[[order]]\n",
            Path::new("b.toml"),
            MirrorOverrides::default(),
        );
        assert!(matches!(
            missing,
            Err(StackError::BuilderWithoutStack { .. })
        ));
    }
}
