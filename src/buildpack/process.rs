//! Processes an image can start.

use serde::{Deserialize, Serialize};

use super::ids::ProcessType;

/// A process type contributed by a buildpack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Process type (`web`, `worker`…).
    pub r#type: ProcessType,
    /// Executable and fixed arguments; for a shell process, one element: the script.
    pub command: Vec<String>,
    /// Default arguments, replaced by user-supplied ones.
    pub args: Vec<String>,
    /// Executed directly (argv) rather than through `/bin/sh -c`.
    pub direct: bool,
    /// Whether this buildpack marks it as the default.
    pub default: bool,
    /// Working directory; the app directory when unset.
    pub working_dir: Option<String>,
}

/// Characters that make a command line need a shell: expansion, quoting, redirection,
/// pipelines, globs, command lists.
const SHELL_SYNTAX: &[char] = &[
    '$', '`', '\'', '"', '\\', '|', '&', ';', '<', '>', '(', ')', '*', '?', '[', ']', '{', '}',
    '~', '#', '\n',
];

impl Process {
    /// A process from a command line as users write it (Procfile, start scripts): direct
    /// argv when it needs no shell, else a `/bin/sh -c` script.
    pub fn from_command_line(r#type: ProcessType, line: &str) -> Self {
        let line = line.trim();
        let needs_shell = line.contains(SHELL_SYNTAX)
            || line
                .split_whitespace()
                .next()
                .is_some_and(|word| word.contains('='));
        if needs_shell {
            Self {
                r#type,
                command: vec![line.to_owned()],
                args: Vec::new(),
                direct: false,
                default: false,
                working_dir: None,
            }
        } else {
            Self {
                r#type,
                command: line.split_whitespace().map(str::to_owned).collect(),
                args: Vec::new(),
                direct: true,
                default: false,
                working_dir: None,
            }
        }
    }

    /// A direct process from argv.
    pub fn direct(r#type: ProcessType, argv: &[&str]) -> Self {
        Self {
            r#type,
            command: argv.iter().map(|arg| (*arg).to_owned()).collect(),
            args: Vec::new(),
            direct: true,
            default: false,
            working_dir: None,
        }
    }

    /// Mark as the buildpack's default process.
    pub fn as_default(mut self) -> Self {
        self.default = true;
        self
    }

    /// The image Entrypoint running this process: argv, or `/bin/sh -c SCRIPT`.
    pub fn entrypoint(&self) -> Vec<String> {
        if self.direct {
            self.command.iter().chain(&self.args).cloned().collect()
        } else {
            vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                self.command.join(" "),
            ]
        }
    }

    /// The `/cnb/process/<type>` script: runs the process, user arguments replacing the
    /// default ones (as the CNB launcher does).
    pub fn launcher_script(&self, app_dir: &str) -> String {
        let working_dir = self.working_dir.as_deref().unwrap_or(app_dir);
        let mut script = format!(
            "#!/bin/sh\n# kiln process `{}`\ncd {} || exit 1\n",
            self.r#type,
            shell_quote(working_dir)
        );
        if self.direct {
            if !self.args.is_empty() {
                let defaults: Vec<String> = self.args.iter().map(|arg| shell_quote(arg)).collect();
                script.push_str(&format!(
                    "[ \"$#\" -eq 0 ] && set -- {}\n",
                    defaults.join(" ")
                ));
            }
            let command: Vec<String> = self.command.iter().map(|arg| shell_quote(arg)).collect();
            script.push_str(&format!("exec {} \"$@\"\n", command.join(" ")));
        } else {
            script.push_str(&self.command.join(" "));
            script.push('\n');
        }
        script
    }
}

/// Quote a word for POSIX sh.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> ProcessType {
        ProcessType::web()
    }

    #[test]
    fn plain_commands_run_directly() {
        let process = Process::from_command_line(web(), "python3 app.py --fast");
        assert!(process.direct);
        assert_eq!(process.entrypoint(), ["python3", "app.py", "--fast"]);
    }

    #[test]
    fn shell_syntax_goes_through_sh() {
        for line in [
            "gunicorn -b 0.0.0.0:$PORT app:app",
            "echo hi && sleep 1",
            "A=1 ./run",
            "echo 'quoted'",
        ] {
            let process = Process::from_command_line(web(), line);
            assert!(!process.direct, "{line}");
            assert_eq!(process.entrypoint(), ["/bin/sh", "-c", line]);
        }
    }

    #[test]
    fn launcher_script_quotes_and_passes_arguments() {
        let mut process = Process::direct(web(), &["node", "server.js"]);
        process.args = vec!["--port".to_owned(), "it's".to_owned()];
        let script = process.launcher_script("/workspace");
        assert!(script.contains("cd /workspace"));
        assert!(script.contains(r#"set -- --port 'it'\''s'"#));
        assert!(script.contains(r#"exec node server.js "$@""#));
    }
}
