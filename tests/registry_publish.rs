//! `kiln build --publish` and `--run-image docker://…` against a real `docker-registry`.

#[path = "support/registry.rs"]
mod registry_support;
mod support;

use std::process::Command;

use registry_support::{Flavor, TestRegistry, run_ok};
use support::{Kiln, app, busybox_base};

fn hello_app() -> tempfile::TempDir {
    app(&[
        ("Procfile", "web: echo hello from kiln\n"),
        ("index.html", "<h1>hi</h1>\n"),
    ])
}

#[test]
fn publish_pushes_the_built_image_and_a_rebuild_uploads_nothing() {
    let registry = TestRegistry::start(Flavor::Plain);
    let kiln = Kiln::new();
    let base = tempfile::tempdir().unwrap();
    let base = format!("oci:{}:latest", busybox_base(base.path(), "v1").display());
    let source = hello_app();
    let path = source.path().to_str().unwrap();
    let name = format!("{}/team/hello:1", registry.addr);
    let args = [
        "build",
        &name,
        "--path",
        path,
        "--run-image",
        &base,
        "--publish",
        "--insecure-registry",
        &registry.addr,
    ];

    let digest = kiln.ok(&args);
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]));
    assert_eq!(kiln::oci::Digest::of_bytes(&raw).to_string(), digest);
    registry.settle();
    let first_uploads = registry.blob_uploads(None);
    assert_eq!(first_uploads, 4, "config + base, app and process layers");

    assert_eq!(kiln.ok(&args), digest, "same inputs, same digest");
    registry.settle();
    assert_eq!(
        registry.blob_uploads(None),
        first_uploads,
        "a no-change publish uploads nothing"
    );
}

#[test]
fn run_image_can_come_from_a_registry() {
    let registry = TestRegistry::start(Flavor::Plain);
    let base = tempfile::tempdir().unwrap();
    let layout = busybox_base(base.path(), "v1");
    run_ok(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:latest", layout.display()),
        &format!("docker://{}/bases/busybox:1", registry.addr),
    ]));
    let kiln = Kiln::new();
    let source = hello_app();
    let run_image = format!("docker://{}/bases/busybox:1", registry.addr);
    let digest = kiln.ok(&[
        "build",
        "hello",
        "--path",
        source.path().to_str().unwrap(),
        "--run-image",
        &run_image,
        "--insecure-registry",
        &registry.addr,
    ]);
    assert!(digest.starts_with("sha256:"), "{digest}");

    // Without naming the registry insecure, kiln tries HTTPS and says what to do.
    let output = kiln.run(&[
        "build",
        "hello",
        "--path",
        source.path().to_str().unwrap(),
        "--run-image",
        &run_image,
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&registry.addr), "{stderr}");
    assert!(
        stderr.contains("hint:") && stderr.contains("--insecure-registry"),
        "{stderr}"
    );
}
