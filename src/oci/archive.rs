//! `oci-archive:` (a tar of an OCI layout) and `docker-archive:` (what `docker save` writes and
//! `docker load`, `podman load` and `skopeo` read).

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifestBuilder, MediaType};
use serde::{Deserialize, Serialize};

use super::blobs::BlobStore;
use super::canonical;
use super::digest::{Digest, HashingReader};
use super::error::{OciError, Result};
use super::image::{
    Image, OCI_CONFIG, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD, OCI_MANIFEST, parse_json,
};
use super::layer_reader::uncompressed_reader;
use super::layout::{REF_NAME, pick_platform, resolve_manifest};
use crate::layer::{EntryKind, FileSource, LayerEntries, Owner, write_tar};

/// Read an `oci-archive` into `into` (every blob verified) and return the image tagged `tag`
/// (or the only one).
pub fn import_oci_archive(path: &Path, tag: Option<&str>, into: &BlobStore) -> Result<Image> {
    let location = path.display().to_string();
    let files = read_archive_files(path, into)?;
    let index_bytes = files
        .small
        .get("index.json")
        .ok_or_else(|| OciError::InvalidImage {
            location: location.clone(),
            problem: "the archive has no index.json (is it an oci-archive?)".to_owned(),
        })?;
    let index: ImageIndex = parse_json(index_bytes, &location, "image index")?;
    let manifests = index.manifests();
    let descriptor = match tag {
        Some(tag) => manifests
            .iter()
            .find(|descriptor| {
                descriptor
                    .annotations()
                    .as_ref()
                    .and_then(|annotations| annotations.get(REF_NAME))
                    .is_some_and(|name| name == tag)
            })
            .cloned()
            .ok_or_else(|| OciError::TagNotFound {
                location: location.clone(),
                tag: tag.to_owned(),
                available: Vec::new(),
            })?,
        None if manifests.len() == 1 => manifests[0].clone(),
        None if manifests.is_empty() => return Err(OciError::EmptyIndex { location }),
        None => pick_platform(manifests).ok_or(OciError::AmbiguousImage {
            location: location.clone(),
            count: manifests.len(),
        })?,
    };
    resolve_manifest(into, &descriptor, &location)
}

struct ArchiveFiles {
    /// Small top-level JSON files by name.
    small: BTreeMap<String, Vec<u8>>,
    /// Other files stored as blobs: name in the archive → (digest, size).
    stored: BTreeMap<String, (Digest, u64)>,
}

/// Stream an archive: JSON metadata files are kept in memory, everything else goes straight
/// into the blob store. Blobs under `blobs/sha256/` must match their names.
fn read_archive_files(path: &Path, into: &BlobStore) -> Result<ArchiveFiles> {
    let read_error = |source| OciError::ReadArchive {
        path: path.to_path_buf(),
        source,
    };
    let file = fs_err::File::open(path).map_err(read_error)?;
    let mut archive = tar::Archive::new(io::BufReader::new(file));
    let mut files = ArchiveFiles {
        small: BTreeMap::new(),
        stored: BTreeMap::new(),
    };
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = entry
            .path()
            .map_err(read_error)?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        if name.ends_with(".json") || name == "oci-layout" || name == "repositories" {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(read_error)?;
            files.small.insert(name, bytes);
            continue;
        }
        let expected = name
            .strip_prefix("blobs/sha256/")
            .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok());
        let mut writer = into.writer()?;
        io::copy(&mut entry, &mut writer).map_err(read_error)?;
        let (digest, size) = writer
            .commit(expected.as_ref())
            .map_err(|error| match error {
                OciError::DigestMismatch { digest, actual, .. } => OciError::DigestMismatch {
                    location: path.display().to_string(),
                    digest,
                    actual,
                },
                other => other,
            })?;
        files.stored.insert(name, (digest, size));
    }
    // Manifests and configs in an OCI archive are blobs too: make them available by digest.
    for (name, bytes) in &files.small {
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            let digest = into.put_bytes(bytes)?;
            if digest.hex() != hex {
                return Err(OciError::DigestMismatch {
                    location: path.display().to_string(),
                    digest: format!("sha256:{hex}").parse().map_err(|source| {
                        OciError::BadDigest {
                            location: path.display().to_string(),
                            source,
                        }
                    })?,
                    actual: digest,
                });
            }
        }
    }
    Ok(files)
}

/// Write `image` as an oci-archive at `path` (atomically: temp file, then rename).
pub fn write_oci_archive(image: &Image, from: &BlobStore, path: &Path, tag: &str) -> Result<()> {
    let mut entries = LayerEntries::new();
    let entry_error = |problem: String| OciError::InvalidImage {
        location: path.display().to_string(),
        problem,
    };
    let mut descriptor = image.descriptor();
    descriptor.set_annotations(Some(
        [(REF_NAME.to_owned(), tag.to_owned())]
            .into_iter()
            .collect(),
    ));
    let index = oci_spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![descriptor])
        .build()
        .expect("all required fields set");
    let index_bytes = canonical::to_vec(&index).map_err(|source| OciError::Serialize {
        what: "image index",
        source,
    })?;
    let mut add = |name: &str, source: FileSource| {
        entries
            .insert(
                name,
                crate::layer::Entry {
                    kind: EntryKind::File(source),
                    mode: 0o644,
                    owner: Owner::ROOT,
                },
            )
            .map_err(|error| entry_error(error.to_string()))
    };
    add(
        "oci-layout",
        bytes_source(br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
    )?;
    add("index.json", bytes_source(index_bytes))?;
    add(
        &blob_name(&image.manifest_digest),
        bytes_source(image.manifest_bytes.clone()),
    )?;
    add(
        &blob_name(&image.config_digest()),
        bytes_source(image.config_bytes.clone()),
    )?;
    for layer in image.layers(from.location())? {
        from.verify(&layer.digest, Some(layer.size))?;
        add(
            &blob_name(&layer.digest),
            FileSource::Path {
                path: from.path(&layer.digest),
                size: layer.size,
            },
        )?;
    }
    entries.add_missing_parents(0o755, Owner::ROOT);
    write_tar_atomically(&entries, path)
}

fn bytes_source(bytes: Vec<u8>) -> FileSource {
    FileSource::Bytes(std::sync::Arc::new(bytes))
}

fn blob_name(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

fn write_tar_atomically(entries: &LayerEntries, path: &Path) -> Result<()> {
    let write_error = |source| OciError::WriteArchive {
        path: path.to_path_buf(),
        source,
    };
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs_err::create_dir_all(&parent).map_err(write_error)?;
    let temp = tempfile::Builder::new()
        .prefix(".kiln-archive-")
        .tempfile_in(&parent)
        .map_err(write_error)?;
    let temp =
        write_tar(entries, io::BufWriter::new(temp)).map_err(|error| OciError::WriteArchive {
            path: path.to_path_buf(),
            source: io::Error::other(error.to_string()),
        })?;
    let temp = temp
        .into_inner()
        .map_err(|error| write_error(error.into_error()))?;
    temp.as_file().sync_data().map_err(write_error)?;
    temp.persist(path)
        .map_err(|error| write_error(error.error))?;
    Ok(())
}

/// One image in a docker-archive's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Write `image` as a docker-archive at `path`, tagged `repo_tag` (e.g. `myapp:latest`).
/// Layers are stored uncompressed, named by diff_id, as `docker save` does.
pub fn write_docker_archive(
    image: &Image,
    from: &BlobStore,
    path: &Path,
    repo_tag: &str,
    scratch: &Path,
) -> Result<()> {
    let write_error = |source| OciError::WriteArchive {
        path: path.to_path_buf(),
        source,
    };
    let mut entries = LayerEntries::new();
    let mut layer_names = Vec::new();
    let add = |entries: &mut LayerEntries, name: &str, source: FileSource| {
        entries
            .insert(
                name,
                crate::layer::Entry {
                    kind: EntryKind::File(source),
                    mode: 0o644,
                    owner: Owner::ROOT,
                },
            )
            .map_err(|error| OciError::InvalidImage {
                location: path.display().to_string(),
                problem: error.to_string(),
            })
    };
    for layer in image.layers(from.location())? {
        let name = format!("{}.tar", layer.diff_id.hex());
        let unpacked = scratch.join(&name);
        if !unpacked.exists() {
            let mut reader = HashingReader::new(uncompressed_reader(from, &layer)?);
            let mut file = fs_err::File::create(&unpacked).map_err(write_error)?;
            io::copy(&mut reader, &mut file).map_err(|source| OciError::ReadBlob {
                location: from.location().to_owned(),
                digest: layer.digest.clone(),
                source,
            })?;
            let (actual, _) = reader.finish();
            if actual != layer.diff_id {
                return Err(OciError::DigestMismatch {
                    location: format!("{} (uncompressed)", from.location()),
                    digest: layer.diff_id.clone(),
                    actual,
                });
            }
        }
        let size = fs_err::metadata(&unpacked).map_err(write_error)?.len();
        add(
            &mut entries,
            &name,
            FileSource::Path {
                path: unpacked,
                size,
            },
        )?;
        layer_names.push(name);
    }
    let config_name = format!("{}.json", image.config_digest().hex());
    add(
        &mut entries,
        &config_name,
        bytes_source(image.config_bytes.clone()),
    )?;
    let manifest = vec![DockerArchiveEntry {
        config: config_name,
        repo_tags: Some(vec![repo_tag.to_owned()]),
        layers: layer_names,
    }];
    let manifest_bytes = canonical::to_vec(&manifest).map_err(|source| OciError::Serialize {
        what: "docker-archive manifest",
        source,
    })?;
    add(&mut entries, "manifest.json", bytes_source(manifest_bytes))?;
    write_tar_atomically(&entries, path)
}

/// Read a docker-archive into `into`, converting it to an OCI image (layers keep their bytes;
/// uncompressed ones become `application/vnd.oci.image.layer.v1.tar`). Each layer is checked
/// against the diff_id the config lists.
pub fn import_docker_archive(path: &Path, into: &BlobStore) -> Result<Image> {
    let location = path.display().to_string();
    let files = read_archive_files(path, into)?;
    let invalid = |problem: String| OciError::InvalidImage {
        location: location.clone(),
        problem,
    };
    let manifest_bytes = files.small.get("manifest.json").ok_or_else(|| {
        invalid("the archive has no manifest.json (is it a docker-archive?)".to_owned())
    })?;
    let entries: Vec<DockerArchiveEntry> =
        parse_json(manifest_bytes, &location, "docker-archive manifest")?;
    let [entry] = entries.as_slice() else {
        return Err(invalid(format!(
            "it holds {} images; kiln reads archives with one",
            entries.len()
        )));
    };
    let config_bytes = files
        .small
        .get(&entry.config)
        .cloned()
        .or_else(|| {
            let (digest, size) = files.stored.get(&entry.config)?;
            into.read_verified(digest, Some(*size)).ok()
        })
        .ok_or_else(|| invalid(format!("its config {} is missing", entry.config)))?;
    let config_digest = into.put_bytes(&config_bytes)?;
    let config: oci_spec::image::ImageConfiguration =
        parse_json(&config_bytes, &location, "image config")?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != entry.layers.len() {
        return Err(invalid(
            "manifest.json and the config list different numbers of layers".to_owned(),
        ));
    }
    let mut layers = Vec::new();
    for (name, diff_id) in entry.layers.iter().zip(diff_ids) {
        let (digest, size) = files
            .stored
            .get(name)
            .ok_or_else(|| invalid(format!("layer {name} is missing")))?;
        let media_type = sniff_layer_media_type(into, digest)?;
        let diff_id: Digest = diff_id.parse().map_err(|source| OciError::BadDigest {
            location: location.clone(),
            source,
        })?;
        let layer = super::image::LayerRef {
            digest: digest.clone(),
            size: *size,
            media_type: media_type.to_owned(),
            diff_id: diff_id.clone(),
        };
        let (actual, _) =
            Digest::of_reader(uncompressed_reader(into, &layer)?).map_err(|source| {
                OciError::ReadBlob {
                    location: location.clone(),
                    digest: digest.clone(),
                    source,
                }
            })?;
        if actual != diff_id {
            return Err(OciError::DigestMismatch {
                location: format!("{location} layer {name}"),
                digest: diff_id,
                actual,
            });
        }
        layers.push(Descriptor::new(
            MediaType::from(media_type),
            *size,
            digest.to_oci(),
        ));
    }
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::from(OCI_MANIFEST))
        .config(Descriptor::new(
            MediaType::from(OCI_CONFIG),
            config_bytes.len() as u64,
            config_digest.to_oci(),
        ))
        .layers(layers)
        .build()
        .expect("all required fields set");
    let manifest_bytes = canonical::to_vec(&manifest).map_err(|source| OciError::Serialize {
        what: "image manifest",
        source,
    })?;
    into.put_bytes(&manifest_bytes)?;
    Image::parse(manifest_bytes, config_bytes, &location)
}

fn sniff_layer_media_type(store: &BlobStore, digest: &Digest) -> Result<&'static str> {
    let mut magic = [0u8; 4];
    let mut file = fs_err::File::open(store.path(digest)).map_err(|source| OciError::ReadBlob {
        location: store.location().to_owned(),
        digest: digest.clone(),
        source,
    })?;
    let read = file.read(&mut magic).unwrap_or(0);
    Ok(match &magic[..read] {
        [0x1f, 0x8b, ..] => OCI_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => OCI_LAYER_ZSTD,
        _ => OCI_LAYER_TAR,
    })
}
