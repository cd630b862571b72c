//! The core rebase claim on real Debian bases: an app built on base v1 and rebased onto v2
//! (one more package) equals a fresh build of the same source on v2.

mod support;

use std::path::Path;
use std::process::Command;

use support::app;

/// Debian downloads are shared with the other stack tests.
fn kiln(args: &[&str]) -> String {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stack-kiln-home");
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .env("KILN_HOME", home)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kiln {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn inspect(image: &str) -> serde_json::Value {
    serde_json::from_str(&kiln(&["inspect", image, "--json"])).unwrap()
}

#[test]
fn rebase_onto_a_patched_debian_base_equals_a_fresh_build() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = format!("oci:{}:v1", dir.path().join("bases").display());
    let v2 = format!("oci:{}:v2", dir.path().join("bases").display());
    kiln(&["base", "build", "--output", &v1]);

    // Base v2: the same stack with one more package, pinned by its own lock.
    let builder = dir.path().join("builder-v2.toml");
    let text = kiln::pipeline::builder::DEFAULT_BUILDER_TOML
        .replace("\"coreutils\",", "\"coreutils\",\n  \"less\",");
    assert!(text.contains("\"less\""), "the test builder adds a package");
    std::fs::write(&builder, text).unwrap();
    let lock = dir.path().join("v2.lock.toml");
    kiln(&[
        "base",
        "build",
        "--builder",
        builder.to_str().unwrap(),
        "--lock",
        lock.to_str().unwrap(),
        "--tag",
        "test/base-v2:latest",
        "--output",
        &v2,
    ]);
    let (base_v1, base_v2) = (inspect(&v1), inspect(&v2));
    let count = |value: &serde_json::Value| value["os_packages"].as_u64().unwrap();
    assert!(count(&base_v2) > count(&base_v1), "v2 has more packages");

    let source = app(&[("Procfile", "web: ls /usr/bin/less /usr/bin/env\n")]);
    let path = source.path().to_str().unwrap();
    let on_v1 = kiln(&["build", "debian-app", "--path", path, "--run-image", &v1]);
    let rebased = kiln(&["rebase", "debian-app", "--run-image", &v2]);
    assert_ne!(on_v1, rebased);
    let fresh = kiln(&[
        "build",
        "debian-app-fresh",
        "--path",
        path,
        "--run-image",
        &v2,
    ]);
    assert_eq!(
        rebased, fresh,
        "rebase onto v2 must equal a fresh build on v2"
    );

    let image = inspect("debian-app");
    assert_eq!(image["os_packages"], base_v2["os_packages"]);
    assert_eq!(image["base"]["top_layer"], base_v2["layers"][0]["diff_id"]);
    let listing = kiln(&["run", "debian-app"]);
    assert!(
        listing.contains("/usr/bin/less"),
        "the rebased image has v2's files: {listing}"
    );
}
