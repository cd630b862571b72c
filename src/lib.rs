//! kiln: turn a source tree into a runnable, rebasable OCI image. No Dockerfile, no daemon, no root.
pub mod buildpack;
pub mod buildpacks;
pub mod cache;
pub mod cli;
pub mod diagnostic;
pub mod env;
pub mod export;
pub mod images;
pub mod layer;
pub mod oci;
pub mod pipeline;
pub mod project;
pub mod registry;
pub mod run;
pub mod source;
pub mod stack;
