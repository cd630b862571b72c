//! What the app depends on: `requirements.txt` with the files it includes (`-r`, `-c`), or
//! PEP 621 `[project] dependencies` in `pyproject.toml`. Produces the names (to recognize
//! frameworks) and one hash over everything pip will read (to key the dependency layer).

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::error::PythonError;
use crate::source::SourceTree;

/// The requirements file kiln installs from.
pub const REQUIREMENTS_TXT: &str = "requirements.txt";
/// The PEP 621 project file.
pub const PYPROJECT_TOML: &str = "pyproject.toml";

/// Where the dependencies are declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencySource {
    /// `requirements.txt` (pip reads it and its includes itself).
    RequirementsTxt,
    /// PEP 621 dependencies from `pyproject.toml`, passed to pip as a generated file.
    Pyproject {
        /// The requirement strings.
        dependencies: Vec<String>,
    },
}

/// The app's declared dependencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependencies {
    /// Where they come from.
    pub source: DependencySource,
    /// Normalized names of the requirements (no constraints, no URLs).
    pub names: BTreeSet<String>,
    /// Every file read, relative to the app (the hash covers these).
    pub files: Vec<String>,
    /// sha256 over the files' paths and content (or the PEP 621 list).
    pub sha256: String,
    /// Whether any requirement or option is listed (an empty file installs nothing).
    pub has_entries: bool,
}

impl Dependencies {
    /// No dependency file at all.
    pub fn none() -> Self {
        Self {
            source: DependencySource::RequirementsTxt,
            names: BTreeSet::new(),
            files: Vec::new(),
            sha256: String::new(),
            has_entries: false,
        }
    }

    /// The file users edit to change dependencies.
    pub fn declared_in(&self) -> &'static str {
        match self.source {
            DependencySource::RequirementsTxt => REQUIREMENTS_TXT,
            DependencySource::Pyproject { .. } => PYPROJECT_TOML,
        }
    }

    /// Whether nothing is listed at all.
    pub fn is_empty(&self) -> bool {
        !self.has_entries
    }
}

/// Read the app's dependencies: `requirements.txt` wins over `pyproject.toml` (apps often
/// keep tool settings in pyproject.toml and pins in requirements.txt). `None` when neither
/// declares dependencies.
pub fn read_dependencies(source: &SourceTree) -> Result<Option<Dependencies>, PythonError> {
    if source
        .read_to_string(REQUIREMENTS_TXT)
        .map_err(PythonError::ReadSource)?
        .is_some()
    {
        let read = |relative: &str| {
            source
                .read_to_string(relative)
                .map_err(PythonError::ReadSource)
        };
        return read_requirement_files(REQUIREMENTS_TXT, &read).map(Some);
    }
    let Some(text) = source
        .read_to_string(PYPROJECT_TOML)
        .map_err(PythonError::ReadSource)?
    else {
        return Ok(None);
    };
    let Some(dependencies) = pep621_dependencies(&text, PYPROJECT_TOML)? else {
        return Ok(None);
    };
    let names = dependencies
        .iter()
        .filter_map(|line| requirement_name(line))
        .collect();
    let mut hasher = Sha256::new();
    hasher.update(b"pyproject.toml [project] dependencies\0");
    for dependency in &dependencies {
        hasher.update(dependency.trim().as_bytes());
        hasher.update(b"\0");
    }
    Ok(Some(Dependencies {
        sha256: hex::encode(hasher.finalize()),
        names,
        files: vec![PYPROJECT_TOML.to_owned()],
        has_entries: !dependencies.is_empty(),
        source: DependencySource::Pyproject { dependencies },
    }))
}

/// Follow `root` and every file it includes (`-r`/`--requirement`, `-c`/`--constraint`),
/// collecting requirement names and hashing each file's path and bytes. `read` returns a
/// file's text relative to the app, `None` when missing.
pub fn read_requirement_files(
    root: &str,
    read: &dyn Fn(&str) -> Result<Option<String>, PythonError>,
) -> Result<Dependencies, PythonError> {
    let mut names = BTreeSet::new();
    let mut files: Vec<String> = Vec::new();
    let mut hasher = Sha256::new();
    let mut has_entries = false;
    let mut pending = vec![PendingFile {
        file: root.to_owned(),
        constraints: false,
        included_from: None,
    }];
    while let Some(PendingFile {
        file,
        constraints,
        included_from,
    }) = pending.pop()
    {
        if files.contains(&file) {
            continue;
        }
        let Some(text) = read(&file)? else {
            return Err(match included_from {
                Some(from) => PythonError::IncludeMissing {
                    file: from.file,
                    line: from.line,
                    include: from.include,
                },
                None => PythonError::IncludeMissing {
                    file: file.clone(),
                    line: 0,
                    include: file,
                },
            });
        };
        hasher.update(file.as_bytes());
        hasher.update(b"\0");
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
        files.push(file.clone());
        let mut includes = Vec::new();
        for (line_number, line) in logical_lines(&text) {
            if let Some((kind, path)) = include_directive(&line) {
                let resolved =
                    resolve_include(&file, path).ok_or_else(|| PythonError::IncludeOutsideApp {
                        file: file.clone(),
                        line: line_number,
                        include: path.to_owned(),
                    })?;
                includes.push(PendingFile {
                    file: resolved,
                    constraints: kind == Include::Constraints,
                    included_from: Some(IncludeSite {
                        file: file.clone(),
                        line: line_number,
                        include: path.to_owned(),
                    }),
                });
            } else if !constraints {
                has_entries = true;
                if let Some(name) = requirement_name(&line) {
                    names.insert(name);
                }
            }
        }
        // Depth-first in file order, so the hash does not depend on the stack's order.
        pending.extend(includes.into_iter().rev());
    }
    Ok(Dependencies {
        source: DependencySource::RequirementsTxt,
        names,
        files,
        sha256: hex::encode(hasher.finalize()),
        has_entries,
    })
}

/// A requirements or constraints file still to read.
struct PendingFile {
    file: String,
    constraints: bool,
    included_from: Option<IncludeSite>,
}

/// The line that included a file, for errors.
struct IncludeSite {
    file: String,
    line: usize,
    include: String,
}

#[derive(Debug, PartialEq, Eq)]
enum Include {
    Requirements,
    Constraints,
}

/// Lines as pip sees them: `\` continuations joined, comments (`#` at the start or after
/// whitespace) removed, blank lines dropped. Yields the 1-based number of the first line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        if current.is_empty() {
            start = index + 1;
        }
        let without_comment = strip_comment(raw);
        match without_comment.strip_suffix('\\') {
            Some(continued) => current.push_str(continued),
            None => {
                current.push_str(without_comment);
                let line = current.trim().to_owned();
                if !line.is_empty() {
                    lines.push((start, line));
                }
                current.clear();
            }
        }
    }
    let line = current.trim();
    if !line.is_empty() {
        lines.push((start, line.to_owned()));
    }
    lines
}

fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    match line.find(" #").or_else(|| line.find("\t#")) {
        Some(index) => &line[..index],
        None => line,
    }
}

/// `-r file`, `--requirement file`, `--requirement=file`, `-rfile` and the `-c` forms.
fn include_directive(line: &str) -> Option<(Include, &str)> {
    for (flags, kind) in [
        (["--requirement", "-r"], Include::Requirements),
        (["--constraint", "-c"], Include::Constraints),
    ] {
        for flag in flags {
            if let Some(rest) = line.strip_prefix(flag) {
                let path = rest.strip_prefix('=').unwrap_or(rest).trim();
                // `-rfoo` is valid pip syntax, `--requirementsfoo` is not a flag we know.
                if path.is_empty()
                    || (flag.starts_with("--") && !rest.starts_with([' ', '\t', '=']))
                {
                    continue;
                }
                return Some((kind, path));
            }
        }
    }
    None
}

/// The include's path relative to the app, resolved against the including file's directory;
/// `None` when it is absolute, a URL, or leaves the app.
fn resolve_include(including: &str, include: &str) -> Option<String> {
    if include.contains("://") || Path::new(include).is_absolute() {
        return None;
    }
    let base = Path::new(including).parent().unwrap_or(Path::new(""));
    let mut resolved = PathBuf::new();
    for component in base.join(include).components() {
        match component {
            Component::Normal(part) => resolved.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !resolved.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(resolved.to_string_lossy().into_owned())
}

/// The normalized project name a requirement line names (`Flask[async]>=3 ; python_version>"3"`
/// → `flask`); `None` for options, paths and URLs.
pub fn requirement_name(line: &str) -> Option<String> {
    let line = line.trim();
    if line.starts_with('-')
        || line.starts_with('.')
        || line.starts_with('/')
        || line.contains("://") && !line.contains(" @ ")
    {
        return None;
    }
    let name: String = line
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let rest = &line[name.len()..];
    let valid_end = rest.is_empty()
        || rest.starts_with([' ', '\t', '[', '<', '>', '=', '!', '~', ';', '@', '(']);
    let valid_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    (valid_start && valid_end && !name.ends_with(['.', '-', '_'])).then(|| normalize_name(&name))
}

/// PEP 503 normalization: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !normalized.ends_with('-') {
                normalized.push('-');
            }
        } else {
            normalized.push(c.to_ascii_lowercase());
        }
    }
    normalized
}

/// PEP 621 `[project] dependencies`: `None` when the table or key is absent (a pyproject.toml
/// that only configures tools), the list otherwise.
pub fn pep621_dependencies(text: &str, file: &str) -> Result<Option<Vec<String>>, PythonError> {
    let document: toml::Table =
        toml::from_str(text).map_err(|source| PythonError::ParsePyproject {
            file: file.to_owned(),
            source: Box::new(source),
        })?;
    let Some(project) = document.get("project").and_then(toml::Value::as_table) else {
        return Ok(None);
    };
    let Some(dependencies) = project.get("dependencies") else {
        return Ok(None);
    };
    let not_strings = || PythonError::PyprojectDependencies {
        file: file.to_owned(),
    };
    dependencies
        .as_array()
        .ok_or_else(not_strings)?
        .iter()
        .map(|value| value.as_str().map(str::to_owned).ok_or_else(not_strings))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn read_from(
        files: &BTreeMap<&str, &str>,
    ) -> impl Fn(&str) -> Result<Option<String>, PythonError> {
        move |path: &str| Ok(files.get(path).map(|text| (*text).to_owned()))
    }

    fn names(dependencies: &Dependencies) -> Vec<&str> {
        dependencies.names.iter().map(String::as_str).collect()
    }

    #[test]
    fn names_are_normalized_and_options_skipped() {
        let files = BTreeMap::from([(
            "requirements.txt",
            "# web\nFlask[async]>=3.0 ; python_version > \"3.8\"\nzope.interface==6  # pinned\n--index-url https://example.invalid/simple\n\
             -e ./local\ngit+https://example.invalid/x.git\nmy_pkg @ https://example.invalid/p.whl\nrequests \\\n  >=2\n",
        )]);
        let dependencies = read_requirement_files("requirements.txt", &read_from(&files)).unwrap();
        assert_eq!(
            names(&dependencies),
            ["flask", "my-pkg", "requests", "zope-interface"]
        );
        assert!(
            dependencies
                .names
                .contains(&normalize_name("Zope_Interface"))
        );
    }

    #[test]
    fn includes_are_followed_and_hashed_constraints_give_no_names() {
        let mut files = BTreeMap::from([
            (
                "requirements.txt",
                "-r requirements/base.txt\n-c constraints.txt\ngunicorn\n",
            ),
            (
                "requirements/base.txt",
                "--requirement=../shared.txt\nflask\n",
            ),
            ("shared.txt", "requests\n"),
            ("constraints.txt", "urllib3<2\n"),
        ]);
        let first = read_requirement_files("requirements.txt", &read_from(&files)).unwrap();
        assert_eq!(names(&first), ["flask", "gunicorn", "requests"]);
        assert_eq!(
            first.files,
            [
                "requirements.txt",
                "requirements/base.txt",
                "shared.txt",
                "constraints.txt"
            ]
        );

        let again = read_requirement_files("requirements.txt", &read_from(&files)).unwrap();
        assert_eq!(first.sha256, again.sha256, "hashing is deterministic");
        files.insert("constraints.txt", "urllib3<3\n");
        let changed = read_requirement_files("requirements.txt", &read_from(&files)).unwrap();
        assert_ne!(
            first.sha256, changed.sha256,
            "a change in an included file changes the hash"
        );
    }

    #[test]
    fn include_cycles_terminate() {
        let files = BTreeMap::from([
            ("requirements.txt", "-r other.txt\na\n"),
            ("other.txt", "-r requirements.txt\nb\n"),
        ]);
        let dependencies = read_requirement_files("requirements.txt", &read_from(&files)).unwrap();
        assert_eq!(names(&dependencies), ["a", "b"]);
    }

    #[test]
    fn bad_includes_are_errors_naming_file_and_line() {
        let files = BTreeMap::from([("requirements.txt", "flask\n-r missing.txt\n")]);
        assert!(matches!(
            read_requirement_files("requirements.txt", &read_from(&files)),
            Err(PythonError::IncludeMissing { line: 2, .. })
        ));
        for include in [
            "-r ../outside.txt",
            "-r /etc/passwd",
            "-c https://example.invalid/c.txt",
        ] {
            let files = BTreeMap::from([("requirements.txt", include)]);
            assert!(
                matches!(
                    read_requirement_files("requirements.txt", &read_from(&files)),
                    Err(PythonError::IncludeOutsideApp { line: 1, .. })
                ),
                "{include}"
            );
        }
    }

    #[test]
    fn empty_requirements_are_empty() {
        let files = BTreeMap::from([("requirements.txt", "# nothing yet\n\n")]);
        assert!(
            read_requirement_files("requirements.txt", &read_from(&files))
                .unwrap()
                .is_empty()
        );
        let files = BTreeMap::from([("requirements.txt", "flask\n")]);
        assert!(
            !read_requirement_files("requirements.txt", &read_from(&files))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn pyproject_dependencies_are_read_when_declared() {
        let text = "[project]\nname = \"demo\"\ndependencies = [\"fastapi>=0.110\", \"uvicorn[standard]\"]\n";
        assert_eq!(
            pep621_dependencies(text, "pyproject.toml")
                .unwrap()
                .unwrap(),
            ["fastapi>=0.110", "uvicorn[standard]"]
        );
        assert_eq!(
            pep621_dependencies("[tool.black]\nline-length = 100\n", "pyproject.toml").unwrap(),
            None
        );
        assert_eq!(
            pep621_dependencies("[project]\nname = \"x\"\n", "pyproject.toml").unwrap(),
            None
        );
        assert_eq!(
            pep621_dependencies("[project]\ndependencies = []\n", "pyproject.toml")
                .unwrap()
                .unwrap(),
            Vec::<String>::new()
        );
        assert!(matches!(
            pep621_dependencies("[project]\ndependencies = \"flask\"\n", "pyproject.toml"),
            Err(PythonError::PyprojectDependencies { .. })
        ));
        assert!(matches!(
            pep621_dependencies("[project", "pyproject.toml"),
            Err(PythonError::ParsePyproject { .. })
        ));
    }

    #[test]
    fn requirement_names_reject_non_names() {
        assert_eq!(requirement_name("Django~=5.0"), Some("django".to_owned()));
        assert_eq!(
            requirement_name("ruamel.yaml"),
            Some("ruamel-yaml".to_owned())
        );
        assert_eq!(requirement_name("./wheels/x.whl"), None);
        assert_eq!(requirement_name("--no-binary :all:"), None);
        assert_eq!(requirement_name("foo/bar"), None);
    }
}
