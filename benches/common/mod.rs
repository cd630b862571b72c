//! Helpers shared by the build benchmarks: timing a command, medians, and `buildah` with its
//! own vfs storage as the Dockerfile peer.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Warm runs per case; the median is reported.
pub const WARM_RUNS: usize = 3;

/// Whether `cargo bench` ran this (it passes `--bench`); `cargo test --benches` only checks
/// that the benchmark builds.
pub fn benchmarking() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// Run `command`, require success, print and return how long it took.
pub fn timed(label: &str, command: &mut Command) -> Duration {
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

pub fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

pub fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

/// The first line a tool prints for `--version`.
pub fn tool_version(program: &str) -> String {
    let output = Command::new(program)
        .arg("--version")
        .output()
        .unwrap_or_else(|error| panic!("{program} --version: {error}"));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The 1, 5 and 15 minute load averages, to show how quiet the machine was.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `buildah ARGS` with its own vfs storage under `storage`.
pub fn buildah(storage: &Path, args: &[&str]) -> Command {
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

/// `buildah bud` (chroot isolation, layer cache on) of `containerfile` in `context`, tagged `tag`.
pub fn buildah_bud(storage: &Path, tag: &str, containerfile: &Path, context: &Path) -> Command {
    buildah(
        storage,
        &[
            "bud",
            "--isolation",
            "chroot",
            "--layers",
            "-q",
            "-t",
            tag,
            "-f",
            containerfile.to_str().expect("UTF-8 path"),
            context.to_str().expect("UTF-8 path"),
        ],
    )
}

/// How a benchmark changes its sample between rounds (`round` counts from 0).
pub struct Changes<'a> {
    pub code: &'a dyn Fn(usize),
    pub dependencies: &'a dyn Fn(usize),
    /// Put the sample back as it was.
    pub restore: &'a dyn Fn(),
}

/// The four cases of a language benchmark: labels for cold, nothing changed, code changed
/// and dependencies changed.
pub type Cases = [&'static str; 4];

/// kiln's four builds in order: cold once, then the median of [`WARM_RUNS`] of each warm case.
pub fn kiln_rounds(cases: &Cases, build: &dyn Fn() -> Command, changes: &Changes) -> [Duration; 4] {
    let cold = timed(cases[0], &mut build());
    let warm = |label: &str, change: &dyn Fn(usize)| {
        median(
            (0..WARM_RUNS)
                .map(|round| {
                    change(round);
                    timed(label, &mut build())
                })
                .collect(),
        )
    };
    let unchanged = warm(cases[1], &|_| {});
    let code = warm(cases[2], changes.code);
    let dependencies = warm(cases[3], changes.dependencies);
    (changes.restore)();
    [cold, unchanged, code, dependencies]
}

/// The peer's times in one case: its dependency step, its image step, and their sum.
pub type PeerTimes = (Duration, Duration, Duration);

/// The peer's four runs in the same order; `run(label)` returns (dependency step, image step).
pub fn peer_rounds(
    cases: &Cases,
    run: &dyn Fn(&str) -> (Duration, Duration),
    changes: &Changes,
) -> [PeerTimes; 4] {
    let medians = |runs: Vec<(Duration, Duration)>| {
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
    let warm = |label: &str, change: &dyn Fn(usize)| {
        medians(
            (0..WARM_RUNS)
                .map(|round| {
                    change(round);
                    run(label)
                })
                .collect(),
        )
    };
    let cold = medians(vec![run(cases[0])]);
    let unchanged = warm(cases[1], &|_| {});
    let code = warm(cases[2], changes.code);
    let dependencies = warm(cases[3], changes.dependencies);
    (changes.restore)();
    [cold, unchanged, code, dependencies]
}

/// The Markdown table: one row a case, kiln next to the peer's two steps and their sum.
pub fn print_table(
    cases: &Cases,
    peer_steps: [&str; 2],
    kiln: [Duration; 4],
    peer: [PeerTimes; 4],
) {
    println!(
        "| case | kiln build | {} | {} | peer total | kiln ÷ peer |",
        peer_steps[0], peer_steps[1]
    );
    println!("|---|---|---|---|---|---|");
    for ((case, kiln), (install, image, total)) in cases.iter().zip(kiln).zip(peer) {
        println!(
            "| {case} | {} | {} | {} | {} | {:.2}× |",
            seconds(kiln),
            seconds(install),
            seconds(image),
            seconds(total),
            kiln.as_secs_f64() / total.as_secs_f64()
        );
    }
}
