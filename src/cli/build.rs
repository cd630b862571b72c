//! `kiln build`.

use std::path::PathBuf;

use clap::Args;

use super::ui::{Ui, print_out};
use super::{CliError, open_cache};
use crate::layer::Compression;
use crate::oci::ImageLocation;
use crate::pipeline::{BlobFrom, BuildRequest, RunImageChoice, creation_time};

/// Arguments of `kiln build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Image name in the local store (e.g. `myapp` or `reg.example/team/app:1`).
    pub name: String,
    /// The app directory.
    #[arg(long, short = 'p', default_value = ".")]
    pub path: PathBuf,
    /// Base image to run on: a store name, oci:DIR[:tag], oci-archive:FILE, docker-archive:FILE, docker://REF.
    #[arg(long)]
    pub run_image: Option<String>,
    /// Use only these buildpacks, in this order (repeatable), e.g. `kiln/python`.
    #[arg(long = "buildpack", short = 'b')]
    pub buildpacks: Vec<String>,
    /// Build-time variable NAME=VALUE (or NAME to copy yours); never stored in the image.
    #[arg(long = "env", short = 'e')]
    pub env: Vec<String>,
    /// File of NAME=VALUE lines for build-time variables.
    #[arg(long = "env-file")]
    pub env_files: Vec<PathBuf>,
    /// Also write the image here: oci:DIR[:tag], oci-archive:FILE[:tag], docker-archive:FILE[:name:tag], docker://REF.
    #[arg(long = "output", short = 'o')]
    pub outputs: Vec<String>,
    /// Push the image to the registry its name points at instead of the local store (uploads
    /// only missing blobs).
    #[arg(long)]
    pub publish: bool,
    /// Reuse the layers of this registry image whose metadata or content is unchanged, without
    /// rebuilding, recompressing or re-uploading them (default with --publish: NAME).
    #[arg(long, value_name = "REF")]
    pub previous_image: Option<String>,
    /// Keep cached layers in this registry image, so builds on other machines reuse them.
    #[arg(long, value_name = "REF")]
    pub cache_image: Option<String>,
    #[command(flatten)]
    pub registry: super::registry_args::RegistryArgs,
    /// The process type the image starts by default.
    #[arg(long, short = 'D')]
    pub default_process: Option<String>,
    /// Image creation time: `now` or unix seconds (default: SOURCE_DATE_EPOCH, else 1980-01-01).
    #[arg(long)]
    pub creation_time: Option<String>,
    /// Layer compression.
    #[arg(long, value_enum, default_value_t = Compression::Gzip)]
    pub compression: Compression,
    /// Rebuild every layer, ignoring the cache.
    #[arg(long)]
    pub clear_cache: bool,
    /// Write a JSON build report (digest, per-layer reuse) to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Run `kiln build`.
pub fn run(args: BuildArgs, ui: &Ui) -> anyhow::Result<i32> {
    let ImageLocation::Store(name) = ImageLocation::parse(&args.name)? else {
        return Err(CliError::Usage(format!(
            "`{}` is a location, not an image name; build `NAME` and add `--output {}`",
            args.name, args.name
        ))
        .into());
    };
    let mut env = Vec::new();
    for file in &args.env_files {
        env.extend(crate::env::parse_env_file(file)?);
    }
    for entry in &args.env {
        let (key, value) = crate::env::parse_env_arg(entry)?;
        crate::env::set_var(&mut env, &key, value);
    }
    let run_image = match &args.run_image {
        Some(text) => RunImageChoice::Location(ImageLocation::parse(text)?),
        None => RunImageChoice::Default,
    };
    let mut outputs = args
        .outputs
        .iter()
        .map(|text| ImageLocation::parse(text))
        .collect::<Result<Vec<_>, _>>()?;
    if args.publish {
        outputs.push(ImageLocation::Registry(args.name.clone()));
    }
    let previous_image = args
        .previous_image
        .clone()
        .or_else(|| args.publish.then(|| args.name.clone()));
    for reference in previous_image.iter().chain(&args.cache_image) {
        crate::registry::Reference::parse(
            reference.strip_prefix("docker://").unwrap_or(reference),
        )?;
    }
    let source_date_epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let request = BuildRequest {
        name,
        app_dir: args.path,
        run_image,
        outputs,
        env,
        buildpacks: args.buildpacks,
        default_process: args.default_process,
        created: creation_time(args.creation_time.as_deref(), source_date_epoch.as_deref())?,
        compression: args.compression,
        clear_cache: args.clear_cache,
        report_path: args.report,
        registry: args.registry.transport(),
        local_store: !args.publish,
        previous_image,
        cache_image: args.cache_image,
    };
    let cache = open_cache()?;
    let log = |line: &str| ui.info(line);
    let outcome = crate::pipeline::build(&request, &cache, &log)?;
    for layer in &outcome.report.layers {
        let status = match (layer.reused, layer.blob_from) {
            (true, BlobFrom::PreviousImage) => "reused from the previous image".to_owned(),
            (true, BlobFrom::Cache) => "reused".to_owned(),
            (true, BlobFrom::Built) => "restored, re-exported".to_owned(),
            (false, BlobFrom::Built) => "built".to_owned(),
            (false, _) => "rebuilt, same content".to_owned(),
        };
        ui.info(&format!(
            "  {}/{}: {status} ({})",
            layer.buildpack,
            layer.name,
            &layer.digest[7..19]
        ));
        if !layer.reasons.is_empty() {
            ui.detail(&format!("      because {}", layer.reasons.join("; ")));
        }
    }
    for output in &outcome.report.outputs {
        match &output.push {
            Some(push) => ui.info(&format!(
                "pushed {} ({}): {} uploaded ({} bytes), {} mounted, {} already there",
                output.destination,
                output.digest,
                push.uploaded,
                push.bytes_uploaded,
                push.mounted,
                push.skipped
            )),
            None => ui.info(&format!("wrote {} ({})", output.destination, output.digest)),
        }
    }
    if let Some(cache_image) = &outcome.report.cache_image
        && let (Some(digest), Some(push)) = (&cache_image.digest, &cache_image.push)
    {
        ui.info(&format!(
            "saved cache image {} ({digest}): {} uploaded ({} bytes)",
            cache_image.reference, push.uploaded, push.bytes_uploaded
        ));
    }
    for warning in &outcome.report.warnings {
        ui.warn(warning);
    }
    print_out(&outcome.report.digest);
    Ok(0)
}
