//! Package relationship fields (`Depends`, `Pre-Depends`, `Provides`): `a (>= 1) | b, c:any`.

use std::fmt;

use super::version::{DebVersion, InvalidVersion};

/// A version relation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `<<`
    Earlier,
    /// `<=` (and the obsolete `<`)
    EarlierOrEqual,
    /// `=`
    Exactly,
    /// `>=` (and the obsolete `>`)
    LaterOrEqual,
    /// `>>`
    Later,
}

impl Operator {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "<<" => Operator::Earlier,
            "<=" | "<" => Operator::EarlierOrEqual,
            "=" => Operator::Exactly,
            ">=" | ">" => Operator::LaterOrEqual,
            ">>" => Operator::Later,
            _ => return None,
        })
    }

    fn symbol(self) -> &'static str {
        match self {
            Operator::Earlier => "<<",
            Operator::EarlierOrEqual => "<=",
            Operator::Exactly => "=",
            Operator::LaterOrEqual => ">=",
            Operator::Later => ">>",
        }
    }
}

/// A version constraint such as `>= 2.34`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// The operator.
    pub operator: Operator,
    /// The version it compares with.
    pub version: DebVersion,
}

impl Constraint {
    /// Whether `candidate` satisfies the constraint.
    pub fn allows(&self, candidate: &DebVersion) -> bool {
        let ordering = candidate.cmp(&self.version);
        match self.operator {
            Operator::Earlier => ordering.is_lt(),
            Operator::EarlierOrEqual => ordering.is_le(),
            Operator::Exactly => ordering.is_eq(),
            Operator::LaterOrEqual => ordering.is_ge(),
            Operator::Later => ordering.is_gt(),
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.operator.symbol(), self.version)
    }
}

/// One package named in a relationship, with an optional version constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Package (or virtual package) name, without any `:arch` qualifier.
    pub name: String,
    /// The version constraint, if any.
    pub constraint: Option<Constraint>,
}

impl Relation {
    /// A relation on `name` with no version constraint.
    pub fn any_version(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            constraint: None,
        }
    }

    /// Whether a package version satisfies the constraint.
    pub fn allows(&self, version: &DebVersion) -> bool {
        self.constraint
            .as_ref()
            .is_none_or(|constraint| constraint.allows(version))
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.constraint {
            Some(constraint) => write!(f, "{} ({constraint})", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Alternatives of which one must hold: `a | b (>= 1)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternatives(pub Vec<Relation>);

impl fmt::Display for Alternatives {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, relation) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{relation}")?;
        }
        Ok(())
    }
}

/// Why a relationship field cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRelation {
    #[error("`{0}` has no package name")]
    MissingName(String),
    #[error("`{0}` has an unknown version operator")]
    UnknownOperator(String),
    #[error("`{0}` has an unclosed version constraint")]
    Unclosed(String),
    #[error(transparent)]
    Version(#[from] InvalidVersion),
}

/// Parse a `Depends`-style field into its comma-separated groups of alternatives.
pub fn parse_relations(field: &str) -> Result<Vec<Alternatives>, InvalidRelation> {
    let mut groups = Vec::new();
    for group in field.split(',') {
        if group.trim().is_empty() {
            continue;
        }
        let relations = group
            .split('|')
            .map(parse_relation)
            .collect::<Result<Vec<_>, _>>()?;
        groups.push(Alternatives(relations));
    }
    Ok(groups)
}

/// Parse one relation: `name[:arch] [(op version)] [[archs]] [<profiles>]`. Architecture
/// lists and build profiles only occur in source packages; they are dropped.
pub fn parse_relation(text: &str) -> Result<Relation, InvalidRelation> {
    let text = text.trim();
    let name_end = text
        .find(|c: char| c.is_whitespace() || matches!(c, '(' | '[' | '<'))
        .unwrap_or(text.len());
    let qualified = &text[..name_end];
    let name = qualified.split(':').next().unwrap_or_default();
    if name.is_empty() {
        return Err(InvalidRelation::MissingName(text.to_owned()));
    }
    let rest = text[name_end..].trim_start();
    let constraint = match rest.strip_prefix('(') {
        Some(inner) => {
            let close = inner
                .find(')')
                .ok_or_else(|| InvalidRelation::Unclosed(text.to_owned()))?;
            let inner = inner[..close].trim();
            let operator_end = inner
                .find(|c: char| !matches!(c, '<' | '>' | '='))
                .unwrap_or(inner.len());
            let operator = Operator::parse(&inner[..operator_end])
                .ok_or_else(|| InvalidRelation::UnknownOperator(text.to_owned()))?;
            let version = DebVersion::parse(&inner[operator_end..])?;
            Some(Constraint { operator, version })
        }
        None => None,
    };
    Ok(Relation {
        name: name.to_owned(),
        constraint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_alternatives_versions_and_qualifiers() {
        let groups = parse_relations(
            "libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any,perl:amd64 (<< 6)",
        )
        .unwrap();
        assert_eq!(groups.len(), 4);
        assert_eq!(groups[0].to_string(), "libc6 (>= 2.34)");
        assert_eq!(groups[1].to_string(), "debconf (>= 0.5) | debconf-2.0");
        assert_eq!(groups[2].0[0], Relation::any_version("python3"));
        assert_eq!(groups[3].to_string(), "perl (<< 6)");
    }

    #[test]
    fn constraints_follow_debian_ordering() {
        let relation = parse_relation("libc6 (>= 2.36-9+deb12u3)").unwrap();
        assert!(relation.allows(&DebVersion::parse("2.36-9+deb12u10").unwrap()));
        assert!(!relation.allows(&DebVersion::parse("2.36-9").unwrap()));
        let strictly = parse_relation("x (<< 1.0)").unwrap();
        assert!(strictly.allows(&DebVersion::parse("1.0~rc1").unwrap()));
        assert!(!strictly.allows(&DebVersion::parse("1.0").unwrap()));
        let obsolete = parse_relation("x (> 1.0)").unwrap();
        assert!(obsolete.allows(&DebVersion::parse("1.0").unwrap()));
    }

    #[test]
    fn rejects_broken_relations() {
        assert!(matches!(
            parse_relation("x (>= 1"),
            Err(InvalidRelation::Unclosed(_))
        ));
        assert!(matches!(
            parse_relation("x (~ 1)"),
            Err(InvalidRelation::UnknownOperator(_))
        ));
        assert!(matches!(
            parse_relation(":amd64"),
            Err(InvalidRelation::MissingName(_))
        ));
    }
}
