//! Debian version numbers and their ordering (Debian Policy §5.6.12, dpkg's `verrevcmp`).

use std::cmp::Ordering;
use std::fmt;

/// A parsed `[epoch:]upstream[-revision]` version.
#[derive(Debug, Clone)]
pub struct DebVersion {
    epoch: u64,
    upstream: String,
    revision: String,
    text: String,
}

/// Why a version string is not a Debian version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a Debian version: {reason}")]
pub struct InvalidVersion {
    /// The rejected text.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl DebVersion {
    /// Parse a version. Lenient about characters (dpkg only warns), strict about structure.
    pub fn parse(text: &str) -> Result<Self, InvalidVersion> {
        let invalid = |reason| InvalidVersion {
            text: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        if trimmed.contains(char::is_whitespace) {
            return Err(invalid("it contains whitespace"));
        }
        let (epoch, rest) = match trimmed.split_once(':') {
            Some((epoch, rest)) => {
                let epoch = epoch
                    .parse::<u64>()
                    .map_err(|_| invalid("the epoch is not a number"))?;
                (epoch, rest)
            }
            None => (0, trimmed),
        };
        // The revision is everything after the last hyphen; the upstream part may contain
        // hyphens only when a revision is present.
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((upstream, revision)) => (upstream, revision),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(invalid("the upstream version is empty"));
        }
        if rest.ends_with('-') {
            return Err(invalid("the revision is empty"));
        }
        Ok(Self {
            epoch,
            upstream: upstream.to_owned(),
            revision: revision.to_owned(),
            text: trimmed.to_owned(),
        })
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for DebVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for DebVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DebVersion {}

impl PartialOrd for DebVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DebVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(&self.upstream, &other.upstream))
            .then_with(|| compare_part(&self.revision, &other.revision))
    }
}

/// Weight of a non-digit character: `~` sorts before everything (even the end of the
/// string), letters before other characters.
fn order(byte: Option<u8>) -> i32 {
    match byte {
        None => 0,
        Some(b) if b.is_ascii_digit() => 0,
        Some(b) if b.is_ascii_alphabetic() => i32::from(b),
        Some(b'~') => -1,
        Some(b) => i32::from(b) + 256,
    }
}

/// dpkg's comparison of one version part: alternate non-digit runs (compared by `order`)
/// and digit runs (compared numerically, leading zeros ignored).
fn compare_part(left: &str, right: &str) -> Ordering {
    let (a, b) = (left.as_bytes(), right.as_bytes());
    let (mut i, mut j) = (0, 0);
    let is_digit = |bytes: &[u8], at: usize| bytes.get(at).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !is_digit(a, i)) || (j < b.len() && !is_digit(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_difference = Ordering::Equal;
        while is_digit(a, i) && is_digit(b, j) {
            if first_difference == Ordering::Equal {
                first_difference = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if is_digit(a, i) {
            return Ordering::Greater;
        }
        if is_digit(b, j) {
            return Ordering::Less;
        }
        if first_difference != Ordering::Equal {
            return first_difference;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> DebVersion {
        DebVersion::parse(text).unwrap()
    }

    #[test]
    fn policy_examples_order_as_debian_does() {
        // Each pair: left < right (Debian Policy §5.6.12 and dpkg's test suite).
        let ascending = [
            ("1.0~rc1", "1.0"),
            ("1.0~~", "1.0~"),
            ("1.0~", "1.0"),
            ("1.0", "1.0a"),
            ("1.0a", "1.0+"),
            ("1.0", "1.0-1"),
            ("1.0-1", "1.0-2"),
            ("1.0-9", "1.0-10"),
            ("2.36-9+deb12u9", "2.36-9+deb12u10"),
            ("1.2.3", "1.2.10"),
            ("9.9", "1:0.1"),
            ("1:1.0", "2:0.1"),
            ("3.0.15-1~deb12u1", "3.0.15-1"),
            ("12.4+deb12u10", "12.4+deb12u11"),
            ("1.0-1~bpo1", "1.0-1"),
            ("a", "b"),
            ("1.0a", "1.0b"),
            ("1.0a", "1.0."),
        ];
        for (low, high) in ascending {
            assert!(v(low) < v(high), "{low} < {high}");
            assert!(v(high) > v(low), "{high} > {low}");
        }
    }

    #[test]
    fn equal_versions_ignore_leading_zeros_and_zero_epoch() {
        assert_eq!(v("1.001"), v("1.1"));
        assert_eq!(v("0:1.0"), v("1.0"));
        assert_eq!(v("1.0-0"), v("1.0"));
        assert_eq!(v("1.0").cmp(&v("1.0")), Ordering::Equal);
    }

    #[test]
    fn hyphens_belong_to_upstream_before_the_last_one() {
        let version = v("1:2.0-beta-3");
        assert_eq!(version.epoch, 1);
        assert_eq!(version.upstream, "2.0-beta");
        assert_eq!(version.revision, "3");
    }

    #[test]
    fn rejects_malformed_versions() {
        for text in ["", "a:1.0", "1.0-", ":1.0", "1 0", "1:"] {
            assert!(DebVersion::parse(text).is_err(), "{text:?}");
        }
    }
}
