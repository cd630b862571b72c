//! The dependency layer: what pip installs, keyed by everything that changes the result
//! (requirements and their includes, runtime version, pip version, architecture, install
//! mode, added servers), made reproducible and checked before it goes into the image.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::PythonError;
use super::libraries::check_layer;
use super::pip::{self, HostPython, InstallMode, InstallRequest, PipFailure, PipRun};
use super::requirements::{Dependencies, DependencySource};
use super::runtime::Runtime;
use super::shebang::rewrite_shebangs;
use super::start::AddedServer;
use crate::buildpack::{BuildContext, BuildpackFailure, EnvAction, Layer, LayerState, LayerTypes};

/// The dependency layer's name.
pub const DEPS_LAYER: &str = "deps";
/// User setting that turns the shared library check into a warning.
pub const SKIP_LIBRARY_CHECK: &str = "BP_PYTHON_SKIP_LIBRARY_CHECK";

/// The metadata deciding reuse of the dependency layer.
pub fn metadata(
    dependencies: &Dependencies,
    added: Option<AddedServer>,
    runtime_version: &str,
    host: &HostPython,
    mode: &InstallMode,
    arch: &str,
) -> Value {
    let mut metadata = Map::new();
    metadata.insert(
        dependencies.declared_in().to_owned(),
        Value::String(dependencies.sha256.clone()),
    );
    metadata.insert(
        "python".to_owned(),
        Value::String(runtime_version.to_owned()),
    );
    metadata.insert("pip".to_owned(), Value::String(host.pip.clone()));
    metadata.insert("arch".to_owned(), Value::String(arch.to_owned()));
    metadata.insert("install".to_owned(), Value::String(mode.name().to_owned()));
    if let Some(added) = added {
        metadata.insert(
            "added".to_owned(),
            Value::String(added.requirement().to_owned()),
        );
    }
    Value::Object(metadata)
}

/// Install (or reuse) the dependencies; `None` when there is nothing to install.
pub fn provide(
    context: &BuildContext<'_>,
    dependencies: &Dependencies,
    added: Option<AddedServer>,
    runtime: &mut Runtime<'_>,
) -> Result<Option<Layer>, BuildpackFailure> {
    if dependencies.is_empty() && added.is_none() {
        context.log(&format!(
            "{} lists no dependencies: nothing to install",
            dependencies.declared_in()
        ));
        return Ok(None);
    }
    let host = pip::probe(&context.env, context.app_dir, &runtime.version)?;
    let mode = pip::install_mode(
        &host.version,
        &runtime.version,
        &context.target.arch,
        runtime.glibc,
    );
    let metadata = metadata(
        dependencies,
        added,
        &runtime.package_version,
        &host,
        &mode,
        &context.target.arch,
    );
    let mut layer = context
        .layers
        .dir_layer(DEPS_LAYER, LayerTypes::LAUNCH_CACHED, metadata)?;
    match &layer.state {
        LayerState::Restored => context.log("dependencies: reusing the cached layer"),
        LayerState::Empty { reasons } => {
            context.log(&format!(
                "dependencies: installing ({})",
                reasons.join(", ")
            ));
            let dir = layer
                .dir()
                .cloned()
                .expect("dir_layer returns a directory layer");
            install(context, dependencies, added, &host, &mode, runtime, &dir)?;
        }
    }
    let image_path = context.layers.image_path(&layer.name);
    layer.env.clear();
    layer.set_env("PYTHONPATH", EnvAction::Override, &image_path);
    Ok(Some(layer))
}

fn install(
    context: &BuildContext<'_>,
    dependencies: &Dependencies,
    added: Option<AddedServer>,
    host: &HostPython,
    mode: &InstallMode,
    runtime: &mut Runtime<'_>,
    dir: &Path,
) -> Result<(), BuildpackFailure> {
    if let InstallMode::CrossTarget { python, .. } = mode {
        context.log(&format!(
            "the host Python is {} and the runtime {python}: installing binary wheels built for Python {}",
            host.version,
            python.minor_string()
        ));
    }
    let scratch = tempfile::tempdir().map_err(|source| PythonError::WriteRequirements {
        path: std::env::temp_dir(),
        source,
    })?;
    let requirements: PathBuf = match &dependencies.source {
        DependencySource::RequirementsTxt => PathBuf::from(dependencies.declared_in()),
        DependencySource::Pyproject { dependencies } => {
            pip::write_requirements(scratch.path(), dependencies)?
        }
    };
    let extra: Vec<&str> = added.map(AddedServer::requirement).into_iter().collect();
    let request = InstallRequest {
        target: dir,
        requirements: (!dependencies.is_empty()).then_some(requirements.as_path()),
        extra: &extra,
        mode,
    };
    context.log(&format!(
        "running {} -m pip install ({} {})",
        host.program, "pip", host.pip
    ));
    match pip::install(&context.env, context.app_dir, host, &request) {
        Ok(output) => {
            if let Some(line) = output
                .lines()
                .rev()
                .find(|line| line.starts_with("Successfully installed"))
            {
                context.log(line);
            }
        }
        Err(PipRun::Start(error)) => return Err(error.into()),
        Err(PipRun::Failed { status, output }) => {
            return Err(install_failure(
                context,
                dependencies,
                host,
                mode,
                &status,
                &output,
                scratch.path(),
            )
            .into());
        }
    }
    let removed = remove_bytecode(dir)?;
    if removed > 0 {
        context.log(&format!(
            "removed {removed} __pycache__ directories shipped in wheels"
        ));
    }
    let rewritten = rewrite_shebangs(&dir.join("bin"))?;
    if rewritten > 0 {
        context.log(&format!(
            "console scripts: {rewritten} rewritten to run with {}",
            super::shebang::IMAGE_PYTHON
        ));
    }
    check_libraries(context, runtime, dir)
}

fn install_failure(
    context: &BuildContext<'_>,
    dependencies: &Dependencies,
    host: &HostPython,
    mode: &InstallMode,
    status: &str,
    output: &str,
    scratch: &Path,
) -> PythonError {
    let PipFailure::NoMatchingDistribution(requirement) = pip::classify_failure(output) else {
        return PythonError::PipInstall {
            status: status.to_owned(),
            output: pip::tail(output, 30),
        };
    };
    match mode {
        InstallMode::CrossTarget { python, platforms }
            if pip::exists_natively(
                &context.env,
                context.app_dir,
                host,
                &requirement,
                &scratch.join("probe"),
            ) =>
        {
            PythonError::NoWheelForRuntime {
                requirement,
                runtime: python.minor_string(),
                host: host.version.minor_string(),
                platform: platforms.first().cloned().unwrap_or_default(),
            }
        }
        _ => PythonError::RequirementNotFound {
            requirement,
            file: dependencies.declared_in().to_owned(),
        },
    }
}

/// Remove `__pycache__` directories: byte-code carries source timestamps, so it would make
/// the layer differ from build to build; Python writes fresh ones at run time if it may.
fn remove_bytecode(dir: &Path) -> Result<usize, PythonError> {
    let caches: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_dir() && entry.file_name() == "__pycache__")
        .map(|entry| entry.into_path())
        .collect();
    for cache in &caches {
        fs_err::remove_dir_all(cache).map_err(|source| PythonError::ProcessDeps {
            path: cache.clone(),
            source,
        })?;
    }
    Ok(caches.len())
}

fn check_libraries(
    context: &BuildContext<'_>,
    runtime: &mut Runtime<'_>,
    dir: &Path,
) -> Result<(), BuildpackFailure> {
    let mut available: BTreeSet<String> = context.run_image_libraries.iter().cloned().collect();
    available.extend(runtime.libraries()?);
    let missing = check_layer(dir, &available)?;
    if missing.is_empty() {
        return Ok(());
    }
    let missing: Vec<(String, String)> = missing
        .into_iter()
        .map(|item| (item.module, item.library))
        .collect();
    let error = PythonError::MissingLibraries { missing };
    if context
        .env
        .user_var(SKIP_LIBRARY_CHECK)
        .is_some_and(|value| value == "true" || value == "1")
    {
        context.log(&format!(
            "warning: {error} ({SKIP_LIBRARY_CHECK} is set, building anyway)"
        ));
        return Ok(());
    }
    Err(error.into())
}
