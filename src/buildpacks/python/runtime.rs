//! The Python runtime layer: Debian's `python3` closure from the stack, at the image root,
//! reused while the resolved package set (its key) stays the same.

use std::collections::BTreeSet;

use serde_json::json;

use super::error::PythonError;
use super::libraries::libraries_in_entries;
use super::pip::glibc_from_debian;
use super::version::{PythonVersion, VersionRequest};
use crate::buildpack::{
    BuildContext, BuildpackFailure, EnvAction, Layer, LayerContent, LayerState, RuntimeLayer,
    RuntimeProvider,
};

/// The stack package that provides the runtime.
pub const PYTHON_PACKAGE: &str = "python3";
/// The runtime layer's name.
pub const RUNTIME_LAYER: &str = "runtime";

/// The runtime chosen for the app.
pub struct Runtime<'a> {
    /// The stack.
    provider: &'a dyn RuntimeProvider,
    /// What was resolved.
    resolved: RuntimeLayer,
    /// The Debian version of `python3`.
    pub package_version: String,
    /// Its Python version.
    pub version: PythonVersion,
    /// The stack's glibc, for wheel platform tags.
    pub glibc: Option<(u32, u32)>,
    /// Library names in the layer, known once it was unpacked.
    libraries: Option<BTreeSet<String>>,
}

impl Runtime<'_> {
    /// Shared library names the runtime layer adds to the image (unpacking it if this build
    /// reused it without unpacking).
    pub fn libraries(&mut self) -> Result<BTreeSet<String>, BuildpackFailure> {
        if let Some(libraries) = &self.libraries {
            return Ok(libraries.clone());
        }
        let libraries = libraries_in_entries(&self.provider.materialize(&self.resolved)?);
        self.libraries = Some(libraries.clone());
        Ok(libraries)
    }
}

/// Resolve the runtime, check it satisfies the app's request, and return its layer.
pub fn provide<'a>(
    context: &BuildContext<'a>,
    request: Option<&VersionRequest>,
) -> Result<(Runtime<'a>, Layer), BuildpackFailure> {
    let provider = context.runtimes.ok_or(PythonError::NoRuntimeProvider)?;
    let offered = provider
        .package_version(PYTHON_PACKAGE)?
        .ok_or(PythonError::RuntimeUnavailable)?;
    let version =
        PythonVersion::from_debian(&offered).ok_or_else(|| PythonError::ParseRuntimeVersion {
            version: offered.clone(),
        })?;
    if let Some(request) = request
        && !request.matches(&version)
    {
        return Err(PythonError::VersionUnavailable {
            requested: request.to_string(),
            file: request.file.clone(),
            offered: version.to_string(),
        }
        .into());
    }
    let resolved = provider.resolve(&[PYTHON_PACKAGE])?;
    let package_version = resolved
        .packages
        .get(PYTHON_PACKAGE)
        .cloned()
        .unwrap_or(offered);
    let mut layer = context.layers.root_layer(
        RUNTIME_LAYER,
        json!({ "runtime": resolved.key, "python3": package_version }),
    )?;
    let mut libraries = None;
    match &layer.state {
        LayerState::Restored => {
            context.log(&format!("Python {version}: reusing the runtime layer"))
        }
        LayerState::Empty { reasons } => {
            context.log(&format!(
                "Python {version}: unpacking the runtime layer ({})",
                reasons.join(", ")
            ));
            let entries = provider.materialize(&resolved)?;
            libraries = Some(libraries_in_entries(&entries));
            layer.content = LayerContent::Root(Some(entries));
        }
    }
    // Output appears as it is written, not when a buffer fills (logs of crashed apps).
    layer.env.clear();
    layer.set_env("PYTHONUNBUFFERED", EnvAction::Override, "1");
    let glibc = provider
        .package_version("libc6")
        .ok()
        .flatten()
        .as_deref()
        .and_then(glibc_from_debian);
    Ok((
        Runtime {
            provider,
            resolved,
            package_version,
            version,
            glibc,
            libraries,
        },
        layer,
    ))
}
