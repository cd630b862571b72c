//! Runtime layers for buildpacks: the closure of some packages (`python3`, `nodejs`,
//! `openjdk-17-jre-headless`) over a run image, unpacked as one layer extracted at `/`, and
//! keyed by the pinned package set so an unchanged runtime is never re-extracted.

use std::sync::Arc;

use super::builder_config::BuilderStack;
use super::download::Fetcher;
use super::error::StackError;
use super::java_keystore::{DEFAULT_PASSWORD, jks_truststore, pem_certificates};
use super::lock::{LockMode, ResolvedPackage, package_set_digest};
use super::mirror::MirrorPlan;
use super::pinning::{LockSection, PinRequest, PinnedSet, pin};
use super::run_image::RunImage;
use super::synthesize::{CA_BUNDLE, ca_certificates};
use super::unpack::unpack_pinned;
use crate::cache::Cache;
use crate::layer::{EntryKind, FileSource, LayerEntries, Owner};
use crate::oci::Digest;

/// Where Java's `lib/security/cacerts` link points on Debian.
pub const JAVA_CACERTS: &str = "etc/ssl/certs/java/cacerts";

/// What a buildpack asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeRequest {
    /// Lock entry name (`python`, `node`, `java`).
    pub name: String,
    /// Requested packages.
    pub packages: Vec<String>,
    /// Exclusions beyond the builder's (e.g. a JRE's desktop libraries).
    pub exclude: Vec<String>,
}

/// A pinned runtime, before any unpacking.
#[derive(Debug, Clone)]
pub struct RuntimePlan {
    /// Lock entry name.
    pub name: String,
    /// Packages the layer adds (those the run image lacks), sorted by name.
    pub packages: Vec<ResolvedPackage>,
    /// Reuse key: changes exactly when the layer's content would.
    pub key: Digest,
}

/// An assembled runtime layer.
#[derive(Debug, Clone)]
pub struct RuntimeLayer {
    /// The plan's key.
    pub key: Digest,
    /// Entries, extracted at `/` above the run image.
    pub entries: LayerEntries,
    /// Packages in the layer.
    pub packages: Vec<ResolvedPackage>,
}

/// Pin the closure of `request` over `run_image`. Cheap when the lock matches: compare
/// [`RuntimePlan::key`] with a cached layer before calling [`assemble_runtime`].
pub fn plan_runtime(
    stack: &BuilderStack,
    run_image: &RunImage,
    request: &RuntimeRequest,
    cache: &Cache,
    mode: LockMode,
) -> Result<RuntimePlan, StackError> {
    let plan = MirrorPlan::load(&stack.apt_root, stack.mirror_overrides.clone())?;
    let pinned = pin(
        stack,
        cache,
        &plan,
        PinRequest {
            section: LockSection::Runtime(&request.name),
            packages: &request.packages,
            extra_exclude: &request.exclude,
            installed: Some(&run_image.installed),
        },
        mode,
    )?;
    let mut key_packages = pinned.packages.clone();
    // The layer may hold a Java truststore made from the run image's CA bundle.
    key_packages.extend(
        run_image
            .packages
            .iter()
            .filter(|package| package.name == "ca-certificates")
            .cloned(),
    );
    Ok(RuntimePlan {
        name: request.name.clone(),
        key: package_set_digest(
            &format!("kiln-runtime-layer-v1 {}", request.name),
            &key_packages,
        ),
        packages: pinned.packages,
    })
}

/// Download, verify and unpack a planned runtime, adding what its maintainer scripts would
/// have made (Java's `alternatives` links and `cacerts`).
pub fn assemble_runtime(
    stack: &BuilderStack,
    run_image: &RunImage,
    plan: &RuntimePlan,
    cache: &Cache,
) -> Result<RuntimeLayer, StackError> {
    let mirror_plan = MirrorPlan::load(&stack.apt_root, stack.mirror_overrides.clone())?;
    let fetcher = Fetcher::new(cache);
    let pinned = PinnedSet {
        packages: plan.packages.clone(),
        uri_hints: Default::default(),
    };
    let (tree, _) = unpack_pinned(stack, &fetcher, &mirror_plan, &pinned)?;
    let mut entries = tree.into_entries();
    let synthesized = |source| StackError::DebPath {
        package: "(synthesized runtime files)".to_owned(),
        source,
    };
    link_java_tools(&mut entries, &run_image.entries).map_err(synthesized)?;
    if needs_java_cacerts(&entries) {
        let store = java_truststore(&run_image.entries)?;
        entries
            .add_bytes(JAVA_CACERTS, store, 0o644, Owner::ROOT)
            .map_err(synthesized)?;
    }
    entries.add_missing_parents(0o755, Owner::ROOT);
    Ok(RuntimeLayer {
        key: plan.key.clone(),
        entries,
        packages: plan.packages.clone(),
    })
}

/// `update-alternatives` is not run: link every tool of the (first) JVM into `/usr/bin`,
/// where Debian's alternatives would put `java`, `keytool`, ….
fn link_java_tools(
    entries: &mut LayerEntries,
    base: &LayerEntries,
) -> Result<(), crate::layer::EntryPathError> {
    let tools: Vec<(String, String)> = entries
        .iter()
        .filter_map(|(path, entry)| {
            let rest = path.strip_prefix("usr/lib/jvm/")?;
            let (jvm, tool) = rest.split_once("/bin/")?;
            let executable = matches!(entry.kind, EntryKind::File(_)) && entry.mode & 0o111 != 0;
            (executable && !tool.contains('/') && !jvm.contains('/'))
                .then(|| (jvm.to_owned(), tool.to_owned()))
        })
        .collect();
    let Some(first_jvm) = tools.first().map(|(jvm, _)| jvm.clone()) else {
        return Ok(());
    };
    for (jvm, tool) in tools.iter().filter(|(jvm, _)| *jvm == first_jvm) {
        let link = format!("usr/bin/{tool}");
        if !entries.contains(&link) && !base.contains(&link) {
            entries.add_symlink(&link, &format!("../lib/jvm/{jvm}/bin/{tool}"), Owner::ROOT)?;
        }
    }
    Ok(())
}

/// Whether a JRE in the layer links its `cacerts` to Debian's generated keystore.
fn needs_java_cacerts(entries: &LayerEntries) -> bool {
    entries.iter().any(|(path, entry)| {
        path.ends_with("/lib/security/cacerts")
            && matches!(&entry.kind, EntryKind::Symlink(target) if target.trim_start_matches('/') == JAVA_CACERTS)
    })
}

/// A JKS truststore of the run image's CA certificates, as `ca-certificates-java` makes it.
fn java_truststore(base: &LayerEntries) -> Result<Vec<u8>, StackError> {
    let mut certificates: Vec<(String, Vec<u8>)> = Vec::new();
    for (path, bytes) in ca_certificates(base) {
        let stem = path
            .rsplit('/')
            .next()
            .unwrap_or(&path)
            .trim_end_matches(".crt");
        // JKS aliases are case-insensitive; keytool shows them lowercased.
        let alias = format!("debian:{}.pem", stem.to_lowercase());
        let ders = pem_certificates(&bytes)
            .ok_or_else(|| StackError::BadCertificate { path: path.clone() })?;
        for (index, der) in ders.into_iter().enumerate() {
            let alias = if index == 0 {
                alias.clone()
            } else {
                format!("{alias}-{index}")
            };
            if !certificates.iter().any(|(known, _)| *known == alias) {
                certificates.push((alias, der));
            }
        }
    }
    if certificates.is_empty() {
        // No ca-certificates in the run image: fall back to its bundle file, if any.
        if let Some(EntryKind::File(FileSource::Bytes(bundle))) =
            base.get(CA_BUNDLE).map(|entry| &entry.kind)
        {
            let bundle: &Arc<Vec<u8>> = bundle;
            let ders = pem_certificates(bundle).ok_or_else(|| StackError::BadCertificate {
                path: CA_BUNDLE.to_owned(),
            })?;
            certificates.extend(
                ders.into_iter()
                    .enumerate()
                    .map(|(index, der)| (format!("ca-{index:03}"), der)),
            );
        }
    }
    Ok(jks_truststore(&certificates, DEFAULT_PASSWORD))
}
