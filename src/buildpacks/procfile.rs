//! The Procfile buildpack: `type: command` lines become process types, for any language.

use std::sync::LazyLock;

use crate::buildpack::{
    BuildContext, BuildResult, Buildpack, BuildpackDescriptor, BuildpackFailure, DetectContext,
    Detection, Process, ProcessType,
};
use crate::diagnostic::{Diagnose, ErrorClass};

static DESCRIPTOR: LazyLock<BuildpackDescriptor> = LazyLock::new(|| {
    BuildpackDescriptor::parse(
        include_str!("../../buildpacks/kiln/procfile/buildpack.toml"),
        "kiln/procfile",
    )
    .expect("the embedded descriptor is valid")
});

/// Errors in a Procfile.
#[derive(Debug, thiserror::Error)]
pub enum ProcfileError {
    #[error("Procfile line {line}: `{text}` is not `type: command`")]
    BadLine { line: usize, text: String },
    #[error(
        "Procfile line {line}: `{name}` is not a valid process type (letters, digits, `.`, `_`, `-`)"
    )]
    BadType { line: usize, name: String },
    #[error("Procfile line {line}: process type `{name}` is defined twice")]
    Duplicate { line: usize, name: String },
    #[error("the Procfile defines no processes")]
    Empty,
    #[error("cannot read the Procfile")]
    Read(#[source] crate::source::SourceError),
}

impl Diagnose for ProcfileError {
    fn class(&self) -> ErrorClass {
        ErrorClass::User
    }

    fn hint(&self) -> Option<String> {
        match self {
            ProcfileError::Read(_) => None,
            _ => Some(
                "each Procfile line reads `type: command`, e.g. `web: python3 app.py`".to_owned(),
            ),
        }
    }
}

/// Parse Procfile text into processes. `web` (or the only process) is marked default.
pub fn parse_procfile(text: &str) -> Result<Vec<Process>, ProcfileError> {
    let mut processes: Vec<Process> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((name, command)) = trimmed.split_once(':') else {
            return Err(ProcfileError::BadLine {
                line,
                text: raw.to_owned(),
            });
        };
        let (name, command) = (name.trim(), command.trim());
        if command.is_empty() {
            return Err(ProcfileError::BadLine {
                line,
                text: raw.to_owned(),
            });
        }
        let process_type = ProcessType::new(name).map_err(|_| ProcfileError::BadType {
            line,
            name: name.to_owned(),
        })?;
        if processes
            .iter()
            .any(|existing| existing.r#type == process_type)
        {
            return Err(ProcfileError::Duplicate {
                line,
                name: name.to_owned(),
            });
        }
        processes.push(Process::from_command_line(process_type, command));
    }
    if processes.is_empty() {
        return Err(ProcfileError::Empty);
    }
    let default_index = match processes
        .iter()
        .position(|process| process.r#type == ProcessType::web())
    {
        Some(index) => Some(index),
        None if processes.len() == 1 => Some(0),
        None => None,
    };
    if let Some(index) = default_index {
        processes[index].default = true;
    }
    Ok(processes)
}

/// The Procfile buildpack.
pub struct Procfile;

impl Buildpack for Procfile {
    fn descriptor(&self) -> &BuildpackDescriptor {
        &DESCRIPTOR
    }

    fn detect(&self, context: &DetectContext<'_>) -> Result<Detection, BuildpackFailure> {
        match context
            .source
            .read_to_string("Procfile")
            .map_err(ProcfileError::Read)?
        {
            None => Ok(Detection::fail("no Procfile")),
            Some(text) => {
                let processes = parse_procfile(&text)?;
                let types: Vec<String> = processes
                    .iter()
                    .map(|process| process.r#type.to_string())
                    .collect();
                Ok(Detection::pass(format!(
                    "Procfile defines {}",
                    types.join(", ")
                )))
            }
        }
    }

    fn build(&self, context: &mut BuildContext<'_>) -> Result<BuildResult, BuildpackFailure> {
        let text = context
            .source
            .read_to_string("Procfile")
            .map_err(ProcfileError::Read)?
            .ok_or(ProcfileError::Empty)?;
        let processes = parse_procfile(&text)?;
        for process in &processes {
            context.log(&format!(
                "process `{}`: {}",
                process.r#type,
                process.command.join(" ")
            ));
        }
        Ok(BuildResult {
            processes,
            ..BuildResult::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types_and_marks_web_default() {
        let processes =
            parse_procfile("# comment\nweb: python3 app.py\nworker: python3 worker.py --loop\n")
                .unwrap();
        assert_eq!(processes.len(), 2);
        assert!(processes[0].default);
        assert!(!processes[1].default);
        assert_eq!(processes[1].command, ["python3", "worker.py", "--loop"]);
    }

    #[test]
    fn single_type_is_default_and_several_without_web_have_none() {
        assert!(parse_procfile("worker: ./run").unwrap()[0].default);
        let processes = parse_procfile("a: ./a\nb: ./b").unwrap();
        assert!(processes.iter().all(|process| !process.default));
    }

    #[test]
    fn rejects_malformed_lines() {
        assert!(matches!(
            parse_procfile("just words"),
            Err(ProcfileError::BadLine { line: 1, .. })
        ));
        assert!(matches!(
            parse_procfile("web:"),
            Err(ProcfileError::BadLine { .. })
        ));
        assert!(matches!(
            parse_procfile("we b: x"),
            Err(ProcfileError::BadType { .. })
        ));
        assert!(matches!(
            parse_procfile("web: a\nweb: b"),
            Err(ProcfileError::Duplicate { line: 2, .. })
        ));
        assert!(matches!(
            parse_procfile("\n# only comments\n"),
            Err(ProcfileError::Empty)
        ));
    }
}
