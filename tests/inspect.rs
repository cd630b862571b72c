//! `kiln inspect --json` for a kiln image, a rebased image and a plain image made by umoci.

mod support;

use std::process::Command;

use support::{Kiln, app, busybox_base, require_tool, run_ok};

fn inspect(kiln: &Kiln, image: &str) -> serde_json::Value {
    let mut value: serde_json::Value =
        serde_json::from_str(&kiln.ok(&["inspect", image, "--json"])).unwrap();
    // The reason ends with the base's (temp) path in parentheses.
    if let Some(reason) = value["rebasable"]["reason"].as_str() {
        let kept = reason.split(" (").next().unwrap_or_default().to_owned();
        value["rebasable"]["reason"] = kept.into();
    }
    value
}

/// Paths of temp dirs and digests of test-made files vary between machines; the structure,
/// origins and reasons are what the snapshots pin.
macro_rules! snapshot {
    ($name:literal, $value:expr) => {
        insta::assert_json_snapshot!($name, $value, {
            ".image" => "[image]",
            ".digest" => "[digest]",
            ".base.name" => "[base]",
            ".base.reference" => "[base-reference]",
            ".base.top_layer" => "[top-layer]",
            ".layers[].digest" => "[digest]",
            ".layers[].diff_id" => "[diff-id]",
            ".layers[].size" => "[size]",
            ".created" => "[created]"
        });
    };
}

#[test]
fn inspect_kiln_rebased_and_plain_images() {
    require_tool("umoci");
    let kiln = Kiln::new();
    let base_dir = tempfile::tempdir().unwrap();
    let base = format!(
        "oci:{}:latest",
        busybox_base(base_dir.path(), "v1").display()
    );
    let source = app(&[("Procfile", "web: echo hi\nworker: ./work.sh --fast\n")]);
    kiln.ok(&[
        "build",
        "hello",
        "--path",
        source.path().to_str().unwrap(),
        "--run-image",
        &base,
    ]);

    let built = inspect(&kiln, "hello");
    assert_eq!(
        built["base"]["top_layer"], built["layers"][0]["diff_id"],
        "the base ends at its top layer"
    );
    assert_eq!(built["base"]["name"], base.as_str());
    snapshot!("inspect_kiln_image", &built);

    busybox_base(base_dir.path(), "v2");
    kiln.ok(&["rebase", "hello"]);
    let rebased = inspect(&kiln, "hello");
    assert_ne!(rebased["base"]["top_layer"], built["base"]["top_layer"]);
    assert_eq!(
        rebased["base"]["top_layer"],
        rebased["layers"][0]["diff_id"]
    );
    assert_eq!(
        rebased["layers"][1]["digest"], built["layers"][1]["digest"],
        "app layer kept"
    );
    snapshot!("inspect_rebased_image", &rebased);

    let plain = tempfile::tempdir().unwrap();
    let layout = plain.path().join("layout");
    let file = plain.path().join("hello.txt");
    std::fs::write(&file, "hello\n").unwrap();
    let image = format!("{}:plain", layout.display());
    run_ok(Command::new("umoci").args(["init", "--layout", layout.to_str().unwrap()]));
    run_ok(Command::new("umoci").args(["new", "--image", &image]));
    run_ok(Command::new("umoci").args([
        "insert",
        "--rootless",
        "--image",
        &image,
        file.to_str().unwrap(),
        "/hello.txt",
    ]));
    let plain_json = inspect(&kiln, &format!("oci:{image}"));
    assert_eq!(plain_json["cnb_image"], false);
    snapshot!("inspect_plain_image", &plain_json);
}
