//! Previous-image reuse against a real `docker-registry`: a publish from a fresh machine
//! (empty KILN_HOME) reuses the published image's layers by digest — nothing recompressed,
//! nothing uploaded — and a code change sends only the new app layer and config.

#[path = "support/registry.rs"]
mod registry_support;
mod support;

use std::path::Path;

use registry_support::{Flavor, TestRegistry};
use serde_json::Value;
use support::{Kiln, app, busybox_base};

fn hello_app() -> tempfile::TempDir {
    app(&[
        ("Procfile", "web: echo hello from kiln\n"),
        ("index.html", "<h1>hi</h1>\n"),
    ])
}

fn publish(kiln: &Kiln, registry: &TestRegistry, name: &str, source: &Path, base: &str) -> Value {
    publish_with(kiln, registry, name, source, base, &[])
}

fn publish_with(
    kiln: &Kiln,
    registry: &TestRegistry,
    name: &str,
    source: &Path,
    base: &str,
    extra: &[&str],
) -> Value {
    let report = kiln.home.path().join("report.json");
    let mut args = vec![
        "build",
        name,
        "--path",
        source.to_str().unwrap(),
        "--run-image",
        base,
        "--publish",
        "--insecure-registry",
        &registry.addr,
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    kiln.ok(&args);
    registry.settle();
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

fn layer<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|layer| layer["name"] == name)
        .unwrap_or_else(|| panic!("no layer {name} in {report:#}"))
}

#[test]
fn a_fresh_machine_republishes_an_unchanged_app_without_compressing_or_uploading() {
    let registry = TestRegistry::start(Flavor::Plain);
    let base_dir = tempfile::tempdir().unwrap();
    let base = format!(
        "oci:{}:latest",
        busybox_base(base_dir.path(), "v1").display()
    );
    let source = hello_app();
    let name = format!("{}/team/hello:1", registry.addr);

    let machine_a = Kiln::new();
    let first = publish(&machine_a, &registry, &name, source.path(), &base);
    assert!(first.get("previous_image").is_none(), "{first:#}");
    assert_eq!(layer(&first, "app")["blob_from"], "built");
    let uploads_after_first = registry.blob_uploads(None);

    let machine_b = Kiln::new();
    let second = publish(&machine_b, &registry, &name, source.path(), &base);
    assert_eq!(second["digest"], first["digest"]);
    assert_eq!(
        second["previous_image"]["digest"], first["digest"],
        "{second:#}"
    );
    for name in ["app", "process-types"] {
        let reused = layer(&second, name);
        assert_eq!(reused["blob_from"], "previous-image", "{reused:#}");
        assert_eq!(reused["compressed"], false, "{reused:#}");
    }
    assert_eq!(
        registry.blob_uploads(None),
        uploads_after_first,
        "nothing is uploaded again"
    );
    let push = &second["outputs"][0]["push"];
    assert_eq!(push["uploaded"], 0, "{push:#}");
    assert_eq!(push["bytes_uploaded"], 0, "{push:#}");
    assert_eq!(
        second["outputs"][0]["pinned"],
        format!(
            "{}/team/hello@{}",
            registry.addr,
            first["digest"].as_str().unwrap()
        )
    );
    assert!(
        machine_b.store_tags().is_empty(),
        "--publish writes the registry, not the local store"
    );
    let output = machine_b.run(&["inspect", &name]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("use docker://{name}")), "{stderr}");
    // No layer blob was downloaded: the previous image was read as manifest and config only.
    let layer_pulls = registry
        .requests()
        .iter()
        .filter(|(method, path, _)| {
            method == "GET"
                && path.contains("/blobs/sha256:")
                && [
                    &second["layers"][0]["digest"],
                    &second["layers"][1]["digest"],
                ]
                .iter()
                .any(|digest| path.ends_with(digest.as_str().unwrap()))
        })
        .count();
    assert_eq!(layer_pulls, 0);

    std::fs::write(source.path().join("index.html"), "<h1>changed</h1>\n").unwrap();
    let third = publish(&machine_b, &registry, &name, source.path(), &base);
    assert_eq!(layer(&third, "app")["blob_from"], "built");
    assert_eq!(
        layer(&third, "process-types")["blob_from"],
        "previous-image"
    );
    assert_eq!(
        registry.blob_uploads(None),
        uploads_after_first + 2,
        "a code change uploads the app layer and the config"
    );
}

#[test]
fn a_previous_image_in_another_repository_is_mounted_not_uploaded() {
    let registry = TestRegistry::start(Flavor::Plain);
    let base_dir = tempfile::tempdir().unwrap();
    let base = format!(
        "oci:{}:latest",
        busybox_base(base_dir.path(), "v1").display()
    );
    let source = hello_app();
    let first_name = format!("{}/team/hello:1", registry.addr);
    publish(&Kiln::new(), &registry, &first_name, source.path(), &base);
    let uploads = registry.blob_uploads(None);
    let mounts = registry.blob_mounts();

    let previous = format!("docker://{first_name}");
    let report = publish_with(
        &Kiln::new(),
        &registry,
        &format!("{}/other/hello:1", registry.addr),
        source.path(),
        &base,
        &["--previous-image", &previous],
    );
    let push = &report["outputs"][0]["push"];
    assert_eq!(push["uploaded"], 1, "only the config: {push:#}");
    assert_eq!(push["mounted"], 3, "base, app and process layers: {push:#}");
    assert_eq!(registry.blob_uploads(None), uploads + 1);
    assert_eq!(registry.blob_mounts(), mounts + 3);
}

#[test]
fn an_unreachable_previous_image_is_a_clear_error() {
    let registry = TestRegistry::start(Flavor::Basic {
        username: "ci".to_owned(),
        password: "secret".to_owned(),
    });
    let base_dir = tempfile::tempdir().unwrap();
    let base = format!(
        "oci:{}:latest",
        busybox_base(base_dir.path(), "v1").display()
    );
    let source = hello_app();
    let kiln = Kiln::new();
    let output = kiln
        .cmd()
        .env("DOCKER_CONFIG", kiln.home.path())
        .args([
            "build",
            &format!("{}/team/hello:1", registry.addr),
            "--path",
            source.path().to_str().unwrap(),
            "--run-image",
            &base,
            "--publish",
            "--insecure-registry",
            &registry.addr,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read the previous image") && stderr.contains("hint:"),
        "{stderr}"
    );
    assert!(kiln.store_tags().is_empty(), "nothing written");
}

#[test]
fn local_outputs_fetch_the_layers_a_publish_reused_from_the_previous_image() {
    let registry = TestRegistry::start(Flavor::Plain);
    let base_dir = tempfile::tempdir().unwrap();
    let base = format!(
        "oci:{}:latest",
        busybox_base(base_dir.path(), "v1").display()
    );
    let source = hello_app();
    let name = format!("{}/team/hello:1", registry.addr);
    publish(&Kiln::new(), &registry, &name, source.path(), &base);

    // A fresh machine writes a layout too: the reused app layer is downloaded for it.
    let out = tempfile::tempdir().unwrap();
    let layout = format!("oci:{}:hello", out.path().display());
    let report = publish_with(
        &Kiln::new(),
        &registry,
        &name,
        source.path(),
        &base,
        &["--output", &layout],
    );
    assert_eq!(layer(&report, "app")["blob_from"], "previous-image");
    support::validate_layout(out.path());
}
