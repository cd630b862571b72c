//! The Debian run image: cold (download + verify + unpack) and warm `kiln base build`, and the
//! Python runtime layer, next to `debootstrap --variant=minbase` from the same mirror in the
//! same run; compressed size of kiln's base vs a gzipped minbase tarball.
//!
//! Run: `cargo bench --bench base_build` (needs root and debootstrap for the peer).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use kiln::stack::{MirrorOverrides, MirrorPlan, SuiteSetting};

fn kiln_binary() -> PathBuf {
    let status = Command::new("cargo")
        .args(["build", "--release", "--bin", "kiln"])
        .status()
        .unwrap();
    assert!(status.success());
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/kiln")
}

fn timed(command: &mut Command) -> f64 {
    let start = Instant::now();
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    start.elapsed().as_secs_f64()
}

/// The bookworm mirror the host's apt configuration names (never written down here).
fn bookworm_mirror() -> String {
    let plan = MirrorPlan::load(Path::new("/"), MirrorOverrides::from_env()).unwrap();
    let suite = SuiteSetting {
        name: "bookworm".to_owned(),
        mirror: None,
        keyring: None,
    };
    plan.sources_for(&suite, "main").unwrap()[0].uri.clone()
}

fn dir_size(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .into_iter()
        .flatten()
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| entry.metadata().map(|meta| meta.len()).unwrap_or(0))
        .sum()
}

fn main() {
    let binary = kiln_binary();
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let kiln = |args: &[&str]| {
        let mut command = Command::new(&binary);
        command.env("KILN_HOME", home.path()).args(args);
        command
    };
    let layout = out.path().join("base");
    let target = format!("oci:{}:base", layout.display());
    let cold = timed(&mut kiln(&["base", "build", "--output", &target]));
    let warm = timed(&mut kiln(&["base", "build", "--output", &target]));
    let base_size = dir_size(&layout.join("blobs"));

    let app = tempfile::tempdir().unwrap();
    std::fs::write(app.path().join("requirements.txt"), "").unwrap();
    std::fs::write(app.path().join("main.py"), "print('hi')\n").unwrap();
    let app_path = app.path().to_str().unwrap();
    let python_cold = timed(&mut kiln(&["build", "py", "--path", app_path]));
    let python_warm = timed(&mut kiln(&["build", "py", "--path", app_path]));

    let rootfs = out.path().join("minbase");
    let mirror = bookworm_mirror();
    let debootstrap = timed(Command::new("debootstrap").args([
        "--variant=minbase",
        "bookworm",
        rootfs.to_str().unwrap(),
        &mirror,
    ]));
    let tarball = out.path().join("minbase.tar.gz");
    let pack = timed(Command::new("sh").arg("-c").arg(format!(
        "tar -C {} -cf - . | gzip -6 > {}",
        rootfs.display(),
        tarball.display()
    )));
    let minbase_size = std::fs::metadata(&tarball).unwrap().len();
    let mb = |bytes: u64| bytes as f64 / (1 << 20) as f64;

    println!("| step | kiln | debootstrap --variant=minbase | kiln ÷ peer |");
    println!("|---|---:|---:|---:|");
    println!(
        "| cold base (download, verify, unpack, write) | {cold:.1} s | {:.1} s | {:.2}x |",
        debootstrap + pack,
        cold / (debootstrap + pack)
    );
    println!("| warm base (everything pinned and cached) | {warm:.2} s | – | – |");
    println!(
        "| python app, cold (runtime layer resolved and unpacked) | {python_cold:.1} s | – | – |"
    );
    println!("| python app, warm (runtime layer reused) | {python_warm:.2} s | – | – |");
    println!(
        "| compressed size | {:.1} MB | {:.1} MB | {:.2}x |",
        mb(base_size),
        mb(minbase_size),
        base_size as f64 / minbase_size as f64
    );
}
