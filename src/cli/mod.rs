//! The command line: clap definitions (one file per command), output and error rendering.

mod base;
mod build;
mod cache_cmd;
mod detect;
mod inspect;
mod rebase;
mod registry_args;
pub mod render;
mod run;
pub mod ui;

use clap::{Parser, Subcommand};

use crate::cache::Cache;
use crate::diagnostic::{Diagnose, ErrorClass};
use ui::Ui;

/// kiln turns a source tree into a runnable, rebasable OCI image: no Dockerfile, no daemon, no root.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Only print errors and results.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Print why layers were rebuilt and other details.
    #[arg(long, short, global = true, conflicts_with = "quiet")]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Detect, build and export an image of the app.
    Build(Box<build::BuildArgs>),
    /// Show which buildpacks match the app, and why.
    Detect(detect::DetectArgs),
    /// Run an image rootless, without a daemon (shares the host network).
    Run(run::RunArgs),
    /// Show an image's base, rebasability, buildpacks, layers and processes.
    Inspect(inspect::InspectArgs),
    /// Move an image onto a new (patched) base without rebuilding.
    Rebase(rebase::RebaseArgs),
    /// Assemble the run image from the signed Debian archive (`kiln base build`).
    #[command(subcommand)]
    Base(base::BaseCommand),
    /// Manage kiln's cache and local image store.
    #[command(subcommand)]
    Cache(cache_cmd::CacheCommand),
}

/// Errors of the command line itself.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
}

impl Diagnose for CliError {
    fn class(&self) -> ErrorClass {
        ErrorClass::User
    }
}

/// Parse arguments and run; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() {
                render::EXIT_USAGE
            } else {
                render::EXIT_OK
            };
            let _ = error.print();
            return code;
        }
    };
    let ui = Ui::new(cli.quiet, cli.verbose);
    let result = match cli.command {
        Command::Build(args) => build::run(*args, &ui),
        Command::Detect(args) => detect::run(args, &ui),
        Command::Run(args) => run::run(args, &ui),
        Command::Inspect(args) => inspect::run(args, &ui),
        Command::Rebase(args) => rebase::run(args, &ui),
        Command::Base(command) => base::run(command, &ui),
        Command::Cache(command) => cache_cmd::run(command, &ui),
    };
    match result {
        Ok(code) => code,
        Err(error) => render::report(&error),
    }
}

/// Open the cache at `$KILN_HOME` (or the XDG default).
fn open_cache() -> anyhow::Result<Cache> {
    Ok(Cache::open_default()?)
}
