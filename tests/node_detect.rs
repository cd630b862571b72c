//! `kiln detect --json` on each Node fixture: which group wins and the plan the Node buildpack
//! prints (package manager, lockfile, requested Node, start command), as snapshots.

mod node_support;
mod support;

use node_support::fixture;
use support::Kiln;

/// The chosen buildpacks and the Node buildpack's verdict in the chosen group: other
/// languages' groups are left out so their changes do not churn these snapshots.
fn detect_json(path: &std::path::Path) -> serde_json::Value {
    let kiln = Kiln::new();
    let stdout = kiln.ok(&["detect", "--json", "--path", path.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let chosen = report["chosen"].as_u64().expect("a group was chosen") as usize;
    let node = report["groups"][chosen]["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|verdict| verdict["id"] == "kiln/node")
        .cloned()
        .expect("kiln/node is in the chosen group");
    serde_json::json!({ "buildpacks": report["buildpacks"], "node": node })
}

macro_rules! detect_snapshot {
    ($($test:ident => $fixture:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                let report = detect_json(&fixture($fixture));
                assert_eq!(report["buildpacks"][0], "kiln/node", "{report:#}");
                insta::assert_json_snapshot!($fixture, report);
            }
        )*
    };
}

detect_snapshot!(
    lockfile_missing => "node_lockfile_missing",
    lockfile_v1 => "node_lockfile_v1",
    workspaces => "node_workspaces",
    yarn_v1 => "node_yarn_v1",
    pnpm => "node_pnpm",
    build_script => "node_build_script",
    start_shell => "node_start_shell",
    main_only => "node_main_only",
    server_js_only => "node_server_js_only",
    lockfile_out_of_sync => "node_lockfile_out_of_sync",
    engines_unsatisfiable => "node_engines_unsatisfiable",
);

#[test]
fn sample_detects_as_node() {
    let report = detect_json(&node_support::sample());
    insta::assert_json_snapshot!("nodejs_express_sample", report);
}

#[test]
fn invalid_package_json_is_a_clear_error_with_exit_1() {
    let kiln = Kiln::new();
    let path = fixture("node_package_json_invalid");
    let output = kiln.run(&["detect", "--path", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    insta::assert_snapshot!("node_package_json_invalid", stderr);
}
