//! `kiln run`: run any OCI image rootless, without a daemon or an OCI runtime.
//!
//! 1. The layers are unpacked once into the rootfs cache (`rootfs::ensure`), safely: no entry
//!    can land outside the rootfs, whiteouts are applied, device nodes skipped.
//! 2. A per-run directory gets an overlay (the cached rootfs stays read-only underneath; a
//!    copy when the kernel has no unprivileged overlayfs) and is removed after the run.
//! 3. The command starts in new user, mount, pid, uts and ipc namespaces (`container`), as
//!    the image user, with the image's env, working dir and Entrypoint/Cmd. The network is the
//!    host's: there is no port mapping, an app listening on 8080 listens on the host's 8080.
//!
//! Ownership: files in the rootfs belong to the caller, and the caller's uid/gid are mapped
//! to the image user's, so the app owns its files whoever runs kiln (root or not). See
//! `idmap` for subordinate ranges.
//!
//! Exit codes, as `docker run`: [`run`] returns the app's exit code (128+n when a signal n
//! killed it); a [`RunError`] maps to 125 when kiln failed before the app started, 126 when the
//! command cannot be executed, 127 when it does not exist ([`RunError::exit_code`]).
#![deny(unsafe_code)]

mod command;
mod container;
mod env;
mod error;
mod idmap;
mod inroot;
mod mounts;
mod report;
mod rootfs;
mod signals;
mod sys;
mod unpack;
mod user;

use std::ffi::CString;
use std::path::Path;

pub use command::RunCommand;
pub use env::{parse_env_assignment, parse_env_file};
pub use error::{EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_RUNNER_FAILED, RunError};
pub use idmap::UsernsBlocker;
pub use inroot::remove_tree;

use crate::cache::{Cache, GC_LOCK};
use crate::layer::WrittenLayer;
use crate::oci::{BlobStore, Digest};
use container::Launch;
use idmap::IdMaps;
use inroot::Root;
use rootfs::ScratchDir;

/// Environment variable forcing the copy fallback instead of overlayfs (`copy`), for
/// troubleshooting kernels whose overlayfs misbehaves.
pub const ROOTFS_MODE_VAR: &str = "KILN_RUN_ROOTFS";

/// One layer of the image to run, its blob in [`RunSpec::blobs`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunLayer {
    /// Digest of the (possibly compressed) blob.
    pub digest: Digest,
    /// Digest of the uncompressed tar, checked while unpacking.
    pub diff_id: Digest,
    /// Layer media type (OCI or Docker; plain, gzip or zstd tar).
    pub media_type: String,
}

impl From<&WrittenLayer> for RunLayer {
    fn from(layer: &WrittenLayer) -> Self {
        Self {
            digest: layer.digest.clone(),
            diff_id: layer.diff_id.clone(),
            media_type: layer.media_type.clone(),
        }
    }
}

/// An image and how to run it.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Layers, base first.
    pub layers: Vec<RunLayer>,
    /// Where the layer blobs are.
    pub blobs: BlobStore,
    /// The image config (Env, Entrypoint, Cmd, WorkingDir, User).
    pub config: oci_spec::image::ImageConfiguration,
    /// What to run.
    pub command: RunCommand,
    /// Variables overriding the image's (`-e`, `--env-file`), in order.
    pub env: Vec<(String, String)>,
}

/// Run the image in the foreground and return the app's exit code. stdio is shared with the
/// caller; SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 and SIGWINCH are forwarded to the app
/// while it runs.
pub fn run(cache: &Cache, spec: &RunSpec) -> Result<i32, RunError> {
    // Held shared for the whole run so `kiln cache prune` never removes the rootfs under us.
    let _gc = cache
        .lock_shared(GC_LOCK)
        .map_err(|source| RunError::PrepareCache { source })?;
    let rootfs = rootfs::ensure(cache, &spec.layers, &spec.blobs)?;
    let run_dir = ScratchDir::new(
        cache
            .temp_dir("run")
            .map_err(|source| RunError::PrepareCache { source })?
            .keep(),
    );
    let launch = prepare_launch(spec, &rootfs, run_dir.path())?;
    container::launch(&launch)
}

fn prepare_launch(spec: &RunSpec, rootfs: &Path, run_dir: &Path) -> Result<Launch, RunError> {
    let root = Root::open(rootfs).map_err(|source| RunError::ReadImageFile {
        path: "/".to_owned(),
        source,
    })?;
    let config = spec.config.config().clone().unwrap_or_default();
    let user_spec = config.user().clone().unwrap_or_default();
    let passwd = user::read_image_file(&root, "/etc/passwd")?;
    let group = user::read_image_file(&root, "/etc/group")?;
    let image_user = user::resolve(&user_spec, &passwd, &group)?;
    let argv = command::argv(
        &spec.command,
        config.entrypoint().as_deref().unwrap_or_default(),
        config.cmd().as_deref().unwrap_or_default(),
        &root,
    )?;
    let env = env::merge(
        config.env().as_deref().unwrap_or_default(),
        &spec.env,
        &image_user.home,
    );
    let working_dir = match config.working_dir().as_deref() {
        Some(dir) if dir.starts_with('/') => dir.to_owned(),
        Some(dir) if !dir.is_empty() => format!("/{dir}"),
        _ => "/".to_owned(),
    };
    let path_value = env
        .iter()
        .find_map(|entry| entry.strip_prefix("PATH="))
        .unwrap_or(env::DEFAULT_PATH);
    let program = &argv[0];
    let candidates: Vec<String> = if program.contains('/') {
        vec![program.clone()]
    } else {
        path_value
            .split(':')
            .map(|dir| if dir.is_empty() { "." } else { dir })
            .map(|dir| format!("{}/{program}", dir.trim_end_matches('/')))
            .collect()
    };

    let prepare_error = |source: std::io::Error| RunError::PrepareRunDir {
        path: run_dir.to_path_buf(),
        source,
    };
    for name in ["upper", "work", "merged"] {
        fs_err::create_dir(run_dir.join(name)).map_err(prepare_error)?;
    }
    fs_err::os::unix::fs::symlink(rootfs, run_dir.join("lower")).map_err(prepare_error)?;
    let etc_files = ["/etc/hosts", "/etc/resolv.conf"]
        .into_iter()
        .filter_map(|path| Some((path.to_owned(), fs_err::read(path).ok()?)))
        .collect();
    Ok(Launch {
        run_dir: run_dir.to_path_buf(),
        argv: c_strings("argument", argv)?,
        env: c_strings("environment variable", env)?,
        program_candidates: c_strings("command path", candidates)?,
        working_dir,
        id_maps: IdMaps::plan(image_user.uid, image_user.gid),
        etc_files,
        force_copy: std::env::var(ROOTFS_MODE_VAR).is_ok_and(|mode| mode == "copy"),
    })
}

fn c_strings(what: &'static str, values: Vec<String>) -> Result<Vec<CString>, RunError> {
    values
        .into_iter()
        .map(|value| {
            CString::new(value).map_err(|error| RunError::NulByte {
                what,
                value: String::from_utf8_lossy(&error.into_vec()).into_owned(),
            })
        })
        .collect()
}
