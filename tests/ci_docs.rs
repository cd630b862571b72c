//! The CI files in `docs/ci/` cannot rot: their exact `kiln` command lines (and the credential
//! and `jq` lines around them) run here against a real HTTPS registry with basic auth, with
//! each platform's variables filled in, twice on two empty KILN_HOMEs (two CI runners).

#[path = "support/registry.rs"]
mod registry_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use registry_support::{Flavor, TestRegistry, run_ok};
use serde_json::Value;
use support::{app, busybox_base};

const USER: &str = "ci";
const PASSWORD: &str = "s3cret";

fn docs(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/ci")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Shell lines of a CI file as one logical line each: YAML list dashes dropped, backslash
/// continuations joined.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        let line = line.strip_prefix("- ").unwrap_or(line);
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head.trim_end());
                current.push(' ');
            }
            None => {
                current.push_str(line);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    lines
}

/// The lines the test runs: kiln itself, the credential export, and result-writing `jq`.
fn runnable(text: &str) -> Vec<String> {
    logical_lines(text)
        .into_iter()
        .filter(|line| {
            line.starts_with("kiln ") || line.starts_with("export KILN_") || line.starts_with("jq ")
        })
        .collect()
}

/// Every `jq -r '…'` / `jq -j '…'` filter the file applies to the report.
fn jq_filters(text: &str) -> Vec<String> {
    let mut filters = Vec::new();
    for flag in ["jq -r '", "jq -j '"] {
        let mut rest = text;
        while let Some(start) = rest.find(flag) {
            let after = &rest[start + flag.len()..];
            let end = after.find('\'').expect("closing quote");
            filters.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    filters
}

/// One platform's run: textual replacements of its expression syntax and its environment.
struct Platform {
    file: &'static str,
    replacements: Vec<(String, String)>,
    env: Vec<(String, String)>,
    /// The image the build publishes.
    image: String,
    /// Where the build writes its report, relative to the app directory or absolute.
    report: String,
}

/// A registry as a CI job sees it: HTTPS with a private CA, basic auth, a published base.
struct Ci {
    registry: TestRegistry,
    base: String,
    kiln_dir: tempfile::TempDir,
}

impl Ci {
    fn start() -> Self {
        let registry = TestRegistry::start(Flavor::TlsBasic {
            username: USER.to_owned(),
            password: PASSWORD.to_owned(),
        });
        let layout = tempfile::tempdir().unwrap();
        let base = format!("{}/platform/busybox-run:1", registry.addr);
        run_ok(Command::new("skopeo").args([
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("{USER}:{PASSWORD}"),
            &format!("oci:{}:latest", busybox_base(layout.path(), "v1").display()),
            &format!("docker://{base}"),
        ]));
        let kiln_dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kiln"), kiln_dir.path().join("kiln"))
            .unwrap();
        Self {
            registry,
            base,
            kiln_dir,
        }
    }

    /// Run the file's lines as one CI job on a fresh runner; returns the report.
    fn run_job(&self, platform: &Platform, commands: &[String]) -> Value {
        let runner = tempfile::tempdir().unwrap();
        let checkout = runner.path().join("checkout");
        let source = app(&[
            ("Procfile", "web: echo hello from CI\n"),
            ("index.html", "<h1>hi</h1>\n"),
        ]);
        copy_dir(source.path(), &checkout);
        let mut script = String::from("set -eu\n");
        for command in commands {
            let mut line = command.clone();
            for (from, to) in &platform.replacements {
                line = line.replace(from, to);
            }
            for leftover in ["${{", "$(params.", "$(results.", "$(workspaces."] {
                assert!(
                    !line.contains(leftover),
                    "{}: `{line}` uses a variable this test does not provide",
                    platform.file
                );
            }
            script.push_str(&line);
            script.push('\n');
        }
        let path = format!(
            "{}:{}",
            self.kiln_dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let empty_docker_config = runner.path().join("docker");
        std::fs::create_dir_all(&empty_docker_config).unwrap();
        let output = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(&checkout)
            .env_clear()
            .env("PATH", path)
            .env("HOME", runner.path())
            .env("KILN_HOME", runner.path().join("kiln"))
            .env("DOCKER_CONFIG", &empty_docker_config)
            .env("SSL_CERT_FILE", self.registry.ca_path.as_ref().unwrap())
            .envs(platform.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: the CI job failed\n--- script\n{script}\n--- stderr\n{}",
            platform.file,
            String::from_utf8_lossy(&output.stderr)
        );
        let report = checkout.join(&platform.report);
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
    }

    /// Both runs of a platform's file, with the checks every file must pass.
    fn check(&self, platform: &Platform) -> (Value, Value) {
        let text = docs(platform.file);
        let commands = runnable(&text);
        let builds: Vec<&String> = commands
            .iter()
            .filter(|line| line.starts_with("kiln build "))
            .collect();
        assert_eq!(builds.len(), 1, "{}: one build command", platform.file);
        for flag in ["--publish", "--cache-image", "--report", "--run-image"] {
            assert!(
                builds[0].contains(flag),
                "{}: {flag} missing",
                platform.file
            );
        }
        assert!(
            !commands
                .iter()
                .any(|line| line.contains("--insecure-registry")),
            "CI registries speak HTTPS"
        );

        let first = self.run_job(platform, &commands);
        let second = self.run_job(platform, &commands);
        let pinned = format!(
            "{}@{}",
            platform.image.rsplit_once(':').unwrap().0,
            first["digest"].as_str().unwrap()
        );
        assert_eq!(first["outputs"][0]["pinned"], pinned, "{first:#}");
        let raw = run_ok(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &format!("{USER}:{PASSWORD}"),
            &format!("docker://{}", platform.image),
        ]));
        assert_eq!(
            kiln::oci::Digest::of_bytes(&raw).to_string(),
            first["digest"].as_str().unwrap()
        );

        // The second runner starts empty yet reuses everything: previous image and cache image.
        assert_eq!(second["digest"], first["digest"]);
        assert_eq!(second["previous_image"]["digest"], first["digest"]);
        assert_eq!(second["outputs"][0]["push"]["uploaded"], 0, "{second:#}");
        assert_eq!(
            second["cache_image"]["digest"],
            first["cache_image"]["digest"]
        );
        let app_layer = second["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|layer| layer["name"] == "app")
            .unwrap();
        assert_eq!(app_layer["blob_from"], "previous-image");

        for filter in jq_filters(&text) {
            let output = run_ok(
                Command::new(jq())
                    .args(["-j", &filter])
                    .arg(write_temp_json(&second)),
            );
            let value = String::from_utf8(output).unwrap();
            assert!(
                value == pinned || value == first["digest"].as_str().unwrap(),
                "{}: jq '{filter}' gave `{value}`",
                platform.file
            );
        }
        (first, second)
    }
}

fn jq() -> &'static str {
    registry_support::ensure_tools();
    if Command::new("jq").arg("--version").output().is_err() {
        run_ok(
            Command::new("apt-get")
                .args(["-o", "DPkg::Lock::Timeout=300", "install", "-y", "jq"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        );
    }
    "jq"
}

fn write_temp_json(value: &Value) -> PathBuf {
    let file = tempfile::Builder::new()
        .suffix(".json")
        .tempfile()
        .unwrap()
        .into_temp_path()
        .keep()
        .unwrap();
    std::fs::write(&file, serde_json::to_vec(value).unwrap()).unwrap();
    file
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn gitlab_ci_job_builds_publishes_and_rebases() {
    let ci = Ci::start();
    let registry = ci.registry.addr.clone();
    let image = format!("{registry}/group/project:main");
    let platform = Platform {
        file: "gitlab-ci.yml",
        replacements: Vec::new(),
        env: [
            ("CI_REGISTRY", registry.clone()),
            ("CI_REGISTRY_IMAGE", format!("{registry}/group/project")),
            ("CI_COMMIT_REF_SLUG", "main".to_owned()),
            ("CI_REGISTRY_USER", USER.to_owned()),
            ("CI_REGISTRY_PASSWORD", PASSWORD.to_owned()),
            ("KILN_RUN_IMAGE", ci.base.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        image,
        report: "kiln-report.json".to_owned(),
    };
    let commands = runnable(&docs(platform.file));
    assert!(
        commands.iter().any(|line| line.starts_with("kiln rebase ")),
        "the scheduled rebase job is exercised too"
    );
    ci.check(&platform);
}

#[test]
fn github_actions_workflow_builds_and_publishes() {
    let ci = Ci::start();
    let registry = ci.registry.addr.clone();
    let platform = Platform {
        file: "github-actions.yml",
        replacements: vec![("${{ github.ref_name }}".to_owned(), "main".to_owned())],
        env: [
            ("REGISTRY", registry.clone()),
            ("IMAGE_NAME", "octo/app".to_owned()),
            ("REGISTRY_USER", USER.to_owned()),
            ("REGISTRY_TOKEN", PASSWORD.to_owned()),
            ("KILN_RUN_IMAGE", ci.base.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        image: format!("{registry}/octo/app:main"),
        report: "kiln-report.json".to_owned(),
    };
    ci.check(&platform);
}

#[test]
fn tekton_task_builds_publishes_and_writes_chains_results() {
    let ci = Ci::start();
    let registry = ci.registry.addr.clone();
    let scratch = tempfile::tempdir().unwrap();
    let docker_config = scratch.path().join("dockerconfig");
    std::fs::create_dir_all(&docker_config).unwrap();
    let auth = base64_of(&format!("{USER}:{PASSWORD}"));
    std::fs::write(
        docker_config.join("config.json"),
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let image = format!("{registry}/team/app:main");
    let report = scratch.path().join("kiln-report.json");
    let image_url = scratch.path().join("IMAGE_URL");
    let image_digest = scratch.path().join("IMAGE_DIGEST");
    let platform = Platform {
        file: "tekton-task.yaml",
        replacements: vec![
            ("$(params.image)".to_owned(), image.clone()),
            ("$(params.run-image)".to_owned(), ci.base.clone()),
            (
                "$(params.cache-image)".to_owned(),
                format!("{registry}/team/app/kiln-cache:main"),
            ),
            (
                "$(results.IMAGE_URL.path)".to_owned(),
                image_url.display().to_string(),
            ),
            (
                "$(results.IMAGE_DIGEST.path)".to_owned(),
                image_digest.display().to_string(),
            ),
            // The step's /tmp is its own; here it is a private directory.
            (
                "/tmp/kiln-report.json".to_owned(),
                report.display().to_string(),
            ),
        ],
        env: vec![(
            "DOCKER_CONFIG".to_owned(),
            docker_config.display().to_string(),
        )],
        image,
        report: report.display().to_string(),
    };
    let (_, second) = ci.check(&platform);
    assert_eq!(
        std::fs::read_to_string(&image_url).unwrap(),
        second["outputs"][0]["pinned"].as_str().unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(&image_digest).unwrap(),
        second["digest"].as_str().unwrap()
    );
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
