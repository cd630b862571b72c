//! The host's apt sources: deb822 `*.sources`, one-line `*.list` and `sources.list`.

use std::path::{Path, PathBuf};

use super::apt_config::parse_bool;
use super::control::parse_paragraphs;
use super::error::StackError;

/// Which keys a source trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedBy {
    /// No `Signed-By`: apt's global trust (`trusted.gpg`, `trusted.gpg.d/`).
    Default,
    /// Keyring files.
    Keyrings(Vec<PathBuf>),
    /// Fingerprints of keys from the global trust.
    Fingerprints(Vec<String>),
    /// An ASCII-armored key block written into the `.sources` file itself.
    Inline(String),
}

/// One `deb` source entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    /// Archive root URIs.
    pub uris: Vec<String>,
    /// Suites (`bookworm`, `bookworm-security`, …).
    pub suites: Vec<String>,
    /// Components (`main`, …).
    pub components: Vec<String>,
    /// Trusted keys.
    pub signed_by: SignedBy,
    /// Per-source `Check-Valid-Until` override.
    pub check_valid_until: Option<bool>,
    /// The file it came from (for messages).
    pub file: PathBuf,
}

/// Read every enabled `deb` source under `root` (`/` on a real host): `etc/apt/sources.list`,
/// then `etc/apt/sources.list.d/*.list` and `*.sources` in name order. Other names (such as
/// `*.list.disabled`) are ignored, as apt ignores them.
pub fn load_sources(root: &Path) -> Result<Vec<AptSource>, StackError> {
    let mut files = Vec::new();
    let main = root.join("etc/apt/sources.list");
    if main.is_file() {
        files.push(main);
    }
    let parts = root.join("etc/apt/sources.list.d");
    if let Ok(entries) = fs_err::read_dir(&parts) {
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.ends_with(".list") || name.ends_with(".sources"))
            .collect();
        names.sort();
        files.extend(names.into_iter().map(|name| parts.join(name)));
    }
    let mut sources = Vec::new();
    for file in files {
        let text = fs_err::read_to_string(&file).map_err(|source| StackError::ReadAptSources {
            path: file.clone(),
            source,
        })?;
        if file.extension().is_some_and(|ext| ext == "sources") {
            sources.extend(parse_deb822(&text, &file));
        } else {
            sources.extend(parse_one_line(&text, &file));
        }
    }
    Ok(sources)
}

/// Parse deb822 `.sources` text.
pub fn parse_deb822(text: &str, file: &Path) -> Vec<AptSource> {
    let mut sources = Vec::new();
    for paragraph in parse_paragraphs(text) {
        let words = |field: &str| -> Vec<String> {
            paragraph
                .get(field)
                .map(|value| value.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        if !words("Types").iter().any(|kind| kind == "deb") {
            continue;
        }
        if paragraph.get("Enabled").and_then(parse_bool) == Some(false) {
            continue;
        }
        let signed_by = match paragraph.get_unfolded("Signed-By") {
            Some(value) => parse_signed_by(&value),
            None => SignedBy::Default,
        };
        sources.push(AptSource {
            uris: words("URIs"),
            suites: words("Suites"),
            components: words("Components"),
            signed_by,
            check_valid_until: paragraph.get("Check-Valid-Until").and_then(parse_bool),
            file: file.to_path_buf(),
        });
    }
    sources
}

/// Parse one-line `sources.list` text: `deb [opt=value …] uri suite component…`.
pub fn parse_one_line(text: &str, file: &Path) -> Vec<AptSource> {
    let mut sources = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let mut rest = rest.trim_start();
        let mut signed_by = SignedBy::Default;
        let mut check_valid_until = None;
        if let Some(options) = rest.strip_prefix('[') {
            let Some(close) = options.find(']') else {
                continue;
            };
            for option in options[..close].split_whitespace() {
                let Some((key, value)) = option.split_once('=') else {
                    continue;
                };
                match key.to_ascii_lowercase().as_str() {
                    "signed-by" => signed_by = parse_signed_by(value),
                    "check-valid-until" => check_valid_until = parse_bool(value),
                    _ => {}
                }
            }
            rest = &options[close + 1..];
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        sources.push(AptSource {
            uris: vec![uri.to_owned()],
            suites: vec![suite.to_owned()],
            components: words.map(str::to_owned).collect(),
            signed_by,
            check_valid_until,
            file: file.to_path_buf(),
        });
    }
    sources
}

fn parse_signed_by(value: &str) -> SignedBy {
    let value = value.trim();
    if value.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
        return SignedBy::Inline(value.to_owned());
    }
    let items: Vec<&str> = value
        .split([',', ' ', '\n', '\t'])
        .filter(|item| !item.is_empty())
        .collect();
    if items.iter().all(|item| item.starts_with('/')) {
        return SignedBy::Keyrings(items.iter().map(PathBuf::from).collect());
    }
    SignedBy::Fingerprints(
        items
            .iter()
            .map(|item| item.trim_end_matches('!').to_ascii_uppercase())
            .collect(),
    )
}

/// A candidate source for one suite: the sources that list it with the `main` component, in
/// file order. Which one is Debian's is decided later from the signed `Origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteCandidate {
    /// Archive root URI, without a trailing slash.
    pub uri: String,
    /// Trusted keys.
    pub signed_by: SignedBy,
    /// Per-source `Check-Valid-Until`.
    pub check_valid_until: Option<bool>,
}

/// Candidates for `suite` among `sources`.
pub fn candidates_for(sources: &[AptSource], suite: &str, component: &str) -> Vec<SuiteCandidate> {
    let mut candidates: Vec<SuiteCandidate> = Vec::new();
    for source in sources {
        if !source.suites.iter().any(|listed| listed == suite)
            || !source.components.iter().any(|c| c == component)
        {
            continue;
        }
        for uri in &source.uris {
            let candidate = SuiteCandidate {
                uri: uri.trim_end_matches('/').to_owned(),
                signed_by: source.signed_by.clone(),
                check_valid_until: source.check_valid_until,
            };
            if !candidates.contains(&candidate) {
                candidates.push(candidate);
            }
        }
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stack_apt_sources"
    );

    #[test]
    fn reads_deb822_one_line_and_inline_keys_from_a_fixture_root() {
        let sources = load_sources(Path::new(FIXTURES)).unwrap();
        let bookworm = candidates_for(&sources, "bookworm", "main");
        let uris: Vec<&str> = bookworm.iter().map(|c| c.uri.as_str()).collect();
        // sources.list first, then sources.list.d in name order; the disabled file is ignored.
        assert_eq!(
            uris,
            [
                "http://one-line.example/debian",
                "http://deb822.example/debian",
                "http://thirdparty.example/apt"
            ]
        );
        assert_eq!(bookworm[0].check_valid_until, Some(false));
        assert_eq!(
            bookworm[0].signed_by,
            SignedBy::Keyrings(vec![PathBuf::from(
                "/usr/share/keyrings/debian-archive-keyring.gpg"
            )])
        );
        let security = candidates_for(&sources, "bookworm-security", "main");
        assert_eq!(security.len(), 1);
        assert_eq!(security[0].uri, "http://deb822.example/debian-security");
        match &security[0].signed_by {
            SignedBy::Inline(key) => {
                assert!(
                    key.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n"),
                    "{key}"
                );
                assert!(key.ends_with("-----END PGP PUBLIC KEY BLOCK-----"));
            }
            other => panic!("expected an inline key, got {other:?}"),
        }
        // Disabled entries, deb-src and other components are not candidates.
        assert!(candidates_for(&sources, "bookworm-backports", "main").is_empty());
        assert!(candidates_for(&sources, "sid", "main").is_empty());
        assert!(candidates_for(&sources, "nodistro", "main").is_empty());
    }

    #[test]
    fn one_line_options_and_fingerprints() {
        let sources = parse_one_line(
            "deb [arch=amd64 signed-by=0123ABCD!] http://a.example/debian bookworm main contrib # note\ndeb-src http://a.example/debian bookworm main\n",
            Path::new("x.list"),
        );
        assert_eq!(sources.len(), 1);
        assert_eq!(
            sources[0].signed_by,
            SignedBy::Fingerprints(vec!["0123ABCD".to_owned()])
        );
        assert_eq!(sources[0].components, ["main", "contrib"]);
    }
}
