//! The app's environment: the image's `Env`, overridden by `-e`/`--env-file`, with Docker's
//! defaults for `PATH` and `HOME`. Env files follow `docker run --env-file`: one `NAME=VALUE`
//! per line taken verbatim (no quotes or escapes), `NAME` alone copies the caller's value,
//! blank lines and `#` comments are skipped.

use std::path::Path;

use super::error::RunError;

/// `PATH` when the image sets none (the one Docker and runc use).
pub(super) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Parse an env file.
pub fn parse_env_file(path: &Path) -> Result<Vec<(String, String)>, RunError> {
    let text = fs_err::read_to_string(path).map_err(|source| RunError::ReadEnvFile {
        path: path.to_path_buf(),
        source,
    })?;
    let mut variables = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let assignment = parse_env_assignment(line).map_err(|_| RunError::InvalidEnvFileLine {
            path: path.to_path_buf(),
            line: index + 1,
            text: line.to_owned(),
        })?;
        variables.extend(assignment);
    }
    Ok(variables)
}

/// Parse one `-e` value: `NAME=VALUE`, or `NAME` to copy the caller's value (nothing when the
/// caller has none).
pub fn parse_env_assignment(text: &str) -> Result<Option<(String, String)>, RunError> {
    let invalid = || RunError::InvalidEnvAssignment {
        text: text.to_owned(),
    };
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (text.trim_end(), None),
    };
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '\0') {
        return Err(invalid());
    }
    let value = match value {
        Some(value) => Some(value),
        None => std::env::var(name).ok(),
    };
    Ok(value.map(|value| (name.to_owned(), value)))
}

/// The final `NAME=VALUE` list: image env in its order, overrides replacing or appending.
pub(super) fn merge(
    image_env: &[String],
    overrides: &[(String, String)],
    home: &str,
) -> Vec<String> {
    let mut merged: Vec<(String, String)> = Vec::new();
    let mut set =
        |name: &str, value: &str| match merged.iter_mut().find(|(existing, _)| existing == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => merged.push((name.to_owned(), value.to_owned())),
        };
    for entry in image_env {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        set(name, value);
    }
    for (name, value) in overrides {
        set(name, value);
    }
    if !merged.iter().any(|(name, _)| name == "PATH") {
        merged.push(("PATH".to_owned(), DEFAULT_PATH.to_owned()));
    }
    if !merged.iter().any(|(name, _)| name == "HOME") {
        merged.push(("HOME".to_owned(), home.to_owned()));
    }
    merged
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_follows_docker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.env");
        // set_var is unsafe in edition 2024: use HOME, which the test runner has, for `NAME` lines.
        let home = std::env::var("HOME").ok();
        std::fs::write(
            &path,
            "# comment\n\nPORT=8080\n  QUOTED=\"kept\"\nEMPTY=\nHOME\nKILN_SURELY_UNSET_VARIABLE\nURL=a=b\n",
        )
        .unwrap();
        let mut expected = vec![
            ("PORT".to_owned(), "8080".to_owned()),
            ("QUOTED".to_owned(), "\"kept\"".to_owned()),
            ("EMPTY".to_owned(), String::new()),
        ];
        if let Some(home) = home {
            expected.push(("HOME".to_owned(), home));
        }
        expected.push(("URL".to_owned(), "a=b".to_owned()));
        assert_eq!(parse_env_file(&path).unwrap(), expected);
    }

    #[test]
    fn env_file_rejects_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.env");
        std::fs::write(&path, "OK=1\nBAD NAME=2\n").unwrap();
        match parse_env_file(&path) {
            Err(RunError::InvalidEnvFileLine { line, .. }) => assert_eq!(line, 2),
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse_env_assignment("=value").is_err());
    }

    #[test]
    fn overrides_replace_image_env_and_defaults_fill_in() {
        let image = vec!["PORT=8080".to_owned(), "LANG=C.UTF-8".to_owned()];
        let merged = merge(
            &image,
            &[("PORT".to_owned(), "9090".to_owned())],
            "/home/cnb",
        );
        assert_eq!(
            merged,
            [
                "PORT=9090",
                "LANG=C.UTF-8",
                &format!("PATH={DEFAULT_PATH}"),
                "HOME=/home/cnb"
            ]
        );
    }
}
