//! The one place errors become text and exit codes: `error:`, the cause chain, a `hint:`.

use crate::diagnostic::{Diagnose, ErrorClass};

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for user or input problems.
pub const EXIT_USER: i32 = 1;
/// Exit code for usage errors (clap uses it too).
pub const EXIT_USAGE: i32 = 2;
/// Exit code for internal failures.
pub const EXIT_INTERNAL: i32 = 3;

/// Find the first typed error in the chain that can classify itself.
fn diagnose(error: &anyhow::Error) -> Option<(ErrorClass, Option<String>)> {
    for cause in error.chain() {
        macro_rules! try_as {
            ($($kind:ty),* $(,)?) => {
                $(if let Some(typed) = cause.downcast_ref::<$kind>() {
                    return Some((typed.class(), typed.hint()));
                })*
            };
        }
        try_as!(
            crate::pipeline::PipelineError,
            crate::images::OpenImageError,
            crate::export::ExportError,
            crate::registry::RegistryError,
            crate::env::EnvError,
            crate::cache::CacheError,
            crate::pipeline::builder::BuilderError,
            crate::pipeline::time::BadCreationTime,
            crate::cache::PruneError,
            super::CliError,
            crate::run::RunError,
            crate::oci::OciError,
            super::rebase::RebaseCommandError,
            crate::stack::StackError,
        );
        if let Some(failure) = cause.downcast_ref::<crate::buildpack::BuildpackFailure>() {
            return Some((failure.class(), failure.hint()));
        }
    }
    None
}

/// Print `error` to stderr and return the exit code it deserves.
pub fn report(error: &anyhow::Error) -> i32 {
    let (class, hint) = diagnose(error).unwrap_or((ErrorClass::Internal, None));
    let mut chain = error.chain();
    if let Some(first) = chain.next() {
        eprintln!("error: {first}");
    }
    let mut previous = error.to_string();
    for cause in chain {
        let text = cause.to_string();
        // `#[error(transparent)]` wrappers repeat their source's text; say it once.
        if text != previous {
            eprintln!("  caused by: {text}");
        }
        previous = text;
    }
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
    match class {
        ErrorClass::User => EXIT_USER,
        ErrorClass::Internal => {
            eprintln!("(this looks like a bug in kiln; please report it with the output above)");
            EXIT_INTERNAL
        }
    }
}
