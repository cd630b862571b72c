//! How errors present themselves to users: a class deciding the exit code, and a hint where a
//! fix is known. Every module's error enum implements [`Diagnose`]; the CLI renderer walks
//! the cause chain and asks each typed error it recognizes.

/// Who has to act on an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad input or a problem with the app, its files or the environment: exit 1.
    User,
    /// A bug or an unexpected failure inside kiln: exit 3.
    Internal,
}

/// Classification and hints for a typed error.
pub trait Diagnose: std::error::Error {
    /// Whether the user or kiln must act.
    fn class(&self) -> ErrorClass;

    /// One line telling the user how to fix it, when known.
    fn hint(&self) -> Option<String> {
        None
    }
}
