//! Where an image is read from or written to, as users write it on the command line.

use std::fmt;
use std::path::PathBuf;

use super::error::{OciError, Result};

/// An image location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLocation {
    /// A name in kiln's local image store (`myapp`, `reg.example/team/app:1`).
    Store(String),
    /// `oci:DIR[:tag]`.
    OciLayout { dir: PathBuf, tag: Option<String> },
    /// `oci-archive:FILE[:tag]`.
    OciArchive { path: PathBuf, tag: Option<String> },
    /// `docker-archive:FILE[:name:tag]`.
    DockerArchive { path: PathBuf, name: Option<String> },
    /// `docker://REF`: a registry.
    Registry(String),
}

impl ImageLocation {
    /// Parse a location. A string without a transport prefix is a local store name.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |problem: &str| OciError::InvalidReference {
            reference: text.to_owned(),
            problem: problem.to_owned(),
        };
        if let Some(rest) = text.strip_prefix("oci:") {
            let (dir, tag) = split_path_and_tag(rest);
            if dir.is_empty() {
                return Err(invalid("`oci:` needs a directory, e.g. oci:./out:latest"));
            }
            return Ok(Self::OciLayout {
                dir: PathBuf::from(dir),
                tag,
            });
        }
        if let Some(rest) = text.strip_prefix("oci-archive:") {
            let (path, tag) = split_path_and_tag(rest);
            if path.is_empty() {
                return Err(invalid(
                    "`oci-archive:` needs a file, e.g. oci-archive:app.tar",
                ));
            }
            return Ok(Self::OciArchive {
                path: PathBuf::from(path),
                tag,
            });
        }
        if let Some(rest) = text.strip_prefix("docker-archive:") {
            let (path, name) = split_path_and_tag(rest);
            if path.is_empty() {
                return Err(invalid(
                    "`docker-archive:` needs a file, e.g. docker-archive:app.tar",
                ));
            }
            return Ok(Self::DockerArchive {
                path: PathBuf::from(path),
                name,
            });
        }
        if let Some(rest) = text.strip_prefix("docker://") {
            if rest.is_empty() {
                return Err(invalid("`docker://` needs a registry reference"));
            }
            return Ok(Self::Registry(rest.to_owned()));
        }
        validate_store_name(text).map_err(|problem| invalid(&problem))?;
        Ok(Self::Store(normalize_store_name(text)))
    }
}

impl fmt::Display for ImageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_tag = |f: &mut fmt::Formatter<'_>,
                        prefix: &str,
                        path: &PathBuf,
                        tag: &Option<String>| match tag {
            Some(tag) => write!(f, "{prefix}:{}:{tag}", path.display()),
            None => write!(f, "{prefix}:{}", path.display()),
        };
        match self {
            Self::Store(name) => write!(f, "{name}"),
            Self::OciLayout { dir, tag } => with_tag(f, "oci", dir, tag),
            Self::OciArchive { path, tag } => with_tag(f, "oci-archive", path, tag),
            Self::DockerArchive { path, name } => with_tag(f, "docker-archive", path, name),
            Self::Registry(reference) => write!(f, "docker://{reference}"),
        }
    }
}

/// Split `PATH[:TAG]` at the first colon, as skopeo does (paths with colons are not
/// supported in this form).
fn split_path_and_tag(text: &str) -> (&str, Option<String>) {
    match text.split_once(':') {
        Some((path, tag)) if !tag.is_empty() => (path, Some(tag.to_owned())),
        Some((path, _)) => (path, None),
        None => (text, None),
    }
}

fn validate_store_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("the image name is empty".to_owned());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-/:@".contains(c);
    if let Some(bad) = name.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "`{bad}` is not allowed in an image name (use lowercase letters, digits, `.`, `_`, `-`, `/`, `:`)"
        ));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) && !name.contains(':') {
        return Err("image names must be lowercase".to_owned());
    }
    if name.starts_with('/') || name.starts_with('.') || name.contains("//") {
        return Err(
            "an image name cannot start with `/` or `.`; for a directory use oci:DIR".to_owned(),
        );
    }
    Ok(())
}

/// `myapp` → `myapp:latest`; names with a tag or digest stay as they are.
pub fn normalize_store_name(name: &str) -> String {
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last_segment.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            ImageLocation::parse("myapp").unwrap(),
            ImageLocation::Store("myapp:latest".into())
        );
        assert_eq!(
            ImageLocation::parse("localhost:5000/team/app").unwrap(),
            ImageLocation::Store("localhost:5000/team/app:latest".into())
        );
        assert_eq!(
            ImageLocation::parse("reg.example/team/app:1").unwrap(),
            ImageLocation::Store("reg.example/team/app:1".into())
        );
        assert_eq!(
            ImageLocation::parse("oci:/tmp/out:v2").unwrap(),
            ImageLocation::OciLayout {
                dir: "/tmp/out".into(),
                tag: Some("v2".into())
            }
        );
        assert_eq!(
            ImageLocation::parse("oci-archive:app.tar").unwrap(),
            ImageLocation::OciArchive {
                path: "app.tar".into(),
                tag: None
            }
        );
        assert_eq!(
            ImageLocation::parse("docker-archive:a.tar:app:1").unwrap(),
            ImageLocation::DockerArchive {
                path: "a.tar".into(),
                name: Some("app:1".into())
            }
        );
        assert_eq!(
            ImageLocation::parse("docker://127.0.0.1:5000/app:1").unwrap(),
            ImageLocation::Registry("127.0.0.1:5000/app:1".into())
        );
    }

    #[test]
    fn rejects_bad_names_with_a_reason() {
        for bad in ["", "my app", "./dir", "oci:", "docker://"] {
            assert!(ImageLocation::parse(bad).is_err(), "{bad}");
        }
    }
}
