//! Errors of the runner, and the exit codes they stand for.

use std::io;
use std::path::PathBuf;

use super::idmap::UsernsBlocker;
use crate::cache::CacheError;
use crate::diagnostic::{Diagnose, ErrorClass};
use crate::oci::{Digest, OciError};

/// Exit code when kiln fails before the app starts (as `docker run` uses it).
pub const EXIT_RUNNER_FAILED: i32 = 125;
/// Exit code when the command exists but cannot be executed.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// Exit code when the command does not exist in the image.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Everything that can go wrong before or while starting an image. Once the app runs, its own
/// exit code is the result, never an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("layer {digest} has media type `{media_type}`, which kiln cannot unpack")]
    UnsupportedLayerMediaType { digest: Digest, media_type: String },
    #[error("cannot open layer {digest}")]
    OpenLayer {
        digest: Digest,
        #[source]
        source: OciError,
    },
    #[error("cannot read layer {digest}")]
    ReadLayer {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error("layer {digest} unpacks to diff_id {actual}, but the image config says {expected}")]
    DiffIdMismatch {
        digest: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("layer {digest} has an entry that points outside the root filesystem: {path}")]
    UnsafeLayerEntry { digest: Digest, path: String },
    #[error("cannot write {path} into the root filesystem")]
    WriteRootfs {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot create hard link {path} to {target}")]
    HardLink {
        path: String,
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot prepare kiln's cache for the run")]
    PrepareCache {
        #[source]
        source: CacheError,
    },
    #[error("cannot store the unpacked root filesystem at {path}")]
    StoreRootfs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot prepare the run directory {path}")]
    PrepareRunDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path} in the image")]
    ReadImageFile {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("user `{user}` is not in the image's /etc/passwd")]
    UnknownUser { user: String },
    #[error("group `{group}` is not in the image's /etc/group")]
    UnknownGroup { group: String },
    #[error("`{user}` is not a valid image user (expected user, uid, user:group or uid:gid)")]
    InvalidUser { user: String },
    #[error("process type `{process_type}` is not in the image (no /cnb/process/{process_type})")]
    UnknownProcessType {
        process_type: String,
        available: Vec<String>,
    },
    #[error("`{process_type}` is not a valid process type")]
    InvalidProcessType { process_type: String },
    #[error("the image has no Entrypoint or Cmd and no command was given")]
    NoCommand,
    #[error("{what} contains a NUL byte: {value:?}")]
    NulByte { what: &'static str, value: String },
    #[error("cannot read env file {path}")]
    ReadEnvFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}:{line}: `{text}` is not a variable name or assignment")]
    InvalidEnvFileLine {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("`{text}` is not a variable assignment (expected NAME=VALUE or NAME)")]
    InvalidEnvAssignment { text: String },
    #[error("cannot create a user namespace: {blocker}")]
    UserNamespace {
        blocker: UsernsBlocker,
        #[source]
        source: io::Error,
    },
    #[error("cannot map the image user into the user namespace ({path})")]
    WriteIdMap {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{tool}` could not map the subordinate ids: {detail}")]
    IdMapTool { tool: &'static str, detail: String },
    #[error("cannot start the container process")]
    Spawn {
        #[source]
        source: io::Error,
    },
    #[error("cannot set up the container: {step}")]
    ContainerSetup {
        step: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot enter the working directory {dir}")]
    WorkingDir {
        dir: String,
        #[source]
        source: io::Error,
    },
    #[error("command not found in the image: {command}")]
    CommandNotFound { command: String },
    #[error("command cannot be executed: {command}")]
    CommandNotExecutable {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("lost track of the container process")]
    Wait {
        #[source]
        source: io::Error,
    },
}

impl RunError {
    /// The process exit code that stands for this error: [`EXIT_NOT_FOUND`],
    /// [`EXIT_NOT_EXECUTABLE`], else [`EXIT_RUNNER_FAILED`]. They follow `docker run`.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::CommandNotFound { .. } => EXIT_NOT_FOUND,
            RunError::CommandNotExecutable { .. } => EXIT_NOT_EXECUTABLE,
            _ => EXIT_RUNNER_FAILED,
        }
    }
}

impl Diagnose for RunError {
    fn class(&self) -> ErrorClass {
        match self {
            RunError::UnsupportedLayerMediaType { .. }
            | RunError::DiffIdMismatch { .. }
            | RunError::UnsafeLayerEntry { .. }
            | RunError::HardLink { .. }
            | RunError::UnknownUser { .. }
            | RunError::UnknownGroup { .. }
            | RunError::InvalidUser { .. }
            | RunError::UnknownProcessType { .. }
            | RunError::InvalidProcessType { .. }
            | RunError::NoCommand
            | RunError::NulByte { .. }
            | RunError::ReadEnvFile { .. }
            | RunError::InvalidEnvFileLine { .. }
            | RunError::InvalidEnvAssignment { .. }
            | RunError::UserNamespace { .. }
            | RunError::WriteIdMap { .. }
            | RunError::IdMapTool { .. }
            | RunError::WorkingDir { .. }
            | RunError::CommandNotFound { .. }
            | RunError::CommandNotExecutable { .. } => ErrorClass::User,
            RunError::OpenLayer { .. }
            | RunError::ReadLayer { .. }
            | RunError::WriteRootfs { .. }
            | RunError::PrepareCache { .. }
            | RunError::StoreRootfs { .. }
            | RunError::PrepareRunDir { .. }
            | RunError::ReadImageFile { .. }
            | RunError::Spawn { .. }
            | RunError::ContainerSetup { .. }
            | RunError::Wait { .. } => ErrorClass::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            RunError::UnknownProcessType { available, .. } if available.is_empty() => {
                Some("this image declares no process types (it has no /cnb/process directory)".to_owned())
            }
            RunError::UnknownProcessType { available, .. } => {
                Some(format!("process types in this image: {}", available.join(", ")))
            }
            RunError::NoCommand => Some("pass the command to run after `--`".to_owned()),
            RunError::CommandNotFound { .. } => Some(
                "check the image's Entrypoint/Cmd or the command after `--`; a command without `/` is looked \
                 up in the image's PATH, and a script's interpreter must exist in the image too"
                    .to_owned(),
            ),
            RunError::CommandNotExecutable { .. } => {
                Some("the file must be a regular file with execute permission and a valid executable format".to_owned())
            }
            RunError::UnsafeLayerEntry { .. } => Some(
                "the layer was crafted to write outside the image's root filesystem; do not run this image".to_owned(),
            ),
            RunError::DiffIdMismatch { .. } => {
                Some("the stored image is corrupt or its config lies about its layers; pull or build it again".to_owned())
            }
            RunError::UserNamespace { blocker, .. } => Some(blocker.remedy()),
            RunError::IdMapTool { .. } | RunError::WriteIdMap { .. } => Some(
                "check the caller's ranges in /etc/subuid and /etc/subgid (or remove them to map only your own uid)"
                    .to_owned(),
            ),
            RunError::UnknownUser { .. } | RunError::UnknownGroup { .. } => {
                Some("use a numeric uid:gid, or add the user to the image".to_owned())
            }
            _ => None,
        }
    }
}
