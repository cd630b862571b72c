//! Node from the stack: its version (checked against what the app asks for) and the runtime
//! layer at the image root.

use serde_json::json;

use super::engines::{Requirement, upstream_version};
use super::error::NodeError;
use super::semver::Version;
use crate::buildpack::{BuildContext, EnvAction, Layer, LayerContent, LayerState, RuntimeProvider};

/// The stack package whose version is Node's.
pub const NODE_PACKAGE: &str = "nodejs";

/// The Node the stack offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackNode {
    /// Upstream release.
    pub version: Version,
    /// The package version (`18.19.0+dfsg-6~deb12u2`).
    pub package_version: String,
}

/// Ask the stack which Node it offers.
pub fn stack_node(runtimes: &dyn RuntimeProvider) -> Result<StackNode, NodeError> {
    let package_version = runtimes
        .package_version(NODE_PACKAGE)
        .map_err(NodeError::ResolveRuntime)?
        .ok_or_else(|| NodeError::StackLacksNode {
            package: NODE_PACKAGE.to_owned(),
        })?;
    let version =
        upstream_version(&package_version).ok_or_else(|| NodeError::StackNodeVersion {
            package: NODE_PACKAGE.to_owned(),
            version: package_version.clone(),
        })?;
    Ok(StackNode {
        version,
        package_version,
    })
}

/// Every requirement must allow the stack's Node; the first that does not is the error.
pub fn check_requirements(
    requirements: &[Requirement],
    stack: &StackNode,
) -> Result<(), NodeError> {
    match requirements
        .iter()
        .find(|requirement| !requirement.allows(&stack.version))
    {
        None => Ok(()),
        Some(requirement) => Err(NodeError::NodeUnsatisfied {
            origin: requirement.origin.describe(),
            wanted: requirement.text.clone(),
            offered: stack.version,
            debian_version: stack.package_version.clone(),
        }),
    }
}

/// The runtime layer: the closure of `packages` over the run image, unpacked at the root.
/// Reused while the resolved package set is the same.
pub fn runtime_layer(
    context: &BuildContext<'_>,
    runtimes: &dyn RuntimeProvider,
    packages: &[&str],
    stack: &StackNode,
) -> Result<Layer, NodeError> {
    let resolved = runtimes
        .resolve(packages)
        .map_err(NodeError::ResolveRuntime)?;
    let metadata = json!({ "nodejs": stack.package_version, "packages": resolved.key });
    let mut layer = context
        .layers
        .root_layer("nodejs", metadata)
        .map_err(|source| NodeError::PrepareLayer {
            layer: "nodejs".to_owned(),
            source,
        })?;
    match &layer.state {
        LayerState::Restored => {
            context.log(&format!("reusing the Node {} runtime layer", stack.version))
        }
        LayerState::Empty { reasons } => {
            context.log(&format!(
                "adding Node {} from {} stack packages ({})",
                stack.version,
                resolved.packages.len(),
                reasons.join(", ")
            ));
            layer.content = LayerContent::Root(Some(
                runtimes
                    .materialize(&resolved)
                    .map_err(NodeError::ResolveRuntime)?,
            ));
            // Libraries such as Express pick production behaviour from it; `default` lets
            // `kiln run -e NODE_ENV=…` override it.
            layer.set_env("NODE_ENV", EnvAction::Default, "production");
        }
    }
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildpack::{BuildpackFailure, RuntimeLayer};
    use crate::layer::LayerEntries;

    struct FixedStack(Option<&'static str>);

    impl RuntimeProvider for FixedStack {
        fn resolve(&self, _packages: &[&str]) -> Result<RuntimeLayer, BuildpackFailure> {
            unreachable!("not resolved in these tests")
        }

        fn materialize(&self, _runtime: &RuntimeLayer) -> Result<LayerEntries, BuildpackFailure> {
            unreachable!("not materialized in these tests")
        }

        fn package_version(&self, _package: &str) -> Result<Option<String>, BuildpackFailure> {
            Ok(self.0.map(str::to_owned))
        }
    }

    #[test]
    fn requirements_are_checked_against_the_stack_release() {
        let stack = stack_node(&FixedStack(Some("18.19.0+dfsg-6~deb12u2"))).unwrap();
        assert_eq!(stack.version, Version::new(18, 19, 0));
        let fine = Requirement::from_engines(">=18").unwrap();
        let too_new = Requirement::from_engines(">=22").unwrap();
        assert!(check_requirements(std::slice::from_ref(&fine), &stack).is_ok());
        let error = check_requirements(&[fine, too_new], &stack).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains(">=22") && text.contains("18.19.0") && text.contains("deb12u2"),
            "{text}"
        );
    }

    #[test]
    fn a_stack_without_node_is_a_clear_error() {
        assert!(matches!(
            stack_node(&FixedStack(None)),
            Err(NodeError::StackLacksNode { .. })
        ));
        assert!(matches!(
            stack_node(&FixedStack(Some("weird"))),
            Err(NodeError::StackNodeVersion { .. })
        ));
    }
}
