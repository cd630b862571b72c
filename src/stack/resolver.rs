//! Dependency closure over `Pre-Depends` + `Depends` across several suites: alternatives,
//! versioned constraints, virtual packages, an exclude list, and an optional run image whose
//! packages count as installed.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use super::packages_index::PackageRecord;
use super::relation::{Alternatives, InvalidRelation, Relation, parse_relation, parse_relations};
use super::version::DebVersion;

/// Every package version the configured suites offer.
#[derive(Debug, Default)]
pub struct Universe {
    /// Candidates per name, newest first (ties keep suite order).
    by_name: HashMap<String, Vec<PackageRecord>>,
    /// Virtual name → packages providing it.
    providers: HashMap<String, Vec<Provider>>,
}

#[derive(Debug, Clone)]
struct Provider {
    package: String,
    package_version: DebVersion,
    provided_version: Option<DebVersion>,
}

/// A package the run image already has.
#[derive(Debug, Clone)]
pub struct InstalledPackage {
    /// Name.
    pub name: String,
    /// Installed version.
    pub version: DebVersion,
    /// What it provides (`name (= version)` entries).
    pub provides: Vec<Relation>,
}

/// Packages of the image a closure is computed over.
#[derive(Debug, Clone, Default)]
pub struct InstalledSet {
    packages: BTreeMap<String, InstalledPackage>,
}

/// The outcome of a resolution.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// Chosen packages, sorted by name.
    pub packages: Vec<ResolvedRecord>,
}

/// A chosen package and why it was chosen.
#[derive(Debug, Clone)]
pub struct ResolvedRecord {
    /// The index record.
    pub record: PackageRecord,
    /// The package whose dependency pulled it in; `None` when it was requested.
    pub required_by: Option<String>,
}

/// Why a closure cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("no package `{request}` in the configured suites")]
    UnknownPackage { request: String },
    #[error(
        "{package} {version} depends on `{dependency}`, which the configured suites cannot satisfy"
    )]
    Unsatisfiable {
        package: String,
        version: String,
        dependency: String,
    },
    #[error(
        "{package} {version} depends on `{dependency}` but the run image has {installed} {installed_version}"
    )]
    RunImageTooOld {
        package: String,
        version: String,
        dependency: String,
        installed: String,
        installed_version: String,
    },
    #[error(
        "{package} {version} depends on `{dependency}` but {chosen} {chosen_version} was already chosen"
    )]
    Conflict {
        package: String,
        version: String,
        dependency: String,
        chosen: String,
        chosen_version: String,
    },
    #[error("package {package} {version} has an unreadable `{field}` field")]
    BadRelations {
        package: String,
        version: String,
        field: &'static str,
        #[source]
        source: InvalidRelation,
    },
    #[error("the request `{request}` is not a package name")]
    BadRequest {
        request: String,
        #[source]
        source: InvalidRelation,
    },
}

impl Universe {
    /// Build from index records given in suite preference order.
    pub fn new(records: impl IntoIterator<Item = PackageRecord>) -> Self {
        let mut by_name: HashMap<String, Vec<PackageRecord>> = HashMap::new();
        for record in records {
            let candidates = by_name.entry(record.name.clone()).or_default();
            // The same version in two suites (e.g. a point release copied into updates) is
            // one candidate: keep the first suite's record.
            if !candidates
                .iter()
                .any(|known| known.version == record.version && known.arch == record.arch)
            {
                candidates.push(record);
            }
        }
        let mut providers: HashMap<String, Vec<Provider>> = HashMap::new();
        for candidates in by_name.values_mut() {
            // Stable sort: equal versions keep suite order, so "newest wins, then suite order".
            candidates.sort_by(|a, b| b.version.cmp(&a.version));
            for record in candidates.iter() {
                for provided in record
                    .provides
                    .split(',')
                    .filter_map(|text| parse_relation(text).ok())
                {
                    providers
                        .entry(provided.name.clone())
                        .or_default()
                        .push(Provider {
                            package: record.name.clone(),
                            package_version: record.version.clone(),
                            provided_version: provided
                                .constraint
                                .map(|constraint| constraint.version),
                        });
                }
            }
        }
        for list in providers.values_mut() {
            list.sort_by(|a, b| {
                a.package
                    .cmp(&b.package)
                    .then_with(|| b.package_version.cmp(&a.package_version))
            });
        }
        Self { by_name, providers }
    }

    /// Number of distinct package names.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether no package is known.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// All candidates of a name, newest first.
    pub fn candidates(&self, name: &str) -> &[PackageRecord] {
        self.by_name
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The newest real package satisfying `relation`, else the first provider (by name,
    /// then newest) whose `Provides` satisfies it.
    fn best_for(&self, relation: &Relation) -> Option<&PackageRecord> {
        if let Some(record) = self
            .candidates(&relation.name)
            .iter()
            .find(|record| relation.allows(&record.version))
        {
            return Some(record);
        }
        let providers = self.providers.get(&relation.name)?;
        providers.iter().find_map(|provider| {
            if !provides_satisfies(provider.provided_version.as_ref(), relation) {
                return None;
            }
            self.candidates(&provider.package)
                .iter()
                .find(|record| record.version == provider.package_version)
        })
    }
}

/// Whether a `Provides` entry with `provided_version` satisfies `relation` (Debian policy:
/// an unversioned provide never satisfies a versioned dependency).
fn provides_satisfies(provided_version: Option<&DebVersion>, relation: &Relation) -> bool {
    match (&relation.constraint, provided_version) {
        (None, _) => true,
        (Some(constraint), Some(version)) => constraint.allows(version),
        (Some(_), None) => false,
    }
}

impl InstalledSet {
    /// Add an installed package.
    pub fn insert(&mut self, package: InstalledPackage) {
        self.packages.insert(package.name.clone(), package);
    }

    /// The installed package called `name`.
    pub fn get(&self, name: &str) -> Option<&InstalledPackage> {
        self.packages.get(name)
    }

    /// Every installed package, by name.
    pub fn iter(&self) -> impl Iterator<Item = &InstalledPackage> {
        self.packages.values()
    }

    /// Whether some installed package satisfies `relation` directly or via `Provides`.
    fn satisfies(&self, relation: &Relation) -> bool {
        if self
            .get(&relation.name)
            .is_some_and(|installed| relation.allows(&installed.version))
        {
            return true;
        }
        self.packages.values().any(|installed| {
            installed.provides.iter().any(|provided| {
                provided.name == relation.name
                    && provides_satisfies(
                        provided.constraint.as_ref().map(|c| &c.version),
                        relation,
                    )
            })
        })
    }
}

/// What a resolution starts from.
#[derive(Debug, Clone, Copy)]
pub struct ResolveRequest<'a> {
    /// Requested packages (`name` or `name (op version)`).
    pub packages: &'a [String],
    /// Names never pulled in as dependencies (a dependency on them counts as met).
    /// Explicit requests still install them.
    pub exclude: &'a BTreeSet<String>,
    /// The image the closure is computed over, if any.
    pub installed: Option<&'a InstalledSet>,
}

/// Compute the closure of `request` in `universe`.
pub fn resolve(
    universe: &Universe,
    request: ResolveRequest<'_>,
) -> Result<Resolution, ResolveError> {
    let empty = InstalledSet::default();
    let installed = request.installed.unwrap_or(&empty);
    let mut state = State {
        universe,
        installed,
        exclude: request.exclude,
        chosen: BTreeMap::new(),
        queue: VecDeque::new(),
    };
    for text in request.packages {
        let relation = parse_relation(text).map_err(|source| ResolveError::BadRequest {
            request: text.clone(),
            source,
        })?;
        if installed.satisfies(&relation) || state.chosen_satisfies(&relation) {
            continue;
        }
        let record = universe
            .best_for(&relation)
            .ok_or_else(|| ResolveError::UnknownPackage {
                request: text.clone(),
            })?;
        state.choose(record, None);
    }
    while let Some(name) = state.queue.pop_front() {
        let Some(chosen) = state.chosen.get(&name) else {
            continue;
        };
        let record = chosen.record.clone();
        for (field, text) in [
            ("Pre-Depends", &record.pre_depends),
            ("Depends", &record.depends),
        ] {
            let groups = parse_relations(text).map_err(|source| ResolveError::BadRelations {
                package: record.name.clone(),
                version: record.version.to_string(),
                field,
                source,
            })?;
            for group in groups {
                state.satisfy(&record, &group)?;
            }
        }
    }
    Ok(Resolution {
        packages: state.chosen.into_values().collect(),
    })
}

struct State<'a> {
    universe: &'a Universe,
    installed: &'a InstalledSet,
    exclude: &'a BTreeSet<String>,
    chosen: BTreeMap<String, ResolvedRecord>,
    queue: VecDeque<String>,
}

impl State<'_> {
    fn choose(&mut self, record: &PackageRecord, required_by: Option<&str>) {
        self.queue.push_back(record.name.clone());
        self.chosen.insert(
            record.name.clone(),
            ResolvedRecord {
                record: record.clone(),
                required_by: required_by.map(str::to_owned),
            },
        );
    }

    fn chosen_satisfies(&self, relation: &Relation) -> bool {
        if self
            .chosen
            .get(&relation.name)
            .is_some_and(|chosen| relation.allows(&chosen.record.version))
        {
            return true;
        }
        self.chosen.values().any(|chosen| {
            chosen
                .record
                .provides
                .split(',')
                .filter_map(|text| parse_relation(text).ok())
                .any(|provided| {
                    provided.name == relation.name
                        && provides_satisfies(
                            provided.constraint.as_ref().map(|c| &c.version),
                            relation,
                        )
                })
        })
    }

    /// Meet one dependency group: already met (excluded, installed, chosen), else choose the
    /// first alternative the suites can satisfy, else explain why not.
    fn satisfy(
        &mut self,
        package: &PackageRecord,
        group: &Alternatives,
    ) -> Result<(), ResolveError> {
        let met = group.0.iter().any(|relation| {
            self.exclude.contains(&relation.name)
                || self.installed.satisfies(relation)
                || self.chosen_satisfies(relation)
        });
        if met {
            return Ok(());
        }
        for relation in &group.0 {
            // A name already chosen or installed at a version that does not fit cannot be
            // replaced by another version of it: only another alternative can help.
            if self.chosen.contains_key(&relation.name)
                || self.installed.get(&relation.name).is_some()
            {
                continue;
            }
            let Some(record) = self.universe.best_for(relation) else {
                continue;
            };
            // A provider that is excluded by name would be skipped as a dependency anyway.
            if self.exclude.contains(&record.name) {
                return Ok(());
            }
            if self.installed.get(&record.name).is_some() || self.chosen.contains_key(&record.name)
            {
                continue;
            }
            self.choose(record, Some(&package.name));
            return Ok(());
        }
        Err(self.explain(package, group))
    }

    fn explain(&self, package: &PackageRecord, group: &Alternatives) -> ResolveError {
        let version = package.version.to_string();
        let dependency = group.to_string();
        for relation in &group.0 {
            if let Some(installed) = self.installed.get(&relation.name) {
                return ResolveError::RunImageTooOld {
                    package: package.name.clone(),
                    version,
                    dependency,
                    installed: installed.name.clone(),
                    installed_version: installed.version.to_string(),
                };
            }
        }
        for relation in &group.0 {
            if let Some(chosen) = self.chosen.get(&relation.name) {
                return ResolveError::Conflict {
                    package: package.name.clone(),
                    version,
                    dependency,
                    chosen: chosen.record.name.clone(),
                    chosen_version: chosen.record.version.to_string(),
                };
            }
        }
        ResolveError::Unsatisfiable {
            package: package.name.clone(),
            version,
            dependency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic index: `name version suite [Depends] [Provides]`, one line each.
    fn universe(lines: &[&str]) -> Universe {
        Universe::new(lines.iter().map(|line| record(line)))
    }

    fn record(line: &str) -> PackageRecord {
        let fields: Vec<&str> = line.split(';').map(str::trim).collect();
        let name = fields[0];
        let version = fields[1];
        PackageRecord {
            name: name.to_owned(),
            version: DebVersion::parse(version).unwrap(),
            arch: "amd64".to_owned(),
            pre_depends: String::new(),
            depends: fields.get(3).unwrap_or(&"").to_string(),
            provides: fields.get(4).unwrap_or(&"").to_string(),
            filename: format!("pool/{name}_{version}.deb"),
            size: 1,
            sha256: "0".repeat(64),
            suite: fields[2].to_owned(),
        }
    }

    fn names(resolution: &Resolution) -> Vec<String> {
        resolution
            .packages
            .iter()
            .map(|chosen| {
                format!(
                    "{}={}@{}",
                    chosen.record.name, chosen.record.version, chosen.record.suite
                )
            })
            .collect()
    }

    fn run(
        universe: &Universe,
        packages: &[&str],
        exclude: &[&str],
    ) -> Result<Resolution, ResolveError> {
        let packages: Vec<String> = packages.iter().map(|p| p.to_string()).collect();
        let exclude: BTreeSet<String> = exclude.iter().map(|p| p.to_string()).collect();
        resolve(
            universe,
            ResolveRequest {
                packages: &packages,
                exclude: &exclude,
                installed: None,
            },
        )
    }

    #[test]
    fn newest_version_wins_across_suites() {
        let index = universe(&[
            "libssl3; 3.0.15-1~deb12u1; bookworm",
            "libssl3; 3.0.17-1~deb12u2; bookworm-security",
            "libssl3; 3.0.16-1~deb12u1; bookworm-updates",
        ]);
        let resolution = run(&index, &["libssl3"], &[]).unwrap();
        assert_eq!(
            names(&resolution),
            ["libssl3=3.0.17-1~deb12u2@bookworm-security"]
        );
    }

    #[test]
    fn versioned_constraints_pick_the_newest_allowed() {
        let index = universe(&[
            "app; 1; bookworm; lib (<< 2.0)",
            "lib; 1.5; bookworm",
            "lib; 2.1; bookworm-updates",
        ]);
        assert_eq!(
            names(&run(&index, &["app"], &[]).unwrap()),
            ["app=1@bookworm", "lib=1.5@bookworm"]
        );
    }

    #[test]
    fn alternatives_prefer_the_first_satisfiable_and_reuse_chosen_ones() {
        let index = universe(&[
            "app; 1; bookworm; missing | second, third | second",
            "second; 1; bookworm",
            "third; 1; bookworm",
        ]);
        assert_eq!(
            names(&run(&index, &["app"], &[]).unwrap()),
            ["app=1@bookworm", "second=1@bookworm"]
        );
    }

    #[test]
    fn virtual_packages_resolve_through_provides() {
        let index = universe(&[
            "app; 1; bookworm; awk, libgcc1 (>= 1:10)",
            "mawk; 1.3.4; bookworm; ; awk",
            "gawk; 5.2; bookworm; ; awk",
            "libgcc-s1; 12.2.0; bookworm; ; libgcc1 (= 1:12.2.0)",
        ]);
        // Several providers: the first by name is chosen, deterministically.
        assert_eq!(
            names(&run(&index, &["app"], &[]).unwrap()),
            [
                "app=1@bookworm",
                "gawk=5.2@bookworm",
                "libgcc-s1=12.2.0@bookworm"
            ]
        );
        // An unversioned Provides never satisfies a versioned dependency.
        let unversioned = universe(&["app; 1; bookworm; awk (>= 1)", "mawk; 1; bookworm; ; awk"]);
        assert!(matches!(
            run(&unversioned, &["app"], &[]),
            Err(ResolveError::Unsatisfiable { .. })
        ));
    }

    #[test]
    fn excluded_names_are_met_without_installing_them() {
        let index = universe(&[
            "tzdata; 2025b; bookworm; debconf (>= 0.5) | debconf-2.0",
            "debconf; 1.5.82; bookworm; perl-base",
            "perl-base; 5.36; bookworm",
        ]);
        let exclude = ["debconf", "debconf-2.0", "perl-base"];
        assert_eq!(
            names(&run(&index, &["tzdata"], &exclude).unwrap()),
            ["tzdata=2025b@bookworm"]
        );
        // Requested explicitly, an excluded package is installed (its dependencies stay excluded).
        assert_eq!(
            names(&run(&index, &["tzdata", "debconf"], &exclude).unwrap()),
            ["debconf=1.5.82@bookworm", "tzdata=2025b@bookworm"]
        );
    }

    #[test]
    fn unsatisfiable_dependencies_name_package_and_dependency() {
        let index = universe(&["app; 1.0-1; bookworm; lib (>= 3)", "lib; 2; bookworm"]);
        let error = run(&index, &["app"], &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "app 1.0-1 depends on `lib (>= 3)`, which the configured suites cannot satisfy"
        );
        let error = run(&index, &["nope"], &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no package `nope` in the configured suites"
        );
    }

    #[test]
    fn conflicting_constraints_are_reported_with_the_chosen_version() {
        let index = universe(&[
            "app; 1; bookworm; lib, helper",
            "helper; 1; bookworm; lib (<< 2)",
            "lib; 1; bookworm",
            "lib; 2; bookworm",
        ]);
        let error = run(&index, &["app"], &[]).unwrap_err();
        assert!(
            matches!(error, ResolveError::Conflict { ref chosen_version, .. } if chosen_version == "2"),
            "{error}"
        );
    }

    #[test]
    fn closure_over_an_installed_image_skips_satisfied_packages_only() {
        let index = universe(&[
            "python3; 3.11; bookworm; libc6 (>= 2.34), libssl3 (>= 3.0.9), mime | media-types",
            "libc6; 2.36-9+deb12u10; bookworm",
            "libssl3; 3.0.17; bookworm",
            "media-types; 10; bookworm",
        ]);
        let mut installed = InstalledSet::default();
        installed.insert(InstalledPackage {
            name: "libc6".to_owned(),
            version: DebVersion::parse("2.36-9+deb12u10").unwrap(),
            provides: Vec::new(),
        });
        installed.insert(InstalledPackage {
            name: "mime-support-compat".to_owned(),
            version: DebVersion::parse("1").unwrap(),
            provides: vec![Relation::any_version("mime")],
        });
        let packages = vec!["python3".to_owned()];
        let exclude = BTreeSet::new();
        let request = ResolveRequest {
            packages: &packages,
            exclude: &exclude,
            installed: Some(&installed),
        };
        let resolution = resolve(&index, request).unwrap();
        assert_eq!(
            names(&resolution),
            ["libssl3=3.0.17@bookworm", "python3=3.11@bookworm"]
        );

        let mut old = InstalledSet::default();
        old.insert(InstalledPackage {
            name: "libc6".to_owned(),
            version: DebVersion::parse("2.31-13").unwrap(),
            provides: Vec::new(),
        });
        let request = ResolveRequest {
            installed: Some(&old),
            ..request
        };
        let error = resolve(&index, request).unwrap_err();
        assert_eq!(
            error.to_string(),
            "python3 3.11 depends on `libc6 (>= 2.34)` but the run image has libc6 2.31-13"
        );
    }
}
