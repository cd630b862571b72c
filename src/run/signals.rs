//! Signal forwarding and waiting, shared by the three supervising processes of a run: kiln
//! (forwards to the namespace creator), the creator (forwards to init) and init (pid 1 of the
//! container, forwards to the app and reaps every orphan).
//!
//! Handlers only write the signal number into a self-pipe; a poll loop does the work. In kiln
//! itself the handler is process-wide and other threads of the caller may take the signal,
//! which a mask-and-`sigwait` design could not survive. Child exit is noticed through a pidfd
//! there (no SIGCHLD handler that could steal other children's statuses), and through
//! SIGCHLD in the single-threaded supervisors inside the run.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigAction, SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, pipe2, read};

use super::sys;

/// Signals passed on to the app (SIGKILL and SIGSTOP cannot be caught; everything a user or
/// a service manager sends to stop, reload or resize is here).
const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// How long one wait may sleep before checking the child again, as a safety net should a
/// wake-up be lost (e.g. no pidfd on an old kernel).
const RECHECK_MS: u16 = 500;

/// Handlers installed in this process, shared by concurrent runs: count and saved actions.
static INSTALLED: Mutex<(usize, Vec<(Signal, SigAction)>)> = Mutex::new((0, Vec::new()));

/// A self-pipe receiving signal numbers.
pub(super) struct SignalPipe {
    read: OwnedFd,
    _write: OwnedFd,
    slot: usize,
}

impl SignalPipe {
    fn open() -> io::Result<Self> {
        let (read, write) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let slot = sys::register_signal_pipe(write.as_raw_fd())
            .ok_or_else(|| io::Error::other("too many concurrent runs in one process"))?;
        Ok(Self {
            read,
            _write: write,
            slot,
        })
    }

    /// Signals received since the last call.
    fn drain(&self) -> io::Result<Vec<i32>> {
        let mut signals = Vec::new();
        let mut buffer = [0u8; 64];
        loop {
            match read(&self.read, &mut buffer) {
                Ok(0) | Err(Errno::EAGAIN) => return Ok(signals),
                Ok(count) => signals.extend(buffer[..count].iter().map(|&byte| i32::from(byte))),
                Err(Errno::EINTR) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// kiln's side: forwards signals to its child while a run is under way; restores the
/// caller's handlers when the last concurrent run ends.
pub(super) struct Forwarder {
    pipe: SignalPipe,
}

impl Forwarder {
    pub(super) fn install() -> io::Result<Self> {
        let pipe = SignalPipe::open()?;
        let mut installed = INSTALLED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if installed.0 == 0 {
            for signal in FORWARDED {
                let previous = sys::install_reporting_handler(signal)?;
                installed.1.push((signal, previous));
            }
        }
        installed.0 += 1;
        Ok(Self { pipe })
    }

    /// Forward signals to `child` until it exits; its exit code (128+n for signal n).
    pub(super) fn supervise(&self, child: Pid) -> io::Result<i32> {
        let pidfd = sys::pidfd_open(child).ok();
        supervise(&self.pipe, child, false, pidfd.as_ref())
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        sys::unregister_signal_pipe(self.pipe.slot);
        let mut installed = INSTALLED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        installed.0 -= 1;
        if installed.0 == 0 {
            for (signal, previous) in installed.1.drain(..) {
                let _ = sys::restore_action(signal, &previous);
            }
        }
    }
}

/// Blocks the forwarded signals in this thread until dropped, so a child forked meanwhile
/// starts with them blocked and cannot lose one before its own handlers are in place.
pub(super) struct BlockedSignals {
    previous: SigSet,
}

impl BlockedSignals {
    pub(super) fn block() -> io::Result<Self> {
        let mut set = SigSet::empty();
        for signal in FORWARDED {
            set.add(signal);
        }
        set.add(Signal::SIGCHLD);
        let mut previous = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut previous))?;
        Ok(Self { previous })
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.previous), None);
    }
}

/// A supervisor inside the run (single-threaded, freshly forked): its own pipe, handlers for
/// the forwarded signals and SIGCHLD, then an open signal mask.
pub(super) struct ChildSupervisor {
    pipe: SignalPipe,
}

impl ChildSupervisor {
    pub(super) fn setup() -> io::Result<Self> {
        sys::clear_signal_pipes();
        let pipe = SignalPipe::open()?;
        for signal in FORWARDED.into_iter().chain([Signal::SIGCHLD]) {
            sys::install_reporting_handler(signal)?;
        }
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
        Ok(Self { pipe })
    }

    /// Forward signals to `child` until it exits; with `reap_all`, also reap any orphan that
    /// was reparented to us (pid 1 duty).
    pub(super) fn supervise(&self, child: Pid, reap_all: bool) -> io::Result<i32> {
        supervise(&self.pipe, child, reap_all, None)
    }
}

/// Just before `execve`: default dispositions (an ignored signal would stay ignored in the
/// app; Rust ignores SIGPIPE) and nothing blocked.
pub(super) fn reset_for_exec() {
    for signal in FORWARDED
        .into_iter()
        .chain([Signal::SIGCHLD, Signal::SIGPIPE])
    {
        let _ = sys::set_default_action(signal);
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

fn supervise(
    pipe: &SignalPipe,
    child: Pid,
    reap_all: bool,
    pidfd: Option<&OwnedFd>,
) -> io::Result<i32> {
    loop {
        if let Some(code) = reap(child, reap_all)? {
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(pipe.read.as_fd(), PollFlags::POLLIN)];
        if let Some(pidfd) = pidfd {
            fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(RECHECK_MS)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(error) => return Err(error.into()),
        }
        for number in pipe.drain()? {
            if let Ok(signal) = Signal::try_from(number)
                && signal != Signal::SIGCHLD
            {
                // The child may be gone already; its exit is picked up by the next reap.
                let _ = kill(child, signal);
            }
        }
    }
}

/// Collect exited children without blocking; `Some(code)` once `child` itself has exited.
fn reap(child: Pid, reap_all: bool) -> io::Result<Option<i32>> {
    let target = if reap_all { None } else { Some(child) };
    loop {
        match waitpid(target, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => {
                return Ok(Some(128 + signal as i32));
            }
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(error) => return Err(error.into()),
        }
    }
}
