//! Errors of the distribution client.
//!
//! The outer enum names the operation that failed and the reference, repository or digest it
//! concerned; the HTTP-level cause ([`RequestError`]) sits in `#[source]` so the renderer prints
//! "cannot push blob … → 127.0.0.1:5000 answered 401 …" and picks the hint from the cause.

use std::io;
use std::path::PathBuf;

use crate::diagnostic::{Diagnose, ErrorClass};
use crate::oci::{Digest, OciError};

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("`{reference}` is not an image reference: {problem}")]
    InvalidReference { reference: String, problem: String },
    #[error("cannot read the Docker config {path}")]
    ReadDockerConfig {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the Docker config {path} is not valid JSON")]
    ParseDockerConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("KILN_REGISTRY_AUTH is not a JSON object of registry → Authorization header")]
    ParseRegistryAuthEnv {
        #[source]
        source: serde_json::Error,
    },
    #[error("the credential for {registry} in {origin} is malformed: {problem}")]
    MalformedCredential {
        registry: String,
        origin: String,
        problem: &'static str,
    },
    #[error("credential helper `docker-credential-{helper}` failed for {registry}: {problem}")]
    CredentialHelper {
        helper: String,
        registry: String,
        problem: String,
    },
    #[error("cannot read the registry CA file {path}")]
    ReadCa {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the registry CA file {path} holds no usable PEM certificate")]
    InvalidCa { path: PathBuf },
    #[error("cannot get the manifest of {reference}")]
    GetManifest {
        reference: String,
        #[source]
        source: Box<RequestError>,
    },
    #[error("the manifest of {reference} hashes to {actual}, not {expected}")]
    ManifestDigestMismatch {
        reference: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "{reference} has media type `{media_type}`, which is not an image manifest or index kiln reads"
    )]
    UnsupportedManifest {
        reference: String,
        media_type: String,
    },
    #[error("the manifest of {reference} is not valid JSON")]
    ParseManifest {
        reference: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the index {reference} has no linux/amd64 image")]
    NoMatchingPlatform { reference: String },
    #[error("cannot pull blob {digest} from {repository}")]
    PullBlob {
        repository: String,
        digest: Digest,
        #[source]
        source: Box<RequestError>,
    },
    #[error("blob {digest} pulled from {repository} does not match its digest")]
    PulledBlobCorrupt {
        repository: String,
        digest: Digest,
        #[source]
        source: Box<OciError>,
    },
    #[error("cannot store blob {digest} pulled from {repository}")]
    StoreBlob {
        repository: String,
        digest: Digest,
        #[source]
        source: Box<OciError>,
    },
    #[error("cannot check whether {repository} has blob {digest}")]
    CheckBlob {
        repository: String,
        digest: Digest,
        #[source]
        source: Box<RequestError>,
    },
    #[error("cannot mount blob {digest} from {from_repository} into {repository}")]
    MountBlob {
        repository: String,
        from_repository: String,
        digest: Digest,
        #[source]
        source: Box<RequestError>,
    },
    #[error("cannot upload blob {digest} to {repository}")]
    UploadBlob {
        repository: String,
        digest: Digest,
        #[source]
        source: Box<RequestError>,
    },
    #[error("cannot read blob {digest} to upload it")]
    ReadUploadSource {
        digest: Digest,
        #[source]
        source: Box<OciError>,
    },
    #[error("the registry stored blob {digest} in {repository} as {actual}")]
    UploadedDigestMismatch {
        repository: String,
        digest: Digest,
        actual: String,
    },
    #[error("cannot put the manifest of {reference}")]
    PutManifest {
        reference: String,
        #[source]
        source: Box<RequestError>,
    },
    #[error("the registry stored the manifest of {reference} as {actual}, not {expected}")]
    PutManifestDigestMismatch {
        reference: String,
        expected: Digest,
        actual: String,
    },
}

/// What went wrong with one HTTP exchange (after retries).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("the TLS certificate of {host} is not trusted ({detail})")]
    Certificate { host: String, detail: String },
    #[error("TLS with {host} failed")]
    Tls {
        host: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("cannot reach {url} (after {attempts} attempts)")]
    Transport {
        url: String,
        attempts: u32,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("{registry} refused the credentials for {scope} (HTTP {status}{})", message_suffix(.message))]
    Unauthorized {
        registry: String,
        scope: String,
        status: u16,
        message: Option<String>,
        /// Whether any credential was offered.
        had_credentials: bool,
    },
    #[error("{registry} denied access to {scope} (HTTP 403{})", message_suffix(.message))]
    Denied {
        registry: String,
        scope: String,
        message: Option<String>,
        had_credentials: bool,
    },
    #[error("{what} was not found at {url}{}", message_suffix(.message))]
    NotFound {
        what: String,
        url: String,
        message: Option<String>,
    },
    #[error("{url} answered HTTP {status}{} (after {attempts} attempts)", message_suffix(.message))]
    Status {
        url: String,
        status: u16,
        message: Option<String>,
        attempts: u32,
    },
    #[error("{url} answered without the `{header}` header the protocol requires")]
    MissingHeader { url: String, header: &'static str },
    #[error("cannot get a token from {realm} (HTTP {status})")]
    TokenRefused { realm: String, status: u16 },
    #[error("the token endpoint {realm} answered something that is not a token")]
    TokenInvalid { realm: String },
    #[error("cannot read the body of {url}")]
    ReadBody {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("{url} answered with a body over the {limit}-byte limit")]
    BodyTooLarge { url: String, limit: u64 },
    #[error("{url} is not a usable URL")]
    BadUrl { url: String },
    #[error("cannot read the local blob being uploaded")]
    ReadLocalBlob {
        #[source]
        source: OciError,
    },
}

fn message_suffix(message: &Option<String>) -> String {
    message
        .as_ref()
        .map(|message| format!(": {message}"))
        .unwrap_or_default()
}

impl RegistryError {
    /// The HTTP-level cause, when the failure came from an exchange with a registry.
    pub fn request_error(&self) -> Option<&RequestError> {
        match self {
            RegistryError::GetManifest { source, .. }
            | RegistryError::PullBlob { source, .. }
            | RegistryError::CheckBlob { source, .. }
            | RegistryError::MountBlob { source, .. }
            | RegistryError::UploadBlob { source, .. }
            | RegistryError::PutManifest { source, .. } => Some(source),
            _ => None,
        }
    }

    /// Whether the registry said the manifest, blob or repository does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self.request_error(), Some(RequestError::NotFound { .. }))
    }
}

impl Diagnose for RegistryError {
    fn class(&self) -> ErrorClass {
        match self {
            // Our own bookkeeping failing (the local store) is kiln's problem; everything else is
            // the registry, the network, the credentials or the input.
            RegistryError::StoreBlob { .. } | RegistryError::ReadUploadSource { .. } => {
                ErrorClass::Internal
            }
            _ => ErrorClass::User,
        }
    }

    fn hint(&self) -> Option<String> {
        if let Some(cause) = self.request_error() {
            return cause.hint();
        }
        match self {
            RegistryError::ParseRegistryAuthEnv { .. } => {
                Some(r#"KILN_REGISTRY_AUTH looks like {"registry.example": "Basic <base64 user:password>"}"#.to_owned())
            }
            RegistryError::CredentialHelper { helper, .. } => Some(format!(
                "check that docker-credential-{helper} is on PATH and works, or remove it from the Docker config"
            )),
            RegistryError::InvalidCa { .. } => Some("--registry-ca expects a PEM file with one or more certificates".to_owned()),
            RegistryError::NoMatchingPlatform { .. } => Some("kiln builds linux/amd64 images only for now".to_owned()),
            _ => None,
        }
    }
}

impl RequestError {
    /// One line telling the user how to fix it, when known.
    pub fn hint(&self) -> Option<String> {
        match self {
            RequestError::Certificate { host, .. } | RequestError::Tls { host, .. } => {
                Some(format!(
                    "if {host} uses a private CA, pass its certificate with --registry-ca FILE (or --insecure-registry {host} for a plain-HTTP registry)"
                ))
            }
            RequestError::Unauthorized {
                registry,
                had_credentials,
                ..
            }
            | RequestError::Denied {
                registry,
                had_credentials,
                ..
            } => Some(if *had_credentials {
                format!(
                    "the credentials kiln found for {registry} were rejected: run `docker login {registry}` again, check DOCKER_CONFIG or KILN_REGISTRY_AUTH, and that the account may access this repository"
                )
            } else {
                format!(
                    "kiln found no credentials for {registry}: run `docker login {registry}`, point DOCKER_CONFIG at a directory whose config.json has them, or set KILN_REGISTRY_AUTH"
                )
            }),
            RequestError::Transport { url, .. } if url.starts_with("https://") => Some(
                "if this registry speaks plain HTTP, name it with --insecure-registry HOST[:PORT]"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}
