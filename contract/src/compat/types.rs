//! Type helpers shared by the engine: alias resolution, identity keys of
//! named types and WIT text of a type.

use wit_parser::{Handle, Resolve, Type, TypeDefKind, TypeId, TypeOwner};

/// Identity of a named type across two resolves: versionless package,
/// owner (interface or world) and type name.
pub(crate) type TypeKey = (String, String, String);

/// Follows `type a = b` chains to the type they stand for.
pub(crate) fn dealias(resolve: &Resolve, mut ty: Type) -> Type {
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

/// Whether a type definition is nominal for comparison purposes: a named
/// record, variant, enum, flags or resource (compared where it is defined).
pub(crate) fn is_nominal(resolve: &Resolve, id: TypeId) -> bool {
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

/// The WIT text of a type: `u32`, `list<string>`, `result<entry, error>`.
pub(crate) fn type_text(resolve: &Resolve, ty: Type) -> String {
    render(resolve, ty, false)
}

/// The WIT text of a type definition's right-hand side: for
/// `type bytes = list<u8>` this is `list<u8>`, not `bytes`.
pub(crate) fn definition_text(resolve: &Resolve, ty: Type) -> String {
    render(resolve, ty, true)
}

fn render(resolve: &Resolve, ty: Type, expand_top: bool) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::U8 => "u8".into(),
        Type::U16 => "u16".into(),
        Type::U32 => "u32".into(),
        Type::U64 => "u64".into(),
        Type::S8 => "s8".into(),
        Type::S16 => "s16".into(),
        Type::S32 => "s32".into(),
        Type::S64 => "s64".into(),
        Type::F32 => "f32".into(),
        Type::F64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::ErrorContext => "error-context".into(),
        Type::Id(id) => {
            let def = &resolve.types[id];
            if let Some(name) = &def.name
                && (!expand_top || is_nominal(resolve, id))
            {
                return name.clone();
            }
            let t = |ty: Type| type_text(resolve, ty);
            let opt = |ty: Option<Type>| ty.map_or_else(|| "_".to_string(), t);
            match &def.kind {
                TypeDefKind::List(e) => format!("list<{}>", t(*e)),
                TypeDefKind::FixedLengthList(e, n) => format!("list<{}, {n}>", t(*e)),
                TypeDefKind::Map(k, v) => format!("map<{}, {}>", t(*k), t(*v)),
                TypeDefKind::Option(e) => format!("option<{}>", t(*e)),
                TypeDefKind::Result(r) => match (r.ok, r.err) {
                    (None, None) => "result".into(),
                    (Some(ok), None) => format!("result<{}>", t(ok)),
                    (ok, Some(err)) => format!("result<{}, {}>", opt(ok), t(err)),
                },
                TypeDefKind::Tuple(tuple) => {
                    let items: Vec<String> = tuple.types.iter().map(|ty| t(*ty)).collect();
                    format!("tuple<{}>", items.join(", "))
                }
                TypeDefKind::Handle(Handle::Own(r)) => t(Type::Id(*r)),
                TypeDefKind::Handle(Handle::Borrow(r)) => format!("borrow<{}>", t(Type::Id(*r))),
                TypeDefKind::Future(e) => {
                    e.map_or("future".into(), |e| format!("future<{}>", t(e)))
                }
                TypeDefKind::Stream(e) => {
                    e.map_or("stream".into(), |e| format!("stream<{}>", t(e)))
                }
                TypeDefKind::Type(inner) => t(*inner),
                kind => kind.as_str().to_string(),
            }
        }
    }
}
