//! Workspace packages (npm/Yarn `workspaces`, `pnpm-workspace.yaml`): the directories whose
//! own `node_modules` belong in the dependency layer too.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSetBuilder};

/// Patterns from `pnpm-workspace.yaml`: the items of its top-level `packages:` list. A tiny
/// reader for the one shape this file has, rather than a YAML parser.
pub fn pnpm_workspace_patterns(text: &str) -> Vec<String> {
    let mut patterns = Vec::new();
    let mut in_packages = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with([' ', '\t', '-']) {
            in_packages = trimmed == "packages:";
            continue;
        }
        if in_packages && let Some(item) = trimmed.strip_prefix('-') {
            let item = item
                .split(" #")
                .next()
                .unwrap_or(item)
                .trim()
                .trim_matches(['\'', '"']);
            if !item.is_empty() {
                patterns.push(item.to_owned());
            }
        }
    }
    patterns
}

/// Workspace package directories (relative, sorted): directories holding a `package.json`
/// that match the patterns (`!pattern` excludes), found among the app's `files`.
pub fn workspace_dirs(patterns: &[String], files: &[PathBuf]) -> Vec<String> {
    let mut include = GlobSetBuilder::new();
    let mut exclude = GlobSetBuilder::new();
    for pattern in patterns {
        let (set, pattern) = match pattern.strip_prefix('!') {
            Some(negated) => (&mut exclude, negated),
            None => (&mut include, pattern.as_str()),
        };
        let pattern = pattern.trim_start_matches("./").trim_end_matches('/');
        // A pattern that does not compile cannot match; npm would reject it at install.
        if let Ok(glob) = Glob::new(pattern) {
            set.add(glob);
        }
    }
    let (Ok(include), Ok(exclude)) = (include.build(), exclude.build()) else {
        return Vec::new();
    };
    let mut dirs: Vec<String> = files
        .iter()
        .filter(|file| file.file_name().is_some_and(|name| name == "package.json"))
        .filter_map(|file| file.parent())
        .filter(|dir| !dir.as_os_str().is_empty())
        .filter(|dir| {
            !dir.components()
                .any(|part| part.as_os_str() == "node_modules")
        })
        .filter(|dir| include.is_match(dir) && !exclude.is_match(dir))
        .filter_map(|dir| dir.to_str().map(str::to_owned))
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// The module roots of an app: `""` (the app) first, then its workspace packages.
pub fn module_roots(workspaces: &[String]) -> Vec<String> {
    std::iter::once(String::new())
        .chain(workspaces.iter().cloned())
        .collect()
}

/// Relative path of a workspace's `package.json`.
pub fn package_json_of(dir: &str) -> String {
    Path::new(dir).join("package.json").display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_package_dirs_only() {
        let files: Vec<PathBuf> = [
            "package.json",
            "packages/a/package.json",
            "packages/b/package.json",
            "packages/b/node_modules/x/package.json",
            "packages/c/README.md",
            "tools/private/package.json",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(
            workspace_dirs(&["packages/*".to_owned()], &files),
            ["packages/a", "packages/b"]
        );
        assert_eq!(
            workspace_dirs(
                &[
                    "./packages/*".to_owned(),
                    "!packages/b".to_owned(),
                    "tools/**".to_owned()
                ],
                &files
            ),
            ["packages/a", "tools/private"]
        );
    }

    #[test]
    fn reads_pnpm_workspace_packages() {
        let text = "packages:\n  - 'packages/*'\n  - \"apps/*\" # apps\n  - '!**/test/**'\ncatalog:\n  - nope\n";
        assert_eq!(
            pnpm_workspace_patterns(text),
            ["packages/*", "apps/*", "!**/test/**"]
        );
    }
}
