//! Registry flags shared by every command that reads or writes images.

use std::path::PathBuf;

use clap::Args;

use crate::registry::TransportOptions;

/// How to reach registries.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Reach this registry (HOST[:PORT]) over plain HTTP (repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// Also trust the CA certificates in this PEM file for registries.
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Option<PathBuf>,
}

impl RegistryArgs {
    /// The transport options these flags ask for.
    pub fn transport(&self) -> TransportOptions {
        TransportOptions {
            extra_ca: self.registry_ca.clone(),
            insecure_registries: self.insecure_registries.clone(),
        }
    }
}
