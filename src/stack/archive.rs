//! Signed package indexes of the configured suites: `InRelease` verified against the
//! source's keyring, then every `Packages` index verified by the sha256 in it.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::download::{Expected, Fetcher};
use super::error::StackError;
use super::mirror::{MirrorPlan, SuiteSetting, SuiteSource};
use super::packages_index::{PackageRecord, parse_packages};
use super::release::{Release, unverified_origin};
use super::resolver::Universe;
use super::signature::verify_inrelease;

/// The architecture kiln builds for (linux/amd64 only for now).
pub const ARCH: &str = "amd64";

/// A suite whose `InRelease` verified, and the Debian source that served it.
#[derive(Debug, Clone)]
pub struct VerifiedSuite {
    /// Suite name.
    pub suite: String,
    /// The source.
    pub source: SuiteSource,
    /// The signed Release.
    pub release: Release,
    /// Where the Release came from.
    pub release_url: String,
}

/// A `Packages` index named by a verified Release.
#[derive(Debug, Clone)]
pub struct IndexFile {
    /// Suite it belongs to.
    pub suite: String,
    /// Path under `dists/<suite>/`.
    pub path: String,
    /// sha256 and size from the signed Release.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// URLs to try, by-hash first.
    pub urls: Vec<String>,
    /// The Release that vouches for it.
    pub release_url: String,
}

/// All candidate packages of the configured suites.
#[derive(Debug)]
pub struct LoadedUniverse {
    /// The packages.
    pub universe: Arc<Universe>,
    /// The Debian source URI of each suite.
    pub uris: BTreeMap<String, String>,
}

/// Verify every suite's Release, then load (or reuse, within this process) the universe of
/// their indexes. Indexes are keyed by their signed sha256, so reuse is always safe.
pub fn load_universe(
    plan: &MirrorPlan,
    fetcher: &Fetcher,
    suites: &[SuiteSetting],
    components: &[String],
) -> Result<LoadedUniverse, StackError> {
    static PARSED: OnceLock<Mutex<HashMap<String, Arc<Universe>>>> = OnceLock::new();
    let mut files = Vec::new();
    let mut uris = BTreeMap::new();
    for suite in suites {
        let verified = verify_suite(plan, fetcher, suite, components)?;
        uris.insert(verified.suite.clone(), verified.source.uri.clone());
        files.extend(index_files(&verified, components)?);
    }
    let key: String = files
        .iter()
        .map(|file| format!("{} {}\n", file.suite, file.sha256))
        .collect();
    let memo = PARSED.get_or_init(Default::default);
    if let Some(universe) = memo
        .lock()
        .ok()
        .and_then(|parsed| parsed.get(&key).cloned())
    {
        return Ok(LoadedUniverse { universe, uris });
    }
    let mut records = Vec::new();
    for file in &files {
        records.extend(load_index(fetcher, file)?);
    }
    let universe = Arc::new(Universe::new(records));
    if let Ok(mut parsed) = memo.lock() {
        // A build uses one suite set; a few are kept for processes comparing suite sets.
        if parsed.len() >= 3 {
            parsed.clear();
        }
        parsed.insert(key, universe.clone());
    }
    Ok(LoadedUniverse { universe, uris })
}

/// Fetch `suite`'s `InRelease` from the first of its sources that is Debian's and verify it.
pub fn verify_suite(
    plan: &MirrorPlan,
    fetcher: &Fetcher,
    suite: &SuiteSetting,
    components: &[String],
) -> Result<VerifiedSuite, StackError> {
    let component = components.first().map_or("main", String::as_str);
    let sources = plan.sources_for(suite, component)?;
    let mut tried = Vec::new();
    for source in sources {
        let url = format!("{}/dists/{}/InRelease", source.uri, suite.name);
        let bytes = fetcher.get(&url)?;
        // Third-party repositories may reuse Debian's suite names; only Debian's own archive
        // is used. Their signature is not checked because nothing from them is read.
        if unverified_origin(&bytes).as_deref() != Some("Debian") {
            tried.push(source.uri.clone());
            continue;
        }
        let keyring = plan.keyring(&source.signed_by, &suite.name)?;
        let text = verify_inrelease(&bytes, &keyring, &url)?;
        let release = Release::parse(&text, &url)?;
        if release.origin != "Debian" {
            tried.push(source.uri.clone());
            continue;
        }
        check_valid_until(&release, &source, &url)?;
        return Ok(VerifiedSuite {
            suite: suite.name.clone(),
            source,
            release,
            release_url: url,
        });
    }
    Err(StackError::NoDebianSource {
        suite: suite.name.clone(),
        tried: tried.join(", "),
    })
}

/// The `Packages` indexes of `components` a verified Release lists for kiln's architecture
/// (and `all`, when the archive keeps those apart).
pub fn index_files(
    verified: &VerifiedSuite,
    components: &[String],
) -> Result<Vec<IndexFile>, StackError> {
    let mut files = Vec::new();
    for component in components {
        let mut arches = vec![ARCH];
        if verified.release.separate_all_index {
            arches.push("all");
        }
        for arch in arches {
            files.push(index_file(verified, component, arch)?);
        }
    }
    Ok(files)
}

fn check_valid_until(release: &Release, source: &SuiteSource, url: &str) -> Result<(), StackError> {
    let Some(valid_until) = release.valid_until else {
        return Ok(());
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    if source.check_valid_until && valid_until < now {
        return Err(StackError::ReleaseExpired {
            url: url.to_owned(),
            valid_until: format!("{valid_until} (seconds since 1970)"),
        });
    }
    Ok(())
}

fn index_file(
    verified: &VerifiedSuite,
    component: &str,
    arch: &str,
) -> Result<IndexFile, StackError> {
    let release = &verified.release;
    let dir = format!("{component}/binary-{arch}");
    // Prefer the smallest compression the signed Release lists.
    let (path, file) = ["Packages.xz", "Packages.gz", "Packages"]
        .iter()
        .find_map(|name| {
            let path = format!("{dir}/{name}");
            release.files.get(&path).map(|file| (path, file))
        })
        .ok_or_else(|| StackError::ReleaseMissingIndex {
            url: verified.release_url.clone(),
            path: format!("{dir}/Packages"),
        })?;
    let base = format!("{}/dists/{}", verified.source.uri, verified.suite);
    let mut urls = Vec::new();
    if release.by_hash {
        urls.push(format!("{base}/{dir}/by-hash/SHA256/{}", file.sha256));
    }
    urls.push(format!("{base}/{path}"));
    Ok(IndexFile {
        suite: verified.suite.clone(),
        path,
        sha256: file.sha256.clone(),
        size: file.size,
        urls,
        release_url: verified.release_url.clone(),
    })
}

/// Download (or reuse from the cache), verify and parse one index.
pub fn load_index(fetcher: &Fetcher, file: &IndexFile) -> Result<Vec<PackageRecord>, StackError> {
    let authority = format!("the signed Release {}", file.release_url);
    let compressed = fetcher.fetch_verified(
        &file.urls,
        Expected {
            sha256: &file.sha256,
            size: Some(file.size),
            authority: &authority,
        },
    )?;
    let index_url = file.urls.last().cloned().unwrap_or_default();
    let text = decompress_index(&compressed, &file.path, &index_url)?;
    parse_packages(&text, &file.suite, &[ARCH, "all"]).map_err(|source| StackError::ParseIndex {
        url: index_url,
        source,
    })
}

fn decompress_index(bytes: &[u8], path: &str, url: &str) -> Result<String, StackError> {
    let decompress_error = |source| StackError::Decompress {
        what: url.to_owned(),
        source,
    };
    let mut text = String::new();
    if path.ends_with(".xz") {
        liblzma::read::XzDecoder::new_multi_decoder(bytes)
            .read_to_string(&mut text)
            .map_err(decompress_error)?;
    } else if path.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_string(&mut text)
            .map_err(decompress_error)?;
    } else {
        text = String::from_utf8(bytes.to_vec()).map_err(|_| StackError::NotText {
            url: url.to_owned(),
        })?;
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::apt_sources::SignedBy;

    #[test]
    fn expired_releases_fail_only_when_apt_checks_valid_until() {
        let release = Release::parse(
            "Origin: Debian\nValid-Until: Thu, 01 Jan 1970 00:01:00 UTC\n",
            "test",
        )
        .unwrap();
        let mut source = SuiteSource {
            uri: "http://127.0.0.1:9/debian".to_owned(),
            signed_by: SignedBy::Default,
            check_valid_until: true,
        };
        let error = check_valid_until(
            &release,
            &source,
            "http://127.0.0.1:9/debian/dists/x/InRelease",
        )
        .unwrap_err();
        assert!(
            matches!(error, StackError::ReleaseExpired { .. }),
            "{error}"
        );
        source.check_valid_until = false;
        assert!(check_valid_until(&release, &source, "x").is_ok());
    }
}
