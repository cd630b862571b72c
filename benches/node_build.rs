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

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Kiln, require_tool};

/// Warm runs per case; the median is reported.
const WARM_RUNS: usize = 3;

fn timed(label: &str, command: &mut Command) -> Duration {
    let start = Instant::now();
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{label}: {error}"));
    let elapsed = start.elapsed();
    assert!(
        output.status.success(),
        "{label} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("  {label}: {:.2} s", elapsed.as_secs_f64());
    elapsed
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

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

fn buildah(storage: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("buildah");
    command
        .arg("--root")
        .arg(storage.join("root"))
        .arg("--runroot")
        .arg(storage.join("runroot"))
        .args(["--storage-driver", "vfs"])
        .args(args);
    command
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
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    require_tool("buildah");
    require_tool("npm");
    let node = String::from_utf8(
        Command::new("node")
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let npm = String::from_utf8(
        Command::new("npm")
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let sample = Sample::new();
    let kiln = Kiln::new();
    let work = tempfile::tempdir().unwrap();

    // Both sides start from the same base: kiln's Debian run image plus its Node runtime
    // layer, taken from an image of an app without dependencies. Assembling it (downloading
    // Debian packages) is not timed for either side.
    eprintln!("preparing the shared base (Debian run image + Node runtime):");
    let base_app = node_support::fixture("node_server_js_only");
    let base_layout = work.path().join("base");
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
    let kiln_cold = timed("cold", &mut kiln_build());
    let kiln_unchanged = median(
        (0..WARM_RUNS)
            .map(|_| timed("nothing changed", &mut kiln_build()))
            .collect(),
    );
    let kiln_code = median(
        (0..WARM_RUNS)
            .map(|round| {
                sample.change_code(round);
                timed("server.js changed", &mut kiln_build())
            })
            .collect(),
    );
    let kiln_dependencies = median(
        (0..WARM_RUNS)
            .map(|round| {
                sample.change_dependencies(round);
                timed("dependencies changed", &mut kiln_build())
            })
            .collect(),
    );
    sample.change_dependencies(1);
    std::fs::write(sample.path().join("server.js"), &sample.server).unwrap();

    eprintln!("npm ci + buildah bud:");
    let storage = work.path().join("storage");
    let npm_cache = work.path().join("npm-cache");
    let containerfile_path = work.path().join("Containerfile");
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
            &mut buildah(
                &storage,
                &[
                    "bud",
                    "--isolation",
                    "chroot",
                    "--layers",
                    "-q",
                    "-t",
                    "nodejs-express",
                    "-f",
                    containerfile_path.to_str().unwrap(),
                    sample.path().to_str().unwrap(),
                ],
            ),
        );
        (install, image)
    };
    let peer_cold = peer("cold");
    let peer_unchanged: Vec<_> = (0..WARM_RUNS).map(|_| peer("nothing changed")).collect();
    let peer_code: Vec<_> = (0..WARM_RUNS)
        .map(|round| {
            sample.change_code(round);
            peer("server.js changed")
        })
        .collect();
    let peer_dependencies: Vec<_> = (0..WARM_RUNS)
        .map(|round| {
            sample.change_dependencies(round);
            peer("dependencies changed")
        })
        .collect();
    let split = |runs: &[(Duration, Duration)]| {
        (
            median(runs.iter().map(|(install, _)| *install).collect()),
            median(runs.iter().map(|(_, image)| *image).collect()),
            median(
                runs.iter()
                    .map(|(install, image)| *install + *image)
                    .collect(),
            ),
        )
    };
    let rows = [
        (
            "cold (no layer or npm cache)",
            kiln_cold,
            split(std::slice::from_ref(&peer_cold)),
        ),
        ("nothing changed", kiln_unchanged, split(&peer_unchanged)),
        ("server.js changed", kiln_code, split(&peer_code)),
        (
            "dependencies changed",
            kiln_dependencies,
            split(&peer_dependencies),
        ),
    ];
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "Node {} on the build machine (npm {}), Debian's Node in the image; buildah vfs + chroot isolation, \
         `--layers`; median of {WARM_RUNS} warm runs; load average at the end: {}",
        node.trim(),
        npm.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!();
    println!("| case | kiln build | npm ci | buildah bud | npm ci + buildah | kiln ÷ peer |");
    println!("|---|---|---|---|---|---|");
    for (case, kiln, (install, image, peer)) in rows {
        println!(
            "| {case} | {} | {} | {} | {} | {:.2}× |",
            seconds(kiln),
            seconds(install),
            seconds(image),
            seconds(peer),
            kiln.as_secs_f64() / peer.as_secs_f64()
        );
    }
}
