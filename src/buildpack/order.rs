//! Order groups (`[[order]]` in builder.toml) and detection across them.
//!
//! The rule when several languages match: groups are tried in builder order and the first
//! group whose required members all pass wins. The report keeps every verdict, so
//! `kiln detect` shows what else matched and `--buildpack ID` picks another.

use serde::{Deserialize, Serialize};

use super::ids::BuildpackId;
use super::{Buildpack, BuildpackFailure, DetectContext, Detection};

/// A member of an order group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderMember {
    /// Buildpack id.
    pub id: BuildpackId,
    /// An optional member may fail detection without failing the group.
    #[serde(default)]
    pub optional: bool,
}

/// One group of buildpacks that run together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderGroup {
    /// Members, in build order.
    pub group: Vec<OrderMember>,
}

/// The groups to try, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The groups.
    #[serde(rename = "order")]
    pub groups: Vec<OrderGroup>,
}

/// One buildpack's verdict in a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Buildpack id.
    pub id: String,
    /// Buildpack version.
    pub version: String,
    /// Whether the member was optional.
    pub optional: bool,
    /// What detection said.
    pub detection: Detection,
}

/// One group's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupReport {
    /// Verdicts of the members.
    pub verdicts: Vec<Verdict>,
    /// Whether the group passed.
    pub passed: bool,
}

/// The outcome of detection over an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DetectReport {
    /// Every group tried, in order.
    pub groups: Vec<GroupReport>,
    /// Index of the chosen group.
    pub chosen: Option<usize>,
    /// Ids of the buildpacks that will run, in order.
    pub buildpacks: Vec<String>,
    /// Languages that also matched in groups after the chosen one.
    pub also_matched: Vec<String>,
}

/// Run detection over `order` (all groups are evaluated so the report is complete) and pick
/// the first passing group. `lookup` finds a buildpack by id.
pub fn resolve_order<'a>(
    order: &Order,
    lookup: &dyn Fn(&BuildpackId) -> Option<&'a dyn Buildpack>,
    context: &DetectContext<'_>,
) -> Result<DetectReport, BuildpackFailure> {
    let mut report = DetectReport {
        groups: Vec::new(),
        chosen: None,
        buildpacks: Vec::new(),
        also_matched: Vec::new(),
    };
    for (index, group) in order.groups.iter().enumerate() {
        let mut verdicts = Vec::new();
        let mut passed = !group.group.is_empty();
        let mut any_passed = false;
        for member in &group.group {
            let Some(buildpack) = lookup(&member.id) else {
                verdicts.push(Verdict {
                    id: member.id.to_string(),
                    version: String::new(),
                    optional: member.optional,
                    detection: Detection::fail("this builder has no such buildpack"),
                });
                passed &= member.optional;
                continue;
            };
            let detection = buildpack.detect(context)?;
            any_passed |= detection.passed();
            passed &= member.optional || detection.passed();
            verdicts.push(Verdict {
                id: member.id.to_string(),
                version: buildpack.descriptor().buildpack.version.clone(),
                optional: member.optional,
                detection,
            });
        }
        let passed = passed && any_passed;
        if passed {
            match report.chosen {
                None => {
                    report.chosen = Some(index);
                    report.buildpacks = verdicts
                        .iter()
                        .filter(|verdict| verdict.detection.passed())
                        .map(|verdict| verdict.id.clone())
                        .collect();
                }
                Some(_) => {
                    let required_ids = verdicts
                        .iter()
                        .filter(|verdict| !verdict.optional && verdict.detection.passed())
                        .map(|verdict| verdict.id.clone());
                    for id in required_ids {
                        if !report.buildpacks.contains(&id) && !report.also_matched.contains(&id) {
                            report.also_matched.push(id);
                        }
                    }
                }
            }
        }
        report.groups.push(GroupReport { verdicts, passed });
    }
    Ok(report)
}
