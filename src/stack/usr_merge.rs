//! Debian is usr-merged: `/bin`, `/sbin` and `/lib*` are links into `/usr`. Packages still
//! ship some files under the old paths; a real directory there in any layer would hide the
//! link and break every program, so such paths are moved under `usr/`.

/// Top-level directories that are links into `usr/` on a merged system.
pub const MERGED_DIRS: [&str; 7] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32", "libo32"];

/// The path a package path lives at on a usr-merged system.
pub fn merged_path(path: &str) -> String {
    let first = path.split('/').next().unwrap_or_default();
    if MERGED_DIRS.contains(&first) {
        format!("usr/{path}")
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_only_the_merged_top_level_directories() {
        assert_eq!(
            merged_path("lib/x86_64-linux-gnu/libexpat.so.1"),
            "usr/lib/x86_64-linux-gnu/libexpat.so.1"
        );
        assert_eq!(merged_path("bin"), "usr/bin");
        assert_eq!(
            merged_path("lib64/ld-linux-x86-64.so.2"),
            "usr/lib64/ld-linux-x86-64.so.2"
        );
        assert_eq!(merged_path("usr/lib/x"), "usr/lib/x");
        assert_eq!(merged_path("library/x"), "library/x");
        assert_eq!(merged_path("etc/bin"), "etc/bin");
    }
}
