//! The parts of a `pom.xml` the buildpack decides with: coordinates, packaging, modules,
//! properties, the compiler's release/target/source and the jar plugin's main class.
//! Not a Maven model builder: parents outside the source tree and profiles are not read,
//! and values that stay unresolved are reported as such instead of guessed.

use std::collections::BTreeMap;

use roxmltree::Node;

use super::error::JavaError;

/// The Maven `groupId` of the plugins Maven ships (the default when a plugin omits it).
const MAVEN_PLUGINS: &str = "org.apache.maven.plugins";

/// One parsed POM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pom {
    /// Where it was read from, relative to the app (for messages).
    pub path: String,
    /// `groupId` (inherited from `<parent>` when absent).
    pub group_id: Option<String>,
    /// `artifactId`.
    pub artifact_id: Option<String>,
    /// `version` (inherited from `<parent>` when absent).
    pub version: Option<String>,
    /// `packaging` (`jar` when absent).
    pub packaging: String,
    /// `<modules>` entries.
    pub modules: Vec<String>,
    /// `<properties>`, own and inherited.
    pub properties: BTreeMap<String, String>,
    /// The POM each inherited property came from (own ones are absent).
    pub inherited_from: BTreeMap<String, String>,
    /// `maven-compiler-plugin` configuration.
    pub compiler: CompilerConfig,
    /// `maven-jar-plugin` `<archive><manifest><mainClass>`.
    pub main_class: Option<String>,
    /// `<build><finalName>`.
    pub final_name: Option<String>,
    /// The version of `maven-dependency-plugin` the POM declares, if any.
    pub dependency_plugin_version: Option<String>,
}

/// `maven-compiler-plugin` `<configuration>` values, raw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompilerConfig {
    /// The POM the configuration is written in.
    pub origin: String,
    /// `<release>`.
    pub release: Option<String>,
    /// `<target>`.
    pub target: Option<String>,
    /// `<source>`.
    pub source: Option<String>,
}

impl Pom {
    /// Parse POM text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, JavaError> {
        let document =
            roxmltree::Document::parse(text).map_err(|source| JavaError::MalformedPom {
                path: path.to_owned(),
                source,
            })?;
        let project = document.root_element();
        if project.tag_name().name() != "project" {
            return Err(JavaError::NotAPom {
                path: path.to_owned(),
                root: project.tag_name().name().to_owned(),
            });
        }
        let parent = child(project, "parent");
        let inherited = |name: &str| {
            text_of(project, &[name]).or_else(|| parent.and_then(|parent| text_of(parent, &[name])))
        };
        let properties = child(project, "properties")
            .map(|properties| {
                elements(properties)
                    .map(|property| {
                        (
                            property.tag_name().name().to_owned(),
                            node_text(property).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let build = child(project, "build");
        let plugins: Vec<Node> = build
            .into_iter()
            .flat_map(|build| {
                let direct = child(build, "plugins");
                let managed =
                    child(build, "pluginManagement").and_then(|managed| child(managed, "plugins"));
                // Declared plugins first: their configuration wins over pluginManagement's.
                direct.into_iter().chain(managed).flat_map(elements)
            })
            .filter(|plugin| plugin.tag_name().name() == "plugin")
            .collect();
        let plugin_config = |artifact: &str, path: &[&str]| {
            plugins
                .iter()
                .filter(|plugin| is_maven_plugin(**plugin, artifact))
                .find_map(|plugin| text_of(*plugin, &[&["configuration"], path].concat()))
        };
        Ok(Pom {
            path: path.to_owned(),
            group_id: inherited("groupId"),
            artifact_id: text_of(project, &["artifactId"]),
            version: inherited("version"),
            packaging: text_of(project, &["packaging"]).unwrap_or_else(|| "jar".to_owned()),
            modules: child(project, "modules")
                .map(|modules| elements(modules).filter_map(node_text).collect())
                .unwrap_or_default(),
            properties,
            inherited_from: BTreeMap::new(),
            compiler: CompilerConfig {
                origin: path.to_owned(),
                release: plugin_config("maven-compiler-plugin", &["release"]),
                target: plugin_config("maven-compiler-plugin", &["target"]),
                source: plugin_config("maven-compiler-plugin", &["source"]),
            },
            main_class: plugin_config("maven-jar-plugin", &["archive", "manifest", "mainClass"]),
            final_name: build.and_then(|build| text_of(build, &["finalName"])),
            dependency_plugin_version: plugins
                .iter()
                .filter(|plugin| is_maven_plugin(**plugin, "maven-dependency-plugin"))
                .find_map(|plugin| text_of(*plugin, &["version"])),
        })
    }

    /// Fill what this POM leaves out from its parent in the source tree (properties,
    /// compiler settings, coordinates, plugin versions), as Maven's inheritance does.
    pub fn inherit(&mut self, parent: &Pom) {
        for (name, value) in &parent.properties {
            if !self.properties.contains_key(name) {
                self.properties.insert(name.clone(), value.clone());
                let origin = parent.property_origin(name).to_owned();
                self.inherited_from.insert(name.clone(), origin);
            }
        }
        let own_compiler = [
            &self.compiler.release,
            &self.compiler.target,
            &self.compiler.source,
        ];
        if own_compiler.iter().all(|value| value.is_none()) {
            self.compiler = parent.compiler.clone();
        }
        let fill = |own: &mut Option<String>, inherited: &Option<String>| {
            if own.is_none() {
                own.clone_from(inherited);
            }
        };
        fill(&mut self.group_id, &parent.group_id);
        fill(&mut self.version, &parent.version);
        fill(
            &mut self.dependency_plugin_version,
            &parent.dependency_plugin_version,
        );
    }

    /// Resolve `${…}` references against the POM's properties and coordinates. `None` when
    /// something stays unresolved (e.g. a property from a parent outside the source tree).
    pub fn interpolate(&self, value: &str) -> Option<String> {
        let mut current = value.to_owned();
        // References may nest through properties; a bound stops reference cycles.
        for _ in 0..8 {
            let Some(start) = current.find("${") else {
                return Some(current);
            };
            let end = start + current[start..].find('}')?;
            let name = &current[start + 2..end];
            let replacement = self.lookup(name)?;
            current.replace_range(start..=end, &replacement);
        }
        None
    }

    fn lookup(&self, name: &str) -> Option<String> {
        match name {
            "project.artifactId" | "pom.artifactId" => self.artifact_id.clone(),
            "project.groupId" | "pom.groupId" => self.group_id.clone(),
            "project.version" | "pom.version" => self.version.clone(),
            _ => self.properties.get(name).cloned(),
        }
    }

    /// The POM a property is written in.
    pub fn property_origin(&self, name: &str) -> &str {
        self.inherited_from
            .get(name)
            .map_or(&self.path, String::as_str)
    }

    /// A property's value, interpolated. `Some(Err(raw))` when it cannot be resolved.
    pub fn property(&self, name: &str) -> Option<Result<String, String>> {
        self.properties
            .get(name)
            .map(|raw| self.interpolate(raw).ok_or_else(|| raw.clone()))
    }

    /// The jar file name Maven gives the project's artifact (without `.jar`).
    pub fn jar_stem(&self) -> Option<String> {
        match &self.final_name {
            Some(name) => self.interpolate(name),
            None => {
                let artifact = self.interpolate(self.artifact_id.as_deref()?)?;
                let version = self.interpolate(self.version.as_deref()?)?;
                Some(format!("{artifact}-{version}"))
            }
        }
    }

    /// `groupId.artifactId-version`: how `copy-dependencies -Dmdep.prependGroupId` names
    /// this project's jar when another module depends on it.
    pub fn dependency_file_stem(&self) -> Option<String> {
        let group = self.interpolate(self.group_id.as_deref()?)?;
        let artifact = self.interpolate(self.artifact_id.as_deref()?)?;
        let version = self.interpolate(self.version.as_deref()?)?;
        Some(format!("{group}.{artifact}-{version}"))
    }
}

fn is_maven_plugin(plugin: Node, artifact: &str) -> bool {
    let group = text_of(plugin, &["groupId"]);
    text_of(plugin, &["artifactId"]).as_deref() == Some(artifact)
        && group.as_deref().is_none_or(|group| group == MAVEN_PLUGINS)
}

/// Child elements of a node.
pub(super) fn elements<'a, 'input>(
    node: Node<'a, 'input>,
) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(Node::is_element)
}

/// The first child element named `name` (any namespace: POMs come with and without one).
pub(super) fn child<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    elements(node).find(|element| element.tag_name().name() == name)
}

/// The trimmed text at a path of child elements, when present and non-empty.
pub(super) fn text_of(node: Node, path: &[&str]) -> Option<String> {
    let mut current = node;
    for name in path {
        current = child(current, name)?;
    }
    node_text(current)
}

fn node_text(node: Node) -> Option<String> {
    let text: String = node
        .children()
        .filter(Node::is_text)
        .filter_map(|text| text.text())
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = r#"<?xml version="1.0"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <parent><groupId>dev.kiln</groupId><artifactId>parent</artifactId><version>2.0</version></parent>
  <artifactId>app</artifactId>
  <properties>
    <java.version>11</java.version>
    <maven.compiler.release>${java.version}</maven.compiler.release>
    <project.build.outputTimestamp>2023-01-01T00:00:00Z</project.build.outputTimestamp>
  </properties>
  <build>
    <finalName>${project.artifactId}-all</finalName>
    <pluginManagement><plugins>
      <plugin><artifactId>maven-jar-plugin</artifactId>
        <configuration><archive><manifest><mainClass>dev.kiln.Managed</mainClass></manifest></archive></configuration>
      </plugin>
    </plugins></pluginManagement>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId><artifactId>maven-jar-plugin</artifactId>
        <configuration><archive><manifest><mainClass> dev.kiln.Main </mainClass></manifest></archive></configuration>
      </plugin>
      <plugin><groupId>com.example</groupId><artifactId>maven-compiler-plugin</artifactId>
        <configuration><release>99</release></configuration></plugin>
      <plugin><artifactId>maven-dependency-plugin</artifactId><version>3.6.1</version></plugin>
    </plugins>
  </build>
</project>"#;

    #[test]
    fn reads_coordinates_properties_and_plugins() {
        let pom = Pom::parse(APP, "pom.xml").unwrap();
        assert_eq!(
            pom.group_id.as_deref(),
            Some("dev.kiln"),
            "inherited from <parent>"
        );
        assert_eq!(pom.version.as_deref(), Some("2.0"));
        assert_eq!(pom.packaging, "jar");
        assert_eq!(
            pom.main_class.as_deref(),
            Some("dev.kiln.Main"),
            "declared plugins win over pluginManagement"
        );
        assert_eq!(
            pom.compiler.release, None,
            "a compiler plugin of another group is not Maven's"
        );
        assert_eq!(pom.dependency_plugin_version.as_deref(), Some("3.6.1"));
        assert_eq!(
            pom.property("maven.compiler.release"),
            Some(Ok("11".to_owned()))
        );
        assert_eq!(pom.jar_stem().as_deref(), Some("app-all"));
        assert_eq!(
            pom.dependency_file_stem().as_deref(),
            Some("dev.kiln.app-2.0")
        );
    }

    #[test]
    fn unresolved_references_stay_unresolved() {
        let pom = Pom::parse(
            "<project><artifactId>a</artifactId><properties><r>${from.parent}</r><loop>${loop}</loop></properties></project>",
            "pom.xml",
        )
        .unwrap();
        assert_eq!(pom.property("r"), Some(Err("${from.parent}".to_owned())));
        assert_eq!(pom.property("loop"), Some(Err("${loop}".to_owned())));
        assert_eq!(pom.property("missing"), None);
        assert_eq!(pom.jar_stem(), None, "no version");
    }

    #[test]
    fn modules_and_inheritance() {
        let parent = Pom::parse(
            "<project><groupId>g</groupId><artifactId>p</artifactId><version>1</version><packaging>pom</packaging>\
             <modules><module>core</module><module>app</module></modules>\
             <properties><maven.compiler.release>17</maven.compiler.release></properties></project>",
            "pom.xml",
        )
        .unwrap();
        assert_eq!(parent.modules, ["core", "app"]);
        assert_eq!(parent.packaging, "pom");
        let mut module = Pom::parse(
            "<project><artifactId>app</artifactId></project>",
            "app/pom.xml",
        )
        .unwrap();
        module.inherit(&parent);
        assert_eq!(
            module.property("maven.compiler.release"),
            Some(Ok("17".to_owned()))
        );
        assert_eq!(module.property_origin("maven.compiler.release"), "pom.xml");
        assert_eq!(module.property_origin("missing"), "app/pom.xml");
        assert_eq!(module.dependency_file_stem().as_deref(), Some("g.app-1"));
    }

    #[test]
    fn malformed_and_foreign_xml_are_errors() {
        let error = Pom::parse(
            "<project>\n  <artifactId>a</artifactId>\n</projet>",
            "pom.xml",
        )
        .unwrap_err();
        assert!(matches!(&error, JavaError::MalformedPom { path, .. } if path == "pom.xml"));
        let cause = std::error::Error::source(&error).unwrap().to_string();
        assert!(
            cause.contains("3:"),
            "the cause names the position: {cause}"
        );
        assert!(
            matches!(Pom::parse("<settings/>", "pom.xml"), Err(JavaError::NotAPom { root, .. }) if root == "settings")
        );
    }
}
