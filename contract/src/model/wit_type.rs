//! The contract's structured WIT types: what a parameter or result is,
//! built once from wit-parser's resolved types so that nobody re-parses
//! printed WIT, and printed back as WIT text by `Display` (the one printer
//! of WIT types in the workspace: [`crate::wit_text`] delegates to it).

use std::fmt;

use wit_parser::{Handle, Resolve, Type, TypeDefKind};

/// A WIT type as a function signature uses it.
///
/// `Display` writes it as a user would in WIT: `u32`, `list<string>`,
/// `result<_, error>`, `borrow<bucket>`. Named types keep their name
/// (`error`, `bytes`) and say what they name ([`NamedType::kind`]).
///
/// ```
/// use airssys_contract::model::{Contract, NamedTypeKind, WitType};
///
/// let contract = Contract::embedded();
/// let get = contract.function("storage", "[method]bucket.get").unwrap();
/// let result = get.result.as_ref().unwrap();
/// assert_eq!(result.to_string(), "result<option<list<u8>>, error>");
/// let WitType::Result { err: Some(err), .. } = result else { panic!() };
/// let WitType::Named(error) = &**err else { panic!() };
/// assert_eq!(error.name, "error");
/// assert_eq!(error.kind, NamedTypeKind::Variant);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WitType {
    /// `bool`.
    Bool,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `s8`.
    S8,
    /// `s16`.
    S16,
    /// `s32`.
    S32,
    /// `s64`.
    S64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `char`.
    Char,
    /// `string`.
    String,
    /// `error-context`.
    ErrorContext,
    /// `list<T>`.
    List(Box<WitType>),
    /// `list<T, N>`: a list of exactly `N` elements.
    FixedLengthList(Box<WitType>, u32),
    /// `map<K, V>`.
    Map(Box<WitType>, Box<WitType>),
    /// `option<T>`.
    Option(Box<WitType>),
    /// `result`, `result<T>`, `result<_, E>` or `result<T, E>`.
    Result {
        /// The success type; `None` for `_` (or no type at all).
        ok: Option<Box<WitType>>,
        /// The error type; `None` for `result` and `result<T>`.
        err: Option<Box<WitType>>,
    },
    /// `tuple<A, B, ..>`.
    Tuple(Vec<WitType>),
    /// An owned handle: `own<r>`, or the resource's bare name `r`, which
    /// means the same; written `r`.
    Own(NamedType),
    /// A borrowed handle, `borrow<r>`.
    Borrow(NamedType),
    /// `future` or `future<T>`.
    Future(Option<Box<WitType>>),
    /// `stream` or `stream<T>`.
    Stream(Option<Box<WitType>>),
    /// A named type: a record, variant, enum, flags, resource or alias
    /// (`type bytes = list<u8>`, and every `use` of a type from another
    /// interface). A resource used as a value is an owned handle; where
    /// wit-parser keeps the handle (function signatures), it is a
    /// [`WitType::Own`] of the resource.
    Named(NamedType),
}

/// A named WIT type: its name and what it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamedType {
    /// The WIT name, e.g. `error`, `bucket`, `bytes`.
    pub name: String,
    /// What the name stands for.
    pub kind: NamedTypeKind,
}

/// What a [`NamedType`] names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NamedTypeKind {
    /// `record`.
    Record,
    /// `variant`.
    Variant,
    /// `enum`.
    Enum,
    /// `flags`.
    Flags,
    /// `resource`.
    Resource,
    /// `type name = target`, or a type `use`d from another interface (an
    /// alias of the type there).
    Alias(Box<WitType>),
    /// A type wit-parser has not resolved; never in a loaded contract
    /// (kept so that conversion is total).
    Unknown,
}

impl WitType {
    /// The structured form of `ty`, a type of `resolve`. `resolve` must
    /// come from this crate's wit-parser (e.g. [`super::Contract::resolve`]).
    pub fn from_resolve(resolve: &Resolve, ty: Type) -> WitType {
        match ty {
            Type::Bool => WitType::Bool,
            Type::U8 => WitType::U8,
            Type::U16 => WitType::U16,
            Type::U32 => WitType::U32,
            Type::U64 => WitType::U64,
            Type::S8 => WitType::S8,
            Type::S16 => WitType::S16,
            Type::S32 => WitType::S32,
            Type::S64 => WitType::S64,
            Type::F32 => WitType::F32,
            Type::F64 => WitType::F64,
            Type::Char => WitType::Char,
            Type::String => WitType::String,
            Type::ErrorContext => WitType::ErrorContext,
            Type::Id(id) => {
                let def = &resolve.types[id];
                match &def.name {
                    Some(name) => WitType::Named(NamedType {
                        name: name.clone(),
                        kind: named_kind(resolve, &def.kind),
                    }),
                    None => anonymous(resolve, &def.kind),
                }
            }
        }
    }

    /// The type an alias chain stands for (`bytes` → `list<u8>`, a used
    /// `error` → the variant where it is defined); any other type as it is.
    pub fn dealias(&self) -> &WitType {
        let mut ty = self;
        while let WitType::Named(NamedType {
            kind: NamedTypeKind::Alias(target),
            ..
        }) = ty
        {
            ty = target;
        }
        ty
    }

    /// The resource a value of this type is a handle to, by the name the
    /// type uses for it: `bucket` for `bucket`, `own<bucket>` and
    /// `borrow<bucket>`, also where `bucket` is an alias of a resource
    /// (a `use`d one); `file` for `type file-ref = borrow<file>`. `None`
    /// for other types.
    pub fn handle_resource(&self) -> Option<&str> {
        match self {
            WitType::Own(resource) | WitType::Borrow(resource) => Some(&resource.name),
            WitType::Named(named) => match &named.kind {
                NamedTypeKind::Resource => Some(&named.name),
                NamedTypeKind::Alias(target) => match target.dealias() {
                    WitType::Named(NamedType {
                        kind: NamedTypeKind::Resource,
                        ..
                    }) => Some(&named.name),
                    _ => target.handle_resource(),
                },
                _ => None,
            },
            _ => None,
        }
    }

    /// The WIT text of a definition's right-hand side: for
    /// `type bytes = list<u8>` this is `list<u8>`, not `bytes`; a record,
    /// variant, enum, flags or resource is written by its name.
    pub fn definition_text(&self) -> String {
        match self {
            WitType::Named(NamedType {
                kind: NamedTypeKind::Alias(target),
                ..
            }) => target.to_string(),
            other => other.to_string(),
        }
    }
}

fn named_kind(resolve: &Resolve, kind: &TypeDefKind) -> NamedTypeKind {
    match kind {
        TypeDefKind::Record(_) => NamedTypeKind::Record,
        TypeDefKind::Variant(_) => NamedTypeKind::Variant,
        TypeDefKind::Enum(_) => NamedTypeKind::Enum,
        TypeDefKind::Flags(_) => NamedTypeKind::Flags,
        TypeDefKind::Resource => NamedTypeKind::Resource,
        TypeDefKind::Unknown => NamedTypeKind::Unknown,
        TypeDefKind::Type(target) => {
            NamedTypeKind::Alias(Box::new(WitType::from_resolve(resolve, *target)))
        }
        structural => NamedTypeKind::Alias(Box::new(anonymous(resolve, structural))),
    }
}

/// An anonymous type definition: `list<u8>`, `option<T>`, `borrow<r>`, ...
fn anonymous(resolve: &Resolve, kind: &TypeDefKind) -> WitType {
    let ty = |t: Type| Box::new(WitType::from_resolve(resolve, t));
    match kind {
        TypeDefKind::List(e) => WitType::List(ty(*e)),
        TypeDefKind::FixedLengthList(e, n) => WitType::FixedLengthList(ty(*e), *n),
        TypeDefKind::Map(k, v) => WitType::Map(ty(*k), ty(*v)),
        TypeDefKind::Option(e) => WitType::Option(ty(*e)),
        TypeDefKind::Result(r) => WitType::Result {
            ok: r.ok.map(ty),
            err: r.err.map(ty),
        },
        TypeDefKind::Tuple(t) => WitType::Tuple(
            t.types
                .iter()
                .map(|t| WitType::from_resolve(resolve, *t))
                .collect(),
        ),
        TypeDefKind::Handle(Handle::Own(r)) => WitType::Own(resource(resolve, *r)),
        TypeDefKind::Handle(Handle::Borrow(r)) => WitType::Borrow(resource(resolve, *r)),
        TypeDefKind::Future(e) => WitType::Future(e.map(ty)),
        TypeDefKind::Stream(e) => WitType::Stream(e.map(ty)),
        TypeDefKind::Type(inner) => WitType::from_resolve(resolve, *inner),
        // Records, variants, enums, flags and resources always have a
        // name in WIT; should one come without, it is written by its kind.
        nominal => WitType::Named(NamedType {
            name: nominal.as_str().to_owned(),
            kind: named_kind(resolve, nominal),
        }),
    }
}

/// The named type a handle refers to (a resource, or an alias of one).
fn resource(resolve: &Resolve, id: wit_parser::TypeId) -> NamedType {
    match WitType::from_resolve(resolve, Type::Id(id)) {
        WitType::Named(named) => named,
        // A valid resolve has no anonymous handle target.
        other => NamedType {
            name: other.to_string(),
            kind: NamedTypeKind::Alias(Box::new(other)),
        },
    }
}

impl fmt::Display for WitType {
    /// The WIT text: `u32`, `list<string>`, `result<entry, error>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keyword = match self {
            WitType::Bool => "bool",
            WitType::U8 => "u8",
            WitType::U16 => "u16",
            WitType::U32 => "u32",
            WitType::U64 => "u64",
            WitType::S8 => "s8",
            WitType::S16 => "s16",
            WitType::S32 => "s32",
            WitType::S64 => "s64",
            WitType::F32 => "f32",
            WitType::F64 => "f64",
            WitType::Char => "char",
            WitType::String => "string",
            WitType::ErrorContext => "error-context",
            WitType::List(e) => return write!(f, "list<{e}>"),
            WitType::FixedLengthList(e, n) => return write!(f, "list<{e}, {n}>"),
            WitType::Map(k, v) => return write!(f, "map<{k}, {v}>"),
            WitType::Option(e) => return write!(f, "option<{e}>"),
            WitType::Result { ok, err } => {
                return match (ok, err) {
                    (None, None) => f.write_str("result"),
                    (Some(ok), None) => write!(f, "result<{ok}>"),
                    (Some(ok), Some(err)) => write!(f, "result<{ok}, {err}>"),
                    (None, Some(err)) => write!(f, "result<_, {err}>"),
                };
            }
            WitType::Tuple(items) => {
                f.write_str("tuple<")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                return f.write_str(">");
            }
            WitType::Own(resource) | WitType::Named(resource) => &resource.name,
            WitType::Borrow(resource) => return write!(f, "borrow<{}>", resource.name),
            WitType::Future(None) => "future",
            WitType::Future(Some(e)) => return write!(f, "future<{e}>"),
            WitType::Stream(None) => "stream",
            WitType::Stream(Some(e)) => return write!(f, "stream<{e}>"),
        };
        f.write_str(keyword)
    }
}
