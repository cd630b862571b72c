//! Whether the app is a Python app, and the plan `kiln detect` shows for it: the version
//! asked for, where dependencies come from, and how it will start.

use std::collections::BTreeMap;

use super::error::PythonError;
use super::requirements::{Dependencies, PYPROJECT_TOML, read_dependencies};
use super::start::{Start, infer};
use super::version::{VersionRequest, read_request};
use crate::buildpack::{Detection, PlanEntry};
use crate::source::SourceTree;

/// What the buildpack learns from the app's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonApp {
    /// Declared dependencies.
    pub dependencies: Dependencies,
    /// The Python version asked for.
    pub version: Option<VersionRequest>,
    /// How it starts.
    pub start: Start,
}

/// Read the app; `Err(reason)` inside `Ok` when it is not a Python app.
pub fn read_app(source: &SourceTree) -> Result<Result<PythonApp, String>, PythonError> {
    let Some(dependencies) = read_dependencies(source)? else {
        let reason = if source.exists(PYPROJECT_TOML) {
            "pyproject.toml declares no [project] dependencies and there is no requirements.txt"
        } else {
            "no requirements.txt, and no pyproject.toml with [project] dependencies"
        };
        return Ok(Err(reason.to_owned()));
    };
    let version = read_request(source)?;
    let start = infer(source, &dependencies.names);
    Ok(Ok(PythonApp {
        dependencies,
        version,
        start,
    }))
}

/// Detection with a plan.
pub fn detect(source: &SourceTree) -> Result<Detection, PythonError> {
    let app = match read_app(source)? {
        Ok(app) => app,
        Err(reason) => return Ok(Detection::fail(reason)),
    };
    let reason = match app.dependencies.declared_in() {
        PYPROJECT_TOML => "found pyproject.toml with [project] dependencies".to_owned(),
        file => format!("found {file}"),
    };
    Ok(Detection::Pass {
        reason,
        plan: plan(&app),
    })
}

fn plan(app: &PythonApp) -> Vec<PlanEntry> {
    let entry = |name: &str, metadata: &[(&str, String)]| PlanEntry {
        name: name.to_owned(),
        metadata: metadata
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect::<BTreeMap<_, _>>(),
    };
    let python = match &app.version {
        Some(request) => entry(
            "python",
            &[
                ("version", request.to_string()),
                ("source", request.file.clone()),
            ],
        ),
        None => entry("python", &[("version", "the stack's python3".to_owned())]),
    };
    let mut dependencies = vec![("files", app.dependencies.files.join(", "))];
    let start = match &app.start {
        Start::Procfile => entry(
            "python-start",
            &[("command", "the Procfile's web process".to_owned())],
        ),
        Start::Command { line, reason, adds } => {
            if let Some(added) = adds {
                dependencies.push(("adds", added.requirement().to_owned()));
            }
            entry(
                "python-start",
                &[("command", line.clone()), ("reason", reason.clone())],
            )
        }
        Start::Unknown => entry("python-start", &[("command", "none found".to_owned())]),
    };
    vec![python, entry("python-dependencies", &dependencies), start]
}
