//! `kiln rebase` on a real `docker-registry`: one config and one manifest are written, no layer
//! blob moves (new base layers are mounted from the base's repository), the old base is found
//! by digest so base-derived Env and labels are recomputed exactly, and a new base missing
//! from the registry is a clear error.

#[path = "support/registry.rs"]
mod registry_support;
mod support;

use std::process::Command;

use registry_support::{Flavor, TestRegistry, run_ok};
use support::{Kiln, app, busybox_base};

fn skopeo_copy(layout: &std::path::Path, destination: &str) {
    run_ok(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:latest", layout.display()),
        &format!("docker://{destination}"),
    ]));
}

fn raw_manifest(reference: &str) -> serde_json::Value {
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]));
    serde_json::from_slice(&raw).unwrap()
}

/// Requests logged after the first `skip` lines.
fn requests_since(registry: &TestRegistry, skip: usize) -> Vec<(String, String, u16)> {
    registry.requests().into_iter().skip(skip).collect()
}

#[test]
fn registry_rebase_writes_one_config_and_one_manifest_and_equals_a_fresh_build() {
    let registry = TestRegistry::start(Flavor::Plain);
    let addr = registry.addr.clone();
    let bases = tempfile::tempdir().unwrap();
    let v1 = bases.path().join("v1");
    let v2 = bases.path().join("v2");
    std::fs::create_dir_all(&v1).unwrap();
    std::fs::create_dir_all(&v2).unwrap();
    skopeo_copy(&busybox_base(&v1, "v1"), &format!("{addr}/bases/busybox:1"));
    skopeo_copy(&busybox_base(&v2, "v2"), &format!("{addr}/bases/busybox:2"));
    let source = app(&[("Procfile", "web: echo hello $BASE_VARIANT\n")]);
    let path = source.path().to_str().unwrap();
    let build = |name: &str, base: &str| {
        Kiln::new().ok(&[
            "build",
            &format!("{addr}/team/{name}:1"),
            "--path",
            path,
            "--run-image",
            &format!("docker://{addr}/bases/busybox:{base}"),
            "--publish",
            "--insecure-registry",
            &addr,
        ])
    };
    let built = build("hello", "1");
    registry.settle();
    let before = registry.requests().len();

    // A fresh machine: nothing of the app or either base is local.
    let rebased = Kiln::new().ok(&[
        "rebase",
        &format!("docker://{addr}/team/hello:1"),
        "--run-image",
        &format!("docker://{addr}/bases/busybox:2"),
        "--insecure-registry",
        &addr,
    ]);
    registry.settle();
    assert_ne!(rebased, built);
    let manifest = raw_manifest(&format!("{addr}/team/hello:1"));
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let layer_digests: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap().to_owned())
        .collect();

    let requests = requests_since(&registry, before);
    let uploads: Vec<&(String, String, u16)> = requests
        .iter()
        .filter(|(method, path, status)| {
            method == "PUT" && *status == 201 && path.contains("/blobs/uploads/")
        })
        .collect();
    assert_eq!(uploads.len(), 1, "only the config is uploaded: {uploads:?}");
    assert!(
        uploads[0].1.contains(&config_digest.replace(':', "%3A"))
            || uploads[0].1.contains(&config_digest),
        "{uploads:?}"
    );
    let manifest_puts = requests
        .iter()
        .filter(|(method, path, _)| method == "PUT" && path.contains("/manifests/"))
        .count();
    assert_eq!(manifest_puts, 1);
    let mounts = requests
        .iter()
        .filter(|(method, path, status)| {
            method == "POST" && *status == 201 && path.contains("mount=")
        })
        .count();
    assert_eq!(
        mounts, 1,
        "the new base layer is mounted from bases/busybox"
    );
    let layer_reads: Vec<&(String, String, u16)> = requests
        .iter()
        .filter(|(method, path, _)| {
            method == "GET"
                && layer_digests
                    .iter()
                    .any(|digest| path.ends_with(digest.as_str()))
        })
        .collect();
    assert!(
        layer_reads.is_empty(),
        "no layer is downloaded: {layer_reads:?}"
    );

    // The old base was found by digest, so the base's Env and labels follow v2 exactly: the
    // result equals a fresh build of the same source on v2.
    let fresh = build("fresh", "2");
    assert_eq!(rebased, fresh);
}

#[test]
fn a_new_base_missing_from_the_registry_points_at_base_publish() {
    let registry = TestRegistry::start(Flavor::Plain);
    let addr = registry.addr.clone();
    let bases = tempfile::tempdir().unwrap();
    skopeo_copy(
        &busybox_base(bases.path(), "v1"),
        &format!("{addr}/bases/busybox:1"),
    );
    let source = app(&[("Procfile", "web: echo hello\n")]);
    let built = Kiln::new().ok(&[
        "build",
        &format!("{addr}/team/hello:1"),
        "--path",
        source.path().to_str().unwrap(),
        "--run-image",
        &format!("docker://{addr}/bases/busybox:1"),
        "--publish",
        "--insecure-registry",
        &addr,
    ]);
    let output = Kiln::new().run(&[
        "rebase",
        &format!("docker://{addr}/team/hello:1"),
        "--run-image",
        &format!("docker://{addr}/bases/busybox:2"),
        "--insecure-registry",
        &addr,
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not in the registry"), "{stderr}");
    assert!(
        stderr.contains(&format!("kiln base build --publish {addr}/bases/busybox:2")),
        "{stderr}"
    );
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{addr}/team/hello:1"),
    ]));
    assert_eq!(
        kiln::oci::Digest::of_bytes(&raw).to_string(),
        built,
        "the image is unchanged"
    );
}
