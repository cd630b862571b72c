//! The Java (Maven) buildpack: `mvn package` with the user's settings and a cached local
//! repository, runtime dependency jars in their own layer, the app's jar in `/workspace`,
//! the JRE from the stack, and `java` as the start command.
//!
//! Layers (under `/layers/kiln_java/`): `dependencies` (third-party runtime jars, reused
//! while their bytes are unchanged), `jre` (the stack's JRE at the image root, carrying the
//! `JAVA_TOOL_OPTIONS` container defaults), and the cache-only `maven-repository`. The app
//! layer (`/workspace`) holds the app's jar and, for multi-module projects, its sibling
//! modules' jars in `lib/`.
//!
//! Settings users give with `--env`: `MAVEN_SETTINGS` (a settings.xml; else
//! `~/.m2/settings.xml`), `MAVEN_OPTS` (replaces kiln's fast-JVM default for Maven),
//! `BP_MAVEN_BUILT_MODULE` (the module to run), `BP_JAVA_RUN_IMAGE_VERSION` (the run image
//! already has this Java: add no JRE layer).

mod detect;
mod error;
mod jar;
mod java_version;
mod layers;
mod maven;
mod pom;
mod project;
mod runtime;
mod settings;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::json;

pub use error::JavaError;
pub use runtime::RUN_IMAGE_VERSION_VAR;

use self::java_version::{JavaRequirement, compiler_request, java_version_file};
use self::maven::MavenInvocation;
use self::project::{Module, Project};
use self::runtime::JavaRuntime;
use crate::buildpack::{
    BuildContext, BuildResult, Buildpack, BuildpackDescriptor, BuildpackFailure, DetectContext,
    Detection, Layer, LayerTypes, Process, ProcessType,
};

/// Picks the module of a multi-module project to build and run.
pub const BUILT_MODULE_VAR: &str = "BP_MAVEN_BUILT_MODULE";

/// The app directory in images (CNB's `/workspace`), where the app's jar goes.
const APP_DIR: &str = "/workspace";

/// Maven's `-DoutputDirectory` for runtime jars, inside the app copy (removed with it).
const DEPENDENCIES_OUT: &str = ".kiln-java-dependencies";

static DESCRIPTOR: LazyLock<BuildpackDescriptor> = LazyLock::new(|| {
    BuildpackDescriptor::parse(
        include_str!("../../../buildpacks/kiln/java/buildpack.toml"),
        "kiln/java",
    )
    .expect("the embedded descriptor is valid")
});

/// The `[metadata]` of the embedded descriptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct JavaConfig {
    runtime_packages: Vec<String>,
    runtime_exclude: Vec<String>,
    dependency_plugin: String,
    output_timestamp: String,
    java_tool_options: String,
}

static CONFIG: LazyLock<JavaConfig> = LazyLock::new(|| {
    toml::Value::Table(DESCRIPTOR.metadata.clone())
        .try_into()
        .expect("the embedded descriptor's metadata is valid")
});

/// The Java (Maven) buildpack.
pub struct Java;

impl Buildpack for Java {
    fn descriptor(&self) -> &BuildpackDescriptor {
        &DESCRIPTOR
    }

    fn detect(&self, context: &DetectContext<'_>) -> Result<Detection, BuildpackFailure> {
        Ok(detect::detect(context))
    }

    fn build(&self, context: &mut BuildContext<'_>) -> Result<BuildResult, BuildpackFailure> {
        let config = &*CONFIG;
        let project = Project::load(context.source)?;
        let module = project
            .app_module(context.env.user_var(BUILT_MODULE_VAR))?
            .clone();
        if project.is_multi_module() {
            context.log(&format!(
                "building module `{}` of {}",
                module.dir,
                project.module_dirs().join(", ")
            ));
        }
        let runtime =
            JavaRuntime::find(context, &config.runtime_packages, &config.runtime_exclude)?;
        let release = check_java_version(context, &module, &runtime)?;
        let settings = settings::load(&context.env)?;
        context.log(&match &settings {
            Some(settings) => settings.summary(),
            None => "no Maven settings (MAVEN_SETTINGS unset, no ~/.m2/settings.xml): Maven uses its defaults".to_owned(),
        });

        let repository = context.layers.dir_layer(
            "maven-repository",
            LayerTypes::CACHE_ONLY,
            json!({ "layout": "maven2" }),
        )?;
        let repository_dir = repository.dir().cloned().unwrap_or_default();
        context.log(if repository.is_restored() {
            "reusing the cached Maven local repository"
        } else {
            "starting a new Maven local repository"
        });
        for stale in project
            .modules
            .iter()
            .map(|module| context.app_dir.join(&module.dir).join("target"))
        {
            // Classes compiled on the user's machine must not leak into the build.
            if stale.is_dir() {
                fs_err::remove_dir_all(&stale).map_err(JavaError::PrepareWorkspace)?;
            }
        }
        let dependencies_out = context.app_dir.join(DEPENDENCIES_OUT);
        let invocation = MavenInvocation {
            settings: settings.as_ref().map(|settings| settings.path.clone()),
            local_repository: repository_dir.clone(),
            release,
            output_timestamp: match module.pom.property("project.build.outputTimestamp") {
                Some(_) => None,
                None => Some(config.output_timestamp.clone()),
            },
            module: project.is_multi_module().then(|| module.dir.clone()),
            dependency_plugin: dependency_plugin(&module, &config.dependency_plugin),
            dependencies_dir: dependencies_out.clone(),
        };
        let log = |line: &str| context.log(line);
        if let Err(error) = maven::run(
            &context.env,
            context.app_dir,
            &invocation.args(),
            settings.as_ref(),
            &log,
        ) {
            maven::forget_failed_downloads(&repository_dir);
            return Err(error.into());
        }

        let mut built = arrange(context, &project, &module, &runtime, &dependencies_out)?;
        built.layers.push(repository);
        if let Some(jre) = runtime.layer(context, &config.java_tool_options)? {
            built.layers.push(jre);
        }
        Ok(BuildResult {
            layers: built.layers,
            processes: built.process.into_iter().collect(),
            labels: Vec::new(),
        })
    }
}

/// Check what the app asks for against the runtime; returns the release kiln passes to the
/// compiler (the runtime's, unless the POM sets release or target itself).
fn check_java_version(
    context: &BuildContext<'_>,
    module: &Module,
    runtime: &JavaRuntime,
) -> Result<Option<u32>, JavaError> {
    let compiler = compiler_request(&module.pom);
    if let Some(unresolved) = &compiler.unresolved {
        context.log(&format!(
            "cannot resolve {unresolved} here (a parent outside the project?): not checked"
        ));
    }
    let mut requirements: Vec<JavaRequirement> = compiler.requirement.into_iter().collect();
    let java_file = context
        .source
        .read_to_string(".java-version")
        .map_err(|source| JavaError::ReadSource {
            path: ".java-version".to_owned(),
            source: Box::new(source),
        })?;
    if let Some(text) = java_file {
        requirements.push(java_version_file(&text)?);
    }
    java_version::check(&requirements, runtime.major, &runtime.description)?;
    context.log(&format!(
        "Java runtime: {} (Java {})",
        runtime.description, runtime.major
    ));
    Ok((!compiler.pom_sets_target).then_some(runtime.major))
}

fn dependency_plugin(module: &Module, default: &str) -> String {
    let declared = module
        .pom
        .dependency_plugin_version
        .as_deref()
        .and_then(|version| module.pom.interpolate(version));
    match (declared, default.rsplit_once(':')) {
        (Some(version), Some((coordinates, _))) => format!("{coordinates}:{version}"),
        _ => default.to_owned(),
    }
}

/// What the build left for the image.
struct Built {
    layers: Vec<Layer>,
    process: Option<Process>,
}

/// Split the jars into the dependency layer and the app directory, check their bytecode
/// against the runtime, and name the start command.
fn arrange(
    context: &BuildContext<'_>,
    project: &Project,
    module: &Module,
    runtime: &JavaRuntime,
    dependencies_out: &Path,
) -> Result<Built, BuildpackFailure> {
    let target = context.app_dir.join(&module.dir).join("target");
    let target_label = Path::new(&module.dir).join("target").display().to_string();
    let app_jar = jar::find_app_jar(&target, module.pom.jar_stem().as_deref(), &target_label)?;
    let manifest = jar::read_manifest(&app_jar)?;
    let reactor_stems: Vec<String> = std::iter::once(&project.root)
        .chain(project.modules.iter().map(|module| &module.pom))
        .filter_map(pom::Pom::dependency_file_stem)
        .collect();
    let jars =
        layers::split_dependencies(dependencies_out, &reactor_stems).map_err(JavaError::Arrange)?;

    let mut own_jars = vec![app_jar.clone()];
    own_jars.extend(jars.reactor.iter().cloned());
    check_bytecode(&own_jars, runtime)?;

    let mut layers = Vec::new();
    let mut class_path = Vec::new();
    let jar_name = file_name(&app_jar);
    class_path.push(format!("{APP_DIR}/{jar_name}"));
    if !jars.reactor.is_empty() {
        class_path.push(format!("{APP_DIR}/lib/*"));
    }
    if !jars.external.is_empty() {
        let metadata = layers::dependencies_metadata(&jars.external).map_err(JavaError::Arrange)?;
        let layer =
            context
                .layers
                .dir_layer("dependencies", LayerTypes::LAUNCH_CACHED, metadata)?;
        if layer.is_restored() {
            context.log(&format!(
                "reusing the dependency layer ({} unchanged)",
                jar_count(jars.external.len())
            ));
        } else {
            check_bytecode(&jars.external, runtime)?;
            if let crate::buildpack::LayerState::Empty { reasons } = &layer.state {
                context.log(&format!(
                    "dependency layer: {} ({})",
                    jar_count(jars.external.len()),
                    reasons.join(", ")
                ));
            }
            let dir = layer.dir().cloned().unwrap_or_default();
            layers::move_into(&jars.external, &dir).map_err(JavaError::Arrange)?;
        }
        class_path.push(format!("{}/*", context.layers.image_path(&layer.name)));
        layers.push(layer);
    }

    let mut keep: Vec<(PathBuf, String)> = vec![(app_jar.clone(), jar_name.clone())];
    keep.extend(
        jars.reactor
            .iter()
            .map(|jar| (jar.clone(), format!("lib/{}", file_name(jar)))),
    );
    layers::replace_app_dir(context.app_dir, &keep).map_err(JavaError::Arrange)?;

    let main_class = manifest.main_class.clone().or_else(|| {
        module
            .pom
            .main_class
            .as_deref()
            .and_then(|class| module.pom.interpolate(class))
    });
    let process = match main_class {
        Some(main_class) => {
            let argv: Vec<String> = if class_path.len() == 1 && manifest.main_class.is_some() {
                vec!["java".into(), "-jar".into(), class_path.remove(0)]
            } else {
                vec![
                    "java".into(),
                    "-cp".into(),
                    class_path.join(":"),
                    main_class,
                ]
            };
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            context.log(&format!("process `web`: {}", argv.join(" ")));
            Some(Process::direct(ProcessType::web(), &argv).as_default())
        }
        None if context.source.exists("Procfile") => {
            context.log(&format!(
                "{jar_name} names no main class: the Procfile says how to start the app"
            ));
            None
        }
        None => return Err(JavaError::NoMainClass { jar: jar_name }.into()),
    };
    Ok(Built { layers, process })
}

/// Fail when a jar holds classes for a newer Java than the runtime.
fn check_bytecode(jars: &[PathBuf], runtime: &JavaRuntime) -> Result<(), JavaError> {
    for path in jars {
        if let Some((class, requested)) = jar::newest_class(path)?
            && requested > runtime.major
        {
            return Err(JavaError::ClassTooNew {
                jar: file_name(path),
                class,
                requested,
                available: runtime.major,
            });
        }
    }
    Ok(())
}

fn jar_count(count: usize) -> String {
    if count == 1 {
        "1 jar".to_owned()
    } else {
        format!("{count} jars")
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_configuration_parses() {
        assert_eq!(CONFIG.runtime_packages, ["openjdk-17-jre-headless"]);
        assert!(CONFIG.dependency_plugin.ends_with(":3.5.0"));
        assert_eq!(DESCRIPTOR.id().as_str(), "kiln/java");
    }

    #[test]
    fn a_declared_dependency_plugin_version_wins() {
        let mut module = Module {
            dir: String::new(),
            pom: pom::Pom::default(),
        };
        let default = "org.apache.maven.plugins:maven-dependency-plugin:3.5.0";
        assert_eq!(dependency_plugin(&module, default), default);
        module.pom.dependency_plugin_version = Some("${dep.version}".to_owned());
        module
            .pom
            .properties
            .insert("dep.version".to_owned(), "3.6.1".to_owned());
        assert_eq!(
            dependency_plugin(&module, default),
            "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
        );
    }
}
