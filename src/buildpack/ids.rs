//! Validated names: buildpack ids, process types, layer names.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a name was rejected.
#[derive(Debug, thiserror::Error)]
#[error("`{value}` is not a valid {what}: {rule}")]
pub struct InvalidName {
    /// The rejected text.
    pub value: String,
    /// What kind of name it was meant to be.
    pub what: &'static str,
    /// The rule it broke.
    pub rule: &'static str,
}

macro_rules! validated_name {
    ($name:ident, $what:literal, $rule:literal, $check:expr) => {
        #[doc = concat!("A validated ", $what, ".")]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("Validate a ", $what, ".")]
            pub fn new(value: &str) -> Result<Self, InvalidName> {
                let check: fn(&str) -> bool = $check;
                if value.is_empty() || !check(value) {
                    return Err(InvalidName {
                        value: value.to_owned(),
                        what: $what,
                        rule: $rule,
                    });
                }
                Ok(Self(value.to_owned()))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::new(&text).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidName;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::new(value)
            }
        }
    };
}

validated_name!(
    BuildpackId,
    "buildpack id",
    "use letters, digits, `.`, `/` and `-`, not `app`, `config` or `sbom`",
    |value| value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "./-".contains(c))
        && !["app", "config", "sbom"].contains(&value)
);
validated_name!(
    ProcessType,
    "process type",
    "use letters, digits, `.`, `_` and `-`",
    |value| value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
);
validated_name!(
    LayerName,
    "layer name",
    "use letters, digits, `.`, `_` and `-`, not `build`, `launch` or `store`",
    |value| value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !["build", "launch", "store"].contains(&value)
        && !value.starts_with('.')
);

impl BuildpackId {
    /// The id as a path segment: `/` replaced by `_`, as CNB does for `/layers/<id>`.
    pub fn escaped(&self) -> String {
        self.0.replace('/', "_")
    }
}

impl ProcessType {
    /// The `web` process type.
    pub fn web() -> Self {
        Self("web".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names() {
        assert_eq!(
            BuildpackId::new("kiln/python").unwrap().escaped(),
            "kiln_python"
        );
        assert!(BuildpackId::new("app").is_err());
        assert!(BuildpackId::new("has space").is_err());
        assert!(ProcessType::new("web").is_ok());
        assert!(ProcessType::new("a/b").is_err());
        assert!(LayerName::new("launch").is_err());
        assert!(LayerName::new("deps").is_ok());
    }
}
