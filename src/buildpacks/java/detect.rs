//! Detection: a `pom.xml` makes a Maven app. The plan says what kiln read from it, so
//! `kiln detect` shows the module, main class and Java version the build will use.

use std::collections::BTreeMap;

use super::BUILT_MODULE_VAR;
use super::java_version::{compiler_request, java_version_file};
use super::project::Project;
use crate::buildpack::{DetectContext, Detection, PlanEntry};

/// Decide whether the app is a Maven project.
pub fn detect(context: &DetectContext<'_>) -> Detection {
    if !context.source.exists("pom.xml") {
        let gradle = ["build.gradle", "build.gradle.kts"]
            .iter()
            .any(|file| context.source.exists(file));
        return Detection::fail(if gradle {
            "no pom.xml (Gradle builds are not supported yet)"
        } else {
            "no pom.xml"
        });
    }
    // A project kiln cannot make sense of is still a Java app: detection passes and says
    // why, and the build stops with the full error and its hint.
    let project = match Project::load(context.source) {
        Ok(project) => project,
        Err(error) => {
            return Detection::pass(format!("found pom.xml, but {}", with_causes(&error)));
        }
    };
    let module = match project.app_module(context.env.user_var(BUILT_MODULE_VAR)) {
        Ok(module) => module,
        Err(error) => {
            return Detection::pass(format!("found pom.xml, but {}", with_causes(&error)));
        }
    };
    let mut maven = BTreeMap::new();
    maven.insert("packaging".to_owned(), project.root.packaging.clone());
    if project.is_multi_module() {
        maven.insert("module".to_owned(), module.dir.clone());
        maven.insert("modules".to_owned(), project.module_dirs().join(", "));
    }
    if let Some(main_class) = module
        .pom
        .main_class
        .as_deref()
        .and_then(|class| module.pom.interpolate(class))
    {
        maven.insert("main_class".to_owned(), main_class);
    }
    let mut plan = vec![PlanEntry {
        name: "maven".to_owned(),
        metadata: maven,
    }];
    let compiler = compiler_request(&module.pom);
    let java_file = context
        .source
        .read_to_string(".java-version")
        .ok()
        .flatten()
        .map(|text| java_version_file(&text));
    let mut jdk = BTreeMap::new();
    if let Some(requirement) = compiler.requirement {
        jdk.insert("version".to_owned(), requirement.major.to_string());
        jdk.insert("from".to_owned(), requirement.origin);
    }
    match java_file {
        Some(Ok(requirement)) => {
            jdk.insert(
                "java_version_file".to_owned(),
                requirement.major.to_string(),
            );
        }
        Some(Err(error)) => {
            jdk.insert("java_version_file".to_owned(), error.to_string());
        }
        None => {}
    }
    if !jdk.is_empty() {
        plan.push(PlanEntry {
            name: "jdk".to_owned(),
            metadata: jdk,
        });
    }
    let reason = if project.is_multi_module() {
        format!(
            "found pom.xml with modules {}; building `{}`",
            project.module_dirs().join(", "),
            module.dir
        )
    } else {
        "found pom.xml".to_owned()
    };
    Detection::Pass { reason, plan }
}

/// An error and its causes on one line (`kiln detect` prints one reason per buildpack).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}
