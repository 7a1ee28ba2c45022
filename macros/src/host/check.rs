//! The rules `#[airssys::host_impl]` checks, one small function each. Every
//! rule reports into [`Errors`] and returns what expansion needs, so all
//! mistakes of an impl come out in one pass.

use airssys_contract::capability::Capability;
use airssys_contract::model::{NamedTypeKind, WitType};
use proc_macro2::TokenStream;
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericArgument, Ident, ImplItemFn, LitStr, Pat, PathArguments, ReturnType, Type,
};

use super::wit::{WitFunction, WitInterface, WitRequirement, rust_ident, rust_type_name};
use crate::capability_literal;
use crate::errors::Errors;

/// What the guard of one checked method needs.
#[derive(Debug, Clone)]
pub(crate) struct Guarded {
    /// The parsed declared scope.
    pub(crate) scope: Capability,
    /// The Rust path of the WIT error type (`Error`, `storage::Error`),
    /// whose `Denied(String)` case carries refusals.
    pub(crate) error_path: syn::Path,
    /// `wasmtime::Result<Result<T, E>>` (trappable imports) rather than
    /// `Result<T, E>`.
    pub(crate) wrapped: bool,
    /// The Rust binding of each WIT parameter, in WIT order.
    pub(crate) params: Vec<(String, Ident)>,
}

pub(crate) use airssys_contract::suggest::closest;

/// Rule: the impl's trait is `Host` (free functions) or `Host<Resource>`
/// (one resource's functions) of the interface. Returns the resource's
/// WIT name, `None` for `Host`.
pub(crate) fn trait_resource(
    trait_path: &syn::Path,
    interface: &WitInterface,
) -> Result<Option<String>, syn::Error> {
    let Some(last) = trait_path.segments.last() else {
        return Err(syn::Error::new_spanned(trait_path, "expected a host trait"));
    };
    let name = last.ident.to_string();
    let mut resources: Vec<&str> = interface
        .functions
        .iter()
        .filter_map(|f| f.resource.as_deref())
        .collect();
    resources.dedup();
    if name == "Host" {
        return Ok(None);
    }
    if let Some(resource) = resources
        .iter()
        .find(|r| format!("Host{}", rust_type_name(r)) == name)
    {
        return Ok(Some((*resource).to_owned()));
    }
    let mut valid = vec!["Host".to_owned()];
    valid.extend(
        resources
            .iter()
            .map(|r| format!("Host{}", rust_type_name(r))),
    );
    Err(syn::Error::new_spanned(
        &last.ident,
        format!(
            "`{name}` is not a host trait of `{}`; expected one of {}",
            interface.qualified,
            valid
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

/// Rule: the method is a function of the interface (in the trait's scope).
/// Suggests the closest name, or lists the functions.
pub(crate) fn find_function<'i>(
    method: &ImplItemFn,
    scope: &[&'i WitFunction],
    interface: &WitInterface,
    trait_name: &str,
) -> Result<&'i WitFunction, syn::Error> {
    let name = method.sig.ident.to_string();
    if let Some(function) = scope.iter().find(|f| f.rust_name == name) {
        return Ok(function);
    }
    let names: Vec<&str> = scope.iter().map(|f| f.rust_name.as_str()).collect();
    let hint = match closest(&name, names.iter().copied()) {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!(
            "its functions are: {}",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Err(syn::Error::new_spanned(
        &method.sig.ident,
        format!(
            "`{name}` is not a function of `{}` (trait `{trait_name}`); {hint}",
            interface.qualified
        ),
    ))
}

/// Rule: parameters match the WIT in count, names (snake_case) and types.
/// Returns the Rust binding of each WIT parameter.
pub(crate) fn check_params(
    method: &ImplItemFn,
    function: &WitFunction,
    errors: &mut Errors,
) -> Option<Vec<(String, Ident)>> {
    let sig = &method.sig;
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_some() => {}
        other => {
            let span = other.map_or_else(|| sig.paren_token.span.join(), Spanned::span);
            errors.push(syn::Error::new(
                span,
                format!(
                    "host function `{}` must take `&mut self` first, as the host trait does",
                    sig.ident
                ),
            ));
            return None;
        }
    }
    let typed: Vec<&syn::PatType> = inputs
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(t),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let expected: Vec<String> = function
        .params
        .iter()
        .map(|p| format!("{}: {}", rust_ident(&p.name), rust_type_text(&p.ty)))
        .collect();
    if typed.len() != function.params.len() {
        let span = typed
            .get(function.params.len())
            .map_or_else(|| sig.paren_token.span.join(), |p| p.span());
        errors.push(syn::Error::new(
            span,
            format!(
                "`{}` takes {} in the WIT, this method takes {}; expected `(&mut self{}{})`",
                sig.ident,
                plural(function.params.len(), "parameter"),
                typed.len(),
                if expected.is_empty() { "" } else { ", " },
                expected.join(", ")
            ),
        ));
        return None;
    }
    let mut bindings = Vec::new();
    let mut ok = true;
    for ((param, pat), expected) in function.params.iter().zip(&typed).zip(&expected) {
        let want = rust_ident(&param.name);
        let ident = match &*pat.pat {
            Pat::Ident(p) => Some(p.ident.clone()),
            _ => None,
        };
        let named = ident
            .as_ref()
            .is_some_and(|i| *i == want || i.to_string().strip_prefix('_') == Some(want.as_str()));
        if !named {
            ok = false;
            errors.push(syn::Error::new_spanned(
                &pat.pat,
                format!(
                    "this parameter of `{}` is `{}` in the WIT; name it `{want}` (`{expected}`)",
                    sig.ident, param.name
                ),
            ));
        }
        if !type_matches(&param.ty, &pat.ty) {
            ok = false;
            errors.push(syn::Error::new_spanned(
                &pat.ty,
                format!(
                    "parameter `{want}` of `{}` is `{}` in the WIT; the host trait takes `{}`",
                    sig.ident,
                    param.ty,
                    rust_type_text(&param.ty)
                ),
            ));
        }
        if let Some(ident) = ident {
            bindings.push((param.name.clone(), ident));
        }
    }
    ok.then_some(bindings)
}

/// Rule: the result matches the WIT, directly or wrapped in
/// `wasmtime::Result<..>` (trappable imports). Returns the Rust type of
/// the WIT result (inside any wrapper) and whether it was wrapped.
pub(crate) fn check_result<'m>(
    method: &'m ImplItemFn,
    function: &WitFunction,
    errors: &mut Errors,
) -> Option<(Option<&'m Type>, bool)> {
    let sig = &method.sig;
    let written: Option<&Type> = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some(ty),
    };
    let expected = function.result.as_ref();
    if result_matches(expected, written) {
        return Some((written, false));
    }
    if let Some(inner) = written.and_then(trappable_inner)
        && result_matches(expected, Some(inner))
    {
        return Some((Some(inner), true));
    }
    let want = expected.map_or_else(|| "()".to_owned(), rust_type_text);
    let wit = expected.map_or_else(|| "nothing".to_owned(), |t| format!("`{t}`"));
    let span = written.map_or_else(|| sig.paren_token.span.join(), Spanned::span);
    errors.push(syn::Error::new(
        span,
        format!(
            "`{}` returns {wit} in the WIT; the host trait returns `{want}` \
             (or `wasmtime::Result<{want}>` with trappable imports)",
            sig.ident
        ),
    ));
    None
}

/// Rule: a guarded function's result can carry `denied`: `result<_, E>`
/// with a named `E`. Returns `E`'s Rust path.
pub(crate) fn error_path(
    method: &ImplItemFn,
    result: Option<&Type>,
    errors: &mut Errors,
) -> Option<syn::Path> {
    let path = result
        .and_then(generic_args_of)
        .filter(|(name, args)| name == "Result" && args.len() == 2)
        .and_then(|(_, args)| match strip(args[1]) {
            Type::Path(p) if p.qself.is_none() => Some(p.path.clone()),
            _ => None,
        });
    if path.is_none() {
        errors.push(syn::Error::new_spanned(
            &method.sig.ident,
            format!(
                "`{}` cannot be guarded: its result is not `Result<T, E>` with an error type \
                 that has a `Denied(String)` case",
                method.sig.ident
            ),
        ));
    }
    path
}

/// Rule: a capability argument is present where the WIT requires one, and
/// absent where it requires none. Returns the literal to check.
pub(crate) fn requirement_matches<'a>(
    method: &ImplItemFn,
    function: &WitFunction,
    annotated: Option<(&TokenStream, Option<&'a LitStr>)>,
    errors: &mut Errors,
) -> Option<&'a LitStr> {
    let name = &method.sig.ident;
    match (&function.requirement, annotated) {
        (WitRequirement::Capability { text, .. }, None) => {
            errors.push(syn::Error::new_spanned(
                name,
                format!(
                    "`{name}` requires `{text}` (its `@capability` in the WIT) but has no guard; \
                     add `#[airssys::host_fn(capability = \"{}\")]` with the scope this host serves",
                    example_scope(text)
                ),
            ));
            None
        }
        (WitRequirement::Capability { text, .. }, Some((attr, None))) => {
            errors.push(syn::Error::new_spanned(
                attr,
                format!(
                    "`#[airssys::host_fn]` needs `capability = \"..\"`: the scope this host serves \
                     for `{name}`, whose WIT template is `{text}`; e.g. `capability = \"{}\"`",
                    example_scope(text)
                ),
            ));
            None
        }
        (WitRequirement::Capability { .. }, Some((_, Some(lit)))) => Some(lit),
        (WitRequirement::None | WitRequirement::Handle, Some((attr, _))) => {
            let why = match function.requirement {
                WitRequirement::None => "`@capability none`: it needs no capability",
                _ => "`@capability handle`: the capability was checked when its handle was opened",
            };
            errors.push(syn::Error::new_spanned(
                attr,
                format!("`{name}` is {why}; remove `#[airssys::host_fn]`"),
            ));
            None
        }
        (WitRequirement::Invalid, _) => {
            errors.push(syn::Error::new_spanned(
                name,
                format!(
                    "the WIT's `@capability` line of `{}` is invalid; fix the contract \
                     (`airssys wit lint` says why)",
                    function.wit_name
                ),
            ));
            None
        }
        (WitRequirement::None | WitRequirement::Handle, None) => None,
    }
}

/// Rule: the scope parses, and its domain and action equal the template's.
pub(crate) fn check_scope(
    lit: &LitStr,
    function: &WitFunction,
    errors: &mut Errors,
) -> Option<Capability> {
    let WitRequirement::Capability {
        domain,
        action,
        text,
        ..
    } = &function.requirement
    else {
        return None;
    };
    let scope = match capability_literal::parse(lit) {
        Ok(scope) => scope,
        Err(error) => {
            errors.push(error);
            return None;
        }
    };
    if scope.domain() != *domain {
        errors.push(syn::Error::new(
            lit.span(),
            format!(
                "capability domain `{}` does not match the WIT: `{}` requires `{text}`; \
                 the scope must start with `{domain}:{action}`",
                scope.domain(),
                function.wit_name
            ),
        ));
        return None;
    }
    if scope.action() != *action {
        errors.push(syn::Error::new(
            lit.span(),
            format!(
                "capability action `{}:{}` does not match the WIT: `{}` requires `{text}`; \
                 the scope must start with `{domain}:{action}`",
                scope.domain(),
                scope.action(),
                function.wit_name
            ),
        ));
        return None;
    }
    Some(scope)
}

/// `kv:read:{self}/{key}` → `kv:read:**`: the widest scope of the template's
/// domain and action, as an example to narrow.
fn example_scope(template: &str) -> String {
    let mut parts = template.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(d), Some(a), Some(_)) => format!("{d}:{a}:**"),
        (Some(d), Some(a), None) => format!("{d}:{a}"),
        _ => template.to_owned(),
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Whether the written result matches the WIT result.
fn result_matches(expected: Option<&WitType>, written: Option<&Type>) -> bool {
    match (expected, written) {
        (None, None) => true,
        (None, Some(ty)) => is_unit(ty),
        (Some(_), None) => false,
        (Some(wit), Some(ty)) => type_matches(wit, ty),
    }
}

/// `wasmtime::Result<X>` (one type argument) → `X`.
fn trappable_inner(ty: &Type) -> Option<&Type> {
    let (name, args) = generic_args_of(ty)?;
    (name == "Result" && args.len() == 1).then(|| args[0])
}

/// Whether the Rust type is what wasmtime `bindgen!` generates for `wit`.
/// Paths are compared by their last segment (`String`, `std::string::String`
/// and `alloc::string::String` all match `string`).
pub(crate) fn type_matches(wit: &WitType, ty: &Type) -> bool {
    let ty = strip(ty);
    let args_of = |rust: &str, n: usize| {
        generic_args_of(ty)
            .filter(|(name, args)| name == rust && args.len() == n)
            .map(|(_, args)| args)
    };
    if let Some(resource) = wit.handle_resource() {
        // `type file-ref = borrow<file>`: bindgen's `FileRef` is
        // `Resource<File>`.
        return alias_of_handle(wit).is_some_and(|alias| last_segment_is(ty, &alias, 0))
            || args_of("Resource", 1)
                .is_some_and(|a| last_segment_is(a[0], &rust_type_name(resource), 0));
    }
    if let Some(rust) = primitive(wit) {
        return last_segment_is(ty, rust, 0);
    }
    match wit {
        WitType::List(e) => args_of("Vec", 1).is_some_and(|a| type_matches(e, a[0])),
        WitType::Option(e) => args_of("Option", 1).is_some_and(|a| type_matches(e, a[0])),
        WitType::Result { ok, err } => args_of("Result", 2).is_some_and(|a| {
            slot_matches(ok.as_deref(), a[0]) && slot_matches(err.as_deref(), a[1])
        }),
        WitType::Tuple(items) => match ty {
            Type::Tuple(t) => {
                t.elems.len() == items.len()
                    && items.iter().zip(&t.elems).all(|(w, r)| type_matches(w, r))
            }
            _ => false,
        },
        // bindgen names the type (`Error`, `Bytes`); an alias also stands
        // for what it aliases (`Vec<u8>` for `bytes`).
        WitType::Named(named) => {
            last_segment_is(ty, &rust_type_name(&named.name), 0)
                || matches!(&named.kind, NamedTypeKind::Alias(target) if type_matches(target, ty))
        }
        // Types the host macros do not model (future, stream, map,
        // fixed-length lists, error-context): the compiler checks them
        // against the trait.
        _ => true,
    }
}

/// The Rust name of a named alias of an `own<r>` or `borrow<r>` handle.
fn alias_of_handle(wit: &WitType) -> Option<String> {
    match (wit, wit.dealias()) {
        (WitType::Named(named), WitType::Own(_) | WitType::Borrow(_)) => {
            Some(rust_type_name(&named.name))
        }
        _ => None,
    }
}

/// `T` or `_` of a `result<T, E>`: `_` is `()`.
fn slot_matches(wit: Option<&WitType>, ty: &Type) -> bool {
    wit.map_or_else(|| is_unit(ty), |wit| type_matches(wit, ty))
}

/// The Rust text bindgen generates for `wit`, for messages.
pub(crate) fn rust_type_text(wit: &WitType) -> String {
    if let Some(resource) = wit.handle_resource() {
        return alias_of_handle(wit)
            .unwrap_or_else(|| format!("Resource<{}>", rust_type_name(resource)));
    }
    if let Some(rust) = primitive(wit) {
        return rust.to_owned();
    }
    let slot =
        |t: &Option<Box<WitType>>| t.as_deref().map_or_else(|| "()".to_owned(), rust_type_text);
    match wit {
        WitType::List(e) => format!("Vec<{}>", rust_type_text(e)),
        WitType::Option(e) => format!("Option<{}>", rust_type_text(e)),
        WitType::Result { ok, err } => format!("Result<{}, {}>", slot(ok), slot(err)),
        WitType::Tuple(items) => {
            let items: Vec<String> = items.iter().map(rust_type_text).collect();
            match items.as_slice() {
                [one] => format!("({one},)"),
                _ => format!("({})", items.join(", ")),
            }
        }
        WitType::Named(named) => rust_type_name(&named.name),
        other => other.to_string(),
    }
}

/// The Rust type bindgen gives a WIT primitive.
fn primitive(wit: &WitType) -> Option<&'static str> {
    Some(match wit {
        WitType::Bool => "bool",
        WitType::U8 => "u8",
        WitType::U16 => "u16",
        WitType::U32 => "u32",
        WitType::U64 => "u64",
        WitType::S8 => "i8",
        WitType::S16 => "i16",
        WitType::S32 => "i32",
        WitType::S64 => "i64",
        WitType::F32 => "f32",
        WitType::F64 => "f64",
        WitType::Char => "char",
        WitType::String => "String",
        _ => return None,
    })
}

fn strip(ty: &Type) -> &Type {
    match ty {
        Type::Paren(p) => strip(&p.elem),
        Type::Group(g) => strip(&g.elem),
        other => other,
    }
}

fn is_unit(ty: &Type) -> bool {
    matches!(strip(ty), Type::Tuple(t) if t.elems.is_empty())
}

fn last_segment_is(ty: &Type, name: &str, args: usize) -> bool {
    match strip(ty) {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().is_some_and(|s| {
            s.ident == name
                && match &s.arguments {
                    PathArguments::None => args == 0,
                    PathArguments::AngleBracketed(a) => a.args.len() == args,
                    PathArguments::Parenthesized(_) => false,
                }
        }),
        _ => false,
    }
}

/// `a::b::Name<T, U>` → (`Name`, [T, U]).
fn generic_args_of(ty: &Type) -> Option<(String, Vec<&Type>)> {
    let Type::Path(p) = strip(ty) else {
        return None;
    };
    let last = p.path.segments.last()?;
    let args = match &last.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .map(|arg| match arg {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    Some((last.ident.to_string(), args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::wit::{WitParam, rust_function_name, wit_type as wit};
    use airssys_contract::capability::{Action, Domain};
    use airssys_contract::model::TemplatePart;
    use syn::parse_quote;

    fn get_function() -> WitFunction {
        WitFunction {
            wit_name: "get".into(),
            resource: None,
            rust_name: rust_function_name("get"),
            params: vec![WitParam {
                name: "key".into(),
                ty: wit("string"),
            }],
            result: Some(wit("result<option<list<u8>>, error>")),
            requirement: WitRequirement::Capability {
                domain: Domain::Kv,
                action: Action::Read,
                parts: vec![TemplatePart::Param("key".into())],
                text: "kv:read:{key}".into(),
            },
        }
    }

    fn messages(f: impl FnOnce(&mut Errors)) -> Vec<String> {
        let mut errors = Errors::default();
        f(&mut errors);
        errors.messages()
    }

    #[test]
    fn types_map_as_bindgen_does() {
        let cases: Vec<(&str, Type, bool)> = vec![
            ("string", parse_quote!(String), true),
            ("string", parse_quote!(std::string::String), true),
            ("string", parse_quote!(&str), false),
            ("list<u8>", parse_quote!(Vec<u8>), true),
            ("list<u8>", parse_quote!(Vec<i8>), false),
            ("s32", parse_quote!(i32), true),
            ("option<string>", parse_quote!(Option<String>), true),
            ("result<_, error>", parse_quote!(Result<(), Error>), true),
            (
                "result<_, error>",
                parse_quote!(Result<(), types::Error>),
                true,
            ),
            (
                "result<u64, error>",
                parse_quote!(Result<u32, Error>),
                false,
            ),
            ("result", parse_quote!(Result<(), ()>), true),
            ("borrow<bucket>", parse_quote!(Resource<Bucket>), true),
            (
                "borrow<bucket>",
                parse_quote!(wasmtime::component::Resource<Bucket>),
                true,
            ),
            ("bucket", parse_quote!(Resource<Bucket>), true),
            ("bucket-entry", parse_quote!(BucketEntry), true),
            ("tuple<u8, string>", parse_quote!((u8, String)), true),
            ("tuple<u8, string>", parse_quote!((u8,)), false),
            // An owned handle is a `Resource`, never the bare resource type.
            ("bucket", parse_quote!(Bucket), false),
            ("own<bucket>", parse_quote!(Resource<Bucket>), true),
            ("borrow<bucket>", parse_quote!(Bucket), false),
            // An alias is bindgen's alias or what it stands for.
            ("bytes", parse_quote!(Bytes), true),
            ("bytes", parse_quote!(Vec<u8>), true),
            ("bytes", parse_quote!(Vec<u16>), false),
            ("result<bytes>", parse_quote!(Result<Vec<u8>, ()>), true),
            ("error", parse_quote!(Error), true),
            ("error", parse_quote!(Errors), false),
        ];
        for (text, ty, expect) in cases {
            assert_eq!(
                type_matches(&wit(text), &ty),
                expect,
                "{text} vs {}",
                quote::quote!(#ty)
            );
        }
        assert_eq!(
            rust_type_text(&wit("result<option<list<u8>>, error>")),
            "Result<Option<Vec<u8>>, Error>"
        );
        assert_eq!(rust_type_text(&wit("borrow<bucket>")), "Resource<Bucket>");
        assert_eq!(rust_type_text(&wit("bucket")), "Resource<Bucket>");
        assert_eq!(rust_type_text(&wit("result")), "Result<(), ()>");
        assert_eq!(
            rust_type_text(&wit("result<_, error>")),
            "Result<(), Error>"
        );
        assert_eq!(rust_type_text(&wit("tuple<u8>")), "(u8,)");
        assert_eq!(rust_type_text(&wit("bytes")), "Bytes");
        assert_eq!(rust_type_text(&wit("s64")), "i64");
    }

    #[test]
    fn accepts_matching_signature() {
        let method: ImplItemFn = parse_quote! {
            fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> { todo!() }
        };
        let f = get_function();
        let errors = messages(|e| {
            let params = check_params(&method, &f, e).expect("params match");
            assert_eq!(params[0].1, "key");
            let (result, wrapped) = check_result(&method, &f, e).expect("result matches");
            assert!(!wrapped);
            let path = error_path(&method, result, e).expect("error path");
            assert!(path.is_ident("Error"));
        });
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn accepts_trappable_result() {
        let method: ImplItemFn = parse_quote! {
            fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> { todo!() }
        };
        let f = get_function();
        let errors = messages(|e| {
            let (_, wrapped) = check_result(&method, &f, e).expect("result matches");
            assert!(wrapped);
        });
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn reports_every_param_mistake() {
        let method: ImplItemFn = parse_quote! {
            fn get(&mut self, name: &str) -> Result<Option<Vec<u8>>, Error> { todo!() }
        };
        let errors = messages(|e| {
            assert!(check_params(&method, &get_function(), e).is_none());
        });
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].contains("is `key` in the WIT; name it `key`"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].contains("the host trait takes `String`"),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn reports_param_count_with_expected_signature() {
        let method: ImplItemFn = parse_quote! {
            fn get(&mut self, key: String, extra: u8) -> Result<Option<Vec<u8>>, Error> { todo!() }
        };
        let errors = messages(|e| {
            check_params(&method, &get_function(), e);
        });
        assert!(
            errors[0].contains("takes 1 parameter in the WIT, this method takes 2"),
            "{errors:?}"
        );
        assert!(errors[0].contains("(&mut self, key: String)"), "{errors:?}");
    }

    #[test]
    fn reports_wrong_result() {
        let method: ImplItemFn = parse_quote! {
            fn get(&mut self, key: String) -> Option<Vec<u8>> { todo!() }
        };
        let errors = messages(|e| {
            assert!(check_result(&method, &get_function(), e).is_none());
        });
        assert!(
            errors[0].contains("returns `result<option<list<u8>>, error>` in the WIT"),
            "{errors:?}"
        );
        assert!(
            errors[0].contains("`Result<Option<Vec<u8>>, Error>`"),
            "{errors:?}"
        );
    }

    #[test]
    fn missing_receiver_is_reported() {
        let method: ImplItemFn = parse_quote! { fn get(key: String) {} };
        let errors = messages(|e| {
            check_params(&method, &get_function(), e);
        });
        assert!(errors[0].contains("must take `&mut self`"), "{errors:?}");
    }

    #[test]
    fn scope_domain_and_action_must_match() {
        let f = get_function();
        let ok: LitStr = parse_quote!("kv:read:app/**");
        assert!(messages(|e| assert!(check_scope(&ok, &f, e).is_some())).is_empty());
        let domain: LitStr = parse_quote!("fs:read:/data/**");
        let errors = messages(|e| assert!(check_scope(&domain, &f, e).is_none()));
        assert!(
            errors[0].contains("domain `fs` does not match"),
            "{errors:?}"
        );
        let action: LitStr = parse_quote!("kv:write:app/**");
        let errors = messages(|e| assert!(check_scope(&action, &f, e).is_none()));
        assert!(
            errors[0].contains("action `kv:write` does not match"),
            "{errors:?}"
        );
        assert!(
            errors[0].contains("must start with `kv:read`"),
            "{errors:?}"
        );
    }

    #[test]
    fn malformed_scope_points_into_the_literal() {
        let f = get_function();
        let bad: LitStr = parse_quote!("kv:raed:app/**");
        let errors = messages(|e| assert!(check_scope(&bad, &f, e).is_none()));
        assert!(
            errors[0].contains("invalid capability `kv:raed:app/**`"),
            "{errors:?}"
        );
        assert!(errors[0].contains("\n     ^"), "{errors:?}");
    }

    #[test]
    fn requirement_rules() {
        let method: ImplItemFn = parse_quote! { fn get(&mut self, key: String) {} };
        let f = get_function();
        let errors = messages(|e| assert!(requirement_matches(&method, &f, None, e).is_none()));
        assert!(errors[0].contains("has no guard"), "{errors:?}");
        assert!(
            errors[0].contains("capability = \\\"kv:read:**\\\"")
                || errors[0].contains("capability = \"kv:read:**\""),
            "{errors:?}"
        );
        let mut none = f.clone();
        none.requirement = WitRequirement::None;
        assert!(
            messages(|e| assert!(requirement_matches(&method, &none, None, e).is_none()))
                .is_empty()
        );
        let errors = messages(|e| {
            requirement_matches(&method, &none, Some((&quote::quote!(#[host_fn]), None)), e);
        });
        assert!(
            errors[0].contains("remove `#[airssys::host_fn]`"),
            "{errors:?}"
        );
    }
}
