//! What `kiln inspect` reports about an image: base and rebasability, buildpacks, layers and
//! where each came from, processes, OS packages, creation time. Plain (non-CNB) images get
//! what is there and a note.

use serde::Serialize;
use serde_json::Value;

use super::blobs::BlobStore;
use super::cnb::{self, BuildMetadata, LifecycleMetadata};
use super::error::Result;
use super::fs_view::FsView;
use super::image::Image;

/// The inspection of one image.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The image as named.
    pub image: String,
    /// Manifest digest.
    pub digest: String,
    /// `os/architecture`.
    pub platform: String,
    /// Config `created`.
    pub created: Option<String>,
    /// Whether kiln (or a CNB lifecycle) built it.
    pub cnb_image: bool,
    /// A note for plain images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The run image it was built on.
    pub base: Option<BaseInfo>,
    /// Whether `kiln rebase` can move it, and why (not).
    pub rebasable: Rebasable,
    /// Buildpacks that built it.
    pub buildpacks: Vec<BuildpackInfo>,
    /// Process types.
    pub processes: Vec<ProcessInfo>,
    /// The default process type.
    pub default_process: Option<String>,
    /// Layers, bottom first.
    pub layers: Vec<LayerInfo>,
    /// Number of Debian packages recorded in the base (`/var/lib/dpkg/status.d`), if any.
    pub os_packages: Option<usize>,
    /// Packages of runtime layers (from their metadata), per layer.
    pub runtime_packages: Vec<RuntimePackages>,
}

/// The base an image records.
#[derive(Debug, Clone, Serialize)]
pub struct BaseInfo {
    /// `runImage.image`.
    pub name: String,
    /// `runImage.reference` (name@digest).
    pub reference: String,
    /// `runImage.topLayer`.
    pub top_layer: String,
    /// Index of the base's top layer among the image's layers.
    pub top_layer_index: Option<usize>,
}

/// Rebasability and its reason.
#[derive(Debug, Clone, Serialize)]
pub struct Rebasable {
    /// Whether rebase would proceed without --force.
    pub value: bool,
    /// Why.
    pub reason: String,
}

/// A buildpack.
#[derive(Debug, Clone, Serialize)]
pub struct BuildpackInfo {
    /// Id.
    pub id: String,
    /// Version.
    pub version: String,
}

/// A process type.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessInfo {
    /// Type.
    pub r#type: String,
    /// Command.
    pub command: Vec<String>,
    /// Default args.
    pub args: Vec<String>,
    /// Exec'd directly (not through a shell).
    pub direct: bool,
    /// Whether it is the default.
    pub default: bool,
}

/// One layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// Blob digest.
    pub digest: String,
    /// diff_id.
    pub diff_id: String,
    /// Compressed size.
    pub size: u64,
    /// Where it came from: `base`, `buildpack <id> layer <name>`, `app`, `process-types`, or
    /// the history's `created_by` for plain images.
    pub origin: String,
}

/// Packages of one runtime layer.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimePackages {
    /// `buildpack/layer`.
    pub layer: String,
    /// The packages, as recorded.
    pub packages: Value,
}

/// Inspect `image` (its blobs in `store`). `name` is how the user named it.
pub fn inspect(image: &Image, store: &BlobStore, name: &str) -> Result<Inspection> {
    let labels = image.labels();
    let lifecycle: Option<LifecycleMetadata> = cnb::parse_label(&labels, cnb::LIFECYCLE_METADATA);
    let build: Option<BuildMetadata> = cnb::parse_label(&labels, cnb::BUILD_METADATA);
    let layers = image.layers(store.location())?;
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|layer| layer.diff_id.to_string())
        .collect();
    let base = lifecycle.as_ref().map(|metadata| BaseInfo {
        name: metadata.run_image.image.clone(),
        reference: metadata.run_image.reference.clone(),
        top_layer: metadata.run_image.top_layer.clone(),
        top_layer_index: diff_ids
            .iter()
            .position(|diff_id| *diff_id == metadata.run_image.top_layer),
    });
    let rebasable = rebasable(&labels, base.as_ref());
    let history: Vec<String> = image
        .config
        .history()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| !entry.empty_layer().unwrap_or(false))
        .map(|entry| entry.created_by().clone().unwrap_or_default())
        .collect();
    let layer_infos = layers
        .iter()
        .enumerate()
        .map(|(index, layer)| LayerInfo {
            digest: layer.digest.to_string(),
            diff_id: layer.diff_id.to_string(),
            size: layer.size,
            origin: origin(
                index,
                &layer.diff_id.to_string(),
                base.as_ref(),
                lifecycle.as_ref(),
                &history,
            ),
        })
        .collect();
    let base_end = base
        .as_ref()
        .and_then(|base| base.top_layer_index)
        .map_or(layers.len(), |index| index + 1);
    let base_image = truncated(image, base_end);
    let view = FsView::of_image(&base_image, store, &[])?;
    let os_packages = view
        .children("var/lib/dpkg/status.d")
        .map(|children| children.len());
    let default_process = build
        .as_ref()
        .and_then(|metadata| metadata.default_process.clone());
    let processes = build
        .as_ref()
        .map(|metadata| {
            metadata
                .processes
                .iter()
                .map(|process| ProcessInfo {
                    r#type: process.r#type.clone(),
                    command: process.command.clone(),
                    args: process.args.clone(),
                    direct: process.direct,
                    default: Some(&process.r#type) == default_process.as_ref(),
                })
                .collect()
        })
        .unwrap_or_default();
    let runtime_packages = lifecycle
        .as_ref()
        .map(|metadata| {
            metadata
                .buildpacks
                .iter()
                .flat_map(|buildpack| {
                    buildpack.layers.iter().filter_map(move |(layer, data)| {
                        data.data.get("packages").map(|packages| RuntimePackages {
                            layer: format!("{}/{layer}", buildpack.key),
                            packages: packages.clone(),
                        })
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Inspection {
        image: name.to_owned(),
        digest: image.manifest_digest.to_string(),
        platform: image.platform(),
        created: image.config.created().clone(),
        cnb_image: lifecycle.is_some(),
        note: lifecycle.is_none().then(|| {
            "not a kiln/CNB image: it has no io.buildpacks.lifecycle.metadata label".to_owned()
        }),
        base,
        rebasable,
        buildpacks: build
            .map(|metadata| {
                metadata
                    .buildpacks
                    .into_iter()
                    .map(|buildpack| BuildpackInfo {
                        id: buildpack.id,
                        version: buildpack.version,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        processes,
        default_process,
        layers: layer_infos,
        os_packages,
        runtime_packages,
    })
}

fn rebasable(
    labels: &std::collections::BTreeMap<String, String>,
    base: Option<&BaseInfo>,
) -> Rebasable {
    let (value, reason) = match base {
        None => (
            false,
            "not a kiln/CNB image: no base is recorded".to_owned(),
        ),
        Some(_)
            if labels
                .get(cnb::REBASABLE)
                .is_some_and(|value| value == "false") =>
        {
            (
                false,
                format!("the image is marked {}=false", cnb::REBASABLE),
            )
        }
        Some(base) => match base.top_layer_index {
            None => (
                false,
                format!(
                    "the recorded base top layer {} is not among its layers",
                    base.top_layer
                ),
            ),
            Some(index) => (
                true,
                format!("the base ends at layer {} ({})", index + 1, base.name),
            ),
        },
    };
    Rebasable { value, reason }
}

fn origin(
    index: usize,
    diff_id: &str,
    base: Option<&BaseInfo>,
    lifecycle: Option<&LifecycleMetadata>,
    history: &[String],
) -> String {
    if let (Some(base), Some(lifecycle)) = (base, lifecycle) {
        if base.top_layer_index.is_some_and(|top| index <= top) {
            return "base".to_owned();
        }
        for buildpack in &lifecycle.buildpacks {
            for (name, layer) in &buildpack.layers {
                if layer.sha == diff_id {
                    return format!("buildpack {} layer {name}", buildpack.key);
                }
            }
        }
        if lifecycle.app.iter().any(|app| app.sha == diff_id) {
            return "app".to_owned();
        }
        if lifecycle
            .process_types
            .as_ref()
            .is_some_and(|sha| sha.sha == diff_id)
        {
            return "process-types".to_owned();
        }
    }
    history
        .get(index)
        .cloned()
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The image with only its first `count` layers (for looking at the base alone).
fn truncated(image: &Image, count: usize) -> Image {
    let mut clone = image.clone();
    clone.manifest.layers_mut().truncate(count);
    let mut diff_ids = clone.config.rootfs().diff_ids().clone();
    diff_ids.truncate(count);
    clone.config.rootfs_mut().set_diff_ids(diff_ids);
    clone
}
