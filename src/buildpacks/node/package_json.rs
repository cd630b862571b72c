//! `package.json`: the fields the Node buildpack decides by, read with errors that name the
//! field that is wrong.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::error::NodeError;

/// Fields that decide what `node_modules` holds; their hash keys the dependency layer when
/// no lockfile pins the tree, and guards it when one does.
const DEPENDENCY_FIELDS: &[&str] = &[
    "dependencies",
    "devDependencies",
    "optionalDependencies",
    "peerDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "overrides",
    "resolutions",
    "workspaces",
    "pnpm",
];

/// A parsed `package.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageJson {
    /// `name`.
    pub name: Option<String>,
    /// `main`: the entry module.
    pub main: Option<String>,
    /// `scripts`.
    pub scripts: BTreeMap<String, String>,
    /// `engines.node`.
    pub engines_node: Option<String>,
    /// `packageManager` (`pnpm@9.1.0+sha512…`).
    pub package_manager: Option<String>,
    /// Workspace globs (`workspaces` as a list, or Yarn's `workspaces.packages`).
    pub workspaces: Vec<String>,
    /// `dependencies`.
    pub dependencies: BTreeMap<String, String>,
    /// `devDependencies`.
    pub dev_dependencies: BTreeMap<String, String>,
    /// `optionalDependencies`.
    pub optional_dependencies: BTreeMap<String, String>,
    dependency_fields: Map<String, Value>,
}

impl PackageJson {
    /// Parse the text of `file` (a path relative to the app, for messages).
    pub fn parse(text: &str, file: &str) -> Result<Self, NodeError> {
        let value: Value =
            serde_json::from_str(text).map_err(|source| NodeError::ParsePackageJson {
                file: file.to_owned(),
                source,
            })?;
        let Value::Object(object) = value else {
            return Err(field_error(file, "(top level)", "a JSON object"));
        };
        let fields = Fields {
            file,
            object: &object,
        };
        let workspaces = match object.get("workspaces") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(_)) => fields.string_list("workspaces")?,
            Some(Value::Object(yarn)) => match yarn.get("packages") {
                None => Vec::new(),
                Some(packages) => string_list(file, "workspaces.packages", packages)?,
            },
            Some(_) => return Err(field_error(file, "workspaces", "a list of globs")),
        };
        let engines_node = match object.get("engines") {
            None | Some(Value::Null) => None,
            Some(Value::Object(engines)) => match engines.get("node") {
                None | Some(Value::Null) => None,
                Some(Value::String(range)) => Some(range.clone()),
                Some(_) => return Err(field_error(file, "engines.node", "a version range string")),
            },
            Some(_) => return Err(field_error(file, "engines", "an object")),
        };
        let dependency_fields = DEPENDENCY_FIELDS
            .iter()
            .filter_map(|name| {
                object
                    .get(*name)
                    .map(|value| ((*name).to_owned(), value.clone()))
            })
            .collect();
        Ok(Self {
            name: fields.string("name")?,
            main: fields.string("main")?,
            scripts: fields.string_map("scripts")?,
            engines_node,
            package_manager: fields.string("packageManager")?,
            workspaces,
            dependencies: fields.string_map("dependencies")?,
            dev_dependencies: fields.string_map("devDependencies")?,
            optional_dependencies: fields.string_map("optionalDependencies")?,
            dependency_fields,
        })
    }

    /// A script's command, when defined and not blank.
    pub fn script(&self, name: &str) -> Option<&str> {
        self.scripts
            .get(name)
            .map(|script| script.trim())
            .filter(|script| !script.is_empty())
    }

    /// Whether anything needs installing.
    pub fn has_dependencies(&self) -> bool {
        !(self.dependencies.is_empty()
            && self.dev_dependencies.is_empty()
            && self.optional_dependencies.is_empty()
            && self.workspaces.is_empty())
    }

    /// The dependency-deciding fields as canonical JSON (keys sorted), for hashing.
    pub fn dependency_fields_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.dependency_fields).unwrap_or_default()
    }
}

fn field_error(file: &str, field: &str, expected: &'static str) -> NodeError {
    NodeError::PackageJsonField {
        file: file.to_owned(),
        field: field.to_owned(),
        expected,
    }
}

struct Fields<'a> {
    file: &'a str,
    object: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn string(&self, name: &str) -> Result<Option<String>, NodeError> {
        match self.object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(field_error(self.file, name, "a string")),
        }
    }

    fn string_map(&self, name: &str) -> Result<BTreeMap<String, String>, NodeError> {
        match self.object.get(name) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(entries)) => entries
                .iter()
                .map(|(key, value)| match value {
                    Value::String(text) => Ok((key.clone(), text.clone())),
                    _ => Err(field_error(self.file, &format!("{name}.{key}"), "a string")),
                })
                .collect(),
            Some(_) => Err(field_error(self.file, name, "an object of strings")),
        }
    }

    fn string_list(&self, name: &str) -> Result<Vec<String>, NodeError> {
        match self.object.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(value) => string_list(self.file, name, value),
        }
    }
}

fn string_list(file: &str, name: &str, value: &Value) -> Result<Vec<String>, NodeError> {
    let Value::Array(items) = value else {
        return Err(field_error(file, name, "a list of strings"));
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(text) => Ok(text.clone()),
            _ => Err(field_error(file, name, "a list of strings")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_that_matter() {
        let package = PackageJson::parse(
            r#"{"name":"a","main":"app.js","scripts":{"start":"node app.js","build":"  "},
                "engines":{"node":">=18"},"packageManager":"pnpm@9.1.0",
                "workspaces":{"packages":["packages/*"]},"dependencies":{"ms":"^2.1.3"}}"#,
            "package.json",
        )
        .unwrap();
        assert_eq!(package.main.as_deref(), Some("app.js"));
        assert_eq!(package.script("start"), Some("node app.js"));
        assert_eq!(package.script("build"), None, "a blank script is no script");
        assert_eq!(package.engines_node.as_deref(), Some(">=18"));
        assert_eq!(package.workspaces, ["packages/*"]);
        assert!(package.has_dependencies());
    }

    #[test]
    fn names_the_wrong_field() {
        let error = PackageJson::parse(r#"{"scripts":{"start":1}}"#, "package.json").unwrap_err();
        assert!(error.to_string().contains("scripts.start"), "{error}");
        let error = PackageJson::parse("[1]", "package.json").unwrap_err();
        assert!(matches!(error, NodeError::PackageJsonField { .. }));
        let error = PackageJson::parse("{\"name\": \"a\",}", "package.json").unwrap_err();
        assert!(matches!(error, NodeError::ParsePackageJson { .. }));
    }

    #[test]
    fn dependency_hash_ignores_scripts_but_not_dependencies() {
        let a = PackageJson::parse(
            r#"{"scripts":{"start":"node a"},"dependencies":{"ms":"2"}}"#,
            "p",
        )
        .unwrap();
        let b = PackageJson::parse(
            r#"{"dependencies":{"ms":"2"},"scripts":{"start":"node b"}}"#,
            "p",
        )
        .unwrap();
        let c = PackageJson::parse(r#"{"dependencies":{"ms":"3"}}"#, "p").unwrap();
        assert_eq!(a.dependency_fields_json(), b.dependency_fields_json());
        assert_ne!(a.dependency_fields_json(), c.dependency_fields_json());
    }
}
