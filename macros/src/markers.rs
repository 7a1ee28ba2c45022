//! The capability marker traits of the facade (`airssys::__private::caps`),
//! generated from the contract's domain and action list: one trait per
//! `domain:action` pair, named as `#[airssys::component]` names its bounds
//! and impls ([`marker_name`]), so a domain or action added to the contract
//! gets its marker with no other edit.

use airssys_contract::capability::{Action, Domain};
use airssys_contract::naming::upper_camel;
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

/// `kv` + `read` → `KvRead`: the marker trait of a pair.
pub(crate) fn marker_name(domain: Domain, action: Action) -> Ident {
    Ident::new(
        &format!(
            "{}{}",
            upper_camel(domain.as_str()),
            upper_camel(action.as_str())
        ),
        Span::call_site(),
    )
}

/// How a capability of the pair is written, for the note of an undeclared
/// call: `a `kv:read:<bucket>/<key>` capability`. The match on the domain
/// is exhaustive, so a new domain must say what its resource looks like.
fn example(domain: Domain, action: Action) -> String {
    let resource = match domain {
        Domain::Fs => "<path pattern>",
        Domain::Net => "<host>:<port>",
        Domain::Kv if action == Action::List => "<bucket>",
        Domain::Kv => "<bucket>/<key>",
        Domain::Msg if action == Action::Request => "<component>",
        Domain::Msg => "<topic>",
        // `log:write` needs no resource (a level floor is optional).
        Domain::Log => return format!("`{domain}:{action}`"),
        Domain::Proc => "<program path>",
        Domain::Env => "<NAME or PREFIX_*>",
    };
    let article = if domain == Domain::Env { "an" } else { "a" };
    format!("{article} `{domain}:{action}:{resource}` capability")
}

/// Every marker trait, with the message and note rustc shows at a call the
/// component did not declare.
pub(crate) fn expand() -> TokenStream {
    let traits = Domain::ALL.iter().flat_map(|&domain| {
        domain.actions().iter().map(move |&action| {
            let name = marker_name(domain, action);
            let pair = format!("{domain}:{action}");
            let doc = format!("Implemented by components that declare a `{pair}` capability.");
            let message = format!("component `{{Self}}` does not declare capability `{pair}`");
            let note = format!(
                "add {} to `requires` or `optional` in `#[airssys::component(...)]` on `{{Self}}`",
                example(domain, action)
            );
            quote! {
                #[doc = #doc]
                #[diagnostic::on_unimplemented(
                    message = #message,
                    label = "this call needs a declared capability",
                    note = #note
                )]
                pub trait #name {}
            }
        })
    });
    quote!(#(#traits)*)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_marker_per_pair_of_the_contract() {
        let out = expand().to_string();
        let pairs: usize = Domain::ALL.iter().map(|d| d.actions().len()).sum();
        assert_eq!(out.matches("pub trait").count(), pairs, "{out}");
        for domain in Domain::ALL {
            for &action in domain.actions() {
                let name = marker_name(domain, action);
                assert!(out.contains(&format!("pub trait {name} ")), "{name}");
            }
        }
        assert_eq!(marker_name(Domain::Kv, Action::Read), "KvRead");
        assert_eq!(marker_name(Domain::Msg, Action::Subscribe), "MsgSubscribe");
    }

    #[test]
    fn notes_say_how_to_write_the_capability() {
        assert_eq!(
            example(Domain::Kv, Action::Write),
            "a `kv:write:<bucket>/<key>` capability"
        );
        assert_eq!(
            example(Domain::Kv, Action::List),
            "a `kv:list:<bucket>` capability"
        );
        assert_eq!(example(Domain::Log, Action::Write), "`log:write`");
        assert_eq!(
            example(Domain::Env, Action::Read),
            "an `env:read:<NAME or PREFIX_*>` capability"
        );
        assert_eq!(
            example(Domain::Msg, Action::Request),
            "a `msg:request:<component>` capability"
        );
    }
}
