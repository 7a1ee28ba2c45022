//! Arguments of `#[airssys::host_impl(..)]` and `#[airssys::host_fn(..)]`,
//! read by the shared attribute parser ([`crate::attr`]).

use darling::FromMeta;
use proc_macro2::TokenStream;
use syn::{LitStr, Meta};

use crate::attr::{self, CratePath, Options, Parsed, Text};
use crate::errors::Errors;

/// `#[airssys::host_impl(interface = "..", wit = "..", crate = "..")]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ImplArgs {
    /// `airssys:core/storage` (a version suffix is optional).
    pub(crate) interface: Option<LitStr>,
    /// A WIT directory relative to the crate's manifest; default: the
    /// contract embedded in airssys.
    pub(crate) wit: Option<LitStr>,
    /// Path of the `airssys-contract` crate in generated code.
    pub(crate) krate: Option<syn::Path>,
}

impl Options for ImplArgs {
    const ATTRIBUTE: &'static str = "host_impl";
    const KEYS: &'static [&'static str] = &["interface", "wit", "crate"];

    fn read(&mut self, key: &str, meta: &Meta) -> darling::Result<()> {
        match key {
            "interface" => self.interface = Some(Text::from_meta(meta)?.0),
            "wit" => self.wit = Some(Text::from_meta(meta)?.0),
            _ => self.krate = Some(CratePath::from_meta(meta)?.0),
        }
        Ok(())
    }
}

/// `#[airssys::host_fn(capability = "..")]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct FnArgs {
    /// The declared scope: a capability pattern.
    pub(crate) capability: Option<LitStr>,
}

impl Options for FnArgs {
    const ATTRIBUTE: &'static str = "host_fn";
    const KEYS: &'static [&'static str] = &["capability"];

    fn read(&mut self, _key: &str, meta: &Meta) -> darling::Result<()> {
        self.capability = Some(Text::from_meta(meta)?.0);
        Ok(())
    }
}

/// Parses `host_impl` arguments; every mistake goes to `errors`.
pub(crate) fn parse_impl_args(tokens: TokenStream, errors: &mut Errors) -> ImplArgs {
    attr::parse::<ImplArgs>(tokens, errors).options
}

/// Parses `host_fn` arguments; every mistake goes to `errors`.
pub(crate) fn parse_fn_args(tokens: TokenStream, errors: &mut Errors) -> Parsed<FnArgs> {
    attr::parse::<FnArgs>(tokens, errors)
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
        assert_eq!(
            errors,
            [
                "unknown key `interfce` in `#[airssys::host_impl]`; did you mean `interface`? \
                 valid keys: interface, wit, crate"
            ]
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
            args.options.capability.map(|l| l.value()).as_deref(),
            Some("kv:read")
        );
    }

    #[test]
    fn non_string_value_is_an_error() {
        let mut errors = Errors::default();
        let args = parse_fn_args(quote!(capability = 3), &mut errors);
        assert!(errors.messages()[0].contains("takes a string literal"));
        assert!(args.refused("capability"));
    }

    #[test]
    fn all_errors_in_one_pass() {
        let (_, errors) = impl_args(quote!(a = "1", b = "2", crate = "not a path"));
        assert_eq!(errors.len(), 3, "{errors:?}");
    }
}
