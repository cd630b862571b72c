//! Registry reuse around one build: where blobs already live (run image, previous image,
//! cache image), the previous image's layer records for each buildpack, and the cache image
//! restored before and saved after the build. Kept apart so `build` reads as the pipeline.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use super::assemble::{BuildpackOutcome, RunImage};
use super::cache_image::{self, CacheImage, CachedBuildpack};
use super::previous::{PreviousImage, RegistryLayerFetch};
use super::report::{CacheImageReport, PreviousImageReport};
use super::{BuildRequest, PipelineError, RunImageChoice};
use crate::buildpack::{BuildpackId, LayerStore};
use crate::export::Exported;
use crate::oci::{BlobStore, Image, ImageLocation};
use crate::registry::{BlobOrigins, Reference, RegistryClient, RegistryOptions, TransportOptions};

/// What a build reuses from registries.
pub(super) struct Reuse<'a> {
    registry: LazyClient<'a>,
    /// Where blobs not in the local store live.
    pub origins: BlobOrigins,
    /// The previous image, when there is one.
    pub previous: Option<PreviousImage>,
    cache_image: Option<Reference>,
    old_cache: Option<CacheImage>,
    cache_report: Option<CacheImageReport>,
}

impl<'a> Reuse<'a> {
    /// Note the run image's repository and read the previous image (manifest and config).
    pub fn open(
        request: &'a BuildRequest,
        run_image: &RunImage,
        blobs: &BlobStore,
        log: &dyn Fn(&str),
    ) -> Result<Self, PipelineError> {
        let registry = LazyClient::new(&request.registry);
        let mut origins = BlobOrigins::new();
        if let RunImageChoice::Location(ImageLocation::Registry(text)) = &request.run_image
            && let Ok(reference) = Reference::parse(text)
        {
            // Run image layers are mounted from the base's repository rather than uploaded.
            let layers = run_image.image.layers(text)?;
            origins.add_all(layers.iter().map(|layer| &layer.digest), &reference);
        }
        let previous = match (&request.previous_image, request.clear_cache) {
            (Some(text), false) => {
                let found = PreviousImage::open(text, registry.get()?, blobs)?;
                match &found {
                    Some(previous) => {
                        log(&format!("previous image: {}", previous.reference));
                        previous.add_origins(&mut origins);
                    }
                    None => log(&format!("no previous image at {text}")),
                }
                found
            }
            _ => None,
        };
        let cache_image = request
            .cache_image
            .as_deref()
            .map(cache_image::parse_reference)
            .transpose()?;
        Ok(Self {
            registry,
            origins,
            previous,
            cache_image,
            old_cache: None,
            cache_report: None,
        })
    }

    /// Restore the cache image's layers into the local layer cache (not with --clear-cache).
    pub fn restore_cache(
        &mut self,
        request: &BuildRequest,
        layers_root: &Path,
        blobs: &BlobStore,
        log: &dyn Fn(&str),
    ) -> Result<(), PipelineError> {
        let Some(reference) = &self.cache_image else {
            return Ok(());
        };
        if request.clear_cache {
            self.cache_report = Some(CacheImageReport::new(reference, Vec::new()));
            return Ok(());
        }
        let client = self.registry.get()?;
        let found = CacheImage::open(reference, client, blobs)?;
        let restored = match &found {
            Some(image) => image.restore(layers_root, client, blobs)?,
            None => cache_image::Restored::default(),
        };
        log(&format!(
            "cache image {reference}: {} layers restored, {} already here",
            restored.restored.len(),
            restored.already_local.len()
        ));
        self.cache_report = Some(CacheImageReport::new(reference, restored.restored));
        self.old_cache = found;
        Ok(())
    }

    /// `store`, able to restore what the previous image recorded for buildpack `id`.
    pub fn layer_store(
        &self,
        store: LayerStore,
        id: &BuildpackId,
        blobs: &BlobStore,
    ) -> Result<LayerStore, PipelineError> {
        let Some(previous) = &self.previous else {
            return Ok(store);
        };
        let fetch = Arc::new(RegistryLayerFetch {
            client: self.registry.get_arc()?,
            repository: previous.reference.clone(),
            store: blobs.clone(),
        });
        Ok(store.with_previous(previous.buildpack_layers(id.as_str(), fetch)))
    }

    /// Save the cache image after a successful build; returns warnings (a failed save is one:
    /// the image is built and written, a missing cache only makes the next build slower).
    pub fn save_cache(
        &mut self,
        request: &BuildRequest,
        cached: &[CachedBuildpack],
        layers_root: &Path,
        image: &Image,
        exported: &[Exported],
        blobs: &BlobStore,
    ) -> Result<Vec<String>, PipelineError> {
        let Some(reference) = &self.cache_image else {
            return Ok(Vec::new());
        };
        // The published image's layers are mountable into the cache repository.
        let mut origins = self.origins.clone();
        for output in exported {
            if let Some(pushed) = output
                .destination
                .strip_prefix("docker://")
                .and_then(|text| Reference::parse(text).ok())
            {
                let layers = image.layers(&output.destination)?;
                origins.add_all(layers.iter().map(|layer| &layer.digest), &pushed);
            }
        }
        let pushed = self.registry.get().and_then(|client| {
            Ok(cache_image::push(
                reference,
                cached,
                layers_root,
                self.old_cache.as_ref(),
                &origins,
                request.compression,
                client,
                blobs,
            )?)
        });
        let report = self
            .cache_report
            .get_or_insert_with(|| CacheImageReport::new(reference, Vec::new()));
        match pushed {
            Ok(pushed) => {
                report.record_push(&pushed);
                Ok(Vec::new())
            }
            Err(error) => Ok(vec![format!(
                "the cache image was not saved: {}",
                error_chain(&error)
            )]),
        }
    }

    /// The report entries for the previous and cache images.
    pub fn into_reports(self) -> (Option<PreviousImageReport>, Option<CacheImageReport>) {
        let previous = self.previous.map(|previous| PreviousImageReport {
            reference: previous.reference.to_string(),
            digest: previous.image.manifest_digest.to_string(),
        });
        (previous, self.cache_report)
    }
}

/// The buildpacks and their cached layers, for the cache image.
pub(super) fn cached_buildpacks(outcomes: &[BuildpackOutcome]) -> Vec<CachedBuildpack> {
    outcomes
        .iter()
        .map(|outcome| CachedBuildpack {
            id: outcome.descriptor.id().clone(),
            version: outcome.descriptor.buildpack.version.clone(),
            layers: outcome
                .result
                .layers
                .iter()
                .filter(|layer| layer.types.cache)
                .map(|layer| (layer.name.clone(), layer.types))
                .collect(),
        })
        .collect()
}

/// An error and its causes on one line, for warnings.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// One registry client for the whole build, made on first use (builds that touch no registry
/// never read credentials).
struct LazyClient<'a> {
    transport: &'a TransportOptions,
    client: OnceLock<Arc<RegistryClient>>,
}

impl<'a> LazyClient<'a> {
    fn new(transport: &'a TransportOptions) -> Self {
        Self {
            transport,
            client: OnceLock::new(),
        }
    }

    fn get_arc(&self) -> Result<Arc<RegistryClient>, PipelineError> {
        if let Some(client) = self.client.get() {
            return Ok(client.clone());
        }
        let client = RegistryOptions::from_env_with(self.transport)
            .and_then(RegistryClient::new)
            .map_err(|error| PipelineError::RegistryClient(Box::new(error)))?;
        Ok(self.client.get_or_init(|| Arc::new(client)).clone())
    }

    fn get(&self) -> Result<&RegistryClient, PipelineError> {
        self.get_arc()?;
        Ok(self.client.get().expect("set just above"))
    }
}
