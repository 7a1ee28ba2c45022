//! The options of `#[airssys::component(...)]`, read by the shared
//! attribute parser ([`crate::attr`]).

use darling::FromMeta;
use proc_macro2::{Span, TokenStream};
use syn::{LitStr, Meta};

use crate::attr::{self, Options};
pub(crate) use crate::attr::{CapList, Text};
use crate::errors::Errors;

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

impl Options for Args {
    const ATTRIBUTE: &'static str = "component";
    const KEYS: &'static [&'static str] = &[
        "requires", "optional", "world", "wit", "manifest", "name", "version",
    ];

    fn read(&mut self, key: &str, meta: &Meta) -> darling::Result<()> {
        match key {
            "requires" => self.requires = Some(CapList::from_meta(meta)?),
            "optional" => self.optional = Some(CapList::from_meta(meta)?),
            "world" => self.world = Some(Text::from_meta(meta)?),
            "wit" => self.wit = Some(Text::from_meta(meta)?),
            "manifest" => self.manifest = Some(Text::from_meta(meta)?),
            "name" => self.name = Some(Text::from_meta(meta)?),
            _ => self.version = Some(Text::from_meta(meta)?),
        }
        Ok(())
    }
}

impl Args {
    /// Parses the attribute's arguments. Every problem goes into `errors`;
    /// the options that could be read are returned regardless.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
        let parsed = attr::parse::<Args>(tokens, errors);
        let name_refused = parsed.options.name.is_none() && parsed.refused("name");
        Args {
            name_refused,
            ..parsed.options
        }
    }

    /// The span of the `requires`/`optional` key literal list, for errors
    /// that concern the whole option (e.g. given together with `manifest`).
    pub(crate) fn capability_lists_span(&self) -> Option<Span> {
        let first = |l: &Option<CapList>| l.as_ref().and_then(|l| l.0.first().map(LitStr::span));
        first(&self.requires).or_else(|| first(&self.optional))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> (Args, Vec<String>) {
        let mut errors = Errors::default();
        let args = Args::parse(tokens, &mut errors);
        (args, errors.messages())
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
        assert_eq!(
            errors,
            [
                "`world` is given twice in `#[airssys::component]`; keep one",
                "`world` first given here"
            ]
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
        // unknown key, bad list element, bad name, repeated name (and
        // where it was first given), bare literal.
        assert_eq!(errors.len(), 6, "{errors:?}");
    }

    #[test]
    fn wrong_value_types_say_what_was_expected() {
        let (_, errors) = parse(quote!(requires = "log:write"));
        assert!(
            errors[0].contains("`requires` takes a list of capability strings"),
            "{errors:?}"
        );
        let (_, errors) = parse(quote!(name = counter));
        assert!(
            errors[0].contains("`name` takes a string literal"),
            "{errors:?}"
        );
    }
}
