//! The container's filesystem, set up by init inside the new user and mount namespaces.
//!
//! The run directory holds `lower` (a symlink to the cached rootfs), `upper`, `work` and
//! `merged`. Mount options name them relatively (init works from the run directory), so no
//! host path ever needs escaping into an option string. `/proc` and `/dev` are mounted below
//! `merged` (their mount points must be real directories, never symlinks), then `pivot_root`
//! and a detached old root: nothing of the host stays reachable, and every later path (tmp,
//! etc, the working dir) is resolved inside the image, symlinks included.
//!
//! `/sys` is not mounted: a user namespace may only mount sysfs for a network namespace it
//! owns, and the run shares the host's network. `/tmp` stays the image's own (writable
//! through the overlay), created 1777 if the image has none.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::{chdir, pivot_root};

use super::container::Launch;
use super::report::{Failure, Step};

/// Host devices a container gets (created as bind mounts: a user namespace cannot mknod).
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Why the copy fallback is used instead of an overlay, for the warning.
const OVERLAY_FALLBACK_NOTE: &str =
    "kiln: overlayfs is not available here; copying the root filesystem for this run";

/// Build the container's root and switch into it.
pub(super) fn prepare(launch: &Launch) -> Result<(), Failure> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|error| Failure::new(Step::MakeMountsPrivate, error, "/"))?;
    chdir(&launch.run_dir).map_err(|error| {
        Failure::new(
            Step::MountRootfs,
            error,
            launch.run_dir.display().to_string(),
        )
    })?;
    if launch.force_copy || mount_overlay().is_err() {
        if !launch.force_copy {
            // Straight to fd 2: std's stderr lock may have been held by another thread of
            // kiln when it forked, and would never be released in this process.
            let _ = nix::unistd::write(
                std::io::stderr(),
                format!("{OVERLAY_FALLBACK_NOTE}\n").as_bytes(),
            );
        }
        copy_tree(Path::new("lower/."), Path::new("copy"))
            .map_err(|error| Failure::new(Step::CopyRootfs, error, ""))?;
        mount(
            Some("copy"),
            "merged",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|error| Failure::new(Step::MountRootfs, error, "bind"))?;
    }
    // proc must be mounted while the host's /proc is still visible in this namespace: the
    // kernel only lets a user namespace mount a proc that is already fully visible to it.
    ensure_dir("merged/proc", 0o555)
        .map_err(|error| Failure::new(Step::MountProc, error, "/proc"))?;
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("proc"),
        "merged/proc",
        Some("proc"),
        hardened,
        None::<&str>,
    )
    .map_err(|error| Failure::new(Step::MountProc, error, "/proc"))?;
    setup_dev("merged/dev")
        .map_err(|(error, detail)| Failure::new(Step::MountDev, error, detail))?;

    let switch = |error: Errno| Failure::new(Step::PivotRoot, error, "");
    chdir("merged").map_err(switch)?;
    // Stack the old root on the new one and detach it: no put_old directory in the image.
    pivot_root(".", ".").map_err(switch)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(switch)?;
    chdir("/").map_err(switch)?;

    if fs::symlink_metadata("/tmp").is_err() {
        // Best effort: an image without /tmp simply gets one.
        let _ = fs::create_dir("/tmp")
            .and_then(|()| fs::set_permissions("/tmp", fs::Permissions::from_mode(0o1777)));
    }
    if Path::new("/etc").is_dir() {
        for (path, content) in &launch.etc_files {
            // Best effort, as Docker: resolution and hosts from the host, the network is shared.
            // A symlink there is replaced, not written through.
            let _ = fs::remove_file(path);
            let _ = fs::write(path, content);
        }
    }
    // Docker creates a missing working directory; entering it is checked by the app process.
    let _ = fs::create_dir_all(&launch.working_dir);
    Ok(())
}

fn mount_overlay() -> nix::Result<()> {
    let options = "lowerdir=lower,upperdir=upper,workdir=work";
    // `userxattr` keeps overlay metadata in user.* xattrs, which an unprivileged mounter can
    // write; kernels before 5.11 do not know the option.
    mount(
        Some("overlay"),
        "merged",
        Some("overlay"),
        MsFlags::empty(),
        Some(format!("{options},userxattr").as_str()),
    )
    .or_else(|_| {
        mount(
            Some("overlay"),
            "merged",
            Some("overlay"),
            MsFlags::empty(),
            Some(options),
        )
    })
}

/// A tmpfs `/dev` at `dev` (a path below the new root, before the switch) with the host's
/// harmless devices bind-mounted, the usual links, `/dev/shm` and, when allowed, `/dev/pts`.
fn setup_dev(dev: &str) -> Result<(), (Errno, String)> {
    ensure_dir(dev, 0o755).map_err(io_at(dev))?;
    mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .map_err(at(dev))?;
    for name in DEVICES {
        let source = format!("/dev/{name}");
        if fs::metadata(&source).is_err() {
            continue;
        }
        let target = format!("{dev}/{name}");
        fs::File::create(&target).map_err(io_at(&target))?;
        mount(
            Some(source.as_str()),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(at(&target))?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let link = format!("{dev}/{link}");
        symlink(target, &link).map_err(io_at(&link))?;
    }
    let shm = format!("{dev}/shm");
    ensure_dir(&shm, 0o1777).map_err(io_at(&shm))?;
    mount(
        Some("shm"),
        shm.as_str(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777,size=65536k"),
    )
    .map_err(at(&shm))?;
    let pts = format!("{dev}/pts");
    ensure_dir(&pts, 0o755).map_err(io_at(&pts))?;
    // Optional: some kernels refuse devpts in a user namespace; only pseudo-terminals need it.
    let _ = mount(
        Some("devpts"),
        pts.as_str(),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    );
    Ok(())
}

fn at(path: &str) -> impl FnOnce(Errno) -> (Errno, String) + '_ {
    move |error| (error, path.to_owned())
}

fn io_at(path: &str) -> impl FnOnce(io::Error) -> (Errno, String) + '_ {
    move |error| {
        (
            Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO)),
            path.to_owned(),
        )
    }
}

/// Make sure `path` is a directory; a symlink there is refused (mount targets are resolved
/// on the host before the switch, where a link could point anywhere).
fn ensure_dir(path: &str, mode: u32) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::from(Errno::ENOTDIR)),
        Err(_) => {
            fs::create_dir_all(path)?;
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
        }
    }
}

/// Copy a tree (files, directories, symlinks, modes), for kernels without unprivileged
/// overlayfs. Hard links become copies; special files are skipped.
fn copy_tree(source: &Path, target: &Path) -> io::Result<()> {
    let metadata = fs::symlink_metadata(source)?;
    let file_type = metadata.file_type();
    if file_type.is_symlink() {
        symlink(fs::read_link(source)?, target)
    } else if file_type.is_dir() {
        fs::create_dir(target)?;
        fs::set_permissions(target, fs::Permissions::from_mode(0o700))?;
        for entry in fs::read_dir(source)? {
            let entry = entry?;
            copy_tree(&entry.path(), &target.join(entry.file_name()))?;
        }
        fs::set_permissions(target, metadata.permissions())
    } else if file_type.is_file() {
        fs::copy(source, target).map(drop)
    } else {
        Ok(())
    }
}
