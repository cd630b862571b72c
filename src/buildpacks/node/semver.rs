//! Just enough of npm's semver to check `engines.node` against the stack's Node: versions,
//! comparators, `^`, `~`, x-ranges, hyphen ranges, and `||` alternatives.

use std::cmp::Ordering;
use std::fmt;

/// A release version `major.minor.patch` (pre-release tags are ignored: stacks ship releases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
}

impl Version {
    /// A version from its parts.
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parse `1.2.3` or `v1.2.3` (build metadata and pre-release suffixes are dropped).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            major,
            minor,
            patch,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A range that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{token}` is not a version, an operator with a version, or `||`")]
pub struct RangeError {
    /// The offending part of the range.
    pub token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Comparator {
    op: Op,
    version: Version,
}

impl Comparator {
    fn matches(&self, version: &Version) -> bool {
        let ordering = version.cmp(&self.version);
        match self.op {
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
            Op::Gt => ordering == Ordering::Greater,
            Op::Ge => ordering != Ordering::Less,
            Op::Eq => ordering == Ordering::Equal,
        }
    }
}

/// A partial version as ranges write it: `1`, `1.2`, `1.2.x`, `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
}

impl Partial {
    fn parse(text: &str) -> Option<Self> {
        let text = text.strip_prefix(['v', 'V', '=']).unwrap_or(text);
        let core = text.split(['-', '+']).next()?;
        let mut numbers = [None; 3];
        let mut parts = core.split('.');
        for (index, part) in parts.by_ref().take(3).enumerate() {
            numbers[index] = match part {
                "x" | "X" | "*" => None,
                number => Some(number.parse().ok()?),
            };
            // Once a part is a wildcard, everything after it is too (`1.x.3` means `1.x`).
            if numbers[index].is_none() {
                break;
            }
        }
        if core.is_empty() || core.split('.').count() > 3 {
            return None;
        }
        Some(Self {
            major: numbers[0],
            minor: numbers[0].and(numbers[1]),
            patch: numbers[0].and(numbers[1]).and(numbers[2]),
        })
    }

    fn floor(&self) -> Version {
        Version::new(
            self.major.unwrap_or(0),
            self.minor.unwrap_or(0),
            self.patch.unwrap_or(0),
        )
    }

    /// The first version above everything this partial covers (`1.2` → `1.3.0`), or `None`
    /// for `*`.
    fn ceiling(&self) -> Option<Version> {
        match (self.major, self.minor, self.patch) {
            (None, _, _) => None,
            (Some(major), None, _) => Some(Version::new(major + 1, 0, 0)),
            (Some(major), Some(minor), None) => Some(Version::new(major, minor + 1, 0)),
            (Some(major), Some(minor), Some(patch)) => Some(Version::new(major, minor, patch + 1)),
        }
    }

    fn is_exact(&self) -> bool {
        self.patch.is_some()
    }
}

/// A version range: alternatives (`||`) of comparator sets that must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    alternatives: Vec<Vec<Comparator>>,
}

impl Range {
    /// Parse an npm range such as `>=18 <21`, `^18.12.0 || ^20.9.0`, `18.x`, `16 - 20`.
    pub fn parse(text: &str) -> Result<Self, RangeError> {
        let alternatives = text.split("||").map(parse_set).collect::<Result<_, _>>()?;
        Ok(Self { alternatives })
    }

    /// Whether `version` is in the range.
    pub fn matches(&self, version: &Version) -> bool {
        self.alternatives
            .iter()
            .any(|set| set.iter().all(|comparator| comparator.matches(version)))
    }
}

/// One `||` alternative: whitespace-separated comparators, or a hyphen range.
fn parse_set(text: &str) -> Result<Vec<Comparator>, RangeError> {
    let tokens = join_operators(text.split_whitespace().collect());
    if let [low, "-", high] = tokens.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        return hyphen(low, high);
    }
    let mut comparators = Vec::new();
    for token in &tokens {
        comparators.extend(parse_simple(token)?);
    }
    Ok(comparators)
}

/// npm allows a space between an operator and its version (`>= 18`): glue them back.
fn join_operators(words: Vec<&str>) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    let mut pending = String::new();
    for word in words {
        if ["<", "<=", ">", ">=", "=", "~", "^", "~>"].contains(&word) {
            pending.push_str(word);
            continue;
        }
        tokens.push(format!("{pending}{word}"));
        pending.clear();
    }
    if !pending.is_empty() {
        tokens.push(pending);
    }
    tokens
}

fn hyphen(low: &str, high: &str) -> Result<Vec<Comparator>, RangeError> {
    let low = partial(low)?;
    let high = partial(high)?;
    let mut comparators = vec![Comparator {
        op: Op::Ge,
        version: low.floor(),
    }];
    if high.is_exact() {
        comparators.push(Comparator {
            op: Op::Le,
            version: high.floor(),
        });
    } else if let Some(ceiling) = high.ceiling() {
        comparators.push(Comparator {
            op: Op::Lt,
            version: ceiling,
        });
    }
    Ok(comparators)
}

fn partial(text: &str) -> Result<Partial, RangeError> {
    Partial::parse(text).ok_or_else(|| RangeError {
        token: text.to_owned(),
    })
}

fn parse_simple(token: &str) -> Result<Vec<Comparator>, RangeError> {
    let ge = |version| Comparator {
        op: Op::Ge,
        version,
    };
    let lt = |version| Comparator {
        op: Op::Lt,
        version,
    };
    let (op, rest) = split_operator(token);
    let version = partial(rest)?;
    let floor = version.floor();
    let ceiling = version.ceiling();
    let none_match = || vec![lt(Version::new(0, 0, 0))];
    let comparators = match op {
        "" | "=" => match (version.is_exact(), ceiling) {
            (true, _) => vec![Comparator {
                op: Op::Eq,
                version: floor,
            }],
            (false, Some(ceiling)) => vec![ge(floor), lt(ceiling)],
            (false, None) => Vec::new(),
        },
        ">=" => vec![ge(floor)],
        "<" => vec![lt(floor)],
        ">" => match (version.is_exact(), ceiling) {
            (true, _) => vec![Comparator {
                op: Op::Gt,
                version: floor,
            }],
            (false, Some(ceiling)) => vec![ge(ceiling)],
            (false, None) => none_match(),
        },
        "<=" => match (version.is_exact(), ceiling) {
            (true, _) => vec![Comparator {
                op: Op::Le,
                version: floor,
            }],
            (false, Some(ceiling)) => vec![lt(ceiling)],
            (false, None) => Vec::new(),
        },
        "~" | "~>" => match ceiling {
            // `~1.2.3` and `~1.2` allow patch updates, `~1` minor ones.
            Some(_) if version.minor.is_some() => {
                vec![ge(floor), lt(Version::new(floor.major, floor.minor + 1, 0))]
            }
            Some(ceiling) => vec![ge(floor), lt(ceiling)],
            None => Vec::new(),
        },
        "^" => match (version.major, version.minor, version.patch) {
            (None, _, _) => Vec::new(),
            // The left-most non-zero part may not change.
            (Some(0), Some(0), Some(patch)) => vec![ge(floor), lt(Version::new(0, 0, patch + 1))],
            (Some(0), Some(minor), _) => vec![ge(floor), lt(Version::new(0, minor + 1, 0))],
            (Some(major), _, _) => vec![ge(floor), lt(Version::new(major + 1, 0, 0))],
        },
        _ => {
            return Err(RangeError {
                token: token.to_owned(),
            });
        }
    };
    Ok(comparators)
}

fn split_operator(token: &str) -> (&str, &str) {
    for op in [">=", "<=", "~>", ">", "<", "=", "~", "^"] {
        if let Some(rest) = token.strip_prefix(op) {
            return (op, rest);
        }
    }
    ("", token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(range: &str, version: &str) -> bool {
        Range::parse(range)
            .unwrap()
            .matches(&Version::parse(version).unwrap())
    }

    #[test]
    fn parses_versions() {
        assert_eq!(Version::parse("v18.19.0"), Some(Version::new(18, 19, 0)));
        assert_eq!(Version::parse("20.1.2-rc.1"), Some(Version::new(20, 1, 2)));
        assert_eq!(Version::parse("18.19"), None);
        assert_eq!(Version::parse("1.2.3.4"), None);
        assert_eq!(Version::parse("lts"), None);
    }

    #[test]
    fn comparators_and_sets() {
        assert!(matches(">=18", "18.0.0"));
        assert!(!matches(">=18", "17.9.9"));
        assert!(matches(">= 18.12.0 < 21", "20.11.1"));
        assert!(!matches(">=18.12.0 <21", "21.0.0"));
        assert!(matches(">16", "17.0.0"));
        assert!(!matches(">16", "16.20.0"), "`>16` means above every 16.x");
        assert!(matches("<=18", "18.99.0"));
        assert!(!matches("<18", "18.0.0"));
        assert!(matches("=18.19.0", "18.19.0"));
        assert!(!matches("18.19.0", "18.19.1"));
    }

    #[test]
    fn x_ranges_and_wildcards() {
        for (range, version, expected) in [
            ("18.x", "18.19.0", true),
            ("18", "18.0.0", true),
            ("18", "19.0.0", false),
            ("18.19.x", "18.20.0", false),
            ("*", "0.1.0", true),
            ("", "22.0.0", true),
            ("x", "22.0.0", true),
        ] {
            assert_eq!(matches(range, version), expected, "{range} vs {version}");
        }
    }

    #[test]
    fn caret_and_tilde() {
        for (range, version, expected) in [
            ("^18.12.0", "18.19.0", true),
            ("^18.12.0", "18.11.0", false),
            ("^18.12.0", "19.0.0", false),
            ("^0.2.3", "0.2.9", true),
            ("^0.2.3", "0.3.0", false),
            ("^0.0.3", "0.0.4", false),
            ("^18", "18.0.0", true),
            ("~18.19.0", "18.19.5", true),
            ("~18.19.0", "18.20.0", false),
            ("~18", "18.20.0", true),
            ("~18", "19.0.0", false),
        ] {
            assert_eq!(matches(range, version), expected, "{range} vs {version}");
        }
    }

    #[test]
    fn alternatives_and_hyphens() {
        assert!(matches("^16.14.0 || ^18.12.0 || >=20", "18.19.0"));
        assert!(!matches("^16.14.0 || >=20", "18.19.0"));
        assert!(
            matches("16 - 18", "18.19.0"),
            "a partial upper bound covers its whole line"
        );
        assert!(!matches("16 - 18.1.0", "18.19.0"));
        assert!(matches("16 - 18.1.0", "18.1.0"));
    }

    #[test]
    fn rejects_nonsense() {
        assert!(Range::parse("latest").is_err());
        assert!(Range::parse(">=banana").is_err());
        assert!(Range::parse("1.2.3.4").is_err());
    }
}
