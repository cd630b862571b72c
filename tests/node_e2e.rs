//! End to end on the default Debian stack: Node apps built by `kiln build`, served over HTTP
//! by `kiln run`, with the build report proving which layers a change rebuilds.

mod node_support;
mod support;

use std::path::Path;
use std::time::Duration;

use node_support::{Served, copy_of, fixture, sample};
use serde_json::Value;
use support::{Kiln, free_port, layer_entries, read_image, validate_layout};

/// The first start of an image unpacks its root filesystem; later ones are quicker.
const FIRST_ANSWER: Duration = Duration::from_secs(60);

fn build(kiln: &Kiln, name: &str, app: &Path) -> Value {
    let report = tempfile::NamedTempFile::new().unwrap();
    kiln.ok(&[
        "build",
        name,
        "--path",
        app.to_str().unwrap(),
        "--report",
        report.path().to_str().unwrap(),
    ]);
    serde_json::from_slice(&std::fs::read(report.path()).unwrap()).unwrap()
}

fn layer<'a>(report: &'a Value, buildpack: &str, name: &str) -> &'a Value {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|layer| layer["buildpack"] == buildpack && layer["name"] == name)
        .unwrap_or_else(|| panic!("no layer {buildpack}/{name} in {report:#}"))
}

fn serve(kiln: &Kiln, image: &str) -> String {
    let port = free_port();
    let mut served = Served::start(kiln.cmd(), image, port);
    served.body(port, FIRST_ANSWER)
}

/// Paths in the app layer of the image tagged `name`.
fn app_layer_paths(kiln: &Kiln, name: &str) -> Vec<String> {
    let image = read_image(&kiln.store(), &format!("{name}:latest"));
    let lifecycle: Value = serde_json::from_str(
        image
            .config
            .config()
            .as_ref()
            .unwrap()
            .labels()
            .as_ref()
            .unwrap()["io.buildpacks.lifecycle.metadata"]
            .as_str(),
    )
    .unwrap();
    let app_diff_id = lifecycle["app"][0]["sha"].as_str().unwrap().to_owned();
    let layers = image.layers("test").unwrap();
    let index = image
        .diff_ids()
        .iter()
        .position(|diff_id| *diff_id == app_diff_id)
        .unwrap();
    layer_entries(kiln, &layers[index])
        .into_iter()
        .map(|(path, _)| path)
        .collect()
}

#[test]
fn sample_serves_and_rebuilds_only_what_changed() {
    let kiln = Kiln::new();
    let app = copy_of(&sample());
    let first = build(&kiln, "express", app.path());
    assert_eq!(first["buildpacks"], serde_json::json!(["kiln/node"]));
    let body = serve(&kiln, "express");
    assert!(body.starts_with("Hello from kiln on Node v18."), "{body}");
    validate_layout(&kiln.store());

    let image = read_image(&kiln.store(), "express:latest");
    let env = image
        .config
        .config()
        .as_ref()
        .unwrap()
        .env()
        .clone()
        .unwrap();
    assert!(env.contains(&"NODE_ENV=production".to_owned()), "{env:?}");
    assert!(
        env.iter().any(|pair| pair.starts_with("PATH=")
            && pair.contains("/layers/kiln_node/modules/node_modules/.bin")),
        "{env:?}"
    );
    let paths = app_layer_paths(&kiln, "express");
    assert!(
        paths.contains(&"workspace/node_modules".to_owned()),
        "{paths:?}"
    );
    assert!(
        !paths
            .iter()
            .any(|path| path.starts_with("workspace/node_modules/")),
        "dependencies live in their layer only"
    );

    // The same source built afresh gives the same layers: npm's output is reproducible.
    let again = build(&kiln, "express-again", app.path());
    assert_eq!(
        read_image(&kiln.store(), "express-again:latest").diff_ids(),
        image.diff_ids(),
        "{again:#}"
    );

    // A source change rebuilds only the app layer.
    let server = app.path().join("server.js");
    std::fs::write(
        &server,
        std::fs::read_to_string(&server)
            .unwrap()
            .replace("Hello from kiln", "Hi from kiln"),
    )
    .unwrap();
    let code_change = build(&kiln, "express", app.path());
    for (buildpack, name) in [("kiln/node", "nodejs"), ("kiln/node", "modules")] {
        let layer = layer(&code_change, buildpack, name);
        assert_eq!(
            (&layer["reused"], &layer["compressed"]),
            (&Value::Bool(true), &Value::Bool(false)),
            "{layer:#}"
        );
        assert_eq!(
            layer["diff_id"],
            self::layer(&first, buildpack, name)["diff_id"]
        );
    }
    assert_eq!(layer(&code_change, "app", "app")["compressed"], true);
    assert_ne!(
        layer(&code_change, "app", "app")["diff_id"],
        layer(&first, "app", "app")["diff_id"]
    );
    assert!(serve(&kiln, "express").starts_with("Hi from kiln on Node v18."));

    // A lockfile change rebuilds the dependency layer (and the app layer, which holds the
    // lockfile); the runtime stays.
    let lockfile = app.path().join("package-lock.json");
    let mut text = std::fs::read_to_string(&lockfile).unwrap();
    text.push('\n');
    std::fs::write(&lockfile, text).unwrap();
    let dependency_change = build(&kiln, "express", app.path());
    let modules = layer(&dependency_change, "kiln/node", "modules");
    assert_eq!(modules["reused"], false);
    assert_eq!(modules["reasons"], serde_json::json!(["lockfile changed"]));
    assert_eq!(
        layer(&dependency_change, "kiln/node", "nodejs")["reused"],
        true
    );
    assert_eq!(layer(&dependency_change, "app", "app")["compressed"], true);
    assert_eq!(
        layer(&dependency_change, "process-types", "process-types")["diff_id"],
        layer(&first, "process-types", "process-types")["diff_id"]
    );
    assert!(serve(&kiln, "express").starts_with("Hi from kiln on Node v18."));
}

#[test]
fn fixtures_build_and_serve() {
    let kiln = Kiln::new();
    for (name, expected) in [
        ("node_lockfile_missing", "no lockfile, ms says 1m"),
        ("node_lockfile_v1", "lockfile v1, ms says 1m"),
        (
            "node_workspaces",
            "hello from the greeting workspace with ms 2.1.3 (1m); the root has ms 2.0.0",
        ),
        ("node_yarn_v1", "installed by yarn, ms says 1m"),
        ("node_pnpm", "installed by pnpm, ms says 1m"),
        (
            "node_build_script",
            "built by the build script, which knew ms(60000) = 1m; devDependencies in the image: false",
        ),
        ("node_start_shell", "hello from a shell start script"),
        ("node_main_only", "started from package.json main"),
        ("node_server_js_only", "started from server.js"),
    ] {
        let image = name.replace('_', "-");
        build(&kiln, &image, &fixture(name));
        assert_eq!(serve(&kiln, &image), format!("{expected}\n"), "{name}");
    }
    validate_layout(&kiln.store());
}

fn expect_build_error(kiln: &Kiln, name: &str, needles: &[&str]) {
    let output = kiln.run(&["build", "bad", "--path", fixture(name).to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{name}: exit 1 expected:\n{stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{name}: expected `{needle}` in:\n{stderr}"
        );
    }
    assert!(stderr.contains("hint: "), "{stderr}");
    assert!(!kiln.store_tags().iter().any(|tag| tag.starts_with("bad")));
}

#[test]
fn bad_apps_fail_clearly_with_exit_1() {
    let kiln = Kiln::new();
    expect_build_error(
        &kiln,
        "node_package_json_invalid",
        &["package.json is not valid JSON", "line 4 column 1"],
    );
    expect_build_error(
        &kiln,
        "node_lockfile_out_of_sync",
        &["out of sync", "ms@^2.1.3", "npm install"],
    );
    expect_build_error(
        &kiln,
        "node_engines_unsatisfiable",
        &["asks for Node `>=22`", "the stack offers Node 18."],
    );
}
