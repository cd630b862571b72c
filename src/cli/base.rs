//! `kiln base build`: assemble the builder's run image from the signed Debian archive and
//! write it as a one-layer base image (local store, and any `--output`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::open_cache;
use super::ui::{Ui, print_out};
use crate::export::exporter_for;
use crate::layer::Compression;
use crate::oci::ImageLocation;
use crate::pipeline::creation_time;
use crate::pipeline::debian::{DEFAULT_BASE_NAME, base_image};
use crate::stack::{BuilderStack, LockMode, MirrorOverrides, assemble_run_image};

/// `kiln base …` subcommands.
#[derive(Debug, Subcommand)]
pub enum BaseCommand {
    /// Assemble the run image from Debian packages (pinned by the lock) and store it.
    Build(BaseBuildArgs),
}

/// Arguments of `kiln base build`.
#[derive(Debug, Args)]
pub struct BaseBuildArgs {
    /// A builder.toml with a [stack] section (default: the embedded bookworm builder).
    #[arg(long)]
    pub builder: Option<PathBuf>,
    /// Re-resolve against fresh Debian indexes and rewrite the lock.
    #[arg(long, conflicts_with = "frozen")]
    pub update: bool,
    /// Use the lock only; fail when it is missing or does not match the builder.
    #[arg(long)]
    pub frozen: bool,
    /// Lock file to use instead of the one kept in the cache (e.g. one committed beside the builder).
    #[arg(long)]
    pub lock: Option<PathBuf>,
    /// Name in the local image store.
    #[arg(long, default_value = DEFAULT_BASE_NAME)]
    pub tag: String,
    /// Also write the image here: oci:DIR[:tag], oci-archive:FILE[:tag], docker-archive:FILE[:name:tag].
    #[arg(long = "output", short = 'o')]
    pub outputs: Vec<String>,
    /// Also push the base to this registry reference (teams build against it by digest).
    #[arg(long, value_name = "REF")]
    pub publish: Option<String>,
    #[command(flatten)]
    pub registry: super::registry_args::RegistryArgs,
    /// Image creation time: `now` or unix seconds (default: SOURCE_DATE_EPOCH, else 1980-01-01).
    #[arg(long)]
    pub creation_time: Option<String>,
    /// Layer compression.
    #[arg(long, value_enum, default_value_t = Compression::Gzip)]
    pub compression: Compression,
}

/// Run a `kiln base` subcommand.
pub fn run(command: BaseCommand, ui: &Ui) -> anyhow::Result<i32> {
    match command {
        BaseCommand::Build(args) => build(args, ui),
    }
}

fn build(args: BaseBuildArgs, ui: &Ui) -> anyhow::Result<i32> {
    let mut stack = match &args.builder {
        Some(path) => BuilderStack::load(path)?,
        None => BuilderStack::parse(
            crate::pipeline::builder::DEFAULT_BUILDER_TOML,
            std::path::Path::new("builders/bookworm/builder.toml"),
            MirrorOverrides::from_env(),
        )?,
    };
    stack.lock_file = args.lock.clone();
    let mode = match (args.update, args.frozen) {
        (true, _) => LockMode::Update,
        (_, true) => LockMode::Frozen,
        _ => LockMode::Prefer,
    };
    let created = creation_time(
        args.creation_time.as_deref(),
        std::env::var("SOURCE_DATE_EPOCH").ok().as_deref(),
    )?;
    let mut outputs = vec![ImageLocation::Store(args.tag.clone())];
    for text in &args.outputs {
        outputs.push(ImageLocation::parse(text)?);
    }
    if let Some(reference) = &args.publish {
        outputs.push(ImageLocation::Registry(reference.clone()));
    }
    let transport = args.registry.transport();
    let cache = open_cache()?;
    let _gc = cache.lock_shared(crate::cache::GC_LOCK)?;
    let spinner = ui.spinner("assembling the run image from Debian packages");
    let run_image = assemble_run_image(&stack, &cache, mode)?;
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    for package in &run_image.packages {
        ui.detail(&format!(
            "  {} {} ({})",
            package.name, package.version, package.suite
        ));
    }
    let blobs = cache.blobs();
    let image = base_image(&run_image, args.compression, &created, &blobs)?;
    ui.info(&format!(
        "{} packages, package set {}",
        run_image.packages.len(),
        run_image.package_set_digest
    ));
    for location in &outputs {
        let exported =
            exporter_for(location, &cache, &args.tag, &transport).export(&image, &blobs)?;
        ui.info(&format!(
            "wrote {} ({})",
            exported.destination, exported.digest
        ));
    }
    print_out(&image.manifest_digest.to_string());
    Ok(0)
}
