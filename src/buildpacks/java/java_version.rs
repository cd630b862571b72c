//! Which Java the app asks for (`.java-version`, the POM's release/target/source) against
//! the Java the stack runs it with. Bytecode for a newer Java than the runtime fails at
//! start with `UnsupportedClassVersionError`, so asking for more is a build error.

use super::error::JavaError;
use super::pom::Pom;

/// Something in the app asking for a Java version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaRequirement {
    /// Major version (8, 11, 17, 21…).
    pub major: u32,
    /// Where it was asked (`pom.xml maven.compiler.release`, `.java-version`).
    pub origin: String,
}

/// What the POM says about the compiler's Java version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompilerRequest {
    /// The version the compiler will target, when the POM sets one kiln can read.
    pub requirement: Option<JavaRequirement>,
    /// Whether the POM sets release or target itself (then kiln passes no release).
    pub pom_sets_target: bool,
    /// A setting whose value could not be resolved (e.g. from a parent outside the tree).
    pub unresolved: Option<String>,
}

/// The major version in a Java version string: `17`, `17.0.2`, `1.8`, `21-ea`, `temurin-17.0.2`.
pub fn parse_major(text: &str) -> Option<u32> {
    let text = text.trim();
    // jenv/asdf style vendor prefixes: take the part after the last `-` that starts a number.
    let version = text
        .rsplit('-')
        .find(|part| part.starts_with(|c: char| c.is_ascii_digit()))
        .filter(|_| !text.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(text);
    let mut parts = version.split(['.', '-', '+', '_']);
    let first: u32 = parts.next()?.parse().ok()?;
    let major = if first == 1 {
        parts.next()?.parse().ok()?
    } else {
        first
    };
    (1..=99).contains(&major).then_some(major)
}

/// The major version of a JRE package version (`17.0.15+6-1~deb12u1` → 17).
pub fn runtime_major(package_version: &str) -> Option<u32> {
    let without_epoch = package_version
        .split_once(':')
        .map_or(package_version, |(_, rest)| rest);
    parse_major(without_epoch)
}

/// The requirement of a `.java-version` file.
pub fn java_version_file(text: &str) -> Result<JavaRequirement, JavaError> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .unwrap_or("");
    parse_major(line)
        .map(|major| JavaRequirement {
            major,
            origin: ".java-version".to_owned(),
        })
        .ok_or_else(|| JavaError::BadJavaVersionFile {
            text: line.to_owned(),
        })
}

/// Read the compiler's Java version from the POM: compiler plugin configuration first, then
/// the `maven.compiler.*` properties, release before target before source (Maven's order of
/// precedence on JDK 9+).
pub fn compiler_request(pom: &Pom) -> CompilerRequest {
    let configured = [
        ("release", pom.compiler.release.as_deref()),
        ("target", pom.compiler.target.as_deref()),
        ("source", pom.compiler.source.as_deref()),
    ];
    let mut unresolved = None;
    let mut requirement = None;
    let mut pom_sets_target = false;
    for (key, value) in configured {
        let property = format!("maven.compiler.{key}");
        let candidates = [
            value.map(|raw| {
                (
                    format!("{} maven-compiler-plugin <{key}>", pom.compiler.origin),
                    pom.interpolate(raw).ok_or(raw.to_owned()),
                )
            }),
            pom.property(&property).map(|value| {
                (
                    format!("{} {property}", pom.property_origin(&property)),
                    value,
                )
            }),
        ];
        for (origin, value) in candidates.into_iter().flatten() {
            if key != "source" {
                pom_sets_target = true;
            }
            match value {
                Ok(text) => {
                    if requirement.is_none()
                        && let Some(major) = parse_major(&text)
                    {
                        requirement = Some(JavaRequirement { major, origin });
                    }
                }
                Err(raw) => {
                    unresolved.get_or_insert(format!("{origin} = {raw}"));
                }
            }
        }
    }
    CompilerRequest {
        requirement,
        pom_sets_target,
        unresolved,
    }
}

/// Fail when any requirement exceeds the runtime's major version.
pub fn check(
    requirements: &[JavaRequirement],
    available: u32,
    runtime: &str,
) -> Result<(), JavaError> {
    match requirements
        .iter()
        .find(|requirement| requirement.major > available)
    {
        Some(requirement) => Err(JavaError::JavaTooNew {
            origin: requirement.origin.clone(),
            requested: requirement.major,
            available,
            runtime: runtime.to_owned(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_java_version_spellings() {
        for (text, major) in [
            ("17", 17),
            ("17.0.2", 17),
            ("1.8", 8),
            ("1.8.0_392", 8),
            ("21-ea", 21),
            ("temurin-17.0.2", 17),
            ("openjdk64-11.0.2", 11),
            (" 11\n", 11),
        ] {
            assert_eq!(parse_major(text), Some(major), "{text}");
        }
        for text in ["", "latest", "java", "0", "1.x"] {
            assert_eq!(parse_major(text), None, "{text}");
        }
        assert_eq!(runtime_major("17.0.15+6-1~deb12u1"), Some(17));
        assert_eq!(runtime_major("1:21.0.2+13-1"), Some(21));
    }

    #[test]
    fn java_version_file_skips_comments_and_rejects_garbage() {
        assert_eq!(java_version_file("# pinned\n21\n").unwrap().major, 21);
        assert!(
            matches!(java_version_file("banana"), Err(JavaError::BadJavaVersionFile { text }) if text == "banana")
        );
    }

    fn pom(xml: &str) -> Pom {
        Pom::parse(xml, "pom.xml").unwrap()
    }

    #[test]
    fn compiler_settings_in_precedence_order() {
        let properties = pom(
            "<project><properties><maven.compiler.source>11</maven.compiler.source>\
             <maven.compiler.target>1.8</maven.compiler.target></properties></project>",
        );
        let request = compiler_request(&properties);
        assert_eq!(
            request.requirement.unwrap(),
            JavaRequirement {
                major: 8,
                origin: "pom.xml maven.compiler.target".to_owned()
            }
        );
        assert!(request.pom_sets_target);

        let plugin = pom(
            "<project><properties><maven.compiler.release>11</maven.compiler.release></properties><build><plugins>\
             <plugin><artifactId>maven-compiler-plugin</artifactId><configuration><release>21</release></configuration></plugin>\
             </plugins></build></project>",
        );
        let request = compiler_request(&plugin);
        assert_eq!(
            request.requirement.unwrap().major,
            21,
            "plugin configuration beats the property"
        );

        let source_only = compiler_request(&pom(
            "<project><properties><maven.compiler.source>17</maven.compiler.source></properties></project>",
        ));
        assert!(
            !source_only.pom_sets_target,
            "source alone leaves the target to kiln"
        );
        assert_eq!(source_only.requirement.unwrap().major, 17);

        let nothing = compiler_request(&pom("<project/>"));
        assert_eq!(
            nothing,
            CompilerRequest {
                requirement: None,
                pom_sets_target: false,
                unresolved: None
            }
        );
    }

    #[test]
    fn unresolved_versions_are_reported_not_guessed() {
        let request = compiler_request(&pom(
            "<project><properties><maven.compiler.release>${java.version}</maven.compiler.release></properties></project>",
        ));
        assert_eq!(request.requirement, None);
        assert!(request.pom_sets_target);
        assert_eq!(
            request.unresolved.as_deref(),
            Some("pom.xml maven.compiler.release = ${java.version}")
        );
    }

    #[test]
    fn newer_than_the_runtime_is_an_error_naming_the_origin() {
        let requirements = [
            JavaRequirement {
                major: 11,
                origin: ".java-version".to_owned(),
            },
            JavaRequirement {
                major: 21,
                origin: "pom.xml maven.compiler.release".to_owned(),
            },
        ];
        assert!(check(&requirements[..1], 17, "openjdk-17-jre-headless").is_ok());
        let error = check(&requirements, 17, "openjdk-17-jre-headless").unwrap_err();
        assert_eq!(
            error.to_string(),
            "pom.xml maven.compiler.release asks for Java 21, but the image runs Java 17 (openjdk-17-jre-headless)"
        );
    }
}
