//! Built Java images serve: `kiln build` then `kiln run`, an HTTP request with bounded
//! waits, and the JVM picking up a `JAVA_TOOL_OPTIONS` given at run time.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::maven::{JavaBuilds, copy_tree, layer_files, report_layer};
use support::{free_port, http_get_once};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/java-maven");

/// Stops (and reaps) the app when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `kiln run IMAGE -e PORT=… EXTRA…` and wait (at most 90 s) for an HTTP answer.
fn serve(builds: &JavaBuilds, image: &str, extra: &[&str]) -> (String, Running) {
    let port = free_port();
    let port_env = format!("PORT={port}");
    let mut args = vec!["run", image, "-e", &port_env];
    args.extend(extra);
    let child = builds
        .kiln
        .cmd()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(response) = http_get_once(port, Duration::from_secs(10)) {
            return (response, running);
        }
        if let Some(status) = running.0.try_wait().unwrap() {
            let mut stderr = String::new();
            running
                .0
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("kiln run exited ({status}) before answering:\n{stderr}");
        }
        assert!(
            Instant::now() < deadline,
            "no HTTP answer on 127.0.0.1:{port} within 90 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Stop the app with SIGTERM (bounded wait) and return what it printed on stderr.
fn stop(mut running: Running) -> String {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(running.0.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while running.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the app did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = running.0.stderr.take() {
        pipe.read_to_string(&mut stderr).unwrap();
    }
    stderr
}

#[test]
fn the_sample_serves_on_a_run_image_that_has_java() {
    let mut builds = JavaBuilds::new();
    let base_dir = tempfile::tempdir().unwrap();
    builds.base = Some(support::jre::host_jre_base(base_dir.path()));
    let app = tempfile::tempdir().unwrap();
    copy_tree(Path::new(SAMPLE), app.path());
    builds.build_ok("java-sample", app.path());

    let (response, running) = serve(&builds, "java-sample", &["-e", "JAVA_TOOL_OPTIONS=-Xmx64m"]);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("Hello from Java 17"), "{response}");
    let stderr = stop(running);
    assert!(
        stderr.contains("Picked up JAVA_TOOL_OPTIONS: -Xmx64m"),
        "the JVM reads the user's options:\n{stderr}"
    );
}

fn image_env(builds: &JavaBuilds, tag: &str) -> Vec<String> {
    let image = support::read_image(&builds.kiln.store(), tag);
    image
        .config
        .config()
        .as_ref()
        .and_then(|config| config.env().clone())
        .unwrap_or_default()
}

#[test]
fn the_sample_serves_on_the_debian_stack_and_a_code_change_moves_only_the_app_layer() {
    let builds = JavaBuilds::debian();
    let app = tempfile::tempdir().unwrap();
    copy_tree(Path::new(SAMPLE), app.path());
    let cold = builds.build_ok("java-sample", app.path());
    let jre = report_layer(&cold, "kiln/java", "jre");
    let dependencies = report_layer(&cold, "kiln/java", "dependencies");
    assert_eq!(jre["reused"], false);
    let jre_files = layer_files(
        &builds.kiln,
        "java-sample:latest",
        jre["diff_id"].as_str().unwrap(),
    );
    for needed in [
        "usr/lib/jvm/java-17-openjdk-amd64/bin/java",
        "usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so",
        "etc/ssl/certs/java/cacerts",
    ] {
        assert!(
            jre_files.iter().any(|file| file == needed),
            "{needed} is in the JRE layer"
        );
    }
    assert!(
        !jre_files
            .iter()
            .any(|file| file.contains("libcups") || file.contains("libasound")),
        "desktop libraries stay out of the JRE layer"
    );
    let env = image_env(&builds, "java-sample:latest");
    assert!(
        env.contains(
            &"JAVA_TOOL_OPTIONS=-XX:MaxRAMPercentage=75 -XX:+ExitOnOutOfMemoryError".to_owned()
        ),
        "{env:?}"
    );

    let (response, running) = serve(&builds, "java-sample", &[]);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("Hello from Java 17"), "{response}");
    let stderr = stop(running);
    assert!(
        stderr.contains("Picked up JAVA_TOOL_OPTIONS: -XX:MaxRAMPercentage=75"),
        "the container defaults apply:\n{stderr}"
    );

    // A code change: the app layer alone is rebuilt; JRE and dependency layers keep their
    // digests and are not even re-tarred (the build report says so).
    let source = app.path().join("src/main/java/dev/kiln/samples/App.java");
    let code = std::fs::read_to_string(&source).unwrap();
    std::fs::write(
        &source,
        code.replace("Hello from Java", "Greetings from Java"),
    )
    .unwrap();
    let changed = builds.build_ok("java-sample", app.path());
    for (name, before) in [("jre", jre), ("dependencies", dependencies)] {
        let after = report_layer(&changed, "kiln/java", name);
        assert_eq!(after["reused"], true, "{name}: {changed:#}");
        assert_eq!(after["compressed"], false, "{name}");
        assert_eq!(after["digest"], before["digest"], "{name}");
    }
    let app_before = report_layer(&cold, "app", "app");
    let app_after = report_layer(&changed, "app", "app");
    assert_eq!(app_after["reused"], false);
    assert_ne!(app_after["digest"], app_before["digest"]);

    // A JAVA_TOOL_OPTIONS given at run time replaces the defaults.
    let (response, running) = serve(&builds, "java-sample", &["-e", "JAVA_TOOL_OPTIONS=-Xmx64m"]);
    assert!(response.contains("Greetings from Java 17"), "{response}");
    let stderr = stop(running);
    assert!(
        stderr.contains("Picked up JAVA_TOOL_OPTIONS: -Xmx64m"),
        "{stderr}"
    );
    assert!(!stderr.contains("MaxRAMPercentage"), "{stderr}");
}
