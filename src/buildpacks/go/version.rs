//! Go versions as the go command orders them: `1.21` (a language version) < `1.21rc1` <
//! `1.21.0` < `1.21.3`.

use std::cmp::Ordering;
use std::fmt;

/// Pre-release kinds, in release order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PreRelease {
    Alpha,
    Beta,
    Rc,
}

/// A Go version (`1.22`, `1.22.3`, `1.23rc1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoVersion {
    major: u32,
    minor: u32,
    patch: Option<u32>,
    pre: Option<(PreRelease, u32)>,
}

impl GoVersion {
    /// Parse `1.22`, `1.22.3`, `1.23rc1` (also with a leading `go`); `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.strip_prefix("go").unwrap_or(text);
        let (major, rest) = split_number(text)?;
        if rest.is_empty() {
            return Some(Self::new(major, 0, None, None));
        }
        let (minor, rest) = split_number(rest.strip_prefix('.')?)?;
        if rest.is_empty() {
            return Some(Self::new(major, minor, None, None));
        }
        if let Some(patch) = rest.strip_prefix('.') {
            let (patch, rest) = split_number(patch)?;
            return rest
                .is_empty()
                .then(|| Self::new(major, minor, Some(patch), None));
        }
        let (kind, number) = [
            ("alpha", PreRelease::Alpha),
            ("beta", PreRelease::Beta),
            ("rc", PreRelease::Rc),
        ]
        .into_iter()
        .find_map(|(prefix, kind)| rest.strip_prefix(prefix).map(|number| (kind, number)))?;
        let (number, rest) = split_number(number)?;
        rest.is_empty()
            .then(|| Self::new(major, minor, None, Some((kind, number))))
    }

    fn new(major: u32, minor: u32, patch: Option<u32>, pre: Option<(PreRelease, u32)>) -> Self {
        Self {
            major,
            minor,
            patch,
            pre,
        }
    }
}

/// A leading decimal number and the rest; Go versions never pad with zeros.
fn split_number(text: &str) -> Option<(u32, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let digits = &text[..end];
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    Some((digits.parse().ok()?, &text[end..]))
}

impl Ord for GoVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        // A pre-release has no patch number and sorts above the bare language version but
        // below `.0`; `None < Some` in both fields gives exactly the go command's order.
        (self.major, self.minor, self.patch, self.pre).cmp(&(
            other.major,
            other.minor,
            other.patch,
            other.pre,
        ))
    }
}

impl PartialOrd for GoVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(patch) = self.patch {
            write!(f, ".{patch}")?;
        }
        if let Some((kind, number)) = self.pre {
            let kind = match kind {
                PreRelease::Alpha => "alpha",
                PreRelease::Beta => "beta",
                PreRelease::Rc => "rc",
            };
            write!(f, "{kind}{number}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> GoVersion {
        GoVersion::parse(text).unwrap_or_else(|| panic!("{text} parses"))
    }

    #[test]
    fn orders_like_the_go_command() {
        assert!(v("1.21") < v("1.21rc1"));
        assert!(v("1.21rc1") < v("1.21rc2"));
        assert!(v("1.21rc2") < v("1.21.0"));
        assert!(v("1.22") < v("1.22beta1"));
        assert!(v("1.22alpha1") < v("1.22beta1"));
        assert!(v("1.19.8") < v("1.21"));
        assert!(v("go1.27.3") > v("1.22"));
        assert!(v("1.10") > v("1.9"), "numeric, not lexical");
    }

    #[test]
    fn displays_as_written() {
        for text in [
            "1.19",
            "1.19.8",
            "1.21rc1",
            "1.21.0",
            "1.22beta1",
            "1.22alpha2",
            "1.27.3",
        ] {
            assert_eq!(v(text).to_string(), text);
        }
    }

    #[test]
    fn rejects_what_is_not_a_version() {
        for text in [
            "", "1.", "1.x", "1.21.", "1.21.3.4", "v1.21", "1.021", "1.21-rc1", "devel",
        ] {
            assert!(GoVersion::parse(text).is_none(), "{text}");
        }
        assert_eq!(v("1").to_string(), "1.0");
    }
}
