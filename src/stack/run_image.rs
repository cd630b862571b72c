//! The run image: the builder's run-image packages and their closure, unpacked into one
//! layer with the synthesized files, plus the metadata the image writer needs.

use std::collections::BTreeMap;

use super::builder_config::{BuilderStack, Distro};
use super::download::Fetcher;
use super::error::StackError;
use super::lock::{LockMode, ResolvedPackage, package_set_digest};
use super::mirror::MirrorPlan;
use super::pinning::{LockSection, PinRequest, pin};
use super::relation::parse_relation;
use super::resolver::{InstalledPackage, InstalledSet};
use super::synthesize::synthesize_run_image;
use super::unpack::unpack_pinned;
use super::version::DebVersion;
use crate::cache::Cache;
use crate::layer::LayerEntries;
use crate::oci::Digest;

/// The user the run image's config runs as (`cnb`).
pub const RUN_IMAGE_USER: &str = "1000:1000";
/// PATH of the run image (Debian's default for login shells of root, sbin included).
pub const RUN_IMAGE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// An assembled run image, ready to be written as a one-layer base image.
#[derive(Debug, Clone)]
pub struct RunImage {
    /// The layer's entries (extracted at `/`).
    pub entries: LayerEntries,
    /// The installed packages, sorted by name.
    pub packages: Vec<ResolvedPackage>,
    /// The same packages as the resolver sees them (for runtime closures).
    pub installed: InstalledSet,
    /// Distribution.
    pub distro: Distro,
    /// Digest of the package set (name, version, arch, sha256 of every package).
    pub package_set_digest: Digest,
    /// `io.buildpacks.base.*` labels.
    pub labels: BTreeMap<String, String>,
    /// Config `User`.
    pub user: String,
    /// Config `Env`.
    pub env: Vec<(String, String)>,
}

/// Assemble the run image of `stack`: pin its packages (per `mode` and the lock), download
/// and verify them through `cache`, unpack and synthesize.
pub fn assemble_run_image(
    stack: &BuilderStack,
    cache: &Cache,
    mode: LockMode,
) -> Result<RunImage, StackError> {
    let plan = MirrorPlan::load(&stack.apt_root, stack.mirror_overrides.clone())?;
    let request = PinRequest {
        section: LockSection::Base,
        packages: &stack.run_image_packages,
        extra_exclude: &[],
        installed: None,
    };
    let pinned = pin(stack, cache, &plan, request, mode)?;
    let fetcher = Fetcher::new(cache);
    let (tree, installed_packages) = unpack_pinned(stack, &fetcher, &plan, &pinned)?;
    let mut entries = tree.into_entries();
    synthesize_run_image(&mut entries).map_err(|source| StackError::DebPath {
        package: "(synthesized files)".to_owned(),
        source,
    })?;
    let mut installed = InstalledSet::default();
    for package in installed_packages {
        installed.insert(package);
    }
    let digest = package_set_digest("kiln-run-image-packages-v1", &pinned.packages);
    Ok(RunImage {
        labels: base_labels(stack, &pinned.packages, &digest),
        entries,
        packages: pinned.packages,
        installed,
        distro: stack.distro.clone(),
        package_set_digest: digest,
        user: RUN_IMAGE_USER.to_owned(),
        env: vec![("PATH".to_owned(), RUN_IMAGE_PATH.to_owned())],
    })
}

/// A run image's identity without its files: enough to compute runtime closures over it and
/// to find its written image again, so a warm build never unpacks the base.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunImageSummary {
    /// The installed packages, sorted by name.
    pub packages: Vec<ResolvedPackage>,
    /// `name`, `version` and `Provides` of each, as their control files say.
    pub installed: Vec<(String, String, Vec<String>)>,
    /// Digest of the package set.
    pub package_set_digest: Digest,
}

impl RunImage {
    /// The summary of this run image.
    pub fn summary(&self) -> RunImageSummary {
        RunImageSummary {
            packages: self.packages.clone(),
            installed: self
                .installed
                .iter()
                .map(|package| {
                    (
                        package.name.clone(),
                        package.version.to_string(),
                        package.provides.iter().map(ToString::to_string).collect(),
                    )
                })
                .collect(),
            package_set_digest: self.package_set_digest.clone(),
        }
    }

    /// A run image without files, from a summary: enough for [`super::plan_runtime`], not for
    /// [`super::assemble_runtime`] (which reads the base's CA bundle and JVM links).
    pub fn from_summary(stack: &BuilderStack, summary: &RunImageSummary) -> Option<Self> {
        let mut installed = InstalledSet::default();
        for (name, version, provides) in &summary.installed {
            installed.insert(InstalledPackage {
                name: name.clone(),
                version: DebVersion::parse(version).ok()?,
                provides: provides
                    .iter()
                    .map(|text| parse_relation(text).ok())
                    .collect::<Option<_>>()?,
            });
        }
        Some(Self {
            entries: LayerEntries::new(),
            labels: base_labels(stack, &summary.packages, &summary.package_set_digest),
            packages: summary.packages.clone(),
            installed,
            distro: stack.distro.clone(),
            package_set_digest: summary.package_set_digest.clone(),
            user: RUN_IMAGE_USER.to_owned(),
            env: vec![("PATH".to_owned(), RUN_IMAGE_PATH.to_owned())],
        })
    }
}

/// Pin the run image's packages (per `mode` and the lock) without downloading or unpacking
/// anything when the lock matches; returns the package set and its digest.
pub fn plan_run_image(
    stack: &BuilderStack,
    cache: &Cache,
    mode: LockMode,
) -> Result<(Vec<ResolvedPackage>, Digest), StackError> {
    let plan = MirrorPlan::load(&stack.apt_root, stack.mirror_overrides.clone())?;
    let request = PinRequest {
        section: LockSection::Base,
        packages: &stack.run_image_packages,
        extra_exclude: &[],
        installed: None,
    };
    let pinned = pin(stack, cache, &plan, request, mode)?;
    let digest = package_set_digest("kiln-run-image-packages-v1", &pinned.packages);
    Ok((pinned.packages, digest))
}

fn base_labels(
    stack: &BuilderStack,
    packages: &[ResolvedPackage],
    digest: &Digest,
) -> BTreeMap<String, String> {
    let suites: Vec<&str> = stack
        .suites
        .iter()
        .map(|suite| suite.name.as_str())
        .collect();
    let metadata = serde_json::json!({
        "packages": { "count": packages.len(), "digest": digest.to_string() },
        "suites": suites,
    });
    BTreeMap::from([
        ("io.buildpacks.base.id".to_owned(), stack.id.clone()),
        (
            "io.buildpacks.base.distro.name".to_owned(),
            stack.distro.name.clone(),
        ),
        (
            "io.buildpacks.base.distro.version".to_owned(),
            stack.distro.version.clone(),
        ),
        (
            "io.buildpacks.base.description".to_owned(),
            format!(
                "{} {} run image assembled by kiln from {}",
                stack.distro.name,
                stack.distro.version,
                stack.run_image_packages.join(", ")
            ),
        ),
        (
            "io.buildpacks.base.metadata".to_owned(),
            metadata.to_string(),
        ),
    ])
}
