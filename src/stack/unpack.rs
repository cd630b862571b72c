//! Downloading pinned packages (verified against their pinned sha256) and merging them.

use rayon::prelude::*;

use super::builder_config::BuilderStack;
use super::control::parse_paragraphs;
use super::deb::{DebContents, read_deb};
use super::download::{Expected, Fetcher};
use super::error::StackError;
use super::lock::ResolvedPackage;
use super::mirror::MirrorPlan;
use super::pinning::PinnedSet;
use super::relation::parse_relation;
use super::resolver::InstalledPackage;
use super::tree::PackageTree;
use super::version::DebVersion;

/// Download and unpack every package of `pinned` into one tree, in name order. Returns the
/// tree and what the packages' own control files say is installed.
pub fn unpack_pinned(
    stack: &BuilderStack,
    fetcher: &Fetcher,
    plan: &MirrorPlan,
    pinned: &PinnedSet,
) -> Result<(PackageTree, Vec<InstalledPackage>), StackError> {
    let progress =
        indicatif::ProgressBar::new(pinned.packages.len() as u64).with_message("Debian packages");
    // Download and decompress in parallel; merge sequentially in name order so the result
    // never depends on scheduling.
    let unpacked: Vec<DebContents> = pinned
        .packages
        .par_iter()
        .map(|package| {
            let contents = fetch_package(stack, fetcher, plan, pinned, package)?;
            progress.inc(1);
            Ok(contents)
        })
        .collect::<Result<_, StackError>>()?;
    progress.finish_and_clear();
    let mut tree = PackageTree::new();
    let mut installed = Vec::new();
    for (package, contents) in pinned.packages.iter().zip(unpacked) {
        installed.push(installed_from_control(&contents.control, package)?);
        tree.add_package(&package.name, contents)?;
    }
    Ok((tree, installed))
}

fn fetch_package(
    stack: &BuilderStack,
    fetcher: &Fetcher,
    plan: &MirrorPlan,
    pinned: &PinnedSet,
    package: &ResolvedPackage,
) -> Result<DebContents, StackError> {
    let mut uris: Vec<String> = pinned
        .uri_hints
        .get(&package.suite)
        .cloned()
        .into_iter()
        .collect();
    if let Some(setting) = stack
        .suites
        .iter()
        .find(|suite| suite.name == package.suite)
    {
        let component = stack.components.first().map_or("main", String::as_str);
        for source in plan.sources_for(setting, component)? {
            if !uris.contains(&source.uri) {
                uris.push(source.uri);
            }
        }
    }
    let urls: Vec<String> = uris
        .iter()
        .map(|uri| format!("{uri}/{}", package.filename))
        .collect();
    let authority = format!(
        "the pinned checksum of {} {}",
        package.name, package.version
    );
    let bytes = fetcher
        .fetch_verified(
            &urls,
            Expected {
                sha256: &package.sha256,
                size: Some(package.size),
                authority: &authority,
            },
        )
        .map_err(|error| match error {
            StackError::HttpStatus { status: 404, url } => StackError::PinnedPackageGone {
                package: package.name.clone(),
                version: package.version.clone(),
                url,
            },
            other => other,
        })?;
    read_deb(&bytes, &package.name)
}

/// The installed-package view of a package's own control file.
fn installed_from_control(
    control: &str,
    package: &ResolvedPackage,
) -> Result<InstalledPackage, StackError> {
    let paragraphs = parse_paragraphs(control);
    let paragraph = paragraphs.first();
    let version_text = paragraph
        .and_then(|p| p.get("Version"))
        .unwrap_or(&package.version);
    let version = DebVersion::parse(version_text).map_err(|source| StackError::ControlVersion {
        package: package.name.clone(),
        source,
    })?;
    let provides = paragraph
        .and_then(|p| p.get("Provides"))
        .map(|text| {
            text.split(',')
                .filter_map(|item| parse_relation(item).ok())
                .collect()
        })
        .unwrap_or_default();
    Ok(InstalledPackage {
        name: package.name.clone(),
        version,
        provides,
    })
}
