//! Where blobs that are not in the local store live on registries, so an image can reference
//! them without downloading them: a push mounts them (or finds them present), and only a sink
//! that really needs the bytes (a layout, an archive, another registry) fetches them.

use std::collections::BTreeMap;

use super::reference::Reference;
use crate::oci::Digest;

/// Blob digest → the repository that has it.
#[derive(Debug, Clone, Default)]
pub struct BlobOrigins {
    origins: BTreeMap<Digest, Reference>,
}

impl BlobOrigins {
    /// No known origins.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record that `repository` has `digest`. The first origin recorded for a digest wins: callers
    /// add the repositories most likely to be mountable first.
    pub fn add(&mut self, digest: Digest, repository: &Reference) {
        self.origins
            .entry(digest)
            .or_insert_with(|| repository.clone());
    }

    /// Record every digest of `digests` as held by `repository`.
    pub fn add_all<'a>(
        &mut self,
        digests: impl IntoIterator<Item = &'a Digest>,
        repository: &Reference,
    ) {
        for digest in digests {
            self.add(digest.clone(), repository);
        }
    }

    /// The repository known to have `digest`.
    pub fn get(&self, digest: &Digest) -> Option<&Reference> {
        self.origins.get(digest)
    }

    /// Whether a repository is known to have `digest`.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.origins.contains_key(digest)
    }

    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_origin_wins() {
        let digest = Digest::of_bytes(b"layer");
        let base = Reference::parse("127.0.0.1:5000/bases/run:1").unwrap();
        let app = Reference::parse("127.0.0.1:5000/team/app:1").unwrap();
        let mut origins = BlobOrigins::new();
        origins.add(digest.clone(), &base);
        origins.add(digest.clone(), &app);
        assert_eq!(origins.get(&digest), Some(&base));
        assert!(!origins.contains(&Digest::of_bytes(b"other")));
    }
}
