//! The load-time check: does the host's contract serve what a component
//! imports? Same engine as `airssys wit diff`, with the component as OLD
//! and the host as NEW, keeping only what breaks importers.

use std::fmt;

use serde::{Deserialize, Serialize};
use wit_parser::{InterfaceId, PackageId, Resolve, WorldId, WorldItem};

use super::engine::{Engine, Wording};
use super::report::Change;
use super::rules::ChangeRule;
use super::version::check_track;

/// One way a component's import disagrees with the host, in words a person
/// can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The rule that was broken.
    pub rule: ChangeRule,
    /// The interface as the component names it (`airssys:core/storage@1.0.0`).
    pub interface: String,
    /// "interface airssys:core/storage@1.0.0: function `get`: the component
    /// expects parameter `key: string`, the host has `key: u32`".
    pub message: String,
    /// The item of the interface the mismatch is about (a function such as
    /// `get` or `bucket.get`, a type); `None` when it is about the whole
    /// interface or package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Compares one interface of `old` with one interface of `new`; every
/// change, with its verdicts, worded as OLD versus NEW.
pub fn compare_interfaces(
    old: &Resolve,
    old_interface: InterfaceId,
    new: &Resolve,
    new_interface: InterfaceId,
) -> Vec<Change> {
    let mut engine = Engine::new(old, new, None, None, Wording::Diff);
    engine.one_interface(old_interface, new_interface, String::new());
    engine.changes
}

/// The host package that would serve `ns:name@version` under wasmtime's
/// rule: same track, the highest version not older than the component's.
fn host_package(
    host: &Resolve,
    component: &wit_parser::PackageName,
) -> Result<PackageId, Option<PackageId>> {
    let same_name: Vec<PackageId> = host
        .packages
        .iter()
        .filter(|(_, p)| p.name.namespace == component.namespace && p.name.name == component.name)
        .map(|(id, _)| id)
        .collect();
    same_name
        .iter()
        .copied()
        .filter(|id| {
            check_track(
                component.version.as_ref(),
                host.packages[*id].name.version.as_ref(),
            )
            .is_ok()
        })
        .max_by(|a, b| {
            host.packages[*a]
                .name
                .version
                .cmp(&host.packages[*b].name.version)
        })
        .ok_or_else(|| same_name.first().copied())
}

/// Checks one interface a component imports (from a Resolve decoded with
/// `wit_component::decode`) against the host's contract: the semver track
/// rule first, then the interface's content. An empty result means the
/// import is served.
///
/// The host may define more functions and types than the component uses;
/// only changes that break importers are returned.
pub fn check_import(component: &Resolve, import: InterfaceId, host: &Resolve) -> Vec<Mismatch> {
    let iface = &component.interfaces[import];
    let (Some(name), Some(pkg)) = (&iface.name, iface.package) else {
        return Vec::new();
    };
    let pkg_name = &component.packages[pkg].name;
    let qualified = pkg_name.interface_id(name);
    let prefix = format!("interface {qualified}: ");
    let mismatch = |rule: ChangeRule, message: String| Mismatch {
        rule,
        interface: qualified.clone(),
        message: format!("{prefix}{message}"),
        item: None,
    };
    let host_pkg = match host_package(host, pkg_name) {
        Ok(id) => id,
        Err(Some(other)) => {
            let hv = host.packages[other].name.version.as_ref();
            let why = check_track(pkg_name.version.as_ref(), hv)
                .err()
                .map_or_else(
                    || "the versions do not match".to_string(),
                    |e| e.to_string(),
                );
            let offered = hv.map_or("no version".to_string(), |v| format!("version {v}"));
            return vec![mismatch(
                ChangeRule::PackageTrackChanged,
                format!("{why} ({offered})"),
            )];
        }
        Err(None) => {
            return vec![mismatch(
                ChangeRule::InterfaceRemoved,
                format!(
                    "the host does not provide package `{}:{}`",
                    pkg_name.namespace, pkg_name.name
                ),
            )];
        }
    };
    let Some(&host_iface) = host.packages[host_pkg].interfaces.get(name) else {
        return vec![mismatch(
            ChangeRule::InterfaceRemoved,
            format!(
                "the host's package `{}` has no interface `{name}`",
                host.packages[host_pkg].name
            ),
        )];
    };
    let mut engine = Engine::new(component, host, None, None, Wording::Link);
    engine.one_interface(import, host_iface, prefix);
    engine
        .changes
        .into_iter()
        .filter(|c| c.importers.is_breaking())
        .map(|c| Mismatch {
            rule: c.rule,
            interface: qualified.clone(),
            message: c.message,
            item: c.location.item,
        })
        .collect()
}

/// Checks every named interface a component's world imports whose package
/// the host's contract knows (by `ns:name`, any version); imports of other
/// packages (WASI, ...) are left to whoever serves them.
pub fn check_world_imports(component: &Resolve, world: WorldId, host: &Resolve) -> Vec<Mismatch> {
    let known = |id: InterfaceId| {
        component.interfaces[id].package.is_some_and(|p| {
            let n = &component.packages[p].name;
            host.packages
                .iter()
                .any(|(_, hp)| hp.name.namespace == n.namespace && hp.name.name == n.name)
        })
    };
    component.worlds[world]
        .imports
        .values()
        .filter_map(|item| match item {
            WorldItem::Interface { id, .. } if known(*id) => {
                Some(check_import(component, *id, host))
            }
            _ => None,
        })
        .flatten()
        .collect()
}
