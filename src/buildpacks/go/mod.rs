//! The Go buildpack: a module with a main package becomes a static binary in a launch
//! layer, built offline (vendored modules or the module cache, never a proxy or a
//! toolchain download) and reproducibly (same source and toolchain → same bytes).

mod build;
mod constraint;
mod detect;
mod error;
mod fingerprint;
mod gomod;
mod targets;
mod toolchain;
mod version;

use std::sync::LazyLock;

pub use error::GoError;

use crate::buildpack::{
    BuildContext, BuildResult, Buildpack, BuildpackDescriptor, BuildpackFailure, DetectContext,
    Detection,
};

static DESCRIPTOR: LazyLock<BuildpackDescriptor> = LazyLock::new(|| {
    BuildpackDescriptor::parse(
        include_str!("../../../buildpacks/kiln/go/buildpack.toml"),
        "kiln/go",
    )
    .expect("the embedded descriptor is valid")
});

/// The Go buildpack.
pub struct Go;

impl Buildpack for Go {
    fn descriptor(&self) -> &BuildpackDescriptor {
        &DESCRIPTOR
    }

    fn detect(&self, context: &DetectContext<'_>) -> Result<Detection, BuildpackFailure> {
        let app = detect::analyze(context.source, context.env, context.target)?;
        Ok(detect::detection(app.as_ref()))
    }

    fn build(&self, context: &mut BuildContext<'_>) -> Result<BuildResult, BuildpackFailure> {
        build::build(context)
    }
}
