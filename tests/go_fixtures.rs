//! One behaviour per fixture: which main package is built, vendored modules, and the clear
//! errors for what kiln will not do (guess between mains, download modules or toolchains).
//!
//! Every test builds under the same image name in one kiln home: the Go build cache is kept
//! per image name, so only the first build compiles the standard library.

mod go_support;
mod support;

use std::sync::OnceLock;

use go_support::{base_ref, fixture, go_version, kiln_go};
use support::{Kiln, run_ok};

const NAME: &str = "go-fixture";

fn kiln() -> &'static Kiln {
    static KILN: OnceLock<Kiln> = OnceLock::new();
    KILN.get_or_init(Kiln::new)
}

fn base() -> &'static str {
    static BASE: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    &BASE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let reference = base_ref(&dir);
            (dir, reference)
        })
        .1
}

/// Build a fixture (plus `extra` args) and `kiln run` the image's default process; its
/// stdout. The image is run from its own layout: parallel tests share the store name.
fn build_and_run(name: &str, extra: &[&str]) -> String {
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    let path = fixture(name);
    let output_arg = format!("oci:{}:app", layout.display());
    let mut args = vec![
        "build",
        NAME,
        "--path",
        path.to_str().unwrap(),
        "--run-image",
        base(),
        "--output",
        &output_arg,
    ];
    args.extend_from_slice(extra);
    let output = kiln_go(kiln(), &args);
    assert!(
        output.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut run = kiln().cmd();
    run.args(["run", &output_arg]);
    run_ok(&mut run).trim().to_owned()
}

/// Build a fixture that must fail with exit 1; its stderr.
fn build_fails(name: &str, extra: &[&str]) -> String {
    let path = fixture(name);
    let mut args = vec![
        "build",
        NAME,
        "--path",
        path.to_str().unwrap(),
        "--run-image",
        base(),
    ];
    args.extend_from_slice(extra);
    let output = kiln_go(kiln(), &args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{name} must fail with exit 1:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn main_package_at_the_root_is_built() {
    assert_eq!(build_and_run("go_main_in_root", &[]), "root main");
}

#[test]
fn the_only_main_package_under_cmd_is_built_and_an_ignored_generator_does_not_count() {
    assert_eq!(build_and_run("go_main_in_cmd", &[]), "cmd/server main");
}

#[test]
fn two_main_packages_are_an_error_listing_both_until_bp_go_targets_picks_one() {
    let stderr = build_fails("go_two_mains", &[]);
    assert!(
        stderr.contains("several main packages (./cmd/a, ./cmd/b)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: choose with --env BP_GO_TARGETS=./cmd/a"),
        "{stderr}"
    );
    assert_eq!(
        build_and_run("go_two_mains", &["--env", "BP_GO_TARGETS=./cmd/a"]),
        "main a"
    );
    assert_eq!(
        build_and_run("go_two_mains", &["--env", "BP_GO_TARGETS=cmd/b"]),
        "main b"
    );
}

#[test]
fn a_procfile_naming_one_binary_chooses_it_and_starts_it() {
    assert_eq!(
        build_and_run("go_procfile_names_binary", &[]),
        "api started with [--greeting procfile]"
    );
}

#[test]
fn vendored_modules_build_without_a_proxy() {
    assert_eq!(
        build_and_run("go_vendored", &[]),
        "hello from vendored example.com/greet"
    );
}

#[test]
fn an_unreachable_requirement_is_a_clear_error_naming_the_module() {
    let stderr = build_fails("go_unreachable_requirement", &[]);
    assert!(
        stderr.contains("go.mod requires example.com/unreachable v1.2.3, which is not vendored"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: run `go mod vendor`"), "{stderr}");
}

#[test]
fn a_go_directive_newer_than_the_toolchain_is_a_clear_error_naming_both() {
    let stderr = build_fails("go_directive_too_new", &[]);
    assert!(
        stderr.contains("go.mod requires Go 1.99 (go directive)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&go_version()),
        "names the toolchain version: {stderr}"
    );
    assert!(
        stderr.contains("kiln never downloads toolchains"),
        "{stderr}"
    );
}

#[test]
fn a_go_mod_without_a_go_line_builds() {
    assert_eq!(build_and_run("go_no_go_line", &[]), "no go line");
}

#[test]
fn no_go_toolchain_is_a_clear_error() {
    let empty = tempfile::tempdir().unwrap();
    let path = fixture("go_main_in_root");
    let output = kiln()
        .cmd()
        .env("PATH", empty.path())
        .env_remove("GO")
        .args([
            "build",
            NAME,
            "--path",
            path.to_str().unwrap(),
            "--run-image",
            base(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no Go toolchain found"), "{stderr}");
    assert!(stderr.contains("--env GO=/path/to/go"), "{stderr}");
}

#[test]
fn a_module_proxy_named_by_the_user_is_used_and_its_modules_stay_cached() {
    let proxy = tempfile::tempdir().unwrap();
    let proxy_dir = proxy.path().join("proxy");
    let source = go_support::copy_of(&fixture("go_module_proxy"));
    let mut write_proxy = std::process::Command::new("python3");
    write_proxy
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/go_support/module_proxy.py"
        ))
        .arg(&proxy_dir)
        .arg(source.path());
    run_ok(&mut write_proxy);
    let goproxy = format!("GOPROXY=file://{}", proxy_dir.display());
    let path = source.path().to_str().unwrap().to_owned();
    let run = || {
        let out = tempfile::tempdir().unwrap();
        let output_arg = format!("oci:{}:app", out.path().join("layout").display());
        let args = [
            "build",
            NAME,
            "--path",
            &path,
            "--run-image",
            base(),
            "--env",
            &goproxy,
            "--output",
            &output_arg,
        ];
        let output = kiln_go(kiln(), &args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        run_ok(kiln().cmd().args(["run", &output_arg]))
            .trim()
            .to_owned()
    };
    assert_eq!(run(), "hello from example.com/greet via GOPROXY");

    // With the proxy gone, a rebuild of changed source finds the module in the cached
    // module cache layer.
    std::fs::remove_dir_all(&proxy_dir).unwrap();
    let main = source.path().join("main.go");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        text.replace(
            "fmt.Println(greet.Hello())",
            "fmt.Println(greet.Hello(), \"again\")",
        ),
    )
    .unwrap();
    assert_eq!(run(), "hello from example.com/greet via GOPROXY again");
}
