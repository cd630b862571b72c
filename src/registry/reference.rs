//! Image references: `[registry[:port]/]repository[:tag][@sha256:…]` with Docker's defaults.

use std::fmt;
use std::str::FromStr;

use super::error::RegistryError;
use crate::oci::Digest;

/// The registry a bare name (`alpine`, `team/app`) lives on.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that actually serves Docker Hub's distribution API.
const DOCKER_HUB_API_HOST: &str = "index.docker.io";
/// The tag used when a reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parse a reference the way `docker pull` does.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let invalid = |problem: &str| RegistryError::InvalidReference {
            reference: text.to_owned(),
            problem: problem.to_owned(),
        };
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        let (rest, digest) = match text.rsplit_once('@') {
            Some((rest, digest)) => {
                let digest = digest
                    .parse::<Digest>()
                    .map_err(|_| invalid("the part after `@` is not a sha256 digest"))?;
                (rest, Some(digest))
            }
            None => (text, None),
        };
        // A `:` after the last `/` starts the tag; one before it belongs to a registry port.
        let last_slash = rest.rfind('/').map_or(0, |index| index + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(index) => {
                let split = last_slash + index;
                (&rest[..split], Some(&rest[split + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag
            && !is_valid_tag(tag)
        {
            return Err(invalid(
                "the tag must be 1–128 characters of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
            ));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, remainder)) if looks_like_registry(first) => {
                (normalize_registry(first), remainder.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        if !is_valid_registry(&registry) {
            return Err(invalid("the registry host is not a valid host[:port]"));
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !is_valid_repository(&repository) {
            return Err(invalid(
                "the repository must be lowercase letters and digits separated by `/`, `.`, `_`, `__` or `-`",
            ));
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_owned()),
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// A reference to `repository` on `registry` (no tag or digest yet).
    pub fn new(registry: &str, repository: &str) -> Result<Self, RegistryError> {
        Self::parse(&format!("{registry}/{repository}")).map(|reference| Self {
            tag: None,
            ..reference
        })
    }

    /// The registry as users write it (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The `host[:port]` that serves the distribution API for this registry.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// The repository path (`library/alpine`, `team/app`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any (`latest` when the reference named neither tag nor digest).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The pinned digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to put after `/manifests/` when reading: the digest when pinned, else the tag.
    pub fn manifest_selector(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// What to put after `/manifests/` when writing: the tag when there is one, else the digest.
    pub fn push_selector(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => tag.clone(),
            (None, Some(digest)) => digest.to_string(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// The same repository with this tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, RegistryError> {
        if !is_valid_tag(tag) {
            return Err(RegistryError::InvalidReference {
                reference: format!("{}/{}:{tag}", self.registry, self.repository),
                problem: "invalid tag".to_owned(),
            });
        }
        Ok(Self {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to `digest` (the tag is dropped).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same registry with another repository (keeping nothing else).
    pub fn in_repository(&self, repository: &str) -> Result<Self, RegistryError> {
        Self::new(&self.registry, repository)
    }

    /// Whether the registry is on this machine (`localhost`, `127.0.0.0/8`, `[::1]`).
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.registry)
    }
}

impl FromStr for Reference {
    type Err = RegistryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// The API host for a registry name (Docker Hub's differs from its name).
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API_HOST
    } else {
        registry
    }
}

/// Map Docker Hub's aliases and config-file spellings (`https://index.docker.io/v1/`) to one
/// registry name, so lookups in credentials and insecure lists agree with references.
pub fn normalize_registry(text: &str) -> String {
    let without_scheme = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .unwrap_or(text);
    let host = without_scheme
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_owned()
        }
        _ => host,
    }
}

/// Whether `host[:port]` is a loopback address or `localhost`.
pub fn is_loopback_host(registry: &str) -> bool {
    let host = if let Some(bracketed) = registry.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        registry.split(':').next().unwrap_or_default()
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Docker's rule: the first path component is a registry when it has a `.` or `:` or is
/// `localhost`; otherwise `team/app` means Docker Hub.
fn looks_like_registry(component: &str) -> bool {
    component.contains('.')
        || component.contains(':')
        || component == "localhost"
        || component.starts_with('[')
}

fn is_valid_registry(registry: &str) -> bool {
    !registry.is_empty()
        && registry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The distribution grammar: components of `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn is_valid_repository(repository: &str) -> bool {
    repository.len() <= 255 && repository.split('/').all(is_valid_component)
}

fn is_valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        let b = bytes[index];
        if is_alnum(b) {
            index += 1;
            continue;
        }
        let separator_end = bytes[index..]
            .iter()
            .position(|b| is_alnum(*b))
            .map_or(bytes.len(), |offset| index + offset);
        let separator = &component[index..separator_end];
        let allowed = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !allowed {
            return false;
        }
        index = separator_end;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> (String, String, Option<String>, Option<String>) {
        let reference = Reference::parse(text).unwrap();
        (
            reference.registry().to_owned(),
            reference.repository().to_owned(),
            reference.tag().map(str::to_owned),
            reference.digest().map(|digest| digest.to_string()),
        )
    }

    #[test]
    fn bare_names_default_to_docker_hub_library_latest() {
        assert_eq!(
            parts("alpine"),
            (
                "docker.io".into(),
                "library/alpine".into(),
                Some("latest".into()),
                None
            )
        );
        assert_eq!(
            parts("team/app:1.2"),
            (
                "docker.io".into(),
                "team/app".into(),
                Some("1.2".into()),
                None
            )
        );
        assert_eq!(
            Reference::parse("alpine").unwrap().api_host(),
            "index.docker.io"
        );
    }

    #[test]
    fn registry_with_port_is_not_a_tag() {
        assert_eq!(
            parts("127.0.0.1:5000/team/app"),
            (
                "127.0.0.1:5000".into(),
                "team/app".into(),
                Some("latest".into()),
                None
            )
        );
        assert_eq!(
            parts("localhost/app:v1"),
            ("localhost".into(), "app".into(), Some("v1".into()), None)
        );
        assert!(
            Reference::parse("localhost:5000/app")
                .unwrap()
                .is_loopback()
        );
        assert!(
            Reference::parse("127.0.0.1:5000/app")
                .unwrap()
                .is_loopback()
        );
        assert!(!Reference::parse("reg.example/app").unwrap().is_loopback());
    }

    #[test]
    fn digest_pins_and_drops_default_tag() {
        let digest = Digest::of_bytes(b"x");
        let (_, repository, tag, pinned) = parts(&format!("reg.example:443/a/b@{digest}"));
        assert_eq!(repository, "a/b");
        assert_eq!(tag, None);
        assert_eq!(pinned, Some(digest.to_string()));
        let both = Reference::parse(&format!("reg.example/a:1@{digest}")).unwrap();
        assert_eq!(both.manifest_selector(), digest.to_string());
        assert_eq!(both.push_selector(), "1");
        assert_eq!(both.to_string(), format!("reg.example/a:1@{digest}"));
    }

    #[test]
    fn docker_hub_aliases_normalize() {
        assert_eq!(parts("index.docker.io/library/alpine").0, "docker.io");
        assert_eq!(
            normalize_registry("https://index.docker.io/v1/"),
            "docker.io"
        );
        assert_eq!(
            normalize_registry("http://127.0.0.1:5000"),
            "127.0.0.1:5000"
        );
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        for bad in [
            "",
            "UPPER/case",
            "app:",
            "app:-x",
            "reg.example/",
            "a//b",
            "app@sha256:zz",
            "app@",
            "a/-b",
            "a/b-",
            "a/b..c",
            "@",
            ":",
            "/",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(Reference::parse("a/b__c/d-e/f.g/h---i").is_ok());
    }
}
