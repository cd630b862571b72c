//! A digest of everything `go build` could read from the app: every included file's path,
//! executable bit and content (Go embeds arbitrary files with `//go:embed`, so `.go` files
//! alone are not enough). Equal fingerprints let a build reuse its binaries untouched.

use std::io::Read;

use sha2::{Digest, Sha256};

use super::error::GoError;
use crate::source::SourceTree;

/// Hex sha256 over the app's included files, in path order.
pub fn source_sha256(source: &SourceTree) -> Result<String, GoError> {
    let files = source.files().map_err(|source| GoError::ReadSource {
        file: "the app directory".to_owned(),
        source: Box::new(source),
    })?;
    let mut digest = Sha256::new();
    for relative in files {
        let path = source.root().join(&relative);
        let hash_error = |source| GoError::HashSource {
            path: path.clone(),
            source,
        };
        let metadata = fs_err::symlink_metadata(&path).map_err(hash_error)?;
        let name = relative.to_string_lossy();
        if metadata.file_type().is_symlink() {
            let target = fs_err::read_link(&path).map_err(hash_error)?;
            digest.update(format!("link\0{name}\0{}\n", target.display()));
        } else if metadata.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let executable = metadata.permissions().mode() & 0o100 != 0;
            digest.update(format!("file\0{name}\0{executable}\0{}\0", metadata.len()));
            let mut file = fs_err::File::open(&path).map_err(hash_error)?;
            let mut buffer = vec![0; 64 * 1024];
            loop {
                let read = file.read(&mut buffer).map_err(hash_error)?;
                if read == 0 {
                    break;
                }
                digest.update(&buffer[..read]);
            }
            digest.update(b"\n");
        }
    }
    Ok(hex::encode(digest.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_content_names_and_embedded_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        };
        write("go.mod", "module m\n");
        write("main.go", "package main\n");
        let fingerprint = || source_sha256(&SourceTree::open(dir.path()).unwrap()).unwrap();
        let first = fingerprint();
        assert_eq!(first, fingerprint(), "stable");
        write("static/index.html", "<p>embedded</p>");
        let with_asset = fingerprint();
        assert_ne!(first, with_asset);
        write(".git/HEAD", "ref: refs/heads/main");
        assert_eq!(with_asset, fingerprint(), "VCS metadata is not app source");
        std::fs::rename(
            dir.path().join("static/index.html"),
            dir.path().join("static/other.html"),
        )
        .unwrap();
        assert_ne!(with_asset, fingerprint(), "names count");
    }
}
