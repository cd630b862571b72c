//! How processes inside a run tell kiln what failed before the app started: one record on a
//! close-on-exec pipe (step, errno, detail). A successful `execve` closes the pipe with
//! nothing written, so kiln can tell its own failures from the app's exit codes.

use std::fmt;
use std::io;
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::unistd::write;

/// A step of starting a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Step {
    Unshare = 1,
    Signals,
    Fork,
    MakeMountsPrivate,
    MountRootfs,
    CopyRootfs,
    PivotRoot,
    MountProc,
    MountDev,
    WorkingDir,
    Exec,
}

impl Step {
    const ALL: [Step; 11] = [
        Step::Unshare,
        Step::Signals,
        Step::Fork,
        Step::MakeMountsPrivate,
        Step::MountRootfs,
        Step::CopyRootfs,
        Step::PivotRoot,
        Step::MountProc,
        Step::MountDev,
        Step::WorkingDir,
        Step::Exec,
    ];
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Unshare => "create the namespaces",
            Step::Signals => "set up signal handling",
            Step::Fork => "start a process in the namespaces",
            Step::MakeMountsPrivate => "make the mounts private",
            Step::MountRootfs => "mount the writable root filesystem",
            Step::CopyRootfs => "copy the root filesystem",
            Step::PivotRoot => "switch to the root filesystem",
            Step::MountProc => "mount /proc",
            Step::MountDev => "set up /dev",
            Step::WorkingDir => "enter the working directory",
            Step::Exec => "execute the command",
        })
    }
}

/// A failed step, as sent from inside the run.
#[derive(Debug)]
pub(super) struct Failure {
    pub step: Step,
    pub error: io::Error,
    pub detail: String,
}

impl Failure {
    pub(super) fn new(step: Step, error: impl Into<io::Error>, detail: impl Into<String>) -> Self {
        Self {
            step,
            error: error.into(),
            detail: detail.into(),
        }
    }

    /// Send the record (one write: pipes keep writes up to PIPE_BUF whole).
    pub(super) fn send(&self, pipe: &OwnedFd) {
        let errno = self.error.raw_os_error().unwrap_or(libc::EIO);
        let mut record = vec![self.step as u8];
        record.extend(errno.to_le_bytes());
        record.extend(self.detail.bytes().take(1024));
        let _ = write(pipe, &record);
    }

    /// Decode a record; `None` for garbage.
    pub(super) fn decode(record: &[u8]) -> Option<Self> {
        let (&step, rest) = record.split_first()?;
        let step = Step::ALL
            .into_iter()
            .find(|candidate| *candidate as u8 == step)?;
        let errno = i32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
        Some(Self {
            step,
            error: io::Error::from(Errno::from_raw(errno)),
            detail: String::from_utf8_lossy(&rest[4..]).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        Failure::new(Step::Exec, Errno::ENOENT, "/bin/nope").send(&write_end);
        drop(write_end);
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut std::fs::File::from(read_end), &mut bytes).unwrap();
        let failure = Failure::decode(&bytes).unwrap();
        assert_eq!(failure.step, Step::Exec);
        assert_eq!(failure.error.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(failure.detail, "/bin/nope");
        assert!(Failure::decode(&[200, 0]).is_none());
    }
}
