//! Every way the Node buildpack fails, with the hint users see. All user-facing text of the
//! buildpack lives here.

use std::path::PathBuf;

use super::engines::BadRequirement;
use super::package_manager::PackageManager;
use super::semver::Version;
use crate::buildpack::BuildpackFailure;
use crate::diagnostic::{Diagnose, ErrorClass};
use crate::source::SourceError;

/// A build step that ran a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Installing yarn or pnpm with npm.
    InstallManager {
        /// Which.
        manager: PackageManager,
        /// Version asked for.
        version: String,
    },
    /// Installing the app's dependencies.
    InstallDependencies {
        /// `npm 11.1.0`.
        manager: String,
    },
    /// Running the `build` script.
    BuildScript,
    /// Removing devDependencies after the build.
    Prune,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::InstallManager { manager, version } => {
                write!(f, "installing {manager}@{version} with npm failed")
            }
            Step::InstallDependencies { manager } => {
                write!(f, "installing dependencies with {manager} failed")
            }
            Step::BuildScript => f.write_str("the `build` script failed"),
            Step::Prune => f.write_str("removing devDependencies after the build failed"),
        }
    }
}

/// Errors of the Node buildpack.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("the app has no package.json")]
    NoPackageJson,
    #[error("cannot read the app's {file}")]
    ReadSource {
        file: String,
        #[source]
        source: Box<SourceError>,
    },
    #[error("{file} is not valid JSON")]
    ParsePackageJson {
        file: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{file}: `{field}` must be {expected}")]
    PackageJsonField {
        file: String,
        field: String,
        expected: &'static str,
    },
    #[error("{file} is not valid JSON")]
    ParseLockfile {
        file: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{file} has lockfile version {version}, which kiln does not know")]
    UnknownLockfileVersion { file: String, version: String },
    #[error("the app uses Yarn 2 or later (Berry); kiln supports Yarn 1 projects")]
    YarnBerry,
    #[error("packageManager `{value}` is not NAME@X.Y.Z for npm, yarn or pnpm")]
    BadPackageManagerField { value: String },
    #[error("the app has several lockfiles ({}) and no packageManager field to choose one", files.join(", "))]
    SeveralLockfiles { files: Vec<String> },
    #[error("packageManager is `{field}`, but the lockfile is {lockfile}")]
    PackageManagerConflict { field: String, lockfile: String },
    #[error("package.json and {lockfile} are out of sync: {detail}")]
    LockfileOutOfSync {
        lockfile: String,
        manager: PackageManager,
        detail: String,
    },
    #[error(transparent)]
    BadRequirement(#[from] BadRequirement),
    #[error(
        "{origin} asks for Node `{wanted}`, but the stack offers Node {offered} (Debian nodejs {debian_version})"
    )]
    NodeUnsatisfied {
        origin: &'static str,
        wanted: String,
        offered: Version,
        debian_version: String,
    },
    #[error("the run image has no package stack, so kiln cannot add a Node runtime to it")]
    NoRuntimeProvider,
    #[error("cannot resolve the Node runtime from the stack")]
    ResolveRuntime(#[source] BuildpackFailure),
    #[error("the stack offers no `{package}` package")]
    StackLacksNode { package: String },
    #[error("the stack's {package} version `{version}` is not a Node release version")]
    StackNodeVersion { package: String, version: String },
    #[error(
        "`{tool}` is not installed on this machine; kiln runs the app's build steps with the host's Node tools"
    )]
    HostToolMissing { tool: String },
    #[error("`node --version` printed `{output}`, which is not a Node version")]
    HostNodeVersion { output: String },
    #[error("cannot run `{command}`")]
    StartTool {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}):\n{tail}")]
    ToolFailed {
        command: String,
        status: String,
        tail: String,
        lines: Vec<String>,
    },
    #[error("{step}")]
    Step {
        step: Step,
        #[source]
        source: Box<NodeError>,
    },
    #[error(
        "native addons were compiled by this machine's Node {built} but the image runs Node {runtime}, where they cannot load: {}",
        addons.join(", ")
    )]
    NativeAddonAbi {
        addons: Vec<String>,
        built: Version,
        runtime: Version,
    },
    #[error("cannot look for native addons in {path}")]
    ScanAddons {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot move dependencies into their layer at {path}")]
    Relocate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{link} points outside the app (`{target}`), so it cannot be part of the image")]
    LinkEscapes { link: String, target: String },
    #[error("the app has no start command")]
    NoStartCommand,
    #[error("cannot prepare the layer `{layer}`")]
    PrepareLayer {
        layer: String,
        #[source]
        source: BuildpackFailure,
    },
}

impl NodeError {
    /// Wrap a tool failure with the step it broke.
    pub fn during(self, step: Step) -> Self {
        NodeError::Step {
            step,
            source: Box::new(self),
        }
    }
}

impl Diagnose for NodeError {
    fn class(&self) -> ErrorClass {
        use NodeError::*;
        match self {
            ResolveRuntime(source) | PrepareLayer { source, .. } => source.class(),
            Step { source, .. } => source.class(),
            Relocate { .. } | ScanAddons { .. } | StartTool { .. } => ErrorClass::Internal,
            _ => ErrorClass::User,
        }
    }

    fn hint(&self) -> Option<String> {
        use NodeError::*;
        let text = match self {
            NoPackageJson => "run kiln in the directory that holds package.json, or pass --path".to_owned(),
            ReadSource { .. } | Relocate { .. } | ScanAddons { .. } | HostNodeVersion { .. } | ToolFailed { .. } => {
                return None;
            }
            ResolveRuntime(source) | PrepareLayer { source, .. } => return source.hint(),
            ParsePackageJson { .. } => {
                "fix the JSON at the line and column shown (JSON has no comments or trailing commas)".to_owned()
            }
            PackageJsonField { .. } => "see the package.json reference in npm's documentation for the field's type".to_owned(),
            ParseLockfile { file, .. } | UnknownLockfileVersion { file, .. } => {
                format!("regenerate {file} with a current npm, Yarn 1 or pnpm and commit it")
            }
            YarnBerry => "switch the project to Yarn 1 (`yarn set version classic`), npm or pnpm".to_owned(),
            BadPackageManagerField { .. } => "write it as NAME@X.Y.Z, e.g. `pnpm@9.15.0` or `yarn@1.22.22`".to_owned(),
            SeveralLockfiles { .. } => {
                "delete the lockfiles of package managers you do not use, or set packageManager in package.json".to_owned()
            }
            PackageManagerConflict { .. } => "make packageManager name the tool that wrote the lockfile".to_owned(),
            LockfileOutOfSync { manager, lockfile, .. } => {
                format!("run `{manager} install` and commit the updated {lockfile}")
            }
            BadRequirement(_) => "write a version such as `18`, `v18.19.0` or `lts/hydrogen`".to_owned(),
            NodeUnsatisfied { offered, .. } => format!(
                "the stack provides exactly one Node, {offered}: widen the requirement to include it (e.g. `>={}`)",
                offered.major
            ),
            NoRuntimeProvider => {
                "build on the default Debian run image (leave out --run-image), which provides Node from Debian packages"
                    .to_owned()
            }
            StackLacksNode { .. } | StackNodeVersion { .. } => "check the builder's stack configuration".to_owned(),
            HostToolMissing { .. } => "install Node.js and npm on the build machine".to_owned(),
            StartTool { .. } => "check that the tool runs on this machine".to_owned(),
            Step { step, source } => match (step, source.as_ref()) {
                (_, ToolFailed { .. }) => match step {
                    self::Step::InstallManager { .. } => "check that npm can reach its registry (npm's own configuration applies)",
                    self::Step::InstallDependencies { .. } => "the output above shows why the install failed",
                    self::Step::BuildScript => "run the build script on your machine to see it fail the same way",
                    self::Step::Prune => "the output above shows why pruning failed",
                }
                .to_owned(),
                _ => return source.hint(),
            },
            NativeAddonAbi { runtime, .. } => format!(
                "build on a machine with Node {} (the stack's major), or use packages with N-API prebuilt binaries",
                runtime.major
            ),
            LinkEscapes { .. } => "keep `file:` dependencies inside the app directory".to_owned(),
            NoStartCommand => "add `scripts.start` to package.json, a Procfile, or a server.js or index.js".to_owned(),
        };
        Some(text)
    }
}
