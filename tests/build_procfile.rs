//! The first end-to-end slice: a Procfile app on a busybox base, exported, validated,
//! read back by skopeo and umoci, and run in a chroot.

mod support;

use std::process::Command;

use support::{Kiln, app, busybox_base, read_image, require_tool, run_ok, validate_layout};

fn base_ref(base: &tempfile::TempDir) -> String {
    format!("oci:{}:latest", busybox_base(base.path(), "v1").display())
}

fn hello_app() -> tempfile::TempDir {
    app(&[
        (
            "Procfile",
            "web: echo hello from kiln\nworker: echo worker says $PORT\n",
        ),
        ("index.html", "<h1>hi</h1>\n"),
    ])
}

#[test]
fn build_twice_gives_the_same_digest_and_epoch_changes_only_created() {
    let kiln = Kiln::new();
    let base = tempfile::tempdir().unwrap();
    let base = base_ref(&base);
    let source = hello_app();
    let path = source.path().to_str().unwrap();
    let first = kiln.ok(&["build", "hello", "--path", path, "--run-image", &base]);
    let second = kiln.ok(&["build", "hello", "--path", path, "--run-image", &base]);
    assert_eq!(
        first, second,
        "same inputs must give the same manifest digest"
    );
    assert!(first.starts_with("sha256:"));

    let plain = read_image(&kiln.store(), "hello:latest");
    let output = kiln
        .cmd()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["build", "hello-epoch", "--path", path, "--run-image", &base])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let epoch = read_image(&kiln.store(), "hello-epoch:latest");
    assert_eq!(
        plain.diff_ids(),
        epoch.diff_ids(),
        "layer digests must not follow SOURCE_DATE_EPOCH"
    );
    assert_eq!(plain.manifest.layers(), epoch.manifest.layers());
    assert_eq!(
        plain.config.created().as_deref(),
        Some("1980-01-01T00:00:01Z")
    );
    assert_eq!(
        epoch.config.created().as_deref(),
        Some("2023-11-14T22:13:20Z")
    );
    assert_ne!(plain.manifest_digest, epoch.manifest_digest);
}

#[test]
fn changing_one_app_file_changes_only_the_app_layer() {
    let kiln = Kiln::new();
    let base = tempfile::tempdir().unwrap();
    let base = base_ref(&base);
    let source = hello_app();
    let path = source.path().to_str().unwrap();
    kiln.ok(&["build", "hello", "--path", path, "--run-image", &base]);
    let before = read_image(&kiln.store(), "hello:latest").diff_ids();
    std::fs::write(source.path().join("index.html"), "<h1>changed</h1>\n").unwrap();
    let report = source.path().join("report.json");
    kiln.ok(&[
        "build",
        "hello",
        "--path",
        path,
        "--run-image",
        &base,
        "--report",
        report.to_str().unwrap(),
    ]);
    let after = read_image(&kiln.store(), "hello:latest").diff_ids();
    assert_eq!(before.len(), after.len());
    // base, app, process-types
    assert_eq!(before.len(), 3);
    assert_eq!(before[0], after[0], "base layer unchanged");
    assert_ne!(before[1], after[1], "app layer changed");
    assert_eq!(before[2], after[2], "process layer unchanged");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let app = &report["layers"][0];
    assert_eq!(app["name"], "app");
    assert_eq!(app["compressed"], true);
}

#[test]
fn image_is_valid_readable_by_skopeo_and_umoci_and_runs_its_entrypoint() {
    require_tool("skopeo");
    require_tool("umoci");
    let kiln = Kiln::new();
    let base = tempfile::tempdir().unwrap();
    let base = base_ref(&base);
    let source = hello_app();
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    let digest = kiln.ok(&[
        "build",
        "hello",
        "--path",
        source.path().to_str().unwrap(),
        "--run-image",
        &base,
        "--output",
        &format!("oci:{}:app", layout.display()),
    ]);
    validate_layout(&kiln.store());
    validate_layout(&layout);

    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci:{}:app", layout.display()),
    ]));
    assert_eq!(
        kiln::oci::Digest::of_bytes(raw.as_bytes()).to_string(),
        digest,
        "skopeo sees our exact manifest"
    );
    let config: serde_json::Value = serde_json::from_str(&run_ok(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("oci:{}:app", layout.display()),
    ])))
    .unwrap();
    let runtime = &config["config"];
    assert!(
        runtime.get("Cmd").is_none(),
        "the base's CMD must not leak: {runtime}"
    );
    assert_eq!(
        runtime["Entrypoint"],
        serde_json::json!(["echo", "hello", "from", "kiln"])
    );
    assert_eq!(runtime["User"], "1000:1000");
    assert_eq!(runtime["WorkingDir"], "/workspace");
    let env: Vec<String> = serde_json::from_value(runtime["Env"].clone()).unwrap();
    assert!(env.contains(&"PORT=8080".to_owned()), "{env:?}");
    assert!(env.contains(&"CNB_PLATFORM_API=0.13".to_owned()));
    assert!(
        env.iter()
            .any(|pair| pair.starts_with("PATH=/cnb/process:"))
    );
    let labels = &runtime["Labels"];
    let lifecycle: serde_json::Value =
        serde_json::from_str(labels["io.buildpacks.lifecycle.metadata"].as_str().unwrap()).unwrap();
    let base_top = read_image(
        std::path::Path::new(base.trim_start_matches("oci:").trim_end_matches(":latest")),
        "latest",
    )
    .diff_ids()
    .last()
    .cloned()
    .unwrap();
    assert_eq!(lifecycle["runImage"]["topLayer"], base_top.as_str());
    assert_eq!(lifecycle["runImage"]["image"], base.as_str());
    assert_eq!(lifecycle["stack"]["runImage"]["image"], base.as_str());
    assert!(
        lifecycle["runImage"]["reference"]
            .as_str()
            .unwrap()
            .contains("@sha256:")
    );
    assert_eq!(lifecycle["app"][0]["sha"], config["rootfs"]["diff_ids"][1]);
    let build: serde_json::Value =
        serde_json::from_str(labels["io.buildpacks.build.metadata"].as_str().unwrap()).unwrap();
    assert_eq!(build["buildpack-default-process-type"], "web");
    assert_eq!(build["processes"][0]["buildpackID"], "kiln/procfile");
    assert_eq!(labels["org.example.base"], "v1", "base labels are kept");
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.name"],
        base.as_str()
    );
    assert!(
        manifest["annotations"]["org.opencontainers.image.base.digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    let bundle = out.path().join("bundle");
    run_ok(Command::new("umoci").args([
        "unpack",
        "--rootless",
        "--image",
        &format!("{}:app", layout.display()),
        bundle.to_str().unwrap(),
    ]));
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("workspace/index.html").is_file());
    assert!(rootfs.join("cnb/process/worker").is_file());
    let entrypoint: Vec<String> = serde_json::from_value(runtime["Entrypoint"].clone()).unwrap();
    let printed = run_ok(Command::new("chroot").arg(&rootfs).args(&entrypoint));
    assert_eq!(printed.trim(), "hello from kiln");
    let worker = run_ok(Command::new("chroot").arg(&rootfs).args([
        "/bin/env",
        "-i",
        "PORT=9090",
        "/bin/sh",
        "/cnb/process/worker",
    ]));
    assert_eq!(worker.trim(), "worker says 9090");
}

#[test]
fn docker_archive_converts_with_skopeo_and_oci_archive_reads_back() {
    require_tool("skopeo");
    let kiln = Kiln::new();
    let base = tempfile::tempdir().unwrap();
    let base = base_ref(&base);
    let source = hello_app();
    let out = tempfile::tempdir().unwrap();
    let docker = out.path().join("app-docker.tar");
    let oci_archive = out.path().join("app-oci.tar");
    let digest = kiln.ok(&[
        "build",
        "hello",
        "--path",
        source.path().to_str().unwrap(),
        "--run-image",
        &base,
        "--output",
        &format!("docker-archive:{}", docker.display()),
        "--output",
        &format!("oci-archive:{}", oci_archive.display()),
    ]);
    let converted = out.path().join("converted");
    run_ok(Command::new("skopeo").args([
        "copy",
        &format!("docker-archive:{}", docker.display()),
        &format!("oci:{}:hello", converted.display()),
    ]));
    let image = read_image(&converted, "hello");
    let ours = read_image(&kiln.store(), "hello:latest");
    assert_eq!(
        image.diff_ids(),
        ours.diff_ids(),
        "same layers through docker-archive"
    );
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci-archive:{}", oci_archive.display()),
    ]));
    assert_eq!(
        kiln::oci::Digest::of_bytes(raw.as_bytes()).to_string(),
        digest
    );
    // kiln reads both archive forms back as bases.
    for base in [
        format!("docker-archive:{}", docker.display()),
        format!("oci-archive:{}", oci_archive.display()),
    ] {
        kiln.ok(&[
            "build",
            "again",
            "--path",
            source.path().to_str().unwrap(),
            "--run-image",
            &base,
        ]);
    }
}

#[test]
fn concurrent_builds_into_one_store_both_succeed() {
    let kiln = Kiln::new();
    let base = tempfile::tempdir().unwrap();
    let base = base_ref(&base);
    let first = hello_app();
    let second = app(&[("Procfile", "web: echo second\n")]);
    let spawn = |name: &str, dir: &tempfile::TempDir| {
        kiln.cmd()
            .args([
                "build",
                name,
                "--path",
                dir.path().to_str().unwrap(),
                "--run-image",
                &base,
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn("one", &first);
    let b = spawn("two", &second);
    for child in [a, b] {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(kiln.store_tags(), ["one:latest", "two:latest"]);
    validate_layout(&kiln.store());
}

#[test]
fn killed_build_leaves_the_store_valid_and_the_next_build_succeeds() {
    let kiln = Kiln::new();
    let base = tempfile::tempdir().unwrap();
    let base = base_ref(&base);
    let source = app(&[("Procfile", "web: echo big\n")]);
    // Enough incompressible data that export takes a while.
    std::fs::write(source.path().join("blob.bin"), support::noise(7, 48 << 20)).unwrap();
    kiln.ok(&[
        "build",
        "small",
        "--path",
        hello_app().path().to_str().unwrap(),
        "--run-image",
        &base,
    ]);
    let mut child = kiln
        .cmd()
        .args([
            "build",
            "big",
            "--path",
            source.path().to_str().unwrap(),
            "--run-image",
            &base,
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it while a layer blob is being written (a temp blob exists in the store).
    let blobs = kiln.store().join("blobs/sha256");
    let writing = || {
        std::fs::read_dir(&blobs)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|entry| entry.file_name().to_string_lossy().starts_with(".tmp-"))
            })
            .unwrap_or(false)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !writing() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(writing(), "the build never started exporting");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        kiln.store_tags(),
        ["small:latest"],
        "no half-written image is tagged"
    );
    validate_layout(&kiln.store());
    kiln.ok(&[
        "build",
        "big",
        "--path",
        source.path().to_str().unwrap(),
        "--run-image",
        &base,
    ]);
    validate_layout(&kiln.store());
    kiln.ok(&["cache", "prune"]);
    validate_layout(&kiln.store());
}

fn expect_user_error(kiln: &Kiln, args: &[&str], needle: &str) {
    let output = kiln.run(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "exit 1 expected for {args:?}:\n{stderr}"
    );
    assert!(stderr.contains(needle), "expected `{needle}` in:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        kiln.store_tags().iter().all(|tag| !tag.starts_with("bad")),
        "no image written for {args:?}"
    );
}

#[test]
fn bad_input_is_a_clear_error_with_exit_1_and_no_image() {
    let kiln = Kiln::new();
    let base_dir = tempfile::tempdir().unwrap();
    let base = base_ref(&base_dir);
    let good = hello_app();
    let good_path = good.path().to_str().unwrap();

    expect_user_error(
        &kiln,
        &[
            "build",
            "bad",
            "--path",
            "/nonexistent/app",
            "--run-image",
            &base,
        ],
        "does not exist",
    );
    let empty = app(&[("README.md", "nothing to build\n")]);
    expect_user_error(
        &kiln,
        &[
            "build",
            "bad",
            "--path",
            empty.path().to_str().unwrap(),
            "--run-image",
            &base,
        ],
        "no buildpack detected",
    );
    expect_user_error(
        &kiln,
        &[
            "build",
            "bad",
            "--path",
            good_path,
            "--run-image",
            "oci:/nonexistent/base",
        ],
        "not an OCI image layout",
    );

    let escaping = hello_app();
    std::os::unix::fs::symlink("/etc/passwd", escaping.path().join("passwd")).unwrap();
    expect_user_error(
        &kiln,
        &[
            "build",
            "bad",
            "--path",
            escaping.path().to_str().unwrap(),
            "--run-image",
            &base,
        ],
        "outside the app directory",
    );

    let ambiguous = app(&[("Procfile", "api: echo a\nworker: echo b\n")]);
    expect_user_error(
        &kiln,
        &[
            "build",
            "bad",
            "--path",
            ambiguous.path().to_str().unwrap(),
            "--run-image",
            &base,
        ],
        "none is `web`",
    );
    kiln.ok(&[
        "build",
        "picked",
        "--path",
        ambiguous.path().to_str().unwrap(),
        "--run-image",
        &base,
        "--default-process",
        "worker",
    ]);

    let malformed = app(&[("Procfile", "this is not a procfile\n")]);
    expect_user_error(
        &kiln,
        &[
            "build",
            "bad",
            "--path",
            malformed.path().to_str().unwrap(),
            "--run-image",
            &base,
        ],
        "Procfile line 1",
    );

    // A corrupted blob in the base layout is caught, naming the corruption.
    let corrupt_dir = tempfile::tempdir().unwrap();
    busybox_base(corrupt_dir.path(), "corrupt");
    let image = read_image(corrupt_dir.path(), "latest");
    let layer = image.layers("test").unwrap()[0].digest.clone();
    let blob = corrupt_dir.path().join("blobs/sha256").join(layer.hex());
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    expect_user_error(
        &kiln,
        &[
            "build",
            "bad",
            "--path",
            good_path,
            "--run-image",
            &format!("oci:{}:latest", corrupt_dir.path().display()),
        ],
        "corrupt",
    );
}

#[test]
fn usage_errors_exit_2() {
    let kiln = Kiln::new();
    assert_eq!(kiln.run(&["build"]).status.code(), Some(2));
    assert_eq!(kiln.run(&["no-such-command"]).status.code(), Some(2));
}

#[test]
fn project_toml_excludes_files_and_git_is_never_in_the_image() {
    let kiln = Kiln::new();
    let base = tempfile::tempdir().unwrap();
    let base = base_ref(&base);
    let source = app(&[
        ("Procfile", "web: echo hi\n"),
        ("keep.txt", "keep"),
        ("debug.log", "secret log"),
        (".git/HEAD", "ref: refs/heads/main"),
        ("project.toml", "[io.buildpacks]\nexclude = [\"*.log\"]\n"),
    ]);
    kiln.ok(&[
        "build",
        "filtered",
        "--path",
        source.path().to_str().unwrap(),
        "--run-image",
        &base,
    ]);
    let image = read_image(&kiln.store(), "filtered:latest");
    let app_layer = &image.layers("test").unwrap()[1];
    let paths: Vec<String> = support::layer_entries(&kiln, app_layer)
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    assert!(
        paths.contains(&"workspace/keep.txt".to_owned()),
        "{paths:?}"
    );
    assert!(
        !paths
            .iter()
            .any(|path| path.contains(".git") || path.ends_with(".log")),
        "{paths:?}"
    );
}
