//! Publish time and bytes sent: `kiln build --publish` of samples/python-flask on the default
//! Debian stack (cold, no change on the same machine, no change on a fresh machine, one code
//! change) next to `skopeo copy` of the same image's OCI layout to the same local
//! `docker-registry`, in one run. Bytes sent are the sizes of the blobs the registry's access
//! log shows completed uploads for, plus manifests.
//!
//! Run: `cargo bench --bench publish` (uses the release `kiln` binary it builds; needs pip and
//! the Debian archive).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../tests/support/registry.rs"]
mod registry_support;

use registry_support::{Flavor, TestRegistry};

fn kiln_binary() -> PathBuf {
    let status = Command::new("cargo")
        .args(["build", "--release", "--bin", "kiln"])
        .status()
        .unwrap();
    assert!(status.success());
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/kiln")
}

/// Assemble the default run image in `home` (not timed: every machine of the benchmark starts
/// with the stack's Debian packages verified and unpacked, as a CI runner with a warm
/// `KILN_HOME` volume does).
fn prepare_stack(binary: &Path, home: &Path) {
    kiln(binary, home, &["base", "build"]);
}

/// Seconds `kiln ARGS` took with this home.
fn kiln(binary: &Path, home: &Path, args: &[&str]) -> f64 {
    let start = Instant::now();
    let output = Command::new(binary)
        .env("KILN_HOME", home)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kiln {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    start.elapsed().as_secs_f64()
}

/// Seconds `skopeo copy` of a layout to the registry took.
fn skopeo_copy(layout: &Path, tag: &str, destination: &str) -> f64 {
    let start = Instant::now();
    let output = Command::new("skopeo")
        .args([
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:{tag}", layout.display()),
            &format!("docker://{destination}"),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    start.elapsed().as_secs_f64()
}

/// Bytes uploaded since the access log had `skip` lines: completed blob uploads (sized from
/// the layouts, which hold every blob either tool could send) plus manifest bodies.
fn bytes_sent(registry: &TestRegistry, skip: usize, layouts: &[&Path]) -> u64 {
    registry.settle();
    let mut total = 0;
    for (method, path, status) in registry.requests().into_iter().skip(skip) {
        if method == "PUT" && status == 201 && path.contains("/blobs/uploads/") {
            let digest = path
                .split("digest=")
                .nth(1)
                .map(|value| value.split('&').next().unwrap_or(value))
                .map(|value| value.replace("%3A", ":"))
                .expect("digest in the upload path");
            let hex = digest.trim_start_matches("sha256:");
            total += layouts
                .iter()
                .filter_map(|layout| std::fs::metadata(layout.join("blobs/sha256").join(hex)).ok())
                .map(|metadata| metadata.len())
                .next()
                .unwrap_or_else(|| panic!("blob {digest} is in no layout"));
        }
        if method == "PUT" && path.contains("/manifests/") {
            total += 1024; // manifests are ~1 KB; the access log does not size requests
        }
    }
    total
}

struct Row {
    scenario: &'static str,
    kiln_seconds: f64,
    kiln_bytes: u64,
    skopeo_seconds: Option<f64>,
    skopeo_bytes: Option<u64>,
}

fn main() {
    let binary = kiln_binary();
    let registry = TestRegistry::start(Flavor::Plain);
    let app = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/python-flask");
    for entry in std::fs::read_dir(&sample).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), app.path().join(entry.file_name())).unwrap();
    }
    let app_py = std::fs::read_to_string(app.path().join("app.py")).unwrap();
    let path = app.path().to_str().unwrap().to_owned();
    let addr = registry.addr.clone();
    let kiln_ref = format!("{addr}/bench/kiln:1");
    let skopeo_ref = format!("{addr}/bench/skopeo:1");
    let publish = |home: &Path| {
        kiln(
            &binary,
            home,
            &[
                "build",
                &kiln_ref,
                "--path",
                &path,
                "--publish",
                "--insecure-registry",
                &addr,
            ],
        )
    };
    // The same images as OCI layouts, built apart (not timed), for skopeo to copy.
    let layouts = tempfile::tempdir().unwrap();
    let layout = layouts.path().join("layout");
    let layout_home = tempfile::tempdir().unwrap();
    prepare_stack(&binary, layout_home.path());
    let write_layout = |tag: &str| {
        kiln(
            &binary,
            layout_home.path(),
            &[
                "build",
                "bench",
                "--path",
                &path,
                "--output",
                &format!("oci:{}:{tag}", layout.display()),
            ],
        );
    };
    write_layout("v1");

    let machine_a = tempfile::tempdir().unwrap();
    let machine_b = tempfile::tempdir().unwrap();
    prepare_stack(&binary, machine_a.path());
    prepare_stack(&binary, machine_b.path());
    let mut rows = Vec::new();
    let mut measure = |scenario, kiln_run: &dyn Fn() -> f64, skopeo_tag: Option<&str>| {
        let before = registry.requests().len();
        let kiln_seconds = kiln_run();
        let kiln_bytes = bytes_sent(&registry, before, &[&layout]);
        let (skopeo_seconds, skopeo_bytes) = match skopeo_tag {
            Some(tag) => {
                let before = registry.requests().len();
                let seconds = skopeo_copy(&layout, tag, &skopeo_ref);
                (
                    Some(seconds),
                    Some(bytes_sent(&registry, before, &[&layout])),
                )
            }
            None => (None, None),
        };
        rows.push(Row {
            scenario,
            kiln_seconds,
            kiln_bytes,
            skopeo_seconds,
            skopeo_bytes,
        });
    };
    measure("cold", &|| publish(machine_a.path()), Some("v1"));
    measure("no change", &|| publish(machine_a.path()), Some("v1"));
    measure(
        "no change, fresh machine",
        &|| publish(machine_b.path()),
        None,
    );
    std::fs::write(
        app.path().join("app.py"),
        app_py.replace("Hello from kiln", "Hello again from kiln"),
    )
    .unwrap();
    write_layout("v2");
    measure("code change", &|| publish(machine_a.path()), Some("v2"));

    println!(
        "| scenario | kiln build --publish (s) | kiln MB sent | skopeo copy (s) | skopeo MB sent | skopeo time / kiln time |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let mb = |bytes: u64| format!("{:.2}", bytes as f64 / 1e6);
    for row in rows {
        println!(
            "| {} | {:.2} | {} | {} | {} | {} |",
            row.scenario,
            row.kiln_seconds,
            mb(row.kiln_bytes),
            row.skopeo_seconds
                .map_or("–".to_owned(), |seconds| format!("{seconds:.2}")),
            row.skopeo_bytes.map_or("–".to_owned(), mb),
            row.skopeo_seconds.map_or("–".to_owned(), |seconds| format!(
                "{:.2}x",
                seconds / row.kiln_seconds
            )),
        );
    }
}
