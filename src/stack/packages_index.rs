//! Binary package indexes (`Packages`): the fields the resolver and downloader need.

use super::control::parse_paragraphs;
use super::version::{DebVersion, InvalidVersion};

/// One binary package as an index lists it.
#[derive(Debug, Clone)]
pub struct PackageRecord {
    /// Package name.
    pub name: String,
    /// Its version.
    pub version: DebVersion,
    /// `amd64` or `all`.
    pub arch: String,
    /// Raw `Pre-Depends` (parsed only for packages the resolver visits).
    pub pre_depends: String,
    /// Raw `Depends`.
    pub depends: String,
    /// Raw `Provides`.
    pub provides: String,
    /// Path of the `.deb` relative to the archive root.
    pub filename: String,
    /// Size of the `.deb` in bytes.
    pub size: u64,
    /// sha256 of the `.deb` (lowercase hex).
    pub sha256: String,
    /// Suite whose index listed it (e.g. `bookworm-security`).
    pub suite: String,
}

/// Why an index paragraph cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRecord {
    #[error("a paragraph has no `{field}` field")]
    MissingField { field: &'static str },
    #[error("package {package} has a bad `{field}` field")]
    BadField {
        package: String,
        field: &'static str,
    },
    #[error("package {package}: {source}")]
    Version {
        package: String,
        #[source]
        source: InvalidVersion,
    },
}

/// Parse a whole `Packages` file, keeping the packages of `arches` (`Architecture: all`
/// packages appear in each architecture's index when the archive says so).
pub fn parse_packages(
    text: &str,
    suite: &str,
    arches: &[&str],
) -> Result<Vec<PackageRecord>, InvalidRecord> {
    let mut records = Vec::new();
    for paragraph in parse_paragraphs(text) {
        let field = |field: &'static str| {
            paragraph
                .get(field)
                .ok_or(InvalidRecord::MissingField { field })
        };
        let name = field("Package")?;
        let arch = field("Architecture")?;
        if !arches.contains(&arch) {
            continue;
        }
        let bad = |field: &'static str| InvalidRecord::BadField {
            package: name.to_owned(),
            field,
        };
        let version =
            DebVersion::parse(field("Version")?).map_err(|source| InvalidRecord::Version {
                package: name.to_owned(),
                source,
            })?;
        let size = field("Size")?.parse::<u64>().map_err(|_| bad("Size"))?;
        let sha256 = field("SHA256")?;
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("SHA256"));
        }
        records.push(PackageRecord {
            name: name.to_owned(),
            version,
            arch: arch.to_owned(),
            pre_depends: paragraph.get("Pre-Depends").unwrap_or_default().to_owned(),
            depends: paragraph.get("Depends").unwrap_or_default().to_owned(),
            provides: paragraph.get("Provides").unwrap_or_default().to_owned(),
            filename: field("Filename")?.to_owned(),
            size,
            sha256: sha256.to_ascii_lowercase(),
            suite: suite.to_owned(),
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "\
Package: dash
Version: 0.5.12-2
Architecture: amd64
Pre-Depends: libc6 (>= 2.34)
Depends: debianutils (>= 5.6-0.1), dpkg (>= 1.19.1)
Filename: pool/main/d/dash/dash_0.5.12-2_amd64.deb
Size: 95304
SHA256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF
Description: POSIX-compliant shell
 The Debian Almquist Shell.

Package: dash
Version: 0.5.12-2
Architecture: arm64
Filename: pool/main/d/dash/dash_0.5.12-2_arm64.deb
Size: 1
SHA256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

Package: netbase
Version: 6.4
Architecture: all
Filename: pool/main/n/netbase/netbase_6.4_all.deb
Size: 12
SHA256: 1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
";

    #[test]
    fn keeps_wanted_architectures_and_fields() {
        let records = parse_packages(INDEX, "bookworm", &["amd64", "all"]).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].name, "dash");
        assert_eq!(records[0].pre_depends, "libc6 (>= 2.34)");
        assert!(records[0].sha256.ends_with("abcdef"));
        assert_eq!(records[1].arch, "all");
        assert_eq!(records[1].suite, "bookworm");
    }

    #[test]
    fn rejects_bad_checksums() {
        let broken = INDEX.replace("0123456789ABCDEF\n", "xyz\n");
        assert!(matches!(
            parse_packages(&broken, "bookworm", &["amd64"]),
            Err(InvalidRecord::BadField {
                field: "SHA256",
                ..
            })
        ));
    }
}
