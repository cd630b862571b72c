//! Running `mvn`: one invocation packages the app and copies its runtime dependencies, and
//! a failure is turned into an error that names the repository or artifact at fault.
//!
//! Runtime dependencies come from `maven-dependency-plugin:copy-dependencies` (scope
//! runtime, file names prefixed with the groupId so equal artifactIds cannot collide). It is
//! named by full coordinates because Debian's repository has no plugin-prefix metadata; the
//! version is the POM's own when it declares the plugin, else the one in `buildpack.toml`
//! (present in Maven Central and in Debian bookworm's libmaven-dependency-plugin-java).
//! Resolving the classpath inside kiln instead would mean re-implementing Maven's
//! dependency mediation, scopes, exclusions and parent POMs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::error::JavaError;
use super::settings::MavenSettings;
use crate::buildpack::BuildEnv;

/// JVM flags for Maven when the user sets no `MAVEN_OPTS`. A build is a short-lived JVM:
/// stopping at the C1 compiler and using the serial collector cuts a small project's
/// `mvn package` from ~6.5 s to ~2.2 s on this project's 2-core machines.
pub const DEFAULT_MAVEN_OPTS: &str = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC";

/// At most this many `[ERROR]` lines are kept for the error report.
const MAX_ERROR_LINES: usize = 200;

/// What one `mvn` run is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MavenInvocation {
    /// `-s FILE`.
    pub settings: Option<PathBuf>,
    /// The local repository (a cache-only layer).
    pub local_repository: PathBuf,
    /// `-Dmaven.compiler.release`, when the POM sets neither release nor target.
    pub release: Option<u32>,
    /// `-Dproject.build.outputTimestamp`, when the POM sets none.
    pub output_timestamp: Option<String>,
    /// The module to build with what it needs (`-pl DIR -am`), for multi-module projects.
    pub module: Option<String>,
    /// `groupId:artifactId:version` of maven-dependency-plugin.
    pub dependency_plugin: String,
    /// Where runtime dependency jars are copied.
    pub dependencies_dir: PathBuf,
}

impl MavenInvocation {
    /// The `mvn` arguments.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["-B".into(), "--no-transfer-progress".into()];
        if let Some(settings) = &self.settings {
            args.extend(["-s".into(), settings.display().to_string()]);
        }
        args.push(format!(
            "-Dmaven.repo.local={}",
            self.local_repository.display()
        ));
        args.push("-DskipTests".into());
        if let Some(release) = self.release {
            args.push(format!("-Dmaven.compiler.release={release}"));
        }
        if let Some(timestamp) = &self.output_timestamp {
            args.push(format!("-Dproject.build.outputTimestamp={timestamp}"));
        }
        if let Some(module) = &self.module {
            args.extend(["-pl".into(), module.clone(), "-am".into()]);
        }
        args.push("package".into());
        args.push(format!("{}:copy-dependencies", self.dependency_plugin));
        args.push("-DincludeScope=runtime".into());
        args.push("-Dmdep.prependGroupId=true".into());
        args.push(format!(
            "-DoutputDirectory={}",
            self.dependencies_dir.display()
        ));
        args
    }
}

/// Run `mvn ARGS` in `dir`, streaming its output to `log`.
pub fn run(
    env: &BuildEnv,
    dir: &Path,
    args: &[String],
    settings: Option<&MavenSettings>,
    log: &dyn Fn(&str),
) -> Result<(), JavaError> {
    let mut command = env.command("mvn", dir);
    if env.get("MAVEN_OPTS").is_none() {
        command.env("MAVEN_OPTS", DEFAULT_MAVEN_OPTS);
        log(&format!("MAVEN_OPTS={DEFAULT_MAVEN_OPTS}"));
    }
    log(&format!("$ mvn {}", args.join(" ")));
    let mut child = command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => JavaError::MavenMissing,
            _ => JavaError::RunMaven(error),
        })?;
    let stderr = child.stderr.take().map(|stderr| {
        std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        })
    });
    let mut errors = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let line = strip_ansi(&line);
            if line.is_empty() {
                continue;
            }
            if line.starts_with("[ERROR]") && errors.len() < MAX_ERROR_LINES {
                errors.push(line.clone());
            }
            log(&line);
        }
    }
    let status = child.wait().map_err(JavaError::RunMaven)?;
    let stderr_lines = stderr
        .and_then(|thread| thread.join().ok())
        .unwrap_or_default();
    let stderr_lines: Vec<String> = stderr_lines
        .iter()
        .map(|line| strip_ansi(line))
        .filter(|line| !line.is_empty())
        .collect();
    for line in &stderr_lines {
        log(line);
    }
    if status.success() {
        return Ok(());
    }
    errors.extend(stderr_lines);
    Err(diagnose_failure(&status.to_string(), &errors, settings))
}

/// Turn Maven's error lines into the most specific error: unreachable repository, refused
/// credentials, missing artifact, a JDK too old for the release, else the error lines.
pub fn diagnose_failure(
    status: &str,
    errors: &[String],
    settings: Option<&MavenSettings>,
) -> JavaError {
    for line in errors {
        if let Some((repository, url, cause)) = transfer_failure(line) {
            if cause.contains("status code: 401")
                || cause.contains("status code: 403")
                || cause.contains("Unauthorized")
            {
                return JavaError::RepositoryUnauthorized {
                    repository,
                    url,
                    cause,
                };
            }
            return JavaError::RepositoryUnreachable {
                repository,
                url,
                cause,
                settings: settings.map(|settings| settings.path.clone()),
            };
        }
        if let Some(error) = missing_artifact(line) {
            return error;
        }
        if let Some((repository, url)) = offline_miss(line) {
            return JavaError::RepositoryUnreachable {
                repository,
                url,
                cause: "Maven runs offline and the artifact is not in kiln's cached local repository yet".to_owned(),
                settings: settings.map(|settings| settings.path.clone()),
            };
        }
        if let Some(release) = unsupported_release(line) {
            return JavaError::JdkTooOld {
                release,
                message: line.trim_start_matches("[ERROR]").trim().to_owned(),
            };
        }
    }
    let boilerplate = [
        "To see the full stack trace",
        "Re-run Maven",
        "For more information",
        "[Help 1]",
        "-> [Help",
    ];
    let errors: Vec<String> = errors
        .iter()
        .map(|line| line.trim_start_matches("[ERROR]").trim().to_owned())
        .filter(|line| !line.is_empty() && !boilerplate.iter().any(|noise| line.starts_with(noise)))
        .take(20)
        .collect();
    JavaError::MavenFailed {
        status: status.to_owned(),
        errors,
    }
}

/// `… from/to ID (URL): CAUSE`.
fn transfer_failure(line: &str) -> Option<(String, String, String)> {
    let rest = &line[line.find("from/to ")? + "from/to ".len()..];
    let (repository, rest) = rest.split_once(" (")?;
    let (url, cause) = rest.split_once("): ")?;
    Some((repository.to_owned(), url.to_owned(), trim_help(cause)))
}

/// `Could not find artifact G:A:jar:V in ID (URL)`.
fn missing_artifact(line: &str) -> Option<JavaError> {
    let rest = &line[line.find("Could not find artifact ")? + "Could not find artifact ".len()..];
    let (artifact, rest) = rest.split_once(" in ")?;
    let (repository, rest) = rest.split_once(" (")?;
    let url = rest.split(')').next()?;
    Some(JavaError::ArtifactMissing {
        artifact: artifact.to_owned(),
        repository: repository.to_owned(),
        url: url.to_owned(),
    })
}

/// `Cannot access ID (URL) in offline mode …`.
fn offline_miss(line: &str) -> Option<(String, String)> {
    let rest = &line[line.find("Cannot access ")? + "Cannot access ".len()..];
    if !rest.contains("in offline mode") {
        return None;
    }
    let (repository, rest) = rest.split_once(" (")?;
    let url = rest.split(')').next()?;
    Some((repository.to_owned(), url.to_owned()))
}

/// javac's `release version N not supported` / `invalid target release: N`.
fn unsupported_release(line: &str) -> Option<u32> {
    let after = ["release version ", "invalid target release: "]
        .iter()
        .find_map(|marker| line.find(marker).map(|index| &line[index + marker.len()..]))?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn trim_help(text: &str) -> String {
    text.split(" -> [Help")
        .next()
        .unwrap_or(text)
        .trim()
        .to_owned()
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequences end with a letter.
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Forget Maven's records of failed downloads (`*.lastUpdated`) in the cached local
/// repository, so the next build retries instead of repeating a failure that was fixed.
pub fn forget_failed_downloads(local_repository: &Path) {
    for entry in walkdir::WalkDir::new(local_repository)
        .into_iter()
        .filter_map(Result::ok)
    {
        if entry.file_type().is_file()
            && entry
                .file_name()
                .to_string_lossy()
                .ends_with(".lastUpdated")
        {
            // Best effort: a marker left behind only delays a retry.
            let _ = fs_err::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MavenSettings {
        MavenSettings {
            path: PathBuf::from("/home/u/.m2/settings.xml"),
            origin: "~/.m2/settings.xml".to_owned(),
            mirrors: Vec::new(),
            offline: false,
        }
    }

    #[test]
    fn arguments_name_every_setting() {
        let invocation = MavenInvocation {
            settings: Some(PathBuf::from("/s.xml")),
            local_repository: PathBuf::from("/layers/repo"),
            release: Some(17),
            output_timestamp: Some("1980-01-01T00:00:02Z".to_owned()),
            module: Some("app".to_owned()),
            dependency_plugin: "org.apache.maven.plugins:maven-dependency-plugin:3.5.0".to_owned(),
            dependencies_dir: PathBuf::from("/deps"),
        };
        assert_eq!(invocation.args().join(" "), [
            "-B --no-transfer-progress -s /s.xml -Dmaven.repo.local=/layers/repo -DskipTests",
            "-Dmaven.compiler.release=17 -Dproject.build.outputTimestamp=1980-01-01T00:00:02Z -pl app -am package",
            "org.apache.maven.plugins:maven-dependency-plugin:3.5.0:copy-dependencies -DincludeScope=runtime",
            "-Dmdep.prependGroupId=true -DoutputDirectory=/deps",
        ]
        .join(" "));
        let plain = MavenInvocation {
            settings: None,
            release: None,
            output_timestamp: None,
            module: None,
            ..invocation
        };
        let args = plain.args();
        assert!(
            !args.iter().any(|arg| arg == "-s"
                || arg == "-pl"
                || arg.starts_with("-Dmaven.compiler.release"))
        );
    }

    #[test]
    fn unreachable_repository_is_named() {
        let line = "[ERROR] Plugin org.apache.maven.plugins:maven-resources-plugin:2.6 or one of its dependencies could not be \
            resolved: Failed to read artifact descriptor for org.apache.maven.plugins:maven-resources-plugin:jar:2.6: Could not \
            transfer artifact org.apache.maven.plugins:maven-resources-plugin:pom:2.6 from/to company (http://127.0.0.1:9/): \
            Connect to 127.0.0.1:9 [/127.0.0.1] failed: Connection refused -> [Help 1]";
        let error = diagnose_failure("exit status: 1", &[line.to_owned()], Some(&settings()));
        match error {
            JavaError::RepositoryUnreachable {
                repository,
                url,
                cause,
                settings,
            } => {
                assert_eq!(repository, "company");
                assert_eq!(url, "http://127.0.0.1:9/");
                assert_eq!(
                    cause,
                    "Connect to 127.0.0.1:9 [/127.0.0.1] failed: Connection refused"
                );
                assert_eq!(settings, Some(PathBuf::from("/home/u/.m2/settings.xml")));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn refused_credentials_missing_artifacts_and_old_jdks() {
        let unauthorized = "[ERROR] Could not transfer artifact a:b:pom:1 from/to nexus (https://n/repo): authentication failed \
            for https://n/repo/a/b/1/b-1.pom, status: 401 Unauthorized";
        assert!(
            matches!(diagnose_failure("", &[unauthorized.to_owned()], None), JavaError::RepositoryUnauthorized { repository, .. } if repository == "nexus")
        );
        let missing = "[ERROR] Failed to execute goal on project app: Could not resolve dependencies for project g:app:jar:1: \
            Could not find artifact com.example:nothing:jar:9.9 in company (http://127.0.0.1:5/) -> [Help 1]";
        assert!(matches!(
            diagnose_failure("", &[missing.to_owned()], None),
            JavaError::ArtifactMissing { artifact, repository, url }
                if artifact == "com.example:nothing:jar:9.9" && repository == "company" && url == "http://127.0.0.1:5/"
        ));
        let jdk = "[ERROR] Failed to execute goal ...: Fatal error compiling: error: release version 21 not supported -> [Help 1]";
        assert!(matches!(
            diagnose_failure("", &[jdk.to_owned()], None),
            JavaError::JdkTooOld { release: 21, .. }
        ));
        let offline = "[ERROR] ... Cannot access central (https://repo.maven.apache.org/maven2) in offline mode and the artifact \
            a:b:jar:1 has not been downloaded from it before.";
        assert!(
            matches!(diagnose_failure("", &[offline.to_owned()], None), JavaError::RepositoryUnreachable { repository, .. } if repository == "central")
        );
    }

    #[test]
    fn other_failures_keep_the_error_lines_without_boilerplate() {
        let lines = [
            "[ERROR] COMPILATION ERROR : ",
            "[ERROR] /app/src/main/java/A.java:[3,5] ';' expected",
            "[ERROR] ",
            "[ERROR] To see the full stack trace of the errors, re-run Maven with the -e switch.",
        ]
        .map(str::to_owned);
        match diagnose_failure("exit status: 1", &lines, None) {
            JavaError::MavenFailed { status, errors } => {
                assert_eq!(status, "exit status: 1");
                assert_eq!(
                    errors,
                    [
                        "COMPILATION ERROR :",
                        "/app/src/main/java/A.java:[3,5] ';' expected"
                    ]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn strips_colour_codes() {
        assert_eq!(
            strip_ansi("\u{1b}[1;31m[ERROR]\u{1b}[m boom"),
            "[ERROR] boom"
        );
    }
}
