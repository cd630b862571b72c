//! The user's Maven settings: `$MAVEN_SETTINGS` when set, else `~/.m2/settings.xml`. Maven
//! itself applies them (mirrors, proxies, servers, offline); kiln reads only what it reports
//! on (which repositories a build talks to) and never copies the file into an image, since
//! it often holds credentials.

use std::path::{Path, PathBuf};

use super::error::JavaError;
use super::pom::{child, elements, text_of};
use crate::buildpack::BuildEnv;

/// The environment variable naming a settings file.
pub const SETTINGS_VAR: &str = "MAVEN_SETTINGS";

/// A `<mirror>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// `<id>`.
    pub id: String,
    /// `<url>`.
    pub url: String,
    /// `<mirrorOf>`.
    pub mirror_of: String,
}

/// Settings as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MavenSettings {
    /// The file.
    pub path: PathBuf,
    /// `MAVEN_SETTINGS` or `~/.m2/settings.xml`.
    pub origin: String,
    /// Mirrors in file order.
    pub mirrors: Vec<Mirror>,
    /// `<offline>true</offline>`.
    pub offline: bool,
}

impl MavenSettings {
    /// A one-line description for the build log.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "Maven settings {} (from {})",
            self.path.display(),
            self.origin
        );
        if !self.mirrors.is_empty() {
            let mirrors: Vec<String> = self
                .mirrors
                .iter()
                .map(|mirror| format!("{} → {} for {}", mirror.id, mirror.url, mirror.mirror_of))
                .collect();
            text.push_str(&format!("; mirrors: {}", mirrors.join(", ")));
        }
        if self.offline {
            text.push_str("; offline");
        }
        text
    }
}

/// Find and read the settings: `$MAVEN_SETTINGS` (relative to kiln's working directory,
/// where the user typed it) must exist; `~/.m2/settings.xml` is used when present.
pub fn load(env: &BuildEnv) -> Result<Option<MavenSettings>, JavaError> {
    let located = match env.get(SETTINGS_VAR).filter(|value| !value.is_empty()) {
        Some(value) => {
            let path = absolute(Path::new(value));
            if !path.is_file() {
                return Err(JavaError::SettingsMissing {
                    origin: SETTINGS_VAR.to_owned(),
                    path,
                });
            }
            Some((path, SETTINGS_VAR.to_owned()))
        }
        None => env
            .get("HOME")
            .map(|home| Path::new(home).join(".m2/settings.xml"))
            .filter(|path| path.is_file())
            .map(|path| (path, "~/.m2/settings.xml".to_owned())),
    };
    let Some((path, origin)) = located else {
        return Ok(None);
    };
    let text = fs_err::read_to_string(&path).map_err(|source| JavaError::ReadSettings {
        path: path.clone(),
        source,
    })?;
    parse(&text, path, origin).map(Some)
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|dir| dir.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Parse settings text.
pub fn parse(text: &str, path: PathBuf, origin: String) -> Result<MavenSettings, JavaError> {
    let document = match roxmltree::Document::parse(text) {
        Ok(document) => document,
        Err(source) => return Err(JavaError::MalformedSettings { path, source }),
    };
    let settings = document.root_element();
    let mirrors = child(settings, "mirrors")
        .map(|mirrors| {
            elements(mirrors)
                .filter(|mirror| mirror.tag_name().name() == "mirror")
                .map(|mirror| Mirror {
                    id: text_of(mirror, &["id"]).unwrap_or_else(|| "default".to_owned()),
                    url: text_of(mirror, &["url"]).unwrap_or_default(),
                    mirror_of: text_of(mirror, &["mirrorOf"]).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(MavenSettings {
        offline: text_of(settings, &["offline"]).is_some_and(|value| value == "true"),
        path,
        origin,
        mirrors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mirrors_and_offline() {
        let settings = parse(
            r#"<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">
                 <offline>true</offline>
                 <mirrors><mirror><id>nexus</id><mirrorOf>*</mirrorOf><url>http://nexus.example/repo</url></mirror></mirrors>
                 <servers><server><id>nexus</id><password>${env.SECRET}</password></server></servers>
               </settings>"#,
            PathBuf::from("/s.xml"),
            SETTINGS_VAR.to_owned(),
        )
        .unwrap();
        assert!(settings.offline);
        assert_eq!(
            settings.mirrors,
            [Mirror {
                id: "nexus".to_owned(),
                url: "http://nexus.example/repo".to_owned(),
                mirror_of: "*".to_owned()
            }]
        );
        assert_eq!(
            settings.summary(),
            "Maven settings /s.xml (from MAVEN_SETTINGS); mirrors: nexus → http://nexus.example/repo for *; offline"
        );
    }

    #[test]
    fn missing_named_settings_is_an_error_and_absent_home_settings_are_not() {
        let home = tempfile::tempdir().unwrap();
        let env = BuildEnv::new(vec![
            ("HOME".to_owned(), home.path().display().to_string()),
            (
                SETTINGS_VAR.to_owned(),
                "/nonexistent/settings.xml".to_owned(),
            ),
        ]);
        assert!(
            matches!(load(&env), Err(JavaError::SettingsMissing { path, .. }) if path == Path::new("/nonexistent/settings.xml"))
        );
        // An empty MAVEN_SETTINGS counts as unset (and masks one in the test's own environment).
        let env = BuildEnv::new(vec![
            ("HOME".to_owned(), home.path().display().to_string()),
            (SETTINGS_VAR.to_owned(), String::new()),
        ]);
        assert_eq!(load(&env).unwrap(), None);
        fs_err::create_dir_all(home.path().join(".m2")).unwrap();
        fs_err::write(
            home.path().join(".m2/settings.xml"),
            "<settings><offline>false</offline></settings>",
        )
        .unwrap();
        let found = load(&env).unwrap().unwrap();
        assert_eq!(found.origin, "~/.m2/settings.xml");
        assert!(!found.offline);
    }

    #[test]
    fn malformed_settings_name_the_file() {
        let error = parse(
            "<settings><mirrors></settings>",
            PathBuf::from("/s.xml"),
            String::new(),
        )
        .unwrap_err();
        assert!(
            matches!(error, JavaError::MalformedSettings { path, .. } if path == Path::new("/s.xml"))
        );
    }
}
