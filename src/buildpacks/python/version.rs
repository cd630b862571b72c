//! Which Python the app asks for (`.python-version`, `runtime.txt`) and whether the stack's
//! version satisfies it. Requests are honoured by minor version: Debian ships one patch
//! release per suite, so `3.11.7` in a pyenv file means "a 3.11".

use std::fmt;

use super::error::PythonError;
use crate::source::SourceTree;

/// The file names read, in order of precedence.
pub const VERSION_FILES: [&str; 2] = [".python-version", "runtime.txt"];

/// A Python version the app asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRequest {
    /// Major version.
    pub major: u32,
    /// Minor version, when given.
    pub minor: Option<u32>,
    /// The file it came from.
    pub file: String,
}

impl VersionRequest {
    /// Whether `version` satisfies the request.
    pub fn matches(&self, version: &PythonVersion) -> bool {
        self.major == version.major && self.minor.is_none_or(|minor| minor == version.minor)
    }
}

impl fmt::Display for VersionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.minor {
            Some(minor) => write!(f, "{}.{minor}", self.major),
            None => write!(f, "{}", self.major),
        }
    }
}

/// A concrete CPython version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PythonVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch (0 when unknown).
    pub patch: u32,
}

impl PythonVersion {
    /// The upstream version inside a Debian package version: `3.11.2-1+b1` → 3.11.2; an
    /// epoch (`1:`) is skipped.
    pub fn from_debian(version: &str) -> Option<Self> {
        let upstream = version.split_once(':').map_or(version, |(_, rest)| rest);
        let upstream = upstream.split(['-', '~', '+']).next()?;
        let mut parts = upstream.split('.').map(|part| part.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next()??;
        let patch = parts.next().flatten().unwrap_or(0);
        Some(Self {
            major,
            minor,
            patch,
        })
    }

    /// `3.11`.
    pub fn minor_string(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for PythonVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The app's version request, if any: `.python-version` first, then `runtime.txt`.
pub fn read_request(source: &SourceTree) -> Result<Option<VersionRequest>, PythonError> {
    for file in VERSION_FILES {
        let Some(text) = source
            .read_to_string(file)
            .map_err(PythonError::ReadSource)?
        else {
            continue;
        };
        let parsed = match file {
            "runtime.txt" => parse_runtime_txt(&text, file)?,
            _ => parse_python_version_file(&text, file)?,
        };
        if parsed.is_some() {
            return Ok(parsed);
        }
    }
    Ok(None)
}

/// A pyenv `.python-version`: the first line that is not blank or a comment; `system` means
/// no request. `3.11`, `3.11.7`, `3.12-dev`, `3` are accepted; `pypy3.10` is refused.
pub fn parse_python_version_file(
    text: &str,
    file: &str,
) -> Result<Option<VersionRequest>, PythonError> {
    let Some((index, line)) = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index, line.trim()))
        .find(|(_, line)| !line.is_empty() && !line.starts_with('#'))
    else {
        return Ok(None);
    };
    if line == "system" {
        return Ok(None);
    }
    parse_version_text(line, line, file, index + 1).map(Some)
}

/// Heroku's `runtime.txt`: `python-3.11.4` or `python-3.11`.
pub fn parse_runtime_txt(text: &str, file: &str) -> Result<Option<VersionRequest>, PythonError> {
    let Some((index, line)) = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index, line.trim()))
        .find(|(_, line)| !line.is_empty())
    else {
        return Ok(None);
    };
    let version = line
        .strip_prefix("python-")
        .ok_or_else(|| PythonError::ParseVersion {
            file: file.to_owned(),
            line: index + 1,
            text: line.to_owned(),
        })?;
    parse_version_text(version, line, file, index + 1).map(Some)
}

fn parse_version_text(
    version: &str,
    line_text: &str,
    file: &str,
    line: usize,
) -> Result<VersionRequest, PythonError> {
    let bad = || PythonError::ParseVersion {
        file: file.to_owned(),
        line,
        text: line_text.to_owned(),
    };
    for implementation in [
        "pypy",
        "graalpy",
        "jython",
        "micropython",
        "anaconda",
        "miniconda",
        "mambaforge",
        "pyston",
    ] {
        if version.to_ascii_lowercase().starts_with(implementation) {
            return Err(PythonError::UnsupportedImplementation {
                file: file.to_owned(),
                text: line_text.to_owned(),
                implementation: implementation.to_owned(),
            });
        }
    }
    // `3.12-dev`, `3.13.0rc1`, `3.11.x`: only the leading numbers matter.
    let numbers: Vec<&str> = version
        .split(['-', '+'])
        .next()
        .unwrap_or("")
        .split('.')
        .collect();
    let leading_number = |part: &str| -> Option<u32> {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let major = numbers
        .first()
        .and_then(|part| part.parse::<u32>().ok())
        .ok_or_else(bad)?;
    if major < 3 {
        return Err(bad());
    }
    let minor = match numbers.get(1) {
        None => None,
        Some(part) => Some(leading_number(part).ok_or_else(bad)?),
    };
    Ok(VersionRequest {
        major,
        minor,
        file: file.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Option<VersionRequest> {
        parse_python_version_file(text, ".python-version").unwrap()
    }

    #[test]
    fn python_version_file_is_read_by_minor() {
        let exact = request("3.11.7\n").unwrap();
        assert_eq!((exact.major, exact.minor), (3, Some(11)));
        assert_eq!(exact.to_string(), "3.11");
        assert_eq!(
            request("# pinned\n\n 3.12-dev \n3.10\n").unwrap().minor,
            Some(12)
        );
        assert_eq!(request("3.13.0rc1").unwrap().minor, Some(13));
        assert_eq!(request("3").unwrap().minor, None);
        assert_eq!(request("system"), None);
        assert_eq!(request("\n# nothing\n"), None);
    }

    #[test]
    fn bad_version_files_are_errors_naming_the_line() {
        assert!(matches!(
            parse_python_version_file("\nbanana\n", ".python-version"),
            Err(PythonError::ParseVersion { line: 2, .. })
        ));
        assert!(matches!(
            parse_python_version_file("2.7.18", ".python-version"),
            Err(PythonError::ParseVersion { .. })
        ));
        assert!(matches!(
            parse_python_version_file("pypy3.10-7.3.12", ".python-version"),
            Err(PythonError::UnsupportedImplementation { .. })
        ));
    }

    #[test]
    fn runtime_txt_needs_the_python_prefix() {
        let request = parse_runtime_txt("python-3.11.x\n", "runtime.txt")
            .unwrap()
            .unwrap();
        assert_eq!((request.major, request.minor), (3, Some(11)));
        assert!(parse_runtime_txt("3.11", "runtime.txt").is_err());
    }

    #[test]
    fn debian_versions_give_the_upstream_version() {
        let version = PythonVersion::from_debian("3.11.2-1+b1").unwrap();
        assert_eq!(
            version,
            PythonVersion {
                major: 3,
                minor: 11,
                patch: 2
            }
        );
        assert_eq!(
            PythonVersion::from_debian("1:3.13.5-1~bpo12+1")
                .unwrap()
                .minor,
            13
        );
        assert_eq!(PythonVersion::from_debian("3.12").unwrap().patch, 0);
        assert_eq!(PythonVersion::from_debian("garbage"), None);
    }

    #[test]
    fn matching_is_by_minor_or_major() {
        let stack = PythonVersion::from_debian("3.11.2-1+b1").unwrap();
        assert!(request("3.11.9").unwrap().matches(&stack));
        assert!(request("3").unwrap().matches(&stack));
        assert!(!request("3.12").unwrap().matches(&stack));
        assert!(!request("4.0").unwrap().matches(&stack));
    }
}
