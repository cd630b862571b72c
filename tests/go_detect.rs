//! `kiln detect --json` on the Go fixtures: the Go buildpack's verdict and plan, and the
//! buildpacks chosen. Only the Go verdict is kept so other languages' groups do not churn
//! these snapshots.

mod go_support;
mod support;

use go_support::fixture;
use support::Kiln;

fn detect(name: &str, env: &[&str]) -> serde_json::Value {
    let kiln = Kiln::new();
    let path = fixture(name);
    let mut args = vec!["detect", "--json", "--path", path.to_str().unwrap()];
    for entry in env {
        args.extend(["--env", entry]);
    }
    // Detection must not need a toolchain: no Go on PATH here.
    let empty = tempfile::tempdir().unwrap();
    let output = kiln
        .cmd()
        .env("PATH", empty.path())
        .args(&args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{name}: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let go_verdicts: Vec<&serde_json::Value> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["verdicts"].as_array().unwrap())
        .filter(|verdict| verdict["id"] == "kiln/go")
        .collect();
    assert_eq!(go_verdicts.len(), 1, "kiln/go is in one group: {report}");
    serde_json::json!({
        "go": go_verdicts[0],
        "buildpacks": report["buildpacks"],
    })
}

macro_rules! detect_snapshot {
    ($test:ident, $fixture:literal $(, $env:literal)*) => {
        #[test]
        fn $test() {
            insta::assert_json_snapshot!(detect($fixture, &[$($env),*]), { ".go.version" => "[version]" });
        }
    };
}

detect_snapshot!(main_in_root, "go_main_in_root");
detect_snapshot!(main_in_cmd, "go_main_in_cmd");
detect_snapshot!(two_mains, "go_two_mains");
detect_snapshot!(
    two_mains_with_bp_go_targets,
    "go_two_mains",
    "BP_GO_TARGETS=./cmd/a"
);
detect_snapshot!(vendored, "go_vendored");
detect_snapshot!(unreachable_requirement, "go_unreachable_requirement");
detect_snapshot!(directive_too_new, "go_directive_too_new");
detect_snapshot!(no_go_line, "go_no_go_line");
detect_snapshot!(not_go, "go_not_a_module");
detect_snapshot!(procfile_names_binary, "go_procfile_names_binary");
