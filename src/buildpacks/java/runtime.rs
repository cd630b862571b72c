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
    pub fn find(
        context: &BuildContext<'_>,
        packages: &[String],
        exclude: &[String],
    ) -> Result<Self, BuildpackFailure> {
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
        let names: Vec<&str> = packages.iter().map(String::as_str).collect();
        let exclude: Vec<&str> = exclude.iter().map(String::as_str).collect();
        let resolved = runtimes.resolve_excluding(&names, &exclude)?;
        // The resolved set names the JRE's version; it is absent only when the run image
        // already has the package, which the stack answers for cheaply.
        let version = match resolved.packages.get(&package) {
            Some(version) => version.clone(),
            None => runtimes.package_version(&package)?.ok_or_else(|| {
                JavaError::RuntimeUnavailable {
                    package: package.clone(),
                }
            })?,
        };
        let major = runtime_major(&version).ok_or_else(|| JavaError::RuntimeVersion {
            package: package.clone(),
            version: version.clone(),
        })?;
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::buildpack::{
        BuildEnv, BuildpackId, LayerState, LayerStore, RuntimeProvider, Target,
    };
    use crate::layer::{LayerCache, LayerEntries, LayerRecord, Owner, WrittenLayer};
    use crate::source::SourceTree;

    const JRE: &str = "openjdk-17-jre-headless";

    /// A stack with one JRE version that counts how often it unpacks.
    #[derive(Default)]
    struct FakeStack {
        materialized: AtomicUsize,
    }

    impl RuntimeProvider for FakeStack {
        fn resolve(&self, packages: &[&str]) -> Result<RuntimeLayer, BuildpackFailure> {
            let known = packages == [JRE];
            Ok(RuntimeLayer {
                key: "sha256:runtime-key".to_owned(),
                packages: known
                    .then(|| (JRE.to_owned(), "17.0.15+6-1~deb12u1".to_owned()))
                    .into_iter()
                    .collect(),
            })
        }

        fn materialize(&self, _: &RuntimeLayer) -> Result<LayerEntries, BuildpackFailure> {
            self.materialized.fetch_add(1, Ordering::SeqCst);
            let mut entries = LayerEntries::new();
            entries
                .add_symlink(
                    "usr/bin/java",
                    "../lib/jvm/java-17-openjdk-amd64/bin/java",
                    Owner::ROOT,
                )
                .unwrap();
            Ok(entries)
        }

        fn package_version(&self, package: &str) -> Result<Option<String>, BuildpackFailure> {
            Ok((package == JRE).then(|| "17.0.15+6-1~deb12u1".to_owned()))
        }
    }

    struct Fixture {
        app: tempfile::TempDir,
        source: SourceTree,
        cache: tempfile::TempDir,
        target: Target,
    }

    impl Fixture {
        fn new() -> Self {
            let app = tempfile::tempdir().unwrap();
            let source = SourceTree::open(app.path()).unwrap();
            Self {
                app,
                source,
                cache: tempfile::tempdir().unwrap(),
                target: Target {
                    os: "linux".to_owned(),
                    arch: "amd64".to_owned(),
                    distro: None,
                },
            }
        }

        fn context<'a>(
            &'a self,
            stack: Option<&'a dyn RuntimeProvider>,
            env: Vec<(String, String)>,
        ) -> BuildContext<'a> {
            let id = BuildpackId::new("kiln/java").unwrap();
            let layers = LayerStore::new(
                id,
                LayerCache::new(self.cache.path().join("records")),
                self.cache.path().join("staging"),
                false,
            );
            BuildContext {
                source: &self.source,
                app_dir: self.app.path(),
                env: BuildEnv::new(env),
                target: &self.target,
                runtimes: stack,
                run_image_libraries: &[],
                layers,
                log: &|_| {},
            }
        }
    }

    fn tool_options(layer: &Layer) -> Vec<&str> {
        layer
            .env
            .iter()
            .filter(|change| change.name == "JAVA_TOOL_OPTIONS")
            .map(|change| change.value.as_str())
            .collect()
    }

    #[test]
    fn the_stack_jre_becomes_a_root_layer_reused_while_its_packages_stay() {
        let fixture = Fixture::new();
        let stack = FakeStack::default();
        let context = fixture.context(Some(&stack), Vec::new());
        let runtime = JavaRuntime::find(&context, &[JRE.to_owned()], &[]).unwrap();
        assert_eq!(runtime.major, 17);
        assert_eq!(
            runtime.description,
            "openjdk-17-jre-headless 17.0.15+6-1~deb12u1"
        );

        let layer = runtime
            .layer(&context, "-XX:MaxRAMPercentage=75")
            .unwrap()
            .unwrap();
        assert!(matches!(layer.state, LayerState::Empty { .. }));
        assert!(
            matches!(&layer.content, LayerContent::Root(Some(entries)) if entries.contains("usr/bin/java"))
        );
        assert_eq!(tool_options(&layer), ["-XX:MaxRAMPercentage=75"]);
        assert_eq!(
            layer.env[0].action,
            EnvAction::Default,
            "a user's JAVA_TOOL_OPTIONS wins at run time"
        );

        // What the pipeline records after an export; the next build restores from it.
        let blob = crate::oci::Digest::of_bytes(b"jre");
        context
            .layers
            .cache()
            .store(
                "jre",
                LayerRecord {
                    metadata: layer.metadata.clone(),
                    written: Some(WrittenLayer {
                        diff_id: blob.clone(),
                        digest: blob,
                        size: 3,
                        uncompressed_size: 3,
                        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".to_owned(),
                    }),
                    content: None,
                    extra: serde_json::to_value(&layer.env).unwrap(),
                },
                None,
            )
            .unwrap();
        let again = runtime
            .layer(&context, "-XX:MaxRAMPercentage=50")
            .unwrap()
            .unwrap();
        assert!(again.is_restored());
        assert_eq!(
            stack.materialized.load(Ordering::SeqCst),
            1,
            "a restored runtime is not unpacked again"
        );
        assert_eq!(
            tool_options(&again),
            ["-XX:MaxRAMPercentage=50"],
            "recorded env is replaced, not duplicated"
        );
    }

    #[test]
    fn a_run_image_java_needs_no_layer_and_no_stack() {
        let fixture = Fixture::new();
        let env = vec![(RUN_IMAGE_VERSION_VAR.to_owned(), "21".to_owned())];
        let context = fixture.context(None, env);
        let runtime = JavaRuntime::find(&context, &[JRE.to_owned()], &[]).unwrap();
        assert_eq!(runtime.major, 21);
        assert!(runtime.layer(&context, "").unwrap().is_none());

        let context = fixture.context(None, Vec::new());
        let error = JavaRuntime::find(&context, &[JRE.to_owned()], &[]).unwrap_err();
        assert!(error.to_string().contains("no package stack"), "{error}");
        let stack = FakeStack::default();
        let context = fixture.context(Some(&stack), Vec::new());
        let error =
            JavaRuntime::find(&context, &["openjdk-99-jre-headless".to_owned()], &[]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("no `openjdk-99-jre-headless` package"),
            "{error}"
        );
    }
}
