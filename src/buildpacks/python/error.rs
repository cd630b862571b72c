//! Every way the Python buildpack can fail, with the text users see and the fix when known.

use std::path::PathBuf;

use crate::diagnostic::{Diagnose, ErrorClass};
use crate::source::SourceError;

/// Errors of the Python buildpack.
#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    #[error("cannot read the app's Python files")]
    ReadSource(#[source] SourceError),
    #[error("{file} line {line}: `{text}` is not a Python version (expected e.g. `3.11`)")]
    ParseVersion {
        file: String,
        line: usize,
        text: String,
    },
    #[error("{file}: `{text}` asks for {implementation}, but only CPython is supported")]
    UnsupportedImplementation {
        file: String,
        text: String,
        implementation: String,
    },
    #[error("{file} is not valid TOML")]
    ParsePyproject {
        file: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{file}: `[project] dependencies` must be a list of strings")]
    PyprojectDependencies { file: String },
    #[error("{file} line {line}: `{include}` is outside the app directory")]
    IncludeOutsideApp {
        file: String,
        line: usize,
        include: String,
    },
    #[error("{file} line {line}: the included file `{include}` does not exist")]
    IncludeMissing {
        file: String,
        line: usize,
        include: String,
    },
    #[error(
        "a Python app needs a Python runtime from the stack, and this run image comes without a package stack"
    )]
    NoRuntimeProvider,
    #[error("the stack offers no `python3` package")]
    RuntimeUnavailable,
    #[error("cannot understand the stack's python3 version `{version}`")]
    ParseRuntimeVersion { version: String },
    #[error("Python {requested} (from {file}) is not available: the stack offers Python {offered}")]
    VersionUnavailable {
        requested: String,
        file: String,
        offered: String,
    },
    #[error("cannot start the host's Python (`{program}`) to install dependencies")]
    StartHostPython {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the host Python (`{program}`) has no pip")]
    HostPipMissing { program: String, output: String },
    #[error("cannot understand what `{program}` says about its version: `{output}`")]
    ParseHostPython { program: String, output: String },
    #[error("the requirement `{requirement}` was not found on the package index")]
    RequirementNotFound { requirement: String, file: String },
    #[error(
        "the requirement `{requirement}` has no binary wheel for Python {runtime} on {platform}, and the host Python {host} cannot build one for it"
    )]
    NoWheelForRuntime {
        requirement: String,
        runtime: String,
        host: String,
        platform: String,
    },
    #[error("pip failed to install the dependencies (exit status {status}):\n{output}")]
    PipInstall { status: String, output: String },
    #[error("cannot prepare the dependency list for pip at {path}")]
    WriteRequirements {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot post-process the installed dependencies at {path}")]
    ProcessDeps {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "compiled extensions need shared libraries the image lacks: {}",
        describe_missing(missing)
    )]
    MissingLibraries { missing: Vec<(String, String)> },
    #[error("cannot tell how to start this Python app")]
    NoStartCommand,
}

fn describe_missing(missing: &[(String, String)]) -> String {
    missing
        .iter()
        .map(|(module, library)| format!("{module} needs {library}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Diagnose for PythonError {
    fn class(&self) -> ErrorClass {
        use PythonError::*;
        match self {
            StartHostPython { .. }
            | HostPipMissing { .. }
            | ParseHostPython { .. }
            | WriteRequirements { .. }
            | ProcessDeps { .. }
            | ParseRuntimeVersion { .. } => ErrorClass::Internal,
            ReadSource(_)
            | ParseVersion { .. }
            | UnsupportedImplementation { .. }
            | ParsePyproject { .. }
            | PyprojectDependencies { .. }
            | IncludeOutsideApp { .. }
            | IncludeMissing { .. }
            | NoRuntimeProvider
            | RuntimeUnavailable
            | VersionUnavailable { .. }
            | RequirementNotFound { .. }
            | NoWheelForRuntime { .. }
            | PipInstall { .. }
            | MissingLibraries { .. }
            | NoStartCommand => ErrorClass::User,
        }
    }

    fn hint(&self) -> Option<String> {
        use PythonError::*;
        match self {
            ParseVersion { file, .. } => Some(format!("write the wanted minor version alone in {file}, e.g. `3.11`")),
            UnsupportedImplementation { file, .. } => Some(format!("name a CPython version in {file}, e.g. `3.11`")),
            IncludeOutsideApp { .. } => Some("keep included requirement files inside the app directory".to_owned()),
            NoRuntimeProvider => {
                Some("build without --run-image to use the default Debian stack, which provides python3".to_owned())
            }
            RuntimeUnavailable => Some("use a builder whose stack offers the `python3` package".to_owned()),
            VersionUnavailable { file, offered, .. } => Some(format!(
                "set {file} to {} or remove it to use the stack's Python",
                minor_of(offered)
            )),
            StartHostPython { .. } | HostPipMissing { .. } | ParseHostPython { .. } => Some(
                "dependencies are installed with the host's `python3 -m pip`: install python3 and python3-pip (e.g. `apt-get install python3-pip`)"
                    .to_owned(),
            ),
            RequirementNotFound { requirement, file } => Some(format!(
                "check the spelling of `{requirement}` in {file} and that the version exists; a private index is set with PIP_INDEX_URL"
            )),
            NoWheelForRuntime { runtime, .. } => Some(format!(
                "install Python {runtime} with pip on the build machine, so the package can be built from source for the runtime"
            )),
            PipInstall { .. } => Some("the pip output above names the failing requirement".to_owned()),
            MissingLibraries { .. } => Some(
                "use packages whose wheels bundle their libraries (manylinux), add the Debian package providing them to the run image, or set BP_PYTHON_SKIP_LIBRARY_CHECK=true to build anyway"
                    .to_owned(),
            ),
            NoStartCommand => Some(
                "add a Procfile (`web: python3 main.py`), or a main.py / app.py; Flask, Django and FastAPI apps are detected from requirements"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// `3.11.2-1+b1` → `3.11`, for hints.
fn minor_of(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}
