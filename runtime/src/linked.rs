//! What this host links for every component, checked before anything is
//! compiled: the airssys contract, and WASI 0.2 as wasmtime-wasi's
//! `add_to_linker_sync` defines it (the interfaces of `wasi:cli/imports`,
//! stable features only).
//!
//! The WASI WIT is the one wasmtime-wasi 48.0.8 generates its host
//! bindings from, copied into `runtime/wasi/` (a test links a component
//! importing every interface of it, so the copy cannot drift from what the
//! linker defines). An import of any other package — `wasi:http`, say,
//! which componentize-js imports unless told not to — is named here,
//! before a compile of many seconds, instead of failing at link time.

use std::collections::HashSet;
use std::sync::OnceLock;

use airssys_contract::compat::{ChangeRule, Mismatch, check_import};
use airssys_contract::model::Contract;
use wit_parser::{InterfaceId, PackageName, Resolve, WorldId, WorldItem};

/// The WASI packages wasmtime-wasi links, in dependency order.
const WASI_FILES: &[(&str, &str)] = &[
    ("wasi/io.wit", include_str!("../wasi/io.wit")),
    ("wasi/clocks.wit", include_str!("../wasi/clocks.wit")),
    ("wasi/random.wit", include_str!("../wasi/random.wit")),
    (
        "wasi/filesystem.wit",
        include_str!("../wasi/filesystem.wit"),
    ),
    ("wasi/sockets.wit", include_str!("../wasi/sockets.wit")),
    ("wasi/cli.wit", include_str!("../wasi/cli.wit")),
];

/// The host's WIT: the contract and the WASI it links.
struct HostWit {
    resolve: Resolve,
    /// The WASI interfaces the linker defines.
    wasi: HashSet<InterfaceId>,
    /// `wasi:io@0.2.12`, ... for messages.
    wasi_packages: Vec<String>,
}

fn host_wit() -> &'static HostWit {
    static HOST: OnceLock<HostWit> = OnceLock::new();
    HOST.get_or_init(|| {
        let mut resolve = Contract::embedded().resolve().clone();
        let mut wasi_packages = Vec::new();
        for (path, text) in WASI_FILES {
            let pkg = resolve
                .push_str(path, text)
                .expect("wasmtime-wasi's WIT resolves (tested)");
            wasi_packages.push(resolve.packages[pkg].name.to_string());
        }
        let wasi = resolve
            .packages
            .iter()
            .find(|(_, p)| p.name.namespace == "wasi" && p.name.name == "cli")
            .and_then(|(_, p)| p.worlds.get("imports"))
            .map(|world| {
                resolve.worlds[*world]
                    .imports
                    .values()
                    .filter_map(|item| match item {
                        WorldItem::Interface { id, .. } => Some(*id),
                        _ => None,
                    })
                    .collect()
            })
            .expect("wasmtime-wasi's WIT has `wasi:cli/imports` (tested)");
        HostWit {
            resolve,
            wasi,
            wasi_packages,
        }
    })
}

/// The WASI packages this host links: `wasi:io@0.2.12`, ...
pub fn wasi_packages() -> &'static [String] {
    &host_wit().wasi_packages
}

/// Every import of the component's `world` (decoded from it with
/// `wit_component::decode`) that this host does not link, other than
/// interfaces of the airssys contract (compared with the contract by the
/// load-time compatibility check) and of packages `served` says an
/// extension serves (compared with the extension's WIT). An empty result
/// means everything else the component imports is linked: WASI 0.2
/// interfaces with the types the host has, on the same version track.
///
/// A mismatch's `item` names the function (or type) the host lacks or
/// has with another type; `None` means the whole interface is missing.
pub fn unlinked_imports(
    resolve: &Resolve,
    world: WorldId,
    served: impl Fn(&PackageName) -> bool,
) -> Vec<Mismatch> {
    let host = host_wit();
    let contract = Contract::embedded().resolve();
    let mut out = Vec::new();
    for (key, item) in &resolve.worlds[world].imports {
        match item {
            WorldItem::Interface { id, .. } => {
                let iface = &resolve.interfaces[*id];
                let package = iface.package.map(|p| &resolve.packages[p].name);
                let Some(package) = package.filter(|_| iface.name.is_some()) else {
                    out.push(missing(resolve.name_world_key(key), false));
                    continue;
                };
                let in_contract = contract.packages.iter().any(|(_, p)| {
                    p.name.namespace == package.namespace && p.name.name == package.name
                });
                if in_contract || served(package) {
                    continue;
                }
                let found = check_import(resolve, *id, &host.resolve);
                if !found.is_empty() {
                    out.extend(found);
                } else if !is_linked_wasi(&host.resolve, &host.wasi, resolve, *id) {
                    out.push(missing(resolve.name_world_key(key), false));
                }
            }
            WorldItem::Function(f) => out.push(missing(f.name.clone(), true)),
            WorldItem::Type { .. } => {}
        }
    }
    out
}

/// Whether the host interface that serves import `id` is one the WASI
/// linker defines (not, say, `wasi:cli/run`, which a command exports).
fn is_linked_wasi(
    host: &Resolve,
    linked: &HashSet<InterfaceId>,
    resolve: &Resolve,
    id: InterfaceId,
) -> bool {
    let iface = &resolve.interfaces[id];
    let (Some(name), Some(pkg)) = (&iface.name, iface.package) else {
        return false;
    };
    let pkg = &resolve.packages[pkg].name;
    linked.iter().any(|&h| {
        let hi = &host.interfaces[h];
        hi.name.as_deref() == Some(name.as_str())
            && hi.package.is_some_and(|p| {
                let hp = &host.packages[p].name;
                hp.namespace == pkg.namespace && hp.name == pkg.name
            })
    })
}

/// A whole import the host lacks: an interface, or a function the world
/// imports by itself (the host provides none).
fn missing(import: String, function: bool) -> Mismatch {
    let (rule, message) = if function {
        (
            ChangeRule::WorldImportRemoved,
            format!("function `{import}` imported by the world itself: this host provides none"),
        )
    } else {
        (
            ChangeRule::InterfaceRemoved,
            format!("interface {import}: this host does not link it"),
        )
    };
    Mismatch {
        rule,
        interface: import,
        message,
        item: None,
    }
}

/// One line per unlinked import for a load error: the interface and what
/// of it is missing or different, in the words of the link-time check
/// (``wasi:http/types@0.2.3` (this host does not provide it)`).
pub(crate) fn describe(mismatches: &[Mismatch]) -> String {
    let mut lines: Vec<String> = Vec::new();
    for m in mismatches {
        let line = match (&m.item, m.rule) {
            (None, _) => format!("`{}` (this host does not provide it)", m.interface),
            (Some(item), rule) if rule.to_string().ends_with("-removed") => {
                format!(
                    "`{}` (this host does not provide `{item}` in it)",
                    m.interface
                )
            }
            (Some(item), _) => {
                format!(
                    "`{}` (this host's `{item}` has a different type)",
                    m.interface
                )
            }
        };
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wasi_copy_resolves_with_the_linked_world() {
        let host = host_wit();
        assert!(host.wasi.len() > 20, "{}", host.wasi.len());
        assert!(wasi_packages().iter().any(|p| p == "wasi:io@0.2.12"));
    }
}
