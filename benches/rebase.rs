//! Rebase time against image size: 10 MB, 100 MB and 1 GB app layers in the local store,
//! next to a full rebuild of the same image, in one run. Rebase reads and writes only a
//! config and a manifest, so its time must not grow with the image.
//!
//! Run: `cargo bench --bench rebase` (uses the release `kiln` binary it builds).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "../tests/support/mod.rs"]
mod support;

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

fn noise(path: &Path, megabytes: usize) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ megabytes as u64;
    let bytes: Vec<u8> = (0..megabytes << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(path, bytes).unwrap();
}

fn main() {
    let binary = kiln_binary();
    println!("| app size | full rebuild (s) | rebase (ms) | rebuild / rebase |");
    println!("|---:|---:|---:|---:|");
    for megabytes in [10, 100, 1000] {
        let home = tempfile::tempdir().unwrap();
        let base_dir = tempfile::tempdir().unwrap();
        let base = format!(
            "oci:{}:latest",
            support::busybox_base(base_dir.path(), "v1").display()
        );
        let app = support::app(&[("Procfile", "web: echo hi\n")]);
        noise(&app.path().join("data.bin"), megabytes);
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
        println!(
            "| {megabytes} MB | {rebuild:.2} | {:.0} | {:.0}x |",
            rebase * 1000.0,
            rebuild / rebase
        );
    }
}
