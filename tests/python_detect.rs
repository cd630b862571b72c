//! `kiln detect --json` on one tiny fixture per behaviour of the Python buildpack, snapshotted.
//! Only the Python group and the chosen buildpacks are snapshotted, so other languages joining
//! the builder's order do not rewrite these snapshots.

mod support;

use std::path::PathBuf;

use serde_json::{Value, json};
use support::Kiln;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `kiln detect --json` on a fixture: exit code and the parsed report.
fn detect(kiln: &Kiln, name: &str) -> (i32, Value) {
    let path = fixture(name);
    let output = kiln.run(&["detect", "--json", "--path", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!(
            "{name}: not JSON ({error}):\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), report)
}

/// The part of a report that belongs to the Python buildpack: the group it leads and what
/// was chosen.
fn python_view(exit: i32, report: &Value) -> Value {
    let group = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|group| group["verdicts"][0]["id"] == "kiln/python")
        .expect("the default order has a group led by kiln/python");
    json!({ "exit": exit, "chosen": report["buildpacks"], "python_group": group })
}

fn snapshot(name: &str) -> Value {
    let kiln = Kiln::new();
    let (exit, report) = detect(&kiln, name);
    let view = python_view(exit, &report);
    insta::assert_json_snapshot!(name, view, {".python_group.verdicts[].version" => "[version]"});
    view
}

#[test]
fn requirements_txt_is_detected_and_runs_main_py() {
    let view = snapshot("python_requirements_txt");
    assert_eq!(view["chosen"], json!(["kiln/python"]));
}

#[test]
fn pyproject_dependencies_are_detected() {
    let view = snapshot("python_pyproject");
    assert_eq!(view["chosen"], json!(["kiln/python"]));
}

#[test]
fn procfile_only_is_not_python() {
    let view = snapshot("python_procfile_only");
    assert_eq!(view["chosen"], json!(["kiln/procfile"]));
    assert_eq!(view["python_group"]["passed"], false);
}

#[test]
fn flask_without_gunicorn_adds_gunicorn() {
    let view = snapshot("python_flask_no_gunicorn");
    let plan = &view["python_group"]["verdicts"][0]["detection"]["plan"];
    assert_eq!(plan[1]["metadata"]["adds"], "gunicorn");
    assert_eq!(
        plan[2]["metadata"]["command"],
        "python3 -m gunicorn --bind 0.0.0.0:$PORT app:app"
    );
}

#[test]
fn fastapi_without_procfile_runs_uvicorn() {
    let view = snapshot("python_fastapi_no_procfile");
    let plan = &view["python_group"]["verdicts"][0]["detection"]["plan"];
    assert_eq!(plan[1]["metadata"]["adds"], "uvicorn");
    assert_eq!(
        plan[2]["metadata"]["command"],
        "python3 -m uvicorn main:app --host 0.0.0.0 --port $PORT"
    );
}

#[test]
fn django_runs_its_wsgi_module() {
    let view = snapshot("python_django");
    let plan = &view["python_group"]["verdicts"][0]["detection"]["plan"];
    assert_eq!(
        plan[2]["metadata"]["command"],
        "python3 -m gunicorn --bind 0.0.0.0:$PORT mysite.wsgi:application"
    );
}

#[test]
fn nothing_detected_exits_1_with_reasons() {
    let view = snapshot("python_nothing");
    assert_eq!(view["exit"], 1);
    assert_eq!(view["chosen"], json!([]));
}

#[test]
fn unsatisfiable_version_is_detected_with_its_request() {
    // Detection cannot know what the stack offers; the plan shows the request and the build
    // refuses it (see python_build.rs).
    let view = snapshot("python_version_unsatisfiable");
    assert_eq!(
        view["python_group"]["verdicts"][0]["detection"]["plan"][0]["metadata"]["version"],
        "3.99"
    );
}

#[test]
fn missing_requirement_is_detected_and_fails_at_build() {
    let view = snapshot("python_requirement_missing");
    assert_eq!(view["chosen"], json!(["kiln/python"]));
}

#[test]
fn python_and_node_at_once_resolve_by_order() {
    let kiln = Kiln::new();
    let (exit, report) = detect(&kiln, "python_and_node");
    assert_eq!(exit, 0);
    // The Python group comes first in the builder's order, so it wins.
    assert_eq!(report["buildpacks"], json!(["kiln/python"]));
    assert_eq!(report["chosen"], 0);
    let node_passed =
        report["groups"].as_array().unwrap().iter().any(|group| {
            group["verdicts"].as_array().unwrap().iter().any(|verdict| {
                verdict["id"] == "kiln/node" && verdict["detection"]["result"] == "pass"
            })
        });
    // Once the Node buildpack is in the order, the report names it as the other match.
    let expected_also = if node_passed {
        json!(["kiln/node"])
    } else {
        json!([])
    };
    assert_eq!(report["also_matched"], expected_also);
    // Forcing the other language is possible; forcing Python alone gives the same choice.
    let path = fixture("python_and_node");
    let forced = kiln.ok(&[
        "detect",
        "--json",
        "--buildpack",
        "kiln/python",
        "--path",
        path.to_str().unwrap(),
    ]);
    let forced: Value = serde_json::from_str(&forced).unwrap();
    assert_eq!(forced["buildpacks"], json!(["kiln/python"]));
}

#[test]
fn invalid_version_file_is_a_clear_error_with_exit_1() {
    let kiln = Kiln::new();
    let path = fixture("python_version_file_invalid");
    let output = kiln.run(&["detect", "--path", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(".python-version line 1: `banana` is not a Python version"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: write the wanted minor version alone in .python-version"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn text_output_gives_the_reason() {
    let kiln = Kiln::new();
    let path = fixture("python_flask_no_gunicorn");
    let text = kiln.ok(&["detect", "--path", path.to_str().unwrap()]);
    assert!(text.contains("pass  kiln/python@"), "{text}");
    assert!(text.contains("found requirements.txt"), "{text}");
    assert!(text.contains("chosen: group 1 (kiln/python)"), "{text}");
}
