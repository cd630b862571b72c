//! The Python buildpack's build step through the library API, with real pip against the real
//! package index and a stand-in stack (a `RuntimeProvider` offering a chosen python3), so the
//! dependency layer, start command and failure modes are proved without a Debian run image.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kiln::buildpack::{
    BuildContext, BuildEnv, BuildResult, Buildpack, BuildpackFailure, BuildpackId, Layer,
    LayerContent, LayerStore, RuntimeLayer, RuntimeProvider, Target,
};
use kiln::buildpacks::python::Python;
use kiln::diagnostic::ErrorClass;
use kiln::layer::{LayerCache, LayerEntries, Owner};
use kiln::source::SourceTree;
use support::{free_port, http_get_once};

/// A stack offering one python3 version; its runtime layer holds the named libraries.
struct FakeStack {
    python: &'static str,
    libraries: Vec<&'static str>,
}

impl RuntimeProvider for FakeStack {
    fn resolve(&self, packages: &[&str]) -> Result<RuntimeLayer, BuildpackFailure> {
        assert_eq!(packages, ["python3"]);
        Ok(RuntimeLayer {
            key: format!("fake-python3-{}", self.python),
            packages: BTreeMap::from([("python3".to_owned(), self.python.to_owned())]),
        })
    }

    fn materialize(&self, _runtime: &RuntimeLayer) -> Result<LayerEntries, BuildpackFailure> {
        let mut entries = LayerEntries::new();
        entries
            .add_symlink("usr/bin/python3", "python3.x", Owner::ROOT)
            .unwrap();
        for library in &self.libraries {
            entries
                .add_bytes(
                    &format!("usr/lib/x86_64-linux-gnu/{library}"),
                    Vec::new(),
                    0o644,
                    Owner::ROOT,
                )
                .unwrap();
        }
        entries.add_missing_parents(0o755, Owner::ROOT);
        Ok(entries)
    }

    fn package_version(&self, package: &str) -> Result<Option<String>, BuildpackFailure> {
        Ok(match package {
            "python3" => Some(self.python.to_owned()),
            "libc6" => Some("2.36-9+deb12u7".to_owned()),
            _ => None,
        })
    }
}

/// A stack like bookworm's, whose image has glibc.
fn bookworm() -> FakeStack {
    FakeStack {
        python: "3.11.2-1+b1",
        libraries: vec!["libpython3.11.so.1.0"],
    }
}

const GLIBC: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "ld-linux-x86-64.so.2",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// One build of the Python buildpack; keeps the directories its layers live in.
struct Built {
    result: Result<BuildResult, BuildpackFailure>,
    log: Vec<String>,
    app_dir: PathBuf,
    _dirs: Vec<tempfile::TempDir>,
}

impl Built {
    fn ok(&self) -> &BuildResult {
        match &self.result {
            Ok(result) => result,
            Err(error) => panic!(
                "build failed: {error} ({:?})\nlog:\n{}",
                error.hint(),
                self.log.join("\n")
            ),
        }
    }

    fn err(&self) -> &BuildpackFailure {
        match &self.result {
            Ok(_) => panic!("build succeeded:\n{}", self.log.join("\n")),
            Err(error) => error,
        }
    }

    fn layer(&self, name: &str) -> &Layer {
        self.ok()
            .layers
            .iter()
            .find(|layer| layer.name.as_str() == name)
            .unwrap_or_else(|| panic!("no layer {name}"))
    }

    fn deps_dir(&self) -> PathBuf {
        self.layer("deps").dir().unwrap().clone()
    }
}

fn build(
    app: &Path,
    stack: Option<&FakeStack>,
    run_image_libraries: &[&str],
    user_env: &[(&str, &str)],
) -> Built {
    let source = SourceTree::open(app).unwrap();
    let work = tempfile::tempdir().unwrap();
    let app_dir = work.path().join("app");
    source.copy_to(&app_dir).unwrap();
    let env = BuildEnv::new(
        user_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    let target = Target {
        os: "linux".to_owned(),
        arch: "amd64".to_owned(),
        distro: Some(("debian".to_owned(), "12".to_owned())),
    };
    let libraries: Vec<String> = run_image_libraries
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    let id = BuildpackId::new("kiln/python").unwrap();
    let layers = LayerStore::new(
        id,
        LayerCache::new(work.path().join("cache")),
        work.path().join("staging"),
        false,
    );
    let log = Mutex::new(Vec::new());
    let push = |line: &str| log.lock().unwrap().push(line.to_owned());
    let mut context = BuildContext {
        source: &source,
        app_dir: &app_dir,
        env,
        target: &target,
        runtimes: stack.map(|stack| stack as &dyn RuntimeProvider),
        run_image_libraries: &libraries,
        layers,
        log: &push,
    };
    let result = Python.build(&mut context);
    drop(context);
    Built {
        result,
        log: log.into_inner().unwrap(),
        app_dir,
        _dirs: vec![work],
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|entry| {
            entry
                .unwrap()
                .path()
                .strip_prefix(dir)
                .unwrap()
                .display()
                .to_string()
        })
        .collect()
}

/// GET / until it answers or the deadline passes.
fn http_get(port: u16, deadline: Duration) -> Option<String> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if let Ok(response) = http_get_once(port, Duration::from_secs(5))
            && !response.is_empty()
        {
            return Some(response);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

#[test]
fn flask_without_gunicorn_gets_gunicorn_and_serves_from_the_layer() {
    let built = build(
        &fixture("python_flask_no_gunicorn"),
        Some(&bookworm()),
        GLIBC,
        &[],
    );
    let result = built.ok();
    assert!(
        built
            .log
            .iter()
            .any(|line| line.contains("does not list gunicorn: adding gunicorn")),
        "{:?}",
        built.log
    );

    // Runtime layer: from the stack, at the image root, with the env every Python app wants.
    let runtime = built.layer("runtime");
    assert!(
        matches!(&runtime.content, LayerContent::Root(Some(entries)) if entries.contains("usr/bin/python3"))
    );
    assert_eq!(runtime.metadata["runtime"], "fake-python3-3.11.2-1+b1");
    assert!(
        runtime
            .env
            .iter()
            .any(|change| change.name == "PYTHONUNBUFFERED" && change.value == "1")
    );

    // Dependency layer: keyed by what changes it, importable, reproducible.
    let deps = built.layer("deps");
    assert!(deps.types.launch && deps.types.cache && !deps.types.build);
    let metadata = deps.metadata.as_object().unwrap();
    let keys: Vec<&str> = metadata.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "added",
            "arch",
            "install",
            "pip",
            "python",
            "requirements.txt"
        ]
    );
    assert_eq!(metadata["install"], "native");
    assert_eq!(metadata["added"], "gunicorn");
    assert_eq!(metadata["python"], "3.11.2-1+b1");
    assert!(deps.env.iter().any(|change| change.name == "PYTHONPATH" && change.value == "/layers/kiln_python/deps"));
    let dir = built.deps_dir();
    let files = files_under(&dir);
    assert!(
        files.iter().any(|file| file == "flask/__init__.py"),
        "flask installed"
    );
    assert!(
        files.iter().any(|file| file == "gunicorn/__init__.py"),
        "gunicorn added"
    );
    assert!(
        !files
            .iter()
            .any(|file| file.contains("__pycache__") || file.ends_with(".pyc")),
        "no byte-code: {:?}",
        files
            .iter()
            .filter(|file| file.contains("pycache"))
            .collect::<Vec<_>>()
    );
    for script in ["gunicorn", "flask"] {
        let text = std::fs::read_to_string(dir.join("bin").join(script)).unwrap();
        assert!(
            text.starts_with("#!/usr/bin/python3\n"),
            "{script}: {}",
            text.lines().next().unwrap()
        );
    }

    // The start command: gunicorn on $PORT, the default web process, through a shell for $PORT.
    assert_eq!(result.processes.len(), 1);
    let web = &result.processes[0];
    assert!(web.default);
    assert_eq!(
        web.entrypoint(),
        [
            "/bin/sh",
            "-c",
            "python3 -m gunicorn --bind 0.0.0.0:$PORT app:app"
        ]
    );

    // What the image will do, done on the host with Debian's /usr/bin/python3 (3.11, like
    // the runtime): the rewritten console script runs, and the app serves with the layer alone.
    let version = support::run_ok(
        Command::new(dir.join("bin/gunicorn"))
            .arg("--version")
            .env_clear()
            .env("PYTHONPATH", &dir)
            .env("PATH", "/usr/bin:/bin"),
    );
    assert!(version.contains("gunicorn"), "{version}");
    let port = free_port();
    let mut server = Command::new("/usr/bin/python3")
        .args([
            "-m",
            "gunicorn",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "app:app",
        ])
        .current_dir(&built.app_dir)
        .env_clear()
        .env("PYTHONPATH", &dir)
        .env("PATH", "/usr/bin:/bin")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let response = http_get(port, Duration::from_secs(20));
    server.kill().unwrap();
    server.wait().unwrap();
    let response = response.expect("gunicorn answered within 20 s");
    assert!(
        response.contains("Hello from Flask on Python 3.11"),
        "{response}"
    );
}

#[test]
fn pyproject_dependencies_are_installed() {
    let built = build(&fixture("python_pyproject"), Some(&bookworm()), GLIBC, &[]);
    let deps = built.layer("deps");
    assert!(
        deps.metadata.get("pyproject.toml").is_some(),
        "{}",
        deps.metadata
    );
    assert!(built.deps_dir().join("six.py").is_file());
    assert_eq!(built.ok().processes[0].command, ["python3", "main.py"]);
    // pip worked from a generated file outside the app: the app copy is untouched.
    assert_eq!(
        files_under(&built.app_dir).len(),
        files_under(&fixture("python_pyproject")).len()
    );
}

#[test]
fn another_host_minor_version_installs_wheels_for_the_runtime() {
    let app = support::app(&[
        ("requirements.txt", "markupsafe==3.0.2\n"),
        ("main.py", "import markupsafe\n"),
    ]);
    let stack = FakeStack {
        python: "3.12.3-1",
        libraries: vec![],
    };
    let built = build(app.path(), Some(&stack), GLIBC, &[]);
    let files = files_under(&built.deps_dir());
    assert!(
        files
            .iter()
            .any(|file| file.starts_with("markupsafe/_speedups.cpython-312-x86_64-linux-gnu")),
        "the extension is built for the runtime's 3.12: {files:?}"
    );
    if built.layer("deps").metadata["install"] == "cross-target" {
        assert!(
            built
                .log
                .iter()
                .any(|line| line.contains("installing binary wheels built for Python 3.12")),
            "{:?}",
            built.log
        );
    }
}

#[test]
fn no_wheel_for_another_runtime_version_is_a_clear_error() {
    // docopt is published as a source distribution only: nothing to install for a Python
    // that is not on the build machine.
    let app = support::app(&[("requirements.txt", "docopt==0.6.2\n"), ("main.py", "")]);
    let stack = FakeStack {
        python: "3.12.3-1",
        libraries: vec![],
    };
    let built = build(app.path(), Some(&stack), GLIBC, &[]);
    if built.result.is_ok() {
        // A host with Python 3.12 and pip builds it natively, which is right too.
        assert_eq!(built.layer("deps").metadata["install"], "native");
        return;
    }
    let error = built.err();
    assert_eq!(error.class(), ErrorClass::User);
    let text = error.to_string();
    assert!(
        text.contains("`docopt==0.6.2` has no binary wheel for Python 3.12"),
        "{text}"
    );
    assert!(
        error.hint().unwrap().contains("install Python 3.12"),
        "{:?}",
        error.hint()
    );
}

#[test]
fn a_requirement_missing_from_the_index_is_named() {
    let built = build(
        &fixture("python_requirement_missing"),
        Some(&bookworm()),
        GLIBC,
        &[],
    );
    let error = built.err();
    assert_eq!(error.class(), ErrorClass::User);
    assert_eq!(
        error.to_string(),
        "the requirement `kiln-fixture-no-such-package-7c1f3e==1.0.0` was not found on the package index"
    );
    assert!(
        error.hint().unwrap().contains("requirements.txt"),
        "{:?}",
        error.hint()
    );
}

#[test]
fn an_unsatisfiable_version_lists_what_the_stack_offers() {
    let built = build(
        &fixture("python_version_unsatisfiable"),
        Some(&bookworm()),
        GLIBC,
        &[],
    );
    let error = built.err();
    assert_eq!(error.class(), ErrorClass::User);
    assert_eq!(
        error.to_string(),
        "Python 3.99 (from .python-version) is not available: the stack offers Python 3.11.2"
    );
    assert_eq!(
        error.hint().unwrap(),
        "set .python-version to 3.11 or remove it to use the stack's Python"
    );
}

#[test]
fn without_a_stack_the_build_fails_clearly() {
    let built = build(&fixture("python_requirements_txt"), None, GLIBC, &[]);
    let error = built.err();
    assert_eq!(error.class(), ErrorClass::User);
    assert!(
        error
            .to_string()
            .contains("needs a Python runtime from the stack"),
        "{error}"
    );
    assert!(
        error.hint().unwrap().contains("without --run-image"),
        "{:?}",
        error.hint()
    );
}

#[test]
fn extensions_needing_libraries_the_image_lacks_fail_the_build() {
    let app = support::app(&[("requirements.txt", "markupsafe==3.0.2\n"), ("main.py", "")]);
    // An image without glibc: the extension's libc.so.6 is missing.
    let stack = bookworm();
    let built = build(app.path(), Some(&stack), &[], &[]);
    let error = built.err();
    assert_eq!(error.class(), ErrorClass::User);
    let text = error.to_string();
    assert!(
        text.contains("markupsafe/_speedups.cpython-311-x86_64-linux-gnu.so needs libc.so.6"),
        "{text}"
    );
    assert!(
        error
            .hint()
            .unwrap()
            .contains("BP_PYTHON_SKIP_LIBRARY_CHECK")
    );
    // The runtime layer's libraries count as the image's.
    let with_libc = FakeStack {
        python: "3.11.2-1+b1",
        libraries: vec!["libc.so.6", "libpthread.so.0"],
    };
    build(app.path(), Some(&with_libc), &[], &[]).ok();
    // And the check can be waived, with a warning.
    let waived = build(
        app.path(),
        Some(&stack),
        &[],
        &[("BP_PYTHON_SKIP_LIBRARY_CHECK", "true")],
    );
    waived.ok();
    assert!(
        waived
            .log
            .iter()
            .any(|line| line.starts_with("warning: compiled extensions need")),
        "{:?}",
        waived.log
    );
}

#[test]
fn empty_requirements_install_nothing_and_run_the_script() {
    let app = support::app(&[
        ("requirements.txt", "# nothing yet\n"),
        ("app.py", "print('hi')\n"),
    ]);
    let built = build(app.path(), Some(&bookworm()), GLIBC, &[]);
    let result = built.ok();
    let names: Vec<&str> = result
        .layers
        .iter()
        .map(|layer| layer.name.as_str())
        .collect();
    assert_eq!(names, ["runtime"]);
    assert_eq!(result.processes[0].command, ["python3", "app.py"]);
}

#[test]
fn an_app_with_nothing_to_start_asks_for_a_procfile() {
    let app = support::app(&[("requirements.txt", "six==1.16.0\n"), ("lib.py", "")]);
    let built = build(app.path(), Some(&bookworm()), GLIBC, &[]);
    let error = built.err();
    assert_eq!(
        error.to_string(),
        "cannot tell how to start this Python app"
    );
    assert!(error.hint().unwrap().contains("Procfile"));
}

/// Every file under `dir` with its bytes and whether it is executable, in path order.
fn tree_content(dir: &Path) -> Vec<(String, Vec<u8>, bool)> {
    use std::os::unix::fs::PermissionsExt;
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            let executable = entry.metadata().unwrap().permissions().mode() & 0o100 != 0;
            (
                entry
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .display()
                    .to_string(),
                std::fs::read(entry.path()).unwrap(),
                executable,
            )
        })
        .collect()
}

#[test]
fn two_cold_installs_give_identical_layers() {
    let first = build(
        &fixture("python_flask_no_gunicorn"),
        Some(&bookworm()),
        GLIBC,
        &[],
    );
    let second = build(
        &fixture("python_flask_no_gunicorn"),
        Some(&bookworm()),
        GLIBC,
        &[],
    );
    let (first, second) = (
        tree_content(&first.deps_dir()),
        tree_content(&second.deps_dir()),
    );
    assert!(first.len() > 100, "a real install: {} files", first.len());
    let differing: Vec<&str> = first
        .iter()
        .zip(&second)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0.as_str())
        .collect();
    assert_eq!(first.len(), second.len());
    assert!(
        differing.is_empty(),
        "files differ between installs: {differing:?}"
    );
}
