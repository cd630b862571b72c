//! `kiln run`.

use std::path::PathBuf;

use clap::Args;

use super::open_cache;
use super::registry_args::RegistryArgs;
use super::ui::Ui;
use crate::images::open_image;
use crate::oci::ImageLocation;
use crate::run::{
    EXIT_RUNNER_FAILED, RunCommand, RunLayer, RunSpec, parse_env_assignment, parse_env_file,
};

/// Arguments of `kiln run`.
#[derive(Debug, Args)]
#[command(
    after_help = "The app shares the host network: there is no port mapping, so an app \
listening on $PORT listens on the host's $PORT (e.g. `kiln run myapp -e PORT=8080`, then \
`curl 127.0.0.1:8080`).\n\nExit status: the app's own (128+N when signal N ended it); 125 when \
kiln failed before the app started, 126 when the command cannot be executed, 127 when it does \
not exist."
)]
pub struct RunArgs {
    /// The image: a store name or any image location (oci:DIR[:tag], docker://REF, …).
    pub image: String,
    /// Run this process type (`/cnb/process/<type>`) instead of the default one.
    #[arg(long)]
    pub process: Option<String>,
    /// Set a variable NAME=VALUE (or NAME to copy yours), overriding the image's.
    #[arg(long = "env", short = 'e')]
    pub env: Vec<String>,
    /// File of NAME=VALUE lines.
    #[arg(long = "env-file")]
    pub env_files: Vec<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Command and arguments replacing the image's (with --process: arguments of the process).
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// Run `kiln run`: returns the app's exit code; kiln's own failures exit 125–127.
pub fn run(args: RunArgs, _ui: &Ui) -> anyhow::Result<i32> {
    match prepare(&args) {
        Ok((cache, spec)) => match crate::run::run(&cache, &spec) {
            Ok(code) => Ok(code),
            Err(error) => {
                let code = error.exit_code();
                super::render::report(&anyhow::Error::new(error));
                Ok(code)
            }
        },
        Err(error) => {
            super::render::report(&error);
            Ok(EXIT_RUNNER_FAILED)
        }
    }
}

fn prepare(args: &RunArgs) -> anyhow::Result<(crate::cache::Cache, RunSpec)> {
    let cache = open_cache()?;
    let location = ImageLocation::parse(&args.image)?;
    let image = open_image(&location, &cache, &args.registry.transport())?;
    let mut env = Vec::new();
    for file in &args.env_files {
        env.extend(parse_env_file(file)?);
    }
    for entry in &args.env {
        if let Some(pair) = parse_env_assignment(entry)? {
            env.push(pair);
        }
    }
    let command = match (&args.process, args.command.is_empty()) {
        (Some(process_type), _) => RunCommand::Process {
            process_type: process_type.clone(),
            args: args.command.clone(),
        },
        (None, true) => RunCommand::Image,
        (None, false) => RunCommand::Replace(args.command.clone()),
    };
    let layers = image
        .layers(&args.image)?
        .into_iter()
        .map(|layer| RunLayer {
            digest: layer.digest,
            diff_id: layer.diff_id,
            media_type: layer.media_type,
        })
        .collect();
    let spec = RunSpec {
        layers,
        blobs: cache.blobs(),
        config: image.config.clone(),
        command,
        env,
    };
    Ok((cache, spec))
}
