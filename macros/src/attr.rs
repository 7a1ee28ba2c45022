//! The one parser of attribute arguments, for `#[airssys::component(..)]`,
//! `#[airssys::host_impl(..)]` and `#[airssys::host_fn(..)]`.
//!
//! Keys are screened the same way for every attribute, with the same words
//! for the same mistake: an unknown key is reported with the closest valid
//! one ("did you mean") and the list of valid keys, a repeated key points
//! at both places and the first is kept. Then each value is read on its own
//! with darling's [`FromMeta`], so that a bad value loses only itself (a
//! lost `requires` would otherwise cascade into an error at every gated
//! call). Every mistake goes into the one [`Errors`] sink.

use airssys_contract::suggest::closest;
use darling::ast::NestedMeta;
use darling::{Error, FromMeta};
use proc_macro2::TokenStream;
use syn::{Expr, Lit, LitStr, Meta};

use crate::errors::Errors;

/// The options of one attribute.
pub(crate) trait Options: Default {
    /// The attribute's name, for messages: `component`, `host_impl`, ...
    const ATTRIBUTE: &'static str;
    /// The valid keys, in documentation order.
    const KEYS: &'static [&'static str];

    /// Reads the value of `key` (one of [`Options::KEYS`], met once) with
    /// [`FromMeta`].
    ///
    /// # Errors
    ///
    /// The value's error; the option keeps its default.
    fn read(&mut self, key: &str, meta: &Meta) -> darling::Result<()>;
}

/// What [`parse`] read.
#[derive(Debug)]
pub(crate) struct Parsed<O> {
    /// The options that could be read.
    pub(crate) options: O,
    /// Whether the arguments had no mistake at all.
    pub(crate) clean: bool,
    /// Keys written whose values were refused (and reported), or `None`
    /// when the arguments could not be read as a list at all.
    refused: Option<Vec<&'static str>>,
}

impl<O> Parsed<O> {
    /// Whether `key` was written but its value refused (or the arguments
    /// could not be read): a default must not stand in for it, as its check
    /// would report a second error for the same mistake.
    pub(crate) fn refused(&self, key: &str) -> bool {
        self.refused.as_ref().is_none_or(|keys| keys.contains(&key))
    }
}

/// Parses an attribute's arguments. Every mistake goes into `errors`; the
/// options that could be read are returned regardless.
pub(crate) fn parse<O: Options>(tokens: TokenStream, errors: &mut Errors) -> Parsed<O> {
    let mut options = O::default();
    let items = match NestedMeta::parse_meta_list(tokens) {
        Ok(items) => items,
        Err(e) => {
            errors.push(syn::Error::new(
                e.span(),
                format!(
                    "expected `key = value` pairs in `#[airssys::{}(..)]` ({e}); {}",
                    O::ATTRIBUTE,
                    valid_keys::<O>()
                ),
            ));
            return Parsed {
                options,
                clean: false,
                refused: None,
            };
        }
    };
    let mut clean = true;
    let mut refused = Vec::new();
    let mut seen: Vec<(&'static str, &Meta)> = Vec::new();
    for item in &items {
        let meta = match item {
            NestedMeta::Meta(meta) => meta,
            NestedMeta::Lit(lit) => {
                clean = false;
                errors.push(syn::Error::new_spanned(
                    lit,
                    format!(
                        "expected `key = value` in `#[airssys::{}]`; {}",
                        O::ATTRIBUTE,
                        valid_keys::<O>()
                    ),
                ));
                continue;
            }
        };
        let Some(key) = known_key::<O>(meta, errors) else {
            clean = false;
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            clean = false;
            errors.push(repeated::<O>(key, meta, first));
            continue;
        }
        seen.push((key, meta));
        if let Err(e) = options.read(key, meta) {
            clean = false;
            refused.push(key);
            errors.push(e);
        }
    }
    Parsed {
        options,
        clean,
        refused: Some(refused),
    }
}

/// The key of `meta` when it is one of `O::KEYS`; otherwise reports it.
fn known_key<O: Options>(meta: &Meta, errors: &mut Errors) -> Option<&'static str> {
    let written = key_text(meta);
    if let Some(key) = O::KEYS.iter().find(|k| **k == written) {
        return Some(key);
    }
    let hint = closest(&written, O::KEYS.iter().copied())
        .map(|c| format!("did you mean `{c}`? "))
        .unwrap_or_default();
    errors.push(syn::Error::new_spanned(
        meta.path(),
        format!(
            "unknown key `{written}` in `#[airssys::{}]`; {hint}{}",
            O::ATTRIBUTE,
            valid_keys::<O>()
        ),
    ));
    None
}

/// A key given twice: the error at the repeat, a note at the first value.
fn repeated<O: Options>(key: &str, again: &Meta, first: &Meta) -> syn::Error {
    let mut error = syn::Error::new_spanned(
        again.path(),
        format!(
            "`{key}` is given twice in `#[airssys::{}]`; keep one",
            O::ATTRIBUTE
        ),
    );
    let note = format!("`{key}` first given here");
    error.combine(match first {
        Meta::NameValue(nv) => syn::Error::new_spanned(&nv.value, note),
        other => syn::Error::new_spanned(other, note),
    });
    error
}

/// `valid keys: a, b, c`.
fn valid_keys<O: Options>() -> String {
    format!("valid keys: {}", O::KEYS.join(", "))
}

/// The key as written: `world`, `crate`, or a path such as `a::b`.
fn key_text(meta: &Meta) -> String {
    meta.path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// The string literal of `key = "..."`.
fn string_value(meta: &Meta) -> darling::Result<LitStr> {
    let key = key_text(meta);
    let expected = || {
        Error::custom(format!(
            "`{key}` takes a string literal, e.g. `{key} = \"..\"`"
        ))
    };
    let Meta::NameValue(nv) = meta else {
        return Err(expected().with_span(meta));
    };
    literal(&nv.value).ok_or_else(|| expected().with_span(&nv.value))
}

/// A string literal expression, seen through the invisible groups a
/// `macro_rules!` leaves around substituted values.
fn literal(expr: &Expr) -> Option<LitStr> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        Expr::Group(g) => literal(&g.expr),
        _ => None,
    }
}

/// A string literal value (`world = "component"`); the literal keeps its
/// span for messages about its content.
#[derive(Debug, Clone)]
pub(crate) struct Text(pub(crate) LitStr);

impl FromMeta for Text {
    fn from_meta(meta: &Meta) -> darling::Result<Self> {
        string_value(meta).map(Text)
    }
}

/// A list of capability string literals (`requires = ["log:write"]`).
#[derive(Debug, Clone, Default)]
pub(crate) struct CapList(pub(crate) Vec<LitStr>);

impl FromMeta for CapList {
    fn from_meta(meta: &Meta) -> darling::Result<Self> {
        let key = key_text(meta);
        let not_a_list = || {
            Error::custom(format!(
                "`{key}` takes a list of capability strings, e.g. \
                 `{key} = [\"log:write\", \"kv:read:counter/*\"]`"
            ))
        };
        let Meta::NameValue(nv) = meta else {
            return Err(not_a_list().with_span(meta));
        };
        let mut value = &nv.value;
        while let Expr::Group(g) = value {
            value = &g.expr;
        }
        let Expr::Array(array) = value else {
            return Err(not_a_list().with_span(value));
        };
        let mut errors = Error::accumulator();
        let mut items = Vec::new();
        for elem in &array.elems {
            match literal(elem) {
                Some(s) => items.push(s),
                None => errors.push(
                    Error::custom("expected a capability string such as `\"kv:read:counter/*\"`")
                        .with_span(elem),
                ),
            }
        }
        errors.finish_with(CapList(items))
    }
}

/// A path written as a string literal (`crate = "::airssys_contract"`).
#[derive(Debug, Clone)]
pub(crate) struct CratePath(pub(crate) syn::Path);

impl FromMeta for CratePath {
    fn from_meta(meta: &Meta) -> darling::Result<Self> {
        let lit = string_value(meta)?;
        lit.parse().map(CratePath).map_err(|_| {
            Error::custom(format!(
                "`crate` must be a path to the airssys-contract crate, e.g. \
                 `crate = \"::airssys_contract\"`; `{}` is not a path",
                lit.value()
            ))
            .with_span(&lit)
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use quote::quote;

    /// Two keys, for the rules every attribute shares.
    #[derive(Debug, Default)]
    struct Demo {
        colour: Option<Text>,
        sizes: Option<CapList>,
    }

    impl Options for Demo {
        const ATTRIBUTE: &'static str = "demo";
        const KEYS: &'static [&'static str] = &["colour", "sizes"];
        fn read(&mut self, key: &str, meta: &Meta) -> darling::Result<()> {
            match key {
                "colour" => self.colour = Some(Text::from_meta(meta)?),
                _ => self.sizes = Some(CapList::from_meta(meta)?),
            }
            Ok(())
        }
    }

    /// The parsed options and every message, in order.
    pub(crate) fn run<O: Options>(tokens: TokenStream) -> (Parsed<O>, Vec<String>) {
        let mut errors = Errors::default();
        let parsed = parse::<O>(tokens, &mut errors);
        (parsed, errors.messages())
    }

    #[test]
    fn reads_each_key() {
        let (parsed, errors) = run::<Demo>(quote!(colour = "red", sizes = ["a", "b"]));
        assert!(errors.is_empty() && parsed.clean, "{errors:?}");
        assert_eq!(parsed.options.colour.expect("colour").0.value(), "red");
        assert_eq!(parsed.options.sizes.expect("sizes").0.len(), 2);
    }

    #[test]
    fn unknown_key_suggests_and_lists_the_valid_ones() {
        let (_, errors) = run::<Demo>(quote!(color = "red"));
        assert_eq!(
            errors,
            [
                "unknown key `color` in `#[airssys::demo]`; did you mean `colour`? valid keys: \
                 colour, sizes"
            ]
        );
        let (_, errors) = run::<Demo>(quote!(weight = "1"));
        assert_eq!(
            errors,
            ["unknown key `weight` in `#[airssys::demo]`; valid keys: colour, sizes"]
        );
    }

    #[test]
    fn repeated_key_points_at_both_and_keeps_the_first() {
        let (parsed, errors) = run::<Demo>(quote!(colour = "red", colour = "blue"));
        assert_eq!(
            errors,
            [
                "`colour` is given twice in `#[airssys::demo]`; keep one",
                "`colour` first given here"
            ]
        );
        assert_eq!(parsed.options.colour.expect("first").0.value(), "red");
        assert!(!parsed.clean);
    }

    #[test]
    fn wrong_values_name_the_key_and_lose_only_themselves() {
        let (parsed, errors) = run::<Demo>(quote!(colour = red, sizes = "a"));
        assert_eq!(
            errors[0],
            "`colour` takes a string literal, e.g. `colour = \"..\"`"
        );
        assert!(errors[1].starts_with("`sizes` takes a list of capability strings"));
        assert!(parsed.refused("colour") && parsed.refused("sizes"));
        let (parsed, errors) = run::<Demo>(quote!(colour = 1, sizes = ["a"]));
        assert_eq!(errors.len(), 1);
        assert!(parsed.options.sizes.is_some());
        assert!(parsed.refused("colour") && !parsed.refused("sizes"));
    }

    #[test]
    fn a_key_without_a_value_says_how_to_write_it() {
        let (_, errors) = run::<Demo>(quote!(colour));
        assert_eq!(
            errors,
            ["`colour` takes a string literal, e.g. `colour = \"..\"`"]
        );
    }

    #[test]
    fn every_mistake_is_reported_in_one_pass() {
        let (_, errors) = run::<Demo>(quote!(
            weight = "1",
            sizes = ["a", 5],
            colour = 7,
            colour = "x",
            "bare"
        ));
        // unknown key, bad list element, bad colour, repeated colour (two
        // parts), bare literal.
        assert_eq!(errors.len(), 6, "{errors:?}");
        assert!(errors[5].starts_with("expected `key = value` in `#[airssys::demo]`"));
    }

    #[test]
    fn unreadable_arguments_refuse_every_key() {
        let (parsed, errors) = run::<Demo>(quote!(colour "red"));
        assert!(errors[0].starts_with("expected `key = value` pairs in `#[airssys::demo(..)]`"));
        assert!(parsed.refused("colour") && !parsed.clean);
    }

    #[test]
    fn crate_path_must_be_a_path() {
        let meta: Meta = syn::parse_quote!(crate = "::airssys_contract");
        assert!(CratePath::from_meta(&meta).is_ok());
        let meta: Meta = syn::parse_quote!(crate = "not a path");
        let e = CratePath::from_meta(&meta).expect_err("not a path");
        assert!(e.to_string().contains("`not a path` is not a path"), "{e}");
    }
}
