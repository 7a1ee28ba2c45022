//! The options of `#[airssys::component(...)]`.
//!
//! Keys are screened first (unknown and repeated keys are reported with the
//! list of valid ones, which darling alone does not do), then the values are
//! read with darling's `FromMeta`.

use darling::ast::NestedMeta;
use darling::{Error, FromMeta};
use proc_macro2::{Span, TokenStream};
use syn::{Expr, Lit, LitStr};

/// Every option the attribute accepts, in documentation order.
pub(crate) const KEYS: &[&str] = &[
    "requires", "optional", "world", "wit", "manifest", "name", "version",
];

/// The options as written; every literal keeps its span for error messages.
#[derive(Debug, Default)]
pub(crate) struct Args {
    /// Capabilities the component cannot run without.
    pub(crate) requires: Option<CapList>,
    /// Capabilities the component can do without.
    pub(crate) optional: Option<CapList>,
    /// The WIT world to generate bindings for.
    pub(crate) world: Option<Text>,
    /// A WIT directory (relative to the crate) instead of the embedded contract.
    pub(crate) wit: Option<Text>,
    /// A `Component.toml` (relative to the crate) holding the manifest.
    pub(crate) manifest: Option<Text>,
    /// The component name (default: the crate name).
    pub(crate) name: Option<Text>,
    /// The component version (default: the crate version).
    pub(crate) version: Option<Text>,
    /// A `name` key was written but its value was refused (already
    /// reported): the crate name must not stand in for it.
    pub(crate) name_refused: bool,
}

/// A string literal option value (`world = "component"`).
#[derive(Debug, Clone)]
pub(crate) struct Text(pub(crate) LitStr);

/// A list of capability string literals (`requires = ["log:write"]`).
#[derive(Debug, Clone, Default)]
pub(crate) struct CapList(pub(crate) Vec<LitStr>);

impl FromMeta for Text {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        match expr {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Str(s), ..
            }) => Ok(Text(s.clone())),
            Expr::Group(g) => Self::from_expr(g.expr.as_ref()),
            _ => Err(Error::custom("expected a string literal, e.g. `\"...\"`").with_span(expr)),
        }
    }
}

impl FromMeta for CapList {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        match expr {
            Expr::Array(array) => {
                let mut errors = Error::accumulator();
                let mut items = Vec::new();
                for elem in &array.elems {
                    match elem {
                        Expr::Lit(syn::ExprLit {
                            lit: Lit::Str(s), ..
                        }) => items.push(s.clone()),
                        _ => errors.push(
                            Error::custom(
                                "expected a capability string such as `\"kv:read:counter/*\"`",
                            )
                            .with_span(elem),
                        ),
                    }
                }
                errors.finish_with(CapList(items))
            }
            Expr::Group(g) => Self::from_expr(g.expr.as_ref()),
            _ => Err(Error::custom(
                "expected a list of capability strings, e.g. `[\"log:write\", \"kv:read:counter/*\"]`",
            )
            .with_span(expr)),
        }
    }
}

impl Args {
    /// Parses the attribute's arguments. Every problem goes into `errors`;
    /// the options that could be read are returned regardless.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut darling::error::Accumulator) -> Args {
        let items = match NestedMeta::parse_meta_list(tokens) {
            Ok(items) => items,
            Err(e) => {
                errors.push(Error::from(e));
                return Args::default();
            }
        };
        let mut args = Args::default();
        // Each value is read on its own so that one bad value does not lose
        // the others (which would cascade into spurious errors).
        for item in screen_keys(items, errors) {
            let NestedMeta::Meta(meta) = &item else {
                continue;
            };
            let Some(key) = meta.path().get_ident().map(ToString::to_string) else {
                continue;
            };
            let at = |e: Error| e.at(&key);
            match key.as_str() {
                "requires" => args.requires = errors.handle(CapList::from_meta(meta).map_err(at)),
                "optional" => args.optional = errors.handle(CapList::from_meta(meta).map_err(at)),
                "world" => args.world = errors.handle(Text::from_meta(meta).map_err(at)),
                "wit" => args.wit = errors.handle(Text::from_meta(meta).map_err(at)),
                "manifest" => args.manifest = errors.handle(Text::from_meta(meta).map_err(at)),
                "name" => {
                    args.name = errors.handle(Text::from_meta(meta).map_err(at));
                    args.name_refused = args.name.is_none();
                }
                "version" => args.version = errors.handle(Text::from_meta(meta).map_err(at)),
                _ => {}
            }
        }
        args
    }

    /// The span of the `requires`/`optional` key literal list, for errors
    /// that concern the whole option (e.g. given together with `manifest`).
    pub(crate) fn capability_lists_span(&self) -> Option<Span> {
        let first = |l: &Option<CapList>| l.as_ref().and_then(|l| l.0.first().map(LitStr::span));
        first(&self.requires).or_else(|| first(&self.optional))
    }
}

/// Reports unknown keys, repeated keys and bare literals, and returns the
/// first occurrence of each known key.
fn screen_keys(
    items: Vec<NestedMeta>,
    errors: &mut darling::error::Accumulator,
) -> Vec<NestedMeta> {
    let valid = KEYS.join(", ");
    let mut seen: Vec<String> = Vec::new();
    let mut kept = Vec::new();
    for item in items {
        let meta = match &item {
            NestedMeta::Meta(meta) => meta,
            NestedMeta::Lit(lit) => {
                errors.push(
                    Error::custom(format!(
                        "expected `key = value`; valid keys of `#[airssys::component]` are: {valid}"
                    ))
                    .with_span(lit),
                );
                continue;
            }
        };
        let path = meta.path();
        let key = path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_else(|| quote::quote!(#path).to_string().replace(' ', ""));
        if !KEYS.contains(&key.as_str()) {
            let hint = airssys_contract::suggest::closest(&key, KEYS.iter().copied())
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            errors.push(
                Error::custom(format!(
                    "unknown key `{key}` in `#[airssys::component]`; {hint}valid keys are: {valid}"
                ))
                .with_span(path),
            );
        } else if seen.contains(&key) {
            errors.push(
                Error::custom(format!(
                    "key `{key}` is given more than once; each of {valid} may appear once"
                ))
                .with_span(path),
            );
        } else {
            seen.push(key);
            kept.push(item);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> (Args, Vec<String>) {
        let mut errors = Error::accumulator();
        let args = Args::parse(tokens, &mut errors);
        let messages = match errors.finish() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        (args, messages)
    }

    #[test]
    fn reads_every_key() {
        let (args, errors) = parse(quote!(
            requires = ["log:write"],
            optional = ["kv:read:a/*", "kv:list:a"],
            world = "component",
            wit = "wit",
            manifest = "Component.toml",
            name = "counter",
            version = "1.2.3"
        ));
        assert!(errors.is_empty(), "{errors:?}");
        let requires = args.requires.expect("requires was given");
        assert_eq!(requires.0.len(), 1);
        assert_eq!(requires.0[0].value(), "log:write");
        assert_eq!(args.optional.expect("optional was given").0.len(), 2);
        assert_eq!(args.world.expect("world").0.value(), "component");
        assert_eq!(args.name.expect("name").0.value(), "counter");
        assert_eq!(args.version.expect("version").0.value(), "1.2.3");
    }

    #[test]
    fn empty_arguments_are_fine() {
        let (args, errors) = parse(quote!());
        assert!(errors.is_empty());
        assert!(args.requires.is_none() && args.world.is_none());
    }

    #[test]
    fn unknown_key_lists_the_valid_ones() {
        let (_, errors) = parse(quote!(require = ["log:write"]));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("unknown key `require`"), "{}", errors[0]);
        assert!(errors[0].contains("requires, optional, world, wit, manifest, name, version"));
    }

    #[test]
    fn repeated_key_is_reported_and_the_first_kept() {
        let (args, errors) = parse(quote!(world = "a", world = "b"));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("key `world` is given more than once"),
            "{}",
            errors[0]
        );
        assert_eq!(args.world.expect("first kept").0.value(), "a");
    }

    #[test]
    fn every_mistake_is_reported_in_one_pass() {
        let (_, errors) = parse(quote!(
            colour = "red",
            requires = ["log:write", 5],
            name = 7,
            name = "x",
            "bare"
        ));
        // unknown key, bad list element, bad name, repeated name, bare literal.
        assert_eq!(errors.len(), 5, "{errors:?}");
    }

    #[test]
    fn wrong_value_types_say_what_was_expected() {
        let (_, errors) = parse(quote!(requires = "log:write"));
        assert!(
            errors[0].contains("expected a list of capability strings"),
            "{errors:?}"
        );
        let (_, errors) = parse(quote!(name = counter));
        assert!(
            errors[0].contains("expected a string literal"),
            "{errors:?}"
        );
    }
}
