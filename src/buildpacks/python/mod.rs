//! The Python buildpack: detects `requirements.txt` or PEP 621 `pyproject.toml`, provides
//! the stack's CPython as a runtime layer, installs dependencies with the host's pip into a
//! cached layer, and starts the app the way its framework expects.

mod deps;
mod detect;
mod elf;
mod error;
mod libraries;
mod pip;
mod requirements;
mod runtime;
mod shebang;
mod start;
mod version;

use std::sync::LazyLock;

pub use error::PythonError;

use crate::buildpack::{
    BuildContext, BuildResult, Buildpack, BuildpackDescriptor, BuildpackFailure, DetectContext,
    Detection, Process, ProcessType,
};
use start::Start;

static DESCRIPTOR: LazyLock<BuildpackDescriptor> = LazyLock::new(|| {
    BuildpackDescriptor::parse(
        include_str!("../../../buildpacks/kiln/python/buildpack.toml"),
        "kiln/python",
    )
    .expect("the embedded descriptor is valid")
});

/// The Python buildpack.
pub struct Python;

impl Buildpack for Python {
    fn descriptor(&self) -> &BuildpackDescriptor {
        &DESCRIPTOR
    }

    fn detect(&self, context: &DetectContext<'_>) -> Result<Detection, BuildpackFailure> {
        Ok(detect::detect(context.source)?)
    }

    fn build(&self, context: &mut BuildContext<'_>) -> Result<BuildResult, BuildpackFailure> {
        let app = match detect::read_app(context.source)? {
            Ok(app) => app,
            // Forced with --buildpack on an app without dependency files: runtime and start only.
            Err(_) => detect::PythonApp {
                dependencies: requirements::Dependencies::none(),
                version: version::read_request(context.source)?,
                start: start::infer(context.source, &Default::default()),
            },
        };
        // Decided first: an app that cannot start fails before anything is installed.
        let processes = match &app.start {
            Start::Procfile => {
                context.log("start: the Procfile's web process");
                Vec::new()
            }
            Start::Command { line, reason, .. } => {
                context.log(&format!("start: {line} ({reason})"));
                vec![Process::from_command_line(ProcessType::web(), line).as_default()]
            }
            // A Procfile with other process types may still define what runs.
            Start::Unknown if context.source.exists("Procfile") => Vec::new(),
            Start::Unknown => return Err(PythonError::NoStartCommand.into()),
        };
        let added = match &app.start {
            Start::Command {
                adds: Some(added),
                reason,
                ..
            } => {
                context.log(&format!(
                    "{reason}; {} does not list {server}: adding {server} to the install to serve it",
                    app.dependencies.declared_in(),
                    server = added.requirement()
                ));
                Some(*added)
            }
            _ => None,
        };
        let (mut runtime, runtime_layer) = runtime::provide(context, app.version.as_ref())?;
        let mut layers = vec![runtime_layer];
        layers.extend(deps::provide(
            context,
            &app.dependencies,
            added,
            &mut runtime,
        )?);
        Ok(BuildResult {
            layers,
            processes,
            labels: Vec::new(),
        })
    }
}
