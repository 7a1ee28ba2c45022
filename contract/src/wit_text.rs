//! The WIT source text of resolved types, for messages, the contract
//! model, the diff and the generated reference: one printer serves all
//! ([`WitType`]'s `Display`), and helpers over wit-parser's types.

use wit_parser::{Resolve, Type, TypeDefKind, TypeId};

use crate::model::WitType;

/// Follows `type a = b` chains to the type they stand for.
pub fn dealias(resolve: &Resolve, mut ty: Type) -> Type {
    // A chain longer than the arena would be a cycle; a valid Resolve has none.
    for _ in 0..=resolve.types.len() {
        match ty {
            Type::Id(id) => match &resolve.types[id].kind {
                TypeDefKind::Type(next) => ty = *next,
                _ => return ty,
            },
            _ => return ty,
        }
    }
    ty
}

/// Whether a type definition is nominal for comparison purposes: a named
/// record, variant, enum, flags or resource (compared where it is defined).
pub fn is_nominal(resolve: &Resolve, id: TypeId) -> bool {
    let def = &resolve.types[id];
    def.name.is_some()
        && matches!(
            def.kind,
            TypeDefKind::Record(_)
                | TypeDefKind::Variant(_)
                | TypeDefKind::Enum(_)
                | TypeDefKind::Flags(_)
                | TypeDefKind::Resource
        )
}

/// The WIT text of a type: `u32`, `list<string>`, `result<entry, error>`.
/// Printed by [`WitType`]'s `Display`, the one printer of WIT types.
pub fn type_text(resolve: &Resolve, ty: Type) -> String {
    WitType::from_resolve(resolve, ty).to_string()
}

/// The WIT text of a type definition's right-hand side: for
/// `type bytes = list<u8>` this is `list<u8>`, not `bytes`
/// ([`WitType::definition_text`]).
pub fn definition_text(resolve: &Resolve, ty: Type) -> String {
    WitType::from_resolve(resolve, ty).definition_text()
}
