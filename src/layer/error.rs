//! Errors of layer creation.

use std::io;
use std::path::PathBuf;

use super::entry::EntryPathError;
use crate::oci::OciError;

/// Everything that can go wrong turning files into a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot list {path}")]
    Walk {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} changed size while it was being archived")]
    FileChanged { path: PathBuf },
    #[error("cannot write the layer archive")]
    WriteTar {
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Path(#[from] EntryPathError),
    #[error(transparent)]
    Blob(#[from] OciError),
}
