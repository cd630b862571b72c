//! The default builder's stack: its Debian run image (written once per package set and
//! reused) and the language runtimes buildpacks ask for.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::buildpack::{BuildpackFailure, RuntimeLayer, RuntimeProvider};
use crate::cache::{Bucket, Cache, atomic_write};
use crate::diagnostic::{Diagnose, ErrorClass};
use crate::layer::{Compression, LayerEntries, write_layer};
use crate::oci::{BlobStore, Digest, Image, ImageBuilder, LayerRef, OciError};
use crate::stack::{
    BuilderStack, LockMode, MirrorOverrides, RunImage as DebianRunImage, RunImageSummary,
    RuntimePlan, RuntimeRequest, StackError, assemble_run_image, assemble_runtime, plan_run_image,
    plan_runtime,
};

/// Name of the default builder's base image in the local store.
pub const DEFAULT_BASE_NAME: &str = "kiln/base-bookworm:latest";
/// `io.buildpacks.base.id` of run images the default builder's stack makes.
pub const DEFAULT_STACK_ID: &str = "io.kiln.stacks.debian-bookworm";

/// Errors of the default stack.
#[derive(Debug, thiserror::Error)]
pub enum DebianStackError {
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error("cannot write the run image")]
    Layer(#[from] crate::layer::LayerError),
    #[error("cannot write the run image")]
    Image(#[from] OciError),
    #[error("runtime {key} was not resolved in this build")]
    UnknownRuntime { key: String },
}

impl Diagnose for DebianStackError {
    fn class(&self) -> ErrorClass {
        match self {
            DebianStackError::Stack(source) => source.class(),
            DebianStackError::Layer(_) | DebianStackError::UnknownRuntime { .. } => {
                ErrorClass::Internal
            }
            DebianStackError::Image(source) => source.class(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            DebianStackError::Stack(source) => source.hint(),
            _ => None,
        }
    }
}

/// The default builder's stack, opened for one build.
pub struct DebianStack {
    stack: BuilderStack,
    cache: Cache,
    mode: LockMode,
    summary: DebianRunImage,
    /// The run image with its files, assembled only when something needs them.
    full: Mutex<Option<DebianRunImage>>,
    /// Runtime plans handed out by `resolve`, by key, for `materialize`.
    plans: Mutex<HashMap<String, RuntimePlan>>,
}

impl DebianStack {
    /// The embedded default builder's stack (mirror and keyring from the host's apt
    /// configuration, `KILN_DEBIAN_MIRROR`, `KILN_DEBIAN_KEYRING`), pinned by its lock.
    pub fn open_default(cache: &Cache) -> Result<Self, DebianStackError> {
        let stack = BuilderStack::parse(
            super::builder::DEFAULT_BUILDER_TOML,
            std::path::Path::new("builders/bookworm/builder.toml"),
            MirrorOverrides::from_env(),
        )?;
        Self::open(stack, cache, LockMode::Prefer)
    }

    /// Open `stack`: pin the run image (cheap when the lock matches) and load what is known
    /// about it; assemble it only the first time this package set is seen.
    pub fn open(
        stack: BuilderStack,
        cache: &Cache,
        mode: LockMode,
    ) -> Result<Self, DebianStackError> {
        let (_, digest) = plan_run_image(&stack, cache, mode)?;
        let summary_path = summary_path(cache, &digest);
        let known = std::fs::read(&summary_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<RunImageSummary>(&bytes).ok())
            .and_then(|summary| DebianRunImage::from_summary(&stack, &summary));
        let (summary, full) = match known {
            Some(summary) => (summary, None),
            None => {
                let full = assemble_run_image(&stack, cache, mode)?;
                if let Ok(bytes) = serde_json::to_vec(&full.summary()) {
                    // Only a speed-up for the next build.
                    let _ = atomic_write(&summary_path, &bytes);
                }
                (full.clone(), Some(full))
            }
        };
        Ok(Self {
            stack,
            cache: cache.clone(),
            mode,
            summary,
            full: Mutex::new(full),
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// The stack's id (`io.buildpacks.base.id` of its run images).
    pub fn id(&self) -> &str {
        &self.stack.id
    }

    fn with_full<T>(
        &self,
        use_it: impl FnOnce(&DebianRunImage) -> Result<T, DebianStackError>,
    ) -> Result<T, DebianStackError> {
        let mut full = self
            .full
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if full.is_none() {
            *full = Some(assemble_run_image(&self.stack, &self.cache, self.mode)?);
        }
        use_it(full.as_ref().expect("just assembled"))
    }

    /// The run image written as a one-layer base image, reused per package set, and tagged
    /// `kiln/base-bookworm:latest` in the local store.
    pub fn run_image(
        &self,
        blobs: &BlobStore,
        compression: Compression,
    ) -> Result<Image, DebianStackError> {
        let record = self.cache.dir(Bucket::Layers).join("bases").join(format!(
            "run-image-{}-{}.json",
            self.summary.package_set_digest.hex(),
            serde_json::to_value(compression)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default()
        ));
        let recorded = std::fs::read_to_string(&record)
            .ok()
            .and_then(|text| text.trim().parse::<Digest>().ok())
            .filter(|digest| blobs.contains(digest))
            .and_then(|digest| Image::load(blobs, &digest, None).ok());
        let image = match recorded {
            Some(image) => image,
            None => {
                let image = self.with_full(|full| {
                    base_image(full, compression, crate::oci::DEFAULT_CREATED, blobs)
                })?;
                let _ = atomic_write(&record, image.manifest_digest.to_string().as_bytes());
                image
            }
        };
        crate::oci::Layout::open_or_create(&self.cache.store_dir())?.write_image(
            &image,
            blobs,
            DEFAULT_BASE_NAME,
        )?;
        Ok(image)
    }

    fn request(packages: &[&str], exclude: &[&str]) -> RuntimeRequest {
        RuntimeRequest {
            name: packages.join("+"),
            packages: packages
                .iter()
                .map(|package| (*package).to_owned())
                .collect(),
            exclude: exclude
                .iter()
                .map(|package| (*package).to_owned())
                .collect(),
        }
    }
}

fn summary_path(cache: &Cache, digest: &Digest) -> std::path::PathBuf {
    cache
        .dir(Bucket::Layers)
        .join("bases")
        .join(format!("run-image-summary-{}.json", digest.hex()))
}

impl RuntimeProvider for DebianStack {
    fn resolve(&self, packages: &[&str]) -> Result<RuntimeLayer, BuildpackFailure> {
        self.resolve_excluding(packages, &[])
    }

    fn resolve_excluding(
        &self,
        packages: &[&str],
        exclude: &[&str],
    ) -> Result<RuntimeLayer, BuildpackFailure> {
        let plan = plan_runtime(
            &self.stack,
            &self.summary,
            &Self::request(packages, exclude),
            &self.cache,
            self.mode,
        )
        .map_err(DebianStackError::from)?;
        let layer = RuntimeLayer {
            key: plan.key.to_string(),
            packages: plan
                .packages
                .iter()
                .map(|package| (package.name.clone(), package.version.clone()))
                .collect(),
        };
        self.plans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(layer.key.clone(), plan);
        Ok(layer)
    }

    fn materialize(&self, runtime: &RuntimeLayer) -> Result<LayerEntries, BuildpackFailure> {
        let plan = self
            .plans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&runtime.key)
            .cloned()
            .ok_or_else(|| DebianStackError::UnknownRuntime {
                key: runtime.key.clone(),
            })?;
        let layer =
            self.with_full(|full| Ok(assemble_runtime(&self.stack, full, &plan, &self.cache)?))?;
        Ok(layer.entries)
    }

    fn package_version(&self, package: &str) -> Result<Option<String>, BuildpackFailure> {
        if let Some(installed) = self
            .summary
            .packages
            .iter()
            .find(|installed| installed.name == package)
        {
            return Ok(Some(installed.version.clone()));
        }
        match plan_runtime(
            &self.stack,
            &self.summary,
            &Self::request(&[package], &[]),
            &self.cache,
            self.mode,
        ) {
            Ok(plan) => Ok(plan
                .packages
                .iter()
                .find(|resolved| resolved.name == package)
                .map(|resolved| resolved.version.clone())),
            Err(StackError::Resolve(_)) => Ok(None),
            Err(other) => Err(DebianStackError::from(other).into()),
        }
    }
}

/// The default stack, opened the first time a buildpack asks for a runtime: a build on a
/// kiln base that needs no runtime never touches the Debian archive.
pub struct LazyDebianStack {
    cache: Cache,
    opened: Mutex<Option<std::sync::Arc<DebianStack>>>,
}

impl LazyDebianStack {
    /// Not opened yet.
    pub fn new(cache: Cache) -> Self {
        Self {
            cache,
            opened: Mutex::new(None),
        }
    }

    /// Already open.
    pub fn opened(stack: DebianStack) -> Self {
        Self {
            cache: stack.cache.clone(),
            opened: Mutex::new(Some(std::sync::Arc::new(stack))),
        }
    }

    fn get(&self) -> Result<std::sync::Arc<DebianStack>, BuildpackFailure> {
        let mut opened = self
            .opened
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(stack) = opened.as_ref() {
            return Ok(stack.clone());
        }
        let stack = std::sync::Arc::new(DebianStack::open_default(&self.cache)?);
        *opened = Some(stack.clone());
        Ok(stack)
    }
}

impl RuntimeProvider for LazyDebianStack {
    fn resolve(&self, packages: &[&str]) -> Result<RuntimeLayer, BuildpackFailure> {
        self.get()?.resolve(packages)
    }

    fn resolve_excluding(
        &self,
        packages: &[&str],
        exclude: &[&str],
    ) -> Result<RuntimeLayer, BuildpackFailure> {
        self.get()?.resolve_excluding(packages, exclude)
    }

    fn materialize(&self, runtime: &RuntimeLayer) -> Result<LayerEntries, BuildpackFailure> {
        self.get()?.materialize(runtime)
    }

    fn package_version(&self, package: &str) -> Result<Option<String>, BuildpackFailure> {
        self.get()?.package_version(package)
    }
}

/// Write a run image as a one-layer image: config User, Env and `io.buildpacks.base.*` labels.
pub fn base_image(
    run_image: &DebianRunImage,
    compression: Compression,
    created: &str,
    blobs: &BlobStore,
) -> Result<Image, DebianStackError> {
    let layer = write_layer(&run_image.entries, compression, blobs)?;
    let mut builder = ImageBuilder::scratch();
    builder.set_created(created);
    let packages: Vec<&str> = run_image
        .packages
        .iter()
        .map(|package| package.name.as_str())
        .collect();
    builder.push_layer(
        LayerRef {
            digest: layer.digest,
            size: layer.size,
            media_type: layer.media_type,
            diff_id: layer.diff_id,
        },
        &format!("kiln base build: Debian packages {}", packages.join(" ")),
    );
    let runtime = builder.runtime_mut();
    runtime.set_user(Some(run_image.user.clone()));
    runtime.set_env(Some(
        run_image
            .env
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect(),
    ));
    for (key, value) in &run_image.labels {
        builder.set_label(key, value);
    }
    Ok(builder.build(blobs)?)
}
