//! `kiln::run`: real images, real namespaces, real processes.
//!
//! Needs Debian's `busybox-static` (`/bin/busybox`) for the test images, and root to prove
//! the unprivileged path (`setpriv` to uid 65534); those tests say so and pass vacuously
//! when not run as root.

#[path = "run_image/support.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use kiln::cache::Cache;
use kiln::run::{EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_RUNNER_FAILED, RunCommand, RunError};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{
    As, RawEntry, app_image, base_image, bucket_entries, raw_tar, run_in_subprocess, run_with,
};

/// Entry point of the runner subprocess (see `support`); a no-op in a normal test run.
#[test]
fn runner_subprocess() {
    if let Some(path) = std::env::var_os(support::REQUEST_VAR) {
        support::serve_request(Path::new(&path));
    }
}

fn replace(argv: &[&str]) -> RunCommand {
    RunCommand::Replace(argv.iter().map(|arg| arg.to_string()).collect())
}

fn process(process_type: &str) -> RunCommand {
    RunCommand::Process {
        process_type: process_type.to_owned(),
        args: Vec::new(),
    }
}

/// The three basic runs, as `who`: entrypoint, another process type, a replaced command.
fn entrypoint_process_and_override(who: As) {
    let image = app_image();
    let greeting = vec![("GREETING".to_owned(), "there".to_owned())];
    let web = run_with(&image, "home", RunCommand::Image, greeting, who, &[]);
    assert_eq!(web.code, Some(0), "{web:?}");
    assert!(
        web.has_line("web process says there from /workspace"),
        "{web:?}"
    );

    let worker = run_in_subprocess(&image, "home", process("worker"), who);
    assert_eq!(worker.code, Some(0), "{worker:?}");
    assert!(worker.has_line("worker process running"), "{worker:?}");

    let id = run_in_subprocess(
        &image,
        "home",
        replace(&["/bin/sh", "-c", "id -u; id -g; echo home=$HOME"]),
        who,
    );
    assert_eq!(id.code, Some(0), "{id:?}");
    let lines: Vec<&str> = id
        .stdout
        .lines()
        .filter(|line| !line.starts_with("running"))
        .collect();
    assert_eq!(
        lines[lines.len() - 3..],
        ["1000", "1000", "home=/home/cnb"],
        "{id:?}"
    );
    assert!(
        bucket_entries(&image.home("home"), "tmp").is_empty(),
        "per-run state left behind"
    );
}

#[test]
fn entrypoint_process_and_override_as_caller() {
    entrypoint_process_and_override(As::Caller);
}

#[test]
fn entrypoint_process_and_override_unprivileged() {
    if !support::is_root() {
        eprintln!("skipped: switching to uid 65534 needs root");
        return;
    }
    entrypoint_process_and_override(As::Nobody);
}

#[test]
fn image_root_user_is_root_inside() {
    let mut image = app_image();
    let mut config = image.config.config().clone().unwrap();
    config.set_user(Some("root".to_owned()));
    image.config.set_config(Some(config));
    let who = if support::is_root() {
        As::Nobody
    } else {
        As::Caller
    };
    let script = "id -u; id -g; touch /etc/ok && echo wrote-etc";
    let run = run_in_subprocess(&image, "home", replace(&["/bin/sh", "-c", script]), who);
    assert_eq!(run.code, Some(0), "{run:?}");
    for line in ["0", "wrote-etc"] {
        assert!(run.has_line(line), "missing `{line}`: {run:?}");
    }
}

#[test]
fn missing_user_namespaces_are_a_clear_error() {
    let image = app_image();
    let run = run_in_subprocess(
        &image,
        "home",
        replace(&["/bin/true"]),
        As::UnmappedNamespace,
    );
    assert_eq!(run.code, Some(EXIT_RUNNER_FAILED), "{run:?}");
    assert!(
        run.stderr.contains("cannot create a user namespace"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("not mapped in the user namespace it runs in"),
        "{run:?}"
    );
    assert!(run.stderr.contains("hint: "), "{run:?}");
}

#[test]
fn copy_fallback_runs_the_image_too() {
    let image = app_image();
    let runner_env = [(kiln::run::ROOTFS_MODE_VAR, "copy")];
    let id = run_with(
        &image,
        "home",
        replace(&["/bin/sh", "-c", "rm /etc/base-marker && id -u"]),
        Vec::new(),
        As::Caller,
        &runner_env,
    );
    assert_eq!(id.code, Some(0), "{id:?}");
    assert!(id.has_line("1000"), "{id:?}");
    let rootfs = bucket_entries(&image.home("home"), "rootfs");
    assert!(
        rootfs[0].join("etc/base-marker").exists(),
        "the run changed the cached rootfs"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[test]
fn http_server_answers_and_sigterm_stops_it() {
    let image = app_image();
    let who = if support::is_root() {
        As::Nobody
    } else {
        As::Caller
    };
    if who == As::Nobody {
        image.give_to(support::NOBODY);
    }
    let port = free_port();
    let request = support::Request {
        home: image.home("home"),
        layout: image.layout(),
        layers: image.layers.clone(),
        config: image.config.clone(),
        command: process("httpd"),
        env: vec![("PORT".to_owned(), port.to_string())],
    };
    let mut child = support::spawn_runner(&request, image.dir.path(), who, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let response = loop {
        if let Some(response) = http_get(port) {
            break response;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the runner exited early"
        );
        assert!(
            Instant::now() < deadline,
            "no HTTP answer on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    assert!(response.contains("hello from kiln"), "{response}");

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status =
        support::wait_status(&mut child, Duration::from_secs(10)).expect("stopped within 10 s");
    // busybox httpd does not catch SIGTERM: killed by signal 15 → 128 + 15.
    assert_eq!(status.code(), Some(143));
    assert!(http_get(port).is_none(), "the server still answers");
}

#[test]
fn sigterm_reaches_the_app_and_its_exit_code_is_returned() {
    let image = app_image();
    let request = support::Request {
        home: image.home("home"),
        layout: image.layout(),
        layers: image.layers.clone(),
        config: image.config.clone(),
        command: process("graceful"),
        env: Vec::new(),
    };
    let mut child = support::spawn_runner(&request, image.dir.path(), As::Caller, &[]);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "ready" {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the app never got ready"
        );
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status =
        support::wait_status(&mut child, Duration::from_secs(10)).expect("stopped within 10 s");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("stopping gracefully"), "{rest}");
    assert_eq!(status.code(), Some(3));
}

#[test]
fn init_reaps_orphans_in_its_own_pid_namespace() {
    let image = app_image();
    let run = run_in_subprocess(&image, "home", process("orphans"), As::Caller);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.has_line("orphan-parent=1"),
        "the orphan was not reparented to init: {run:?}"
    );
    assert!(run.has_line("orphan-gone"), "{run:?}");
    assert!(
        run.has_line("app-pid=2"),
        "not in a new pid namespace: {run:?}"
    );
    assert!(run.has_line("zombies=0"), "{run:?}");
}

#[test]
fn app_exit_codes_pass_through_and_kiln_failures_are_distinct() {
    let image = app_image();
    let failed = run_in_subprocess(&image, "home", process("fail"), As::Caller);
    assert_eq!(failed.code, Some(42), "{failed:?}");
    assert!(failed.has_line("failing on purpose"));

    let missing = run_in_subprocess(
        &image,
        "home",
        replace(&["/bin/no-such-program"]),
        As::Caller,
    );
    assert_eq!(missing.code, Some(EXIT_NOT_FOUND), "{missing:?}");
    assert!(
        missing
            .stderr
            .contains("command not found in the image: /bin/no-such-program"),
        "{missing:?}"
    );

    let by_path = run_in_subprocess(&image, "home", replace(&["no-such-program"]), As::Caller);
    assert_eq!(by_path.code, Some(EXIT_NOT_FOUND), "{by_path:?}");

    let not_executable = run_in_subprocess(
        &image,
        "home",
        replace(&["/cnb/not-executable"]),
        As::Caller,
    );
    assert_eq!(
        not_executable.code,
        Some(EXIT_NOT_EXECUTABLE),
        "{not_executable:?}"
    );

    let unknown = run_in_subprocess(&image, "home", process("nope"), As::Caller);
    assert_eq!(unknown.code, Some(EXIT_RUNNER_FAILED), "{unknown:?}");
    assert!(
        unknown
            .stderr
            .contains("process type `nope` is not in the image"),
        "{unknown:?}"
    );
    assert!(
        unknown
            .stderr
            .contains("fail, graceful, httpd, orphans, web, worker"),
        "{unknown:?}"
    );
}

#[test]
fn bad_input_is_a_typed_error() {
    let image = app_image();
    let cache = Cache::open(&image.home("home")).unwrap();
    let error = kiln::run::run(&cache, &image.spec(process("nope"))).unwrap_err();
    assert!(
        matches!(&error, RunError::UnknownProcessType { available, .. } if available.len() == 6),
        "{error:?}"
    );
    assert_eq!(error.exit_code(), EXIT_RUNNER_FAILED);

    let error = kiln::run::run(&cache, &image.spec(replace(&["/bin/missing"]))).unwrap_err();
    assert!(
        matches!(error, RunError::CommandNotFound { .. }),
        "{error:?}"
    );
    assert_eq!(error.exit_code(), EXIT_NOT_FOUND);

    let mut no_user = image.spec(RunCommand::Image);
    let mut config = no_user.config.config().clone().unwrap();
    config.set_user(Some("ghost".to_owned()));
    no_user.config.set_config(Some(config));
    let error = kiln::run::run(&cache, &no_user).unwrap_err();
    assert!(matches!(error, RunError::UnknownUser { .. }), "{error:?}");
}

#[test]
fn malicious_layers_stay_inside_the_rootfs_and_whiteouts_hide_base_files() {
    let canary = tempfile::tempdir().unwrap();
    let canary_path = canary.path().to_str().unwrap().to_owned();
    let host_etc_file = format!("kiln-pwned-{}", std::process::id());
    let up = format!(
        "{}{}",
        "../".repeat(12),
        canary_path.trim_start_matches('/')
    );
    let mut image = app_image();
    let tar = raw_tar(&[
        RawEntry::Symlink("sneaky", "/etc"),
        RawEntry::File(&format!("sneaky/{host_etc_file}"), b"through /etc\n"),
        RawEntry::Dir(&format!("sneaky/{host_etc_file}.d")),
        RawEntry::Symlink("hostdir", &canary_path),
        RawEntry::File("hostdir/pwned", b"through an absolute link\n"),
        RawEntry::Symlink("up", &up),
        RawEntry::File("up/pwned-relative", b"through a relative link\n"),
        RawEntry::File("/abs/file", b"absolute entry path\n"),
        RawEntry::File("etc/.wh.base-marker", b""),
        RawEntry::File("opq/.wh..wh..opq", b""),
        RawEntry::File("opq/new", b"upper\n"),
        RawEntry::HardLink("passwd-link", "sneaky/passwd"),
    ]);
    image.push_raw_tar(&tar);
    let script = format!(
        "cat /etc/{host_etc_file} {canary_path}/pwned {canary_path}/pwned-relative /abs/file; ls /opq; \
         test -d /etc/{host_etc_file}.d && echo dir-inside; test -e /etc/base-marker && echo marker-present || echo marker-gone; head -1 /passwd-link"
    );
    let run = run_in_subprocess(
        &image,
        "home",
        replace(&["/bin/sh", "-c", &script]),
        As::Caller,
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    for line in [
        "through /etc",
        "through an absolute link",
        "through a relative link",
        "absolute entry path",
        "new",
        "marker-gone",
        "dir-inside",
        "root:x:0:0:root:/root:/bin/sh",
    ] {
        assert!(run.has_line(line), "missing `{line}`: {run:?}");
    }
    assert!(
        !run.has_line("old"),
        "the opaque directory kept a lower file: {run:?}"
    );
    assert!(
        !Path::new("/etc").join(&host_etc_file).exists(),
        "wrote into the host's /etc"
    );
    assert!(
        !Path::new("/etc")
            .join(format!("{host_etc_file}.d"))
            .exists(),
        "made a dir in the host's /etc"
    );
    assert!(!Path::new("/abs").exists());
    assert_eq!(
        std::fs::read_dir(canary.path()).unwrap().count(),
        0,
        "wrote into the host canary dir"
    );

    // The base alone still has the file the whiteout hid.
    let base = base_image();
    let run = run_in_subprocess(
        &base,
        "home",
        replace(&["/bin/cat", "/etc/base-marker"]),
        As::Caller,
    );
    assert!(run.has_line("from the base"), "{run:?}");
}

#[test]
fn escaping_entries_refuse_the_layer() {
    let marker = format!("tmp/kiln-escape-{}", std::process::id());
    let dotdot = format!("{}{marker}", "../".repeat(12));
    let host_only = ["/etc/hostname", "/etc/debian_version", "/etc/shells"]
        .into_iter()
        .find(|path| Path::new(path).is_file())
        .expect("a host file the image lacks");
    let nlink =
        |path: &str| std::os::unix::fs::MetadataExt::nlink(&std::fs::metadata(path).unwrap());
    let links_before = nlink(host_only);
    type Expected = fn(&RunError) -> bool;
    let cases: Vec<(Vec<u8>, Expected)> = vec![
        (raw_tar(&[RawEntry::File(&dotdot, b"escaped\n")]), |error| {
            matches!(error, RunError::UnsafeLayerEntry { .. })
        }),
        (
            raw_tar(&[RawEntry::HardLink("stolen", "../../../../etc/shadow")]),
            |error| matches!(error, RunError::UnsafeLayerEntry { .. }),
        ),
        (
            raw_tar(&[
                RawEntry::Symlink("hostetc", "/etc"),
                RawEntry::HardLink(
                    "stolen",
                    &format!("hostetc/{}", host_only.trim_start_matches("/etc/")),
                ),
            ]),
            |error| matches!(error, RunError::HardLink { .. }),
        ),
    ];
    for (tar, expected) in cases {
        let mut image = base_image();
        image.push_raw_tar(&tar);
        let cache = Cache::open(&image.home("home")).unwrap();
        let error = kiln::run::run(&cache, &image.spec(replace(&["/bin/true"]))).unwrap_err();
        assert!(expected(&error), "{error:?}");
        assert_eq!(error.exit_code(), EXIT_RUNNER_FAILED);
        assert!(
            bucket_entries(&image.home("home"), "rootfs").is_empty(),
            "a refused rootfs was cached"
        );
        assert!(
            bucket_entries(&image.home("home"), "tmp").is_empty(),
            "scratch left behind"
        );
    }
    assert!(
        !Path::new("/").join(&marker).exists(),
        "a `..` entry escaped"
    );
    assert_eq!(
        nlink(host_only),
        links_before,
        "a hard link reached a host file"
    );
}

#[test]
fn runs_never_modify_the_cached_rootfs_and_clean_up() {
    let image = app_image();
    let home = image.home("home");
    let cache = Cache::open(&home).unwrap();
    let script =
        "rm /etc/base-marker && echo new > /workspace/new && mkdir -p /var/x && chmod 000 /var/x";
    assert_eq!(
        kiln::run::run(&cache, &image.spec(replace(&["/bin/sh", "-c", script]))).unwrap(),
        0
    );
    let rootfs = bucket_entries(&home, "rootfs");
    assert_eq!(rootfs.len(), 1);
    assert!(rootfs[0].join("etc/base-marker").exists());
    assert!(!rootfs[0].join("workspace/new").exists());
    assert!(!rootfs[0].join("var").exists());
    assert!(
        bucket_entries(&home, "tmp").is_empty(),
        "per-run state left behind"
    );

    let inode =
        |path: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap());
    let first = inode(&rootfs[0]);
    assert_eq!(
        kiln::run::run(&cache, &image.spec(replace(&["/bin/true"]))).unwrap(),
        0
    );
    assert_eq!(
        bucket_entries(&home, "rootfs"),
        rootfs,
        "the rootfs was not reused"
    );
    assert_eq!(inode(&rootfs[0]), first);
}

#[test]
fn concurrent_runs_of_one_image_unpack_it_once() {
    let image = app_image();
    let home = image.home("home");
    let results: Vec<Result<i32, RunError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    let cache = Cache::open(&home).unwrap();
                    kiln::run::run(
                        &cache,
                        &image.spec(replace(&["/bin/sh", "-c", "sleep 0.3"])),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    for result in results {
        assert_eq!(result.unwrap(), 0);
    }
    assert_eq!(bucket_entries(&home, "rootfs").len(), 1);
    assert!(bucket_entries(&home, "tmp").is_empty());
}
