//! The imports and exports of two builds of a component compared, through
//! the engine of `airssys wit diff` ([`crate::compat`]).

use std::collections::BTreeSet;

use serde::Serialize;
use wit_parser::{Resolve, WorldId, WorldItem};

use crate::compat::{self, Change};

/// Which side of the component a change is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Something the component imports (the host provides it): for these
    /// the `exporters` verdict says whether a host that served OLD still
    /// serves NEW.
    Import,
    /// Something the component exports (the host or other components call
    /// it): the `importers` verdict says whether OLD's callers still work.
    Export,
    /// Neither (a package or a world as a whole).
    Component,
}

impl Direction {
    /// `import`, `export` or `component`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Import => "import",
            Direction::Export => "export",
            Direction::Component => "component",
        }
    }
}

/// One change of a component's imports or exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceChange {
    /// Import or export.
    pub direction: Direction,
    /// The change, with its rule and verdict per audience, as `airssys wit
    /// diff` reports it.
    #[serde(flatten)]
    pub change: Change,
}

/// Compares the worlds of two decoded components (`wit_component::decode`)
/// with [`compat::diff`] and says of each change whether it is on the
/// import or the export side.
pub fn diff_worlds(
    old: &Resolve,
    old_world: WorldId,
    new: &Resolve,
    new_world: WorldId,
) -> Vec<InterfaceChange> {
    let sides = [Sides::of(old, old_world), Sides::of(new, new_world)];
    compat::diff(old, new)
        .changes
        .into_iter()
        .map(|change| InterfaceChange {
            direction: direction(&change, &sides),
            change,
        })
        .collect()
}

/// The interfaces a world imports and exports, as `package/interface`
/// (without version, as change locations name them).
struct Sides {
    imports: BTreeSet<String>,
    exports: BTreeSet<String>,
}

impl Sides {
    fn of(resolve: &Resolve, world: WorldId) -> Sides {
        let names = |items: &mut dyn Iterator<Item = &WorldItem>| -> BTreeSet<String> {
            items
                .filter_map(|item| match item {
                    WorldItem::Interface { id, .. } => {
                        let iface = &resolve.interfaces[*id];
                        let package = &resolve.packages[iface.package?].name;
                        Some(format!(
                            "{}:{}/{}",
                            package.namespace,
                            package.name,
                            iface.name.as_deref()?
                        ))
                    }
                    _ => None,
                })
                .collect()
        };
        let w = &resolve.worlds[world];
        Sides {
            imports: names(&mut w.imports.values()),
            exports: names(&mut w.exports.values()),
        }
    }
}

fn direction(change: &Change, sides: &[Sides; 2]) -> Direction {
    let id = change.rule.id();
    if id.starts_with("world-import") {
        return Direction::Import;
    }
    if id.starts_with("world-export") {
        return Direction::Export;
    }
    let Some(interface) = &change.location.interface else {
        return Direction::Component;
    };
    let key = format!("{}/{interface}", change.location.package);
    if sides.iter().any(|s| s.imports.contains(&key)) {
        Direction::Import
    } else if sides.iter().any(|s| s.exports.contains(&key)) {
        Direction::Export
    } else {
        Direction::Component
    }
}
