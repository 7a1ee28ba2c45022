//! WIT source text of a resolved type, for messages and the model.

use wit_parser::{Handle, Resolve, Type, TypeDefKind};

/// The WIT text of `ty` as a user would write it, e.g.
/// `result<option<list<u8>>, error>`.
pub(crate) fn type_text(resolve: &Resolve, ty: &Type) -> String {
    let id = match ty {
        Type::Bool => return "bool".into(),
        Type::U8 => return "u8".into(),
        Type::U16 => return "u16".into(),
        Type::U32 => return "u32".into(),
        Type::U64 => return "u64".into(),
        Type::S8 => return "s8".into(),
        Type::S16 => return "s16".into(),
        Type::S32 => return "s32".into(),
        Type::S64 => return "s64".into(),
        Type::F32 => return "f32".into(),
        Type::F64 => return "f64".into(),
        Type::Char => return "char".into(),
        Type::String => return "string".into(),
        Type::ErrorContext => return "error-context".into(),
        Type::Id(id) => *id,
    };
    let def = &resolve.types[id];
    if let Some(name) = &def.name {
        return name.clone();
    }
    let text = |ty: &Type| type_text(resolve, ty);
    let opt = |ty: &Option<Type>| ty.as_ref().map_or_else(|| "_".to_owned(), text);
    match &def.kind {
        TypeDefKind::Handle(Handle::Own(r)) => resource_name(resolve, *r),
        TypeDefKind::Handle(Handle::Borrow(r)) => format!("borrow<{}>", resource_name(resolve, *r)),
        TypeDefKind::Option(t) => format!("option<{}>", text(t)),
        TypeDefKind::List(t) => format!("list<{}>", text(t)),
        TypeDefKind::FixedLengthList(t, n) => format!("list<{}, {n}>", text(t)),
        TypeDefKind::Map(k, v) => format!("map<{}, {}>", text(k), text(v)),
        TypeDefKind::Tuple(t) => {
            let items: Vec<_> = t.types.iter().map(text).collect();
            format!("tuple<{}>", items.join(", "))
        }
        TypeDefKind::Result(r) => match (&r.ok, &r.err) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{}>", text(ok)),
            (ok, Some(err)) => format!("result<{}, {}>", opt(ok), text(err)),
        },
        TypeDefKind::Future(t) => t
            .as_ref()
            .map_or_else(|| "future".into(), |t| format!("future<{}>", text(t))),
        TypeDefKind::Stream(t) => t
            .as_ref()
            .map_or_else(|| "stream".into(), |t| format!("stream<{}>", text(t))),
        TypeDefKind::Type(t) => text(t),
        other => other.as_str().to_owned(),
    }
}

fn resource_name(resolve: &Resolve, id: wit_parser::TypeId) -> String {
    resolve.types[id]
        .name
        .clone()
        .unwrap_or_else(|| "resource".into())
}

/// Follows `type x = y` aliases to the type they name.
pub(crate) fn dealias(resolve: &Resolve, mut ty: Type) -> Type {
    while let Type::Id(id) = ty {
        match &resolve.types[id].kind {
            TypeDefKind::Type(inner) => ty = *inner,
            _ => break,
        }
    }
    ty
}
