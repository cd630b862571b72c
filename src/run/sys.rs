//! The few system calls the runner needs that have no safe wrapper: `fork`, signal handlers,
//! `pidfd_open`, `close_range` and `_exit`.
//!
//! They are unsafe for reasons the rest of the module must not have to think about: after
//! `fork` in a possibly multithreaded caller only the forking thread exists in the child, a
//! signal handler may only do async-signal-safe work, and `_exit` skips destructors on purpose
//! (a forked child must never run the parent's atexit handlers or unwind into its stack).
//! Keeping them here keeps `#![deny(unsafe_code)]` meaningful everywhere else.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{ForkResult, Pid};

/// Which side of a fork we are on.
pub(super) enum Forked {
    /// The new process.
    Child,
    /// The original process, with the child's pid.
    Parent(Pid),
}

/// `fork(2)`. The child must only call [`exit_immediately`] to leave, never return into the
/// caller's frames.
pub(super) fn fork() -> io::Result<Forked> {
    // SAFETY: glibc's fork runs its atfork handlers (malloc stays usable in the child). The
    // child only runs runner code on its own copy of memory and leaves through `_exit`; the
    // callers make sure it never unwinds back into the parent's frames (see `in_child`).
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        ForkResult::Child => Ok(Forked::Child),
        ForkResult::Parent { child } => Ok(Forked::Parent(child)),
    }
}

/// Leave the process now with `code`, running no destructors or atexit handlers.
pub(super) fn exit_immediately(code: i32) -> ! {
    // SAFETY: `_exit` is always safe to call; it never returns.
    unsafe { libc::_exit(code) }
}

/// Write ends of the self-pipes that the signal handler reports signal numbers into. Several
/// runs may be under way in one process (a library caller's threads), so there are slots.
const SLOTS: usize = 16;
static SIGNAL_PIPES: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];

/// Record one more self-pipe; returns its slot, or `None` when all are taken.
pub(super) fn register_signal_pipe(fd: RawFd) -> Option<usize> {
    SIGNAL_PIPES.iter().position(|slot| {
        slot.compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    })
}

/// Stop reporting into the pipe of `slot`.
pub(super) fn unregister_signal_pipe(slot: usize) {
    SIGNAL_PIPES[slot].store(-1, Ordering::SeqCst);
}

/// Forget every registered pipe (in a freshly forked child, which has its own).
pub(super) fn clear_signal_pipes() {
    for slot in &SIGNAL_PIPES {
        slot.store(-1, Ordering::SeqCst);
    }
}

extern "C" fn report_signal(signal: libc::c_int) {
    // SAFETY: only async-signal-safe calls (`write`, errno access); errno is restored so the
    // interrupted code never sees ours.
    unsafe {
        let saved_errno = *libc::__errno_location();
        let byte = signal as u8;
        for slot in &SIGNAL_PIPES {
            let fd = slot.load(Ordering::SeqCst);
            if fd >= 0 {
                libc::write(fd, (&byte as *const u8).cast(), 1);
            }
        }
        *libc::__errno_location() = saved_errno;
    }
}

/// Make `signal` write its number into the registered pipes; returns the previous action.
pub(super) fn install_reporting_handler(signal: Signal) -> io::Result<SigAction> {
    let action = SigAction::new(
        SigHandler::Handler(report_signal),
        SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    // SAFETY: the handler is async-signal-safe (see `report_signal`).
    unsafe { nix::sys::signal::sigaction(signal, &action) }.map_err(io::Error::from)
}

/// Put back an action saved by [`install_reporting_handler`].
pub(super) fn restore_action(signal: Signal, action: &SigAction) -> io::Result<()> {
    // SAFETY: `action` was returned by `sigaction` for this signal, so it is valid for it.
    unsafe { nix::sys::signal::sigaction(signal, action) }
        .map(drop)
        .map_err(io::Error::from)
}

/// Default disposition for `signal` (before `execve`: an ignored signal stays ignored across
/// exec, and Rust programs ignore SIGPIPE).
pub(super) fn set_default_action(signal: Signal) -> io::Result<()> {
    // SAFETY: SIG_DFL involves no handler code.
    unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) }
        .map(drop)
        .map_err(io::Error::from)
}

/// `pidfd_open(2)`: a descriptor that becomes readable when `pid` exits (Linux 5.3+).
pub(super) fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; a non-negative result is a new descriptor
    // that we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor returned by the kernel and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Mark every descriptor from `first` up as close-on-exec, so the app inherits only stdio.
pub(super) fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments; it only changes descriptor flags.
    let result = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Close every descriptor from 3 up except `keep` (in a freshly forked child, whose copies of
/// the parent's descriptor-owning values are never dropped).
pub(super) fn close_fds_except(keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|fd| u32::try_from(*fd).ok())
        .filter(|fd| *fd >= 3)
        .collect();
    keep.sort_unstable();
    let mut first = 3u32;
    for fd in keep.into_iter().chain([u32::MAX]) {
        if fd > first {
            // SAFETY: plain syscall with integer arguments; nothing in this process uses the
            // closed descriptors afterwards (see above).
            let result = unsafe { libc::syscall(libc::SYS_close_range, first, fd - 1, 0) };
            if result < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        first = fd.saturating_add(1);
    }
    Ok(())
}
