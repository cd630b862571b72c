//! Node build benchmark: `kiln build` of samples/nodejs-express — cold, nothing changed,
//! server.js changed, dependencies changed — next to its peer in the same run: the host's
//! `npm ci --omit=dev` plus `buildah bud --layers` of an equivalent Containerfile on the same
//! base (kiln's Debian run image with the same Node runtime layer). Prints Markdown for
//! BENCHMARKS.md.
//!
//! Run: `cargo bench --bench node_build` (needs npm, buildah, and the Debian archive for the
//! default run image).

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../tests/node_support/mod.rs"]
mod node_support;

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;

use common::{
    Cases, Changes, WARM_RUNS, benchmarking, buildah, buildah_bud, kiln_rounds, load_average,
    peer_rounds, print_table, timed, tool_version,
};

/// Row labels: cold, nothing changed, code changed, dependencies changed.
const CASES: Cases = [
    "cold (no layer or npm cache)",
    "nothing changed",
    "server.js changed",
    "dependencies changed",
];
use support::{Kiln, require_tool};

/// The sample's files and two dependency states to switch between: the sample as it is, and
/// the sample with one more dependency (package.json and lockfile both changed).
struct Sample {
    dir: tempfile::TempDir,
    server: String,
    original: (String, String),
    extended: (String, String),
}

impl Sample {
    fn new() -> Self {
        let dir = node_support::copy_of(&node_support::sample());
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        let original = (read("package.json"), read("package-lock.json"));
        let scratch = node_support::copy_of(dir.path());
        timed(
            "prepare the dependency change (npm install ms --package-lock-only)",
            Command::new("npm").current_dir(scratch.path()).args([
                "install",
                "ms@2.1.3",
                "--package-lock-only",
                "--no-audit",
                "--no-fund",
            ]),
        );
        let scratch_read = |name: &str| std::fs::read_to_string(scratch.path().join(name)).unwrap();
        let extended = (
            scratch_read("package.json"),
            scratch_read("package-lock.json"),
        );
        Self {
            server: read("server.js"),
            dir,
            original,
            extended,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn change_code(&self, round: usize) {
        let text = self
            .server
            .replace("Hello from kiln", &format!("Hello #{round} from kiln"));
        std::fs::write(self.path().join("server.js"), text).unwrap();
    }

    fn restore(&self) {
        self.change_dependencies(1);
        std::fs::write(self.path().join("server.js"), &self.server).unwrap();
    }

    /// Even rounds add a dependency, odd rounds take it away again.
    fn change_dependencies(&self, round: usize) {
        let (package, lockfile) = if round.is_multiple_of(2) {
            &self.extended
        } else {
            &self.original
        };
        std::fs::write(self.path().join("package.json"), package).unwrap();
        std::fs::write(self.path().join("package-lock.json"), lockfile).unwrap();
    }
}

/// The peer's image recipe: dependencies first so a code change reuses their layer, as a
/// well-written Dockerfile does.
fn containerfile(base: &str) -> String {
    format!(
        "FROM {base}\nWORKDIR /workspace\nCOPY package.json package-lock.json ./\nCOPY node_modules ./node_modules\n\
         COPY server.js ./\nUSER 1000:1000\nENV NODE_ENV=production\nENTRYPOINT [\"node\", \"server.js\"]\n"
    )
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) only checks
    // that the benchmark builds.
    if !benchmarking() {
        return;
    }
    require_tool("buildah");
    require_tool("npm");
    let node = tool_version("node");
    let npm = tool_version("npm");
    let sample = Sample::new();
    let kiln = Kiln::new();
    // buildah names an `oci:` image after its path, which must be lowercase: no random temp
    // dir names in the base's path.
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("node-bench");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();

    // Both sides start from the same base: kiln's Debian run image plus its Node runtime
    // layer, taken from an image of an app without dependencies. Assembling it (downloading
    // Debian packages) is not timed for either side.
    eprintln!("preparing the shared base (Debian run image + Node runtime):");
    let base_app = node_support::fixture("node_server_js_only");
    let base_layout = work.join("base");
    timed(
        "kiln build of a dependency-free app (assembles the stack)",
        kiln.cmd().args([
            "build",
            "node-base",
            "--path",
            base_app.to_str().unwrap(),
            "--output",
            &format!("oci:{}:base", base_layout.display()),
        ]),
    );
    let base = format!("oci:{}:base", base_layout.display());

    eprintln!("kiln build (samples/nodejs-express):");
    let changes = Changes {
        code: &|round| sample.change_code(round),
        dependencies: &|round| sample.change_dependencies(round),
        restore: &|| sample.restore(),
    };
    let kiln_build = || {
        let mut command = kiln.cmd();
        command.args([
            "build",
            "nodejs-express",
            "--path",
            sample.path().to_str().unwrap(),
        ]);
        command
    };
    // Cold: no layer cache for this app (so also no npm download cache); the stack's
    // packages are already downloaded.
    let kiln_times = kiln_rounds(&CASES, &kiln_build, &changes);

    eprintln!("npm ci + buildah bud:");
    let storage = work.join("storage");
    let npm_cache = work.join("npm-cache");
    let containerfile_path = work.join("Containerfile");
    std::fs::write(&containerfile_path, containerfile(&base)).unwrap();
    timed(
        "buildah pull of the shared base (not counted)",
        &mut buildah(&storage, &["pull", "-q", &base]),
    );
    let peer = |label: &str| {
        let install = timed(
            &format!("{label}: npm ci --omit=dev"),
            Command::new("npm")
                .current_dir(sample.path())
                .env("npm_config_cache", &npm_cache)
                .args(["ci", "--omit=dev", "--no-audit", "--no-fund"]),
        );
        let image = timed(
            &format!("{label}: buildah bud"),
            &mut buildah_bud(
                &storage,
                "nodejs-express",
                &containerfile_path,
                sample.path(),
            ),
        );
        (install, image)
    };
    let peer_times = peer_rounds(&CASES, &peer, &changes);
    println!(
        "Node {} on the build machine (npm {}), Debian's Node in the image; buildah vfs + chroot isolation, \
         `--layers`; median of {WARM_RUNS} warm runs; load average at the end: {}",
        node,
        npm,
        load_average()
    );
    println!();
    print_table(&CASES, ["npm ci", "buildah bud"], kiln_times, peer_times);
    let _ = std::fs::remove_dir_all(&work);
}
