//! OCI image layouts (`oci-layout`, `index.json`, `blobs/sha256/…`): the local image store
//! and `oci:DIR[:tag]` use the same code.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType};

use super::blobs::BlobStore;
use super::canonical;
use super::digest::Digest;
use super::error::{OciError, Result};
use super::image::{DOCKER_MANIFEST_LIST, Image, OCI_INDEX, digest_of, parse_json};

/// Annotation holding a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
const INDEX_FILE: &str = "index.json";

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
    blobs: BlobStore,
}

impl Layout {
    /// Open an existing layout.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.join(LAYOUT_FILE).is_file() {
            return Err(OciError::NotALayout {
                path: dir.to_path_buf(),
            });
        }
        Ok(Self::at(dir))
    }

    /// Open a layout, creating an empty one if `dir` has none.
    pub fn open_or_create(dir: &Path) -> Result<Self> {
        let write_error = |source| OciError::WriteLayout {
            path: dir.to_path_buf(),
            source,
        };
        if !dir.join(LAYOUT_FILE).is_file() {
            fs_err::create_dir_all(dir.join("blobs/sha256")).map_err(write_error)?;
            write_atomic(&dir.join(LAYOUT_FILE), LAYOUT_CONTENT).map_err(write_error)?;
        }
        if !dir.join(INDEX_FILE).is_file() {
            let _lock = lock_dir(dir)?;
            if !dir.join(INDEX_FILE).is_file() {
                write_index(dir, &empty_index())?;
            }
        }
        Ok(Self::at(dir))
    }

    fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            blobs: BlobStore::for_layout(dir),
        }
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The layout's blobs.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    /// Read `index.json`.
    pub fn read_index(&self) -> Result<ImageIndex> {
        let path = self.dir.join(INDEX_FILE);
        let bytes = fs_err::read(&path).map_err(|source| OciError::ReadLayout {
            path: self.dir.clone(),
            source,
        })?;
        parse_json(&bytes, &path.display().to_string(), "image index")
    }

    /// Tags (ref names) present, sorted.
    pub fn tags(&self) -> Result<Vec<String>> {
        let mut tags: Vec<String> = self
            .read_index()?
            .manifests()
            .iter()
            .filter_map(ref_name)
            .collect();
        tags.sort();
        Ok(tags)
    }

    /// The index entry for `tag`, or the only entry when no tag is given.
    pub fn find(&self, tag: Option<&str>) -> Result<Descriptor> {
        let index = self.read_index()?;
        let manifests = index.manifests();
        match tag {
            Some(tag) => manifests
                .iter()
                .find(|descriptor| ref_name(descriptor).as_deref() == Some(tag))
                .cloned()
                .ok_or_else(|| OciError::TagNotFound {
                    location: self.location(),
                    tag: tag.to_owned(),
                    available: manifests.iter().filter_map(ref_name).collect(),
                }),
            None => match manifests.as_slice() {
                [] => Err(OciError::EmptyIndex {
                    location: self.location(),
                }),
                [only] => Ok(only.clone()),
                many => Err(OciError::AmbiguousImage {
                    location: self.location(),
                    count: many.len(),
                }),
            },
        }
    }

    /// Read the image tagged `tag` (or the only one), resolving an index to linux/amd64.
    /// Manifest and config are verified against their digests.
    pub fn read_image(&self, tag: Option<&str>) -> Result<Image> {
        let descriptor = self.find(tag)?;
        resolve_manifest(&self.blobs, &descriptor, &self.location())
    }

    /// Copy an image's blobs (verified) from `source` and tag it. Blobs land before the index
    /// changes, so an interrupted write leaves the layout valid.
    pub fn write_image(&self, image: &Image, source: &BlobStore, tag: &str) -> Result<()> {
        for (digest, size) in image.blobs(source.location())? {
            if digest == image.config_digest() {
                self.blobs.put_bytes(&image.config_bytes)?;
            } else {
                self.blobs.copy_from(source, &digest, Some(size))?;
            }
        }
        self.blobs.put_bytes(&image.manifest_bytes)?;
        self.set_tag(tag, image.descriptor())
    }

    /// Point `tag` at `descriptor`, replacing what it pointed at.
    pub fn set_tag(&self, tag: &str, mut descriptor: Descriptor) -> Result<()> {
        let _lock = lock_dir(&self.dir)?;
        let mut index = self.read_index()?;
        let mut annotations = descriptor.annotations().clone().unwrap_or_default();
        annotations.insert(REF_NAME.to_owned(), tag.to_owned());
        descriptor.set_annotations(Some(annotations));
        let mut manifests: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|existing| ref_name(existing).as_deref() != Some(tag))
            .cloned()
            .collect();
        manifests.push(descriptor);
        manifests.sort_by_key(|descriptor| ref_name(descriptor).unwrap_or_default());
        index.set_manifests(manifests);
        write_index(&self.dir, &index)
    }

    /// Remove `tag`; returns whether it existed.
    pub fn remove_tag(&self, tag: &str) -> Result<bool> {
        let _lock = lock_dir(&self.dir)?;
        let mut index = self.read_index()?;
        let before = index.manifests().len();
        let kept: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|existing| ref_name(existing).as_deref() != Some(tag))
            .cloned()
            .collect();
        let removed = kept.len() != before;
        index.set_manifests(kept);
        write_index(&self.dir, &index)?;
        Ok(removed)
    }
}

fn ref_name(descriptor: &Descriptor) -> Option<String> {
    descriptor.annotations().as_ref()?.get(REF_NAME).cloned()
}

fn empty_index() -> ImageIndex {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::new())
        .build()
        .expect("all required fields set")
}

fn write_index(dir: &Path, index: &ImageIndex) -> Result<()> {
    let bytes = canonical::to_vec(index).map_err(|source| OciError::Serialize {
        what: "image index",
        source,
    })?;
    write_atomic(&dir.join(INDEX_FILE), &bytes).map_err(|source| OciError::WriteLayout {
        path: dir.to_path_buf(),
        source,
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let parent = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(parent)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_data()?;
    temp.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// Lock a layout directory itself (flock on the directory), so no extra file appears in the
/// user's layout.
fn lock_dir(dir: &Path) -> Result<File> {
    let lock_error = |source| OciError::Lock {
        path: dir.to_path_buf(),
        source,
    };
    let handle = File::open(dir).map_err(lock_error)?;
    handle.lock().map_err(lock_error)?;
    Ok(handle)
}

/// Follow a descriptor to an image manifest: directly, or through (nested) indexes choosing
/// linux/amd64.
pub fn resolve_manifest(
    store: &BlobStore,
    descriptor: &Descriptor,
    location: &str,
) -> Result<Image> {
    let mut current = descriptor.clone();
    for _ in 0..4 {
        let media_type = current.media_type().to_string();
        if media_type != OCI_INDEX && media_type != DOCKER_MANIFEST_LIST {
            return Image::load(store, &digest_of(&current, location)?, Some(current.size()));
        }
        let bytes = store.read_verified(&digest_of(&current, location)?, Some(current.size()))?;
        let index: ImageIndex = parse_json(&bytes, location, "image index")?;
        current = pick_platform(index.manifests()).ok_or_else(|| OciError::NoMatchingPlatform {
            location: location.to_owned(),
        })?;
    }
    Err(OciError::InvalidImage {
        location: location.to_owned(),
        problem: "image indexes are nested too deeply".to_owned(),
    })
}

/// The linux/amd64 entry of an index (or its only entry when it names no platform).
pub fn pick_platform(manifests: &[Descriptor]) -> Option<Descriptor> {
    let matching = manifests.iter().find(|descriptor| {
        descriptor.platform().as_ref().is_some_and(|platform| {
            platform.os().to_string() == "linux" && platform.architecture().to_string() == "amd64"
        })
    });
    match (matching, manifests) {
        (Some(found), _) => Some(found.clone()),
        (None, [only]) if only.platform().is_none() => Some(only.clone()),
        _ => None,
    }
}

/// Count how many tags point at each manifest digest (used by prune and inspect).
pub fn tag_targets(layout: &Layout) -> Result<HashMap<String, Digest>> {
    let mut targets = HashMap::new();
    for descriptor in layout.read_index()?.manifests() {
        if let Some(tag) = ref_name(descriptor) {
            targets.insert(tag, digest_of(descriptor, &layout.location())?);
        }
    }
    Ok(targets)
}
