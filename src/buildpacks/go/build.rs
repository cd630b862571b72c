//! The build: check the toolchain, reuse the binaries when nothing they depend on changed,
//! else `go build` each target into a launch layer with the Go caches in cache-only layers.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::json;

use super::detect::{GoApp, ModMode, analyze};
use super::error::GoError;
use super::fingerprint::source_sha256;
use super::gomod::GoMod;
use super::targets::GoTarget;
use super::toolchain::{self, Toolchain};
use crate::buildpack::{
    BuildContext, BuildEnv, BuildResult, BuildpackFailure, Layer, LayerTypes, Process, ProcessType,
};

/// Flags that make the binary a pure function of source and toolchain: no build paths, no
/// VCS stamp, no build id derived from the machine; with CGO off it is static.
const BUILD_FLAGS: &[&str] = &["-trimpath", "-buildvcs=false", "-ldflags=-buildid="];

/// Markers in go's output when a module had to be downloaded and could not be.
const DOWNLOAD_MARKERS: &[&str] = &[
    "missing go.sum entry",
    "GOPROXY=off",
    "module lookup disabled",
    "dial tcp",
    "no such host",
];

/// Build the Go app in `context`.
pub fn build(context: &mut BuildContext<'_>) -> Result<BuildResult, BuildpackFailure> {
    let GoApp {
        gomod,
        mod_mode,
        choice,
        ..
    } = analyze(context.source, &context.env, context.target)?.ok_or(GoError::GoModMissing)?;
    let choice = choice?;
    context.log(&format!("targets: {}", choice.describe()));

    // Scratch space (GOPATH, go's config dir): neither cached nor exported.
    let scratch = context
        .layers
        .dir_layer("scratch", LayerTypes::default(), json!({}))?;
    let scratch = layer_dir(&scratch)?;
    let toolchain = toolchain::probe(&toolchain::locate(&context.env)?, &context.env, &scratch)?;
    context.log(&format!(
        "Go toolchain {} at {}",
        toolchain.version,
        toolchain.program.display()
    ));
    toolchain::check_directive(&gomod, &toolchain)?;

    let platform = format!("{}/{}", context.target.os, context.target.arch);
    let packages: Vec<&str> = choice
        .targets
        .iter()
        .map(|target| target.package.as_str())
        .collect();
    let metadata = json!({
        "go": toolchain.version,
        "platform": platform,
        "source_sha256": source_sha256(context.source)?,
        "targets": packages.join(":"),
        "mod": mod_mode.flag(),
        "flags": BUILD_FLAGS.join(" "),
        "go_env": user_go_env_sha256(&context.env),
    });
    let binaries = context
        .layers
        .dir_layer("targets", LayerTypes::LAUNCH_CACHED, metadata)?;
    let mut layers = Vec::new();
    if binaries.is_restored() {
        context.log("reusing the binaries: source, toolchain and targets are unchanged");
    } else {
        log_reasons(context, &binaries);
        let gocache = context.layers.dir_layer(
            "gocache",
            LayerTypes::CACHE_ONLY,
            json!({ "go": toolchain.version }),
        )?;
        // Downloaded modules are content-addressed and valid for every toolchain.
        let gomodcache = context.layers.dir_layer(
            "gomodcache",
            LayerTypes::CACHE_ONLY,
            json!({ "layout": 1 }),
        )?;
        let go = GoCommand {
            toolchain: &toolchain,
            gomod: &gomod,
            mod_mode,
            gocache: layer_dir(&gocache)?,
            gomodcache: layer_dir(&gomodcache)?,
            scratch,
        };
        context.log(&format!(
            "build cache: {}",
            if gocache.is_restored() {
                "warm"
            } else {
                "cold"
            }
        ));
        let bin = layer_dir(&binaries)?.join("bin");
        fs_err::create_dir_all(&bin).map_err(|source| GoError::PrepareDir {
            path: bin.clone(),
            source,
        })?;
        for target in &choice.targets {
            context.log(&format!(
                "go build {} → bin/{}",
                target.package, target.binary
            ));
            go.compile(context, target, &bin.join(&target.binary))?;
        }
        layers.push(gocache);
        layers.push(gomodcache);
    }
    let processes = processes(&context.layers.image_path(&binaries.name), &choice.targets);
    layers.push(binaries);
    Ok(BuildResult {
        layers,
        processes,
        labels: Vec::new(),
    })
}

fn layer_dir(layer: &Layer) -> Result<PathBuf, GoError> {
    layer.dir().cloned().ok_or_else(|| GoError::PrepareDir {
        path: layer.name.as_str().into(),
        source: std::io::Error::other("not a directory layer"),
    })
}

fn log_reasons(context: &BuildContext<'_>, layer: &Layer) {
    if let crate::buildpack::LayerState::Empty { reasons } = &layer.state {
        context.log(&format!("building the binaries: {}", reasons.join(", ")));
    }
}

/// `GO*` variables the user set (e.g. `GOAMD64`, `GOFLAGS`, `GOPROXY`) change the output, so
/// they are part of the cache key; hashed, because the metadata lands in an image label and
/// a proxy URL may carry credentials. Empty when there are none.
fn user_go_env_sha256(env: &BuildEnv) -> String {
    let mut vars: Vec<String> = env
        .vars()
        .iter()
        .filter(|(name, _)| name.starts_with("GO") && name != "GO")
        .map(|(name, value)| format!("{name}={value}\n"))
        .collect();
    if vars.is_empty() {
        return String::new();
    }
    vars.sort();
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(vars.concat().as_bytes()))
}

/// How to run `go build` for this app.
struct GoCommand<'a> {
    toolchain: &'a Toolchain,
    gomod: &'a GoMod,
    mod_mode: ModMode,
    gocache: PathBuf,
    gomodcache: PathBuf,
    scratch: PathBuf,
}

impl GoCommand<'_> {
    fn compile(
        &self,
        context: &BuildContext<'_>,
        target: &GoTarget,
        output: &Path,
    ) -> Result<(), GoError> {
        let env = &context.env;
        let mut command = env.command(&self.toolchain.program, context.app_dir);
        command
            .arg("build")
            .arg("-o")
            .arg(output)
            .args(BUILD_FLAGS)
            .arg(&target.package);
        command
            .env("CGO_ENABLED", "0")
            .env("GOOS", &context.target.os)
            .env("GOARCH", &context.target.arch)
            // Never switch to, or download, another toolchain; never read the user's go env
            // file or a go.work outside the app.
            .env("GOTOOLCHAIN", "local")
            .env("GOENV", "off")
            .env("GOWORK", "off")
            // -modcacherw: go writes the module cache read-only, which the layer cache could
            // then not replace. The user's own GOFLAGS come last, so they win.
            .env(
                "GOFLAGS",
                format!(
                    "-mod={} -modcacherw {}",
                    self.mod_mode.flag(),
                    env.user_var("GOFLAGS").unwrap_or_default()
                )
                .trim_end(),
            )
            .env("GOCACHE", &self.gocache)
            .env("GOMODCACHE", &self.gomodcache)
            .env("GOPATH", self.scratch.join("gopath"))
            .env("XDG_CONFIG_HOME", self.scratch.join("config"));
        // No module proxy and no checksum database unless the user names their own.
        if env.user_var("GOPROXY").is_none() {
            command.env("GOPROXY", "off");
        }
        if env.user_var("GOSUMDB").is_none() {
            command.env("GOSUMDB", "off");
        }
        let result = command.output().map_err(|source| GoError::StartBuild {
            package: target.package.clone(),
            source,
        })?;
        if result.status.success() {
            Ok(())
        } else {
            Err(self.diagnose_failure(target, &result))
        }
    }

    /// Tell a module that could not be fetched apart from a compile error.
    fn diagnose_failure(&self, target: &GoTarget, result: &Output) -> GoError {
        let output = tail(&format!(
            "{}{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        ));
        if self.mod_mode == ModMode::Readonly
            && DOWNLOAD_MARKERS
                .iter()
                .any(|marker| output.contains(marker))
        {
            let modules: Vec<String> = self
                .gomod
                .remote_requirements()
                .filter(|requirement| output.contains(&requirement.path))
                .map(|requirement| format!("{} {}", requirement.path, requirement.version))
                .collect();
            if !modules.is_empty() {
                return GoError::RequirementsUnavailable { modules, output };
            }
        }
        GoError::CompileFailed {
            package: target.package.clone(),
            status: result.status.to_string(),
            output,
        }
    }
}

/// The last lines of go's output: the errors that matter, without flooding the terminal.
fn tail(text: &str) -> String {
    const KEEP: usize = 40;
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let skipped = lines.len().saturating_sub(KEEP);
    let mut kept = lines[skipped..].join("\n");
    if skipped > 0 {
        kept = format!("[{skipped} earlier lines]\n{kept}");
    }
    kept
}

/// `web` runs the first target; with several, each binary is also a process of its name.
fn processes(layer_path: &str, targets: &[GoTarget]) -> Vec<Process> {
    let mut processes = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        let program = format!("{layer_path}/bin/{}", target.binary);
        if index == 0 {
            processes.push(Process::direct(ProcessType::web(), &[&program]).as_default());
        }
        if targets.len() > 1
            && let Ok(process_type) = ProcessType::new(&target.binary)
            && process_type != ProcessType::web()
        {
            processes.push(Process::direct(process_type, &[&program]));
        }
    }
    processes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_target_is_the_default_web_process() {
        let target = |package: &str, binary: &str| GoTarget {
            package: package.to_owned(),
            binary: binary.to_owned(),
        };
        let single = processes("/layers/kiln_go/targets", &[target(".", "hello")]);
        assert_eq!(single.len(), 1);
        assert!(single[0].default);
        assert_eq!(single[0].command, ["/layers/kiln_go/targets/bin/hello"]);
        let several = processes(
            "/l",
            &[target("./cmd/api", "api"), target("./cmd/worker", "worker")],
        );
        let types: Vec<String> = several
            .iter()
            .map(|process| process.r#type.to_string())
            .collect();
        assert_eq!(types, ["web", "api", "worker"]);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let long: String = (0..100).map(|line| format!("line {line}\n")).collect();
        let kept = tail(&long);
        assert!(kept.starts_with("[60 earlier lines]\nline 60"));
        assert!(kept.ends_with("line 99"));
        assert_eq!(tail("one\ntwo\n"), "one\ntwo");
    }
}
