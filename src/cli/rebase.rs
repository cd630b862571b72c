//! `kiln rebase`.

use std::time::Instant;

use clap::Args;

use super::open_cache;
use super::ui::{Ui, print_out};
use crate::cache::GC_LOCK;
use crate::diagnostic::{Diagnose, ErrorClass};
use crate::export::exporter_with_origins;
use crate::images::{OpenImageError, oci_error_class, open_image_metadata};
use crate::oci::cnb::{self, LifecycleMetadata};
use crate::oci::rebase::{NewBase, RebaseError, find_old_base, rebase};
use crate::oci::{Image, ImageLocation, OciError};
use crate::registry::{BlobOrigins, Reference, TransportOptions};

/// Arguments of `kiln rebase`.
#[derive(Debug, Args)]
pub struct RebaseArgs {
    /// The app image: a store name or any image location.
    pub image: String,
    /// The new base (default: the run image the app records, read again now).
    #[arg(long)]
    pub run_image: Option<String>,
    /// Rebase even when the image is marked not rebasable or the platform/distro differ.
    #[arg(long)]
    pub force: bool,
    /// Write the result here instead of replacing IMAGE.
    #[arg(long, short = 'o')]
    pub output: Option<String>,
    #[command(flatten)]
    pub registry: super::registry_args::RegistryArgs,
}

/// Errors of `kiln rebase` around the rebase itself.
#[derive(Debug, thiserror::Error)]
pub enum RebaseCommandError {
    #[error("cannot open the app image")]
    OpenApp(#[source] OpenImageError),
    #[error("cannot open the new base")]
    OpenBase(#[source] OpenImageError),
    #[error("the new base `{reference}` is not in the registry")]
    BaseNotPublished {
        reference: String,
        #[source]
        source: OpenImageError,
    },
    #[error("`{image}` records no run image to rebase onto")]
    NoRunImage { image: String },
    #[error("cannot rebase `{image}`")]
    Rebase {
        image: String,
        #[source]
        source: RebaseError,
    },
    #[error("cannot read the image store")]
    Store(#[source] OciError),
}

impl Diagnose for RebaseCommandError {
    fn class(&self) -> ErrorClass {
        match self {
            RebaseCommandError::OpenApp(source) | RebaseCommandError::OpenBase(source) => {
                source.class()
            }
            RebaseCommandError::Rebase {
                source: RebaseError::Write(source),
                ..
            }
            | RebaseCommandError::Store(source) => oci_error_class(source),
            RebaseCommandError::Rebase {
                source: RebaseError::Label(_),
                ..
            } => ErrorClass::Internal,
            _ => ErrorClass::User,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            RebaseCommandError::OpenApp(source) | RebaseCommandError::OpenBase(source) => {
                source.hint()
            }
            RebaseCommandError::NoRunImage { .. } => {
                Some("name the new base with --run-image REF".to_owned())
            }
            RebaseCommandError::BaseNotPublished { reference, .. } => Some(format!(
                "a registry rebase moves no layers, so the new base must be published first: `kiln base build --publish {reference}`"
            )),
            RebaseCommandError::Rebase { source, .. } if source.forceable() => Some(
                "pass --force to rebase anyway (the app may not run on the new base)".to_owned(),
            ),
            RebaseCommandError::Rebase {
                source: RebaseError::TopLayerMissing { .. },
                ..
            } => Some(
                "the image was changed after it was built; rebuild it with `kiln build`".to_owned(),
            ),
            RebaseCommandError::Rebase {
                source: RebaseError::NotCnbImage,
                ..
            } => Some("only images built by kiln (or a CNB lifecycle) can be rebased".to_owned()),
            _ => None,
        }
    }
}

/// Run `kiln rebase`.
pub fn run(args: RebaseArgs, ui: &Ui) -> anyhow::Result<i32> {
    let started = Instant::now();
    let cache = open_cache()?;
    let _gc = cache.lock_shared(GC_LOCK)?;
    let transport = args.registry.transport();
    let location = ImageLocation::parse(&args.image)?;
    // On a registry only manifests and configs are read; `origins` remembers which repository
    // holds each layer so the push mounts them or finds them present.
    let mut origins = BlobOrigins::new();
    let app = open_image_metadata(&location, &cache, &transport, &mut origins)
        .map_err(RebaseCommandError::OpenApp)?;
    let base_name = match &args.run_image {
        Some(name) => name.clone(),
        None => cnb::parse_label::<LifecycleMetadata>(&app.labels(), cnb::LIFECYCLE_METADATA)
            .map(|metadata| metadata.run_image.image)
            .filter(|image| !image.is_empty())
            .ok_or_else(|| RebaseCommandError::NoRunImage {
                image: args.image.clone(),
            })?,
    };
    let base_location = ImageLocation::parse(&base_name)?;
    let new_base = open_image_metadata(&base_location, &cache, &transport, &mut origins).map_err(
        |source| match &base_location {
            ImageLocation::Registry(reference) if source.is_not_found() => {
                RebaseCommandError::BaseNotPublished {
                    reference: reference.clone(),
                    source,
                }
            }
            _ => RebaseCommandError::OpenBase(source),
        },
    )?;
    let blobs = cache.blobs();
    let old_base = match find_old_base(&app, &blobs).map_err(RebaseCommandError::Store)? {
        Some(old_base) => Some(old_base),
        None => pull_old_base(&app, &location, &cache, &transport),
    };
    let rebased = rebase(
        &app,
        &NewBase {
            image: &new_base,
            name: &base_location.to_string(),
        },
        old_base.as_ref(),
        args.force,
        &blobs,
    )
    .map_err(|source| RebaseCommandError::Rebase {
        image: args.image.clone(),
        source,
    })?;
    for forced in &rebased.forced {
        ui.warn(&format!("{forced} (rebasing anyway: --force)"));
    }
    if !rebased.old_base_known {
        ui.warn("the old base is not in kiln's cache: base environment variables and labels were carried over, not recomputed");
    }
    let destination = match &args.output {
        Some(output) => ImageLocation::parse(output)?,
        None => location.clone(),
    };
    let exported = exporter_with_origins(&destination, &cache, &args.image, &transport, &origins)
        .export(&rebased.image, &blobs)?;
    ui.info(&format!(
        "rebased {}: base top {} → {}, {} app layers kept, in {} ms",
        args.image,
        short(&rebased.old_top_layer),
        short(&rebased.new_top_layer),
        rebased.app_layers,
        started.elapsed().as_millis()
    ));
    ui.info(&format!("wrote {}", exported.destination));
    print_out(&rebased.image.manifest_digest.to_string());
    Ok(0)
}

/// The old base's manifest and config from its registry, by the digest the app records, so
/// base Env and labels are recomputed exactly. Only tried for bases named `docker://…` or on
/// the app's own registry (a bare name must not send kiln to Docker Hub); any failure just
/// means the base-derived parts are carried over (and said so).
fn pull_old_base(
    app: &Image,
    app_location: &ImageLocation,
    cache: &crate::cache::Cache,
    transport: &TransportOptions,
) -> Option<Image> {
    let lifecycle = cnb::parse_label::<LifecycleMetadata>(&app.labels(), cnb::LIFECYCLE_METADATA)?;
    let recorded = lifecycle.run_image.reference;
    let (text, explicit) = match recorded.strip_prefix("docker://") {
        Some(rest) => (rest, true),
        None => (recorded.as_str(), false),
    };
    let reference = Reference::parse(text).ok()?;
    reference.digest()?;
    let same_registry = match app_location {
        ImageLocation::Registry(app) => {
            Reference::parse(app).is_ok_and(|app| app.registry() == reference.registry())
        }
        _ => false,
    };
    if !explicit && !same_registry {
        return None;
    }
    let location = ImageLocation::Registry(reference.to_string());
    open_image_metadata(&location, cache, transport, &mut BlobOrigins::new()).ok()
}

fn short(digest: &str) -> &str {
    digest
        .strip_prefix("sha256:")
        .map_or(digest, |hex| &hex[..hex.len().min(12)])
}
