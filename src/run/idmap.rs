//! Which host ids the container's ids stand for.
//!
//! The caller's own uid/gid always become the image user's uid/gid, so the rootfs (unpacked
//! by, and owned by, the caller) looks owned by the image user, and the app can write where
//! the image lets its user write. That single mapping needs no privilege. When the caller has
//! subordinate ranges in `/etc/subuid` and `/etc/subgid` (and `newuidmap`/`newgidmap` are
//! installed), the other container ids (root included) are mapped onto those ranges too, so
//! an app that switches users still can; files keep looking owned by the image user.
//! Root gets the same single mapping (to host root) unless it has ranges of its own: kiln
//! never picks host ids nobody allocated.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::Pid;

use super::error::RunError;

/// One line of a `uid_map`/`gid_map`: `count` ids from `inside` map to `outside` on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// A subordinate id range from `/etc/subuid` or `/etc/subgid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SubordinateRange {
    pub start: u32,
    pub count: u32,
}

/// The maps to write for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IdMaps {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
    /// Whether the setuid helpers must write them (an unprivileged caller with ranges).
    pub use_helpers: bool,
    /// Whether the caller is privileged (may write any map directly).
    pub privileged: bool,
}

/// The maps putting `caller` at `image` and, when given, the other ids of `0..count` onto
/// the subordinate range.
pub(super) fn ranges(
    image: u32,
    caller: u32,
    subordinate: Option<SubordinateRange>,
) -> Vec<IdRange> {
    let mut ranges = vec![IdRange {
        inside: image,
        outside: caller,
        count: 1,
    }];
    if let Some(sub) = subordinate {
        let below = sub.count.min(image);
        if below > 0 {
            ranges.push(IdRange {
                inside: 0,
                outside: sub.start,
                count: below,
            });
        }
        let above = sub.count - below;
        if above > 0 && image < u32::MAX {
            ranges.push(IdRange {
                inside: image + 1,
                outside: sub.start + below,
                count: above.min(u32::MAX - image - 1),
            });
        }
    }
    ranges
}

impl IdMaps {
    /// Plan the maps for an image user `uid:gid`, looking at the caller and its ranges.
    pub(super) fn plan(image_uid: u32, image_gid: u32) -> Self {
        let caller_uid = nix::unistd::geteuid().as_raw();
        let caller_gid = nix::unistd::getegid().as_raw();
        let privileged = caller_uid == 0;
        let user_name = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|user| user.name);
        let helpers_present =
            privileged || (find_tool("newuidmap").is_some() && find_tool("newgidmap").is_some());
        let sub_uids = read_subordinate(Path::new("/etc/subuid"), user_name.as_deref(), caller_uid);
        let sub_gids = read_subordinate(Path::new("/etc/subgid"), user_name.as_deref(), caller_uid);
        let (sub_uid, sub_gid) = match (sub_uids, sub_gids) {
            (Some(uid), Some(gid)) if helpers_present => (Some(uid), Some(gid)),
            _ => (None, None),
        };
        Self {
            uids: ranges(image_uid, caller_uid, sub_uid),
            gids: ranges(image_gid, caller_gid, sub_gid),
            use_helpers: !privileged && sub_uid.is_some(),
            privileged,
        }
    }

    /// Write the maps of the process `pid`, which has just created its user namespace.
    pub(super) fn apply(&self, pid: Pid) -> Result<(), RunError> {
        if self.use_helpers {
            run_helper("newuidmap", pid, &self.uids)?;
            return run_helper("newgidmap", pid, &self.gids);
        }
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let write = |name: &str, text: String| {
            let path = proc_dir.join(name);
            fs::write(&path, text).map_err(|source| RunError::WriteIdMap { path, source })
        };
        write("uid_map", map_text(&self.uids))?;
        if !self.privileged {
            // An unprivileged gid_map is only accepted once setgroups(2) is disabled, so the
            // caller cannot drop groups it was denied by.
            write("setgroups", "deny".to_owned())?;
        }
        write("gid_map", map_text(&self.gids))
    }

    /// Whether the app may call setgroups(2) in the namespace.
    pub(super) fn setgroups_allowed(&self) -> bool {
        self.privileged || self.use_helpers
    }
}

fn map_text(ranges: &[IdRange]) -> String {
    ranges
        .iter()
        .map(|range| format!("{} {} {}\n", range.inside, range.outside, range.count))
        .collect()
}

fn run_helper(tool: &'static str, pid: Pid, ranges: &[IdRange]) -> Result<(), RunError> {
    let mut command = Command::new(find_tool(tool).unwrap_or_else(|| PathBuf::from(tool)));
    command.arg(pid.to_string());
    for range in ranges {
        command.args([
            range.inside.to_string(),
            range.outside.to_string(),
            range.count.to_string(),
        ]);
    }
    let output = command.output().map_err(|error| RunError::IdMapTool {
        tool,
        detail: error.to_string(),
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(RunError::IdMapTool {
        tool,
        detail: format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    })
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The caller's first range in a `/etc/subuid`-style file (by name or numeric uid).
fn read_subordinate(path: &Path, user_name: Option<&str>, uid: u32) -> Option<SubordinateRange> {
    parse_subordinate(&fs::read_to_string(path).ok()?, user_name, uid)
}

pub(super) fn parse_subordinate(
    text: &str,
    user_name: Option<&str>,
    uid: u32,
) -> Option<SubordinateRange> {
    let uid_text = uid.to_string();
    text.lines().find_map(|line| {
        let mut fields = line.trim().split(':');
        let owner = fields.next()?;
        if owner != uid_text && Some(owner) != user_name {
            return None;
        }
        let start = fields.next()?.parse().ok()?;
        let count: u32 = fields.next()?.parse().ok()?;
        (count > 0).then_some(SubordinateRange { start, count })
    })
}

/// Why the kernel refused a user namespace, as far as can be told from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsernsBlocker {
    /// kiln itself runs in a user namespace that does not map its uid (nesting is refused).
    UnmappedCaller,
    /// Debian/Ubuntu kernels' `kernel.unprivileged_userns_clone` is 0.
    UnprivilegedCloneDisabled,
    /// `user.max_user_namespaces` is 0, or its limit is reached.
    MaxUserNamespaces { limit: u64 },
    /// Ubuntu's AppArmor restriction on unprivileged user namespaces.
    AppArmorRestriction,
    /// Nothing visible: most likely a container's seccomp profile.
    Seccomp,
}

impl UsernsBlocker {
    /// Look at the sysctls that can forbid user namespaces, given the unshare error.
    pub(super) fn diagnose(error: &io::Error) -> Self {
        let sysctl = |name: &str| -> Option<u64> {
            fs::read_to_string(Path::new("/proc/sys").join(name))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        let own_map = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
        if error.raw_os_error() == Some(libc::EPERM) && own_map.trim().is_empty() {
            return Self::UnmappedCaller;
        }
        if error.raw_os_error() == Some(libc::ENOSPC)
            || sysctl("user/max_user_namespaces") == Some(0)
        {
            return Self::MaxUserNamespaces {
                limit: sysctl("user/max_user_namespaces").unwrap_or(0),
            };
        }
        if sysctl("kernel/unprivileged_userns_clone") == Some(0) {
            return Self::UnprivilegedCloneDisabled;
        }
        if sysctl("kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
            return Self::AppArmorRestriction;
        }
        Self::Seccomp
    }

    /// What to change.
    pub(super) fn remedy(&self) -> String {
        match self {
            Self::UnmappedCaller => "run kiln outside that namespace, or map your uid in it \
                 (e.g. `unshare --map-current-user`)"
                .to_owned(),
            Self::UnprivilegedCloneDisabled => {
                "enable them as root: `sysctl -w kernel.unprivileged_userns_clone=1`".to_owned()
            }
            Self::MaxUserNamespaces { .. } => {
                "raise the limit as root: `sysctl -w user.max_user_namespaces=15000`".to_owned()
            }
            Self::AppArmorRestriction => {
                "allow them as root: `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` \
                 (or give kiln an AppArmor profile with `userns`)"
                    .to_owned()
            }
            Self::Seccomp => {
                "inside a container, its seccomp profile must allow unshare(CLONE_NEWUSER) \
                 (e.g. `docker run --security-opt seccomp=unconfined`)"
                    .to_owned()
            }
        }
    }
}

impl fmt::Display for UsernsBlocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnmappedCaller => {
                f.write_str("kiln's own uid is not mapped in the user namespace it runs in")
            }
            Self::UnprivilegedCloneDisabled => f.write_str("kernel.unprivileged_userns_clone is 0"),
            Self::MaxUserNamespaces { limit } => {
                write!(f, "user.max_user_namespaces ({limit}) is exhausted")
            }
            Self::AppArmorRestriction => {
                f.write_str("kernel.apparmor_restrict_unprivileged_userns is 1")
            }
            Self::Seccomp => {
                f.write_str("the kernel refused (no sysctl forbids it: likely a seccomp filter)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_mapping_without_ranges() {
        assert_eq!(
            ranges(1000, 65534, None),
            [IdRange {
                inside: 1000,
                outside: 65534,
                count: 1
            }]
        );
    }

    #[test]
    fn ranges_fill_around_the_image_user() {
        let sub = SubordinateRange {
            start: 100_000,
            count: 65536,
        };
        let mapped = ranges(1000, 1234, Some(sub));
        assert_eq!(
            mapped,
            [
                IdRange {
                    inside: 1000,
                    outside: 1234,
                    count: 1
                },
                IdRange {
                    inside: 0,
                    outside: 100_000,
                    count: 1000
                },
                IdRange {
                    inside: 1001,
                    outside: 101_000,
                    count: 64536
                },
            ]
        );
        let root = ranges(0, 1234, Some(sub));
        assert_eq!(root[1].inside, 1);
        assert_eq!(root[1].count, 65536);
    }

    #[test]
    fn subordinate_lookup_by_name_or_uid() {
        let text = "alice:100000:65536\n1001:200000:1000\nbad line\n";
        assert_eq!(
            parse_subordinate(text, Some("alice"), 1000),
            Some(SubordinateRange {
                start: 100_000,
                count: 65536
            })
        );
        assert_eq!(
            parse_subordinate(text, Some("bob"), 1001).map(|r| r.start),
            Some(200_000)
        );
        assert_eq!(parse_subordinate(text, Some("carol"), 1002), None);
    }
}
