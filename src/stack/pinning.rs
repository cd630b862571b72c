//! Deciding a package set: from the lock when it matches the builder, else by resolving
//! against freshly verified indexes (and recording the result in the lock).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::archive::load_universe;
use super::builder_config::BuilderStack;
use super::download::Fetcher;
use super::error::StackError;
use super::lock::{Lock, LockMode, LockedSet, ResolvedPackage, cached_lock_path};
use super::mirror::MirrorPlan;
use super::resolver::{InstalledSet, ResolveRequest, resolve};
use crate::cache::Cache;

/// Which entry of the lock a package set belongs to.
#[derive(Debug, Clone, Copy)]
pub enum LockSection<'a> {
    /// The run image.
    Base,
    /// A runtime, by name.
    Runtime(&'a str),
}

impl LockSection<'_> {
    fn label(&self) -> String {
        match self {
            LockSection::Base => "the run image".to_owned(),
            LockSection::Runtime(name) => format!("the runtime `{name}`"),
        }
    }
}

/// A package set and where its packages can be downloaded.
#[derive(Debug, Clone)]
pub struct PinnedSet {
    /// Packages sorted by name.
    pub packages: Vec<ResolvedPackage>,
    /// Archive URIs per suite known to serve them (the index they were resolved from).
    pub uri_hints: BTreeMap<String, String>,
}

/// What to pin.
#[derive(Debug, Clone, Copy)]
pub struct PinRequest<'a> {
    /// Lock entry.
    pub section: LockSection<'a>,
    /// Requested packages.
    pub packages: &'a [String],
    /// Exclusions beyond the builder's.
    pub extra_exclude: &'a [String],
    /// The image the closure is computed over.
    pub installed: Option<&'a InstalledSet>,
}

/// The lock file in use: `--lock FILE`, else the cache's.
pub fn lock_path(stack: &BuilderStack, cache: &Cache) -> PathBuf {
    stack
        .lock_file
        .clone()
        .unwrap_or_else(|| cached_lock_path(cache, &stack.id))
}

/// Pin `request` according to `mode`.
pub fn pin(
    stack: &BuilderStack,
    cache: &Cache,
    plan: &MirrorPlan,
    request: PinRequest<'_>,
    mode: LockMode,
) -> Result<PinnedSet, StackError> {
    let path = lock_path(stack, cache);
    let inputs = stack.inputs_digest(request.packages, request.extra_exclude);
    if mode != LockMode::Update {
        let lock = Lock::load(&path)?;
        let locked = match request.section {
            LockSection::Base => lock.base.as_ref(),
            LockSection::Runtime(name) => lock.runtimes.get(name),
        };
        if let Some(set) = locked.filter(|set| set.inputs == inputs) {
            return Ok(PinnedSet {
                packages: set.packages.clone(),
                uri_hints: BTreeMap::new(),
            });
        }
        if mode == LockMode::Frozen {
            return Err(StackError::LockOutdated {
                path,
                section: request.section.label(),
            });
        }
    }
    let fetcher = Fetcher::new(cache);
    let loaded = load_universe(plan, &fetcher, &stack.suites, &stack.components)?;
    let uri_hints = loaded.uris;
    let mut exclude: BTreeSet<String> = stack.exclude.clone();
    exclude.extend(request.extra_exclude.iter().cloned());
    let resolution = resolve(
        &loaded.universe,
        ResolveRequest {
            packages: request.packages,
            exclude: &exclude,
            installed: request.installed,
        },
    )?;
    let packages: Vec<ResolvedPackage> = resolution
        .packages
        .into_iter()
        .map(|chosen| ResolvedPackage {
            name: chosen.record.name,
            version: chosen.record.version.to_string(),
            arch: chosen.record.arch,
            sha256: chosen.record.sha256,
            size: chosen.record.size,
            suite: chosen.record.suite,
            filename: chosen.record.filename,
        })
        .collect();
    // Read-modify-write under a lock, so a base build and a runtime build running at the
    // same time do not drop each other's entry.
    let _guard = cache.lock_exclusive("debian-stack-lock")?;
    let mut lock = Lock::load(&path)?;
    let set = LockedSet {
        inputs,
        packages: packages.clone(),
    };
    match request.section {
        LockSection::Base => lock.base = Some(set),
        LockSection::Runtime(name) => {
            lock.runtimes.insert(name.to_owned(), set);
        }
    }
    lock.save(&path)?;
    Ok(PinnedSet {
        packages,
        uri_hints,
    })
}
