//! Which argv the app starts with.

use super::error::RunError;
use super::inroot::{Root, split_components};

/// Directory of CNB process launchers inside an image.
const PROCESS_DIR: &str = "/cnb/process";

/// What to run in the image. Suggested `kiln run` mapping: no command → [`RunCommand::Image`];
/// `--process TYPE [-- ARGS]` → [`RunCommand::Process`]; `-- CMD ARGS` →
/// [`RunCommand::Replace`] (kiln images have their default process as Entrypoint, so only a
/// replaced argv runs an arbitrary command, like `docker run --entrypoint`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum RunCommand {
    /// The image's Entrypoint followed by its Cmd (`docker run IMAGE`).
    #[default]
    Image,
    /// The image's Entrypoint followed by these arguments instead of its Cmd
    /// (`docker run IMAGE ARGS…`).
    ImageWithArgs(Vec<String>),
    /// This argv instead of Entrypoint and Cmd (`docker run --entrypoint`): the way to run any
    /// command in an image whose Entrypoint is its default process.
    Replace(Vec<String>),
    /// The CNB process type's launcher `/cnb/process/<type>`, followed by `args`.
    Process {
        process_type: String,
        args: Vec<String>,
    },
}

/// Resolve the argv for `command` against the image config's Entrypoint and Cmd.
pub(super) fn argv(
    command: &RunCommand,
    entrypoint: &[String],
    cmd: &[String],
    root: &Root,
) -> Result<Vec<String>, RunError> {
    let argv = match command {
        RunCommand::Image => [entrypoint, cmd].concat(),
        RunCommand::ImageWithArgs(args) => [entrypoint, args.as_slice()].concat(),
        RunCommand::Replace(argv) => argv.clone(),
        RunCommand::Process { process_type, args } => {
            check_process_type(process_type, root)?;
            let mut argv = vec![format!("{PROCESS_DIR}/{process_type}")];
            argv.extend(args.iter().cloned());
            argv
        }
    };
    if argv.first().is_none_or(String::is_empty) {
        return Err(RunError::NoCommand);
    }
    Ok(argv)
}

fn check_process_type(process_type: &str, root: &Root) -> Result<(), RunError> {
    let valid = !process_type.is_empty()
        && process_type != "."
        && process_type != ".."
        && !process_type.contains(['/', '\0']);
    if !valid {
        return Err(RunError::InvalidProcessType {
            process_type: process_type.to_owned(),
        });
    }
    let path = format!("{PROCESS_DIR}/{process_type}");
    if root.exists(&split_components(path.as_bytes())) {
        return Ok(());
    }
    Err(RunError::UnknownProcessType {
        process_type: process_type.to_owned(),
        available: root.list(&split_components(PROCESS_DIR.as_bytes())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn docker_semantics() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cnb/process")).unwrap();
        std::fs::write(dir.path().join("cnb/process/web"), b"").unwrap();
        let root = Root::open(dir.path()).unwrap();
        let entrypoint = strings(&["/cnb/process/web"]);
        let cmd = strings(&["--port", "80"]);
        let resolve = |command: RunCommand| argv(&command, &entrypoint, &cmd, &root);
        assert_eq!(
            resolve(RunCommand::Image).unwrap(),
            strings(&["/cnb/process/web", "--port", "80"])
        );
        assert_eq!(
            resolve(RunCommand::ImageWithArgs(strings(&["x"]))).unwrap(),
            strings(&["/cnb/process/web", "x"])
        );
        assert_eq!(
            resolve(RunCommand::Replace(strings(&["id", "-u"]))).unwrap(),
            strings(&["id", "-u"])
        );
        let web = RunCommand::Process {
            process_type: "web".to_owned(),
            args: strings(&["a"]),
        };
        assert_eq!(resolve(web).unwrap(), strings(&["/cnb/process/web", "a"]));
        let worker = RunCommand::Process {
            process_type: "worker".to_owned(),
            args: vec![],
        };
        match resolve(worker) {
            Err(RunError::UnknownProcessType { available, .. }) => assert_eq!(available, ["web"]),
            other => panic!("unexpected {other:?}"),
        }
        let escape = RunCommand::Process {
            process_type: "../../bin/sh".to_owned(),
            args: vec![],
        };
        assert!(matches!(
            resolve(escape),
            Err(RunError::InvalidProcessType { .. })
        ));
        assert!(matches!(
            argv(&RunCommand::Image, &[], &[], &root),
            Err(RunError::NoCommand)
        ));
    }
}
