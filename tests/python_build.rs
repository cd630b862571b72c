//! End-to-end Python builds with the `kiln` binary: the default builder's Debian stack and
//! python3 runtime, real pip against the real package index, the build report for layer
//! reuse, the image's contents, and `kiln run` serving samples/python-flask over HTTP.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Kiln, busybox_base, free_port, http_get_once, read_image};

fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A writable copy of a directory of the repository (sample or fixture).
fn copy_of(relative: &str) -> tempfile::TempDir {
    let from = repo_path(relative);
    let dir = tempfile::tempdir().unwrap();
    for entry in walkdir::WalkDir::new(&from).min_depth(1) {
        let entry = entry.unwrap();
        let to = dir.path().join(entry.path().strip_prefix(&from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
    dir
}

/// `kiln build NAME --path DIR --report FILE [extra]` with the default builder; the report.
fn build(kiln: &Kiln, name: &str, app: &Path, extra: &[&str]) -> Value {
    let report = kiln.home.path().join(format!("{name}-report.json"));
    let mut args = vec![
        "build",
        name,
        "--path",
        app.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    kiln.ok(&args);
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

fn layer<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|layer| layer["name"] == name)
        .unwrap_or_else(|| panic!("no layer {name} in {report:#}"))
}

fn layer_names(report: &Value) -> Vec<String> {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn rebuilds_redo_only_what_changed_and_the_runtime_never_changes() {
    let kiln = Kiln::new();
    let app = copy_of("samples/python-flask");
    let cold = build(&kiln, "flask", app.path(), &[]);
    // Buildpack layers in name order, then the app and the process launchers.
    assert_eq!(
        layer_names(&cold),
        ["deps", "runtime", "app", "process-types"]
    );
    for name in ["runtime", "deps", "app"] {
        assert_eq!(layer(&cold, name)["reused"], false, "cold build of {name}");
    }

    // No change: every layer reused, nothing compressed, the same image.
    let again = build(&kiln, "flask", app.path(), &[]);
    assert_eq!(again["digest"], cold["digest"], "same inputs, same digest");
    for name in ["runtime", "deps", "app"] {
        let reused = layer(&again, name);
        assert_eq!(reused["reused"], true, "{name}: {reused}");
        assert_eq!(
            reused["compressed"], false,
            "{name} is not re-tarred: {reused}"
        );
        assert_eq!(reused["diff_id"], layer(&cold, name)["diff_id"]);
    }
    assert_eq!(
        layer(&again, "process-types")["diff_id"],
        layer(&cold, "process-types")["diff_id"]
    );

    // A source change: only the app layer.
    let source = app.path().join("app.py");
    let text = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, text.replace("Hello from kiln", "Hi from kiln")).unwrap();
    let code = build(&kiln, "flask", app.path(), &[]);
    assert_ne!(code["digest"], cold["digest"]);
    assert_eq!(layer(&code, "app")["reused"], false);
    assert_ne!(
        layer(&code, "app")["diff_id"],
        layer(&cold, "app")["diff_id"]
    );
    for name in ["runtime", "deps"] {
        assert_eq!(
            layer(&code, name)["reused"],
            true,
            "{name} after a code change"
        );
        assert_eq!(layer(&code, name)["compressed"], false);
    }

    // A requirements change: the dependency and app layers, with the reason.
    let requirements = app.path().join("requirements.txt");
    let mut text = std::fs::read_to_string(&requirements).unwrap();
    text.push_str("six==1.16.0\n");
    std::fs::write(&requirements, text).unwrap();
    let deps = build(&kiln, "flask", app.path(), &[]);
    let rebuilt = layer(&deps, "deps");
    assert_eq!(rebuilt["reused"], false);
    assert_eq!(
        rebuilt["reasons"],
        serde_json::json!(["requirements.txt changed"])
    );
    assert_ne!(rebuilt["diff_id"], layer(&cold, "deps")["diff_id"]);
    assert_eq!(layer(&deps, "app")["reused"], false);
    assert_eq!(layer(&deps, "runtime")["reused"], true);

    // The runtime layer is the same bytes in all four builds.
    for report in [&again, &code, &deps] {
        assert_eq!(
            layer(report, "runtime")["digest"],
            layer(&cold, "runtime")["digest"]
        );
    }
}

/// One image layer: its uncompressed tar bytes and each entry's path and owner uid.
type LayerContents = (Vec<u8>, Vec<(String, u64)>);

/// Every layer of the image, bottom first.
fn image_layers(kiln: &Kiln, tag: &str) -> Vec<LayerContents> {
    let image = read_image(&kiln.store(), tag);
    let blobs = kiln::oci::BlobStore::for_layout(&kiln.store());
    image
        .layers("test")
        .unwrap()
        .iter()
        .map(|layer| {
            let mut bytes = Vec::new();
            kiln::oci::layer_reader::uncompressed_reader(&blobs, layer)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            let mut archive = tar::Archive::new(bytes.as_slice());
            let entries = archive
                .entries()
                .unwrap()
                .map(|entry| {
                    let entry = entry.unwrap();
                    (
                        entry.path().unwrap().to_string_lossy().into_owned(),
                        entry.header().uid().unwrap(),
                    )
                })
                .collect();
            (bytes, entries)
        })
        .collect()
}

#[test]
fn image_runs_as_1000_without_build_env_pip_cache_bytecode_or_git() {
    let kiln = Kiln::new();
    let app = copy_of("samples/python-flask");
    std::fs::create_dir_all(app.path().join(".git")).unwrap();
    std::fs::write(app.path().join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    let secret = "kiln-secret-5d1e0c7b9a";
    let report = build(
        &kiln,
        "clean",
        app.path(),
        &["--env", &format!("SECRET_TOKEN={secret}")],
    );

    let image = read_image(&kiln.store(), "clean:latest");
    let config = serde_json::to_string(&image.config).unwrap();
    assert!(
        !config.contains(secret),
        "the --env value leaked into the config"
    );
    let runtime = &serde_json::to_value(&image.config).unwrap()["config"];
    assert_eq!(runtime["User"], "1000:1000");
    let env: Vec<String> = serde_json::from_value(runtime["Env"].clone()).unwrap();
    for wanted in ["PYTHONPATH=/layers/kiln_python/deps", "PYTHONUNBUFFERED=1"] {
        assert!(env.iter().any(|pair| pair == wanted), "{wanted} in {env:?}");
    }
    assert!(
        env.iter()
            .any(|pair| pair.starts_with("PATH=") && pair.contains("/layers/kiln_python/deps/bin")),
        "{env:?}"
    );

    // Only launch layers: the run image's, then exactly the reported ones.
    let layers = image_layers(&kiln, "clean:latest");
    let reported = report["layers"].as_array().unwrap().len();
    let base_layers = layers.len() - reported;
    let names = layer_names(&report);
    assert_eq!(names, ["deps", "runtime", "app", "process-types"]);
    let image_index = |name: &str| base_layers + names.iter().position(|n| n == name).unwrap();
    let lifecycle: Value = serde_json::from_str(
        runtime["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    for (name, metadata) in lifecycle["buildpacks"][0]["layers"].as_object().unwrap() {
        assert_eq!(metadata["launch"], true, "{name} is a launch layer");
    }

    for (index, (bytes, entries)) in layers.iter().enumerate() {
        assert!(
            !bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes()),
            "layer {index} contains the --env value"
        );
        for (path, _) in entries {
            assert!(!path.split('/').any(|part| part == ".git"), "{path}");
            assert!(
                !path.contains("__pycache__") && !path.ends_with(".pyc"),
                "{path}"
            );
            assert!(
                !path.contains(".cache/pip") && !path.contains("selfcheck"),
                "{path}"
            );
        }
    }
    // The app's and the dependencies' files belong to the user the image runs as.
    for name in ["deps", "app"] {
        for (path, uid) in &layers[image_index(name)].1 {
            if path.starts_with("layers/kiln_python/deps/") || path.starts_with("workspace/") {
                assert_eq!(*uid, 1000, "{path}");
            }
        }
    }
    let deps_paths: Vec<&str> = layers[image_index("deps")]
        .1
        .iter()
        .map(|(path, _)| path.as_str())
        .collect();
    assert!(deps_paths.contains(&"layers/kiln_python/deps/flask/__init__.py"));

    // Inside the image: the process runs as 1000:1000 with the runtime's Python, the
    // dependencies import, and a console script runs through its rewritten shebang.
    let probe = kiln.ok(&[
        "run",
        "clean",
        "--",
        "python3",
        "-c",
        "import os, sys, flask; print(os.getuid(), os.getgid(), '%d.%d' % sys.version_info[:2])",
    ]);
    assert_eq!(probe.lines().last(), Some("1000 1000 3.11"), "{probe}");
    let gunicorn = kiln.ok(&["run", "clean", "--", "gunicorn", "--version"]);
    assert!(gunicorn.contains("gunicorn (version 22.0.0)"), "{gunicorn}");
}

/// GET / until it answers or the deadline passes; gives up early if the server exited.
fn http_get(port: u16, server: &mut Child, deadline: Duration) -> Option<String> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if let Ok(Some(status)) = server.try_wait() {
            panic!("kiln run exited before serving: {status}");
        }
        if let Ok(response) = http_get_once(port, Duration::from_secs(5))
            && !response.is_empty()
        {
            return Some(response);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    None
}

/// Stop `kiln run`: SIGTERM (forwarded to the app), then SIGKILL after a bounded wait.
fn stop(mut server: Child) -> String {
    let pid = server.id() as libc::pid_t;
    // SAFETY: signalling the child this test started, by its pid.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if server.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if server.try_wait().unwrap().is_none() {
        server.kill().unwrap();
    }
    let output = server.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Build `relative` with the default builder, `kiln run` it on a free port, GET /.
fn build_run_and_get(relative: &str) -> String {
    let kiln = Kiln::new();
    let app = copy_of(relative);
    build(&kiln, "served", app.path(), &[]);
    let port = free_port();
    let mut server = kiln
        .cmd()
        .args(["run", "served", "-e", &format!("PORT={port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let response = http_get(port, &mut server, Duration::from_secs(60));
    let stderr = stop(server);
    response.unwrap_or_else(|| panic!("no HTTP answer within 60 s; kiln run said:\n{stderr}"))
}

#[test]
fn sample_flask_app_serves_over_http() {
    let response = build_run_and_get("samples/python-flask");
    assert!(
        response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
        "{response}"
    );
    assert!(
        response.contains("Hello from kiln on Python 3.11."),
        "{response}"
    );
}

#[test]
fn fastapi_without_procfile_serves_with_the_added_uvicorn() {
    let response = build_run_and_get("tests/fixtures/python_fastapi_no_procfile");
    assert!(response.contains(r#"{"hello":"fastapi"}"#), "{response}");
}

fn expect_user_error(kiln: &Kiln, app: &Path, needles: &[&str]) {
    let output = kiln.run(&["build", "bad", "--path", app.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "`{needle}` in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !kiln.store_tags().iter().any(|tag| tag.starts_with("bad")),
        "no image is written"
    );
}

#[test]
fn an_unsatisfiable_python_version_lists_what_the_stack_offers() {
    let kiln = Kiln::new();
    expect_user_error(
        &kiln,
        &repo_path("tests/fixtures/python_version_unsatisfiable"),
        &[
            "Python 3.99 (from .python-version) is not available: the stack offers Python 3.11.",
            "hint: set .python-version to 3.11",
        ],
    );
}

#[test]
fn a_requirement_missing_from_the_index_fails_naming_it() {
    let kiln = Kiln::new();
    expect_user_error(
        &kiln,
        &repo_path("tests/fixtures/python_requirement_missing"),
        &[
            "the requirement `kiln-fixture-no-such-package-7c1f3e==1.0.0` was not found on the package index",
        ],
    );
}

#[test]
fn a_run_image_without_a_stack_is_a_clear_error() {
    let kiln = Kiln::new();
    let base = tempfile::tempdir().unwrap();
    let base = format!("oci:{}:latest", busybox_base(base.path(), "v1").display());
    let app = repo_path("tests/fixtures/python_requirements_txt");
    let output = kiln.run(&[
        "build",
        "bad",
        "--path",
        app.to_str().unwrap(),
        "--run-image",
        &base,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("needs a Python runtime from the stack"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: build without --run-image"),
        "{stderr}"
    );
}
