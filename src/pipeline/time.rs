//! Image creation times: `--creation-time`, `SOURCE_DATE_EPOCH`, or the 1980 default.

use crate::oci::DEFAULT_CREATED;

/// Why a creation time was rejected.
#[derive(Debug, thiserror::Error)]
#[error("`{value}` is not a creation time: use `now` or seconds since 1970 (as SOURCE_DATE_EPOCH)")]
pub struct BadCreationTime {
    /// The rejected value.
    pub value: String,
}

impl crate::diagnostic::Diagnose for BadCreationTime {
    fn class(&self) -> crate::diagnostic::ErrorClass {
        crate::diagnostic::ErrorClass::User
    }
}

/// The config `created` time: `--creation-time` (`now` or unix seconds), else
/// `SOURCE_DATE_EPOCH`, else 1980-01-01T00:00:01Z. Layer mtimes never follow it.
pub fn creation_time(
    flag: Option<&str>,
    source_date_epoch: Option<&str>,
) -> Result<String, BadCreationTime> {
    let value = match flag
        .or(source_date_epoch)
        .map(str::trim)
        .filter(|value| !value.is_empty())
    {
        None => return Ok(DEFAULT_CREATED.to_owned()),
        Some(value) => value,
    };
    if value == "now" {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or_default();
        return Ok(rfc3339_from_unix(now as i64));
    }
    value
        .parse::<i64>()
        .ok()
        .filter(|seconds| *seconds >= 0)
        .map(rfc3339_from_unix)
        .ok_or_else(|| BadCreationTime {
            value: value.to_owned(),
        })
}

/// Format unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339_from_unix(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs_of_day = seconds.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm), proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_from_unix(315_532_801), "1980-01-01T00:00:01Z");
        assert_eq!(rfc3339_from_unix(1_709_251_200), "2024-03-01T00:00:00Z");
        assert_eq!(rfc3339_from_unix(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn flag_beats_epoch_and_default_is_1980() {
        assert_eq!(creation_time(None, None).unwrap(), DEFAULT_CREATED);
        assert_eq!(
            creation_time(None, Some("0")).unwrap(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            creation_time(Some("315532801"), Some("0")).unwrap(),
            "1980-01-01T00:00:01Z"
        );
        assert!(creation_time(Some("yesterday"), None).is_err());
    }
}
