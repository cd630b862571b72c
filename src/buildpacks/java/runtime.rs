//! The Java runtime the image runs with: the stack's JRE package as a layer at the image
//! root (with `/usr/bin/java` and `cacerts` made by the stack), or — when the user says the
//! run image already has one — nothing but its version.

use serde_json::json;

use super::error::JavaError;
use super::java_version::runtime_major;
use crate::buildpack::{
    BuildContext, BuildpackFailure, EnvAction, Layer, LayerContent, RuntimeLayer,
};

/// Says the run image already has Java of this major version (`java` on PATH).
pub const RUN_IMAGE_VERSION_VAR: &str = "BP_JAVA_RUN_IMAGE_VERSION";

/// Where the runtime comes from.
#[derive(Debug, Clone)]
pub enum RuntimeSource {
    /// A resolved stack package set, materialized as the `jre` layer.
    Stack {
        /// The JRE package.
        package: String,
        /// Its version.
        version: String,
        /// The resolved closure.
        resolved: RuntimeLayer,
    },
    /// The run image has it.
    RunImage,
}

/// The Java runtime of the image.
#[derive(Debug, Clone)]
pub struct JavaRuntime {
    /// Major version.
    pub major: u32,
    /// For messages: the package (or the run image).
    pub description: String,
    /// Where it comes from.
    pub source: RuntimeSource,
}

impl JavaRuntime {
    /// Find the runtime: the user's statement about the run image, else the stack's JRE.
    pub fn find(context: &BuildContext<'_>, packages: &[String]) -> Result<Self, BuildpackFailure> {
        if let Some(value) = context.env.user_var(RUN_IMAGE_VERSION_VAR) {
            let major = value
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|major| (1..=99).contains(major))
                .ok_or_else(|| JavaError::BadRunImageVersion {
                    value: value.to_owned(),
                })?;
            return Ok(Self {
                major,
                description: format!("the run image's Java, as {RUN_IMAGE_VERSION_VAR} says"),
                source: RuntimeSource::RunImage,
            });
        }
        let runtimes = context.runtimes.ok_or(JavaError::NoJavaRuntime)?;
        let package = packages.first().cloned().unwrap_or_default();
        let version =
            runtimes
                .package_version(&package)?
                .ok_or_else(|| JavaError::RuntimeUnavailable {
                    package: package.clone(),
                })?;
        let major = runtime_major(&version).ok_or_else(|| JavaError::RuntimeVersion {
            package: package.clone(),
            version: version.clone(),
        })?;
        let names: Vec<&str> = packages.iter().map(String::as_str).collect();
        let resolved = runtimes.resolve(&names)?;
        Ok(Self {
            major,
            description: format!("{package} {version}"),
            source: RuntimeSource::Stack {
                package,
                version,
                resolved,
            },
        })
    }

    /// The `jre` layer (restored when the resolved package set is unchanged), carrying the
    /// container defaults in `JAVA_TOOL_OPTIONS` as a default: a user's own
    /// `JAVA_TOOL_OPTIONS` at run time replaces them.
    pub fn layer(
        &self,
        context: &BuildContext<'_>,
        java_tool_options: &str,
    ) -> Result<Option<Layer>, BuildpackFailure> {
        let RuntimeSource::Stack {
            package,
            version,
            resolved,
        } = &self.source
        else {
            return Ok(None);
        };
        let metadata = json!({ "package": package, "version": version, "runtime": resolved.key });
        let mut layer = context.layers.root_layer("jre", metadata)?;
        if layer.is_restored() {
            context.log(&format!(
                "reusing the Java runtime layer ({package} {version})"
            ));
        } else {
            context.log(&format!(
                "adding the Java runtime layer ({package} {version}, {} packages)",
                resolved.packages.len()
            ));
            layer.content = LayerContent::Root(Some(
                context
                    .runtimes
                    .ok_or(JavaError::NoJavaRuntime)?
                    .materialize(resolved)?,
            ));
        }
        // A restored layer brings its recorded env back: set it afresh so it follows this kiln.
        layer
            .env
            .retain(|change| change.name != "JAVA_TOOL_OPTIONS");
        layer.set_env("JAVA_TOOL_OPTIONS", EnvAction::Default, java_tool_options);
        Ok(Some(layer))
    }
}
