//! Environment variables: names, `--env`/`--env-file` parsing, and the allowlist of host
//! variables build steps may see.

use std::path::{Path, PathBuf};

/// Host variables passed to build steps; everything else (tokens, registry credentials,
/// cloud keys…) stays out. Mirrors the CNB lifecycle's filter plus locale and CA paths.
pub const HOST_ALLOWLIST: &[&str] = &[
    "PATH",
    "HOME",
    "HOSTNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "PIP_CONFIG_FILE",
    "NPM_CONFIG_REGISTRY",
    "npm_config_registry",
    "NPM_CONFIG_USERCONFIG",
    "MAVEN_SETTINGS",
    // Which Go toolchain the Go buildpack runs (`$GO`); harmless to every other tool.
    "GO",
];

/// Errors reading user-supplied environment.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("`{entry}` is not NAME=VALUE (or NAME to copy it from your environment)")]
    BadEntry { entry: String },
    #[error("`{name}` is not a valid environment variable name")]
    BadName { name: String },
    #[error("cannot read the env file {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: `{text}` is not NAME=VALUE")]
    BadFileLine {
        path: PathBuf,
        line: usize,
        text: String,
    },
}

impl crate::diagnostic::Diagnose for EnvError {
    fn class(&self) -> crate::diagnostic::ErrorClass {
        crate::diagnostic::ErrorClass::User
    }
}

/// Whether `name` is a portable variable name.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parse one `--env` value: `NAME=VALUE`, or `NAME` to copy the variable from the host.
pub fn parse_env_arg(entry: &str) -> Result<(String, String), EnvError> {
    let (name, value) = match entry.split_once('=') {
        Some((name, value)) => (name, value.to_owned()),
        None => (entry, std::env::var(entry).unwrap_or_default()),
    };
    if name.is_empty() {
        return Err(EnvError::BadEntry {
            entry: entry.to_owned(),
        });
    }
    if !is_valid_name(name) {
        return Err(EnvError::BadName {
            name: name.to_owned(),
        });
    }
    Ok((name.to_owned(), value))
}

/// Parse an env file: `NAME=VALUE` per line, blank lines and `#` comments ignored, a bare
/// `NAME` copies the host value (as `docker run --env-file` does).
pub fn parse_env_file(path: &Path) -> Result<Vec<(String, String)>, EnvError> {
    let text = fs_err::read_to_string(path).map_err(|source| EnvError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let entry = parse_env_arg(trimmed).map_err(|_| EnvError::BadFileLine {
            path: path.to_path_buf(),
            line: index + 1,
            text: line.to_owned(),
        })?;
        entries.push(entry);
    }
    Ok(entries)
}

/// Set `name` in an ordered list of pairs, replacing an existing entry in place.
pub fn set_var(vars: &mut Vec<(String, String)>, name: &str, value: String) {
    match vars.iter_mut().find(|(existing, _)| existing == name) {
        Some(entry) => entry.1 = value,
        None => vars.push((name.to_owned(), value)),
    }
}

/// The value of `name` in an ordered list of pairs.
pub fn get_var<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
    vars.iter()
        .find(|(existing, _)| existing == name)
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_args_and_files() {
        assert_eq!(
            parse_env_arg("A=b=c").unwrap(),
            ("A".to_owned(), "b=c".to_owned())
        );
        assert!(parse_env_arg("=x").is_err());
        assert!(parse_env_arg("1A=x").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        std::fs::write(&path, "# comment\n\nA=1\nB= spaced \n").unwrap();
        assert_eq!(
            parse_env_file(&path).unwrap(),
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), " spaced ".to_owned())
            ]
        );
        std::fs::write(&path, "A=1\nnot valid\n").unwrap();
        assert!(matches!(
            parse_env_file(&path),
            Err(EnvError::BadFileLine { line: 2, .. })
        ));
    }
}
