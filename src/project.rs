//! `project.toml`, the project descriptor (CNB schema 0.2, with pack's 0.1 `[build]` form).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What kiln uses from `project.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectDescriptor {
    /// gitignore-style patterns; only matching files are part of the app.
    pub include: Vec<String>,
    /// gitignore-style patterns; matching files are left out of the app.
    pub exclude: Vec<String>,
    /// Build-time environment (`[[io.buildpacks.build.env]]`).
    pub build_env: Vec<(String, String)>,
    /// Buildpack ids of `[[io.buildpacks.group]]`, replacing the builder's order.
    pub group: Vec<String>,
    /// `io.buildpacks.builder`.
    pub builder: Option<String>,
}

/// Why `project.toml` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{path} sets both `include` and `exclude`; they are mutually exclusive")]
    IncludeAndExclude { path: PathBuf },
    #[error("{path}: build env entry `{name}` is not a valid variable name")]
    BadEnvName { path: PathBuf, name: String },
}

#[derive(Debug, Default, Deserialize)]
struct RawProject {
    #[serde(rename = "io", default)]
    io: RawIo,
    /// Schema 0.1 (legacy) form.
    #[serde(default)]
    build: Option<RawBuildpacksTable>,
}

#[derive(Debug, Default, Deserialize)]
struct RawIo {
    #[serde(default)]
    buildpacks: RawBuildpacksTable,
}

#[derive(Debug, Default, Deserialize)]
struct RawBuildpacksTable {
    #[serde(default)]
    include: Option<Vec<String>>,
    #[serde(default)]
    exclude: Option<Vec<String>>,
    #[serde(default)]
    builder: Option<String>,
    #[serde(default)]
    group: Vec<RawGroupEntry>,
    /// 0.1 form: `[[build.buildpacks]]`.
    #[serde(default)]
    buildpacks: Vec<RawGroupEntry>,
    /// 0.2 form: `[[io.buildpacks.build.env]]`.
    #[serde(default)]
    build: Option<RawBuild>,
    /// 0.1 form: `[[build.env]]`.
    #[serde(default)]
    env: Vec<RawEnv>,
}

#[derive(Debug, Default, Deserialize)]
struct RawBuild {
    #[serde(default)]
    env: Vec<RawEnv>,
}

#[derive(Debug, Deserialize)]
struct RawEnv {
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
struct RawGroupEntry {
    #[serde(default)]
    id: Option<String>,
}

impl ProjectDescriptor {
    /// Read `project.toml` in `app_dir`, or the default when there is none.
    pub fn load(app_dir: &Path) -> Result<Self, ProjectError> {
        let path = app_dir.join("project.toml");
        if !path.is_file() {
            return Ok(Self::default());
        }
        let text = fs_err::read_to_string(&path).map_err(|source| ProjectError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(&text, &path)
    }

    /// Parse descriptor text (`path` is for errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ProjectError> {
        let raw: RawProject = toml::from_str(text).map_err(|source| ProjectError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let mut table = raw.io.buildpacks;
        if let Some(legacy) = raw.build {
            table.include = table.include.or(legacy.include);
            table.exclude = table.exclude.or(legacy.exclude);
            table.group.extend(legacy.buildpacks);
            table.env.extend(legacy.env);
        }
        if table.include.is_some() && table.exclude.is_some() {
            return Err(ProjectError::IncludeAndExclude {
                path: path.to_path_buf(),
            });
        }
        let mut env_entries = table.build.map(|build| build.env).unwrap_or_default();
        env_entries.extend(table.env);
        let mut build_env = Vec::new();
        for entry in env_entries {
            if !crate::env::is_valid_name(&entry.name) {
                return Err(ProjectError::BadEnvName {
                    path: path.to_path_buf(),
                    name: entry.name,
                });
            }
            build_env.push((entry.name, entry.value));
        }
        Ok(Self {
            include: table.include.unwrap_or_default(),
            exclude: table.exclude.unwrap_or_default(),
            build_env,
            group: table
                .group
                .into_iter()
                .filter_map(|entry| entry.id)
                .collect(),
            builder: table.builder,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_schema_02_fields() {
        let text = r#"
[_]
schema-version = "0.2"
[io.buildpacks]
exclude = ["*.log", "spec/"]
[[io.buildpacks.build.env]]
name = "BP_GO_TARGETS"
value = "./cmd/server"
[[io.buildpacks.group]]
id = "kiln/python"
"#;
        let project = ProjectDescriptor::parse(text, Path::new("project.toml")).unwrap();
        assert_eq!(project.exclude, ["*.log", "spec/"]);
        assert_eq!(
            project.build_env,
            [("BP_GO_TARGETS".to_owned(), "./cmd/server".to_owned())]
        );
        assert_eq!(project.group, ["kiln/python"]);
    }

    #[test]
    fn include_and_exclude_together_is_an_error() {
        let text = "[io.buildpacks]\ninclude = [\"a\"]\nexclude = [\"b\"]\n";
        assert!(matches!(
            ProjectDescriptor::parse(text, Path::new("project.toml")),
            Err(ProjectError::IncludeAndExclude { .. })
        ));
    }

    #[test]
    fn legacy_build_table_is_read() {
        let text = "[build]\ninclude = [\"src/\"]\n[[build.env]]\nname = \"A\"\nvalue = \"1\"\n";
        let project = ProjectDescriptor::parse(text, Path::new("project.toml")).unwrap();
        assert_eq!(project.include, ["src/"]);
        assert_eq!(project.build_env, [("A".to_owned(), "1".to_owned())]);
    }
}
