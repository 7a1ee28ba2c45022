//! The WIT source text of resolved types, for messages, the contract
//! model, the diff and the generated reference: one renderer serves all.

use wit_parser::{Handle, Resolve, Type, TypeDefKind, TypeId};

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
pub fn type_text(resolve: &Resolve, ty: Type) -> String {
    render(resolve, ty, false)
}

/// The WIT text of a type definition's right-hand side: for
/// `type bytes = list<u8>` this is `list<u8>`, not `bytes`.
pub fn definition_text(resolve: &Resolve, ty: Type) -> String {
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
