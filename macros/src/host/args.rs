//! Arguments of `#[airssys::host_impl(..)]` and `#[airssys::host_fn(..)]`.
//!
//! Both take `key = "literal"` pairs only. They are parsed by hand rather
//! than with darling so that an unknown key can list every valid key and
//! suggest the closest, and a repeated key can point at both places.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, Lit, LitStr, MetaNameValue, Token};

use super::Errors;
use super::check::closest;

/// `#[airssys::host_impl(interface = "..", wit = "..", crate = "..")]`.
#[derive(Debug, Clone)]
pub(crate) struct ImplArgs {
    /// `airssys:core/storage` (a version suffix is optional).
    pub(crate) interface: Option<LitStr>,
    /// A WIT directory relative to the crate's manifest; default: the
    /// contract embedded in airssys.
    pub(crate) wit: Option<LitStr>,
    /// Path of the `airssys-contract` crate in generated code.
    pub(crate) krate: Option<syn::Path>,
}

/// `#[airssys::host_fn(capability = "..")]`.
#[derive(Debug, Clone)]
pub(crate) struct FnArgs {
    /// The declared scope: a capability pattern.
    pub(crate) capability: Option<LitStr>,
}

/// Valid keys of `host_impl`, in documentation order.
pub(crate) const IMPL_KEYS: &[&str] = &["interface", "wit", "crate"];
/// Valid keys of `host_fn`.
pub(crate) const FN_KEYS: &[&str] = &["capability"];

/// Parses `host_impl` arguments; every mistake goes to `errors`.
pub(crate) fn parse_impl_args(tokens: TokenStream, errors: &mut Errors) -> ImplArgs {
    let mut args = ImplArgs {
        interface: None,
        wit: None,
        krate: None,
    };
    for (key, value) in pairs(tokens, "host_impl", IMPL_KEYS, errors) {
        match key.as_str() {
            "interface" => args.interface = Some(value),
            "wit" => args.wit = Some(value),
            "crate" => match value.parse::<syn::Path>() {
                Ok(path) => args.krate = Some(path),
                Err(_) => errors.push(syn::Error::new(
                    value.span(),
                    format!(
                        "`crate` must be a path to the airssys-contract crate, e.g. \
                         `crate = \"::airssys_contract\"`; `{}` is not a path",
                        value.value()
                    ),
                )),
            },
            _ => {}
        }
    }
    args
}

/// Parses `host_fn` arguments; every mistake goes to `errors`.
pub(crate) fn parse_fn_args(tokens: TokenStream, errors: &mut Errors) -> FnArgs {
    let mut args = FnArgs { capability: None };
    for (key, value) in pairs(tokens, "host_fn", FN_KEYS, errors) {
        if key == "capability" {
            args.capability = Some(value);
        }
    }
    args
}

/// The `key = "literal"` pairs of an attribute, each valid key at most once.
fn pairs(
    tokens: TokenStream,
    attribute: &str,
    valid: &[&str],
    errors: &mut Errors,
) -> Vec<(String, LitStr)> {
    let list = match Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(tokens) {
        Ok(list) => list,
        Err(error) => {
            errors.push(syn::Error::new(
                error.span(),
                format!(
                    "expected `key = \"value\"` pairs in `#[airssys::{attribute}(..)]` ({error}); \
                     valid keys: {}",
                    valid.join(", ")
                ),
            ));
            return Vec::new();
        }
    };
    let mut seen: Vec<(String, LitStr)> = Vec::new();
    for pair in list {
        let key = pair
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect::<Vec<_>>()
            .join("::");
        if !valid.contains(&key.as_str()) {
            let hint = closest(&key, valid.iter().copied())
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            errors.push(syn::Error::new_spanned(
                &pair.path,
                format!(
                    "unknown key `{key}` in `#[airssys::{attribute}]`; {hint}valid keys: {}",
                    valid.join(", ")
                ),
            ));
            continue;
        }
        let value = match &pair.value {
            Expr::Lit(lit) => match &lit.lit {
                Lit::Str(s) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        };
        let Some(value) = value else {
            errors.push(syn::Error::new_spanned(
                &pair.value,
                format!("`{key}` takes a string literal, e.g. `{key} = \"..\"`"),
            ));
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            let mut error = syn::Error::new_spanned(
                &pair.path,
                format!("`{key}` is given twice in `#[airssys::{attribute}]`; keep one"),
            );
            error.combine(syn::Error::new(
                first.span(),
                format!("`{key}` first given here"),
            ));
            errors.push(error);
            continue;
        }
        seen.push((key, value));
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn impl_args(tokens: TokenStream) -> (ImplArgs, Vec<String>) {
        let mut errors = Errors::default();
        let args = parse_impl_args(tokens, &mut errors);
        (args, errors.messages())
    }

    #[test]
    fn reads_all_impl_keys() {
        let (args, errors) = impl_args(quote!(
            interface = "airssys:core/storage",
            wit = "wit",
            crate = "::airssys_contract"
        ));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            args.interface.map(|l| l.value()).as_deref(),
            Some("airssys:core/storage")
        );
        assert_eq!(args.wit.map(|l| l.value()).as_deref(), Some("wit"));
        let krate = args.krate.map(|p| quote!(#p).to_string());
        assert_eq!(krate.as_deref(), Some(":: airssys_contract"));
    }

    #[test]
    fn unknown_key_lists_valid_keys_and_suggests() {
        let (_, errors) = impl_args(quote!(interfce = "x"));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("did you mean `interface`"),
            "{}",
            errors[0]
        );
        assert!(
            errors[0].contains("valid keys: interface, wit, crate"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn repeated_key_is_reported_once_per_repeat() {
        let mut errors = Errors::default();
        let args = parse_fn_args(
            quote!(capability = "kv:read", capability = "kv:write"),
            &mut errors,
        );
        let messages = errors.messages();
        assert!(messages[0].contains("given twice"), "{messages:?}");
        assert_eq!(
            args.capability.map(|l| l.value()).as_deref(),
            Some("kv:read")
        );
    }

    #[test]
    fn non_string_value_is_an_error() {
        let mut errors = Errors::default();
        parse_fn_args(quote!(capability = 3), &mut errors);
        assert!(errors.messages()[0].contains("takes a string literal"));
    }

    #[test]
    fn all_errors_in_one_pass() {
        let (_, errors) = impl_args(quote!(a = "1", b = "2", crate = "not a path"));
        assert_eq!(errors.len(), 3, "{errors:?}");
    }
}
