//! Rebase time against image size: 10 MB, 100 MB and 1 GB app layers in the local store and
//! on a local `docker-registry` (rebased from a fresh machine: nothing local), next to a full
//! rebuild of the same image, in one run. Rebase reads and writes only a config and a
//! manifest, so its time must not grow with the image.
//!
//! Run: `cargo bench --bench rebase` (uses the release `kiln` binary it builds).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../tests/support/registry.rs"]
mod registry_support;

use registry_support::{Flavor, TestRegistry, run_ok};

fn kiln_binary() -> PathBuf {
    let status = Command::new("cargo")
        .args(["build", "--release", "--bin", "kiln"])
        .status()
        .unwrap();
    assert!(status.success());
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/kiln")
}

fn run(binary: &Path, home: &Path, args: &[&str]) -> f64 {
    let start = Instant::now();
    let output = Command::new(binary)
        .env("KILN_HOME", home)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    start.elapsed().as_secs_f64()
}

/// Copy a base layout to the registry with skopeo (not timed).
fn push_base(layout: &Path, destination: &str) {
    run_ok(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:latest", layout.display()),
        &format!("docker://{destination}"),
    ]));
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` only checks that this builds.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let binary = kiln_binary();
    let registry = TestRegistry::start(Flavor::Plain);
    let addr = registry.addr.clone();
    let bases = tempfile::tempdir().unwrap();
    for variant in ["v1", "v2"] {
        let dir = bases.path().join(variant);
        std::fs::create_dir_all(&dir).unwrap();
        push_base(
            &support::busybox_base(&dir, variant),
            &format!("{addr}/bases/busybox:{variant}"),
        );
    }
    println!(
        "| app size | full rebuild (s) | rebase, local store (ms) | rebuild / rebase | rebase, registry (ms) | rebuild / registry rebase |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for megabytes in [10, 100, 1000] {
        let home = tempfile::tempdir().unwrap();
        let base_dir = tempfile::tempdir().unwrap();
        let base = format!(
            "oci:{}:latest",
            support::busybox_base(base_dir.path(), "v1").display()
        );
        let app = support::app(&[("Procfile", "web: echo hi\n")]);
        std::fs::write(
            app.path().join("data.bin"),
            support::noise(megabytes as u64, megabytes << 20),
        )
        .unwrap();
        let path = app.path().to_str().unwrap().to_owned();
        run(
            &binary,
            home.path(),
            &["build", "big", "--path", &path, "--run-image", &base],
        );
        support::busybox_base(base_dir.path(), "v2");
        let rebase = run(&binary, home.path(), &["rebase", "big"]);
        // A full rebuild on the new base with an empty cache: what rebase saves.
        let cold_home = tempfile::tempdir().unwrap();
        let rebuild = run(
            &binary,
            cold_home.path(),
            &["build", "big", "--path", &path, "--run-image", &base],
        );
        // The same app published on v1, rebased onto v2 by a machine with an empty store.
        let image = format!("{addr}/apps/big-{megabytes}:1");
        run(
            &binary,
            tempfile::tempdir().unwrap().path(),
            &[
                "build",
                &image,
                "--path",
                &path,
                "--run-image",
                &format!("docker://{addr}/bases/busybox:v1"),
                "--publish",
                "--insecure-registry",
                &addr,
            ],
        );
        let registry_rebase = run(
            &binary,
            tempfile::tempdir().unwrap().path(),
            &[
                "rebase",
                &format!("docker://{image}"),
                "--run-image",
                &format!("docker://{addr}/bases/busybox:v2"),
                "--insecure-registry",
                &addr,
            ],
        );
        println!(
            "| {megabytes} MB | {rebuild:.2} | {:.0} | {:.0}× | {:.0} | {:.0}× |",
            rebase * 1000.0,
            rebuild / rebase,
            registry_rebase * 1000.0,
            rebuild / registry_rebase
        );
    }
}
