//! Stacks from Debian packages: the run image and language runtimes assembled from the
//! signed Debian archive, the way distroless images are (DESIGN.md §3).

mod apt_config;
mod apt_sources;
mod archive;
mod builder_config;
mod control;
mod deb;
mod download;
mod error;
mod java_keystore;
mod lock;
mod mirror;
mod packages_index;
mod pinning;
mod relation;
mod release;
mod resolver;
mod run_image;
mod runtime;
mod signature;
mod synthesize;
mod tree;
mod unpack;
mod usr_merge;
mod version;

pub use apt_config::AptConfig;
pub use apt_sources::{AptSource, SignedBy, load_sources};
pub use archive::{
    ARCH, IndexFile, LoadedUniverse, VerifiedSuite, index_files, load_index, load_universe,
    verify_suite,
};
pub use builder_config::{BuilderStack, Distro};
pub use deb::{DebContents, DebEntry, DebEntryKind, read_deb};
pub use download::{Expected, Fetcher};
pub use error::StackError;
pub use java_keystore::{jks_truststore, pem_certificates};
pub use lock::{Lock, LockMode, LockedSet, ResolvedPackage, cached_lock_path, package_set_digest};
pub use mirror::{KEYRING_ENV, MIRROR_ENV, MirrorOverrides, MirrorPlan, SuiteSetting, SuiteSource};
pub use packages_index::{InvalidRecord, PackageRecord, parse_packages};
pub use pinning::lock_path;
pub use relation::{
    Alternatives, Constraint, InvalidRelation, Operator, Relation, parse_relation, parse_relations,
};
pub use release::{Release, parse_release_date};
pub use resolver::{
    InstalledPackage, InstalledSet, Resolution, ResolveError, ResolveRequest, ResolvedRecord,
    Universe, resolve,
};
pub use run_image::{
    RUN_IMAGE_PATH, RUN_IMAGE_USER, RunImage, RunImageSummary, assemble_run_image, plan_run_image,
};
pub use runtime::{
    JAVA_CACERTS, RuntimeLayer, RuntimePlan, RuntimeRequest, assemble_runtime, plan_runtime,
};
pub use signature::{Keyring, verify_inrelease};
pub use synthesize::CA_BUNDLE;
pub use tree::{PackageTree, STATUS_DIR};
pub use usr_merge::merged_path;
pub use version::{DebVersion, InvalidVersion};
