//! Installing dependencies with the host's pip into the dependency layer. The host Python
//! should match the runtime's minor version; when it does not, pip is asked for wheels of
//! the runtime's version and platform instead (`--python-version`, `--platform`,
//! `--only-binary=:all:`), since nothing can be compiled for a Python that is not here.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::error::PythonError;
use super::version::PythonVersion;
use crate::buildpack::BuildEnv;

/// The Python and pip on the build machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPython {
    /// The program run (`python3.11`, `python3`).
    pub program: String,
    /// Its version.
    pub version: PythonVersion,
    /// pip's version.
    pub pip: String,
}

/// How pip installs for the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallMode {
    /// The host Python is the runtime's minor version: pip installs as for itself.
    Native,
    /// Another minor version: binary wheels for the runtime's version and platforms only.
    CrossTarget {
        /// The runtime's version.
        python: PythonVersion,
        /// Platform tags the runtime accepts, most specific first.
        platforms: Vec<String>,
    },
}

impl InstallMode {
    /// A short name for cache metadata and logs.
    pub fn name(&self) -> &'static str {
        match self {
            InstallMode::Native => "native",
            InstallMode::CrossTarget { .. } => "cross-target",
        }
    }
}

/// What to install.
#[derive(Debug, Clone)]
pub struct InstallRequest<'a> {
    /// The layer directory to install into.
    pub target: &'a Path,
    /// A requirements file (relative to the app or absolute).
    pub requirements: Option<&'a Path>,
    /// Extra requirements (servers the start command needs).
    pub extra: &'a [&'a str],
    /// Native or cross-target.
    pub mode: &'a InstallMode,
}

const PROBE: &str = "import sys, pip; print(*sys.version_info[:3], pip.__version__)";

/// Find the host Python to install with: `python3.X` for the runtime's minor version when
/// it is on PATH with pip, else `python3`.
pub fn probe(
    env: &BuildEnv,
    dir: &Path,
    runtime: &PythonVersion,
) -> Result<HostPython, PythonError> {
    let exact = format!("python3.{}", runtime.minor);
    let mut last_error = None;
    for program in [exact.as_str(), "python3"] {
        if !on_path(env, program) {
            continue;
        }
        match probe_program(env, dir, program) {
            Ok(host) => return Ok(host),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| PythonError::StartHostPython {
        program: "python3".to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "not found on PATH"),
    }))
}

fn on_path(env: &BuildEnv, program: &str) -> bool {
    env.get("PATH")
        .is_some_and(|path| std::env::split_paths(path).any(|dir| dir.join(program).is_file()))
}

fn probe_program(env: &BuildEnv, dir: &Path, program: &str) -> Result<HostPython, PythonError> {
    let output = env
        .command(program, dir)
        .args(["-c", PROBE])
        .output()
        .map_err(|source| PythonError::StartHostPython {
            program: program.to_owned(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() {
        return Err(PythonError::HostPipMissing {
            program: program.to_owned(),
            output: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    parse_probe(&stdout)
        .ok_or_else(|| PythonError::ParseHostPython {
            program: program.to_owned(),
            output: stdout.clone(),
        })
        .map(|(version, pip)| HostPython {
            program: program.to_owned(),
            version,
            pip,
        })
}

/// `3 11 7 23.2.1` → (3.11.7, "23.2.1").
fn parse_probe(text: &str) -> Option<(PythonVersion, String)> {
    let mut words = text.split_whitespace();
    let mut number = || words.next()?.parse::<u32>().ok();
    let version = PythonVersion {
        major: number()?,
        minor: number()?,
        patch: number()?,
    };
    let pip = words.next()?.to_owned();
    Some((version, pip))
}

/// Native when the host's minor version is the runtime's, else cross-target for the
/// runtime's platform (`arch` as in OCI, glibc version of the stack when known).
pub fn install_mode(
    host: &PythonVersion,
    runtime: &PythonVersion,
    arch: &str,
    glibc: Option<(u32, u32)>,
) -> InstallMode {
    if (host.major, host.minor) == (runtime.major, runtime.minor) {
        return InstallMode::Native;
    }
    InstallMode::CrossTarget {
        python: *runtime,
        platforms: manylinux_platforms(arch, glibc),
    }
}

/// The manylinux tags a glibc system accepts, newest first, as pip computes them natively:
/// `manylinux_2_N` down to the oldest for the architecture, the legacy aliases, then the
/// plain `linux_` tag. Without a known glibc, manylinux2014 (glibc 2.17) is assumed.
pub fn manylinux_platforms(arch: &str, glibc: Option<(u32, u32)>) -> Vec<String> {
    let machine = match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i686",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    };
    let oldest = if matches!(machine, "x86_64" | "i686") {
        5
    } else {
        17
    };
    let newest = match glibc {
        Some((2, minor)) if minor >= oldest => minor,
        _ => 17,
    };
    let mut platforms: Vec<String> = (oldest..=newest)
        .rev()
        .map(|minor| format!("manylinux_2_{minor}_{machine}"))
        .collect();
    for (alias, minor) in [
        ("manylinux2014", 17),
        ("manylinux2010", 12),
        ("manylinux1", 5),
    ] {
        if minor >= oldest && minor <= newest {
            platforms.push(format!("{alias}_{machine}"));
        }
    }
    platforms.push(format!("linux_{machine}"));
    platforms
}

/// The glibc version in a Debian `libc6` version: `2.36-9+deb12u7` → (2, 36).
pub fn glibc_from_debian(version: &str) -> Option<(u32, u32)> {
    let upstream = version.split_once(':').map_or(version, |(_, rest)| rest);
    let mut parts = upstream.split(['-', '+', '~']).next()?.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// pip's arguments (after the program) for a request. Reproducible output: no byte-code
/// (`.pyc` carry timestamps), no cache, no version check, never prompting.
pub fn install_args(request: &InstallRequest<'_>) -> Vec<String> {
    let mut args: Vec<String> = ["-m", "pip", "install", "--target"]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
    args.push(request.target.display().to_string());
    for flag in [
        "--no-compile",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--no-input",
        "--no-warn-script-location",
        "--progress-bar",
        "off",
    ] {
        args.push(flag.to_owned());
    }
    if let InstallMode::CrossTarget { python, platforms } = request.mode {
        args.extend(["--python-version".to_owned(), python.minor_string()]);
        args.extend(["--implementation".to_owned(), "cp".to_owned()]);
        args.push("--only-binary=:all:".to_owned());
        for platform in platforms {
            args.extend(["--platform".to_owned(), platform.clone()]);
        }
    }
    if let Some(requirements) = request.requirements {
        args.extend(["-r".to_owned(), requirements.display().to_string()]);
    }
    args.extend(
        request
            .extra
            .iter()
            .map(|requirement| (*requirement).to_owned()),
    );
    args
}

/// Why an install failed, from pip's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipFailure {
    /// pip found no distribution for this requirement.
    NoMatchingDistribution(String),
    /// Anything else.
    Other,
}

/// Classify pip's output.
pub fn classify_failure(output: &str) -> PipFailure {
    output
        .lines()
        .find_map(|line| {
            line.split_once("No matching distribution found for ")
                .map(|(_, rest)| rest.trim())
        })
        .map(|requirement| PipFailure::NoMatchingDistribution(requirement.to_owned()))
        .unwrap_or(PipFailure::Other)
}

/// Run pip for `request` in `app_dir`; returns pip's combined output on success.
pub fn install(
    env: &BuildEnv,
    app_dir: &Path,
    host: &HostPython,
    request: &InstallRequest<'_>,
) -> Result<String, PipRun> {
    let output = env
        .command(&host.program, app_dir)
        .args(install_args(request))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .map_err(|source| {
            PipRun::Start(PythonError::StartHostPython {
                program: host.program.clone(),
                source,
            })
        })?;
    let text = combined(&output);
    if output.status.success() {
        Ok(text)
    } else {
        Err(PipRun::Failed {
            status: output
                .status
                .code()
                .map_or_else(|| "killed".to_owned(), |code| code.to_string()),
            output: text,
        })
    }
}

/// Whether `requirement` exists on the index for the host itself (no target constraints):
/// tells a missing package apart from one without a wheel for the runtime.
pub fn exists_natively(
    env: &BuildEnv,
    app_dir: &Path,
    host: &HostPython,
    requirement: &str,
    scratch: &Path,
) -> bool {
    env.command(&host.program, app_dir)
        .args([
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-deps",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
        ])
        .arg(scratch)
        .arg(requirement)
        .output()
        .is_ok_and(|output| output.status.success())
}

/// A pip run that did not succeed.
#[derive(Debug)]
pub enum PipRun {
    /// pip could not be started.
    Start(PythonError),
    /// pip exited with an error.
    Failed {
        /// Exit status.
        status: String,
        /// stdout and stderr.
        output: String,
    },
}

fn combined(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.trim().is_empty() {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&stderr);
    }
    text
}

/// The last `lines` lines of pip's output, for error messages.
pub fn tail(output: &str, lines: usize) -> String {
    let all: Vec<&str> = output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A requirements file for a PEP 621 dependency list, written outside the app.
pub fn write_requirements(dir: &Path, dependencies: &[String]) -> Result<PathBuf, PythonError> {
    let path = dir.join("pyproject-requirements.txt");
    let mut text = dependencies.join("\n");
    text.push('\n');
    fs_err::write(&path, text).map_err(|source| PythonError::WriteRequirements {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> PythonVersion {
        PythonVersion::from_debian(text).unwrap()
    }

    #[test]
    fn probe_output_parses() {
        assert_eq!(
            parse_probe("3 11 7 23.2.1\n"),
            Some((version("3.11.7"), "23.2.1".to_owned()))
        );
        assert_eq!(parse_probe("3 11"), None);
    }

    #[test]
    fn same_minor_is_native_other_minor_is_cross_target() {
        assert_eq!(
            install_mode(
                &version("3.11.7"),
                &version("3.11.2"),
                "amd64",
                Some((2, 36))
            ),
            InstallMode::Native
        );
        let InstallMode::CrossTarget { python, platforms } = install_mode(
            &version("3.12.1"),
            &version("3.11.2"),
            "amd64",
            Some((2, 36)),
        ) else {
            panic!("expected cross-target");
        };
        assert_eq!(python.minor_string(), "3.11");
        assert_eq!(platforms.first().unwrap(), "manylinux_2_36_x86_64");
        assert!(platforms.contains(&"manylinux2014_x86_64".to_owned()));
        assert!(platforms.contains(&"manylinux_2_17_x86_64".to_owned()));
        assert_eq!(platforms.last().unwrap(), "linux_x86_64");
    }

    #[test]
    fn manylinux_tags_follow_glibc_and_arch() {
        let arm = manylinux_platforms("arm64", Some((2, 31)));
        assert_eq!(arm.first().unwrap(), "manylinux_2_31_aarch64");
        assert!(
            !arm.iter()
                .any(|tag| tag.starts_with("manylinux1") || tag.starts_with("manylinux2010"))
        );
        let unknown = manylinux_platforms("amd64", None);
        assert_eq!(unknown.first().unwrap(), "manylinux_2_17_x86_64");
        assert!(!unknown.iter().any(|tag| tag.contains("2_36")));
        assert_eq!(glibc_from_debian("2.36-9+deb12u7"), Some((2, 36)));
        assert_eq!(glibc_from_debian("garbage"), None);
    }

    #[test]
    fn args_are_reproducible_and_cross_target_asks_for_wheels() {
        let native = InstallMode::Native;
        let target = Path::new("/layers/deps");
        let args = install_args(&InstallRequest {
            target,
            requirements: Some(Path::new("requirements.txt")),
            extra: &["gunicorn"],
            mode: &native,
        });
        for flag in [
            "--no-compile",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--target",
        ] {
            assert!(args.contains(&flag.to_owned()), "{flag} in {args:?}");
        }
        assert_eq!(
            &args[args.len() - 3..],
            ["-r", "requirements.txt", "gunicorn"]
        );
        assert!(!args.iter().any(|arg| arg.starts_with("--only-binary")));

        let cross = install_mode(
            &version("3.12.0"),
            &version("3.11.2"),
            "amd64",
            Some((2, 36)),
        );
        let args = install_args(&InstallRequest {
            target,
            requirements: None,
            extra: &["flask"],
            mode: &cross,
        });
        let joined = args.join(" ");
        assert!(joined.contains("--python-version 3.11 --implementation cp --only-binary=:all: --platform manylinux_2_36_x86_64"), "{joined}");
    }

    #[test]
    fn missing_distributions_are_recognized() {
        let output = "ERROR: Could not find a version that satisfies the requirement kiln-nope==1.0 (from versions: none)\nERROR: No matching distribution found for kiln-nope==1.0\n";
        assert_eq!(
            classify_failure(output),
            PipFailure::NoMatchingDistribution("kiln-nope==1.0".to_owned())
        );
        assert_eq!(
            classify_failure("error: subprocess-exited-with-error"),
            PipFailure::Other
        );
        assert_eq!(tail("a\n\nb\nc\n", 2), "b\nc");
    }
}
