//! samples/go-http end to end: built by the Go buildpack on a busybox base and on the default
//! Debian run image, it serves HTTP under `kiln run`; builds are reproducible, and a source
//! change touches only the binary and app layers.

mod go_support;
mod support;

use std::path::Path;
use std::process::Command;

use go_support::{base_ref, copy_of, go_version, kiln_go_ok, serve_and_get, unpack};
use support::{Kiln, free_port, read_image, require_tool, validate_layout};

fn sample() -> tempfile::TempDir {
    copy_of(&Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/go-http"))
}

/// `kiln run go-http` listening on `port` (the app shares the host network).
fn kiln_run(kiln: &Kiln, port: u16) -> Command {
    let mut command = kiln.cmd();
    command.args(["run", "go-http", "-e", &format!("PORT={port}")]);
    command
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn layer<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|layer| layer["name"] == name)
        .unwrap_or_else(|| panic!("no layer {name} in {report}"))
}

#[test]
fn sample_serves_http_and_a_source_change_rebuilds_only_the_binary_and_app_layers() {
    require_tool("umoci");
    require_tool("skopeo");
    let kiln = Kiln::new();
    let base_dir = tempfile::tempdir().unwrap();
    let base = base_ref(&base_dir);
    let source = sample();
    let path = source.path().to_str().unwrap();
    let reports = tempfile::tempdir().unwrap();
    let before_report = reports.path().join("before.json");
    let after_report = reports.path().join("after.json");
    let build = |report: &Path| {
        kiln_go_ok(
            &kiln,
            &[
                "build",
                "go-http",
                "--path",
                path,
                "--run-image",
                &base,
                "--report",
                report.to_str().unwrap(),
            ],
        )
    };
    build(&before_report);
    validate_layout(&kiln.store());
    let before = read_image(&kiln.store(), "go-http:latest").diff_ids();

    let image = unpack(&kiln, "go-http");
    assert_eq!(image.entrypoint(), ["/layers/kiln_go/targets/bin/go-http"]);
    assert!(
        image
            .env()
            .iter()
            .any(|pair| pair.starts_with("PATH=") && pair.contains("/layers/kiln_go/targets/bin")),
        "the binary's layer is on PATH: {:?}",
        image.env()
    );
    assert!(
        !image.rootfs().join("layers/kiln_go/gocache").exists()
            && !image.rootfs().join("layers/kiln_go/gomodcache").exists(),
        "Go caches never go into the image"
    );
    // The busybox base has no libc: answering proves the binary is static.
    let port = free_port();
    let (server, body) = serve_and_get(kiln_run(&kiln, port), port);
    assert_eq!(
        body.trim(),
        format!("Hello from kiln on Go {}", go_version())
    );
    drop(server);

    let main = source.path().join("main.go");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, text.replace("Hello from kiln", "Howdy from kiln")).unwrap();
    build(&after_report);
    let after = read_image(&kiln.store(), "go-http:latest").diff_ids();

    // base, targets, app, process-types
    assert_eq!(before.len(), 4, "{before:?}");
    assert_eq!(before[0], after[0], "base unchanged");
    assert_ne!(before[1], after[1], "binary layer changed");
    assert_ne!(before[2], after[2], "app layer changed");
    assert_eq!(before[3], after[3], "process layer unchanged");
    let after_report = report(&after_report);
    let targets = layer(&after_report, "targets");
    assert_eq!(targets["reused"], false);
    assert_eq!(
        targets["reasons"],
        serde_json::json!(["source_sha256 changed"]),
        "{targets}"
    );
    let before_report = report(&before_report);
    assert_eq!(
        layer(&after_report, "process-types")["diff_id"],
        layer(&before_report, "process-types")["diff_id"]
    );

    let port = free_port();
    let (_server, body) = serve_and_get(kiln_run(&kiln, port), port);
    assert!(
        body.starts_with("Howdy from kiln on Go"),
        "the rebuilt image serves the new code: {body}"
    );
}

#[test]
fn rebuilds_are_reproducible_and_reuse_the_binary() {
    let base_dir = tempfile::tempdir().unwrap();
    let base = base_ref(&base_dir);
    let source = sample();
    let path = source.path().to_str().unwrap();
    let reports = tempfile::tempdir().unwrap();
    let second_report = reports.path().join("second.json");

    let kiln = Kiln::new();
    let first = kiln_go_ok(
        &kiln,
        &["build", "go-http", "--path", path, "--run-image", &base],
    );
    let second = kiln_go_ok(
        &kiln,
        &[
            "build",
            "go-http",
            "--path",
            path,
            "--run-image",
            &base,
            "--report",
            second_report.to_str().unwrap(),
        ],
    );
    assert_eq!(first, second, "same source, same digest");
    let targets = layer(&report(&second_report), "targets").clone();
    assert_eq!(targets["reused"], true, "{targets}");
    assert_eq!(targets["compressed"], false, "{targets}");

    // A cold build elsewhere (empty caches, another build directory) gives the same bytes.
    let elsewhere = Kiln::new();
    let cold = kiln_go_ok(
        &elsewhere,
        &["build", "go-http", "--path", path, "--run-image", &base],
    );
    assert_eq!(first, cold, "a cold build reproduces the image digest");
}

#[test]
fn sample_builds_on_the_default_debian_run_image_and_serves() {
    // The home the stack tests use: the Debian run image is assembled once and shared.
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stack-kiln-home");
    let kiln = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
        command
            .env("KILN_HOME", &home)
            .env("PATH", go_support::go_path())
            .env_remove("SOURCE_DATE_EPOCH")
            .args(args);
        command
    };
    let source = sample();
    let output = kiln(&[
        "build",
        "go-http-debian",
        "--path",
        source.path().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let port = free_port();
    let (_server, body) = serve_and_get(
        kiln(&["run", "go-http-debian", "-e", &format!("PORT={port}")]),
        port,
    );
    assert_eq!(
        body.trim(),
        format!("Hello from kiln on Go {}", go_version())
    );
}
