//! Console scripts pip writes into `bin/` start with the build machine's interpreter path
//! (`#!/root/.pyenv/versions/3.11.7/bin/python3`), which does not exist in the image. They
//! are rewritten to the runtime's interpreter so `gunicorn`, `flask`, … work on PATH.

use std::path::Path;

use super::error::PythonError;

/// The interpreter console scripts run with in the image (the runtime layer's python3).
pub const IMAGE_PYTHON: &str = "/usr/bin/python3";

/// Rewrite the Python shebangs of the scripts in `bin_dir`; returns how many were rewritten.
pub fn rewrite_shebangs(bin_dir: &Path) -> Result<usize, PythonError> {
    if !bin_dir.is_dir() {
        return Ok(0);
    }
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PythonError::ProcessDeps { path, source }
    };
    let mut rewritten = 0;
    let mut paths: Vec<_> = fs_err::read_dir(bin_dir)
        .map_err(io_error(bin_dir))?
        .flatten()
        .map(|entry| entry.path())
        .collect();
    paths.sort();
    for path in paths {
        if !path
            .symlink_metadata()
            .is_ok_and(|metadata| metadata.is_file())
        {
            continue;
        }
        let bytes = fs_err::read(&path).map_err(io_error(&path))?;
        if let Some(script) = rewrite(&bytes) {
            fs_err::write(&path, script).map_err(io_error(&path))?;
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

/// The script with its interpreter line replaced, `None` when it is not a Python script
/// with a host interpreter. Handles pip's `/bin/sh` trampoline for long interpreter paths:
/// `#!/bin/sh` + `'''exec' "/long/path/python" "$0" "$@"` + `' '''`.
pub fn rewrite(bytes: &[u8]) -> Option<Vec<u8>> {
    let first_end = bytes.iter().position(|byte| *byte == b'\n')?;
    let first = std::str::from_utf8(&bytes[..first_end]).ok()?;
    let interpreter = first.strip_prefix("#!")?.trim();
    let wanted = format!("#!{IMAGE_PYTHON}");
    if first == wanted {
        return None;
    }
    let rest = &bytes[first_end + 1..];
    if interpreter == "/bin/sh" {
        let text = std::str::from_utf8(rest).ok()?;
        let mut lines = text.splitn(3, '\n');
        let exec = lines.next()?;
        let close = lines.next()?;
        if !(exec.starts_with("'''exec' ") && exec.contains("python") && close.trim() == "' '''") {
            return None;
        }
        let remainder = lines.next().unwrap_or("");
        return Some(format!("{wanted}\n{remainder}").into_bytes());
    }
    let program = interpreter.split_whitespace().next()?;
    let is_python = program
        .rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with("python"))
        || (program.ends_with("/env")
            && interpreter
                .split_whitespace()
                .nth(1)
                .is_some_and(|name| name.starts_with("python")));
    if !is_python {
        return None;
    }
    let mut script = wanted.into_bytes();
    script.push(b'\n');
    script.extend_from_slice(rest);
    Some(script)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_interpreters_become_the_image_python() {
        let script =
            b"#!/root/.pyenv/versions/3.11.7/bin/python3\n# -*- coding: utf-8 -*-\nimport sys\n";
        assert_eq!(
            rewrite(script).unwrap(),
            b"#!/usr/bin/python3\n# -*- coding: utf-8 -*-\nimport sys\n".to_vec()
        );
        assert!(rewrite(b"#!/usr/bin/env python3.11\nprint()\n").is_some());
    }

    #[test]
    fn long_path_trampolines_are_replaced() {
        let script = b"#!/bin/sh\n'''exec' \"/very/long/path with space/bin/python3\" \"$0\" \"$@\"\n' '''\nimport re\n";
        assert_eq!(
            rewrite(script).unwrap(),
            b"#!/usr/bin/python3\nimport re\n".to_vec()
        );
    }

    #[test]
    fn other_files_are_left_alone() {
        assert_eq!(rewrite(b"#!/bin/sh\necho hi\n"), None);
        assert_eq!(rewrite(b"#!/usr/bin/python3\nprint()\n"), None);
        assert_eq!(rewrite(b"\x7fELF binary"), None);
        assert_eq!(rewrite(b"#!/usr/bin/env node\n"), None);
    }

    #[test]
    fn rewrites_scripts_in_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("gunicorn"),
            "#!/opt/py/bin/python3.11\nfrom gunicorn.app.wsgiapp import run\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("tool.sh"), "#!/bin/sh\necho\n").unwrap();
        std::os::unix::fs::symlink("gunicorn", dir.path().join("link")).unwrap();
        assert_eq!(rewrite_shebangs(dir.path()).unwrap(), 1);
        let rewritten = std::fs::read_to_string(dir.path().join("gunicorn")).unwrap();
        assert!(rewritten.starts_with("#!/usr/bin/python3\n"), "{rewritten}");
        assert_eq!(rewrite_shebangs(&dir.path().join("absent")).unwrap(), 0);
    }
}
