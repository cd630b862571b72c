//! `kiln inspect`.

use clap::Args;

use super::open_cache;
use super::registry_args::RegistryArgs;
use super::ui::{Ui, print_out};
use crate::images::open_image;
use crate::oci::ImageLocation;
use crate::oci::inspect::{Inspection, inspect};

/// Arguments of `kiln inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image: a store name or any image location.
    pub image: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Run `kiln inspect`.
pub fn run(args: InspectArgs, _ui: &Ui) -> anyhow::Result<i32> {
    let cache = open_cache()?;
    let location = ImageLocation::parse(&args.image)?;
    let image = open_image(&location, &cache, &args.registry.transport())?;
    let inspection = inspect(&image, &cache.blobs(), &location.to_string())?;
    if args.json {
        print_out(&serde_json::to_string_pretty(&inspection)?);
    } else {
        print_human(&inspection);
    }
    Ok(0)
}

fn print_human(inspection: &Inspection) {
    print_out(&format!("Image:      {}", inspection.image));
    print_out(&format!("Digest:     {}", inspection.digest));
    print_out(&format!("Platform:   {}", inspection.platform));
    print_out(&format!(
        "Created:    {}",
        inspection.created.as_deref().unwrap_or("(unset)")
    ));
    if let Some(note) = &inspection.note {
        print_out(&format!("Note:       {note}"));
    }
    if let Some(base) = &inspection.base {
        print_out("Base Image:");
        print_out(&format!("  Name:      {}", base.name));
        print_out(&format!("  Reference: {}", base.reference));
        print_out(&format!("  Top Layer: {}", base.top_layer));
    }
    let verdict = if inspection.rebasable.value {
        "yes"
    } else {
        "no"
    };
    print_out(&format!(
        "Rebasable:  {verdict} ({})",
        inspection.rebasable.reason
    ));
    if let Some(count) = inspection.os_packages {
        print_out(&format!(
            "OS packages: {count} in the base (Debian, recorded in /var/lib/dpkg/status.d)"
        ));
    }
    if !inspection.buildpacks.is_empty() {
        print_out("Buildpacks:");
        for buildpack in &inspection.buildpacks {
            print_out(&format!("  {}@{}", buildpack.id, buildpack.version));
        }
    }
    if !inspection.processes.is_empty() {
        print_out("Processes:");
        for process in &inspection.processes {
            let mark = if process.default { " (default)" } else { "" };
            let shell = if process.direct { "" } else { "sh -c " };
            let command = [process.command.clone(), process.args.clone()]
                .concat()
                .join(" ");
            print_out(&format!("  {}{mark}: {shell}{command}", process.r#type));
        }
    }
    for runtime in &inspection.runtime_packages {
        print_out(&format!("Runtime {}: {}", runtime.layer, runtime.packages));
    }
    print_out("Layers:");
    for (index, layer) in inspection.layers.iter().enumerate() {
        print_out(&format!(
            "  {:>2}. {} {:>10} bytes  {}",
            index + 1,
            &layer.digest[7..19],
            layer.size,
            layer.origin
        ));
    }
}
