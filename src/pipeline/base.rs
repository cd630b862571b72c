//! The run image a build starts from, and the facts a build needs about it.

use serde::{Deserialize, Serialize};

use crate::cache::{Bucket, Cache, atomic_write};
use crate::oci::fs_view::FsView;
use crate::oci::{BlobStore, Image, OciError};

/// What a build needs to know about its run image's filesystem.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseFacts {
    /// Whether `/bin/sh` resolves to a file (shell processes and `/cnb/process` need it).
    pub has_shell: bool,
    /// `/etc/os-release` content.
    pub os_release: Option<String>,
}

/// Bump when the facts computed change, so cached facts are recomputed.
const FACTS_VERSION: u32 = 1;

impl BaseFacts {
    /// `(ID, VERSION_ID)` from os-release.
    pub fn distro(&self) -> Option<(String, String)> {
        let text = self.os_release.as_deref()?;
        let field = |key: &str| {
            text.lines().find_map(|line| {
                let value = line.strip_prefix(key)?.strip_prefix('=')?;
                Some(value.trim().trim_matches('"').to_owned())
            })
        };
        Some((field("ID")?, field("VERSION_ID").unwrap_or_default()))
    }
}

/// The facts for `image`, computed once per base and cached by manifest digest.
pub fn base_facts(image: &Image, blobs: &BlobStore, cache: &Cache) -> Result<BaseFacts, OciError> {
    let path = cache.dir(Bucket::Layers).join("bases").join(format!(
        "{}-v{FACTS_VERSION}.json",
        image.manifest_digest.hex()
    ));
    if let Some(facts) = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    {
        return Ok(facts);
    }
    let view = FsView::of_image(image, blobs, &["etc/os-release", "usr/lib/os-release"])?;
    let os_release = view
        .captured("etc/os-release")
        .or_else(|| view.captured("usr/lib/os-release"))
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned());
    let facts = BaseFacts {
        has_shell: view.is_file("bin/sh"),
        os_release,
    };
    if let Ok(bytes) = serde_json::to_vec(&facts) {
        // Only a speed-up: failing to remember the facts is not a build failure.
        let _ = atomic_write(&path, &bytes);
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distro_from_os_release() {
        let facts = BaseFacts {
            has_shell: true,
            os_release: Some(
                "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nID=debian\n"
                    .into(),
            ),
        };
        assert_eq!(facts.distro(), Some(("debian".into(), "12".into())));
    }
}
