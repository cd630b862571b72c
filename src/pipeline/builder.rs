//! Builders: the buildpack order (and stack settings) from `builders/<name>/builder.toml`.

use crate::buildpack::Order;

/// The embedded default builder's descriptor.
pub const DEFAULT_BUILDER_TOML: &str = include_str!("../../builders/bookworm/builder.toml");
/// Its name.
pub const DEFAULT_BUILDER: &str = "bookworm";

/// A builder descriptor that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("builder `{name}` is invalid")]
pub struct BuilderError {
    /// Builder name.
    pub name: String,
    /// Why.
    #[source]
    pub source: toml::de::Error,
}

impl crate::diagnostic::Diagnose for BuilderError {
    fn class(&self) -> crate::diagnostic::ErrorClass {
        crate::diagnostic::ErrorClass::User
    }
}

/// The order of a builder descriptor.
pub fn load_order(text: &str, name: &str) -> Result<Order, BuilderError> {
    #[derive(serde::Deserialize)]
    struct OrderOnly {
        #[serde(default)]
        order: Vec<crate::buildpack::OrderGroup>,
    }
    let parsed: OrderOnly = toml::from_str(text).map_err(|source| BuilderError {
        name: name.to_owned(),
        source,
    })?;
    Ok(Order {
        groups: parsed.order,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_builder_order_parses_and_names_procfile() {
        let order = load_order(DEFAULT_BUILDER_TOML, DEFAULT_BUILDER).unwrap();
        assert!(order.groups.iter().any(|group| {
            group
                .group
                .iter()
                .any(|member| member.id.as_str() == "kiln/procfile")
        }));
    }
}
