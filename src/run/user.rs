//! The image's `User`, resolved as Docker does: `user`, `uid`, `user:group` or `uid:gid`,
//! names looked up in the image's own `/etc/passwd` and `/etc/group`.

use std::io::{self, Read};

use super::error::RunError;
use super::inroot::{Root, split_components};

/// The identity the app runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ImageUser {
    pub uid: u32,
    pub gid: u32,
    /// Home directory from `/etc/passwd`, `/` when unknown (Docker's default `HOME`).
    pub home: String,
}

/// One `/etc/passwd` line.
#[derive(Debug)]
struct PasswdEntry<'text> {
    name: &'text str,
    uid: u32,
    gid: u32,
    home: &'text str,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        Some(PasswdEntry {
            name: fields.first()?,
            uid: fields.get(2)?.parse().ok()?,
            gid: fields.get(3)?.parse().ok()?,
            home: fields.get(5).copied().unwrap_or("/"),
        })
    })
}

fn group_id(text: &str, group: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?.parse().ok()?;
        (name == group).then_some(id)
    })
}

/// Resolve `spec` given the image's passwd and group files (empty when absent).
pub(super) fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ImageUser, RunError> {
    let spec = spec.trim();
    let (user_part, group_part) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    if group_part.is_some_and(str::is_empty) || (user_part.is_empty() && group_part.is_some()) {
        return Err(RunError::InvalidUser {
            user: spec.to_owned(),
        });
    }
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd).find(|entry| entry.uid == uid),
        Err(_) => Some(
            passwd_entries(passwd)
                .find(|entry| entry.name == user_part)
                .ok_or_else(|| RunError::UnknownUser {
                    user: user_part.to_owned(),
                })?,
        ),
    };
    let uid = match user_part.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => entry.as_ref().map(|entry| entry.uid).unwrap_or_default(),
    };
    let gid = match group_part {
        Some(group_text) => match group_text.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_id(group, group_text).ok_or_else(|| RunError::UnknownGroup {
                group: group_text.to_owned(),
            })?,
        },
        // Docker: the passwd entry's primary group, else 0.
        None => entry.as_ref().map(|entry| entry.gid).unwrap_or(0),
    };
    let home = entry
        .map(|entry| entry.home.to_owned())
        .filter(|home| !home.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    Ok(ImageUser { uid, gid, home })
}

/// Read a small text file of the image (confined to its root); empty when it is absent.
pub(super) fn read_image_file(root: &Root, path: &str) -> Result<String, RunError> {
    let read_error = |source| RunError::ReadImageFile {
        path: path.to_owned(),
        source,
    };
    let file = match root.open_file(&split_components(path.as_bytes())) {
        Ok(file) => file,
        Err(error) if matches!(error.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
            return Ok(String::new());
        }
        Err(error) => return Err(read_error(error)),
    };
    // A passwd file is small; a huge one is not worth reading whole.
    let mut bytes = Vec::new();
    file.take(4 << 20)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    String::from_utf8(bytes)
        .map_err(|_| read_error(io::Error::new(io::ErrorKind::InvalidData, "not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000::/home/cnb:/bin/sh\n";
    const GROUP: &str = "root:x:0:\ncnb:x:1000:\nstaff:x:50:\n";

    fn user(uid: u32, gid: u32, home: &str) -> ImageUser {
        ImageUser {
            uid,
            gid,
            home: home.to_owned(),
        }
    }

    #[test]
    fn docker_user_forms() {
        assert_eq!(resolve("", PASSWD, GROUP).unwrap(), user(0, 0, "/root"));
        assert_eq!(
            resolve("cnb", PASSWD, GROUP).unwrap(),
            user(1000, 1000, "/home/cnb")
        );
        assert_eq!(
            resolve("1000", PASSWD, GROUP).unwrap(),
            user(1000, 1000, "/home/cnb")
        );
        assert_eq!(
            resolve("cnb:staff", PASSWD, GROUP).unwrap(),
            user(1000, 50, "/home/cnb")
        );
        assert_eq!(
            resolve("1234:5678", PASSWD, GROUP).unwrap(),
            user(1234, 5678, "/")
        );
        assert_eq!(resolve("4321", "", "").unwrap(), user(4321, 0, "/"));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(matches!(
            resolve("nobody", PASSWD, GROUP),
            Err(RunError::UnknownUser { .. })
        ));
        assert!(matches!(
            resolve("cnb:wheel", PASSWD, GROUP),
            Err(RunError::UnknownGroup { .. })
        ));
        assert!(matches!(
            resolve("cnb:", PASSWD, GROUP),
            Err(RunError::InvalidUser { .. })
        ));
    }
}
