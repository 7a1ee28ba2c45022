//! Selecting the world of the contract (loaded by
//! [`crate::contract_source`]) and what the component side needs of it.

use airssys_contract::capability::{Action, Domain};
use airssys_contract::model::{Contract, HostFunction, Requirement};
use darling::Error;
use proc_macro2::Span;
use wit_parser::{InterfaceId, WorldId, WorldItem};

use crate::contract_source::ContractSource;
use crate::errors::Errors;

/// The contract and the world the component targets.
pub(crate) struct World {
    pub(crate) contract: ContractSource,
    pub(crate) id: WorldId,
    /// Qualified name, e.g. `airssys:core/component@1.0.0`.
    pub(crate) name: String,
}

/// Selects the world: the one named, or by default the world that exports
/// something (a component world) and imports the most interfaces.
pub(crate) fn select(
    contract: &Contract,
    world: Option<&syn::LitStr>,
    errors: &mut Errors,
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
