//! Which URI and keyring serve each suite: the host's apt configuration, overridden by the
//! builder and by `KILN_DEBIAN_MIRROR` / `KILN_DEBIAN_KEYRING`. No mirror is ever built in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::apt_config::AptConfig;
use super::apt_sources::{SignedBy, SuiteCandidate, candidates_for, load_sources};
use super::error::StackError;
use super::signature::Keyring;

/// Environment variable overriding the mirror: one URI for every suite, or
/// `suite=URI` pairs separated by commas or spaces.
pub const MIRROR_ENV: &str = "KILN_DEBIAN_MIRROR";
/// Environment variable naming a keyring file trusted for every suite.
pub const KEYRING_ENV: &str = "KILN_DEBIAN_KEYRING";

/// Mirror and trust overrides, from the environment or given directly (tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorOverrides {
    /// A URI for every suite.
    pub all_suites: Option<String>,
    /// URIs for named suites (win over `all_suites`).
    pub per_suite: BTreeMap<String, String>,
    /// A keyring trusted for every suite.
    pub keyring: Option<PathBuf>,
}

impl MirrorOverrides {
    /// Read `KILN_DEBIAN_MIRROR` and `KILN_DEBIAN_KEYRING`.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the overrides through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut overrides = Self::default();
        if let Some(value) = lookup(MIRROR_ENV).filter(|value| !value.trim().is_empty()) {
            for item in value
                .split([',', ' ', '\n'])
                .filter(|item| !item.is_empty())
            {
                // `suite=URI`; a bare URI (which contains no `=` before its scheme) is global.
                match item.split_once('=') {
                    Some((suite, uri)) if !suite.contains(':') => {
                        overrides.per_suite.insert(suite.to_owned(), uri.to_owned());
                    }
                    _ => overrides.all_suites = Some(item.to_owned()),
                }
            }
        }
        overrides.keyring = lookup(KEYRING_ENV)
            .filter(|value| !value.trim().is_empty())
            .map(PathBuf::from);
        overrides
    }
}

/// One suite as the builder configures it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteSetting {
    /// Suite name (`bookworm`, `bookworm-security`, …).
    pub name: String,
    /// Archive root URI for this suite, instead of the host's apt sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// Keyring file for this suite, instead of the source's `Signed-By`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyring: Option<PathBuf>,
}

/// Where to fetch one suite from and whom to trust.
#[derive(Debug, Clone)]
pub struct SuiteSource {
    /// Archive root URI, no trailing slash.
    pub uri: String,
    /// Keys that must sign its `InRelease`.
    pub signed_by: SignedBy,
    /// Whether an expired `Valid-Until` is an error.
    pub check_valid_until: bool,
}

/// Everything needed to decide sources: the host's apt state plus overrides.
#[derive(Debug, Clone)]
pub struct MirrorPlan {
    apt_root: PathBuf,
    sources: Vec<super::apt_sources::AptSource>,
    config: AptConfig,
    overrides: MirrorOverrides,
}

impl MirrorPlan {
    /// Read the apt configuration under `apt_root` (`/` on a real host).
    pub fn load(apt_root: &Path, overrides: MirrorOverrides) -> Result<Self, StackError> {
        Ok(Self {
            apt_root: apt_root.to_path_buf(),
            sources: load_sources(apt_root)?,
            config: AptConfig::load(apt_root),
            overrides,
        })
    }

    /// Sources to try for `suite`, best first. An override replaces the apt sources; apt
    /// sources are filtered to Debian's own later, by the `Origin` of their signed Release.
    pub fn sources_for(
        &self,
        suite: &SuiteSetting,
        component: &str,
    ) -> Result<Vec<SuiteSource>, StackError> {
        let global_check = self
            .config
            .bool("Acquire::Check-Valid-Until")
            .unwrap_or(true);
        let apt_candidates = candidates_for(&self.sources, &suite.name, component);
        let keyring_override = self
            .overrides
            .keyring
            .clone()
            .or_else(|| suite.keyring.clone());
        let pick_keys = |signed_by: SignedBy| match &keyring_override {
            Some(path) => SignedBy::Keyrings(vec![path.clone()]),
            None => signed_by,
        };
        let override_uri = self
            .overrides
            .per_suite
            .get(&suite.name)
            .or(self.overrides.all_suites.as_ref())
            .or(suite.mirror.as_ref());
        if let Some(uri) = override_uri {
            // Trust what apt trusts for this suite, unless a keyring is named.
            let inherited = apt_candidates
                .first()
                .map_or(SignedBy::Default, |c| c.signed_by.clone());
            let check = apt_candidates
                .first()
                .and_then(|c| c.check_valid_until)
                .unwrap_or(global_check);
            return Ok(vec![SuiteSource {
                uri: uri.trim_end_matches('/').to_owned(),
                signed_by: pick_keys(inherited),
                check_valid_until: check,
            }]);
        }
        if apt_candidates.is_empty() {
            return Err(StackError::NoSourceForSuite {
                suite: suite.name.clone(),
            });
        }
        Ok(apt_candidates
            .into_iter()
            .map(
                |SuiteCandidate {
                     uri,
                     signed_by,
                     check_valid_until,
                 }| SuiteSource {
                    uri,
                    signed_by: pick_keys(signed_by),
                    check_valid_until: check_valid_until.unwrap_or(global_check),
                },
            )
            .collect())
    }

    /// Load the keys a source trusts.
    pub fn keyring(&self, signed_by: &SignedBy, suite: &str) -> Result<Keyring, StackError> {
        match signed_by {
            SignedBy::Default => Keyring::apt_default(&self.apt_root),
            SignedBy::Keyrings(paths) => Keyring::from_files(paths),
            SignedBy::Fingerprints(fingerprints) => {
                Keyring::apt_default(&self.apt_root)?.only_fingerprints(fingerprints)
            }
            SignedBy::Inline(text) => {
                Keyring::from_armored(text, &format!("the inline Signed-By key of {suite}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_parse_global_and_per_suite_forms() {
        let env: BTreeMap<&str, &str> = [
            (
                MIRROR_ENV,
                "http://127.0.0.1:9/debian, bookworm-security=http://127.0.0.1:9/security",
            ),
            (KEYRING_ENV, "/tmp/k.gpg"),
        ]
        .into();
        let overrides = MirrorOverrides::from_lookup(|name| env.get(name).map(|v| v.to_string()));
        assert_eq!(
            overrides.all_suites.as_deref(),
            Some("http://127.0.0.1:9/debian")
        );
        assert_eq!(
            overrides.per_suite["bookworm-security"],
            "http://127.0.0.1:9/security"
        );
        assert_eq!(overrides.keyring, Some(PathBuf::from("/tmp/k.gpg")));
        assert_eq!(
            MirrorOverrides::from_lookup(|_| None),
            MirrorOverrides::default()
        );
    }

    #[test]
    fn overrides_replace_apt_sources_but_inherit_their_trust() {
        let root = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/stack_apt_sources"
        ));
        let overrides = MirrorOverrides {
            all_suites: Some("http://127.0.0.1:9/debian/".to_owned()),
            ..MirrorOverrides::default()
        };
        let plan = MirrorPlan::load(root, overrides).unwrap();
        let suite = SuiteSetting {
            name: "bookworm".to_owned(),
            mirror: None,
            keyring: None,
        };
        let sources = plan.sources_for(&suite, "main").unwrap();
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].uri, "http://127.0.0.1:9/debian");
        // The one-line source in the fixture says check-valid-until=no.
        assert!(!sources[0].check_valid_until);

        let plain = MirrorPlan::load(root, MirrorOverrides::default()).unwrap();
        let missing = SuiteSetting {
            name: "trixie".to_owned(),
            mirror: None,
            keyring: None,
        };
        assert!(matches!(
            plain.sources_for(&missing, "main"),
            Err(StackError::NoSourceForSuite { .. })
        ));
        assert_eq!(plain.sources_for(&suite, "main").unwrap().len(), 3);
    }
}
