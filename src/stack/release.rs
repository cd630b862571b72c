//! `Release` files: origin, validity and the checksums of the indexes they list.

use std::collections::HashMap;

use super::control::parse_paragraphs;
use super::error::StackError;

/// A checksummed file listed in a `Release`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFile {
    /// sha256, lowercase hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The parts of a signed `Release` kiln uses.
#[derive(Debug, Clone)]
pub struct Release {
    /// `Origin` (Debian's own archives say `Debian`).
    pub origin: String,
    /// `Codename`.
    pub codename: String,
    /// `Valid-Until`, seconds since the epoch.
    pub valid_until: Option<i64>,
    /// `Acquire-By-Hash: yes`.
    pub by_hash: bool,
    /// Whether apt would fetch a separate `binary-all` index: `all` is among the
    /// `Architectures` and `No-Support-for-Architecture-all: Packages` is absent (otherwise
    /// `all` packages are listed in each architecture's index).
    pub separate_all_index: bool,
    /// Files by path relative to `dists/<suite>/`.
    pub files: HashMap<String, ReleaseFile>,
}

impl Release {
    /// Parse the (already verified) text of a `Release`.
    pub fn parse(text: &str, url: &str) -> Result<Self, StackError> {
        let paragraphs = parse_paragraphs(text);
        let Some(paragraph) = paragraphs.first() else {
            return Err(StackError::ReleaseField {
                url: url.to_owned(),
                field: "Origin",
            });
        };
        let valid_until = match paragraph.get("Valid-Until") {
            Some(value) => {
                Some(
                    parse_release_date(value).ok_or_else(|| StackError::ReleaseField {
                        url: url.to_owned(),
                        field: "Valid-Until",
                    })?,
                )
            }
            None => None,
        };
        let mut files = HashMap::new();
        for line in paragraph.get("SHA256").unwrap_or_default().lines() {
            let mut words = line.split_whitespace();
            let (Some(sha256), Some(size), Some(path)) = (words.next(), words.next(), words.next())
            else {
                continue;
            };
            let Ok(size) = size.parse::<u64>() else {
                continue;
            };
            if sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                files.insert(
                    path.to_owned(),
                    ReleaseFile {
                        sha256: sha256.to_ascii_lowercase(),
                        size,
                    },
                );
            }
        }
        let yes = |field: &str| {
            paragraph
                .get(field)
                .is_some_and(|value| value.trim().eq_ignore_ascii_case("yes"))
        };
        Ok(Self {
            origin: paragraph.get("Origin").unwrap_or_default().to_owned(),
            codename: paragraph.get("Codename").unwrap_or_default().to_owned(),
            valid_until,
            by_hash: yes("Acquire-By-Hash"),
            separate_all_index: paragraph
                .get("Architectures")
                .is_some_and(|value| value.split_whitespace().any(|arch| arch == "all"))
                && !paragraph
                    .get("No-Support-for-Architecture-all")
                    .is_some_and(|value| value.split_whitespace().any(|word| word == "Packages")),
            files,
        })
    }
}

/// Read the `Origin` of a not-yet-verified `InRelease`, only to skip sources that are not
/// Debian's before insisting on a valid signature.
pub fn unverified_origin(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines()
        .take_while(|line| !line.starts_with("-----BEGIN PGP SIGNATURE"))
        .find_map(|line| line.strip_prefix("Origin:"))
        .map(|origin| origin.trim().to_owned())
}

/// Parse an RFC 2822 date as `Release` files write it (`Sat, 11 Jul 2026 10:16:37 UTC`)
/// into seconds since the epoch.
pub fn parse_release_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let text = text.split_once(',').map_or(text, |(_, rest)| rest).trim();
    let mut words = text.split_whitespace();
    let day: i64 = words.next()?.parse().ok()?;
    let month = match words.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = words.next()?.parse().ok()?;
    let mut clock = words
        .next()?
        .split(':')
        .map(|part| part.parse::<i64>().ok());
    let (hour, minute, second) = (
        clock.next()??,
        clock.next()??,
        clock.next().flatten().unwrap_or(0),
    );
    let offset = match words.next() {
        None | Some("UTC" | "GMT" | "Z" | "+0000" | "-0000") => 0,
        Some(zone) => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let digits = zone.trim_start_matches(['+', '-']);
            let hours: i64 = digits.get(..2)?.parse().ok()?;
            let minutes: i64 = digits.get(2..4)?.parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_dates() {
        assert_eq!(parse_release_date("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_release_date("Sat, 11 Jul 2026 10:16:37 UTC"),
            Some(1_783_764_997)
        );
        assert_eq!(
            parse_release_date("Sat, 29 Feb 2020 00:00:00 +0100"),
            Some(1_582_930_800)
        );
        assert_eq!(parse_release_date("yesterday"), None);
    }

    #[test]
    fn reads_fields_and_checksums() {
        let text = "Origin: Debian\nCodename: bookworm\nArchitectures: all amd64\nValid-Until: Thu, 01 Jan 1970 00:01:00 UTC\nAcquire-By-Hash: yes\nNo-Support-for-Architecture-all: Packages\nSHA256:\n 9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5  8790396 main/binary-amd64/Packages.xz\n";
        let release = Release::parse(text, "test").unwrap();
        assert_eq!(release.origin, "Debian");
        assert_eq!(release.valid_until, Some(60));
        assert!(release.by_hash && !release.separate_all_index);
        let security =
            Release::parse("Origin: Debian\nArchitectures: amd64 arm64\n", "test").unwrap();
        assert!(!security.separate_all_index);
        let split = Release::parse("Origin: Debian\nArchitectures: all amd64\n", "test").unwrap();
        assert!(split.separate_all_index);
        assert_eq!(
            release.files["main/binary-amd64/Packages.xz"].size,
            8_790_396
        );
        assert_eq!(
            unverified_origin(
                b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: NodeSource\n"
            )
            .as_deref(),
            Some("NodeSource")
        );
    }
}
