//! Helpers for the Node tests: fixture paths, and a harness that runs the Node buildpack
//! through the library with real npm/yarn/pnpm and a stub stack, so dependency installs,
//! layer reuse and start commands are checked without assembling a Debian runtime.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln::buildpack::{
    BuildContext, BuildEnv, BuildResult, Buildpack, BuildpackFailure, BuildpackId, Layer,
    LayerStore, RuntimeLayer, RuntimeProvider, Target,
};
use kiln::buildpacks::node::Node;
use kiln::layer::{LayerCache, LayerEntries, Owner};
use kiln::pipeline::BuildpackOutcome;
use kiln::source::SourceTree;

/// A fixture directory under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The express sample.
pub fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/nodejs-express")
}

/// Copy a directory (a fixture) into a fresh temp dir the test may modify.
pub fn copy_of(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    SourceTree::open(dir).unwrap().copy_to(copy.path()).unwrap();
    copy
}

/// A stack that offers one Node version as a Debian package; its runtime layer is a stand-in.
pub struct StubStack {
    /// The `nodejs` package version.
    pub nodejs: &'static str,
}

/// bookworm's Node.
pub const BOOKWORM_NODEJS: &str = "18.19.0+dfsg-6~deb12u2";

impl RuntimeProvider for StubStack {
    fn resolve(&self, packages: &[&str]) -> Result<RuntimeLayer, BuildpackFailure> {
        Ok(RuntimeLayer {
            key: format!("stub {}", self.nodejs),
            packages: packages
                .iter()
                .map(|name| ((*name).to_owned(), self.nodejs.to_owned()))
                .collect::<BTreeMap<_, _>>(),
        })
    }

    fn materialize(&self, _runtime: &RuntimeLayer) -> Result<LayerEntries, BuildpackFailure> {
        let mut entries = LayerEntries::new();
        entries
            .add_bytes("usr/bin/node", b"stub".to_vec(), 0o755, Owner::ROOT)
            .unwrap();
        entries.add_missing_parents(0o755, Owner::ROOT);
        Ok(entries)
    }

    fn package_version(&self, package: &str) -> Result<Option<String>, BuildpackFailure> {
        Ok((package == "nodejs").then(|| self.nodejs.to_owned()))
    }
}

/// One build's outcome.
pub struct Built {
    /// What the buildpack returned.
    pub result: BuildResult,
    /// The app directory after the build (becomes /workspace).
    pub app_dir: PathBuf,
    /// Every log line.
    pub log: Vec<String>,
    layers: LayerStore,
    _workspace: tempfile::TempDir,
}

impl Built {
    /// A layer by name.
    pub fn layer(&self, name: &str) -> &Layer {
        self.result
            .layers
            .iter()
            .find(|layer| layer.name.as_str() == name)
            .unwrap_or_else(|| {
                panic!(
                    "no layer {name}: {:?}",
                    self.result
                        .layers
                        .iter()
                        .map(|l| l.name.to_string())
                        .collect::<Vec<_>>()
                )
            })
    }

    /// Whether a layer exists.
    pub fn has_layer(&self, name: &str) -> bool {
        self.result
            .layers
            .iter()
            .any(|layer| layer.name.as_str() == name)
    }

    /// The directory of a directory layer.
    pub fn layer_dir(&self, name: &str) -> PathBuf {
        self.layer(name).dir().unwrap().clone()
    }

    /// Whether any log line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log.iter().any(|line| line.contains(needle))
    }

    /// The only process's entrypoint.
    pub fn entrypoint(&self) -> Vec<String> {
        assert_eq!(
            self.result.processes.len(),
            1,
            "{:?}",
            self.result.processes
        );
        self.result.processes[0].entrypoint()
    }
}

/// Runs the Node buildpack as the pipeline does, with one layer cache across builds.
pub struct Harness {
    cache: tempfile::TempDir,
    /// The stack offered to builds (`None`: a run image without a package stack).
    pub stack: Option<StubStack>,
}

impl Harness {
    pub fn new() -> Self {
        Self {
            cache: tempfile::tempdir().unwrap(),
            stack: Some(StubStack {
                nodejs: BOOKWORM_NODEJS,
            }),
        }
    }

    /// Build `app` (not yet committed to the cache).
    pub fn build(&self, app: &Path) -> Result<Built, (BuildpackFailure, Vec<String>)> {
        let source = SourceTree::open(app).unwrap();
        let workspace = tempfile::tempdir_in(self.cache.path()).unwrap();
        let app_dir = workspace.path().join("app");
        source.copy_to(&app_dir).unwrap();
        let staging = workspace.path().join("layers");
        std::fs::create_dir_all(&staging).unwrap();
        let id = BuildpackId::new("kiln/node").unwrap();
        let layers = LayerStore::new(
            id.clone(),
            LayerCache::new(self.cache.path().join("records").join(id.escaped())),
            staging,
            false,
        );
        let log = RefCell::new(Vec::new());
        let started = std::time::Instant::now();
        let log_line = |line: &str| {
            if std::env::var_os("KILN_TEST_LOG").is_some() {
                eprintln!("{:>7.2}s {line}", started.elapsed().as_secs_f64());
            }
            log.borrow_mut().push(line.to_owned());
        };
        let target = Target {
            os: "linux".to_owned(),
            arch: "amd64".to_owned(),
            distro: Some(("debian".to_owned(), "12".to_owned())),
        };
        let mut context = BuildContext {
            source: &source,
            app_dir: &app_dir,
            env: BuildEnv::new(Vec::new()),
            target: &target,
            runtimes: self
                .stack
                .as_ref()
                .map(|stack| stack as &dyn RuntimeProvider),
            run_image_libraries: &[],
            layers,
            log: &log_line,
        };
        let outcome = Node.build(&mut context);
        let layers = context.layers;
        let log = log.into_inner();
        match outcome {
            Ok(result) => Ok(Built {
                result,
                app_dir,
                log,
                layers,
                _workspace: workspace,
            }),
            Err(failure) => Err((failure, log)),
        }
    }

    /// Build and require success.
    pub fn build_ok(&self, app: &Path) -> Built {
        match self.build(app) {
            Ok(built) => built,
            Err((failure, log)) => panic!(
                "build of {} failed: {failure}\n{}",
                app.display(),
                log.join("\n")
            ),
        }
    }

    /// Build and require failure; returns the error text (with its causes) and hint.
    pub fn build_err(&self, app: &Path) -> (String, Option<String>) {
        match self.build(app) {
            Ok(_) => panic!("build of {} should fail", app.display()),
            Err((failure, _)) => {
                let mut text = failure.to_string();
                let mut cause = std::error::Error::source(&failure);
                while let Some(error) = cause {
                    text.push_str("\n  caused by: ");
                    text.push_str(&error.to_string());
                    cause = error.source();
                }
                (text, failure.hint())
            }
        }
    }

    /// Record the build's layers as the pipeline does after a successful export.
    pub fn commit(&self, built: Built) {
        let outcome = BuildpackOutcome {
            descriptor: Node.descriptor().clone(),
            result: built.result,
            layers: built.layers,
        };
        let app_cache = LayerCache::new(self.cache.path().join("records/_app"));
        let blobs = kiln::oci::BlobStore::for_layout(&self.cache.path().join("blobs"));
        kiln::pipeline::assemble::commit_layer_records(
            vec![outcome],
            &BTreeMap::new(),
            &app_cache,
            &blobs,
        )
        .unwrap();
    }
}

/// Whether the layer's state is `Restored`.
pub fn restored(layer: &Layer) -> bool {
    layer.is_restored()
}

/// Symlink target of `path`, as text.
pub fn link_target(path: &Path) -> String {
    std::fs::read_link(path)
        .unwrap_or_else(|error| panic!("{} is not a symlink: {error}", path.display()))
        .display()
        .to_string()
}

/// `GET /` on the loopback port, or the connection error.
pub fn http_get(port: u16) -> std::io::Result<String> {
    crate::support::http_get_once(port, std::time::Duration::from_secs(10))
}

/// A `kiln run` in the background, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Served {
    child: std::process::Child,
}

impl Served {
    /// Start `kiln run IMAGE -e PORT=port`.
    pub fn start(mut command: std::process::Command, image: &str, port: u16) -> Self {
        let child = command
            .args(["run", image, "-e", &format!("PORT={port}")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kiln run starts");
        Self { child }
    }

    /// The body of `GET /` once the app answers, waiting at most `limit`.
    pub fn body(&mut self, port: u16, limit: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(response) = http_get(port)
                && let Some((_, body)) = response.split_once("\r\n\r\n")
            {
                return body.to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    std::io::Read::read_to_string(&mut pipe, &mut stderr).ok();
                }
                panic!("kiln run exited ({status}) before answering:\n{stderr}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no HTTP answer on port {port} within {limit:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // SIGTERM lets kiln run stop the app it started; SIGKILL only if it does not.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
