//! Starting the container: four processes, each with one job.
//!
//! ```text
//! kiln (caller)       forks the creator, writes its id maps, forwards signals, waits
//!  └ creator          unshares user+mount+pid+uts+ipc namespaces, waits for its maps, forks init
//!     └ init (pid 1)  mounts the rootfs, proc and dev, pivots, forks the app, reaps orphans
//!        └ app        enters the working dir and execs the command
//! ```
//!
//! The creator exists because `unshare(CLONE_NEWUSER)` refuses multithreaded callers (a
//! library caller may have threads; a fresh fork has one), and because the pid namespace only
//! applies to children. kiln writes the maps from outside since `newuidmap` must run in the
//! parent namespace. Each supervisor forwards signals one level down and exits with its
//! child's code, so the app's exit code (128+n when killed by signal n) reaches the caller.
//! When init exits the kernel kills whatever is left in the pid namespace; a dying parent
//! takes its child along (`PR_SET_PDEATHSIG`), so no part outlives kiln.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{Pid, chdir, execve, pipe2, read, setgroups, setsid, write};

use super::error::{EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_RUNNER_FAILED, RunError};
use super::idmap::{IdMaps, UsernsBlocker};
use super::mounts;
use super::report::{Failure, Step};
use super::signals::{self, BlockedSignals, ChildSupervisor, Forwarder};
use super::sys::{self, Forked};

/// Everything the processes of a run need, prepared before the first fork.
#[derive(Debug)]
pub(super) struct Launch {
    /// Holds `lower` (symlink to the cached rootfs), `upper`, `work`, `merged`.
    pub run_dir: PathBuf,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// Where to look for `argv[0]`: itself when it has a `/`, else each `PATH` entry.
    pub program_candidates: Vec<CString>,
    pub working_dir: String,
    pub id_maps: IdMaps,
    /// Files written into the image's `/etc` (hosts, resolv.conf).
    pub etc_files: Vec<(String, Vec<u8>)>,
    /// Copy the rootfs instead of trying overlayfs.
    pub force_copy: bool,
}

/// Start the run and wait for it; the app's exit code.
pub(super) fn launch(launch: &Launch) -> Result<i32, RunError> {
    let spawn_error = |source: io::Error| RunError::Spawn { source };
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|error| spawn_error(error.into()));
    let (report_read, report_write) = pipe()?;
    let (ready_read, ready_write) = pipe()?;
    let (go_read, go_write) = pipe()?;
    let forwarder = Forwarder::install().map_err(spawn_error)?;
    let blocked = BlockedSignals::block().map_err(spawn_error)?;
    let creator_pid = match sys::fork().map_err(spawn_error)? {
        Forked::Child => {
            drop((report_read, ready_read, go_write));
            in_child(|| creator(launch, report_write, ready_write, go_read))
        }
        Forked::Parent(pid) => pid,
    };
    drop(blocked);
    drop((report_write, ready_write, go_read));

    if read_byte(&ready_read) != Some(1) {
        return Err(collect_failure(creator_pid, report_read, launch));
    }
    if let Err(error) = launch.id_maps.apply(creator_pid) {
        let _ = kill(creator_pid, Signal::SIGKILL);
        let _ = waitpid(creator_pid, None);
        return Err(error);
    }
    write(&go_write, &[1]).map_err(|error| spawn_error(error.into()))?;
    drop(go_write);
    // The pipe closes without a record once the app's execve succeeded.
    let mut record = Vec::new();
    std::fs::File::from(report_read)
        .read_to_end(&mut record)
        .map_err(spawn_error)?;
    if let Some(failure) = Failure::decode(&record) {
        let _ = waitpid(creator_pid, None);
        return Err(failure_error(failure, launch));
    }
    forwarder
        .supervise(creator_pid)
        .map_err(|source| RunError::Wait { source })
}

/// Run `body` in a forked child and leave with its code; a panic must never unwind into the
/// frames the child inherited from its parent.
fn in_child(body: impl FnOnce() -> i32) -> ! {
    let code = std::panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(EXIT_RUNNER_FAILED);
    sys::exit_immediately(code)
}

fn read_byte(fd: &OwnedFd) -> Option<u8> {
    let mut byte = [0u8];
    loop {
        match read(fd, &mut byte) {
            Ok(1) => return Some(byte[0]),
            Err(Errno::EINTR) => continue,
            _ => return None,
        }
    }
}

fn collect_failure(creator_pid: Pid, report_read: OwnedFd, launch: &Launch) -> RunError {
    let mut record = Vec::new();
    let _ = std::fs::File::from(report_read).read_to_end(&mut record);
    let _ = waitpid(creator_pid, None);
    match Failure::decode(&record) {
        Some(failure) => failure_error(failure, launch),
        None => RunError::Spawn {
            source: io::Error::other("the namespace creator exited before reporting"),
        },
    }
}

fn failure_error(failure: Failure, launch: &Launch) -> RunError {
    let command = || {
        launch
            .argv
            .first()
            .map(|arg| arg.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    match failure.step {
        Step::Unshare => RunError::UserNamespace {
            blocker: UsernsBlocker::diagnose(&failure.error),
            source: failure.error,
        },
        Step::Exec if failure.error.raw_os_error() == Some(libc::ENOENT) => {
            RunError::CommandNotFound { command: command() }
        }
        Step::Exec => RunError::CommandNotExecutable {
            command: command(),
            source: failure.error,
        },
        Step::WorkingDir => RunError::WorkingDir {
            dir: launch.working_dir.clone(),
            source: failure.error,
        },
        step => RunError::ContainerSetup {
            step: if failure.detail.is_empty() {
                step.to_string()
            } else {
                format!("{step} ({})", failure.detail)
            },
            source: failure.error,
        },
    }
}

fn creator(launch: &Launch, report: OwnedFd, ready: OwnedFd, go: OwnedFd) -> i32 {
    let _ = prctl::set_pdeathsig(Signal::SIGKILL);
    // Descriptors of concurrent runs in the caller (their report pipes) must not be kept
    // open by this run's long-lived processes, or those runs would wait for this one.
    let _ = sys::close_fds_except(&[report.as_raw_fd(), ready.as_raw_fd(), go.as_raw_fd()]);
    let supervisor = match ChildSupervisor::setup() {
        Ok(supervisor) => supervisor,
        Err(error) => return fail(&report, Failure::new(Step::Signals, error, "")),
    };
    // Leave kiln's session: a terminal's Ctrl-C reaches kiln, which forwards it once.
    let _ = setsid();
    let namespaces = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if let Err(error) = unshare(namespaces) {
        return fail(&report, Failure::new(Step::Unshare, error, ""));
    }
    if write(&ready, &[1]).is_err() {
        return EXIT_RUNNER_FAILED;
    }
    drop(ready);
    if read_byte(&go) != Some(1) {
        return EXIT_RUNNER_FAILED; // kiln could not write the maps and says why itself
    }
    let init_pid = match fork_blocked() {
        Ok(Forked::Child) => in_child(|| init(launch, report)),
        Ok(Forked::Parent(pid)) => pid,
        Err(error) => return fail(&report, Failure::new(Step::Fork, error, "init")),
    };
    drop(report);
    supervisor
        .supervise(init_pid, false)
        .unwrap_or(EXIT_RUNNER_FAILED)
}

fn init(launch: &Launch, report: OwnedFd) -> i32 {
    let _ = prctl::set_pdeathsig(Signal::SIGKILL);
    let supervisor = match ChildSupervisor::setup() {
        Ok(supervisor) => supervisor,
        Err(error) => return fail(&report, Failure::new(Step::Signals, error, "")),
    };
    if let Err(failure) = mounts::prepare(launch) {
        return fail(&report, failure);
    }
    let app_pid = match fork_blocked() {
        Ok(Forked::Child) => in_child(|| app(launch, report)),
        Ok(Forked::Parent(pid)) => pid,
        Err(error) => return fail(&report, Failure::new(Step::Fork, error, "app")),
    };
    drop(report);
    supervisor
        .supervise(app_pid, true)
        .unwrap_or(EXIT_RUNNER_FAILED)
}

fn app(launch: &Launch, report: OwnedFd) -> i32 {
    signals::reset_for_exec();
    if launch.id_maps.setgroups_allowed() {
        // Drop the caller's supplementary groups: they mean nothing in the image.
        let _ = setgroups(&[]);
    }
    if let Err(error) = chdir(launch.working_dir.as_str()) {
        return fail(
            &report,
            Failure::new(Step::WorkingDir, error, launch.working_dir.clone()),
        );
    }
    // Only stdio goes to the app; our report pipe closes on exec like every other descriptor.
    let _ = sys::cloexec_from(3);
    let mut last_error = Errno::ENOENT;
    for candidate in &launch.program_candidates {
        let Err(error) = execve(candidate, &launch.argv, &launch.env);
        // Keep looking past missing entries, as execvp does; remember a real refusal.
        if !matches!(error, Errno::ENOENT | Errno::ENOTDIR) || last_error == Errno::ENOENT {
            last_error = error;
        }
    }
    let code = if last_error == Errno::ENOENT {
        EXIT_NOT_FOUND
    } else {
        EXIT_NOT_EXECUTABLE
    };
    Failure::new(Step::Exec, last_error, "").send(&report);
    code
}

/// Fork with the forwarded signals blocked; the child keeps them blocked until its own
/// supervisor is in place (a signal meanwhile would land in the parent's pipe).
fn fork_blocked() -> io::Result<Forked> {
    let blocked = BlockedSignals::block()?;
    let forked = sys::fork();
    if matches!(forked, Ok(Forked::Child)) {
        std::mem::forget(blocked);
    }
    forked
}

fn fail(report: &OwnedFd, failure: Failure) -> i32 {
    failure.send(report);
    EXIT_RUNNER_FAILED
}
