//! The dependency layer: install with the app's package manager, run the build script, drop
//! devDependencies, check native addons, then move `node_modules` into a cached launch layer
//! keyed by lockfile, dependency fields, package manager and Node versions.
//!
//! With a build script, a second, cache-only layer keeps the full tree (devDependencies
//! included), so a source change reruns the build without reinstalling anything.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::command::Tool;
use super::detect::AppFacts;
use super::error::{NodeError, Step};
use super::native::abi_specific_addons;
use super::package_json::PackageJson;
use super::package_manager::{ResolvedManager, Scope};
use super::relocate::{link_from_app, modules_dir, move_into_layer, remove_app_modules};
use super::semver::Version;
use super::start::programs;
use super::toolchain::resolve_manager;
use super::tree::{copy_tree, move_tree, remove_if_present};
use super::workspaces::{module_roots, package_json_of};
use crate::buildpack::{BuildContext, EnvAction, Layer, LayerState, LayerTypes};

/// The launch layer holding `node_modules`. Not itself named `node_modules`: Node never looks
/// in `…/node_modules/node_modules` (it skips a `node_modules` directory whose parent has that
/// name), so packages inside `/layers/kiln_node/node_modules/node_modules` could not find
/// each other.
pub const MODULES_LAYER: &str = "modules";
/// The cache-only layer with devDependencies, for build scripts.
pub const DEV_MODULES_LAYER: &str = "modules-dev";

/// What the dependency step needs to know.
pub struct DependencyPlan<'a> {
    /// The app's facts.
    pub facts: &'a AppFacts,
    /// Node in the image.
    pub runtime: Version,
    /// Node on this machine (builds native addons, runs scripts).
    pub host_node: Version,
    /// Command lines the image starts (Procfile or `scripts.start`).
    pub start_commands: Vec<String>,
}

/// Install dependencies (or reuse them) and return the layers involved.
pub fn contribute(
    context: &BuildContext<'_>,
    plan: &DependencyPlan<'_>,
) -> Result<Vec<Layer>, NodeError> {
    let facts = plan.facts;
    let app_dir = context.app_dir;
    let roots = module_roots(&facts.workspaces);
    if !remove_app_modules(app_dir, &roots)?.is_empty() {
        context.log("left out node_modules from the source: dependencies are installed for the image's Node");
    }
    let build_script = facts.package.script("build").is_some();
    let mut layers = Vec::new();
    if !facts.package.has_dependencies() {
        context.log("no dependencies to install");
        if build_script {
            let manager = resolve_manager(context, &facts.choice, &mut layers)?;
            // Nothing is installed, so the tool cache may be thrown away afterwards.
            let cache = tempfile::tempdir().map_err(|source| NodeError::Relocate {
                path: std::env::temp_dir(),
                source,
            })?;
            Runner::new(context, &manager, cache.path().to_path_buf(), facts).build_script()?;
        }
        return Ok(layers);
    }

    let manager = resolve_manager(context, &facts.choice, &mut layers)?;
    let cache_layer = dir_layer(
        context,
        &format!("{}-cache", manager.manager),
        LayerTypes::CACHE_ONLY,
        json!({ "manager": manager.manager.name() }),
    )?;
    let runner = Runner::new(context, &manager, layer_dir(&cache_layer), facts);
    layers.push(cache_layer);
    if facts.choice.lockfile.is_none() {
        context.log(&format!(
            "warning: no lockfile, so `{} install` picks dependency versions anew whenever they are reinstalled; commit a lockfile for repeatable images",
            manager.manager
        ));
    }

    let metadata = modules_metadata(context, plan, &manager)?;
    let mut modules = dir_layer(
        context,
        MODULES_LAYER,
        LayerTypes::LAUNCH_CACHED,
        metadata.clone(),
    )?;
    let mut dev = match build_script {
        true => {
            let mut dev_metadata = metadata;
            dev_metadata["scope"] = json!("with devDependencies");
            Some(dir_layer(
                context,
                DEV_MODULES_LAYER,
                LayerTypes::CACHE_ONLY,
                dev_metadata,
            )?)
        }
        false => None,
    };
    let modules_dir_on_disk = layer_dir(&modules);

    match &modules.state {
        LayerState::Restored => {
            context.log("reusing node_modules: lockfile, package manager and Node are unchanged");
            if let Some(dev) = &dev {
                let dev_dir = layer_dir(dev);
                if dev.is_restored() {
                    with_dev_modules(app_dir, &dev_dir, &roots, || runner.build_script())?;
                } else {
                    runner.install(Scope::WithDev)?;
                    runner.build_script()?;
                    move_into_layer_raw(app_dir, &dev_dir, &roots)?;
                }
            }
        }
        LayerState::Empty { reasons } => {
            context.log(&format!(
                "installing dependencies with {} ({})",
                manager.describe(),
                reasons.join(", ")
            ));
            let with_dev = build_script || has_dev_dependencies(facts, app_dir)?;
            runner.install(if with_dev {
                Scope::WithDev
            } else {
                Scope::Production
            })?;
            if build_script {
                runner.build_script()?;
                if let Some(dev) = &mut dev {
                    snapshot_modules(app_dir, &layer_dir(dev), &roots)?;
                }
            }
            if with_dev {
                let dev_tools = dev_tool_names(facts, app_dir)?;
                let needed: Vec<String> = plan
                    .start_commands
                    .iter()
                    .flat_map(|command| programs(command))
                    .filter(|program| dev_tools.contains(program))
                    .collect();
                if needed.is_empty() {
                    runner.prune()?;
                } else {
                    context.log(&format!(
                        "keeping devDependencies: the start command runs {}",
                        needed.join(", ")
                    ));
                }
            }
            check_native_addons(app_dir, plan.host_node, plan.runtime)?;
            move_into_layer(app_dir, &modules_dir_on_disk, &roots)?;
            let image_path = context.layers.image_path(&modules.name);
            modules.set_env(
                "PATH",
                EnvAction::Prepend,
                &format!("{image_path}/node_modules/.bin"),
            );
        }
    }
    let image_path = context.layers.image_path(&modules.name);
    link_from_app(app_dir, &modules_dir_on_disk, &image_path, &roots)?;
    layers.push(modules);
    layers.extend(dev);
    Ok(layers)
}

fn dir_layer(
    context: &BuildContext<'_>,
    name: &str,
    types: LayerTypes,
    metadata: Value,
) -> Result<Layer, NodeError> {
    context
        .layers
        .dir_layer(name, types, metadata)
        .map_err(|source| NodeError::PrepareLayer {
            layer: name.to_owned(),
            source,
        })
}

fn layer_dir(layer: &Layer) -> PathBuf {
    layer
        .dir()
        .expect("dir_layer makes a directory layer")
        .clone()
}

/// The reuse key of `node_modules`. Start programs are part of it because they decide
/// whether devDependencies stay.
fn modules_metadata(
    context: &BuildContext<'_>,
    plan: &DependencyPlan<'_>,
    manager: &ResolvedManager,
) -> Result<Value, NodeError> {
    let facts = plan.facts;
    let mut fields = Sha256::new();
    fields.update(facts.package.dependency_fields_json());
    for workspace in &facts.workspaces {
        if let Some(package) = workspace_package(context.app_dir, workspace)? {
            fields.update(workspace.as_bytes());
            fields.update(package.dependency_fields_json());
        }
    }
    let start_programs: BTreeSet<String> = plan
        .start_commands
        .iter()
        .flat_map(|command| programs(command))
        .collect();
    Ok(json!({
        "lockfile": facts.choice.lockfile.as_ref().map_or("none".to_owned(), |lockfile| format!("{} {}", lockfile.file, lockfile.sha256)),
        "dependencies": hex::encode(fields.finalize()),
        "package_manager": manager.describe(),
        "node": plan.runtime.major.to_string(),
        "build_node": plan.host_node.major.to_string(),
        "arch": context.target.arch,
        "start_programs": start_programs.into_iter().collect::<Vec<_>>().join(" "),
    }))
}

fn workspace_package(app_dir: &Path, workspace: &str) -> Result<Option<PackageJson>, NodeError> {
    let file = package_json_of(workspace);
    match fs_err::read_to_string(app_dir.join(&file)) {
        Ok(text) => PackageJson::parse(&text, &file).map(Some),
        Err(_) => Ok(None),
    }
}

fn has_dev_dependencies(facts: &AppFacts, app_dir: &Path) -> Result<bool, NodeError> {
    if !facts.package.dev_dependencies.is_empty() {
        return Ok(true);
    }
    for workspace in &facts.workspaces {
        if workspace_package(app_dir, workspace)?
            .is_some_and(|package| !package.dev_dependencies.is_empty())
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Commands devDependencies provide: their `bin` names (and package names, which `npx`
/// accepts), read from the installed tree.
fn dev_tool_names(facts: &AppFacts, app_dir: &Path) -> Result<BTreeSet<String>, NodeError> {
    let mut names = BTreeSet::new();
    let mut dev: Vec<String> = facts.package.dev_dependencies.keys().cloned().collect();
    for workspace in &facts.workspaces {
        if let Some(package) = workspace_package(app_dir, workspace)? {
            dev.extend(package.dev_dependencies.keys().cloned());
        }
    }
    for name in dev {
        names.insert(name.rsplit('/').next().unwrap_or(&name).to_owned());
        let manifest = app_dir
            .join("node_modules")
            .join(&name)
            .join("package.json");
        let Ok(text) = fs_err::read_to_string(&manifest) else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match value.get("bin") {
            Some(Value::String(_)) => {
                names.insert(name.rsplit('/').next().unwrap_or(&name).to_owned());
            }
            Some(Value::Object(bins)) => names.extend(bins.keys().cloned()),
            _ => {}
        }
    }
    Ok(names)
}

fn check_native_addons(app_dir: &Path, built: Version, runtime: Version) -> Result<(), NodeError> {
    let compatible = match (
        super::engines::abi_of_major(built.major),
        super::engines::abi_of_major(runtime.major),
    ) {
        (Some(built), Some(runtime)) => built == runtime,
        _ => built.major == runtime.major,
    };
    if compatible {
        return Ok(());
    }
    let addons = abi_specific_addons(app_dir).map_err(|source| NodeError::ScanAddons {
        path: app_dir.to_path_buf(),
        source,
    })?;
    if addons.is_empty() {
        return Ok(());
    }
    Err(NodeError::NativeAddonAbi {
        addons: addons
            .iter()
            .map(|path| path.display().to_string())
            .collect(),
        built,
        runtime,
    })
}

/// Put the cached full trees into the app for `action` (the build script), then back into
/// the cache, whatever the action's outcome. Moves, not copies: both sit on one filesystem.
fn with_dev_modules(
    app_dir: &Path,
    dev_dir: &Path,
    roots: &[String],
    action: impl FnOnce() -> Result<(), NodeError>,
) -> Result<(), NodeError> {
    let mut moved = Vec::new();
    for root in roots {
        let cached = modules_dir(dev_dir, root);
        if cached.is_dir() {
            let target = modules_dir(app_dir, root);
            move_tree(&cached, &target).map_err(|source| NodeError::Relocate {
                path: cached.clone(),
                source,
            })?;
            moved.push((target, cached));
        }
    }
    let outcome = action();
    for (target, cached) in moved {
        move_tree(&target, &cached).map_err(|source| NodeError::Relocate {
            path: target,
            source,
        })?;
    }
    outcome
}

/// Keep a hard-linked copy of the full trees (before pruning) for later builds, replacing
/// whatever the cache held.
fn snapshot_modules(app_dir: &Path, dev_dir: &Path, roots: &[String]) -> Result<(), NodeError> {
    for root in roots {
        let from = modules_dir(app_dir, root);
        let to = modules_dir(dev_dir, root);
        remove_if_present(&to).map_err(|source| NodeError::Relocate {
            path: to.clone(),
            source,
        })?;
        if from.is_dir() {
            copy_tree(&from, &to, true)
                .map_err(|source| NodeError::Relocate { path: from, source })?;
        }
    }
    Ok(())
}

/// Move full trees into the dev cache as they are (their relative links stay valid when they
/// come back to the same place).
fn move_into_layer_raw(app_dir: &Path, dev_dir: &Path, roots: &[String]) -> Result<(), NodeError> {
    for root in roots {
        let from = modules_dir(app_dir, root);
        if from.is_dir() {
            move_tree(&from, &modules_dir(dev_dir, root))
                .map_err(|source| NodeError::Relocate { path: from, source })?;
        }
    }
    Ok(())
}

/// Runs the package manager's commands in the app directory.
struct Runner<'a> {
    context: &'a BuildContext<'a>,
    manager: &'a ResolvedManager,
    cache: PathBuf,
    frozen: bool,
    lockfile: String,
}

impl<'a> Runner<'a> {
    fn new(
        context: &'a BuildContext<'a>,
        manager: &'a ResolvedManager,
        cache: PathBuf,
        facts: &AppFacts,
    ) -> Self {
        Self {
            context,
            manager,
            cache,
            frozen: facts.choice.lockfile.is_some(),
            lockfile: facts
                .choice
                .lockfile
                .as_ref()
                .map_or("package.json".to_owned(), |lockfile| {
                    lockfile.file.to_owned()
                }),
        }
    }

    fn run(&self, args: Vec<String>) -> Result<(), NodeError> {
        let tool = Tool {
            program: &self.manager.program,
            args,
            env: self.manager.env(&self.cache),
        };
        self.context.log(&format!("$ {}", tool.display()));
        tool.run(&self.context.env, self.context.app_dir, self.context.log)
            .map(|_| ())
    }

    fn install(&self, scope: Scope) -> Result<(), NodeError> {
        self.run(self.manager.install_args(self.frozen, scope, &self.cache))
            .map_err(|error| self.install_failure(error))
    }

    fn install_failure(&self, error: NodeError) -> NodeError {
        if let NodeError::ToolFailed { lines, .. } = &error
            && self.frozen
            && self.manager.says_out_of_sync(lines)
        {
            return NodeError::LockfileOutOfSync {
                lockfile: self.lockfile.clone(),
                manager: self.manager.manager,
                detail: format!("{} refused to install from it", self.manager.describe()),
            };
        }
        error.during(Step::InstallDependencies {
            manager: self.manager.describe(),
        })
    }

    fn build_script(&self) -> Result<(), NodeError> {
        self.run(self.manager.run_args("build"))
            .map_err(|error| error.during(Step::BuildScript))
    }

    fn prune(&self) -> Result<(), NodeError> {
        self.run(self.manager.prune_args(self.frozen, &self.cache))
            .map_err(|error| error.during(Step::Prune))
    }
}
