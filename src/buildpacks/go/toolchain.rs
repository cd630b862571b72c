//! The host's Go toolchain: which `go`, which version, and whether it can build the module.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::error::GoError;
use super::gomod::GoMod;
use super::version::GoVersion;
use crate::buildpack::BuildEnv;

/// A Go toolchain found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    /// The `go` program.
    pub program: PathBuf,
    /// Its version as `go version` prints it (`go1.27.3`, or `devel go1.28-…`).
    pub version: String,
    /// The version parsed, when it is a release.
    pub parsed: Option<GoVersion>,
}

/// `$GO` (a path, or a name looked up on PATH), else `go` on the build PATH.
pub fn locate(env: &BuildEnv) -> Result<PathBuf, GoError> {
    let path = env.get("PATH").unwrap_or_default();
    let wanted = env
        .get("GO")
        .filter(|value| !value.is_empty())
        .unwrap_or("go");
    let found = if wanted.contains('/') {
        Some(PathBuf::from(wanted)).filter(|candidate| is_executable(candidate))
    } else {
        std::env::split_paths(path)
            .map(|dir| dir.join(wanted))
            .find(|candidate| is_executable(candidate))
    };
    found.ok_or_else(|| GoError::ToolchainMissing {
        searched: vec![
            match env.get("GO") {
                Some(go) if !go.is_empty() => format!("$GO={go}"),
                _ => "$GO (unset)".to_owned(),
            },
            format!("`{wanted}` on PATH={path}"),
        ],
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// Ask `program` for its version. Runs in `scratch` with `GOTOOLCHAIN=local` so that no
/// go.mod around it can make the go command fetch another toolchain.
pub fn probe(program: &Path, env: &BuildEnv, scratch: &Path) -> Result<Toolchain, GoError> {
    let output = env
        .command(program, scratch)
        .arg("version")
        .env("GOTOOLCHAIN", "local")
        .env("GOENV", "off")
        .output()
        .map_err(|source| GoError::RunToolchain {
            program: program.to_path_buf(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let version = output
        .status
        .success()
        .then(|| parse_version_output(&stdout))
        .flatten()
        .ok_or_else(|| GoError::ToolchainVersion {
            program: program.to_path_buf(),
            output: format!(
                "{}{}",
                stdout.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        })?;
    Ok(Toolchain {
        program: program.to_path_buf(),
        parsed: GoVersion::parse(&version),
        version,
    })
}

/// `go version go1.27.3 linux/amd64` → `go1.27.3`; a development build keeps its words.
fn parse_version_output(output: &str) -> Option<String> {
    let rest = output.trim().strip_prefix("go version ")?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    match words.as_slice() {
        ["devel", version, ..] => Some(format!("devel {version}")),
        [version, ..] if version.starts_with("go") => Some((*version).to_owned()),
        _ => None,
    }
}

/// The go directive must not be newer than the toolchain: kiln never downloads another one.
/// A development toolchain cannot be compared and is trusted.
pub fn check_directive(gomod: &GoMod, toolchain: &Toolchain) -> Result<(), GoError> {
    match (&gomod.go, &toolchain.parsed) {
        (Some(required), Some(found)) if required > found => Err(GoError::ToolchainTooOld {
            required: required.to_string(),
            found: toolchain.version.clone(),
            program: toolchain.program.clone(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toolchain(version: &str) -> Toolchain {
        Toolchain {
            program: PathBuf::from("/usr/bin/go"),
            version: version.to_owned(),
            parsed: GoVersion::parse(version),
        }
    }

    #[test]
    fn reads_release_and_development_versions() {
        assert_eq!(
            parse_version_output("go version go1.19.8 linux/amd64\n").as_deref(),
            Some("go1.19.8")
        );
        assert_eq!(
            parse_version_output("go version devel go1.28-abc123 Tue linux/amd64").as_deref(),
            Some("devel go1.28-abc123")
        );
        assert_eq!(parse_version_output("something else"), None);
    }

    #[test]
    fn a_newer_go_directive_is_refused_naming_both_versions() {
        let gomod = GoMod::parse("module m\n\ngo 1.22\n").unwrap();
        let error = check_directive(&gomod, &toolchain("go1.19.8")).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("1.22") && text.contains("go1.19.8"), "{text}");
        assert!(check_directive(&gomod, &toolchain("go1.22.0")).is_ok());
        assert!(check_directive(&gomod, &toolchain("devel go1.28-abc")).is_ok());
        assert!(
            check_directive(&GoMod::parse("module m\n").unwrap(), &toolchain("go1.19")).is_ok()
        );
        let rc = GoMod::parse("module m\ngo 1.23rc1\n").unwrap();
        assert!(
            check_directive(&rc, &toolchain("go1.23")).is_err(),
            "1.23 (language version) is below 1.23rc1"
        );
    }

    #[test]
    fn locates_go_from_the_build_path_or_dollar_go() {
        let dir = tempfile::tempdir().unwrap();
        let go = dir.path().join("go");
        std::fs::write(&go, "#!/bin/sh\necho go version go1.27.3 linux/amd64\n").unwrap();
        std::fs::set_permissions(&go, std::fs::Permissions::from_mode(0o755)).unwrap();
        let on_path = BuildEnv::new(vec![("PATH".to_owned(), dir.path().display().to_string())]);
        assert_eq!(locate(&on_path).unwrap(), go);
        let probed = probe(&go, &on_path, dir.path()).unwrap();
        assert_eq!(probed.version, "go1.27.3");
        let explicit = BuildEnv::new(vec![
            ("PATH".to_owned(), "/nonexistent".to_owned()),
            ("GO".to_owned(), go.display().to_string()),
        ]);
        assert_eq!(locate(&explicit).unwrap(), go);
        let nowhere = BuildEnv::new(vec![("PATH".to_owned(), "/nonexistent".to_owned())]);
        assert!(matches!(
            locate(&nowhere),
            Err(GoError::ToolchainMissing { .. })
        ));
    }
}
