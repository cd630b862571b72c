//! Errors of the Debian stack: one enum, variants named for the operation that failed.

use std::io;
use std::path::PathBuf;

use super::packages_index::InvalidRecord;
use super::resolver::ResolveError;
use crate::cache::CacheError;
use crate::diagnostic::{Diagnose, ErrorClass};
use crate::layer::EntryPathError;

/// Everything that can go wrong assembling a stack from Debian packages.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("cannot read the apt sources file {path}")]
    ReadAptSources {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no apt source and no mirror setting names the suite `{suite}`")]
    NoSourceForSuite { suite: String },
    #[error(
        "none of the apt sources for the suite `{suite}` is Debian's own (Origin: Debian); tried {tried}"
    )]
    NoDebianSource { suite: String, tried: String },
    #[error("cannot download {url}")]
    Fetch {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("the mirror answered {status} for {url}")]
    HttpStatus { url: String, status: u16 },
    #[error("cannot read the keyring {path}")]
    ReadKeyring {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot parse the OpenPGP keyring {keyring}")]
    ParseKeyring {
        keyring: String,
        #[source]
        source: pgp::errors::Error,
    },
    #[error("the keyring {keyring} holds no usable public key")]
    EmptyKeyring { keyring: String },
    #[error("{url} is not a clear-signed InRelease file")]
    ParseInRelease {
        url: String,
        #[source]
        source: pgp::errors::Error,
    },
    #[error("{url} is not text")]
    NotText { url: String },
    #[error("none of the {signatures} signatures of {url} verifies against {keyring}")]
    BadSignature {
        url: String,
        signatures: usize,
        keyring: String,
    },
    #[error(
        "{url} expired at {valid_until} (Valid-Until) and apt's Acquire::Check-Valid-Until is on"
    )]
    ReleaseExpired { url: String, valid_until: String },
    #[error("{url} has a missing or unreadable `{field}` field")]
    ReleaseField { url: String, field: &'static str },
    #[error("the signed Release {url} lists no {path}")]
    ReleaseMissingIndex { url: String, path: String },
    #[error("{url} has sha256 {actual}, but {authority} says {expected}")]
    DigestMismatch {
        url: String,
        authority: String,
        expected: String,
        actual: String,
    },
    #[error(
        "the cached download {path} has sha256 {actual}, not {expected}: it was modified after it was verified"
    )]
    CorruptDownload {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("cannot read the cached download {path}")]
    ReadDownload {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("cannot decompress {what}")]
    Decompress {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the package index {url}")]
    ParseIndex {
        url: String,
        #[source]
        source: InvalidRecord,
    },
    #[error(transparent)]
    Resolve(Box<ResolveError>),
    #[error("cannot read the package {package}")]
    ReadDeb {
        package: String,
        #[source]
        source: io::Error,
    },
    #[error("the package {package} has an unreadable version in its control file")]
    ControlVersion {
        package: String,
        #[source]
        source: super::version::InvalidVersion,
    },
    #[error("the package {package} has no {member} member")]
    DebMissingMember {
        package: String,
        member: &'static str,
    },
    #[error("the package {package} contains {path}, a {kind}, which images cannot hold")]
    UnsupportedDebEntry {
        package: String,
        path: String,
        kind: String,
    },
    #[error("the package {package} contains a bad path")]
    DebPath {
        package: String,
        #[source]
        source: EntryPathError,
    },
    #[error("{path} is shipped differently by {first} and {second}")]
    FileConflict {
        path: String,
        first: String,
        second: String,
    },
    #[error("cannot read the builder {path}")]
    ReadBuilder {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot parse the builder {path}")]
    ParseBuilder {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("the builder {path} has no [stack] section with suites and run-image packages")]
    BuilderWithoutStack { path: PathBuf },
    #[error("cannot read the lock {path}")]
    ReadLock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot parse the lock {path}")]
    ParseLock {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("cannot serialize the lock")]
    SerializeLock {
        #[source]
        source: toml::ser::Error,
    },
    #[error("the lock {path} has no entry for {section} that matches the builder")]
    LockOutdated { path: PathBuf, section: String },
    #[error("the pinned package {package} {version} is no longer on the mirror ({url})")]
    PinnedPackageGone {
        package: String,
        version: String,
        url: String,
    },
    #[error("the CA certificate {path} is not valid PEM")]
    BadCertificate { path: String },
}

impl From<ResolveError> for StackError {
    fn from(error: ResolveError) -> Self {
        StackError::Resolve(Box::new(error))
    }
}

/// The fix for anything a lock or an old run image pins.
const UPDATE_HINT: &str = "re-resolve against fresh indexes with `kiln base build --update`";

impl Diagnose for StackError {
    fn class(&self) -> ErrorClass {
        match self {
            StackError::Cache(_)
            | StackError::ReadDownload { .. }
            | StackError::SerializeLock { .. } => ErrorClass::Internal,
            _ => ErrorClass::User,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            StackError::NoSourceForSuite { suite } | StackError::NoDebianSource { suite, .. } => format!(
                "set KILN_DEBIAN_MIRROR (URI, or {suite}=URI) or a `mirror` for {suite} in the builder's [[stack.suites]]"
            ),
            StackError::Fetch { .. } => {
                "check the network and the mirror (apt sources, KILN_DEBIAN_MIRROR)".to_owned()
            }
            StackError::BadSignature { .. } => {
                "check the mirror, or point KILN_DEBIAN_KEYRING at the keyring that signs it".to_owned()
            }
            StackError::ReleaseExpired { .. } => {
                "for a snapshot mirror set Acquire::Check-Valid-Until \"false\"; in /etc/apt/apt.conf.d/".to_owned()
            }
            StackError::CorruptDownload { path, .. } => {
                format!("delete {} and retry; kiln will download it again", path.display())
            }
            StackError::PinnedPackageGone { .. } | StackError::LockOutdated { .. } => UPDATE_HINT.to_owned(),
            StackError::Resolve(error) => match **error {
                ResolveError::RunImageTooOld { .. } => UPDATE_HINT.to_owned(),
                ResolveError::UnknownPackage { .. } => {
                    "check the package name, and that the builder's suites and component carry it".to_owned()
                }
                _ => return None,
            },
            _ => return None,
        })
    }
}
