//! The host tools build steps run with: Node and npm from the build machine, and Yarn or pnpm
//! at the version the app names — the host's when it matches, else installed with npm into a
//! cached layer (Corepack is not relied on: it downloads outside npm's configuration).

use std::path::Path;

use serde_json::json;

use super::command::Tool;
use super::error::{NodeError, Step};
use super::package_manager::{Choice, PackageManager, ResolvedManager, version_fits};
use super::semver::Version;
use crate::buildpack::{BuildContext, Layer, LayerTypes};

/// The host's Node version.
pub fn host_node(context: &BuildContext<'_>) -> Result<Version, NodeError> {
    let output = probe(context, Path::new("node"), "node")?;
    Version::parse(&output).ok_or(NodeError::HostNodeVersion { output })
}

fn probe(context: &BuildContext<'_>, program: &Path, tool: &str) -> Result<String, NodeError> {
    Tool {
        program,
        args: vec!["--version".to_owned()],
        env: Vec::new(),
    }
    .probe(&context.env, context.app_dir)
    .ok_or_else(|| NodeError::HostToolMissing {
        tool: tool.to_owned(),
    })
}

/// The package manager ready to run. A Yarn or pnpm installed into a tool layer adds that
/// (cache-only) layer to `layers`.
pub fn resolve_manager(
    context: &BuildContext<'_>,
    choice: &Choice,
    layers: &mut Vec<Layer>,
) -> Result<ResolvedManager, NodeError> {
    let manager = choice.manager;
    let npm_version = probe(context, Path::new("npm"), "npm")?;
    if manager == PackageManager::Npm {
        if let Some(wanted) = &choice.version
            && !version_fits(wanted, &npm_version)
        {
            context.log(&format!(
                "warning: packageManager asks for npm {wanted}; using this machine's npm {npm_version}"
            ));
        }
        return Ok(ResolvedManager {
            manager,
            program: "npm".into(),
            version: npm_version,
        });
    }
    let wanted = choice
        .version
        .clone()
        .unwrap_or_else(|| "latest".to_owned());
    let name = Path::new(manager.name());
    if let Ok(host_version) = probe(context, name, manager.name())
        && version_fits(&wanted, &host_version)
    {
        return Ok(ResolvedManager {
            manager,
            program: name.to_path_buf(),
            version: host_version,
        });
    }
    let layer = context
        .layers
        .dir_layer(
            manager.name(),
            LayerTypes::CACHE_ONLY,
            json!({ "version": wanted }),
        )
        .map_err(|source| NodeError::PrepareLayer {
            layer: manager.name().to_owned(),
            source,
        })?;
    let dir = layer
        .dir()
        .expect("dir_layer makes a directory layer")
        .clone();
    let program = dir.join("node_modules/.bin").join(manager.name());
    if !layer.is_restored() || !program.is_file() {
        context.log(&format!(
            "installing {manager}@{wanted} with npm {npm_version}"
        ));
        // A local install into the layer: `--global --prefix` would make npm read its global
        // configuration (registry, CA file) from that prefix instead of the machine's.
        fs_err::write(dir.join("package.json"), "{\"private\": true}\n").map_err(|source| {
            NodeError::Relocate {
                path: dir.clone(),
                source,
            }
        })?;
        let install = Tool {
            program: Path::new("npm"),
            args: vec![
                "install".to_owned(),
                "--no-save".to_owned(),
                "--no-package-lock".to_owned(),
                "--no-audit".to_owned(),
                "--no-fund".to_owned(),
                format!("{manager}@{wanted}"),
            ],
            env: Vec::new(),
        };
        install
            .run(&context.env, &dir, context.log)
            .map_err(|error| {
                error.during(Step::InstallManager {
                    manager,
                    version: wanted.clone(),
                })
            })?;
    }
    let version = probe(context, &program, manager.name())?;
    context.log(&format!("using {manager} {version}"));
    layers.push(layer);
    Ok(ResolvedManager {
        manager,
        program,
        version,
    })
}
