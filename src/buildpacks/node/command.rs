//! Running host tools (npm, yarn, pnpm, node) with the clean build environment: output is
//! logged line by line as it comes and its tail kept for the error when the tool fails.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use super::error::NodeError;
use crate::buildpack::BuildEnv;

/// Lines of output kept for an error message.
const TAIL_LINES: usize = 25;

/// A tool invocation.
pub struct Tool<'a> {
    /// Program name (looked up on the build PATH) or path.
    pub program: &'a Path,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra variables on top of the build environment.
    pub env: Vec<(String, String)>,
}

/// What a successful run printed.
#[derive(Debug, Clone, Default)]
pub struct ToolOutput {
    /// Every line, stdout and stderr interleaved as written.
    pub lines: Vec<String>,
}

impl Tool<'_> {
    /// How the command reads in logs and errors: program name and arguments.
    pub fn display(&self) -> String {
        let name = self
            .program
            .file_name()
            .unwrap_or(self.program.as_os_str())
            .to_string_lossy();
        std::iter::once(name.into_owned())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Run in `dir`, logging each output line; a non-zero exit is `ToolFailed` with the tail
    /// of the output.
    pub fn run(
        &self,
        build_env: &BuildEnv,
        dir: &Path,
        log: &dyn Fn(&str),
    ) -> Result<ToolOutput, NodeError> {
        let display = self.display();
        let start_error = |source| NodeError::StartTool {
            command: display.clone(),
            source,
        };
        // One pipe for both streams keeps their order, as a terminal would show it.
        let (reader, writer) = std::io::pipe().map_err(start_error)?;
        let mut command = build_env.command(self.program, dir);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(writer.try_clone().map_err(start_error)?)
            .stderr(writer);
        let mut child = command.spawn().map_err(start_error)?;
        // The parent's copies of the write end must be gone, or reading never ends.
        drop(command);
        let mut output = ToolOutput::default();
        let mut tail = VecDeque::with_capacity(TAIL_LINES);
        for line in BufReader::new(reader).split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line).trim_end().to_owned();
            log(&format!("  {line}"));
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.clone());
            output.lines.push(line);
        }
        let status = child.wait().map_err(start_error)?;
        if status.success() {
            Ok(output)
        } else {
            Err(NodeError::ToolFailed {
                command: display,
                status: status.to_string(),
                tail: tail.into_iter().collect::<Vec<_>>().join("\n"),
                lines: output.lines,
            })
        }
    }

    /// Run quietly and return the first line of output (`--version` probes). `None` when the
    /// program is missing or fails.
    pub fn probe(&self, build_env: &BuildEnv, dir: &Path) -> Option<String> {
        let output = build_env
            .command(self.program, dir)
            .args(&self.args)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .output()
            .ok()?;
        if !output.status.success() {
            return None;
        }
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_keeps_the_output_tail_in_order() {
        let env = BuildEnv::new(Vec::new());
        let dir = tempfile::tempdir().unwrap();
        let tool = Tool {
            program: Path::new("sh"),
            args: vec!["-c".to_owned(), "echo one; echo two >&2; exit 3".to_owned()],
            env: Vec::new(),
        };
        let logged = std::cell::RefCell::new(Vec::new());
        let error = tool
            .run(&env, dir.path(), &|line| {
                logged.borrow_mut().push(line.to_owned())
            })
            .unwrap_err();
        match error {
            NodeError::ToolFailed { tail, status, .. } => {
                assert_eq!(tail, "one\ntwo");
                assert!(status.contains('3'), "{status}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(logged.into_inner(), ["  one", "  two"]);
    }

    #[test]
    fn probe_reads_the_first_line_and_missing_programs_are_none() {
        let env = BuildEnv::new(Vec::new());
        let dir = tempfile::tempdir().unwrap();
        let echo = Tool {
            program: Path::new("sh"),
            args: vec!["-c".to_owned(), "echo; echo 1.2.3".to_owned()],
            env: Vec::new(),
        };
        assert_eq!(echo.probe(&env, dir.path()).as_deref(), Some("1.2.3"));
        let missing = Tool {
            program: Path::new("kiln-no-such-tool"),
            args: Vec::new(),
            env: Vec::new(),
        };
        assert_eq!(missing.probe(&env, dir.path()), None);
    }
}
