//! Which Node the app asks for (`engines.node`, `.nvmrc`, `.node-version`) and whether the
//! stack's Node satisfies it.

use super::semver::{Range, Version};

/// Where a Node version requirement came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequirementOrigin {
    /// `engines.node` in package.json.
    Engines,
    /// `.nvmrc`.
    Nvmrc,
    /// `.node-version`.
    NodeVersionFile,
}

impl RequirementOrigin {
    /// How users name it.
    pub fn describe(self) -> &'static str {
        match self {
            RequirementOrigin::Engines => "package.json `engines.node`",
            RequirementOrigin::Nvmrc => ".nvmrc",
            RequirementOrigin::NodeVersionFile => ".node-version",
        }
    }
}

/// What one source asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// An npm range, checked exactly (`engines.node`).
    Range(Range),
    /// A major line (`.nvmrc` `18`, `v18.19.0`, `lts/hydrogen`): version files pin a
    /// developer's machine to one patch release, while a stack offers one Node per major, so
    /// only the major must agree.
    Major(u64),
    /// Anything (`lts/*`, `node`, `*`): nothing to check.
    Any,
}

/// A requirement with its origin and text as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Where it came from.
    pub origin: RequirementOrigin,
    /// As written.
    pub text: String,
    /// What it means.
    pub wanted: Wanted,
}

/// A requirement that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is `{text}`, which is not a Node version or range", origin.describe())]
pub struct BadRequirement {
    /// Where it came from.
    pub origin: RequirementOrigin,
    /// As written.
    pub text: String,
}

/// LTS code names nvm understands, with their major lines.
const LTS_NAMES: &[(&str, u64)] = &[
    ("argon", 4),
    ("boron", 6),
    ("carbon", 8),
    ("dubnium", 10),
    ("erbium", 12),
    ("fermium", 14),
    ("gallium", 16),
    ("hydrogen", 18),
    ("iron", 20),
    ("jod", 22),
    ("krypton", 24),
];

impl Requirement {
    /// `engines.node`: an npm range.
    pub fn from_engines(text: &str) -> Result<Self, BadRequirement> {
        let origin = RequirementOrigin::Engines;
        let range = Range::parse(text).map_err(|_| BadRequirement {
            origin,
            text: text.to_owned(),
        })?;
        Ok(Self {
            origin,
            text: text.trim().to_owned(),
            wanted: Wanted::Range(range),
        })
    }

    /// `.nvmrc` or `.node-version` file content (first non-comment line).
    pub fn from_version_file(
        origin: RequirementOrigin,
        content: &str,
    ) -> Result<Self, BadRequirement> {
        let text = content
            .lines()
            .map(|line| line.split('#').next().unwrap_or("").trim())
            .find(|line| !line.is_empty())
            .unwrap_or("")
            .to_owned();
        let bad = || BadRequirement {
            origin,
            text: text.clone(),
        };
        let lowered = text.to_ascii_lowercase();
        let wanted = match lowered.as_str() {
            "" => return Err(bad()),
            "node" | "stable" | "latest" | "current" | "lts/*" | "*" => Wanted::Any,
            other if other.starts_with("lts/") => {
                let name = &other["lts/".len()..];
                let major = LTS_NAMES
                    .iter()
                    .find(|(known, _)| *known == name)
                    .map(|(_, major)| *major);
                Wanted::Major(major.ok_or_else(bad)?)
            }
            other => {
                let number = other.strip_prefix('v').unwrap_or(other);
                let major = number.split('.').next().unwrap_or("");
                let well_formed = number
                    .split('.')
                    .all(|part| part.parse::<u64>().is_ok() || matches!(part, "x" | "X" | "*"));
                match major.parse::<u64>() {
                    Ok(major) if well_formed && number.split('.').count() <= 3 => {
                        Wanted::Major(major)
                    }
                    _ => return Err(bad()),
                }
            }
        };
        Ok(Self {
            origin,
            text,
            wanted,
        })
    }

    /// Whether the stack's Node satisfies it.
    pub fn allows(&self, version: &Version) -> bool {
        match &self.wanted {
            Wanted::Range(range) => range.matches(version),
            Wanted::Major(major) => version.major == *major,
            Wanted::Any => true,
        }
    }
}

/// The upstream version inside a Debian package version: `18.19.0+dfsg-6~deb12u2` → 18.19.0.
pub fn upstream_version(debian_version: &str) -> Option<Version> {
    let without_epoch = debian_version
        .split_once(':')
        .map_or(debian_version, |(_, rest)| rest);
    let upstream = without_epoch
        .rsplit_once('-')
        .map_or(without_epoch, |(upstream, _)| upstream);
    Version::parse(upstream.split(['+', '~']).next()?)
}

/// NODE_MODULE_VERSION (the ABI of native addons) of a Node major line, when known.
pub fn abi_of_major(major: u64) -> Option<u64> {
    const ABIS: &[(u64, u64)] = &[
        (12, 72),
        (13, 79),
        (14, 83),
        (15, 88),
        (16, 93),
        (17, 102),
        (18, 108),
        (19, 111),
        (20, 115),
        (21, 120),
        (22, 127),
        (23, 131),
        (24, 137),
        (25, 141),
    ];
    ABIS.iter()
        .find(|(known, _)| *known == major)
        .map(|(_, abi)| *abi)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE_18: Version = Version::new(18, 19, 0);

    #[test]
    fn engines_ranges_are_checked_exactly() {
        assert!(Requirement::from_engines(">=16").unwrap().allows(&NODE_18));
        assert!(!Requirement::from_engines(">=22").unwrap().allows(&NODE_18));
        assert!(
            !Requirement::from_engines("18.20.x")
                .unwrap()
                .allows(&NODE_18)
        );
        assert!(Requirement::from_engines("banana").is_err());
    }

    #[test]
    fn version_files_name_a_major_line() {
        let nvmrc = |text| Requirement::from_version_file(RequirementOrigin::Nvmrc, text);
        assert!(nvmrc("v18.20.4\n").unwrap().allows(&NODE_18));
        assert!(nvmrc("18").unwrap().allows(&NODE_18));
        assert!(nvmrc("# pinned\nlts/hydrogen\n").unwrap().allows(&NODE_18));
        assert!(!nvmrc("lts/iron").unwrap().allows(&NODE_18));
        assert!(!nvmrc("20.11.1").unwrap().allows(&NODE_18));
        assert_eq!(nvmrc("lts/*").unwrap().wanted, Wanted::Any);
        assert!(nvmrc("lts/unknown").is_err());
        assert!(nvmrc("").is_err());
        assert!(nvmrc("eighteen").is_err());
    }

    #[test]
    fn debian_versions_give_the_upstream_release() {
        assert_eq!(upstream_version("18.19.0+dfsg-6~deb12u2"), Some(NODE_18));
        assert_eq!(
            upstream_version("1:20.11.1-1"),
            Some(Version::new(20, 11, 1))
        );
        assert_eq!(upstream_version("garbage"), None);
    }

    #[test]
    fn abi_follows_the_major() {
        assert_eq!(abi_of_major(18), Some(108));
        assert_eq!(abi_of_major(20), Some(115));
        assert_eq!(abi_of_major(3), None);
    }
}
