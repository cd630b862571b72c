//! detect → build → export: the only place the buildpack half and the image half meet.

pub mod assemble;
pub mod base;
pub mod builder;
pub mod cache_image;
pub mod debian;
pub mod previous;
pub mod report;
mod reuse;
pub mod time;

use std::path::{Path, PathBuf};

use crate::buildpack::{
    BuildContext, BuildEnv, Buildpack, BuildpackFailure, BuildpackId, DetectContext, DetectReport,
    LayerStore, Order, OrderGroup, OrderMember, ProcessType, Target, resolve_order,
};
use crate::cache::{Cache, CacheError, GC_LOCK};
use crate::diagnostic::{Diagnose, ErrorClass};
use crate::export::{ExportError, Exported, exporter_with_origins};
use crate::images::{OpenImageError, open_image};
use crate::layer::{Compression, EntryPathError, LayerCache, LayerCacheError, LayerError};
use crate::oci::{Digest, ImageLocation, OciError};
use crate::registry::{RegistryError, TransportOptions};
use crate::source::{SourceError, SourceTree};
use reuse::Reuse;

pub use assemble::{APP_DIR, BuildpackOutcome, RunImage};
pub use previous::{PreviousImage, PreviousImageError};
pub use report::{BlobFrom, BuildReport, CacheImageReport, LayerReport, PreviousImageReport};
pub use time::{creation_time, rfc3339_from_unix};

/// Everything that can stop a build.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot open the run image")]
    RunImage(#[source] OpenImageError),
    #[error("cannot assemble the default run image from Debian packages")]
    DefaultStack(#[source] debian::DebianStackError),
    #[error("cannot inspect the run image `{run_image}`")]
    BaseFacts {
        run_image: String,
        #[source]
        source: OciError,
    },
    #[error(transparent)]
    Builder(#[from] builder::BuilderError),
    #[error("unknown buildpack `{id}`")]
    UnknownBuildpack { id: String, available: Vec<String> },
    #[error("no buildpack detected an app in {path}")]
    NothingDetected {
        path: PathBuf,
        report: Box<DetectReport>,
    },
    #[error("buildpack {buildpack} failed during detection")]
    Detect {
        buildpack: String,
        #[source]
        source: BuildpackFailure,
    },
    #[error("buildpack {buildpack} failed")]
    Build {
        buildpack: String,
        #[source]
        source: BuildpackFailure,
    },
    #[error("process `{process}` needs /bin/sh, but the run image `{run_image}` has no shell")]
    ShellMissing { run_image: String, process: String },
    #[error("buildpack {buildpack} declared layer `{layer}` without content")]
    LayerWithoutContent { buildpack: String, layer: String },
    #[error("--default-process `{requested}` is not a process type of this app")]
    UnknownDefaultProcess {
        requested: String,
        available: Vec<String>,
    },
    #[error("the app has several process types ({}) and none is `web`", available.join(", "))]
    AmbiguousDefaultProcess { available: Vec<String> },
    #[error("the app defines no process to start")]
    NoProcesses,
    #[error("invalid --buildpack or --default-process value")]
    InvalidName(#[from] crate::buildpack::InvalidName),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    EntryPath(#[from] EntryPathError),
    #[error(transparent)]
    Image(#[from] OciError),
    #[error(transparent)]
    LayerCache(#[from] LayerCacheError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("cannot serialize image labels")]
    Label(#[source] serde_json::Error),
    #[error("cannot prepare the build workspace")]
    Workspace(#[source] std::io::Error),
    #[error(transparent)]
    PreviousImage(#[from] PreviousImageError),
    #[error(transparent)]
    CacheImage(#[from] cache_image::CacheImageError),
    #[error("cannot set up the registry client")]
    RegistryClient(#[source] Box<RegistryError>),
    #[error("cannot write the build report {path}")]
    Report {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for PipelineError {
    fn class(&self) -> ErrorClass {
        use PipelineError::*;
        match self {
            Source(_)
            | Builder(_)
            | UnknownBuildpack { .. }
            | NothingDetected { .. }
            | ShellMissing { .. }
            | UnknownDefaultProcess { .. }
            | AmbiguousDefaultProcess { .. }
            | NoProcesses
            | InvalidName(_) => ErrorClass::User,
            RunImage(source) => source.class(),
            DefaultStack(source) => source.class(),
            PreviousImage(source) => source.class(),
            CacheImage(source) => source.class(),
            RegistryClient(source) => source.class(),
            BaseFacts { source, .. } | Image(source) => crate::images::oci_error_class(source),
            Detect { source, .. } | Build { source, .. } => source.class(),
            Export(source) => source.class(),
            Layer(
                LayerError::FileChanged { .. }
                | LayerError::ReadFile { .. }
                | LayerError::Walk { .. },
            ) => ErrorClass::User,
            Report { .. } => ErrorClass::User,
            LayerWithoutContent { .. }
            | Layer(_)
            | EntryPath(_)
            | LayerCache(_)
            | Cache(_)
            | Label(_)
            | Workspace(_) => ErrorClass::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        use PipelineError::*;
        match self {
            DefaultStack(source) => source.hint(),
            UnknownBuildpack { available, .. } => Some(format!("available buildpacks: {}", available.join(", "))),
            NothingDetected { report, .. } => Some(nothing_detected_hint(report)),
            ShellMissing { .. } => Some("write the command without shell syntax (no $VARS, quotes, pipes) or use a run image with /bin/sh".to_owned()),
            UnknownDefaultProcess { available, .. } => Some(format!("process types: {}", available.join(", "))),
            AmbiguousDefaultProcess { .. } => Some("choose one with --default-process TYPE, or name one `web`".to_owned()),
            NoProcesses => Some("add a Procfile, e.g. `web: ./start`".to_owned()),
            RunImage(source) => source.hint(),
            PreviousImage(source) => source.hint(),
            CacheImage(source) => source.hint(),
            RegistryClient(source) => source.hint(),
            Detect { source, .. } | Build { source, .. } => source.hint(),
            Export(source) => source.hint(),
            Source(SourceError::SymlinkEscapes { .. }) => {
                Some("replace the symlink with the file it points to, or exclude it in project.toml".to_owned())
            }
            Source(SourceError::Missing { .. }) => Some("pass the app directory with --path DIR".to_owned()),
            Layer(LayerError::FileChanged { .. }) => Some("a file changed during the build; build again".to_owned()),
            _ => None,
        }
    }
}

fn nothing_detected_hint(report: &DetectReport) -> String {
    let reasons: Vec<String> = report
        .groups
        .iter()
        .flat_map(|group| &group.verdicts)
        .filter_map(|verdict| match &verdict.detection {
            crate::buildpack::Detection::Fail { reason } => {
                Some(format!("{}: {reason}", verdict.id))
            }
            crate::buildpack::Detection::Pass { .. } => None,
        })
        .collect();
    format!(
        "kiln builds Python (requirements.txt), Node (package.json), Java (pom.xml), Go (go.mod) or any app with a Procfile; {}",
        reasons.join("; ")
    )
}

/// Which run image to build on.
#[derive(Debug, Clone)]
pub enum RunImageChoice {
    /// An image the user named.
    Location(ImageLocation),
    /// The default builder's run image.
    Default,
}

/// A build request.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The image name in the local store.
    pub name: String,
    /// The app directory.
    pub app_dir: PathBuf,
    /// The run image.
    pub run_image: RunImageChoice,
    /// Extra destinations (`--output`).
    pub outputs: Vec<ImageLocation>,
    /// Build-time env from the user (`--env`, `--env-file`).
    pub env: Vec<(String, String)>,
    /// `--buildpack` ids forcing one group.
    pub buildpacks: Vec<String>,
    /// `--default-process`.
    pub default_process: Option<String>,
    /// Config `created` (RFC 3339).
    pub created: String,
    /// Layer compression.
    pub compression: Compression,
    /// `--clear-cache`.
    pub clear_cache: bool,
    /// `--report FILE`.
    pub report_path: Option<PathBuf>,
    /// How to reach registries (`--registry-ca`, `--insecure-registry`).
    pub registry: TransportOptions,
    /// Whether the image goes into the local image store (not when only publishing).
    pub local_store: bool,
    /// The image whose layers to reuse by metadata and diff_id (`--previous-image`).
    pub previous_image: Option<String>,
    /// The registry image keeping cached layers between machines (`--cache-image`).
    pub cache_image: Option<String>,
}

/// Detection inputs shared by `kiln build` and `kiln detect`.
pub struct Detector {
    buildpacks: Vec<Box<dyn Buildpack>>,
    order: Order,
}

impl Detector {
    /// The first-party buildpacks with the default builder's order, or one group of the
    /// forced ids (`--buildpack`, else project.toml's group).
    pub fn new(forced: &[String], project_group: &[String]) -> Result<Self, PipelineError> {
        let buildpacks = crate::buildpacks::all();
        let chosen = if forced.is_empty() {
            project_group
        } else {
            forced
        };
        let order = if chosen.is_empty() {
            builder::load_order(builder::DEFAULT_BUILDER_TOML, builder::DEFAULT_BUILDER)?
        } else {
            let mut group = Vec::new();
            for id in chosen {
                let id = BuildpackId::new(id)?;
                if crate::buildpacks::find(&buildpacks, &id).is_none() {
                    return Err(PipelineError::UnknownBuildpack {
                        id: id.to_string(),
                        available: buildpacks
                            .iter()
                            .map(|buildpack| buildpack.descriptor().id().to_string())
                            .collect(),
                    });
                }
                group.push(OrderMember {
                    id,
                    optional: false,
                });
            }
            Order {
                groups: vec![OrderGroup { group }],
            }
        };
        Ok(Self { buildpacks, order })
    }

    /// Run detection.
    pub fn detect(&self, context: &DetectContext<'_>) -> Result<DetectReport, PipelineError> {
        let lookup = |id: &BuildpackId| crate::buildpacks::find(&self.buildpacks, id);
        resolve_order(&self.order, &lookup, context).map_err(|source| PipelineError::Detect {
            buildpack: "detection".to_owned(),
            source,
        })
    }

    /// The buildpacks of the chosen group.
    pub fn chosen(&self, report: &DetectReport) -> Vec<&dyn Buildpack> {
        report
            .buildpacks
            .iter()
            .filter_map(|id| BuildpackId::new(id).ok())
            .filter_map(|id| crate::buildpacks::find(&self.buildpacks, &id))
            .collect()
    }
}

/// The outcome of a build.
pub struct BuildOutcome {
    /// The report.
    pub report: BuildReport,
}

/// Run a build: detect, build each buildpack, assemble and export the image, then record
/// layers for reuse. Nothing is tagged unless the whole image was written.
pub fn build(
    request: &BuildRequest,
    cache: &Cache,
    log: &dyn Fn(&str),
) -> Result<BuildOutcome, PipelineError> {
    let _gc = cache.lock_shared(GC_LOCK)?;
    let source = SourceTree::open(&request.app_dir)?;
    let app_key = Digest::of_bytes(request.name.as_bytes()).short().to_owned();
    let _app_lock = cache.lock_exclusive(&format!("app-{app_key}"))?;

    let (run_image, runtimes) = open_run_image(
        &request.run_image,
        cache,
        &request.registry,
        request.compression,
    )?;
    let blobs = cache.blobs();
    let layers_root = cache
        .dir(crate::cache::Bucket::Layers)
        .join("apps")
        .join(&app_key);
    if request.clear_cache {
        LayerCache::new(layers_root.clone()).clear()?;
    }
    // Previous image and cache image are read before anything is built, so a registry that
    // cannot be read stops the build before any work or any write.
    let mut reuse = Reuse::open(request, &run_image, &blobs, log)?;
    reuse.restore_cache(request, &layers_root, &blobs, log)?;
    let target = Target {
        os: run_image.image.config.os().to_string(),
        arch: run_image.image.config.architecture().to_string(),
        distro: run_image.facts.distro(),
    };
    let mut user_env = source.project().build_env.clone();
    for (name, value) in &request.env {
        crate::env::set_var(&mut user_env, name, value.clone());
    }
    let env = BuildEnv::new(user_env);

    let detector = Detector::new(&request.buildpacks, &source.project().group)?;
    let report = detector.detect(&DetectContext {
        source: &source,
        env: &env,
        target: &target,
    })?;
    if report.chosen.is_none() {
        return Err(PipelineError::NothingDetected {
            path: source.root().to_path_buf(),
            report: Box::new(report),
        });
    }
    let chosen = detector.chosen(&report);
    log(&format!(
        "detected: {}",
        chosen
            .iter()
            .map(|buildpack| buildpack.descriptor().id().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));

    let workspace = cache.temp_dir("build")?;
    let app_dir = workspace.path().join("app");
    source.copy_to(&app_dir)?;

    let mut outcomes = Vec::new();
    let mut env = env;
    for buildpack in chosen {
        let descriptor = buildpack.descriptor().clone();
        let id = descriptor.id().clone();
        let staging = workspace.path().join("layers").join(id.escaped());
        fs_err::create_dir_all(&staging).map_err(PipelineError::Workspace)?;
        let layers = reuse.layer_store(
            LayerStore::new(
                id.clone(),
                LayerCache::new(layers_root.join(id.escaped())),
                staging,
                request.clear_cache,
            ),
            &id,
            &blobs,
        )?;
        let prefixed_log = |line: &str| log(&format!("[{id}] {line}"));
        let mut context = BuildContext {
            source: &source,
            app_dir: &app_dir,
            env: env.clone(),
            target: &target,
            runtimes: runtimes
                .as_ref()
                .map(|stack| stack as &dyn crate::buildpack::RuntimeProvider),
            layers,
            log: &prefixed_log,
        };
        let result = buildpack
            .build(&mut context)
            .map_err(|source| PipelineError::Build {
                buildpack: id.to_string(),
                source,
            })?;
        for layer in result.layers.iter().filter(|layer| layer.types.build) {
            let mut vars = env.vars().to_vec();
            for change in &layer.env {
                assemble::apply_env(&mut vars, change);
            }
            for (name, value) in vars {
                env.set(&name, value);
            }
        }
        outcomes.push(BuildpackOutcome {
            descriptor,
            result,
            layers: context.layers,
        });
    }

    let default_process = request
        .default_process
        .as_deref()
        .map(ProcessType::new)
        .transpose()?;
    let app_cache = LayerCache::new(layers_root.join("_app"));
    let assembled = assemble::Assembly {
        run_image: &run_image,
        outcomes: &outcomes,
        app_dir: &app_dir,
        app_cache: &app_cache,
        default_process: default_process.as_ref(),
        created: &request.created,
        compression: request.compression,
        blobs: &blobs,
        previous: reuse.previous.as_ref(),
    }
    .assemble()?;

    let mut destinations = Vec::new();
    if request.local_store {
        destinations.push(ImageLocation::Store(request.name.clone()));
    }
    destinations.extend(request.outputs.iter().cloned());
    let mut exported: Vec<Exported> = Vec::new();
    for destination in &destinations {
        exported.push(
            exporter_with_origins(
                destination,
                cache,
                &request.name,
                &request.registry,
                &reuse.origins,
            )
            .export(&assembled.image, &blobs)?,
        );
    }
    let buildpack_ids = outcomes
        .iter()
        .map(|outcome| outcome.descriptor.id().to_string())
        .collect();
    let cached = reuse::cached_buildpacks(&outcomes);
    assemble::commit_layer_records(outcomes, &assembled.written, &app_cache, &blobs)?;
    let warnings = reuse.save_cache(
        request,
        &cached,
        &layers_root,
        &assembled.image,
        &exported,
        &blobs,
    )?;
    let (previous_image, cache_image) = reuse.into_reports();

    let report = BuildReport {
        image: request.name.clone(),
        digest: assembled.image.manifest_digest.to_string(),
        run_image: format!("{}@{}", run_image.name, run_image.image.manifest_digest),
        buildpacks: buildpack_ids,
        layers: assembled.layers,
        outputs: exported,
        default_process: assembled.default_process,
        previous_image,
        cache_image,
        warnings,
    };
    if let Some(path) = &request.report_path {
        write_report(&report, path)?;
    }
    Ok(BuildOutcome { report })
}

fn write_report(report: &BuildReport, path: &Path) -> Result<(), PipelineError> {
    let bytes = serde_json::to_vec_pretty(report).map_err(PipelineError::Label)?;
    crate::cache::atomic_write(path, &bytes).map_err(|error| PipelineError::Report {
        path: path.to_path_buf(),
        source: std::io::Error::other(error.to_string()),
    })
}

/// Open the run image and learn what the build needs about it. The default builder's run
/// image comes with its Debian stack for runtimes; so does a run image the same stack made
/// (`kiln base build`), opened only when a buildpack asks for a runtime.
pub fn open_run_image(
    choice: &RunImageChoice,
    cache: &Cache,
    registry: &TransportOptions,
    compression: Compression,
) -> Result<(RunImage, Option<debian::LazyDebianStack>), PipelineError> {
    let (image, name, runtimes) = match choice {
        RunImageChoice::Default => {
            let stack =
                debian::DebianStack::open_default(cache).map_err(PipelineError::DefaultStack)?;
            let image = stack
                .run_image(&cache.blobs(), compression)
                .map_err(PipelineError::DefaultStack)?;
            (
                image,
                debian::DEFAULT_BASE_NAME.to_owned(),
                Some(debian::LazyDebianStack::opened(stack)),
            )
        }
        RunImageChoice::Location(location) => {
            let image = open_image(location, cache, registry).map_err(PipelineError::RunImage)?;
            let runtimes = image
                .labels()
                .get("io.buildpacks.base.id")
                .filter(|id| id.as_str() == debian::DEFAULT_STACK_ID)
                .map(|_| debian::LazyDebianStack::new(cache.clone()));
            (image, location.to_string(), runtimes)
        }
    };
    let facts = base::base_facts(&image, &cache.blobs(), cache).map_err(|source| {
        PipelineError::BaseFacts {
            run_image: name.clone(),
            source,
        }
    })?;
    Ok((RunImage { image, name, facts }, runtimes))
}
