//! Layer export throughput: kiln's deterministic tar + parallel gzip (and zstd) against
//! `tar | gzip -6` and `tar | pigz -p2 -6` on the same ~200 MB tree, in one run.
//!
//! Run: `cargo bench --bench layer_export` (prints a Markdown table for BENCHMARKS.md).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use kiln::layer::{Compression, DirOptions, entries_from_dir, write_layer};
use kiln::oci::BlobStore;

/// A tree shaped like an app with dependencies: many small source-like files that compress
/// well, some mid-size ones, and a few large binary-ish blobs that do not.
fn make_tree(root: &Path, target_bytes: usize) -> usize {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let words = [
        "def ", "return ", "import ", "self", "value", "(", ")", ":\n    ", "if ", "else", "for ",
        "in ", "None", "= ", "\n",
    ];
    let mut written = 0;
    let mut index = 0;
    while written < target_bytes {
        let dir = root.join(format!("pkg{}/sub{}", index % 40, index % 7));
        std::fs::create_dir_all(&dir).unwrap();
        let content: Vec<u8> = if index % 50 == 49 {
            (0..2 << 20).map(|_| next() as u8).collect()
        } else {
            let size = 2_000 + (next() % 60_000) as usize;
            let mut text = Vec::with_capacity(size);
            while text.len() < size {
                text.extend_from_slice(words[(next() % words.len() as u64) as usize].as_bytes());
            }
            text
        };
        written += content.len();
        std::fs::write(dir.join(format!("file{index}.py")), content).unwrap();
        index += 1;
    }
    written
}

fn time<T>(run: impl FnOnce() -> T) -> (f64, T) {
    let start = Instant::now();
    let value = run();
    (start.elapsed().as_secs_f64(), value)
}

fn shell(script: &str) -> f64 {
    let (seconds, status) = time(|| Command::new("sh").arg("-c").arg(script).status().unwrap());
    assert!(status.success(), "{script}");
    seconds
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    let bytes = make_tree(&tree, 200 << 20);
    let megabytes = bytes as f64 / (1 << 20) as f64;
    let tar = format!("tar -C {} -cf - .", tree.display());
    // Warm the page cache so every contender reads from memory.
    shell(&format!("{tar} > /dev/null"));

    let store_dir = work.path().join("store");
    let mut rows = Vec::new();
    for (label, compression) in [
        ("kiln gzip -6 (parallel)", Compression::Gzip),
        ("kiln zstd -3", Compression::Zstd),
    ] {
        let store = BlobStore::for_layout(&store_dir);
        let (seconds, layer) = time(|| {
            let entries = entries_from_dir(&tree, DirOptions::APP, |_, _| true).unwrap();
            write_layer(&entries, compression, &store).unwrap()
        });
        rows.push((label.to_owned(), seconds, layer.size));
    }
    let out = work.path().join("out");
    let gzip = shell(&format!("{tar} | gzip -6 > {}", out.display()));
    let gzip_size = std::fs::metadata(&out).unwrap().len();
    rows.push(("tar | gzip -6".to_owned(), gzip, gzip_size));
    if Command::new("pigz").arg("--version").output().is_ok() {
        let pigz = shell(&format!("{tar} | pigz -p2 -6 > {}", out.display()));
        rows.push((
            "tar | pigz -p2 -6".to_owned(),
            pigz,
            std::fs::metadata(&out).unwrap().len(),
        ));
    }

    println!(
        "tree: {megabytes:.0} MB in {} cores\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("| exporter | seconds | MB/s | compressed MB | speed vs tar\\|gzip -6 |");
    println!("|---|---:|---:|---:|---:|");
    for (label, seconds, size) in &rows {
        println!(
            "| {label} | {seconds:.2} | {:.0} | {:.1} | {:.2}x |",
            megabytes / seconds,
            *size as f64 / (1 << 20) as f64,
            gzip / seconds
        );
    }
}
