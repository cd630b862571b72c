//! Stacks from Debian packages: the run image and language runtimes assembled from the
//! signed Debian archive, the way distroless images are (DESIGN.md §3).

mod apt_config;
mod apt_sources;
mod archive;
mod control;
mod download;
mod error;
mod mirror;
mod release;
mod signature;
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
pub use apt_config::AptConfig;
pub use apt_sources::{AptSource, SignedBy, load_sources};
pub use archive::{ARCH, SuiteIndex, load_suite};
pub use download::{Expected, Fetcher};
pub use error::StackError;
pub use mirror::{KEYRING_ENV, MIRROR_ENV, MirrorOverrides, MirrorPlan, SuiteSetting, SuiteSource};
pub use release::{Release, parse_release_date};
pub use signature::{Keyring, verify_inrelease};
