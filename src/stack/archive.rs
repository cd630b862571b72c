//! Signed package indexes of the configured suites: `InRelease` verified against the
//! source's keyring, then every `Packages` index verified by the sha256 in it.

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use super::download::{Expected, Fetcher};
use super::error::StackError;
use super::mirror::{MirrorPlan, SuiteSetting, SuiteSource};
use super::packages_index::{PackageRecord, parse_packages};
use super::release::{Release, unverified_origin};
use super::signature::verify_inrelease;

/// The architecture kiln builds for (linux/amd64 only for now).
pub const ARCH: &str = "amd64";

/// One suite's verified index.
#[derive(Debug, Clone)]
pub struct SuiteIndex {
    /// Suite name.
    pub suite: String,
    /// The Debian source it came from.
    pub uri: String,
    /// Its packages (`amd64` and `all`).
    pub records: Vec<PackageRecord>,
}

/// Fetch and verify the indexes of `suite` from the first of its sources that is Debian's.
pub fn load_suite(
    plan: &MirrorPlan,
    fetcher: &Fetcher,
    suite: &SuiteSetting,
    components: &[String],
) -> Result<SuiteIndex, StackError> {
    let component = components.first().map_or("main", String::as_str);
    let sources = plan.sources_for(suite, component)?;
    let mut tried = Vec::new();
    for source in &sources {
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
        check_valid_until(&release, source, &url)?;
        let mut records = Vec::new();
        for component in components {
            records.extend(load_packages(fetcher, source, &suite.name, &release, &url, component, ARCH)?);
            let all_listed = release.files.keys().any(|path| path.starts_with(&format!("{component}/binary-all/Packages")));
            if !release.all_in_arch_indexes && all_listed {
                records.extend(load_packages(fetcher, source, &suite.name, &release, &url, component, "all")?);
            }
        }
        return Ok(SuiteIndex {
            suite: suite.name.clone(),
            uri: source.uri.clone(),
            records,
        });
    }
    Err(StackError::NoDebianSource {
        suite: suite.name.clone(),
        tried: tried.join(", "),
    })
}

fn check_valid_until(release: &Release, source: &SuiteSource, url: &str) -> Result<(), StackError> {
    let Some(valid_until) = release.valid_until else {
        return Ok(());
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64);
    if source.check_valid_until && valid_until < now {
        return Err(StackError::ReleaseExpired {
            url: url.to_owned(),
            valid_until: format!("{valid_until} (seconds since 1970)"),
        });
    }
    Ok(())
}

fn load_packages(
    fetcher: &Fetcher,
    source: &SuiteSource,
    suite: &str,
    release: &Release,
    release_url: &str,
    component: &str,
    arch: &str,
) -> Result<Vec<PackageRecord>, StackError> {
    let dir = format!("{component}/binary-{arch}");
    // Prefer the smallest compression the signed Release lists.
    let (path, file) = ["Packages.xz", "Packages.gz", "Packages"]
        .iter()
        .find_map(|name| {
            let path = format!("{dir}/{name}");
            release.files.get(&path).map(|file| (path, file))
        })
        .ok_or_else(|| StackError::ReleaseMissingIndex {
            url: release_url.to_owned(),
            path: format!("{dir}/Packages"),
        })?;
    let base = format!("{}/dists/{suite}", source.uri);
    let mut urls = Vec::new();
    if release.by_hash {
        urls.push(format!("{base}/{dir}/by-hash/SHA256/{}", file.sha256));
    }
    urls.push(format!("{base}/{path}"));
    let authority = format!("the signed Release {release_url}");
    let compressed = fetcher.fetch_verified(
        &urls,
        Expected {
            sha256: &file.sha256,
            size: Some(file.size),
            authority: &authority,
        },
    )?;
    let index_url = format!("{base}/{path}");
    let text = decompress_index(&compressed, &path, &index_url)?;
    parse_packages(&text, suite, &[ARCH, "all"]).map_err(|source| StackError::ParseIndex { url: index_url, source })
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
        text = String::from_utf8(bytes.to_vec()).map_err(|_| StackError::NotText { url: url.to_owned() })?;
    }
    Ok(text)
}
