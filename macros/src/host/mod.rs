//! `#[airssys::host_impl(..)]` and `#[airssys::host_fn(..)]`: host impls of
//! the contract's interfaces, checked against the WIT at compile time and
//! guarded at run time.
//!
//! `host_impl` sits on `impl storage::Host for State` (or
//! `impl storage::HostBucket for State`) and sees every method, so it can
//! check the impl as a whole: each method is a function of the interface
//! with the WIT signature, each function whose `@capability` is a template
//! carries a `host_fn` whose scope has the template's domain and action.
//! `host_fn` attributes are consumed by `host_impl`; one left on its own is
//! an error saying where `host_impl` goes.
//!
//! Stages: [`args`] → [`wit`] (the contract from
//! [`crate::contract_source`]) → [`check`] → [`expand`].

pub(crate) mod args;
pub(crate) mod check;
pub(crate) mod expand;
pub(crate) mod wit;

use std::path::Path;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::spanned::Spanned;
use syn::{ImplItem, ImplItemFn, ItemImpl};

use crate::contract_source;
use crate::errors::Errors;

use self::args::FnArgs;
use self::wit::{WitFunction, WitInterface};

/// `#[airssys::host_fn]` found by `host_impl` on one method.
struct Annotation {
    /// The attribute, for spans.
    attr: TokenStream,
    args: FnArgs,
    /// Its arguments had errors (already reported): do not also report
    /// what they failed to provide.
    broken: bool,
}

/// Expands `#[airssys::host_impl(args)]` on `item`. Always emits the impl
/// (guarded where the checks passed) plus every error, so one mistake does
/// not cascade.
pub(crate) fn host_impl(args: TokenStream, item: TokenStream) -> TokenStream {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    host_impl_in(args, item, Path::new(&manifest_dir))
}

fn host_impl_in(args: TokenStream, item: TokenStream, manifest_dir: &Path) -> TokenStream {
    let mut errors = Errors::default();
    let args = args::parse_impl_args(args, &mut errors);
    let mut item: ItemImpl = match syn::parse2(item.clone()) {
        Ok(item) => item,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                "`#[airssys::host_impl]` goes on an `impl <interface>::Host for State { .. }` \
                 (or `Host<Resource>`) block",
            );
            let mut out = item;
            out.extend(error.into_compile_error());
            return out;
        }
    };
    // Take every `host_fn` off its method first: left in place, each would
    // expand to the "outside host_impl" error.
    let annotations: Vec<Option<Annotation>> = item
        .items
        .iter_mut()
        .map(|i| match i {
            ImplItem::Fn(method) => take_host_fn(method, &mut errors),
            _ => None,
        })
        .collect();

    let mut tracked = Vec::new();
    if let Some(interface) = load_interface(&args, &item, manifest_dir, &mut tracked, &mut errors) {
        let krate = args.krate.clone().unwrap_or_else(expand::default_crate);
        check_impl(&mut item, &interface, &annotations, &krate, &mut errors);
    }
    let tracking = expand::track_files(&tracked);
    let errors = errors.into_compile_errors();
    quote! {
        #item
        #tracking
        #errors
    }
}

/// Removes the `host_fn` attribute(s) of `method`, parsing their arguments.
fn take_host_fn(method: &mut ImplItemFn, errors: &mut Errors) -> Option<Annotation> {
    let mut found: Option<Annotation> = None;
    let mut kept = Vec::new();
    for attr in std::mem::take(&mut method.attrs) {
        let is_host_fn = attr
            .path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "host_fn");
        if !is_host_fn {
            kept.push(attr);
            continue;
        }
        let tokens = match &attr.meta {
            syn::Meta::Path(_) => TokenStream::new(),
            syn::Meta::List(list) => list.tokens.clone(),
            syn::Meta::NameValue(nv) => {
                errors.push(syn::Error::new_spanned(
                    nv,
                    "write `#[airssys::host_fn(capability = \"..\")]`",
                ));
                TokenStream::new()
            }
        };
        let parsed = args::parse_fn_args(tokens, errors);
        let (broken, args) = (!parsed.clean, parsed.options);
        if found.is_some() {
            errors.push(syn::Error::new_spanned(
                &attr,
                format!(
                    "`#[airssys::host_fn]` is given twice on `{}`; keep one",
                    method.sig.ident
                ),
            ));
            continue;
        }
        found = Some(Annotation {
            attr: attr.to_token_stream(),
            args,
            broken,
        });
    }
    method.attrs = kept;
    found
}

/// Finds the interface: from `interface = ".."`, or from the trait's
/// module (`storage::Host` → the contract's one `storage` interface).
fn load_interface(
    args: &args::ImplArgs,
    item: &ItemImpl,
    manifest_dir: &Path,
    tracked: &mut Vec<std::path::PathBuf>,
    errors: &mut Errors,
) -> Option<WitInterface> {
    let contract = match contract_source::load(args.wit.as_ref(), manifest_dir) {
        Ok(contract) => contract,
        Err(error) => {
            errors.push(error);
            return None;
        }
    };
    tracked.extend_from_slice(contract.tracked());
    let Some((_, trait_path, _)) = &item.trait_ else {
        errors.push(syn::Error::new_spanned(
            &item.self_ty,
            "`#[airssys::host_impl]` goes on an impl of a host trait, e.g. \
             `impl storage::Host for State`",
        ));
        return None;
    };
    let (wanted, span) = match &args.interface {
        Some(lit) => (lit.value(), lit.span()),
        None => match infer_interface(&contract, trait_path) {
            Ok(name) => (name, trait_path.span()),
            Err(message) => {
                errors.push(syn::Error::new(Span::call_site(), message));
                return None;
            }
        },
    };
    match wit::find_interface(&contract, &wanted) {
        Ok(interface) => Some(interface),
        Err(known) => {
            let hint = check::closest(&wanted, known.iter().map(String::as_str))
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            errors.push(syn::Error::new(
                span,
                format!(
                    "unknown interface `{wanted}`; {hint}the contract's interfaces are: {}",
                    known.join(", ")
                ),
            ));
            None
        }
    }
}

/// `storage::Host` → the qualified name of the one interface called
/// `storage`, or a message asking for `interface = ".."`.
fn infer_interface(
    contract: &airssys_contract::model::Contract,
    trait_path: &syn::Path,
) -> Result<String, String> {
    let n = trait_path.segments.len();
    let module = (n >= 2).then(|| trait_path.segments[n - 2].ident.to_string());
    let matches: Vec<String> = contract
        .interfaces()
        .iter()
        .filter(|i| module.as_deref() == Some(wit::rust_ident(&i.name).as_str()))
        .map(|i| i.qualified_name())
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!(
            "`#[airssys::host_impl]` needs `interface = \"..\"` naming the WIT interface this \
             impl serves, e.g. `#[airssys::host_impl(interface = \"airssys:core/storage\")]`; \
             the contract's interfaces are: {}",
            contract
                .interfaces()
                .iter()
                .map(|i| i.qualified_name())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Runs every rule over the impl's methods and guards those that pass.
fn check_impl(
    item: &mut ItemImpl,
    interface: &WitInterface,
    annotations: &[Option<Annotation>],
    krate: &syn::Path,
    errors: &mut Errors,
) {
    let Some((_, trait_path, _)) = &item.trait_ else {
        return;
    };
    let trait_name = trait_path
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    let resource = match check::trait_resource(trait_path, interface) {
        Ok(resource) => resource,
        Err(error) => {
            errors.push(error);
            return;
        }
    };
    let scope: Vec<&WitFunction> = interface
        .functions
        .iter()
        .filter(|f| f.resource == resource)
        .collect();
    for (impl_item, annotation) in item.items.iter_mut().zip(annotations) {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        // The resource destructor is not a WIT function.
        if resource.is_some() && method.sig.ident == "drop" && annotation.is_none() {
            continue;
        }
        let function = match check::find_function(method, &scope, interface, &trait_name) {
            Ok(function) => function,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        let params = check::check_params(method, function, errors);
        let result = check::check_result(method, function, errors);
        if annotation
            .as_ref()
            .is_some_and(|a| a.broken && a.args.capability.is_none())
        {
            continue;
        }
        let annotated = annotation
            .as_ref()
            .map(|a| (&a.attr, a.args.capability.as_ref()));
        let Some(lit) = check::requirement_matches(method, function, annotated, errors) else {
            continue;
        };
        let scope = check::check_scope(lit, function, errors);
        let error_path = result
            .as_ref()
            .and_then(|(ty, _)| check::error_path(method, *ty, errors));
        if let (Some(params), Some((_, wrapped)), Some(scope), Some(error_path)) =
            (params, result, scope, error_path)
        {
            let guarded = check::Guarded {
                scope,
                error_path,
                wrapped,
                params,
            };
            expand::guard_method(method, krate, &interface.qualified, function, &guarded);
        }
    }
}

/// `#[airssys::host_fn]` reached on its own: the enclosing impl has no
/// `host_impl`. Emits the item unchanged and the error.
pub(crate) fn host_fn(_args: TokenStream, item: TokenStream) -> TokenStream {
    let error = syn::Error::new(
        Span::call_site(),
        "`#[airssys::host_fn]` only works inside an impl annotated with \
         `#[airssys::host_impl(interface = \"..\")]`; add that attribute to the enclosing \
         `impl <interface>::Host for State` block",
    );
    let mut out = item;
    out.extend(error.into_compile_error());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_host_fn_keeps_the_item_and_explains() {
        let item = quote!(
            fn get(&mut self) {}
        );
        let out = host_fn(quote!(capability = "kv:read"), item).to_string();
        assert!(out.starts_with("fn get"), "{out}");
        assert!(out.contains("host_impl"), "{out}");
    }

    #[test]
    fn host_fn_attributes_are_taken_off() {
        let mut method: ImplItemFn = syn::parse_quote! {
            #[doc = "kept"]
            #[airssys::host_fn(capability = "kv:read:**")]
            fn get(&mut self, key: String) {}
        };
        let mut errors = Errors::default();
        let annotation = take_host_fn(&mut method, &mut errors).expect("found");
        assert_eq!(method.attrs.len(), 1);
        assert_eq!(
            annotation.args.capability.map(|l| l.value()).as_deref(),
            Some("kv:read:**")
        );
        assert!(errors.messages().is_empty());
    }

    #[test]
    fn repeated_host_fn_is_an_error() {
        let mut method: ImplItemFn = syn::parse_quote! {
            #[host_fn(capability = "kv:read:a/**")]
            #[host_fn(capability = "kv:read:b/**")]
            fn get(&mut self, key: String) {}
        };
        let mut errors = Errors::default();
        take_host_fn(&mut method, &mut errors);
        assert!(
            errors.messages()[0].contains("given twice"),
            "{:?}",
            errors.messages()
        );
    }
}
