//! Java (Maven) build times for samples/java-maven, in one run: cold, no change, code
//! change and dependency change, each with what happened to the layers, next to plain
//! `mvn package` on the same warm local repository for scale.
//!
//! Run: `cargo bench --bench java_build` (prints a Markdown table for BENCHMARKS.md).
//! Needs Maven, a JDK and Debian's Maven plugin packages (see scripts/test.sh).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use support::maven::{JavaBuilds, copy_tree};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/java-maven");

fn layer_summary(report: &serde_json::Value) -> String {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|layer| layer["name"] != "process-types")
        .map(|layer| {
            let state = if layer["reused"] == true {
                "reused"
            } else {
                "rebuilt"
            };
            format!("{} {state}", layer["name"].as_str().unwrap())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() {
    // The default Debian run image with the stack's JRE layer; Debian downloads are shared
    // with the tests (verified, content-addressed), so "cold" means an empty kiln home that
    // still assembles the base and the JRE layer, not a network benchmark.
    let builds = JavaBuilds::debian();
    let app = tempfile::tempdir().unwrap();
    copy_tree(Path::new(SAMPLE), app.path());
    let source = app.path().join("src/main/java/dev/kiln/samples/App.java");
    let pom = app.path().join("pom.xml");

    let mut rows: Vec<(String, f64, String)> = Vec::new();
    let mut build = |label: &str| {
        let start = Instant::now();
        let report = builds.build_ok("bench", app.path());
        let seconds = start.elapsed().as_secs_f64();
        rows.push((label.to_owned(), seconds, layer_summary(&report)));
    };
    build("cold (empty kiln home: base, JRE layer, Maven plugins from the mirror)");
    build("no change");
    let code = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, code.replace("Hello from Java", "Hi from Java")).unwrap();
    build("code change (App.java)");
    let with_io = std::fs::read_to_string(&pom).unwrap().replace(
        "    <dependency>\n      <groupId>junit</groupId>",
        "    <dependency>\n      <groupId>commons-io</groupId>\n      <artifactId>commons-io</artifactId>\n      \
         <version>2.11.0</version>\n    </dependency>\n    <dependency>\n      <groupId>junit</groupId>",
    );
    std::fs::write(&pom, with_io).unwrap();
    build("dependency change (+commons-io)");

    // For scale: Maven alone on the same project with a warm local repository.
    let repo = tempfile::tempdir().unwrap();
    let maven = |opts: &str| {
        let _ = std::fs::remove_dir_all(app.path().join("target"));
        let start = Instant::now();
        let status = Command::new("mvn")
            .args(["-B", "-q", "-DskipTests", "package"])
            .arg("-s")
            .arg(&builds.settings)
            .arg(format!("-Dmaven.repo.local={}", repo.path().display()))
            .env("MAVEN_OPTS", opts)
            .current_dir(app.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        start.elapsed().as_secs_f64()
    };
    maven("");
    rows.push((
        "plain `mvn package`, warm repository, default JVM flags".to_owned(),
        maven(""),
        "—".to_owned(),
    ));
    let kiln_opts = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC";
    rows.push((
        format!("plain `mvn package`, warm repository, MAVEN_OPTS=\"{kiln_opts}\""),
        maven(kiln_opts),
        "—".to_owned(),
    ));

    println!("| build of samples/java-maven | seconds | layers |");
    println!("|---|---:|---|");
    for (label, seconds, layers) in rows {
        println!("| {label} | {seconds:.2} | {layers} |");
    }
}
