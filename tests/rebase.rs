//! Rebase: moving an app onto a new base equals a fresh build on that base; refusals.

mod support;

use support::{Kiln, app, busybox_base, busybox_base_with, read_image, validate_layout};

fn hello() -> tempfile::TempDir {
    app(&[
        ("Procfile", "web: echo hello $BASE_VARIANT\n"),
        ("index.html", "hi\n"),
    ])
}

#[test]
fn rebase_onto_a_new_base_equals_a_fresh_build_on_it() {
    let kiln = Kiln::new();
    let base_dir = tempfile::tempdir().unwrap();
    let base = format!(
        "oci:{}:latest",
        busybox_base(base_dir.path(), "v1").display()
    );
    let source = hello();
    let path = source.path().to_str().unwrap();
    let v1 = kiln.ok(&["build", "hello", "--path", path, "--run-image", &base]);

    // The base gets a "security fix": same name, different files, env and labels.
    busybox_base(base_dir.path(), "v2");
    let rebased = kiln.ok(&["rebase", "hello"]);
    assert_ne!(rebased, v1);
    let fresh = kiln.ok(&["build", "fresh", "--path", path, "--run-image", &base]);
    assert_eq!(
        rebased, fresh,
        "a rebased image must equal a fresh build on the new base"
    );
    validate_layout(&kiln.store());

    let image = read_image(&kiln.store(), "hello:latest");
    let env = image.env();
    assert!(
        env.contains(&("BASE_VARIANT".to_owned(), "v2".to_owned())),
        "{env:?}"
    );
    assert_eq!(image.labels()["org.example.base"], "v2");
    assert_eq!(
        image.annotations()["org.opencontainers.image.base.name"],
        base
    );
}

#[test]
fn rebase_moves_no_app_layer_bytes_and_keeps_app_layers() {
    let kiln = Kiln::new();
    let base_dir = tempfile::tempdir().unwrap();
    let base = format!(
        "oci:{}:latest",
        busybox_base(base_dir.path(), "v1").display()
    );
    let source = hello();
    kiln.ok(&[
        "build",
        "hello",
        "--path",
        source.path().to_str().unwrap(),
        "--run-image",
        &base,
    ]);
    let before = read_image(&kiln.store(), "hello:latest");
    let second = tempfile::tempdir().unwrap();
    let other = format!(
        "oci:{}:latest",
        busybox_base(second.path(), "other").display()
    );
    kiln.ok(&[
        "rebase",
        "hello",
        "--run-image",
        &other,
        "--output",
        "moved",
    ]);
    let after = read_image(&kiln.store(), "moved:latest");
    let app_layers = |image: &kiln::oci::Image| image.manifest.layers()[1..].to_vec();
    assert_eq!(
        app_layers(&before),
        app_layers(&after),
        "app layers are reused as they are"
    );
    assert_ne!(before.manifest.layers()[0], after.manifest.layers()[0]);
    assert_eq!(
        read_image(&kiln.store(), "hello:latest").manifest_digest,
        before.manifest_digest,
        "--output leaves the source alone"
    );
}

fn expect_refusal(kiln: &Kiln, args: &[&str], needle: &str) {
    let before = kiln.store_tags();
    let digest_before = read_image(&kiln.store(), "hello:latest").manifest_digest;
    let output = kiln.run(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{args:?}:\n{stderr}");
    assert!(stderr.contains(needle), "expected `{needle}` in:\n{stderr}");
    assert_eq!(kiln.store_tags(), before);
    assert_eq!(
        read_image(&kiln.store(), "hello:latest").manifest_digest,
        digest_before,
        "image unchanged"
    );
}

#[test]
fn refusals_are_clear_and_force_proceeds_where_allowed() {
    let kiln = Kiln::new();
    let source = hello();
    let path = source.path().to_str().unwrap();

    let pinned = tempfile::tempdir().unwrap();
    busybox_base_with(
        pinned.path(),
        "pinned",
        "amd64",
        &[("io.buildpacks.rebasable", "false")],
    );
    let pinned_ref = format!("oci:{}:latest", pinned.path().display());
    kiln.ok(&["build", "hello", "--path", path, "--run-image", &pinned_ref]);
    let other = tempfile::tempdir().unwrap();
    let other_ref = format!(
        "oci:{}:latest",
        busybox_base(other.path(), "other").display()
    );
    expect_refusal(
        &kiln,
        &["rebase", "hello", "--run-image", &other_ref],
        "rebasable=false",
    );
    kiln.ok(&[
        "rebase",
        "hello",
        "--run-image",
        &other_ref,
        "--force",
        "--output",
        "forced",
    ]);

    let debian12 = tempfile::tempdir().unwrap();
    busybox_base_with(
        debian12.path(),
        "d12",
        "amd64",
        &[
            ("io.buildpacks.base.distro.name", "debian"),
            ("io.buildpacks.base.distro.version", "12"),
        ],
    );
    kiln.ok(&[
        "build",
        "hello",
        "--path",
        path,
        "--run-image",
        &format!("oci:{}:latest", debian12.path().display()),
    ]);
    let debian13 = tempfile::tempdir().unwrap();
    busybox_base_with(
        debian13.path(),
        "d13",
        "amd64",
        &[
            ("io.buildpacks.base.distro.name", "debian"),
            ("io.buildpacks.base.distro.version", "13"),
        ],
    );
    let debian13_ref = format!("oci:{}:latest", debian13.path().display());
    expect_refusal(
        &kiln,
        &["rebase", "hello", "--run-image", &debian13_ref],
        "debian 13",
    );

    let arm = tempfile::tempdir().unwrap();
    busybox_base_with(
        arm.path(),
        "arm",
        "arm64",
        &[
            ("io.buildpacks.base.distro.name", "debian"),
            ("io.buildpacks.base.distro.version", "12"),
        ],
    );
    let arm_ref = format!("oci:{}:latest", arm.path().display());
    expect_refusal(
        &kiln,
        &["rebase", "hello", "--run-image", &arm_ref],
        "linux/arm64",
    );

    // A plain image (not built by kiln) cannot be rebased.
    let plain = tempfile::tempdir().unwrap();
    let plain_ref = format!(
        "oci:{}:latest",
        busybox_base(plain.path(), "plain").display()
    );
    let output = kiln.run(&["rebase", &plain_ref, "--run-image", &other_ref]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not built by kiln"));
}

#[test]
fn a_base_whose_top_layer_is_not_in_the_image_is_refused() {
    let kiln = Kiln::new();
    let base_dir = tempfile::tempdir().unwrap();
    let base = format!(
        "oci:{}:latest",
        busybox_base(base_dir.path(), "v1").display()
    );
    let source = hello();
    kiln.ok(&[
        "build",
        "hello",
        "--path",
        source.path().to_str().unwrap(),
        "--run-image",
        &base,
    ]);
    // Rewrite the label so it names a top layer the image does not have.
    let image = read_image(&kiln.store(), "hello:latest");
    let blobs = kiln::oci::BlobStore::for_layout(&kiln.store());
    let mut builder = kiln::oci::ImageBuilder::from_base(&image, "test").unwrap();
    let labels = image.labels();
    let label = labels["io.buildpacks.lifecycle.metadata"].replace(
        image.diff_ids()[0].as_str(),
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
    );
    builder.set_label("io.buildpacks.lifecycle.metadata", &label);
    let tampered = builder.build(&blobs).unwrap();
    kiln::oci::Layout::open(&kiln.store())
        .unwrap()
        .write_image(&tampered, &blobs, "hello:latest")
        .unwrap();
    expect_refusal(&kiln, &["rebase", "hello"], "is not among its layers");
}
