//! `node_modules` lives in its own layer, so the app layer never carries dependencies and an
//! unchanged lockfile reuses the layer as is. The app reaches it through a symlink,
//! `/workspace/node_modules → /layers/kiln_node/modules/node_modules` (and one per
//! workspace package), which Node, ESM imports and `.bin` tools all follow — unlike
//! `NODE_PATH`, which only CommonJS `require` reads.

use std::path::{Component, Path, PathBuf};

use super::APP_DIR;
use super::error::NodeError;
use super::tree::{move_tree, remove_if_present};

/// Build-time files inside `node_modules` that do not belong in the image: tool caches
/// (babel, webpack, eslint…) and pnpm's state file, which records the build machine's store
/// path and a timestamp (only pnpm reads it, and pnpm is not in the image).
const BUILD_LEFTOVERS: &[&str] = &[".cache", ".modules.yaml"];

/// `node_modules` below a module root (`""` is the app root, else a workspace directory).
pub fn modules_dir(base: &Path, root: &str) -> PathBuf {
    if root.is_empty() {
        base.join("node_modules")
    } else {
        base.join(root).join("node_modules")
    }
}

/// Remove `node_modules` from the app copy (a developer's local tree, built for their
/// machine, must not reach the image). Returns the roots that had one.
pub fn remove_app_modules(app_dir: &Path, roots: &[String]) -> Result<Vec<String>, NodeError> {
    let mut removed = Vec::new();
    for root in roots {
        let path = modules_dir(app_dir, root);
        if remove_if_present(&path).map_err(|source| NodeError::Relocate { path, source })? {
            removed.push(root.clone());
        }
    }
    Ok(removed)
}

/// Move each root's `node_modules` from the app into `layer_dir` (mirroring the app's
/// layout), rewriting symlinks that point out of `node_modules` (workspace packages, `file:`
/// dependencies) into absolute `/workspace/…` paths, which stay right after the move.
pub fn move_into_layer(
    app_dir: &Path,
    layer_dir: &Path,
    roots: &[String],
) -> Result<(), NodeError> {
    for root in roots {
        let from = modules_dir(app_dir, root);
        if !from.is_dir() {
            continue;
        }
        rewrite_outward_links(app_dir, &from)?;
        for leftover in BUILD_LEFTOVERS {
            let path = from.join(leftover);
            remove_if_present(&path).map_err(|source| NodeError::Relocate { path, source })?;
        }
        let to = modules_dir(layer_dir, root);
        move_tree(&from, &to).map_err(|source| NodeError::Relocate { path: from, source })?;
    }
    Ok(())
}

/// Symlink each root's `node_modules` in the app to the layer's copy at `layer_image_path`,
/// for every root the layer (at `layer_dir` on this machine) holds.
pub fn link_from_app(
    app_dir: &Path,
    layer_dir: &Path,
    layer_image_path: &str,
    roots: &[String],
) -> Result<usize, NodeError> {
    let mut linked = 0;
    for root in roots {
        if !modules_dir(layer_dir, root).is_dir() {
            continue;
        }
        let link = modules_dir(app_dir, root);
        let target = modules_dir(Path::new(layer_image_path), root);
        let parent_exists = link.parent().is_some_and(Path::is_dir);
        if !parent_exists {
            continue;
        }
        remove_if_present(&link).map_err(|source| NodeError::Relocate {
            path: link.clone(),
            source,
        })?;
        fs_err::os::unix::fs::symlink(&target, &link)
            .map_err(|source| NodeError::Relocate { path: link, source })?;
        linked += 1;
    }
    Ok(linked)
}

fn rewrite_outward_links(app_dir: &Path, modules: &Path) -> Result<(), NodeError> {
    let relocate_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| NodeError::Relocate { path, source }
    };
    for item in walkdir::WalkDir::new(modules)
        .min_depth(1)
        .follow_links(false)
    {
        let item = item.map_err(|error| NodeError::Relocate {
            path: error.path().unwrap_or(modules).to_path_buf(),
            source: error.into(),
        })?;
        if !item.file_type().is_symlink() {
            continue;
        }
        let link = item.path();
        let target = fs_err::read_link(link).map_err(relocate_error(link))?;
        let relative_link = link.strip_prefix(app_dir).unwrap_or(link);
        let relative_modules = modules.strip_prefix(app_dir).unwrap_or(modules);
        let Some(resolved) = resolve_in_app(app_dir, relative_link, &target) else {
            return Err(NodeError::LinkEscapes {
                link: relative_link.display().to_string(),
                target: target.display().to_string(),
            });
        };
        if resolved.starts_with(relative_modules) {
            continue;
        }
        let absolute = Path::new(APP_DIR).join(&resolved);
        fs_err::remove_file(link).map_err(relocate_error(link))?;
        fs_err::os::unix::fs::symlink(&absolute, link).map_err(relocate_error(link))?;
    }
    Ok(())
}

/// Where a symlink at `link` (relative to the app) with `target` points, relative to the
/// app, judged lexically; `None` when it leaves the app.
fn resolve_in_app(app_dir: &Path, link: &Path, target: &Path) -> Option<PathBuf> {
    if target.is_absolute() {
        // Tools that write absolute links into the build directory mean the app's files.
        return normalize(target.strip_prefix(app_dir).ok()?).ok();
    }
    normalize(&link.parent().unwrap_or(Path::new("")).join(target)).ok()
}

fn normalize(path: &Path) -> Result<PathBuf, ()> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::ParentDir => {
                parts.pop().ok_or(())?;
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err(()),
        }
    }
    Ok(parts.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outward_links_become_workspace_paths_and_inner_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        std::fs::create_dir_all(app.join("packages/greeting")).unwrap();
        std::fs::create_dir_all(app.join("node_modules/ms/bin")).unwrap();
        std::fs::create_dir_all(app.join("node_modules/.bin")).unwrap();
        std::os::unix::fs::symlink("../packages/greeting", app.join("node_modules/greeting"))
            .unwrap();
        std::os::unix::fs::symlink("../ms/bin", app.join("node_modules/.bin/ms")).unwrap();
        let layer = dir.path().join("layer");
        let roots = vec![String::new(), "packages/greeting".to_owned()];
        move_into_layer(&app, &layer, &roots).unwrap();
        assert!(!app.join("node_modules").exists());
        assert_eq!(
            std::fs::read_link(layer.join("node_modules/greeting")).unwrap(),
            Path::new("/workspace/packages/greeting")
        );
        assert_eq!(
            std::fs::read_link(layer.join("node_modules/.bin/ms")).unwrap(),
            Path::new("../ms/bin")
        );

        assert_eq!(
            link_from_app(&app, &layer, "/layers/kiln_node/modules", &roots).unwrap(),
            1
        );
        assert_eq!(
            std::fs::read_link(app.join("node_modules")).unwrap(),
            Path::new("/layers/kiln_node/modules/node_modules")
        );
    }

    #[test]
    fn links_leaving_the_app_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        std::fs::create_dir_all(app.join("node_modules")).unwrap();
        std::os::unix::fs::symlink("../../elsewhere", app.join("node_modules/outside")).unwrap();
        let error = move_into_layer(&app, &dir.path().join("layer"), &[String::new()]).unwrap_err();
        assert!(matches!(error, NodeError::LinkEscapes { .. }), "{error:?}");
    }

    #[test]
    fn removes_local_node_modules() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("node_modules/x")).unwrap();
        assert_eq!(
            remove_app_modules(dir.path(), &[String::new()]).unwrap(),
            [String::new()]
        );
        assert!(!dir.path().join("node_modules").exists());
    }
}
