//! Errors of the image side.

use std::io;
use std::path::PathBuf;

use super::digest::{Digest, InvalidDigest};

/// Everything that can go wrong reading, building or writing images.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("cannot read blob {digest} from {location}")]
    ReadBlob {
        location: String,
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error("cannot write a blob into {location}")]
    WriteBlob {
        location: String,
        #[source]
        source: io::Error,
    },
    #[error("blob {digest} in {location} is corrupt: its content hashes to {actual}")]
    DigestMismatch {
        location: String,
        digest: Digest,
        actual: Digest,
    },
    #[error("blob {digest} in {location} has {actual} bytes, but its descriptor says {expected}")]
    SizeMismatch {
        location: String,
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest} is missing from {location}")]
    MissingBlob { location: String, digest: Digest },
    #[error("{what} in {location} is not valid JSON")]
    ParseJson {
        location: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot serialize the {what}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} is not an OCI image layout (it has no `oci-layout` file)")]
    NotALayout { path: PathBuf },
    #[error("cannot read the OCI layout at {path}")]
    ReadLayout {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the OCI layout at {path}")]
    WriteLayout {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{location} has no image named `{tag}`")]
    TagNotFound {
        location: String,
        tag: String,
        available: Vec<String>,
    },
    #[error("{location} holds {count} images and none was named")]
    AmbiguousImage { location: String, count: usize },
    #[error("{location} holds no image")]
    EmptyIndex { location: String },
    #[error("{location} has no linux/amd64 image in its index")]
    NoMatchingPlatform { location: String },
    #[error("media type `{media_type}` in {location} is not supported")]
    UnsupportedMediaType {
        location: String,
        media_type: String,
    },
    #[error("{location} is invalid: {problem}")]
    InvalidImage { location: String, problem: String },
    #[error("bad digest in {location}")]
    BadDigest {
        location: String,
        #[source]
        source: InvalidDigest,
    },
    #[error("cannot read the archive {path}")]
    ReadArchive {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the archive {path}")]
    WriteArchive {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{reference}` is not an image reference: {problem}")]
    InvalidReference { reference: String, problem: String },
    #[error("cannot lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Result alias for the image side.
pub type Result<T, E = OciError> = std::result::Result<T, E>;
