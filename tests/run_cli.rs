//! `kiln run` through the CLI on images kiln built: as root and as an unprivileged user.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use support::{Kiln, app, busybox_base};

fn build_hello(
    kiln: &Kiln,
    wrap: &dyn Fn(Command) -> Command,
) -> (tempfile::TempDir, tempfile::TempDir) {
    let base = tempfile::tempdir().unwrap();
    busybox_base(base.path(), "v1");
    let source = app(&[(
        "Procfile",
        "web: echo hello from kiln\nworker: echo worker on port $PORT\n",
    )]);
    for dir in [base.path(), source.path()] {
        open_up(dir);
    }
    let mut command = wrap(kiln.cmd());
    let output = command
        .args([
            "build",
            "hello",
            "--path",
            source.path().to_str().unwrap(),
            "--run-image",
            &format!("oci:{}:latest", base.path().display()),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (base, source)
}

/// Let an unprivileged user read a test-made tree.
fn open_up(dir: &std::path::Path) {
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        let mode = if entry.file_type().is_dir() {
            0o755
        } else {
            0o644
        };
        if !entry.file_type().is_symlink() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

fn check_runs(kiln: &Kiln, wrap: &dyn Fn(Command) -> Command) {
    let run = |args: &[&str]| {
        let output = wrap(kiln.cmd()).args(args).output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(&["run", "hello"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "hello from kiln");
    let (code, stdout, stderr) = run(&["run", "hello", "--process", "worker", "-e", "PORT=7070"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "worker on port 7070");
    let (code, stdout, stderr) = run(&["run", "hello", "--", "/bin/sh", "-c", "id -u; exit 7"]);
    assert_eq!(code, Some(7), "the app's exit code comes back: {stderr}");
    assert_eq!(stdout, "1000", "runs as the image user");
    let (code, _, stderr) = run(&["run", "no-such-image"]);
    assert_eq!(code, Some(125), "{stderr}");
    assert!(
        stderr.contains("no image named `no-such-image:latest`"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["run", "hello", "--process", "nope"]);
    assert_eq!(code, Some(125), "{stderr}");
    assert!(stderr.contains("nope"), "{stderr}");
    let (code, _, stderr) = run(&["run", "hello", "--", "/bin/not-there"]);
    assert_eq!(code, Some(127), "{stderr}");
}

#[test]
fn runs_the_default_process_other_types_and_commands() {
    let kiln = Kiln::new();
    let identity = |command: Command| command;
    let _keep = build_hello(&kiln, &identity);
    check_runs(&kiln, &identity);
}

#[test]
fn an_unprivileged_user_builds_and_runs_too() {
    support::require_tool("setpriv");
    let kiln = Kiln::new();
    std::os::unix::fs::chown(kiln.home.path(), Some(65534), Some(65534)).unwrap();
    let as_nobody = |command: Command| {
        let mut wrapped = Command::new("setpriv");
        wrapped.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        wrapped.arg(command.get_program());
        wrapped.args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        wrapped.env("HOME", kiln.home.path());
        wrapped
    };
    let _keep = build_hello(&kiln, &as_nobody);
    check_runs(&kiln, &as_nobody);
}
