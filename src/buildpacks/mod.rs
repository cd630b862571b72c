//! The first-party buildpacks.

pub mod go;
pub mod java;
pub mod node;
pub mod procfile;
pub mod python;

use crate::buildpack::{Buildpack, BuildpackId};

/// Every first-party buildpack.
pub fn all() -> Vec<Box<dyn Buildpack>> {
    vec![
        Box::new(python::Python),
        Box::new(go::Go),
        Box::new(java::Java),
        Box::new(node::Node),
        Box::new(procfile::Procfile),
    ]
}

/// Find a buildpack by id.
pub fn find<'a>(
    buildpacks: &'a [Box<dyn Buildpack>],
    id: &BuildpackId,
) -> Option<&'a dyn Buildpack> {
    buildpacks
        .iter()
        .find(|buildpack| buildpack.descriptor().id() == id)
        .map(|buildpack| buildpack.as_ref())
}
