//! What the app's files say before anything runs: package.json, the lockfile and package
//! manager, the Node it asks for, workspaces, and the start command if it is already clear.
//! Detection prints this as the plan; the build starts from the same facts.

use std::collections::BTreeMap;

use super::engines::{Requirement, RequirementOrigin};
use super::error::NodeError;
use super::lockfile::{LOCKFILE_NAMES, Lockfile};
use super::package_json::PackageJson;
use super::package_manager::{Choice, choose};
use super::start::{StartCommand, infer};
use super::workspaces::{pnpm_workspace_patterns, workspace_dirs};
use crate::buildpack::{Detection, PlanEntry};
use crate::source::SourceTree;

/// The facts a Node build starts from.
#[derive(Debug, Clone)]
pub struct AppFacts {
    /// package.json.
    pub package: PackageJson,
    /// Package manager and lockfile.
    pub choice: Choice,
    /// Node version requirements, in precedence order.
    pub requirements: Vec<Requirement>,
    /// Workspace package directories.
    pub workspaces: Vec<String>,
    /// Whether a Procfile supplies the processes.
    pub has_procfile: bool,
}

/// Read the facts, or `None` when there is no package.json.
pub fn analyze(source: &SourceTree) -> Result<Option<AppFacts>, NodeError> {
    let Some(text) = read(source, "package.json")? else {
        return Ok(None);
    };
    let package = PackageJson::parse(&text, "package.json")?;
    let mut lockfiles = Vec::new();
    for name in LOCKFILE_NAMES {
        if let Some(text) = read(source, name)? {
            lockfiles.push(Lockfile::parse(name, text)?);
        }
    }
    let choice = choose(&package, lockfiles)?;

    let mut requirements = Vec::new();
    if let Some(range) = &package.engines_node {
        requirements.push(Requirement::from_engines(range)?);
    }
    for (file, origin) in [
        (".nvmrc", RequirementOrigin::Nvmrc),
        (".node-version", RequirementOrigin::NodeVersionFile),
    ] {
        if let Some(text) = read(source, file)? {
            requirements.push(Requirement::from_version_file(origin, &text)?);
        }
    }

    let mut patterns = package.workspaces.clone();
    if let Some(text) = read(source, "pnpm-workspace.yaml")? {
        patterns.extend(pnpm_workspace_patterns(&text));
    }
    let workspaces = if patterns.is_empty() {
        Vec::new()
    } else {
        let files = source.files().map_err(|source| NodeError::ReadSource {
            file: "the app directory".to_owned(),
            source: Box::new(source),
        })?;
        workspace_dirs(&patterns, &files)
    };
    Ok(Some(AppFacts {
        package,
        choice,
        requirements,
        workspaces,
        has_procfile: source.exists("Procfile"),
    }))
}

/// Read a file of the app, `None` when absent.
pub fn read(source: &SourceTree, file: &str) -> Result<Option<String>, NodeError> {
    source
        .read_to_string(file)
        .map_err(|error| NodeError::ReadSource {
            file: file.to_owned(),
            source: Box::new(error),
        })
}

/// The detection verdict with its plan.
pub fn detection(source: &SourceTree) -> Result<Detection, NodeError> {
    let Some(facts) = analyze(source)? else {
        return Ok(Detection::fail("no package.json"));
    };
    let choice = &facts.choice;
    let mut plan = Vec::new();

    let mut node = BTreeMap::new();
    match facts.requirements.first() {
        Some(requirement) => {
            node.insert("requested".to_owned(), requirement.text.clone());
            node.insert("from".to_owned(), requirement.origin.describe().to_owned());
        }
        None => {
            node.insert("requested".to_owned(), "any".to_owned());
        }
    }
    node.insert("source".to_owned(), "stack package nodejs".to_owned());
    plan.push(entry("node", node));

    let mut modules = BTreeMap::new();
    modules.insert("package_manager".to_owned(), choice.manager.to_string());
    if let Some(version) = &choice.version {
        modules.insert("version".to_owned(), version.clone());
    }
    modules.insert(
        "lockfile".to_owned(),
        choice
            .lockfile
            .as_ref()
            .map_or("none".to_owned(), Lockfile::describe),
    );
    if !facts.package.has_dependencies() {
        modules.insert("install".to_owned(), "nothing: no dependencies".to_owned());
    }
    if !facts.workspaces.is_empty() {
        modules.insert("workspaces".to_owned(), facts.workspaces.join(", "));
    }
    if let Some(build) = facts.package.script("build") {
        modules.insert("build_script".to_owned(), build.to_owned());
    }
    plan.push(entry("node_modules", modules));

    let mut start = BTreeMap::new();
    if facts.has_procfile {
        start.insert("from".to_owned(), "Procfile".to_owned());
    } else if let Some(command) = infer(&facts.package, |path| source.exists(path)) {
        start.insert("from".to_owned(), command.origin().to_owned());
        start.insert("command".to_owned(), command.command_line());
    } else if facts.package.script("build").is_some() {
        start.insert(
            "from".to_owned(),
            "decided after the build script".to_owned(),
        );
    } else {
        start.insert("from".to_owned(), "none found".to_owned());
    }
    plan.push(entry("start", start));

    let reason = format!("found package.json ({}, {})", choice.manager, choice.reason);
    Ok(Detection::Pass { reason, plan })
}

fn entry(name: &str, metadata: BTreeMap<String, String>) -> PlanEntry {
    PlanEntry {
        name: name.to_owned(),
        metadata,
    }
}

/// Start command of a Procfile-less app, judged on the built app directory.
pub fn start_command(facts: &AppFacts, app_dir: &std::path::Path) -> Option<StartCommand> {
    infer(&facts.package, |path| app_dir.join(path).exists())
}
