//! Terminal output: progress lines on stderr (quiet with `--quiet`, detailed with
//! `--verbose`), results on stdout, spinners only on a TTY.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How chatty to be.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    quiet: bool,
    verbose: bool,
    tty: bool,
}

impl Ui {
    /// From the global flags.
    pub fn new(quiet: bool, verbose: bool) -> Self {
        Self {
            quiet,
            verbose,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// A progress line.
    pub fn info(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// A line shown only with `--verbose`.
    pub fn detail(&self, line: &str) {
        if self.verbose && !self.quiet {
            eprintln!("{line}");
        }
    }

    /// Whether `--verbose` is on.
    pub fn verbose(&self) -> bool {
        self.verbose
    }

    /// A warning (shown even with `--quiet`).
    pub fn warn(&self, line: &str) {
        eprintln!("warning: {line}");
    }

    /// A spinner for a long step, on a TTY only; plain line otherwise.
    pub fn spinner(&self, message: &str) -> Option<ProgressBar> {
        if self.quiet {
            return None;
        }
        if !self.tty {
            eprintln!("{message}");
            return None;
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(bar)
    }
}

/// Print a result line on stdout; a closed pipe (e.g. `| head`) is not an error.
pub fn print_out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
}
