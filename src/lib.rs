//! kiln: turn a source tree into a runnable, rebasable OCI image. No Dockerfile, no daemon, no root.
pub mod layer;
pub mod oci;
