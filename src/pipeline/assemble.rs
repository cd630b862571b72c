//! Turning buildpack results into an image: layers (reused by record or diff_id, else
//! written in parallel), env, processes, and the CNB labels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::PipelineError;
use super::base::BaseFacts;
use super::previous::{PreviousImage, label_env};
use super::report::{BlobFrom, LayerReport};
use crate::buildpack::{
    BuildResult, BuildpackDescriptor, EnvAction, EnvChange, Layer, LayerContent, LayerState,
    LayerStore, Process, ProcessType,
};
use crate::layer::{
    Compression, DirOptions, LayerCache, LayerEntries, LayerRecord, Owner, WrittenLayer,
    entries_from_dir, tar_digest, write_layers,
};
use crate::oci::cnb::{
    self, BuildMetadata, BuildpackLayers, LayerMetadata, LifecycleMetadata, ProcessMetadata, Sha,
};
use crate::oci::image::{ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME};
use crate::oci::{BlobStore, Image, ImageBuilder, LayerRef};

/// The app directory inside images.
pub const APP_DIR: &str = "/workspace";
/// The user images run as: the stack's non-root `cnb` user.
pub const IMAGE_USER: &str = "1000:1000";
/// The port apps are told to listen on unless something else sets `PORT`.
pub const DEFAULT_PORT: &str = "8080";

/// One buildpack's finished build.
pub struct BuildpackOutcome {
    /// Its descriptor.
    pub descriptor: BuildpackDescriptor,
    /// What it produced.
    pub result: BuildResult,
    /// Its layer store (records are committed after export).
    pub layers: LayerStore,
}

/// The run image as the build uses it.
pub struct RunImage {
    /// The image.
    pub image: Image,
    /// Its name as given (for labels and annotations).
    pub name: String,
    /// Facts about its filesystem.
    pub facts: BaseFacts,
}

/// Everything needed to assemble the image.
pub struct Assembly<'a> {
    /// The base.
    pub run_image: &'a RunImage,
    /// Buildpack results in group order.
    pub outcomes: &'a [BuildpackOutcome],
    /// The app directory after the build.
    pub app_dir: &'a Path,
    /// Record scope of the app layer.
    pub app_cache: &'a LayerCache,
    /// `--default-process`.
    pub default_process: Option<&'a ProcessType>,
    /// Config `created`.
    pub created: &'a str,
    /// Layer compression.
    pub compression: Compression,
    /// The shared blob store.
    pub blobs: &'a BlobStore,
    /// The previous image, whose blobs are reused by diff_id.
    pub previous: Option<&'a PreviousImage>,
}

/// A layer on its way into the image.
struct PlannedLayer {
    buildpack: String,
    name: String,
    created_by: String,
    reused: bool,
    reasons: Vec<String>,
    source: PlannedSource,
}

enum PlannedSource {
    /// An existing blob: recorded in the layer cache or in the previous image.
    Ready(WrittenLayer, BlobFrom),
    Write(LayerEntries),
}

/// The assembled image and what happened to each layer.
pub struct Assembled {
    /// The image (already in the blob store).
    pub image: Image,
    /// Per-layer report, bottom first (run image layers excluded).
    pub layers: Vec<LayerReport>,
    /// The default process type.
    pub default_process: String,
    /// Blobs per buildpack layer, to record in the layer cache.
    pub written: BTreeMap<(String, String), WrittenLayer>,
}

impl Assembly<'_> {
    /// Build the image.
    pub fn assemble(&self) -> Result<Assembled, PipelineError> {
        let processes = merge_processes(self.outcomes);
        let default = choose_default(&processes, self.default_process)?;
        if !default.0.direct && !self.run_image.facts.has_shell {
            return Err(PipelineError::ShellMissing {
                run_image: self.run_image.name.clone(),
                process: default.0.r#type.to_string(),
            });
        }

        let mut planned = Vec::new();
        for outcome in self.outcomes {
            let mut layers: Vec<&Layer> = outcome
                .result
                .layers
                .iter()
                .filter(|layer| layer.types.launch)
                .collect();
            layers.sort_by(|a, b| a.name.cmp(&b.name));
            for layer in layers {
                planned.push(self.plan_buildpack_layer(outcome, layer)?);
            }
        }
        planned.push(self.plan_app_layer()?);
        planned.push(self.plan_by_diff_id(
            "process-types",
            "Buildpacks Process Types",
            process_layer(&processes)?,
            "process types changed",
        )?);

        let to_write: Vec<&LayerEntries> = planned
            .iter()
            .filter_map(|layer| match &layer.source {
                PlannedSource::Write(entries) => Some(entries),
                PlannedSource::Ready(..) => None,
            })
            .collect();
        let mut fresh = write_layers(&to_write, self.compression, self.blobs)?.into_iter();

        let mut builder = ImageBuilder::from_base(&self.run_image.image, &self.run_image.name)?;
        let mut reports = Vec::new();
        let mut written = BTreeMap::new();
        for layer in planned {
            let (blob, blob_from) = match layer.source {
                PlannedSource::Ready(blob, from) => (blob, from),
                PlannedSource::Write(_) => (
                    fresh.next().expect("one result per written layer"),
                    BlobFrom::Built,
                ),
            };
            builder.push_layer(
                LayerRef {
                    digest: blob.digest.clone(),
                    size: blob.size,
                    media_type: blob.media_type.clone(),
                    diff_id: blob.diff_id.clone(),
                },
                &layer.created_by,
            );
            reports.push(LayerReport {
                buildpack: layer.buildpack.clone(),
                name: layer.name.clone(),
                reused: layer.reused,
                reasons: layer.reasons,
                compressed: blob_from == BlobFrom::Built,
                blob_from,
                diff_id: blob.diff_id.to_string(),
                digest: blob.digest.to_string(),
                size: blob.size,
            });
            written.insert((layer.buildpack, layer.name), blob);
        }

        self.configure(&mut builder, &processes, &default.0, &written)?;
        builder.set_created(self.created);
        let image = builder.build(self.blobs)?;
        Ok(Assembled {
            image,
            layers: reports,
            default_process: default.0.r#type.to_string(),
            written,
        })
    }

    fn plan_buildpack_layer(
        &self,
        outcome: &BuildpackOutcome,
        layer: &Layer,
    ) -> Result<PlannedLayer, PipelineError> {
        let id = outcome.descriptor.id();
        let created_by = format!(
            "Layer: '{}', Created by buildpack: {}@{}",
            layer.name, id, outcome.descriptor.buildpack.version
        );
        // A layer restored from the previous image reuses that image's blob (on the registry);
        // one restored from the cache reuses the recorded blob when it is still local.
        let recorded = match outcome.layers.restored_from_previous(layer.name.as_str()) {
            Some(blob) => Some((blob, BlobFrom::PreviousImage)),
            None => outcome
                .layers
                .cache()
                .load(layer.name.as_str())
                .and_then(|record| record.written)
                .filter(|blob| self.blobs.contains(&blob.digest))
                .map(|blob| (blob, BlobFrom::Cache)),
        };
        let (reused, reasons) = match &layer.state {
            LayerState::Restored => (true, Vec::new()),
            LayerState::Empty { reasons } => (false, reasons.clone()),
        };
        let entries = match (&layer.content, &layer.state, recorded) {
            (_, LayerState::Restored, Some((blob, from))) => {
                return Ok(PlannedLayer {
                    buildpack: id.to_string(),
                    name: layer.name.to_string(),
                    created_by,
                    reused,
                    reasons,
                    source: PlannedSource::Ready(blob, from),
                });
            }
            (LayerContent::Dir(dir), _, _) => {
                dir_layer_entries(dir, &format!("layers/{}/{}", id.escaped(), layer.name))?
            }
            (LayerContent::Root(Some(entries)), _, _) => entries.clone(),
            (LayerContent::Root(None), _, _) => {
                return Err(PipelineError::LayerWithoutContent {
                    buildpack: id.to_string(),
                    layer: layer.name.to_string(),
                });
            }
        };
        Ok(PlannedLayer {
            buildpack: id.to_string(),
            name: layer.name.to_string(),
            created_by,
            reused,
            reasons,
            source: PlannedSource::Write(entries),
        })
    }

    fn plan_app_layer(&self) -> Result<PlannedLayer, PipelineError> {
        let mut entries =
            entries_from_dir(self.app_dir, DirOptions::APP, |_, _| true)?.prefixed("workspace")?;
        entries.add_dir("workspace", 0o755, Owner::CNB)?;
        self.plan_by_diff_id("app", "Application Layer", entries, "app files changed")
    }

    /// A layer kiln makes itself (app, process types): only its diff_id is computed first, and
    /// an unchanged layer reuses its recorded blob without compressing anything.
    fn plan_by_diff_id(
        &self,
        name: &str,
        created_by: &str,
        entries: LayerEntries,
        changed: &str,
    ) -> Result<PlannedLayer, PipelineError> {
        let (diff_id, _) = tar_digest(&entries)?;
        let recorded = self
            .app_cache
            .load(name)
            .and_then(|record| record.written)
            .filter(|blob| {
                blob.diff_id == diff_id
                    && blob.media_type == self.compression.media_type()
                    && self.blobs.contains(&blob.digest)
            });
        let previous = self.previous.and_then(|previous| {
            previous.layer_with_diff_id(&diff_id, self.compression.media_type())
        });
        let (source, reasons) = match (recorded, previous) {
            (Some(blob), _) => (PlannedSource::Ready(blob, BlobFrom::Cache), Vec::new()),
            (None, Some(blob)) => (
                PlannedSource::Ready(blob, BlobFrom::PreviousImage),
                Vec::new(),
            ),
            (None, None) => (PlannedSource::Write(entries), vec![changed.to_owned()]),
        };
        Ok(PlannedLayer {
            buildpack: name.to_owned(),
            name: name.to_owned(),
            created_by: created_by.to_owned(),
            reused: reasons.is_empty(),
            reasons,
            source,
        })
    }

    fn configure(
        &self,
        builder: &mut ImageBuilder,
        processes: &[(Process, String)],
        default: &Process,
        written: &BTreeMap<(String, String), WrittenLayer>,
    ) -> Result<(), PipelineError> {
        let env = self.launch_env(&self.run_image.image.env());
        let runtime = builder.runtime_mut();
        runtime.set_env(Some(
            env.iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect(),
        ));
        runtime.set_entrypoint(Some(default.entrypoint()));
        runtime.set_working_dir(Some(
            default
                .working_dir
                .clone()
                .unwrap_or_else(|| APP_DIR.to_owned()),
        ));
        runtime.set_user(Some(IMAGE_USER.to_owned()));
        let mut ports = runtime.exposed_ports().clone().unwrap_or_default();
        let port = crate::env::get_var(&env, "PORT").unwrap_or(DEFAULT_PORT);
        let exposed = format!("{port}/tcp");
        if !ports.contains(&exposed) {
            ports.push(exposed);
            ports.sort();
        }
        runtime.set_exposed_ports(Some(ports));

        let lifecycle = self.lifecycle_metadata(written);
        let build = build_metadata(self.outcomes, processes, default);
        builder.set_label(cnb::LIFECYCLE_METADATA, &label_json(&lifecycle)?);
        builder.set_label(cnb::BUILD_METADATA, &label_json(&build)?);
        builder.set_label(cnb::PROJECT_METADATA, "{}");
        builder.annotate(ANNOTATION_BASE_NAME, &self.run_image.name);
        builder.annotate(
            ANNOTATION_BASE_DIGEST,
            &self.run_image.image.manifest_digest.to_string(),
        );
        Ok(())
    }

    /// The image Env: the run image's, then `/cnb/process` and layer `bin` dirs on PATH,
    /// then each layer's env changes in buildpack and layer order, then defaults.
    fn launch_env(&self, base: &[(String, String)]) -> Vec<(String, String)> {
        let mut env = base.to_vec();
        let base_path = crate::env::get_var(&env, "PATH")
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .to_owned();
        crate::env::set_var(&mut env, "PATH", format!("/cnb/process:{base_path}"));
        for outcome in self.outcomes {
            let mut layers: Vec<&Layer> = outcome
                .result
                .layers
                .iter()
                .filter(|layer| layer.types.launch)
                .collect();
            layers.sort_by(|a, b| a.name.cmp(&b.name));
            for layer in layers {
                if let LayerContent::Dir(dir) = &layer.content
                    && dir.join("bin").is_dir()
                {
                    let bin = format!("{}/bin", outcome.layers.image_path(&layer.name));
                    apply_env(
                        &mut env,
                        &EnvChange {
                            name: "PATH".to_owned(),
                            action: EnvAction::Prepend,
                            value: bin,
                        },
                    );
                }
                for change in &layer.env {
                    apply_env(&mut env, change);
                }
            }
        }
        if crate::env::get_var(&env, "PORT").is_none() {
            env.push(("PORT".to_owned(), DEFAULT_PORT.to_owned()));
        }
        for (name, value) in [
            ("CNB_APP_DIR", APP_DIR),
            ("CNB_LAYERS_DIR", "/layers"),
            ("CNB_PLATFORM_API", cnb::PLATFORM_API),
        ] {
            crate::env::set_var(&mut env, name, value.to_owned());
        }
        env
    }

    fn lifecycle_metadata(
        &self,
        written: &BTreeMap<(String, String), WrittenLayer>,
    ) -> LifecycleMetadata {
        let sha_of = |buildpack: &str, name: &str| {
            written
                .get(&(buildpack.to_owned(), name.to_owned()))
                .map(|blob| blob.diff_id.to_string())
                .unwrap_or_default()
        };
        let buildpacks = self
            .outcomes
            .iter()
            .map(|outcome| {
                let id = outcome.descriptor.id().to_string();
                let layers = outcome
                    .result
                    .layers
                    .iter()
                    .filter(|layer| layer.types.launch)
                    .map(|layer| {
                        (
                            layer.name.to_string(),
                            LayerMetadata {
                                sha: sha_of(&id, layer.name.as_str()),
                                data: layer.metadata.clone(),
                                build: layer.types.build,
                                launch: layer.types.launch,
                                cache: layer.types.cache,
                                env: layer.env.iter().map(label_env).collect(),
                            },
                        )
                    })
                    .collect();
                BuildpackLayers {
                    key: id,
                    version: outcome.descriptor.buildpack.version.clone(),
                    layers,
                    other: BTreeMap::new(),
                }
            })
            .collect();
        let base_layers = self.run_image.image.diff_ids();
        LifecycleMetadata {
            app: vec![Sha {
                sha: sha_of("app", "app"),
            }],
            process_types: Some(Sha {
                sha: sha_of("process-types", "process-types"),
            }),
            buildpacks,
            run_image: cnb::RunImage {
                top_layer: base_layers.last().cloned().unwrap_or_default(),
                reference: format!(
                    "{}@{}",
                    strip_digest(&self.run_image.name),
                    self.run_image.image.manifest_digest
                ),
                image: self.run_image.name.clone(),
                mirrors: Vec::new(),
            },
            stack: cnb::Stack {
                run_image: cnb::StackRunImage {
                    image: self.run_image.name.clone(),
                    mirrors: Vec::new(),
                },
            },
            other: BTreeMap::new(),
        }
    }
}

fn strip_digest(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

/// The entries of a directory layer at `prefix` (`layers/<buildpack>/<layer>`): the same for
/// the image and the cache image, so a cached launch layer's blob serves both.
pub fn dir_layer_entries(dir: &Path, prefix: &str) -> Result<LayerEntries, PipelineError> {
    let mut entries = entries_from_dir(dir, DirOptions::APP, |_, _| true)?.prefixed(prefix)?;
    entries.add_dir(prefix, 0o755, Owner::CNB)?;
    entries.add_missing_parents(0o755, Owner::CNB);
    Ok(entries)
}

/// Apply one CNB env action.
pub fn apply_env(env: &mut Vec<(String, String)>, change: &EnvChange) {
    let current = crate::env::get_var(env, &change.name).map(str::to_owned);
    let value = match (&change.action, current) {
        (EnvAction::Override, _) => change.value.clone(),
        (EnvAction::Default, Some(existing)) => existing,
        (EnvAction::Default, None) => change.value.clone(),
        (EnvAction::Prepend, Some(existing)) if !existing.is_empty() => {
            format!("{}:{existing}", change.value)
        }
        (EnvAction::Append, Some(existing)) if !existing.is_empty() => {
            format!("{existing}:{}", change.value)
        }
        (EnvAction::Prepend | EnvAction::Append, _) => change.value.clone(),
    };
    crate::env::set_var(env, &change.name, value);
}

/// Processes by type; a later buildpack's process replaces an earlier one (CNB merge rule).
fn merge_processes(outcomes: &[BuildpackOutcome]) -> Vec<(Process, String)> {
    let mut merged: Vec<(Process, String)> = Vec::new();
    for outcome in outcomes {
        for process in &outcome.result.processes {
            merged.retain(|(existing, _)| existing.r#type != process.r#type);
            merged.push((process.clone(), outcome.descriptor.id().to_string()));
        }
    }
    merged.sort_by(|a, b| a.0.r#type.cmp(&b.0.r#type));
    merged
}

/// The default process: `--default-process`, else the last one a buildpack marked default,
/// else `web`, else the only one. Several without a rule is an error naming them.
fn choose_default<'a>(
    processes: &'a [(Process, String)],
    requested: Option<&ProcessType>,
) -> Result<&'a (Process, String), PipelineError> {
    let types = || {
        processes
            .iter()
            .map(|(process, _)| process.r#type.to_string())
            .collect::<Vec<_>>()
    };
    if let Some(requested) = requested {
        return processes
            .iter()
            .find(|(process, _)| &process.r#type == requested)
            .ok_or_else(|| PipelineError::UnknownDefaultProcess {
                requested: requested.to_string(),
                available: types(),
            });
    }
    if processes.is_empty() {
        return Err(PipelineError::NoProcesses);
    }
    // Processes are sorted by type here, so among several marked defaults the choice is
    // stable; in practice one buildpack marks one.
    if let Some(found) = processes.iter().rev().find(|(process, _)| process.default) {
        return Ok(found);
    }
    if let Some(web) = processes
        .iter()
        .find(|(process, _)| process.r#type == ProcessType::web())
    {
        return Ok(web);
    }
    match processes {
        [only] => Ok(only),
        _ => Err(PipelineError::AmbiguousDefaultProcess { available: types() }),
    }
}

fn build_metadata(
    outcomes: &[BuildpackOutcome],
    processes: &[(Process, String)],
    default: &Process,
) -> BuildMetadata {
    BuildMetadata {
        buildpacks: outcomes
            .iter()
            .map(|outcome| cnb::BuildpackInfo {
                id: outcome.descriptor.id().to_string(),
                version: outcome.descriptor.buildpack.version.clone(),
                homepage: outcome.descriptor.buildpack.homepage.clone(),
            })
            .collect(),
        processes: processes
            .iter()
            .map(|(process, buildpack)| ProcessMetadata {
                r#type: process.r#type.to_string(),
                command: process.command.clone(),
                args: process.args.clone(),
                direct: process.direct,
                buildpack_id: buildpack.clone(),
                working_dir: process.working_dir.clone(),
            })
            .collect(),
        default_process: Some(default.r#type.to_string()),
        other: BTreeMap::new(),
    }
}

/// `/cnb/process/<type>` scripts, owned by root.
fn process_layer(processes: &[(Process, String)]) -> Result<LayerEntries, PipelineError> {
    let mut entries = LayerEntries::new();
    entries.add_dir("cnb", 0o755, Owner::ROOT)?;
    entries.add_dir("cnb/process", 0o755, Owner::ROOT)?;
    for (process, _) in processes {
        entries.add_bytes(
            &format!("cnb/process/{}", process.r#type),
            process.launcher_script(APP_DIR).into_bytes(),
            0o755,
            Owner::ROOT,
        )?;
    }
    Ok(entries)
}

/// Record every layer's metadata and blob (and move fresh cached content into the cache) so
/// the next build can reuse them. Called only after the image was written. A blob is recorded
/// only when it is in the local store: one reused from a previous image may stay remote.
pub fn commit_layer_records(
    outcomes: Vec<BuildpackOutcome>,
    written: &BTreeMap<(String, String), WrittenLayer>,
    app_cache: &LayerCache,
    blobs: &BlobStore,
) -> Result<(), PipelineError> {
    for outcome in outcomes {
        let id = outcome.descriptor.id().to_string();
        for layer in outcome.result.layers {
            if !layer.types.cache {
                continue;
            }
            let blob = written
                .get(&(id.clone(), layer.name.to_string()))
                .filter(|blob| blobs.contains(&blob.digest))
                .cloned();
            let extra = serde_json::to_value(&layer.env).unwrap_or(Value::Null);
            let cache = outcome.layers.cache();
            let from_previous = outcome
                .layers
                .restored_from_previous(layer.name.as_str())
                .is_some();
            match (&layer.state, &layer.content) {
                (LayerState::Restored, _) if !from_previous => {
                    let mut record = cache.load(layer.name.as_str()).unwrap_or_default();
                    if blob.is_some() {
                        record.written = blob;
                    }
                    record.extra = extra;
                    cache.store(layer.name.as_str(), record, None)?;
                }
                // Restored from the previous image: a root layer without a local blob leaves
                // nothing worth recording.
                (LayerState::Restored, LayerContent::Root(_)) if blob.is_none() => {}
                (_, content) => {
                    let staged: Option<PathBuf> = match content {
                        LayerContent::Dir(dir) => Some(dir.clone()),
                        LayerContent::Root(_) => None,
                    };
                    let record = LayerRecord {
                        metadata: layer.metadata.clone(),
                        written: blob,
                        content: None,
                        extra,
                    };
                    cache.store(layer.name.as_str(), record, staged.as_deref())?;
                }
            }
        }
    }
    for name in ["app", "process-types"] {
        if let Some(blob) = written
            .get(&(name.to_owned(), name.to_owned()))
            .filter(|blob| blobs.contains(&blob.digest))
        {
            app_cache.store(
                name,
                LayerRecord {
                    written: Some(blob.clone()),
                    ..LayerRecord::default()
                },
                None,
            )?;
        }
    }
    Ok(())
}

/// A label value: compact, deterministic JSON.
fn label_json<T: serde::Serialize>(value: &T) -> Result<String, PipelineError> {
    let bytes = crate::oci::canonical::to_vec(value).map_err(PipelineError::Label)?;
    Ok(String::from_utf8(bytes).expect("serde_json writes UTF-8"))
}
