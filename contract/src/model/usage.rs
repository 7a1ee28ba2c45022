//! Least privilege from imports: which capabilities the functions a world
//! (or a built component) imports can use, which declared capabilities
//! none of them can, and which imported functions no declared capability
//! covers.
//!
//! One analysis serves `#[airssys::component]` (the world it generates
//! bindings for) and the CLI (`airssys inspect`, `airssys manifest check`:
//! the world decoded from a built component, whatever its language), so a
//! capability is refused for the same reason, in the same words, by both.

use std::collections::BTreeSet;

use wit_parser::{Resolve, WorldId, WorldItem};

use super::{CapabilityTemplate, Contract, Requirement};
use crate::capability::{Action, Capability, Domain};

/// The interface whose export receives messages: a component exporting it
/// can use `msg:subscribe`.
pub const HANDLER_INTERFACE: &str = "airssys:core/handler";

/// What the functions a world imports can use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportUsage {
    /// The `domain:action` pairs some imported function requires, plus
    /// `msg:subscribe` when the world exports [`HANDLER_INTERFACE`] (the
    /// host delivers subscribed messages there).
    pub usable: BTreeSet<(Domain, Action)>,
    /// Every imported function whose `@capability` names a capability,
    /// in import order.
    pub guarded: Vec<GuardedImport>,
    /// Worlds of the contract whose every host function is imported: a
    /// toolchain that imports a whole world (componentize-py,
    /// componentize-js) rather than the functions the code calls.
    pub whole_worlds: Vec<String>,
}

/// An imported function that runs only under a capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedImport {
    /// The interface, unversioned: `airssys:core/storage`.
    pub interface: String,
    /// The function as written in the interface: `open`, `bucket.get`.
    pub function: String,
    /// What a call needs, e.g. `kv:read:{self}/{key}`.
    pub template: CapabilityTemplate,
}

/// How a finding names what it is about and how to fix it; the macro and
/// the CLI word the same finding for their users.
#[derive(Debug, Clone, Copy)]
pub struct Wording<'a> {
    /// What the imports belong to: "world `airssys:core/component@1.0.0`",
    /// "component `py-counter`".
    pub subject: &'a str,
    /// The same, as the note names it: "`airssys:core/component@1.0.0`".
    pub owner: &'a str,
    /// The other way out of an unusable capability, after "remove it, or":
    /// "select a world that imports such a function with `world = \"..\"`".
    pub remedy: &'a str,
    /// The other way out of an unusable `msg:subscribe`, after "remove
    /// it, or".
    pub handler_remedy: &'a str,
}

impl Contract {
    /// What the functions `world` of `resolve` imports can use: the world
    /// of this contract the macro generates bindings for, or the world
    /// decoded from a built component (`wit_component::decode`). Imported
    /// interfaces are matched with this contract's by package and name
    /// (any version; the load-time check compares versions).
    pub fn import_usage(&self, resolve: &Resolve, world: WorldId) -> ImportUsage {
        let mut usage = ImportUsage::default();
        let world_ref = &resolve.worlds[world];
        // (contract interface index, imported function names)
        let mut imported: Vec<(usize, BTreeSet<&str>)> = Vec::new();
        for item in world_ref.imports.values() {
            let WorldItem::Interface { id, .. } = item else {
                continue;
            };
            let Some(name) = resolve.id_of(*id) else {
                continue;
            };
            let bare = name.split('@').next().unwrap_or(&name);
            let Some(index) = self
                .interfaces
                .iter()
                .position(|i| i.unversioned_name() == bare)
            else {
                continue;
            };
            let interface = &self.interfaces[index];
            let functions: BTreeSet<&str> = resolve.interfaces[*id]
                .functions
                .keys()
                .map(String::as_str)
                .collect();
            for f in &interface.functions {
                if !functions.contains(f.name.as_str()) {
                    continue;
                }
                if let Requirement::Capability(template) = &f.requirement {
                    usage.usable.insert((template.domain, template.action));
                    usage.guarded.push(GuardedImport {
                        interface: interface.unversioned_name(),
                        function: f.display_name(),
                        template: template.clone(),
                    });
                }
            }
            imported.push((index, functions));
        }
        if exports_handler(resolve, world) {
            usage.usable.insert((Domain::Msg, Action::Subscribe));
        }
        usage.whole_worlds = self.whole_worlds(&imported);
        usage
    }

    /// The worlds of this contract every host function of which is in
    /// `imported`, largest first.
    fn whole_worlds(&self, imported: &[(usize, BTreeSet<&str>)]) -> Vec<String> {
        // (functions, not a component world, name): component worlds first
        // among worlds of equal size.
        let mut out: Vec<(usize, bool, String)> = Vec::new();
        for (id, world) in self.resolve.worlds.iter() {
            let mut count = 0;
            let mut whole = true;
            for item in world.imports.values() {
                let WorldItem::Interface { id, .. } = item else {
                    continue;
                };
                let Some(index) = self.interfaces.iter().position(|i| i.id == *id) else {
                    continue;
                };
                let all = &self.interfaces[index].functions;
                let have = imported.iter().find(|(i, _)| *i == index);
                match have {
                    Some((_, names)) if all.iter().all(|f| names.contains(f.name.as_str())) => {
                        count += all.len();
                    }
                    _ if all.is_empty() => {}
                    _ => whole = false,
                }
            }
            if whole && count > 0 {
                out.push((count, world.exports.is_empty(), self.world_name(id)));
            }
        }
        out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| (a.1, &a.2).cmp(&(b.1, &b.2))));
        out.into_iter().map(|(_, _, name)| name).collect()
    }
}

/// Whether `world` exports [`HANDLER_INTERFACE`] (any version).
fn exports_handler(resolve: &Resolve, world: WorldId) -> bool {
    resolve.worlds[world]
        .exports
        .values()
        .any(|item| match item {
            WorldItem::Interface { id, .. } => resolve
                .id_of(*id)
                .is_some_and(|name| name.split('@').next() == Some(HANDLER_INTERFACE)),
            _ => false,
        })
}

impl ImportUsage {
    /// Whether some imported function (or the exported handler) can use
    /// `capability`.
    pub fn can_use(&self, capability: &Capability) -> bool {
        self.usable
            .contains(&(capability.domain(), capability.action()))
    }

    /// Why `capability` is of no use to these imports, worded for the
    /// user; `None` when some imported function can use it. `origin` is
    /// appended to the capability (` (from Component.toml)` or empty).
    pub fn unusable_message(
        &self,
        capability: &Capability,
        origin: &str,
        wording: &Wording<'_>,
    ) -> Option<String> {
        if self.can_use(capability) {
            return None;
        }
        let Wording {
            subject,
            owner,
            remedy,
            handler_remedy,
        } = wording;
        let (domain, action) = (capability.domain(), capability.action());
        if (domain, action) == (Domain::Msg, Action::Subscribe) {
            return Some(format!(
                "capability `{capability}`{origin} is of no use in {subject}: the host delivers \
                 subscribed messages to the exported `{HANDLER_INTERFACE}` interface, which this \
                 world does not export; remove it, or {handler_remedy}"
            ));
        }
        let list = self
            .usable
            .iter()
            .map(|(d, a)| format!("{d}:{a}"))
            .collect::<Vec<_>>()
            .join(", ");
        let list = if list.is_empty() {
            String::from("none: the world imports no capability-checked function")
        } else {
            list
        };
        Some(format!(
            "capability `{capability}`{origin} is of no use in {subject}: no function it imports \
             requires `{domain}:{action}`; remove it, or {remedy}\n  = note: the functions of \
             {owner} require: {list}"
        ))
    }

    /// The imported functions that no capability in `declared` can ever
    /// allow (no declared capability has their domain and action): every
    /// call of them will be denied.
    pub fn undeclared<'a>(
        &'a self,
        declared: &[&Capability],
    ) -> impl Iterator<Item = &'a GuardedImport> {
        let have: BTreeSet<(Domain, Action)> =
            declared.iter().map(|c| (c.domain(), c.action())).collect();
        self.guarded
            .iter()
            .filter(move |g| !have.contains(&(g.template.domain, g.template.action)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(wit: &str) -> (Resolve, WorldId) {
        let mut resolve = Contract::embedded().resolve().clone();
        let pkg = resolve.push_str("app.wit", wit).expect("valid WIT");
        let world = resolve.select_world(&[pkg], None).expect("one world");
        (resolve, world)
    }

    #[test]
    fn only_the_imported_functions_count() {
        let (resolve, world) = component(
            "package app:x;\n\
             world app { import airssys:core/storage@1.0.0; export airssys:core/handler@1.0.0; }",
        );
        let usage = Contract::embedded().import_usage(&resolve, world);
        assert!(usage.usable.contains(&(Domain::Kv, Action::Read)));
        assert!(usage.usable.contains(&(Domain::Msg, Action::Subscribe)));
        assert!(!usage.usable.contains(&(Domain::Log, Action::Write)));
        assert!(usage.whole_worlds.is_empty(), "{:?}", usage.whole_worlds);

        let log = Capability::parse("log:write").expect("valid");
        let wording = Wording {
            subject: "component `x`",
            owner: "`x`",
            remedy: "import `airssys:core/logging`",
            handler_remedy: "export the handler",
        };
        let message = usage
            .unusable_message(&log, " (from Component.toml)", &wording)
            .expect("unusable");
        assert!(
            message.starts_with(
                "capability `log:write` (from Component.toml) is of no use in component `x`: no \
                 function it imports requires `log:write`"
            ),
            "{message}"
        );

        let read = Capability::parse("kv:read:counter/*").expect("valid");
        let undeclared: Vec<String> = usage
            .undeclared(&[&read])
            .map(|g| format!("{}#{}", g.interface, g.function))
            .collect();
        assert!(undeclared.contains(&"airssys:core/storage#bucket.set".to_owned()));
        assert!(!undeclared.iter().any(|f| f.ends_with("bucket.get")));
    }

    #[test]
    fn a_whole_world_import_is_recognised() {
        let (resolve, world) =
            component("package app:x;\nworld app { include airssys:core/component@1.0.0; }");
        let usage = Contract::embedded().import_usage(&resolve, world);
        assert_eq!(
            usage.whole_worlds.first().map(String::as_str),
            Some("airssys:core/component@1.0.0")
        );
    }
}
