//! Rebase: move an app image onto a new base by manifest surgery. No layer bytes are read
//! or written; only a new config and manifest.
//!
//! The promise: when the new base differs from the old one only in its own layers and
//! files, the result equals (byte for byte) a fresh build of the same app on the new base.
//! For that, everything the build derived from the base is recomputed the way the build
//! computes it: layers and history, os/arch, Env, labels, exposed ports, the run-image
//! metadata and the base annotations.

use std::collections::{BTreeMap, BTreeSet};

use super::blobs::BlobStore;
use super::builder::ImageBuilder;
use super::cnb::{self, LifecycleMetadata};
use super::error::{OciError, Result as OciResult};
use super::image::{ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME, Image, LayerRef};

/// Why a rebase was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RebaseError {
    #[error(
        "the image has no `{}` label: it was not built by kiln or a CNB lifecycle",
        cnb::LIFECYCLE_METADATA
    )]
    NotCnbImage,
    #[error("the image is marked `{}=false`", cnb::REBASABLE)]
    NotRebasable,
    #[error("the new base is {base} but the image is {app}")]
    PlatformMismatch { app: String, base: String },
    #[error("the new base is {base} but the image was built on {app}")]
    DistroMismatch { app: String, base: String },
    #[error("the image's base top layer {top_layer} is not among its layers")]
    TopLayerMissing { top_layer: String },
    #[error("cannot write the rebased image")]
    Write(#[source] OciError),
    #[error("cannot serialize the image labels")]
    Label(#[source] serde_json::Error),
}

impl RebaseError {
    /// Whether `--force` may override this refusal.
    pub fn forceable(&self) -> bool {
        matches!(
            self,
            RebaseError::NotRebasable
                | RebaseError::PlatformMismatch { .. }
                | RebaseError::DistroMismatch { .. }
        )
    }
}

impl From<OciError> for RebaseError {
    fn from(error: OciError) -> Self {
        RebaseError::Write(error)
    }
}

/// The new base.
pub struct NewBase<'a> {
    /// The image.
    pub image: &'a Image,
    /// Its name as the user gave it (recorded as `runImage.image` and the base annotation).
    pub name: &'a str,
}

/// A rebased image and what was overridden with `--force`.
pub struct Rebased {
    /// The new image (config and manifest stored).
    pub image: Image,
    /// Refusals overridden by `--force`.
    pub forced: Vec<String>,
    /// diff_id of the old base top layer.
    pub old_top_layer: String,
    /// diff_id of the new base top layer.
    pub new_top_layer: String,
    /// Number of app layers carried over.
    pub app_layers: usize,
    /// Whether the old base's config was found, so base-derived Env and labels were
    /// recomputed exactly.
    pub old_base_known: bool,
}

/// Check whether `app` may move onto `base`: every refusal, in order.
pub fn refusals(app: &Image, base: &Image) -> Vec<RebaseError> {
    let labels = app.labels();
    let mut refusals = Vec::new();
    if labels
        .get(cnb::REBASABLE)
        .is_some_and(|value| value == "false")
    {
        refusals.push(RebaseError::NotRebasable);
    }
    if app.platform() != base.platform() {
        refusals.push(RebaseError::PlatformMismatch {
            app: app.platform(),
            base: base.platform(),
        });
    }
    let base_labels = base.labels();
    let distro = |labels: &BTreeMap<String, String>| {
        (
            labels
                .get(cnb::BASE_DISTRO_NAME)
                .cloned()
                .unwrap_or_default(),
            labels
                .get(cnb::BASE_DISTRO_VERSION)
                .cloned()
                .unwrap_or_default(),
        )
    };
    let (base_name, base_version) = distro(&base_labels);
    let (app_name, app_version) = distro(&labels);
    if (!base_name.is_empty() && base_name != app_name)
        || (!base_version.is_empty() && base_version != app_version)
    {
        refusals.push(RebaseError::DistroMismatch {
            app: format!("{app_name} {app_version}").trim().to_owned(),
            base: format!("{base_name} {base_version}").trim().to_owned(),
        });
    }
    refusals
}

/// Rebase `app` onto `new_base`. `old_base_config` is the old base's config when available
/// (found by the digest recorded in the image); without it, base-derived Env and labels are
/// carried over instead of recomputed. Refusals are errors unless `force`.
pub fn rebase(
    app: &Image,
    new_base: &NewBase<'_>,
    old_base: Option<&Image>,
    force: bool,
    store: &BlobStore,
) -> Result<Rebased, RebaseError> {
    let labels = app.labels();
    let mut lifecycle: LifecycleMetadata =
        cnb::parse_label(&labels, cnb::LIFECYCLE_METADATA).ok_or(RebaseError::NotCnbImage)?;
    let mut forced = Vec::new();
    for refusal in refusals(app, new_base.image) {
        if force && refusal.forceable() {
            forced.push(refusal.to_string());
        } else {
            return Err(refusal);
        }
    }

    let location = store.location().to_owned();
    let app_layers = app.layers(&location)?;
    let old_top = lifecycle.run_image.top_layer.clone();
    let top_index = app_layers
        .iter()
        .position(|layer| layer.diff_id.to_string() == old_top)
        .ok_or_else(|| RebaseError::TopLayerMissing {
            top_layer: old_top.clone(),
        })?;
    let carried: Vec<LayerRef> = app_layers[top_index + 1..].to_vec();
    let carried_history = history_after_layer(app, top_index);

    let mut builder = ImageBuilder::from_base(new_base.image, new_base.name)?;
    for (layer, created_by) in carried.iter().zip(carried_history) {
        builder.push_layer(layer.clone(), &created_by);
    }

    let app_runtime = app.config.config().clone().unwrap_or_default();
    let old_runtime = old_base
        .and_then(|image| image.config.config().clone())
        .unwrap_or_default();
    let new_runtime = new_base.image.config.config().clone().unwrap_or_default();
    let runtime = builder.runtime_mut();
    runtime.set_env(Some(rebase_env(
        &env_pairs(app_runtime.env()),
        old_base.map(|_| env_pairs(old_runtime.env())).as_deref(),
        &env_pairs(new_runtime.env()),
    )));
    runtime.set_entrypoint(app_runtime.entrypoint().clone());
    runtime.set_working_dir(app_runtime.working_dir().clone());
    runtime.set_user(app_runtime.user().clone());
    runtime.set_stop_signal(app_runtime.stop_signal().clone());
    runtime.set_volumes(app_runtime.volumes().clone());
    runtime.set_exposed_ports(rebase_ports(
        app_runtime.exposed_ports().as_deref(),
        old_base.and(old_runtime.exposed_ports().as_deref()),
        new_runtime.exposed_ports().as_deref(),
    ));
    let old_labels: BTreeMap<String, String> = old_runtime
        .labels()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let new_labels = new_base.image.labels();
    let mut merged = rebase_labels(&labels, old_base.map(|_| &old_labels), &new_labels);

    let new_top = new_base
        .image
        .diff_ids()
        .last()
        .cloned()
        .unwrap_or_default();
    lifecycle.run_image.top_layer = new_top.clone();
    lifecycle.run_image.reference = format!(
        "{}@{}",
        new_base.name.split('@').next().unwrap_or(new_base.name),
        new_base.image.manifest_digest
    );
    lifecycle.run_image.image = new_base.name.to_owned();
    lifecycle.run_image.mirrors.clear();
    lifecycle.stack.run_image.image = new_base.name.to_owned();
    lifecycle.stack.run_image.mirrors.clear();
    let lifecycle_json = super::canonical::to_vec(&lifecycle).map_err(RebaseError::Label)?;
    merged.insert(
        cnb::LIFECYCLE_METADATA.to_owned(),
        String::from_utf8(lifecycle_json).expect("serde_json writes UTF-8"),
    );
    builder
        .runtime_mut()
        .set_labels(Some(merged.into_iter().collect()));

    for (key, value) in app.annotations() {
        if key != ANNOTATION_BASE_NAME && key != ANNOTATION_BASE_DIGEST {
            builder.annotate(&key, &value);
        }
    }
    builder.annotate(ANNOTATION_BASE_NAME, new_base.name);
    builder.annotate(
        ANNOTATION_BASE_DIGEST,
        &new_base.image.manifest_digest.to_string(),
    );
    if let Some(created) = app.config.created() {
        builder.set_created(created);
    }
    let image = builder.build(store)?;
    Ok(Rebased {
        image,
        forced,
        old_top_layer: old_top,
        new_top_layer: new_top,
        app_layers: carried.len(),
        old_base_known: old_base.is_some(),
    })
}

/// `created_by` of every history entry describing a layer above layer `top_index`.
fn history_after_layer(app: &Image, top_index: usize) -> Vec<String> {
    let history = app.config.history().clone().unwrap_or_default();
    let mut layer_index = 0usize;
    let mut carried = Vec::new();
    for entry in history {
        if entry.empty_layer().unwrap_or(false) {
            continue;
        }
        if layer_index > top_index {
            carried.push(entry.created_by().clone().unwrap_or_default());
        }
        layer_index += 1;
    }
    let expected = app.diff_ids().len().saturating_sub(top_index + 1);
    carried.resize(expected, String::new());
    carried
}

fn env_pairs(env: &Option<Vec<String>>) -> Vec<(String, String)> {
    env.clone()
        .unwrap_or_default()
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => (pair.clone(), String::new()),
        })
        .collect()
}

/// Recompute an app's Env for a new base, the way a build derives it: the base's variables
/// first (in base order), then the app's own. A variable the app left as the old base set it
/// takes the new base's value; one the app extended (e.g. PATH with a prefix) keeps the
/// extension around the new base value; one the app overrode stays. Without the old base,
/// the app's values are kept and only new base variables are added.
pub fn rebase_env(
    app: &[(String, String)],
    old_base: Option<&[(String, String)]>,
    new_base: &[(String, String)],
) -> Vec<String> {
    let lookup = |pairs: &[(String, String)], name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let mut result: Vec<(String, String)> = Vec::new();
    let Some(old_base) = old_base else {
        let mut result = app.to_vec();
        for (name, value) in new_base {
            if lookup(app, name).is_none() {
                result.push((name.clone(), value.clone()));
            }
        }
        return result
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
    };
    let derive = |name: &str, new_value: Option<String>| -> Option<String> {
        let app_value = lookup(app, name);
        let old_value = lookup(old_base, name);
        match (app_value, old_value, new_value) {
            (None, _, new_value) => new_value,
            (Some(app_value), Some(old_value), new_value) if app_value == old_value => {
                new_value.or(Some(app_value))
            }
            (Some(app_value), Some(old_value), new_value) if !old_value.is_empty() => {
                // Extended with `:`-joined entries (prepend/append), the way builds extend PATH.
                let replacement = new_value.unwrap_or_default();
                if let Some(prefix) = app_value.strip_suffix(&format!(":{old_value}")) {
                    Some(format!("{prefix}:{replacement}"))
                } else if let Some(suffix) = app_value.strip_prefix(&format!("{old_value}:")) {
                    Some(format!("{replacement}:{suffix}"))
                } else {
                    Some(app_value)
                }
            }
            (Some(app_value), _, _) => Some(app_value),
        }
    };
    for (name, value) in new_base {
        if let Some(derived) = derive(name, Some(value.clone())) {
            result.push((name.clone(), derived));
        }
    }
    for (name, app_value) in app {
        if lookup(&result, name).is_some() {
            continue;
        }
        let old_value = lookup(old_base, name);
        if old_value.as_deref() == Some(app_value.as_str()) {
            // Set by the old base only: the new base does not have it, so neither does a build.
            continue;
        }
        if let Some(derived) = derive(name, None) {
            result.push((name.clone(), derived));
        }
    }
    result
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect()
}

/// Exposed ports: the new base's plus those the app added over the old base.
fn rebase_ports(
    app: Option<&[String]>,
    old_base: Option<&[String]>,
    new_base: Option<&[String]>,
) -> Option<Vec<String>> {
    let old: BTreeSet<&String> = old_base.unwrap_or_default().iter().collect();
    let mut ports: BTreeSet<String> = new_base.unwrap_or_default().iter().cloned().collect();
    for port in app.unwrap_or_default() {
        if !old.contains(port) {
            ports.insert(port.clone());
        }
    }
    (!ports.is_empty() || app.is_some()).then(|| ports.into_iter().collect())
}

/// Labels: the new base's, plus every app label that did not come from the old base. Base
/// labels (`io.buildpacks.base.*`, `io.buildpacks.stack.*`) always follow the new base.
fn rebase_labels(
    app: &BTreeMap<String, String>,
    old_base: Option<&BTreeMap<String, String>>,
    new_base: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let base_owned = |key: &str| {
        key.starts_with(cnb::BASE_LABEL_PREFIX) || key.starts_with(cnb::STACK_LABEL_PREFIX)
    };
    let mut merged = new_base.clone();
    for (key, value) in app {
        if base_owned(key) {
            continue;
        }
        if old_base.is_some_and(|old| old.get(key) == Some(value)) {
            // Inherited from the old base: the new base's value (or absence) decides.
            continue;
        }
        merged.insert(key.clone(), value.clone());
    }
    merged
}

/// Load the old base an app image records (by `runImage.reference` digest), when its
/// manifest and config are in `store`.
pub fn find_old_base(app: &Image, store: &BlobStore) -> OciResult<Option<Image>> {
    let Some(lifecycle) =
        cnb::parse_label::<LifecycleMetadata>(&app.labels(), cnb::LIFECYCLE_METADATA)
    else {
        return Ok(None);
    };
    let Some(digest) = lifecycle
        .run_image
        .reference
        .rsplit_once('@')
        .and_then(|(_, digest)| digest.parse::<super::Digest>().ok())
    else {
        return Ok(None);
    };
    if !store.contains(&digest) {
        return Ok(None);
    }
    Image::load(store, &digest, None).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn env_follows_the_new_base_where_the_app_did_not_decide() {
        let old = pairs(&[("PATH", "/usr/bin:/bin"), ("LANG", "C"), ("OLD_ONLY", "x")]);
        let new = pairs(&[
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("LANG", "C.UTF-8"),
            ("NEW_ONLY", "y"),
        ]);
        let app = pairs(&[
            ("PATH", "/cnb/process:/usr/bin:/bin"),
            ("LANG", "C"),
            ("OLD_ONLY", "x"),
            ("PORT", "8080"),
        ]);
        assert_eq!(
            rebase_env(&app, Some(&old), &new),
            [
                "PATH=/cnb/process:/usr/local/bin:/usr/bin:/bin",
                "LANG=C.UTF-8",
                "NEW_ONLY=y",
                "PORT=8080"
            ]
        );
    }

    #[test]
    fn without_the_old_base_app_values_are_kept() {
        let app = pairs(&[("PATH", "/cnb/process:/bin"), ("PORT", "8080")]);
        let new = pairs(&[("PATH", "/usr/bin"), ("TZ", "UTC")]);
        assert_eq!(
            rebase_env(&app, None, &new),
            ["PATH=/cnb/process:/bin", "PORT=8080", "TZ=UTC"]
        );
    }

    #[test]
    fn labels_follow_the_new_base() {
        let old: BTreeMap<String, String> =
            [("org.example.base".to_owned(), "v1".to_owned())].into();
        let new: BTreeMap<String, String> = [
            ("org.example.base".to_owned(), "v2".to_owned()),
            (
                "io.buildpacks.base.distro.name".to_owned(),
                "debian".to_owned(),
            ),
        ]
        .into();
        let app: BTreeMap<String, String> = [
            ("org.example.base".to_owned(), "v1".to_owned()),
            (
                "io.buildpacks.base.distro.name".to_owned(),
                "stale".to_owned(),
            ),
            ("io.buildpacks.build.metadata".to_owned(), "{}".to_owned()),
        ]
        .into();
        let merged = rebase_labels(&app, Some(&old), &new);
        assert_eq!(merged["org.example.base"], "v2");
        assert_eq!(merged["io.buildpacks.base.distro.name"], "debian");
        assert_eq!(merged["io.buildpacks.build.metadata"], "{}");
    }
}
