//! Everything the Java buildpack can fail with, and all of its user-facing hints in one
//! exhaustive match.

use std::path::PathBuf;

use crate::diagnostic::{Diagnose, ErrorClass};

/// Java buildpack errors.
#[derive(Debug, thiserror::Error)]
pub enum JavaError {
    #[error("cannot read {path}")]
    ReadSource {
        path: String,
        #[source]
        source: Box<crate::source::SourceError>,
    },
    #[error("{path} is missing")]
    PomMissing { path: String },
    #[error("{path} is not well-formed XML")]
    MalformedPom {
        path: String,
        #[source]
        source: roxmltree::Error,
    },
    #[error("{path} is not a Maven POM: its root element is <{root}>, not <project>")]
    NotAPom { path: String, root: String },
    #[error("{path} has packaging `{packaging}`; kiln builds runnable jars (packaging `jar`)")]
    UnsupportedPackaging { path: String, packaging: String },
    #[error("{path} has packaging `pom` but lists no <modules>")]
    NoModules { path: String },
    #[error("module `{module}` listed in {parent} has no pom.xml")]
    MissingModulePom { module: String, parent: String },
    #[error("no module of this multi-module project names a main class (modules: {})", modules.join(", "))]
    NoRunnableModule { modules: Vec<String> },
    #[error("several modules name a main class: {}", modules.join(", "))]
    SeveralRunnableModules { modules: Vec<String> },
    #[error("BP_MAVEN_BUILT_MODULE=`{requested}` is not a jar module of this project (modules: {})", modules.join(", "))]
    UnknownModule {
        requested: String,
        modules: Vec<String>,
    },
    #[error(".java-version reads `{text}`, which is not a Java version")]
    BadJavaVersionFile { text: String },
    #[error("{origin} asks for Java {requested}, but the image runs Java {available} ({runtime})")]
    JavaTooNew {
        origin: String,
        requested: u32,
        available: u32,
        runtime: String,
    },
    #[error("the run image has no package stack to take a Java runtime from")]
    NoJavaRuntime,
    #[error("BP_JAVA_RUN_IMAGE_VERSION=`{value}` is not a Java major version")]
    BadRunImageVersion { value: String },
    #[error("the stack offers no `{package}` package for the Java runtime")]
    RuntimeUnavailable { package: String },
    #[error("cannot tell the Java version of the stack's `{package}` {version}")]
    RuntimeVersion { package: String, version: String },
    #[error("{origin} names the Maven settings file {path}, which does not exist")]
    SettingsMissing { origin: String, path: PathBuf },
    #[error("cannot read the Maven settings {path}")]
    ReadSettings {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the Maven settings {path} are not well-formed XML")]
    MalformedSettings {
        path: PathBuf,
        #[source]
        source: roxmltree::Error,
    },
    #[error("`mvn` was not found on PATH")]
    MavenMissing,
    #[error("cannot run `mvn`")]
    RunMaven(#[source] std::io::Error),
    #[error("Maven could not reach the repository `{repository}` ({url}): {cause}")]
    RepositoryUnreachable {
        repository: String,
        url: String,
        cause: String,
        settings: Option<PathBuf>,
    },
    #[error("the repository `{repository}` ({url}) refused Maven's credentials: {cause}")]
    RepositoryUnauthorized {
        repository: String,
        url: String,
        cause: String,
    },
    #[error("Maven could not find {artifact} in `{repository}` ({url})")]
    ArtifactMissing {
        artifact: String,
        repository: String,
        url: String,
    },
    #[error("the local JDK cannot compile for Java {release}: {message}")]
    JdkTooOld { release: u32, message: String },
    #[error("`mvn package` failed ({status}){}", if errors.is_empty() { String::new() } else { format!(":\n{}", errors.join("\n")) })]
    MavenFailed { status: String, errors: Vec<String> },
    #[error("Maven built no jar in {dir}")]
    NoJar { dir: String },
    #[error("Maven built several jars in {dir} ({}) and none is named after the project", jars.join(", "))]
    SeveralJars { dir: String, jars: Vec<String> },
    #[error("cannot read the jar {path}")]
    ReadJar {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("the jar {jar} names no main class, so kiln cannot tell how to start the app")]
    NoMainClass { jar: String },
    #[error(
        "{jar} contains {class} compiled for Java {requested}, but the image runs Java {available}"
    )]
    ClassTooNew {
        jar: String,
        class: String,
        requested: u32,
        available: u32,
    },
    #[error("cannot prepare the app copy for Maven")]
    PrepareWorkspace(#[source] std::io::Error),
    #[error("cannot arrange the built jars")]
    Arrange(#[source] std::io::Error),
}

impl Diagnose for JavaError {
    fn class(&self) -> ErrorClass {
        use JavaError::*;
        match self {
            RunMaven(_) | PrepareWorkspace(_) | Arrange(_) => ErrorClass::Internal,
            ReadSource { .. }
            | PomMissing { .. }
            | MalformedPom { .. }
            | NotAPom { .. }
            | UnsupportedPackaging { .. }
            | NoModules { .. }
            | MissingModulePom { .. }
            | NoRunnableModule { .. }
            | SeveralRunnableModules { .. }
            | UnknownModule { .. }
            | BadJavaVersionFile { .. }
            | JavaTooNew { .. }
            | NoJavaRuntime
            | BadRunImageVersion { .. }
            | RuntimeUnavailable { .. }
            | RuntimeVersion { .. }
            | SettingsMissing { .. }
            | ReadSettings { .. }
            | MalformedSettings { .. }
            | MavenMissing
            | RepositoryUnreachable { .. }
            | RepositoryUnauthorized { .. }
            | ArtifactMissing { .. }
            | JdkTooOld { .. }
            | MavenFailed { .. }
            | NoJar { .. }
            | SeveralJars { .. }
            | ReadJar { .. }
            | NoMainClass { .. }
            | ClassTooNew { .. } => ErrorClass::User,
        }
    }

    fn hint(&self) -> Option<String> {
        use JavaError::*;
        let text: &str = match self {
            ReadSource { .. }
            | RunMaven(_)
            | PrepareWorkspace(_)
            | Arrange(_)
            | ReadSettings { .. }
            | RuntimeVersion { .. } => return None,
            JavaTooNew { available, .. } => {
                return Some(format!(
                    "compile for Java {available} or lower \
                     (e.g. <maven.compiler.release>{available}</maven.compiler.release>)"
                ));
            }
            ClassTooNew { available, .. } => {
                return Some(format!(
                    "use a version of that dependency built for Java {available} or lower"
                ));
            }
            RepositoryUnreachable {
                settings: Some(path),
                ..
            } => {
                return Some(format!(
                    "check the <mirror>/<repository> URLs in {} and that the repository is up; \
                     set MAVEN_SETTINGS to use another settings.xml",
                    path.display()
                ));
            }
            RepositoryUnreachable { settings: None, .. } => {
                "no Maven settings were found (MAVEN_SETTINGS is unset and ~/.m2/settings.xml \
                 is missing), so Maven used Maven Central: point MAVEN_SETTINGS at a \
                 settings.xml with a <mirror> of your repository manager"
            }
            MalformedPom { .. } => {
                "fix the XML at the position shown; `mvn validate` reports the same"
            }
            PomMissing { .. } => "a Maven project has a pom.xml at its root",
            NotAPom { .. } => "a Maven project's pom.xml starts with <project>",
            UnsupportedPackaging { .. } => {
                "package the app as an executable jar (`<packaging>jar</packaging>` with a \
                 main class), or add a Procfile"
            }
            NoModules { .. } => {
                "list the modules in <modules>, or use `<packaging>jar</packaging>`"
            }
            MissingModulePom { .. } => "remove the module from <modules> or add its pom.xml",
            NoRunnableModule { .. } => {
                "name the main class in the app module's maven-jar-plugin \
                 (<configuration><archive><manifest><mainClass>), or choose the module with \
                 --env BP_MAVEN_BUILT_MODULE=DIR"
            }
            SeveralRunnableModules { .. } | UnknownModule { .. } => {
                "choose the module to run with --env BP_MAVEN_BUILT_MODULE=DIR"
            }
            BadJavaVersionFile { .. } => "write a major version such as `17` in .java-version",
            NoJavaRuntime => {
                "build on kiln's default Debian run image (omit --run-image), or, when your run \
                 image already has `java` on PATH, say which version with \
                 --env BP_JAVA_RUN_IMAGE_VERSION=17"
            }
            BadRunImageVersion { .. } => "use a major version such as 17",
            RuntimeUnavailable { .. } => {
                "check the builder's Debian suites; bookworm ships openjdk-17-jre-headless"
            }
            SettingsMissing { .. } => {
                "point MAVEN_SETTINGS at an existing settings.xml, or unset it"
            }
            MalformedSettings { .. } => "fix the XML of the settings file at the position shown",
            MavenMissing => "install Maven (Debian: `apt-get install maven`) and a JDK",
            RepositoryUnauthorized { .. } => {
                "put the repository's credentials in <servers> of your settings.xml; variables \
                 such as ${env.REPO_PASSWORD} there must be passed with --env REPO_PASSWORD"
            }
            ArtifactMissing { .. } => {
                "check the dependency's coordinates, or make the repository (or its mirror) serve it"
            }
            JdkTooOld { .. } => {
                "install a newer JDK on the build machine (javac compiles the app here)"
            }
            MavenFailed { .. } => {
                "the Maven output above shows the failing step; `mvn -B package` reproduces it"
            }
            NoJar { .. } | SeveralJars { .. } => {
                "kiln runs the jar of the project; set <build><finalName> to pick one"
            }
            ReadJar { .. } => "the jar is damaged; build again",
            NoMainClass { .. } => {
                "configure maven-jar-plugin with \
                 <archive><manifest><mainClass>com.example.Main</mainClass>, or add a Procfile \
                 (`web: java -cp app.jar com.example.Main`)"
            }
        };
        Some(text.to_owned())
    }
}
