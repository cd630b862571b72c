//! Stacks from Debian packages: the run image and language runtimes assembled from the
//! signed Debian archive, the way distroless images are (DESIGN.md §3).

mod control;
mod packages_index;
mod relation;
mod resolver;
mod version;

pub use packages_index::{InvalidRecord, PackageRecord, parse_packages};
pub use relation::{
    Alternatives, Constraint, InvalidRelation, Operator, Relation, parse_relation, parse_relations,
};
pub use resolver::{
    InstalledPackage, InstalledSet, Resolution, ResolveError, ResolveRequest, ResolvedRecord,
    Universe, resolve,
};
pub use version::{DebVersion, InvalidVersion};
