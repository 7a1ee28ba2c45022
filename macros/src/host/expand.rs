//! Code generation: the guard prepended to each `host_fn` method, and the
//! `include_bytes!` lines that make an edit of a user's WIT rebuild.

use std::path::Path;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ImplItemFn};

use airssys_contract::model::TemplatePart;

use super::check::Guarded;
use super::wit::{WitFunction, WitRequirement};

/// The default path of the contract crate in generated code.
pub(crate) fn default_crate() -> syn::Path {
    syn::parse_quote!(::airssys::__private::contract)
}

/// Prepends the guard to `method`'s body: build the request from the
/// template, check it against the declared scope and the caller's grants,
/// return `Err(E::Denied(..))` on refusal. The original body runs only when
/// allowed.
pub(crate) fn guard_method(
    method: &mut ImplItemFn,
    krate: &syn::Path,
    interface: &str,
    function: &WitFunction,
    guarded: &Guarded,
) {
    let WitRequirement::Capability {
        domain,
        action,
        parts,
        ..
    } = &function.requirement
    else {
        return;
    };
    let receiver = method
        .sig
        .inputs
        .first()
        .map_or_else(Span::call_site, |r| match r {
            FnArg::Receiver(r) => r.span(),
            FnArg::Typed(t) => t.span(),
        });
    // The parsed scope, displayed: round-trips through `Capability::parse`.
    let scope_text = guarded.scope.to_string();
    let function_id = format!("{interface}#{}", function.wit_name);
    let domain = Ident::new(&variant(domain.as_str()), Span::call_site());
    let action = Ident::new(&variant(action.as_str()), Span::call_site());
    let error_path = &guarded.error_path;
    let denied = if guarded.wrapped {
        quote!(::core::result::Result::Ok(::core::result::Result::Err(
            #error_path::Denied(__airssys_denial.into_message())
        )))
    } else {
        quote!(::core::result::Result::Err(#error_path::Denied(__airssys_denial.into_message())))
    };
    let binding = |wit_name: &str| {
        guarded
            .params
            .iter()
            .find(|(n, _)| n == wit_name)
            .map(|(_, i)| i)
    };

    let mut handle = TokenStream::new();
    if parts.contains(&TemplatePart::Handle)
        && let (Some(resource), Some(self_param)) = (&function.resource, binding("self"))
    {
        let lookup = quote_spanned!(receiver=>
            __AIRSSYS_GUARD.handle(__airssys_ctx, #resource, #self_param.rep())
        );
        handle = quote! {
            let __airssys_handle: &str = match #lookup {
                ::core::result::Result::Ok(name) => name,
                ::core::result::Result::Err(__airssys_denial) => return #denied,
            };
        };
    }
    let pieces = parts.iter().map(|part| match part {
        TemplatePart::Literal(text) => quote!(#text),
        TemplatePart::Handle => quote!(__airssys_handle),
        TemplatePart::Param(name) => match binding(name) {
            Some(ident) => quote!(::core::convert::AsRef::<str>::as_ref(&#ident)),
            // The contract lint rejects templates naming a missing
            // parameter; an empty part keeps the expansion compiling.
            None => quote!(""),
        },
    });
    let ctx = quote_spanned!(receiver=> let __airssys_ctx: &Self = self;);
    // Spanned at `&mut self`, so a host state without `GuardContext` is
    // reported there.
    let check =
        quote_spanned!(receiver=> __AIRSSYS_GUARD.authorize(__airssys_ctx, &[#(#pieces),*]));
    let body = &method.block;
    method.block = syn::parse_quote!({
        {
            static __AIRSSYS_GUARD: #krate::guard::HostFnGuard = #krate::guard::HostFnGuard::new(
                #function_id,
                #scope_text,
                #krate::capability::Domain::#domain,
                #krate::capability::Action::#action,
            );
            #ctx
            #handle
            if let ::core::result::Result::Err(__airssys_denial) = #check {
                return #denied;
            }
        }
        #body
    });
}

/// `include_bytes!` of every WIT file read, so editing one rebuilds.
pub(crate) fn track_files(files: &[impl AsRef<Path>]) -> TokenStream {
    if files.is_empty() {
        return TokenStream::new();
    }
    let paths = files.iter().map(|f| f.as_ref().display().to_string());
    quote! {
        const _: () = {
            #(const _: &[u8] = ::core::include_bytes!(#paths);)*
        };
    }
}

/// `read` → `Read`: the enum variant of a domain or action name.
fn variant(name: &str) -> String {
    airssys_contract::naming::upper_camel(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::wit::{WitParam, wit_type};
    use airssys_contract::capability::{Action, Capability, Domain};
    use syn::parse_quote;

    #[test]
    fn guard_precedes_the_body_and_returns_denied() {
        let function = WitFunction {
            wit_name: "[method]bucket.get".into(),
            resource: Some("bucket".into()),
            rust_name: "get".into(),
            params: vec![
                WitParam {
                    name: "self".into(),
                    ty: wit_type("borrow<bucket>"),
                },
                WitParam {
                    name: "key".into(),
                    ty: wit_type("string"),
                },
            ],
            result: Some(wit_type("result<option<list<u8>>, error>")),
            requirement: WitRequirement::Capability {
                domain: Domain::Kv,
                action: Action::Read,
                parts: vec![
                    TemplatePart::Handle,
                    TemplatePart::Literal("/".into()),
                    TemplatePart::Param("key".into()),
                ],
                text: "kv:read:{self}/{key}".into(),
            },
        };
        let mut method: ImplItemFn = parse_quote! {
            fn get(&mut self, self_: Resource<Bucket>, key: String) -> Result<Option<Vec<u8>>, Error> {
                self.body_ran()
            }
        };
        let guarded = Guarded {
            scope: Capability::parse("kv:read:app/**").expect("valid"),
            error_path: parse_quote!(Error),
            wrapped: false,
            params: vec![
                ("self".into(), parse_quote!(self_)),
                ("key".into(), parse_quote!(key)),
            ],
        };
        guard_method(
            &mut method,
            &default_crate(),
            "airssys:core/storage",
            &function,
            &guarded,
        );
        let text = quote!(#method).to_string();
        let guard_at = text.find("HostFnGuard :: new").expect("guard emitted");
        let body_at = text.find("body_ran").expect("body kept");
        assert!(guard_at < body_at, "{text}");
        assert!(
            text.contains("\"airssys:core/storage#[method]bucket.get\""),
            "{text}"
        );
        assert!(text.contains("Domain :: Kv"), "{text}");
        assert!(text.contains("Action :: Read"), "{text}");
        assert!(text.contains("self_ . rep ()"), "{text}");
        assert!(text.contains("[__airssys_handle , \"/\" , :: core :: convert :: AsRef :: < str > :: as_ref (& key)]"), "{text}");
        assert!(text.contains("Err (Error :: Denied"), "{text}");
    }
}
