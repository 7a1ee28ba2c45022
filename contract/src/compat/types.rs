//! Type helpers shared by the engine: alias resolution, identity keys of
//! named types and WIT text of a type.

use wit_parser::{Handle, Resolve, Type, TypeDefKind, TypeId, TypeOwner};

pub(crate) use crate::wit_text::{dealias, definition_text, is_nominal, type_text};

/// Identity of a named type across two resolves: versionless package,
/// owner (interface or world) and type name.
pub(crate) type TypeKey = (String, String, String);

/// `ns:name` of the package owning `owner`, and the owner's name.
fn owner_names(resolve: &Resolve, owner: TypeOwner) -> Option<(String, String)> {
    let (package, owner_name) = match owner {
        TypeOwner::Interface(i) => {
            let iface = &resolve.interfaces[i];
            (iface.package, iface.name.clone().unwrap_or_default())
        }
        TypeOwner::World(w) => {
            let world = &resolve.worlds[w];
            (world.package, world.name.clone())
        }
        TypeOwner::None => return None,
    };
    let package = package
        .map(|p| {
            let name = &resolve.packages[p].name;
            format!("{}:{}", name.namespace, name.name)
        })
        .unwrap_or_default();
    Some((package, owner_name))
}

/// The identity key of a named type, `None` for anonymous types.
pub(crate) fn type_key(resolve: &Resolve, id: TypeId) -> Option<TypeKey> {
    let def = &resolve.types[id];
    let name = def.name.clone()?;
    let (package, owner) = owner_names(resolve, def.owner)?;
    Some((package, owner, name))
}

/// A short noun for a type definition's kind ("record", "list", ...).
pub(crate) fn kind_noun(resolve: &Resolve, ty: Type) -> &'static str {
    match ty {
        Type::Id(id) => match &resolve.types[id].kind {
            TypeDefKind::Handle(Handle::Own(_)) => "owned handle",
            TypeDefKind::Handle(Handle::Borrow(_)) => "borrowed handle",
            TypeDefKind::Type(_) => "alias",
            kind => kind.as_str(),
        },
        _ => "primitive type",
    }
}
