//! `kiln base build` end to end: the same digest twice, a valid OCI image (read by umoci
//! when installed), no network needed once the lock and downloads exist, and a clear
//! one-line error with exit code 1 when the mirror is unreachable.

#[path = "support/registry.rs"]
mod registry_support;

use std::path::Path;
use std::process::{Command, Output};

use registry_support::{Flavor, TestRegistry, run_ok};

fn kiln(args: &[&str], mirror: Option<&str>) -> Output {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stack-kiln-home");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
    command
        .args(args)
        .env("KILN_HOME", home)
        .env_remove("SOURCE_DATE_EPOCH");
    match mirror {
        Some(uri) => command.env("KILN_DEBIAN_MIRROR", uri),
        None => command.env_remove("KILN_DEBIAN_MIRROR"),
    };
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "kiln failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn closed_port_uri() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!(
        "http://127.0.0.1:{}/debian",
        listener.local_addr().unwrap().port()
    )
}

#[test]
fn base_build_is_reproducible_valid_and_offline_once_locked() {
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    let target = format!("oci:{}:base", layout.display());
    let first = stdout(&kiln(&["base", "build", "--output", &target], None));
    let second = stdout(&kiln(&["base", "build", "--output", &target], None));
    assert!(first.starts_with("sha256:"), "{first}");
    assert_eq!(first, second);

    // Pinned and downloaded: an unreachable mirror does not matter any more.
    let offline = stdout(&kiln(
        &["base", "build", "--frozen"],
        Some(&closed_port_uri()),
    ));
    assert_eq!(offline, first);

    // The config: non-root user, PATH, base labels.
    let manifest_path = layout
        .join("blobs/sha256")
        .join(first.trim_start_matches("sha256:"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest_path).unwrap()).unwrap();
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(config_digest)).unwrap(),
    )
    .unwrap();
    assert_eq!(config["config"]["User"], "1000:1000");
    assert_eq!(
        config["config"]["Labels"]["io.buildpacks.base.distro.name"],
        "debian"
    );
    assert_eq!(
        config["config"]["Labels"]["io.buildpacks.base.distro.version"],
        "12"
    );
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);

    // An independent reader unpacks it.
    let bundle = out.path().join("bundle");
    if let Ok(status) = Command::new("umoci")
        .args(["unpack", "--image", &format!("{}:base", layout.display())])
        .arg(&bundle)
        .status()
    {
        assert!(status.success(), "umoci cannot unpack the base");
        let os_release = std::fs::read_to_string(bundle.join("rootfs/etc/os-release")).unwrap();
        assert!(os_release.contains("VERSION_ID=\"12\""));
        assert!(bundle.join("rootfs/bin/sh").exists());
    }
}

#[test]
fn unreachable_mirror_exits_1_with_a_hint() {
    let output = kiln(
        &[
            "base",
            "build",
            "--update",
            "--tag",
            "kiln-test/unreachable",
        ],
        Some(&closed_port_uri()),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first_line = stderr
        .lines()
        .find(|line| line.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        first_line.starts_with("error: cannot download http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("\nhint: "), "{stderr}");
}

#[test]
fn base_can_be_published_and_apps_build_on_it() {
    let registry = TestRegistry::start(Flavor::Plain);
    let reference = format!("{}/bases/bookworm:1", registry.addr);
    let digest = stdout(&kiln(
        &[
            "base",
            "build",
            "--publish",
            &reference,
            "--insecure-registry",
            &registry.addr,
        ],
        None,
    ));
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]));
    assert_eq!(kiln::oci::Digest::of_bytes(&raw).to_string(), digest);

    // The stored base is a run image `kiln build` accepts (it has /bin/sh for Procfile commands).
    let app = tempfile::tempdir().unwrap();
    std::fs::write(
        app.path().join("Procfile"),
        "web: echo hello from the Debian base\n",
    )
    .unwrap();
    let built = stdout(&kiln(
        &[
            "build",
            "kiln-test/stack-hello",
            "--path",
            app.path().to_str().unwrap(),
            "--run-image",
            "kiln/base-bookworm:latest",
        ],
        None,
    ));
    assert!(built.starts_with("sha256:"), "{built}");
}
