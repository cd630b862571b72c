//! `kiln detect`.

use std::path::PathBuf;

use clap::Args;

use super::ui::{Ui, print_out};
use crate::buildpack::{BuildEnv, DetectContext, Detection, Target};
use crate::pipeline::{Detector, PipelineError};
use crate::source::SourceTree;

/// Arguments of `kiln detect`.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// The app directory.
    #[arg(long, short = 'p', default_value = ".")]
    pub path: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Only try these buildpacks (repeatable).
    #[arg(long = "buildpack", short = 'b')]
    pub buildpacks: Vec<String>,
    /// Build-time variable NAME=VALUE visible to detection.
    #[arg(long = "env", short = 'e')]
    pub env: Vec<String>,
}

/// Run `kiln detect`: exit 0 when a group matched, 1 when none did.
pub fn run(args: DetectArgs, _ui: &Ui) -> anyhow::Result<i32> {
    let source = SourceTree::open(&args.path).map_err(PipelineError::from)?;
    let mut env = source.project().build_env.clone();
    for entry in &args.env {
        let (name, value) = crate::env::parse_env_arg(entry)?;
        crate::env::set_var(&mut env, &name, value);
    }
    let env = BuildEnv::new(env);
    let target = Target {
        os: "linux".to_owned(),
        arch: "amd64".to_owned(),
        distro: Some(("debian".to_owned(), "12".to_owned())),
    };
    let detector = Detector::new(&args.buildpacks, &source.project().group)?;
    let report = detector.detect(&DetectContext {
        source: &source,
        env: &env,
        target: &target,
    })?;
    if args.json {
        print_out(&serde_json::to_string_pretty(&report)?);
    } else {
        for (index, group) in report.groups.iter().enumerate() {
            let verdict = if group.passed { "pass" } else { "fail" };
            print_out(&format!("group {} [{verdict}]", index + 1));
            for member in &group.verdicts {
                let (mark, reason) = match &member.detection {
                    Detection::Pass { reason, .. } => ("pass", reason),
                    Detection::Fail { reason } => ("fail", reason),
                };
                let optional = if member.optional { " (optional)" } else { "" };
                print_out(&format!(
                    "  {mark}  {}@{}{optional}: {reason}",
                    member.id, member.version
                ));
            }
        }
        match report.chosen {
            Some(index) => print_out(&format!(
                "chosen: group {} ({})",
                index + 1,
                report.buildpacks.join(", ")
            )),
            None => print_out("chosen: none"),
        }
        if !report.also_matched.is_empty() {
            print_out(&format!(
                "also matched: {} (earlier groups win; use --buildpack to choose)",
                report.also_matched.join(", ")
            ));
        }
    }
    Ok(if report.chosen.is_some() { 0 } else { 1 })
}
