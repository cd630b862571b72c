//! The Java buildpack's Jib-like layers, proved with real Maven against a company-style
//! mirror (Debian's Maven repository over HTTP on 127.0.0.1): runtime dependency jars in
//! their own cached layer, the app's jar alone in `/workspace`, and reuse read from the
//! build report.

mod support;

use std::path::Path;

use support::maven::{JavaBuilds, copy_tree, layer_files, report_layer};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/java-maven");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn copy_of(from: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(Path::new(from), dir.path());
    dir
}

fn entrypoint(builds: &JavaBuilds, tag: &str) -> Vec<String> {
    let image = support::read_image(&builds.kiln.store(), tag);
    image
        .config
        .config()
        .as_ref()
        .and_then(|config| config.entrypoint().clone())
        .unwrap_or_default()
}

#[test]
fn code_changes_rebuild_only_the_app_layer_and_dependency_changes_the_dependency_layer() {
    let builds = JavaBuilds::new();
    let app = copy_of(SAMPLE);

    let cold = builds.build_ok("sample", app.path());
    let dependencies = report_layer(&cold, "kiln/java", "dependencies");
    assert_eq!(dependencies["reused"], false);
    assert_eq!(
        layer_files(
            &builds.kiln,
            "sample:latest",
            dependencies["diff_id"].as_str().unwrap()
        ),
        ["layers/kiln_java/dependencies/org.apache.commons.commons-lang3-3.12.0.jar"],
        "junit (test scope) stays out of the image"
    );
    let app_layer = report_layer(&cold, "app", "app");
    assert_eq!(
        layer_files(
            &builds.kiln,
            "sample:latest",
            app_layer["diff_id"].as_str().unwrap()
        ),
        ["workspace/java-maven-1.0.0.jar"],
        "the app layer holds the jar only: no sources, pom or target/"
    );
    assert_eq!(
        entrypoint(&builds, "sample:latest"),
        [
            "java",
            "-cp",
            "/workspace/java-maven-1.0.0.jar:/layers/kiln_java/dependencies/*",
            "dev.kiln.samples.App"
        ]
    );

    // Same source: Maven's output is reproducible, so nothing changes at all.
    let again = builds.build_ok("sample", app.path());
    assert_eq!(again["digest"], cold["digest"], "same source, same image");
    assert_eq!(report_layer(&again, "app", "app")["reused"], true);

    // A code change: only the app layer moves; the dependency layer is reused untouched.
    let source = app.path().join("src/main/java/dev/kiln/samples/App.java");
    let code = std::fs::read_to_string(&source)
        .unwrap()
        .replace("Hello from Java", "Greetings from Java");
    std::fs::write(&source, code).unwrap();
    let changed = builds.build_ok("sample", app.path());
    let dependencies_after = report_layer(&changed, "kiln/java", "dependencies");
    assert_eq!(dependencies_after["reused"], true, "{changed:#}");
    assert_eq!(
        dependencies_after["compressed"], false,
        "a reused layer is not even re-tarred"
    );
    assert_eq!(dependencies_after["digest"], dependencies["digest"]);
    let app_after = report_layer(&changed, "app", "app");
    assert_eq!(app_after["reused"], false);
    assert_ne!(app_after["diff_id"], app_layer["diff_id"]);

    // A dependency change: the dependency layer is rebuilt, saying why.
    let pom = app.path().join("pom.xml");
    let with_io = std::fs::read_to_string(&pom).unwrap().replace(
        "    <dependency>\n      <groupId>junit</groupId>",
        "    <dependency>\n      <groupId>commons-io</groupId>\n      <artifactId>commons-io</artifactId>\n      \
         <version>2.11.0</version>\n    </dependency>\n    <dependency>\n      <groupId>junit</groupId>",
    );
    std::fs::write(&pom, with_io).unwrap();
    let more = builds.build_ok("sample", app.path());
    let dependencies_more = report_layer(&more, "kiln/java", "dependencies");
    assert_eq!(dependencies_more["reused"], false);
    assert_ne!(dependencies_more["digest"], dependencies["digest"]);
    let reasons = dependencies_more["reasons"].to_string();
    assert!(reasons.contains("dependency_jars 1 → 2"), "{reasons}");
}

#[test]
fn runtime_scope_dependencies_ship_and_kiln_sets_the_compiler_release() {
    let builds = JavaBuilds::new();
    let app = copy_of(&format!("{FIXTURES}/java_runtime_dependency"));
    let report = builds.build_ok("runtime-dependency", app.path());
    let dependencies = report_layer(&report, "kiln/java", "dependencies");
    assert_eq!(
        layer_files(
            &builds.kiln,
            "runtime-dependency:latest",
            dependencies["diff_id"].as_str().unwrap()
        ),
        [
            "layers/kiln_java/dependencies/commons-io.commons-io-2.11.0.jar",
            "layers/kiln_java/dependencies/org.apache.commons.commons-lang3-3.12.0.jar",
        ]
    );
    // The POM sets no release: without kiln's -Dmaven.compiler.release the default
    // (Java 7 for Debian's compiler plugin) would not even compile `Runtime.version()`.
    let image = support::read_image(&builds.kiln.store(), "runtime-dependency:latest");
    let labels = image.labels();
    let metadata: serde_json::Value =
        serde_json::from_str(&labels["io.buildpacks.lifecycle.metadata"]).unwrap();
    let java = metadata["buildpacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|bp| bp["key"] == "kiln/java")
        .unwrap();
    assert_eq!(java["layers"]["dependencies"]["data"]["dependency_jars"], 2);
    assert!(
        java["layers"].get("maven-repository").is_none(),
        "the local repository is cache-only"
    );

    // Without a main class in the POM or manifest, a Procfile says how to start the app.
    let pom = app.path().join("pom.xml");
    let text = std::fs::read_to_string(&pom).unwrap();
    std::fs::write(&pom, text.replace("<mainClass>demo.Main</mainClass>", "")).unwrap();
    std::fs::write(
        app.path().join("Procfile"),
        "web: java -cp runtime-dependency-0.1.0.jar:/layers/kiln_java/dependencies/* demo.Main\n",
    )
    .unwrap();
    let report = builds.build_ok("runtime-dependency", app.path());
    assert_eq!(
        report["buildpacks"],
        serde_json::json!(["kiln/java", "kiln/procfile"])
    );
    assert_eq!(
        entrypoint(&builds, "runtime-dependency:latest"),
        [
            "/bin/sh",
            "-c",
            "java -cp runtime-dependency-0.1.0.jar:/layers/kiln_java/dependencies/* demo.Main"
        ],
        "the Procfile's command, run in /workspace where the jar is"
    );
}

#[test]
fn multi_module_builds_the_module_with_a_main_class() {
    let builds = JavaBuilds::new();
    let app = copy_of(&format!("{FIXTURES}/java_multi_module"));
    let report = builds.build_ok("multi", app.path());
    let app_layer = report_layer(&report, "app", "app");
    assert_eq!(
        layer_files(
            &builds.kiln,
            "multi:latest",
            app_layer["diff_id"].as_str().unwrap()
        ),
        [
            "workspace/app-2.0.jar",
            "workspace/lib/demo.multi.core-2.0.jar"
        ],
        "the sibling module changes with the code, so it lives in the app layer"
    );
    let dependencies = report_layer(&report, "kiln/java", "dependencies");
    assert_eq!(
        layer_files(
            &builds.kiln,
            "multi:latest",
            dependencies["diff_id"].as_str().unwrap()
        ),
        ["layers/kiln_java/dependencies/org.apache.commons.commons-lang3-3.12.0.jar"]
    );
    assert_eq!(
        entrypoint(&builds, "multi:latest"),
        [
            "java",
            "-cp",
            "/workspace/app-2.0.jar:/workspace/lib/*:/layers/kiln_java/dependencies/*",
            "demo.app.Main"
        ]
    );
}
