//! kiln: turn a source tree into a runnable, rebasable OCI image. No Dockerfile, no daemon, no root.
pub mod cache;
pub mod diagnostic;
pub mod layer;
pub mod oci;
pub mod env;
pub mod project;
pub mod source;
pub mod buildpack;
pub mod buildpacks;
pub mod export;
pub mod images;
pub mod pipeline;
pub mod cli;
