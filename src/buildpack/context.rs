//! What buildpacks see: the app, the target, a clean build environment, runtimes from the
//! stack, and their own layer store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::BuildpackFailure;
use super::ids::{BuildpackId, LayerName};
use super::layers::{EnvChange, Layer, LayerContent, LayerState, LayerTypes, invalidation_reasons};
use super::previous::PreviousLayers;
use crate::layer::{LayerCache, LayerEntries, LayerRecord, WrittenLayer};
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

    /// Like [`RuntimeProvider::resolve`], leaving `exclude` (and what only they need) out, e.g.
    /// a headless JRE's desktop libraries.
    fn resolve_excluding(
        &self,
        packages: &[&str],
        exclude: &[&str],
    ) -> Result<RuntimeLayer, BuildpackFailure> {
        let _ = exclude;
        self.resolve(packages)
    }

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
    previous: Option<PreviousLayers>,
}

impl LayerStore {
    /// A store for `buildpack`, with records in `cache` and fresh layers under `staging`.
    pub fn new(buildpack: BuildpackId, cache: LayerCache, staging: PathBuf, clear: bool) -> Self {
        Self {
            buildpack,
            cache,
            staging,
            clear,
            previous: None,
        }
    }

    /// Also restore layers a previous image of the app recorded (when the cache cannot).
    pub fn with_previous(mut self, previous: PreviousLayers) -> Self {
        self.previous = Some(previous);
        self
    }

    /// The previous image's blob of layer `name`, when this build restored it from there
    /// rather than from the cache.
    pub fn restored_from_previous(&self, name: &str) -> Option<WrittenLayer> {
        self.previous.as_ref()?.restored_blob(name)
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
            Ok(_) => self.previous_or_empty_dir(
                name,
                types,
                metadata,
                vec!["cached content is missing".to_owned()],
            ),
            Err(reasons) => self.previous_or_empty_dir(name, types, metadata, reasons),
        }
    }

    /// Restore a directory layer from the previous image (unpacking its blob, which is then
    /// reused as it is), else hand out an empty one.
    fn previous_or_empty_dir(
        &self,
        name: LayerName,
        types: LayerTypes,
        metadata: Value,
        cache_reasons: Vec<String>,
    ) -> Result<Layer, BuildpackFailure> {
        let previous = match self.previous.as_ref().filter(|_| !self.clear) {
            Some(previous) => previous,
            None => return self.empty_dir_layer(name, types, metadata, cache_reasons),
        };
        let recorded = match previous.matching(name.as_str(), types, &metadata) {
            Ok(recorded) => recorded.clone(),
            Err(reasons) => {
                let reasons = pick_reasons(cache_reasons, reasons);
                return self.empty_dir_layer(name, types, metadata, reasons);
            }
        };
        let dir = self.staging.join(name.as_str());
        if dir.exists() {
            fs_err::remove_dir_all(&dir).map_err(boxed_io)?;
        }
        let image_path = format!("layers/{}/{}", self.buildpack.escaped(), name);
        match previous.unpack(&recorded, &image_path, &dir) {
            Ok(()) => {
                previous.mark_restored(name.as_str(), recorded.blob.clone());
                Ok(Layer {
                    name,
                    types,
                    metadata,
                    state: LayerState::Restored,
                    content: LayerContent::Dir(dir),
                    env: recorded.env,
                })
            }
            Err(error) => {
                let mut reasons = cache_reasons;
                reasons.push(format!("cannot unpack it from the previous image: {error}"));
                self.empty_dir_layer(name, types, metadata, reasons)
            }
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
        let (state, env) = match state {
            LayerState::Restored => {
                let env = self
                    .cache
                    .load(name.as_str())
                    .and_then(|record| serde_json::from_value(record.extra).ok())
                    .unwrap_or_default();
                (LayerState::Restored, env)
            }
            LayerState::Empty { reasons } => self.root_from_previous(&name, &metadata, reasons),
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

impl LayerStore {
    /// A root layer needs no content to be restored: the previous image's blob is the layer.
    fn root_from_previous(
        &self,
        name: &LayerName,
        metadata: &Value,
        cache_reasons: Vec<String>,
    ) -> (LayerState, Vec<EnvChange>) {
        let Some(previous) = self.previous.as_ref().filter(|_| !self.clear) else {
            return (
                LayerState::Empty {
                    reasons: cache_reasons,
                },
                Vec::new(),
            );
        };
        match previous.matching(name.as_str(), LayerTypes::LAUNCH_CACHED, metadata) {
            Ok(recorded) => {
                previous.mark_restored(name.as_str(), recorded.blob.clone());
                (LayerState::Restored, recorded.env.clone())
            }
            Err(reasons) => (
                LayerState::Empty {
                    reasons: pick_reasons(cache_reasons, reasons),
                },
                Vec::new(),
            ),
        }
    }
}

/// Why a layer is rebuilt: the cache's reasons, unless the cache simply had nothing and the
/// previous image says more.
fn pick_reasons(cache: Vec<String>, previous: Vec<String>) -> Vec<String> {
    let cache_had_nothing = cache.iter().any(|reason| reason == "no cached layer");
    let previous_had_it = !previous
        .iter()
        .any(|reason| reason == "not in the previous image");
    if cache_had_nothing && previous_had_it {
        previous
    } else {
        cache
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
