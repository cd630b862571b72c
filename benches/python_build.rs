//! Python build benchmark: `kiln build` of samples/python-flask — cold, nothing changed,
//! app.py changed, requirements changed — next to its peer in the same run: the host's
//! `pip install --target` plus `buildah bud --layers` of an equivalent Containerfile on the
//! same base (kiln's Debian run image with the same Python runtime layer). Prints Markdown for
//! BENCHMARKS.md.
//!
//! Run: `cargo bench --bench python_build` (needs python3 with pip, buildah, and the Debian
//! archive for the default run image).

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    Cases, Changes, WARM_RUNS, benchmarking, buildah, buildah_bud, kiln_rounds, load_average,
    peer_rounds, print_table, timed, tool_version,
};

/// Row labels: cold, nothing changed, code changed, dependencies changed.
const CASES: Cases = [
    "cold (no layer or pip cache)",
    "nothing changed",
    "app.py changed",
    "requirements changed",
];
use support::{Kiln, require_tool};

/// A requirement the sample does not have, added and removed by the dependency rounds.
const EXTRA_REQUIREMENT: &str = "six==1.16.0";

/// A copy of the sample as `<context>/app`, with room for the peer's `<context>/deps`.
struct Sample {
    context: tempfile::TempDir,
    app_py: String,
    requirements: String,
}

impl Sample {
    fn new() -> Self {
        let context = tempfile::tempdir().unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/python-flask");
        let app = context.path().join("app");
        std::fs::create_dir(&app).unwrap();
        for entry in std::fs::read_dir(&source).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), app.join(entry.file_name())).unwrap();
        }
        let read = |name: &str| std::fs::read_to_string(app.join(name)).unwrap();
        Self {
            app_py: read("app.py"),
            requirements: read("requirements.txt"),
            context,
        }
    }

    fn app(&self) -> PathBuf {
        self.context.path().join("app")
    }

    fn deps(&self) -> PathBuf {
        self.context.path().join("deps")
    }

    fn change_code(&self, round: usize) {
        let text = format!("{}\n# round {round}\n", self.app_py);
        std::fs::write(self.app().join("app.py"), text).unwrap();
    }

    /// Even rounds add a requirement, odd rounds take it away again.
    fn change_dependencies(&self, round: usize) {
        let text = if round.is_multiple_of(2) {
            format!("{}{EXTRA_REQUIREMENT}\n", self.requirements)
        } else {
            self.requirements.clone()
        };
        std::fs::write(self.app().join("requirements.txt"), text).unwrap();
    }

    fn restore(&self) {
        std::fs::write(self.app().join("app.py"), &self.app_py).unwrap();
        std::fs::write(self.app().join("requirements.txt"), &self.requirements).unwrap();
    }
}

/// The peer's image recipe: dependencies first so a code change reuses their layer, as a
/// well-written Dockerfile does; the same start command as the sample's Procfile.
fn containerfile(base: &str) -> String {
    format!(
        "FROM {base}\nCOPY deps /opt/deps\nENV PYTHONPATH=/opt/deps PYTHONUNBUFFERED=1\n\
         COPY app /workspace\nWORKDIR /workspace\nUSER 1000:1000\n\
         ENTRYPOINT [\"/bin/sh\", \"-c\", \"python3 -m gunicorn --bind 0.0.0.0:$PORT app:app\"]\n"
    )
}

/// The peer's dependency step: what kiln runs, with pip's own download cache kept warm.
fn pip_install(sample: &Sample, pip_cache: &Path) -> Command {
    let _ = std::fs::remove_dir_all(sample.deps());
    let mut command = Command::new("python3");
    command
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(sample.deps())
        .arg("-r")
        .arg(sample.app().join("requirements.txt"))
        .env("PIP_CACHE_DIR", pip_cache);
    command
}

fn main() {
    if !benchmarking() {
        return;
    }
    require_tool("buildah");
    let python = tool_version("python3");
    let pip = String::from_utf8_lossy(
        &Command::new("python3")
            .args(["-m", "pip", "--version"])
            .output()
            .unwrap()
            .stdout,
    )
    .split_whitespace()
    .take(2)
    .collect::<Vec<_>>()
    .join(" ");
    let sample = Sample::new();
    let kiln = Kiln::new();
    // buildah names an `oci:` image after its path, which must be lowercase: no random temp
    // dir names in the base's path.
    let base_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-bench");
    let _ = std::fs::remove_dir_all(&base_dir);
    std::fs::create_dir_all(&base_dir).unwrap();

    // Both sides start from the same base: kiln's Debian run image plus its Python runtime
    // layer, taken from an image of an app without dependencies. Assembling it (downloading
    // Debian packages) is not timed for either side.
    eprintln!("preparing the shared base (Debian run image + Python runtime):");
    let base_app = base_dir.join("base-app");
    std::fs::create_dir(&base_app).unwrap();
    std::fs::write(base_app.join("requirements.txt"), "").unwrap();
    std::fs::write(base_app.join("main.py"), "print('base')\n").unwrap();
    let base = format!("oci:{}:base", base_dir.join("base").display());
    timed(
        "kiln build of a dependency-free app (assembles the stack)",
        kiln.cmd().args([
            "build",
            "python-base",
            "--path",
            base_app.to_str().unwrap(),
            "--output",
            &base,
        ]),
    );

    eprintln!("kiln build (samples/python-flask):");
    let changes = Changes {
        code: &|round| sample.change_code(round),
        dependencies: &|round| sample.change_dependencies(round),
        restore: &|| sample.restore(),
    };
    let kiln_build = || {
        let mut command = kiln.cmd();
        command.args([
            "build",
            "python-flask",
            "--path",
            sample.app().to_str().unwrap(),
        ]);
        command
    };
    // Cold: no layer cache for this app; the stack's packages are already downloaded.
    let kiln_times = kiln_rounds(&CASES, &kiln_build, &changes);

    eprintln!("pip install + buildah bud:");
    let storage = base_dir.join("storage");
    let pip_cache = base_dir.join("pip-cache");
    let containerfile_path = base_dir.join("Containerfile");
    std::fs::write(&containerfile_path, containerfile(&base)).unwrap();
    timed(
        "buildah pull of the shared base (not counted)",
        &mut buildah(&storage, &["pull", "-q", &base]),
    );
    let peer = |label: &str| {
        let install = timed(
            &format!("{label}: pip install"),
            &mut pip_install(&sample, &pip_cache),
        );
        let image = timed(
            &format!("{label}: buildah bud"),
            &mut buildah_bud(
                &storage,
                "python-flask",
                &containerfile_path,
                sample.context.path(),
            ),
        );
        (install, image)
    };
    let peer_times = peer_rounds(&CASES, &peer, &changes);
    println!(
        "{python} on the build machine ({pip}), Debian's Python in the image; buildah vfs + chroot \
         isolation, `--layers`; median of {WARM_RUNS} warm runs; load average at the end: {}",
        load_average()
    );
    println!();
    print_table(
        &CASES,
        ["pip install", "buildah bud"],
        kiln_times,
        peer_times,
    );
    let _ = std::fs::remove_dir_all(&base_dir);
}
