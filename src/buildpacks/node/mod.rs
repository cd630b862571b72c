//! The Node.js buildpack: apps with a package.json. Node comes from the stack; dependencies
//! are installed on the build machine with npm, Yarn 1 or pnpm into a cached layer; the start
//! command is inferred when there is no Procfile.

mod build;
mod command;
mod detect;
mod engines;
mod error;
mod install;
mod lockfile;
mod native;
mod package_json;
mod package_manager;
mod relocate;
mod runtime;
mod semver;
mod start;
mod toolchain;
mod tree;
mod workspaces;

use std::sync::LazyLock;

pub use error::NodeError;
pub use install::{DEV_MODULES_LAYER, MODULES_LAYER};
pub use package_manager::PackageManager;

use crate::buildpack::{
    BuildContext, BuildResult, Buildpack, BuildpackDescriptor, BuildpackFailure, DetectContext,
    Detection,
};

static DESCRIPTOR: LazyLock<BuildpackDescriptor> = LazyLock::new(|| {
    BuildpackDescriptor::parse(
        include_str!("../../../buildpacks/kiln/node/buildpack.toml"),
        "kiln/node",
    )
    .expect("the embedded descriptor is valid")
});

/// The app directory inside images (CNB's `/workspace`); links into the dependency layer are
/// written relative to it.
const APP_DIR: &str = "/workspace";

/// The Node.js buildpack.
pub struct Node;

impl Node {
    /// Stack packages of the runtime layer, from the descriptor.
    fn runtime_packages(&self) -> Vec<&str> {
        let listed: Vec<&str> = DESCRIPTOR
            .metadata
            .get("runtime-packages")
            .and_then(toml::Value::as_array)
            .map(|packages| packages.iter().filter_map(toml::Value::as_str).collect())
            .unwrap_or_default();
        if listed.is_empty() {
            vec![runtime::NODE_PACKAGE]
        } else {
            listed
        }
    }
}

impl Buildpack for Node {
    fn descriptor(&self) -> &BuildpackDescriptor {
        &DESCRIPTOR
    }

    fn detect(&self, context: &DetectContext<'_>) -> Result<Detection, BuildpackFailure> {
        Ok(detect::detection(context.source)?)
    }

    fn build(&self, context: &mut BuildContext<'_>) -> Result<BuildResult, BuildpackFailure> {
        let packages = self.runtime_packages();
        Ok(build::build(context, &packages)?)
    }
}
