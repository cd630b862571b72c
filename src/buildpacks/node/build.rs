//! The Node build, step by step: facts, runtime, dependencies, start command.

use super::detect::{AppFacts, analyze, read, start_command};
use super::error::NodeError;
use super::install::{DependencyPlan, contribute};
use super::lockfile::npm_sync_problem;
use super::package_manager::PackageManager;
use super::runtime::{check_requirements, runtime_layer, stack_node};
use super::start::calls_package_manager;
use super::toolchain::host_node;
use crate::buildpack::{BuildContext, BuildResult};

/// Build a Node app.
pub fn build(
    context: &mut BuildContext<'_>,
    runtime_packages: &[&str],
) -> Result<BuildResult, NodeError> {
    let facts = analyze(context.source)?.ok_or(NodeError::NoPackageJson)?;
    context.log(&format!(
        "{} ({})",
        facts.choice.manager, facts.choice.reason
    ));
    check_lockfile_sync(&facts)?;

    let runtimes = context.runtimes.ok_or(NodeError::NoRuntimeProvider)?;
    let stack = stack_node(runtimes)?;
    check_requirements(&facts.requirements, &stack)?;
    let mut layers = vec![runtime_layer(context, runtimes, runtime_packages, &stack)?];

    let host = host_node(context)?;
    if host.major != stack.version.major {
        context.log(&format!(
            "note: this machine runs Node {host}, the image Node {}: JavaScript packages are unaffected, native addons are checked",
            stack.version
        ));
    }
    let start_commands = start_commands(context, &facts)?;
    for command in &start_commands {
        if let Some(manager) = calls_package_manager(command) {
            context.log(&format!(
                "warning: the start command `{command}` runs {manager}, which is not in the image; run node or the tool directly"
            ));
        }
    }
    layers.extend(contribute(
        context,
        &DependencyPlan {
            facts: &facts,
            runtime: stack.version,
            host_node: host,
            start_commands,
        },
    )?);

    let processes = if facts.has_procfile {
        context.log("processes come from the Procfile");
        Vec::new()
    } else {
        let start = start_command(&facts, context.app_dir).ok_or(NodeError::NoStartCommand)?;
        context.log(&format!(
            "start: {} (from {})",
            start.command_line(),
            start.origin()
        ));
        vec![start.process()]
    };
    Ok(BuildResult {
        layers,
        processes,
        labels: Vec::new(),
    })
}

/// npm's own check, made before anything is installed so the error names the dependency.
fn check_lockfile_sync(facts: &AppFacts) -> Result<(), NodeError> {
    let Some(lockfile) = &facts.choice.lockfile else {
        return Ok(());
    };
    if facts.choice.manager != PackageManager::Npm {
        return Ok(());
    }
    match npm_sync_problem(&facts.package, lockfile) {
        None => Ok(()),
        Some(detail) => Err(NodeError::LockfileOutOfSync {
            lockfile: lockfile.file.to_owned(),
            manager: PackageManager::Npm,
            detail,
        }),
    }
}

/// The commands the image will start: the Procfile's, else `scripts.start`.
fn start_commands(context: &BuildContext<'_>, facts: &AppFacts) -> Result<Vec<String>, NodeError> {
    if facts.has_procfile {
        let text = read(context.source, "Procfile")?.unwrap_or_default();
        // A malformed Procfile is the Procfile buildpack's error to report.
        let processes = crate::buildpacks::procfile::parse_procfile(&text).unwrap_or_default();
        return Ok(processes
            .into_iter()
            .map(|process| process.command.join(" "))
            .collect());
    }
    Ok(facts
        .package
        .script("start")
        .map(str::to_owned)
        .into_iter()
        .collect())
}
