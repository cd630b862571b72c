//! `SourceTree`: a read-only view of the app's source, with the ignore rules applied and
//! typed readers for the files buildpacks look at.

use std::path::{Component, Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::project::{ProjectDescriptor, ProjectError};

/// Errors reading the app source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("the app directory {path} does not exist")]
    Missing { path: PathBuf },
    #[error("{path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is a symlink to `{target}`, outside the app directory")]
    SymlinkEscapes { path: PathBuf, target: String },
    #[error("invalid pattern `{pattern}` in {path}")]
    BadPattern {
        path: PathBuf,
        pattern: String,
        #[source]
        source: ignore::Error,
    },
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error("cannot copy the app source to {path}")]
    Copy {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Directories never part of an app image: version control metadata.
const ALWAYS_EXCLUDED: &[&str] = &[".git", ".hg", ".svn"];

/// The app source.
#[derive(Debug)]
pub struct SourceTree {
    root: PathBuf,
    project: ProjectDescriptor,
    include: Option<Gitignore>,
    exclude: Option<Gitignore>,
}

impl SourceTree {
    /// Open the app at `root`, reading `project.toml` and checking for escaping symlinks.
    pub fn open(root: &Path) -> Result<Self, SourceError> {
        let metadata = match fs_err::metadata(root) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(SourceError::Missing {
                    path: root.to_path_buf(),
                });
            }
            Err(source) => {
                return Err(SourceError::Read {
                    path: root.to_path_buf(),
                    source,
                });
            }
        };
        if !metadata.is_dir() {
            return Err(SourceError::NotADirectory {
                path: root.to_path_buf(),
            });
        }
        let root = fs_err::canonicalize(root).map_err(|source| SourceError::Read {
            path: root.to_path_buf(),
            source,
        })?;
        let project = ProjectDescriptor::load(&root)?;
        let descriptor_path = root.join("project.toml");
        let include = matcher(&root, &project.include, &descriptor_path)?;
        let exclude = matcher(&root, &project.exclude, &descriptor_path)?;
        let tree = Self {
            root,
            project,
            include,
            exclude,
        };
        tree.check_symlinks()?;
        Ok(tree)
    }

    /// Absolute path of the app directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The project descriptor (default when there is no `project.toml`).
    pub fn project(&self) -> &ProjectDescriptor {
        &self.project
    }

    /// Whether the relative path is part of the app (ignore rules applied).
    pub fn is_included(&self, relative: &Path, is_dir: bool) -> bool {
        if relative.components().any(|component| {
            ALWAYS_EXCLUDED
                .iter()
                .any(|name| component.as_os_str() == *name)
        }) {
            return false;
        }
        if let Some(exclude) = &self.exclude
            && exclude
                .matched_path_or_any_parents(relative, is_dir)
                .is_ignore()
        {
            return false;
        }
        if let Some(include) = &self.include {
            // Directories are walked so that included files below them can be found.
            return is_dir
                || include
                    .matched_path_or_any_parents(relative, is_dir)
                    .is_ignore();
        }
        true
    }

    /// Whether a relative path exists and is included.
    pub fn exists(&self, relative: &str) -> bool {
        let path = self.root.join(relative);
        path.symlink_metadata()
            .is_ok_and(|metadata| self.is_included(Path::new(relative), metadata.is_dir()))
    }

    /// The text of a relative file, or `None` when it does not exist or is excluded.
    pub fn read_to_string(&self, relative: &str) -> Result<Option<String>, SourceError> {
        if !self.exists(relative) || !self.root.join(relative).is_file() {
            return Ok(None);
        }
        let path = self.root.join(relative);
        fs_err::read_to_string(&path)
            .map(Some)
            .map_err(|source| SourceError::Read { path, source })
    }

    /// The absolute path of a relative file.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Every included path (files, dirs, symlinks), relative, sorted.
    pub fn files(&self) -> Result<Vec<PathBuf>, SourceError> {
        let mut found = Vec::new();
        let mut walker = walkdir::WalkDir::new(&self.root)
            .min_depth(1)
            .sort_by_file_name()
            .into_iter();
        while let Some(item) = walker.next() {
            let item = item.map_err(|error| SourceError::Read {
                path: error.path().unwrap_or(&self.root).to_path_buf(),
                source: error.into(),
            })?;
            let relative = item
                .path()
                .strip_prefix(&self.root)
                .expect("under root")
                .to_path_buf();
            if !self.is_included(&relative, item.file_type().is_dir()) {
                if item.file_type().is_dir() {
                    walker.skip_current_dir();
                }
                continue;
            }
            found.push(relative);
        }
        Ok(found)
    }

    fn check_symlinks(&self) -> Result<(), SourceError> {
        for relative in self.files()? {
            let path = self.root.join(&relative);
            let Ok(target) = std::fs::read_link(&path) else {
                continue;
            };
            if !stays_inside(&relative, &target) {
                return Err(SourceError::SymlinkEscapes {
                    path,
                    target: target.display().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Copy the included source into `dest` (created), keeping symlinks as symlinks; build
    /// steps work on this copy so the user's tree is never modified.
    pub fn copy_to(&self, dest: &Path) -> Result<(), SourceError> {
        let copy_error = |source| SourceError::Copy {
            path: dest.to_path_buf(),
            source,
        };
        fs_err::create_dir_all(dest).map_err(copy_error)?;
        for relative in self.files()? {
            let from = self.root.join(&relative);
            let to = dest.join(&relative);
            let metadata = fs_err::symlink_metadata(&from).map_err(copy_error)?;
            if metadata.is_dir() {
                fs_err::create_dir_all(&to).map_err(copy_error)?;
            } else if metadata.file_type().is_symlink() {
                let target = fs_err::read_link(&from).map_err(copy_error)?;
                std::os::unix::fs::symlink(&target, &to).map_err(copy_error)?;
            } else if metadata.is_file() {
                if let Some(parent) = to.parent() {
                    fs_err::create_dir_all(parent).map_err(copy_error)?;
                }
                fs_err::copy(&from, &to).map_err(copy_error)?;
            }
        }
        Ok(())
    }
}

/// Whether a symlink at `link` (relative to the app root) with `target` resolves inside the
/// app, judged lexically. Absolute targets never do: the app lives at another path in the
/// image.
fn stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = link
        .parent()
        .map_or(0, |parent| parent.components().count() as i64);
    for component in target.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

fn matcher(
    root: &Path,
    patterns: &[String],
    descriptor: &Path,
) -> Result<Option<Gitignore>, SourceError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GitignoreBuilder::new(root);
    for pattern in patterns {
        builder
            .add_line(None, pattern)
            .map_err(|source| SourceError::BadPattern {
                path: descriptor.to_path_buf(),
                pattern: pattern.clone(),
                source,
            })?;
    }
    builder
        .build()
        .map(Some)
        .map_err(|source| SourceError::BadPattern {
            path: descriptor.to_path_buf(),
            pattern: patterns.join(", "),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str], project: Option<&str>) -> (tempfile::TempDir, SourceTree) {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        if let Some(project) = project {
            std::fs::write(dir.path().join("project.toml"), project).unwrap();
        }
        let source = SourceTree::open(dir.path()).unwrap();
        (dir, source)
    }

    fn listed(source: &SourceTree) -> Vec<String> {
        source
            .files()
            .unwrap()
            .iter()
            .map(|path| path.display().to_string())
            .collect()
    }

    #[test]
    fn git_is_always_excluded() {
        let (_dir, source) = tree(&["app.py", ".git/HEAD"], None);
        assert_eq!(listed(&source), ["app.py"]);
    }

    #[test]
    fn exclude_patterns_apply() {
        let (_dir, source) = tree(
            &["app.py", "debug.log", "spec/a_test.py"],
            Some("[io.buildpacks]\nexclude = [\"*.log\", \"spec/\"]\n"),
        );
        assert_eq!(listed(&source), ["app.py", "project.toml"]);
    }

    #[test]
    fn include_patterns_keep_only_matches() {
        let (_dir, source) = tree(
            &["cmd/main.go", "go.mod", "README.md"],
            Some("[io.buildpacks]\ninclude = [\"cmd/\", \"go.mod\"]\n"),
        );
        assert_eq!(listed(&source), ["cmd", "cmd/main.go", "go.mod"]);
    }

    #[test]
    fn escaping_symlinks_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("../inside.txt", dir.path().join("sub/ok")).unwrap();
        assert!(SourceTree::open(dir.path()).is_ok());
        std::os::unix::fs::symlink("../../etc/passwd", dir.path().join("sub/bad")).unwrap();
        assert!(matches!(
            SourceTree::open(dir.path()),
            Err(SourceError::SymlinkEscapes { .. })
        ));
    }

    #[test]
    fn absolute_symlinks_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
        assert!(matches!(
            SourceTree::open(dir.path()),
            Err(SourceError::SymlinkEscapes { .. })
        ));
    }
}
