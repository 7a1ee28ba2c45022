//! Loading the WIT contract and selecting the world.
//!
//! The default is the contract embedded in `airssys-contract` (nothing to
//! track: it changes only with the crate). `wit = "dir"` loads a directory
//! beside the crate; each file read is returned so the expansion can track
//! it with `include_bytes!`.

use std::collections::BTreeSet;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use airssys_contract::capability::{Action, Domain};
use airssys_contract::contract::{Contract, ContractError, HostFunction, Requirement};
use darling::Error;
use proc_macro2::Span;
use wit_parser::{InterfaceId, WorldId, WorldItem};

/// The embedded contract or one loaded from the user's directory.
pub(crate) enum Source {
    Embedded(&'static Contract),
    Loaded(Box<Contract>),
}

impl Deref for Source {
    type Target = Contract;
    fn deref(&self) -> &Contract {
        match self {
            Source::Embedded(c) => c,
            Source::Loaded(c) => c,
        }
    }
}

/// The contract and the world the component targets.
pub(crate) struct World {
    pub(crate) contract: Source,
    pub(crate) id: WorldId,
    /// Qualified name, e.g. `airssys:core/component@1.0.0`.
    pub(crate) name: String,
}

/// Loads the contract: `wit` is the `wit = ".."` literal, if given.
/// Errors point at that literal (or at the macro call for the embedded
/// contract) and keep wit-parser's file and line.
pub(crate) fn load(
    wit: Option<&syn::LitStr>,
    manifest_dir: &Path,
    errors: &mut darling::error::Accumulator,
) -> Option<(Source, Vec<PathBuf>)> {
    let Some(lit) = wit else {
        return Some((Source::Embedded(Contract::embedded()), Vec::new()));
    };
    let dir = manifest_dir.join(lit.value());
    // Canonical paths keep messages free of `..` (and stable in tests).
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    match Contract::load_dir(&dir) {
        Ok(contract) => {
            let tracked = contract
                .resolve()
                .source_map
                .source_files()
                .map(|p| absolute(manifest_dir, p))
                .collect();
            Some((Source::Loaded(Box::new(contract)), tracked))
        }
        Err(e) => {
            errors.push(Error::custom(load_message(lit, &dir, &e)).with_span(lit));
            None
        }
    }
}

fn load_message(lit: &syn::LitStr, dir: &Path, e: &ContractError) -> String {
    match e {
        ContractError::NotADirectory { .. } => format!(
            "WIT directory `{}` not found (resolved to `{}`); `wit = \"..\"` is relative to \
             the crate's Cargo.toml, or leave it out to use the contract shipped with airssys",
            lit.value(),
            dir.display()
        ),
        ContractError::Wit { message, .. } => {
            format!("invalid WIT in `{}`:\n{message}", lit.value())
        }
        other => format!("cannot load WIT `{}`: {other}", lit.value()),
    }
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

/// Selects the world: the one named, or by default the world that exports
/// something (a component world) and imports the most interfaces.
pub(crate) fn select(
    contract: &Contract,
    world: Option<&syn::LitStr>,
    errors: &mut darling::error::Accumulator,
) -> Option<(WorldId, String)> {
    let resolve = contract.resolve();
    let name_of = |id: WorldId| {
        let w = &resolve.worlds[id];
        match w.package {
            Some(pkg) => resolve.id_of_name(pkg, &w.name),
            None => w.name.clone(),
        }
    };
    if let Some(lit) = world {
        return match contract.world(&lit.value()) {
            Some(id) => Some((id, name_of(id))),
            None => {
                let all = contract.worlds();
                let wanted = lit.value();
                let same: Vec<&String> = all
                    .iter()
                    .filter(|w| bare_world_name(w) == Some(wanted.as_str()))
                    .collect();
                let message = if same.len() > 1 {
                    format!(
                        "world `{}` is ambiguous: {}; write the qualified name, e.g. \
                         `world = \"{}\"`",
                        lit.value(),
                        same.iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        same[0].split('@').next().unwrap_or(same[0])
                    )
                } else {
                    format!(
                        "world `{}` not found; the contract defines: {}",
                        lit.value(),
                        all.join(", ")
                    )
                };
                errors.push(Error::custom(message).with_span(lit));
                None
            }
        };
    }
    let best = resolve
        .worlds
        .iter()
        .filter(|(_, w)| !w.exports.is_empty())
        .max_by_key(|(_, w)| w.imports.len());
    match best {
        Some((id, _)) => Some((id, name_of(id))),
        None => {
            errors.push(
                Error::custom(format!(
                    "the contract has no component world (one that exports something); \
                     name one with `world = \"..\"`; worlds: {}",
                    contract.worlds().join(", ")
                ))
                .with_span(&Span::call_site()),
            );
            None
        }
    }
}

impl World {
    /// The interfaces the world imports, in import order.
    pub(crate) fn imported_interfaces(&self) -> Vec<InterfaceId> {
        interfaces(&self.contract.resolve().worlds[self.id].imports)
    }

    /// The interfaces the world exports, in export order.
    pub(crate) fn exported_interfaces(&self) -> Vec<InterfaceId> {
        interfaces(&self.contract.resolve().worlds[self.id].exports)
    }

    /// The `domain:action` pairs some imported function requires.
    pub(crate) fn usable(&self) -> BTreeSet<(Domain, Action)> {
        self.contract
            .world_functions(&self.name)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(_, f)| gate(f))
            .collect()
    }

    /// The host function `name` of interface `id`, from the contract model.
    pub(crate) fn host_function(&self, id: InterfaceId, name: &str) -> Option<&HostFunction> {
        self.contract
            .interfaces()
            .iter()
            .find(|i| i.id == id)?
            .functions
            .iter()
            .find(|f| f.name == name)
    }
}

/// `airssys:core/component@1.0.0` → `component`.
fn bare_world_name(qualified: &str) -> Option<&str> {
    let (_, name) = qualified.split_once('/')?;
    name.split('@').next()
}

/// The `domain:action` a call of `f` must be declared for; `None` for
/// `@capability none` and `handle` (authorized with the handle).
pub(crate) fn gate(f: &HostFunction) -> Option<(Domain, Action)> {
    match &f.requirement {
        Requirement::Capability(t) => Some((t.domain, t.action)),
        _ => None,
    }
}

fn interfaces(items: &wit_parser::IndexMap<wit_parser::WorldKey, WorldItem>) -> Vec<InterfaceId> {
    items
        .values()
        .filter_map(|item| match item {
            WorldItem::Interface { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}
