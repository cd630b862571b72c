//! The Maven project as the buildpack sees it: the root POM, its modules, and the one jar
//! module that becomes the app.
//!
//! Multi-module decision: kiln builds the module that names a main class (maven-jar-plugin
//! `mainClass`) together with the modules it needs (`-pl MODULE -am`). When none or several
//! do, the build stops with the module list; `BP_MAVEN_BUILT_MODULE=DIR` picks one.

use super::error::JavaError;
use super::pom::Pom;
use crate::source::SourceTree;

/// Nested aggregators deeper than this are not followed (and are surely a mistake).
const MAX_MODULE_DEPTH: usize = 8;

/// A jar module of the reactor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Directory relative to the app root (`""` for a single-module project).
    pub dir: String,
    /// Its POM, with what it inherits from aggregators in the tree filled in.
    pub pom: Pom,
}

/// The project: root POM and every jar module.
#[derive(Debug, Clone)]
pub struct Project {
    /// The root `pom.xml`.
    pub root: Pom,
    /// Jar modules (just the root for a single-module project).
    pub modules: Vec<Module>,
}

impl Project {
    /// Read `pom.xml` and, for an aggregator, every module's POM.
    pub fn load(source: &SourceTree) -> Result<Self, JavaError> {
        let root = read_pom(source, "pom.xml")?;
        let mut modules = Vec::new();
        collect_modules(source, "", &root, 0, &mut modules)?;
        Ok(Self { root, modules })
    }

    /// Whether the root aggregates modules.
    pub fn is_multi_module(&self) -> bool {
        self.root.packaging == "pom"
    }

    /// Module directories, for messages.
    pub fn module_dirs(&self) -> Vec<String> {
        self.modules
            .iter()
            .map(|module| module.dir.clone())
            .collect()
    }

    /// The module to build and run: the user's choice, the only jar module, or the one that
    /// names a main class.
    pub fn app_module(&self, requested: Option<&str>) -> Result<&Module, JavaError> {
        if let Some(requested) = requested {
            let wanted = requested.trim_matches('/');
            return self
                .modules
                .iter()
                .find(|module| module.dir == wanted)
                .ok_or_else(|| JavaError::UnknownModule {
                    requested: requested.to_owned(),
                    modules: self.module_dirs(),
                });
        }
        if !self.is_multi_module() {
            return self.modules.first().ok_or_else(|| JavaError::NoModules {
                path: self.root.path.clone(),
            });
        }
        let runnable: Vec<&Module> = self
            .modules
            .iter()
            .filter(|module| module.pom.main_class.is_some())
            .collect();
        match runnable.as_slice() {
            [only] => Ok(only),
            [] => Err(JavaError::NoRunnableModule {
                modules: self.module_dirs(),
            }),
            several => Err(JavaError::SeveralRunnableModules {
                modules: several.iter().map(|module| module.dir.clone()).collect(),
            }),
        }
    }
}

fn read_pom(source: &SourceTree, path: &str) -> Result<Pom, JavaError> {
    let text = source
        .read_to_string(path)
        .map_err(|source| JavaError::ReadSource {
            path: path.to_owned(),
            source: Box::new(source),
        })?
        .ok_or_else(|| JavaError::PomMissing {
            path: path.to_owned(),
        })?;
    Pom::parse(&text, path)
}

fn collect_modules(
    source: &SourceTree,
    dir: &str,
    pom: &Pom,
    depth: usize,
    out: &mut Vec<Module>,
) -> Result<(), JavaError> {
    match pom.packaging.as_str() {
        "jar" => {
            out.push(Module {
                dir: dir.to_owned(),
                pom: pom.clone(),
            });
            Ok(())
        }
        "pom" if pom.modules.is_empty() && depth == 0 => Err(JavaError::NoModules {
            path: pom.path.clone(),
        }),
        // A nested aggregator without modules (e.g. a BOM) contributes nothing to run.
        "pom" if pom.modules.is_empty() || depth >= MAX_MODULE_DEPTH => Ok(()),
        "pom" => {
            for name in &pom.modules {
                let module_dir = join(dir, name);
                let path = join(&module_dir, "pom.xml");
                if !source.exists(&path) {
                    return Err(JavaError::MissingModulePom {
                        module: name.clone(),
                        parent: pom.path.clone(),
                    });
                }
                let mut module = read_pom(source, &path)?;
                module.inherit(pom);
                collect_modules(source, &module_dir, &module, depth + 1, out)?;
            }
            Ok(())
        }
        // Other packagings of inner modules (e.g. `maven-plugin`) are built but not run.
        _ if depth > 0 => Ok(()),
        other => Err(JavaError::UnsupportedPackaging {
            path: pom.path.clone(),
            packaging: other.to_owned(),
        }),
    }
}

fn join(dir: &str, name: &str) -> String {
    let name = name.trim_matches('/');
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(dir: &str, main: Option<&str>) -> Module {
        Module {
            dir: dir.to_owned(),
            pom: Pom {
                packaging: "jar".to_owned(),
                main_class: main.map(str::to_owned),
                ..Pom::default()
            },
        }
    }

    fn project(modules: Vec<Module>) -> Project {
        Project {
            root: Pom {
                packaging: "pom".to_owned(),
                ..Pom::default()
            },
            modules,
        }
    }

    #[test]
    fn picks_the_only_module_with_a_main_class() {
        let project = project(vec![module("core", None), module("app", Some("a.Main"))]);
        assert_eq!(project.app_module(None).unwrap().dir, "app");
        assert_eq!(project.app_module(Some("core/")).unwrap().dir, "core");
    }

    #[test]
    fn none_several_or_unknown_list_the_modules() {
        let none = project(vec![module("core", None), module("util", None)]);
        assert!(
            matches!(none.app_module(None), Err(JavaError::NoRunnableModule { modules }) if modules == ["core", "util"])
        );
        let several = project(vec![
            module("a", Some("a.A")),
            module("b", Some("b.B")),
            module("c", None),
        ]);
        assert!(
            matches!(several.app_module(None), Err(JavaError::SeveralRunnableModules { modules }) if modules == ["a", "b"])
        );
        assert!(
            matches!(several.app_module(Some("x")), Err(JavaError::UnknownModule { modules, .. }) if modules.len() == 3)
        );
    }
}
