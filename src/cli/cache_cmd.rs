//! `kiln cache …`.

use clap::Subcommand;

use super::open_cache;
use super::ui::{Ui, print_out};

/// Cache subcommands.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Delete blobs, layer content and scratch space no image or layer record uses.
    Prune,
    /// Print the cache directory.
    Dir,
}

/// Run a cache subcommand.
pub fn run(command: CacheCommand, ui: &Ui) -> anyhow::Result<i32> {
    let cache = open_cache()?;
    match command {
        CacheCommand::Dir => print_out(&cache.root().display().to_string()),
        CacheCommand::Prune => {
            let pruned = cache.prune()?;
            ui.info(&format!(
                "removed {} blobs ({} bytes) and {} scratch entries",
                pruned.blobs, pruned.bytes, pruned.scratch
            ));
        }
    }
    Ok(0)
}
