//! Java apps kiln cannot build stop with a clear error, a hint, exit 1 and no image.

mod support;

use std::path::Path;

use support::maven::{JavaBuilds, copy_tree, dead_url, write_settings};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&Path::new(FIXTURES).join(name), dir.path());
    dir
}

fn assert_has(stderr: &str, needles: &[&str]) {
    for needle in needles {
        assert!(stderr.contains(needle), "expected `{needle}` in:\n{stderr}");
    }
}

#[test]
fn a_pom_or_java_version_file_asking_for_a_newer_java_than_the_stack() {
    // The default Debian run image: the version compared is the stack's JRE package.
    let builds = JavaBuilds::debian();
    let app = fixture("java_newer_java");
    let stderr = builds.build_fails("newer", app.path(), Some(&builds.settings));
    assert_has(
        &stderr,
        &[
            "pom.xml maven.compiler.release asks for Java 21, but the image runs Java 17 \
             (openjdk-17-jre-headless 17.",
            "hint: compile for Java 17 or lower",
        ],
    );
    assert!(
        !stderr.contains("$ mvn"),
        "the check runs before Maven:\n{stderr}"
    );

    let app = fixture("java_version_file_too_new");
    let stderr = builds.build_fails("version-file", app.path(), Some(&builds.settings));
    assert_has(
        &stderr,
        &[".java-version asks for Java 21, but the image runs Java 17"],
    );
}

#[test]
fn a_malformed_pom_names_the_position() {
    let builds = JavaBuilds::new();
    let app = fixture("java_malformed_pom");
    let stderr = builds.build_fails("malformed", app.path(), Some(&builds.settings));
    assert_has(
        &stderr,
        &[
            "pom.xml is not well-formed XML",
            "at 11:5",
            "hint: fix the XML",
        ],
    );
}

#[test]
fn a_multi_module_project_without_a_runnable_module_lists_the_modules() {
    let builds = JavaBuilds::new();
    let app = fixture("java_multi_module_no_main");
    let stderr = builds.build_fails("libs", app.path(), Some(&builds.settings));
    assert_has(
        &stderr,
        &[
            "no module of this multi-module project names a main class (modules: core, util)",
            "BP_MAVEN_BUILT_MODULE",
        ],
    );
    let (output, _) = builds.build_with(
        "libs",
        app.path(),
        Some(&builds.settings),
        &["--env", "BP_MAVEN_BUILT_MODULE=nope"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert_has(
        &stderr,
        &["BP_MAVEN_BUILT_MODULE=`nope` is not a jar module of this project (modules: core, util)"],
    );
}

#[test]
fn an_unreachable_mirror_or_missing_settings_file_is_named() {
    let builds = JavaBuilds::new();
    let app = fixture("java_runtime_dependency");
    let settings_dir = tempfile::tempdir().unwrap();
    let dead = dead_url();
    let settings = write_settings(settings_dir.path(), &dead);
    let stderr = builds.build_fails("unreachable", app.path(), Some(&settings));
    assert_has(
        &stderr,
        &[
            &format!("Maven could not reach the repository `company` ({dead})"),
            "Connection refused",
            &format!(
                "hint: check the <mirror>/<repository> URLs in {}",
                settings.display()
            ),
        ],
    );

    // The same settings found as ~/.m2/settings.xml (no MAVEN_SETTINGS) are honoured too.
    let m2 = builds.home.path().join(".m2");
    std::fs::create_dir_all(&m2).unwrap();
    std::fs::copy(&settings, m2.join("settings.xml")).unwrap();
    let stderr = builds.build_fails("unreachable", app.path(), None);
    assert_has(
        &stderr,
        &[
            "from ~/.m2/settings.xml",
            &format!("repository `company` ({dead})"),
        ],
    );

    let missing = settings_dir.path().join("nope.xml");
    let stderr = builds.build_fails("unreachable", app.path(), Some(&missing));
    assert_has(
        &stderr,
        &[
            &format!(
                "MAVEN_SETTINGS names the Maven settings file {}, which does not exist",
                missing.display()
            ),
            "hint: point MAVEN_SETTINGS at an existing settings.xml",
        ],
    );
}

#[test]
fn compile_errors_show_javac_output() {
    let builds = JavaBuilds::new();
    let app = fixture("java_runtime_dependency");
    let main = app.path().join("src/main/java/demo/Main.java");
    std::fs::write(&main, "package demo;\npublic class Main { oops }\n").unwrap();
    let stderr = builds.build_fails("broken", app.path(), Some(&builds.settings));
    assert_has(
        &stderr,
        &[
            "`mvn package` failed",
            "Main.java:[2,25]",
            "hint: the Maven output above",
        ],
    );
}

#[test]
fn without_a_stack_runtime_the_build_says_how_to_get_one() {
    let builds = JavaBuilds::new();
    let app = fixture("java_runtime_dependency");
    let output = builds
        .kiln
        .cmd()
        .env("HOME", builds.home.path())
        .env("MAVEN_SETTINGS", &builds.settings)
        .args([
            "build",
            "no-jre",
            "--path",
            app.path().to_str().unwrap(),
            "--run-image",
            builds.base.as_deref().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_has(
        &stderr,
        &[
            "no package stack to take a Java runtime from",
            "BP_JAVA_RUN_IMAGE_VERSION=17",
        ],
    );

    let (output, _) = builds.build_with(
        "no-jre",
        app.path(),
        Some(&builds.settings),
        &["--env", "BP_JAVA_RUN_IMAGE_VERSION=latest"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_has(
        &String::from_utf8_lossy(&output.stderr),
        &["BP_JAVA_RUN_IMAGE_VERSION=`latest` is not a Java major version"],
    );
}

#[test]
fn a_machine_without_maven_is_told_to_install_it() {
    let builds = JavaBuilds::new();
    let app = fixture("java_runtime_dependency");
    let output = builds
        .kiln
        .cmd()
        .env("HOME", builds.home.path())
        .env("MAVEN_SETTINGS", &builds.settings)
        .env("PATH", builds.home.path())
        .args(["build", "no-maven", "--path", app.path().to_str().unwrap()])
        .args([
            "--run-image",
            builds.base.as_deref().unwrap(),
            "--env",
            "BP_JAVA_RUN_IMAGE_VERSION=17",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_has(
        &stderr,
        &["`mvn` was not found on PATH", "hint: install Maven"],
    );
}
