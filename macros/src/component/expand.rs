//! The code `#[airssys::component]` emits beside the user's type.
//!
//! - `mod __airssys_bindings`: the reshaped wit-bindgen output (private).
//! - `pub mod host`: `Host<C>`, one interface handle per imported interface
//!   (`host::storage::Storage<C>`), gated handles and the WIT types.
//! - `pub mod guest`: the export traits (`guest::Lifecycle`, ...) and types.
//! - `impl Counter { fn host() }`, `impl airssys::Component`, one
//!   `impl caps::<Domain><Action>` per declared pair, the `airssys:manifest`
//!   custom section, the WIT tracking and the `export!` call.

use std::collections::BTreeSet;

use airssys_contract::capability::Domain;
use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};

use super::Component;
use super::bindings::{GATE, Module};

/// The name of the private bindings module.
const BINDINGS: &str = "__airssys_bindings";

pub(crate) fn expand(ty: &Ident, c: &Component, with_exports: bool) -> TokenStream {
    let bindings = format_ident!("{}", BINDINGS);
    let file = &c.bindings.file;
    let host = host_module(&c.bindings.imports, &c.world);
    let guest = guest_module(&c.bindings.exports, &c.world);
    // With errors (no export glue), every marker is implemented: a
    // misspelt key or action must not also fail every host call that
    // relied on it with E0277.
    let marker_impls = marker_impls(ty, c, !with_exports);
    let manifest = manifest(ty, c);
    let tracked = c.tracked.iter().map(|p| {
        let p = p.display().to_string();
        quote!(
            const _: &[u8] = include_bytes!(#p);
        )
    });
    let export = if c.bindings.exports.is_empty() || !with_exports {
        quote!()
    } else {
        quote!(#bindings::export!(#ty with_types_in #bindings);)
    };
    quote! {
        #[doc(hidden)]
        #[allow(
            dead_code,
            unused,
            unsafe_code,
            missing_docs,
            missing_debug_implementations,
            unreachable_pub,
            non_camel_case_types,
            clippy::all,
            clippy::pedantic
        )]
        mod #bindings {
            #file
        }

        #host
        #guest

        #[automatically_derived]
        impl #ty {
            /// The host services this component may call, gated by the
            /// capabilities it declares.
            #[allow(dead_code)]
            pub const fn host() -> host::Host<#ty> {
                host::Host::new()
            }
        }

        #marker_impls
        #manifest

        const _: () = {
            #(#tracked)*
        };

        #export
    }
}

/// `pub mod host`: the gated host API and the imported WIT types.
fn host_module(imports: &[Module], world: &str) -> TokenStream {
    let bindings = format_ident!("{}", BINDINGS);
    let names = unique_names(imports);
    let gate = format_ident!("{}", GATE);
    let accessors = imports
        .iter()
        .zip(&names)
        .filter(|(m, _)| m.has_gate)
        .map(|(m, name)| {
            let camel = &m.camel;
            let doc = format!("The functions of `{}`.", m.qualified);
            quote! {
                #[doc = #doc]
                #[inline]
                pub const fn #name(&self) -> #name::#camel<C> {
                    #name::#camel::new()
                }
            }
        });
    let modules = imports.iter().zip(&names).map(|(m, name)| {
        let path = &m.path;
        let mut uses: Vec<TokenStream> = m
            .items
            .iter()
            .map(|(raw, public)| {
                if raw == public {
                    quote!(#raw)
                } else {
                    quote!(#raw as #public)
                }
            })
            .collect();
        if m.has_gate {
            let camel = &m.camel;
            uses.push(quote!(#gate as #camel));
        }
        let doc = format!("Types and functions of `{}`.", m.qualified);
        quote! {
            #[doc = #doc]
            pub mod #name {
                pub use super::super::#bindings::#(#path)::*::{#(#uses),*};
            }
        }
    });
    let doc = format!(
        "Host services of world `{world}`, gated by the component's declared capabilities."
    );
    quote! {
        #[doc = #doc]
        #[allow(dead_code, unused_imports, clippy::all)]
        pub mod host {
            /// Entry point of the host API for component `C`; obtain it with
            /// `<Component>::host()`.
            pub struct Host<C>(::core::marker::PhantomData<fn() -> C>);

            impl<C> Host<C> {
                /// A handle on the host services for component `C`.
                #[inline]
                pub const fn new() -> Self {
                    Self(::core::marker::PhantomData)
                }
                #(#accessors)*
            }

            #(#modules)*
        }
    }
}

/// `pub mod guest`: the export traits and their types.
fn guest_module(exports: &[Module], world: &str) -> TokenStream {
    let bindings = format_ident!("{}", BINDINGS);
    let names = unique_names(exports);
    let modules = exports.iter().zip(&names).map(|(m, name)| {
        let path = &m.path;
        let uses = m.items.iter().map(|(raw, public)| {
            if raw == public {
                quote!(#raw)
            } else {
                quote!(#raw as #public)
            }
        });
        let doc = format!("The `{}` export: its trait and types.", m.qualified);
        quote! {
            #[doc = #doc]
            pub mod #name {
                pub use super::super::#bindings::#(#path)::*::{#(#uses),*};
            }
        }
    });
    let traits = exports
        .iter()
        .zip(&names)
        .filter(|(m, _)| m.items.iter().any(|(_, p)| *p == m.camel))
        .map(|(m, name)| {
            let camel = &m.camel;
            quote!(pub use #name::#camel;)
        });
    let doc = format!("What the component exports in world `{world}`: implement each trait.");
    quote! {
        #[doc = #doc]
        #[allow(dead_code, unused_imports, clippy::all)]
        pub mod guest {
            #(#traits)*
            #(#modules)*
        }
    }
}

/// Module names: the interface name, or `<package>_<name>` when two
/// interfaces of different packages share it.
fn unique_names(modules: &[Module]) -> Vec<Ident> {
    modules
        .iter()
        .map(|m| {
            let clash = modules.iter().filter(|o| o.name == m.name).count() > 1;
            if clash && m.path.len() >= 2 {
                let pkg = &m.path[m.path.len() - 2];
                format_ident!("{}_{}", pkg, m.name)
            } else {
                m.name.clone()
            }
        })
        .collect()
}

/// One `impl caps::<Domain><Action> for T {}` per declared pair, or per
/// pair there is when `all` (the build fails with another error anyway).
fn marker_impls(ty: &Ident, c: &Component, all: bool) -> TokenStream {
    let pairs: BTreeSet<_> = if all {
        Domain::ALL
            .iter()
            .flat_map(|d| d.actions().iter().map(move |a| (*d, *a)))
            .collect()
    } else {
        c.declared
            .iter()
            .map(|d| (d.capability.domain(), d.capability.action()))
            .collect()
    };
    let impls = pairs.into_iter().map(|(domain, action)| {
        let name = crate::markers::marker_name(domain, action);
        quote! {
            #[automatically_derived]
            impl ::airssys::__private::caps::#name for #ty {}
        }
    });
    quote!(#(#impls)*)
}

/// `impl airssys::Component` and the `airssys:manifest` custom section,
/// both from the same encoded bytes.
fn manifest(ty: &Ident, c: &Component) -> TokenStream {
    let bytes = c.manifest.encode();
    let len = bytes.len();
    let lit = Literal::byte_string(&bytes);
    let name = &c.manifest.name;
    let version = &c.manifest.version;
    let requires = c.manifest.requires.iter().map(ToString::to_string);
    let optional = c.manifest.optional.iter().map(ToString::to_string);
    let world = &c.world;
    quote! {
        #[automatically_derived]
        impl ::airssys::Component for #ty {
            const NAME: &'static str = #name;
            const VERSION: &'static str = #version;
            const REQUIRES: &'static [&'static str] = &[#(#requires),*];
            const OPTIONAL: &'static [&'static str] = &[#(#optional),*];
            const WORLD: &'static str = #world;
            const MANIFEST_BYTES: &'static [u8] = #lit;
        }

        const _: () = {
            #[cfg(target_family = "wasm")]
            #[allow(unsafe_code)]
            #[unsafe(link_section = "airssys:manifest")]
            #[used]
            static AIRSSYS_MANIFEST: [u8; #len] = *#lit;
        };
    }
}
