//! What buildpacks see: the app, the target, a clean build environment, runtimes from the
//! stack, and their own layer store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::BuildpackFailure;
use super::ids::{BuildpackId, LayerName};
use super::layers::{EnvChange, Layer, LayerContent, LayerState, LayerTypes, invalidation_reasons};
use crate::layer::{LayerCache, LayerEntries, LayerRecord};
use crate::source::SourceTree;

/// The platform images are built for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Target {
    /// Operating system (`linux`).
    pub os: String,
    /// Architecture (`amd64`).
    pub arch: String,
    /// Distribution name and version of the run image, when known (`debian`, `12`).
    pub distro: Option<(String, String)>,
}

/// The environment build steps run with: an allowlist of host variables plus what the user
/// passed (`--env`, `--env-file`, `project.toml`) plus what earlier buildpacks' build layers
/// set. Nothing else from the host leaks in (no tokens, no registry credentials).
#[derive(Debug, Clone, Default)]
pub struct BuildEnv {
    vars: Vec<(String, String)>,
    user: Vec<(String, String)>,
}

impl BuildEnv {
    /// Allowlisted host variables overlaid with the user's.
    pub fn new(user: Vec<(String, String)>) -> Self {
        let mut vars: Vec<(String, String)> = crate::env::HOST_ALLOWLIST
            .iter()
            .filter_map(|name| {
                std::env::var(name)
                    .ok()
                    .map(|value| ((*name).to_owned(), value))
            })
            .collect();
        for (name, value) in &user {
            crate::env::set_var(&mut vars, name, value.clone());
        }
        Self { vars, user }
    }

    /// A variable's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        crate::env::get_var(&self.vars, name)
    }

    /// A variable the user set explicitly (`BP_*` settings live here).
    pub fn user_var(&self, name: &str) -> Option<&str> {
        crate::env::get_var(&self.user, name)
    }

    /// Set a variable for later build steps.
    pub fn set(&mut self, name: &str, value: String) {
        crate::env::set_var(&mut self.vars, name, value);
    }

    /// All variables.
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }

    /// A command for `program` with exactly this environment, running in `dir`.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .current_dir(dir);
        command
    }
}

/// A language runtime resolved from the stack, before it is unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeLayer {
    /// Identity of the resolved package set: equal keys mean identical layers.
    pub key: String,
    /// `name=version` of every package in the layer.
    pub packages: BTreeMap<String, String>,
}

/// Runtimes from the stack (e.g. Debian packages over the run image).
pub trait RuntimeProvider: Send + Sync {
    /// Resolve the closure of `packages` over the run image.
    fn resolve(&self, packages: &[&str]) -> Result<RuntimeLayer, BuildpackFailure>;

    /// Unpack a resolved runtime into layer entries at the image root.
    fn materialize(&self, runtime: &RuntimeLayer) -> Result<LayerEntries, BuildpackFailure>;

    /// The version of one package the stack offers (resolved over the run image).
    fn package_version(&self, package: &str) -> Result<Option<String>, BuildpackFailure>;
}

/// What detection sees.
pub struct DetectContext<'a> {
    /// The app source.
    pub source: &'a SourceTree,
    /// The build environment.
    pub env: &'a BuildEnv,
    /// The target platform.
    pub target: &'a Target,
}

/// What a build sees.
pub struct BuildContext<'a> {
    /// The app source as the user has it (read-only).
    pub source: &'a SourceTree,
    /// A writable copy of the app: becomes `/workspace`.
    pub app_dir: &'a Path,
    /// The build environment.
    pub env: BuildEnv,
    /// The target platform.
    pub target: &'a Target,
    /// Runtimes from the stack, when the run image has a package stack.
    pub runtimes: Option<&'a dyn RuntimeProvider>,
    /// This buildpack's layers.
    pub layers: LayerStore,
    /// Print progress lines.
    pub log: &'a dyn Fn(&str),
}

impl BuildContext<'_> {
    /// Log a progress line.
    pub fn log(&self, line: &str) {
        (self.log)(line)
    }
}

/// Creates this buildpack's layers, restoring cached ones whose metadata still fits.
pub struct LayerStore {
    buildpack: BuildpackId,
    cache: LayerCache,
    staging: PathBuf,
    clear: bool,
}

impl LayerStore {
    /// A store for `buildpack`, with records in `cache` and fresh layers under `staging`.
    pub fn new(buildpack: BuildpackId, cache: LayerCache, staging: PathBuf, clear: bool) -> Self {
        Self {
            buildpack,
            cache,
            staging,
            clear,
        }
    }

    /// Path of a layer inside the image: `/layers/<escaped id>/<name>`.
    pub fn image_path(&self, name: &LayerName) -> String {
        format!("/layers/{}/{}", self.buildpack.escaped(), name)
    }

    /// The record cache behind this store.
    pub fn cache(&self) -> &LayerCache {
        &self.cache
    }

    fn restorable(
        &self,
        name: &LayerName,
        types: LayerTypes,
        metadata: &Value,
    ) -> Result<LayerRecord, Vec<String>> {
        if self.clear {
            return Err(vec!["the cache was cleared (--clear-cache)".to_owned()]);
        }
        if !types.cache {
            return Err(vec!["the layer is not cached".to_owned()]);
        }
        let Some(record) = self.cache.load(name.as_str()) else {
            return Err(vec!["no cached layer".to_owned()]);
        };
        let reasons = invalidation_reasons(&record.metadata, metadata);
        if reasons.is_empty() {
            Ok(record)
        } else {
            Err(reasons)
        }
    }

    /// A directory layer. Restored when its cached metadata equals `metadata` and its cached
    /// content is still there; otherwise an empty directory to fill.
    pub fn dir_layer(
        &self,
        name: &str,
        types: LayerTypes,
        metadata: Value,
    ) -> Result<Layer, BuildpackFailure> {
        let name = LayerName::new(name).map_err(boxed)?;
        match self.restorable(&name, types, &metadata) {
            Ok(LayerRecord {
                content: Some(token),
                extra,
                ..
            }) => Ok(Layer {
                content: LayerContent::Dir(self.cache.content_dir(name.as_str(), &token)),
                env: serde_json::from_value::<Vec<EnvChange>>(extra).unwrap_or_default(),
                name,
                types,
                metadata,
                state: LayerState::Restored,
            }),
            Ok(_) => self.empty_dir_layer(
                name,
                types,
                metadata,
                vec!["cached content is missing".to_owned()],
            ),
            Err(reasons) => self.empty_dir_layer(name, types, metadata, reasons),
        }
    }

    fn empty_dir_layer(
        &self,
        name: LayerName,
        types: LayerTypes,
        metadata: Value,
        reasons: Vec<String>,
    ) -> Result<Layer, BuildpackFailure> {
        let dir = self.staging.join(name.as_str());
        if dir.exists() {
            fs_err::remove_dir_all(&dir).map_err(boxed_io)?;
        }
        fs_err::create_dir_all(&dir).map_err(boxed_io)?;
        Ok(Layer {
            name,
            types,
            metadata,
            state: LayerState::Empty { reasons },
            content: LayerContent::Dir(dir),
            env: Vec::new(),
        })
    }

    /// A layer of entries at the image root (a runtime). Restored when its cached metadata
    /// equals `metadata` and its blob was recorded; otherwise the buildpack supplies entries.
    pub fn root_layer(&self, name: &str, metadata: Value) -> Result<Layer, BuildpackFailure> {
        let name = LayerName::new(name).map_err(boxed)?;
        let types = LayerTypes::LAUNCH_CACHED;
        let state = match self.restorable(&name, types, &metadata) {
            Ok(record) if record.written.is_some() => LayerState::Restored,
            Ok(_) => LayerState::Empty {
                reasons: vec!["no exported blob recorded".to_owned()],
            },
            Err(reasons) => LayerState::Empty { reasons },
        };
        let env = match state {
            LayerState::Restored => self
                .cache
                .load(name.as_str())
                .and_then(|record| serde_json::from_value(record.extra).ok())
                .unwrap_or_default(),
            LayerState::Empty { .. } => Vec::new(),
        };
        Ok(Layer {
            name,
            types,
            metadata,
            state,
            content: LayerContent::Root(None),
            env,
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot prepare a layer directory")]
struct LayerDirError(#[source] std::io::Error);

impl crate::diagnostic::Diagnose for LayerDirError {
    fn class(&self) -> crate::diagnostic::ErrorClass {
        crate::diagnostic::ErrorClass::Internal
    }
}

impl crate::diagnostic::Diagnose for super::ids::InvalidName {
    fn class(&self) -> crate::diagnostic::ErrorClass {
        crate::diagnostic::ErrorClass::Internal
    }
}

fn boxed(error: super::ids::InvalidName) -> BuildpackFailure {
    error.into()
}

fn boxed_io(error: std::io::Error) -> BuildpackFailure {
    LayerDirError(error).into()
}
