//! `kiln detect --json` for Java fixtures, snapshotted: the Java buildpack's verdict with
//! its plan, and the buildpacks chosen. Other groups' verdicts are left out so adding a
//! language elsewhere does not churn these snapshots.

mod support;

use std::path::Path;

use support::Kiln;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn java_detection(path: &Path, extra: &[&str]) -> serde_json::Value {
    let kiln = Kiln::new();
    let mut args = vec!["detect", "--json", "--path", path.to_str().unwrap()];
    args.extend(extra);
    let report: serde_json::Value = serde_json::from_str(&kiln.ok(&args)).unwrap();
    let verdict = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["verdicts"].as_array().unwrap())
        .find(|verdict| verdict["id"] == "kiln/java")
        .cloned()
        .expect("the Java buildpack is in the default order");
    serde_json::json!({ "java": verdict, "chosen": report["buildpacks"] })
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(ROOT).join("tests/fixtures").join(name)
}

#[test]
fn sample() {
    insta::assert_json_snapshot!(java_detection(
        &Path::new(ROOT).join("samples/java-maven"),
        &[]
    ));
}

#[test]
fn runtime_dependency() {
    insta::assert_json_snapshot!(java_detection(&fixture("java_runtime_dependency"), &[]));
}

#[test]
fn newer_java() {
    insta::assert_json_snapshot!(java_detection(&fixture("java_newer_java"), &[]));
}

#[test]
fn version_file_too_new() {
    insta::assert_json_snapshot!(java_detection(&fixture("java_version_file_too_new"), &[]));
}

#[test]
fn malformed_pom() {
    insta::assert_json_snapshot!(java_detection(&fixture("java_malformed_pom"), &[]));
}

#[test]
fn multi_module() {
    insta::assert_json_snapshot!(java_detection(&fixture("java_multi_module"), &[]));
}

#[test]
fn multi_module_no_main() {
    insta::assert_json_snapshot!(java_detection(&fixture("java_multi_module_no_main"), &[]));
}

#[test]
fn multi_module_choice() {
    insta::assert_json_snapshot!(java_detection(
        &fixture("java_multi_module_no_main"),
        &["--env", "BP_MAVEN_BUILT_MODULE=util"]
    ));
}

#[test]
fn a_procfile_app_without_pom_is_not_java() {
    let app = support::app(&[("Procfile", "web: ./run\n")]);
    let detection = java_detection(app.path(), &[]);
    assert_eq!(detection["java"]["detection"]["result"], "fail");
    assert_eq!(detection["java"]["detection"]["reason"], "no pom.xml");
    assert_eq!(detection["chosen"], serde_json::json!(["kiln/procfile"]));
}
