//! Regression: writing several large layers in parallel on a small rayon pool must finish.
//! Each layer's gzip encoder compresses batches in the background; when that background work
//! needed the same pool whose every worker was waiting for it, the build hung forever.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use kiln::layer::{Compression, LayerEntries, Owner, write_layers};
use kiln::oci::BlobStore;
use support::noise;

#[test]
fn parallel_layers_on_a_two_thread_pool_finish() {
    // This test binary's global pool: two workers, so two layers occupy all of them.
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .expect("the global pool is configured once, here");
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::for_layout(dir.path());
    let layers: Vec<LayerEntries> = (0..3)
        .map(|index| {
            let mut entries = LayerEntries::new();
            // Several batches of (2 × pool size) incompressible 1 MiB chunks per layer, so every
            // chunk is real work.
            entries
                .add_bytes("blob", noise(index, 12 << 20), 0o644, Owner::ROOT)
                .unwrap();
            entries
        })
        .collect();
    let (done, finished) = mpsc::channel();
    let writer = std::thread::spawn(move || {
        let refs: Vec<&LayerEntries> = layers.iter().collect();
        let written = write_layers(&refs, Compression::Gzip, &store).map(|layers| layers.len());
        let _ = done.send(written.map_err(|error| error.to_string()));
    });
    match finished.recv_timeout(Duration::from_secs(120)) {
        Ok(result) => assert_eq!(result, Ok(3)),
        Err(_) => panic!("writing three layers in parallel did not finish in 120 s (deadlock)"),
    }
    writer.join().unwrap();
}
