//! The buildpack contract: detection with reasons, builds that return layers and processes,
//! and the order that decides which buildpacks run. Knows nothing of OCI.

mod context;
mod descriptor;
mod ids;
mod layers;
mod order;
mod previous;
mod process;

pub use context::{
    BuildContext, BuildEnv, DetectContext, LayerStore, RuntimeLayer, RuntimeProvider, Target,
};
pub use descriptor::{BuildpackDescriptor, DescriptorError};
pub use ids::{BuildpackId, InvalidName, LayerName, ProcessType};
pub use layers::{
    EnvAction, EnvChange, Layer, LayerContent, LayerState, LayerTypes, invalidation_reasons,
};
pub use order::{
    DetectReport, GroupReport, Order, OrderGroup, OrderMember, Verdict, resolve_order,
};
pub use previous::{LayerFetch, PreviousLayer, PreviousLayers};
pub use process::{Process, shell_quote};

use crate::diagnostic::Diagnose;

/// A buildpack failure: any module's typed error that knows its class and hint.
pub struct BuildpackFailure(Box<dyn Diagnose + Send + Sync>);

impl BuildpackFailure {
    /// Who must act.
    pub fn class(&self) -> crate::diagnostic::ErrorClass {
        self.0.class()
    }

    /// How to fix it, when known.
    pub fn hint(&self) -> Option<String> {
        self.0.hint()
    }
}

impl std::fmt::Debug for BuildpackFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::fmt::Display for BuildpackFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for BuildpackFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// What a buildpack's detection decided, always with a reason users can read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Detection {
    /// The buildpack applies.
    Pass {
        /// Why (e.g. "found requirements.txt").
        reason: String,
        /// What it will provide, as plain data for `kiln detect --json`.
        plan: Vec<PlanEntry>,
    },
    /// The buildpack does not apply.
    Fail {
        /// Why not (e.g. "no requirements.txt, pyproject.toml or setup.py").
        reason: String,
    },
}

impl Detection {
    /// A pass with no plan entries.
    pub fn pass(reason: impl Into<String>) -> Self {
        Detection::Pass {
            reason: reason.into(),
            plan: Vec::new(),
        }
    }

    /// A failure.
    pub fn fail(reason: impl Into<String>) -> Self {
        Detection::Fail {
            reason: reason.into(),
        }
    }

    /// Whether it passed.
    pub fn passed(&self) -> bool {
        matches!(self, Detection::Pass { .. })
    }
}

/// One thing a buildpack plans to provide (e.g. `python` version `3.11`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlanEntry {
    /// Dependency name.
    pub name: String,
    /// Free-form details (version requested, where it came from…).
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// What a buildpack's build produced.
#[derive(Debug, Default)]
pub struct BuildResult {
    /// Layers, in any order (exported sorted by name).
    pub layers: Vec<Layer>,
    /// Processes; a later buildpack's process replaces an earlier one of the same type.
    pub processes: Vec<Process>,
    /// Image labels to set.
    pub labels: Vec<(String, String)>,
}

/// A buildpack.
pub trait Buildpack: Send + Sync {
    /// Its descriptor (id, version, name…).
    fn descriptor(&self) -> &BuildpackDescriptor;

    /// Decide whether it applies to the app.
    fn detect(&self, context: &DetectContext<'_>) -> Result<Detection, BuildpackFailure>;

    /// Build: fill layers, name processes.
    fn build(&self, context: &mut BuildContext<'_>) -> Result<BuildResult, BuildpackFailure>;
}

impl<E: Diagnose + Send + Sync + 'static> From<E> for BuildpackFailure {
    fn from(error: E) -> Self {
        Self(Box::new(error))
    }
}
