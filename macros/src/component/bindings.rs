//! Guest bindings: wit-bindgen-rust output for the selected world, then
//! reshaped so that host calls are gated by capabilities.
//!
//! wit-bindgen generates the raw imports (`storage::open`,
//! `Bucket::get`, ...) as public functions. Here each one is made private to
//! its module and a wrapper is added beside it: an interface handle
//! (`Storage<C>`) for free functions and a handle wrapper (`Bucket<C>`) for
//! resources with capability-checked methods. A wrapper whose WIT function
//! carries `@capability <domain>:<action>..` has the bound
//! `C: caps::<Domain><Action>`, which only components that declared that
//! pair implement. Export traits get default methods where one is obvious.

use airssys_contract::model::HostFunction;
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};
use syn::{FnArg, Pat, Signature, Type};
use wit_bindgen_core::WorldGenerator;
use wit_parser::{FunctionKind, InterfaceId, Resolve, TypeDefKind, TypeOwner};

use super::raw_items::{self, RawItem};
use super::wit::{World, gate};

/// The generated bindings and what the expansion re-exports from them.
pub(crate) struct Bindings {
    /// The reshaped wit-bindgen output.
    pub(crate) file: TokenStream,
    /// Imported interfaces: where they are and what to re-export.
    pub(crate) imports: Vec<Module>,
    /// Exported interfaces: where they are and what to re-export.
    pub(crate) exports: Vec<Module>,
}

/// One interface module of the bindings.
pub(crate) struct Module {
    /// Path segments inside the bindings module (`airssys::core::storage`).
    pub(crate) path: Vec<Ident>,
    /// The interface name in snake case (`storage`).
    pub(crate) name: Ident,
    /// The interface name in upper camel case (`Storage`).
    pub(crate) camel: Ident,
    /// Public items to re-export, as `(name in bindings, public name)`.
    pub(crate) items: Vec<(Ident, Ident)>,
    /// Whether an interface handle (`Storage<C>`) was generated.
    pub(crate) has_gate: bool,
    /// The WIT name, for docs (`airssys:core/storage@1.0.0`).
    pub(crate) qualified: String,
}

/// Name of the injected interface handle inside each import module.
pub(crate) const GATE: &str = "__AirssysInterface";

/// Runs wit-bindgen-rust for the world and reshapes the output.
pub(crate) fn generate(world: &World) -> Result<Bindings, String> {
    let mut resolve = world.contract.resolve().clone();
    let mut opts = wit_bindgen_rust::Opts {
        runtime_path: Some("::airssys::__private::wit_bindgen::rt".into()),
        bitflags_path: Some("::airssys::__private::wit_bindgen::bitflags".into()),
        generate_all: true,
        ..Default::default()
    };
    opts.format = false;
    let mut generator = opts.build();
    let mut files = wit_bindgen_core::Files::default();
    crate::timing::stage("  wit-bindgen-rust", || {
        generator.generate(&mut resolve, world.id, &mut files)
    })
    .map_err(|e| format!("wit-bindgen failed: {e:#}"))?;
    let (_, text) = files
        .iter()
        .next()
        .ok_or_else(|| String::from("wit-bindgen produced no output"))?;
    let text = std::str::from_utf8(text).map_err(|e| e.to_string())?;
    let tokens = crate::timing::stage("  lex", || lex(text))?;
    let mut items = raw_items::split(tokens);

    let mut imports = Vec::new();
    for id in world.imported_interfaces() {
        let path = module_path(&resolve, id, false);
        let module = raw_items::with_module(&mut items, &path.clone(), |items| {
            gate_interface(world, &resolve, id, path, items)
        });
        imports.extend(module);
    }
    let mut exports = Vec::new();
    for id in world.exported_interfaces() {
        let path = module_path(&resolve, id, true);
        let module = raw_items::with_module(&mut items, &path.clone(), |items| {
            export_defaults(&resolve, id, path, items)
        });
        exports.extend(module);
    }
    let file = raw_items::join(&items);
    Ok(Bindings {
        file,
        imports,
        exports,
    })
}

/// Lexes wit-bindgen's output. Inside the compiler this goes straight to
/// its lexer: `proc_macro2` would first re-lex the text with its own
/// (unoptimized) lexer to validate it, which costs more than the rest of
/// the expansion; generated code needs no such check.
fn lex(text: &str) -> Result<TokenStream, String> {
    if proc_macro::is_available() {
        let tokens: proc_macro::TokenStream = text
            .parse()
            .map_err(|e| format!("wit-bindgen output: {e}"))?;
        return Ok(tokens.into());
    }
    text.parse()
        .map_err(|e: proc_macro2::LexError| format!("wit-bindgen output: {e}"))
}

/// The module path wit-bindgen gives an interface.
fn module_path(resolve: &Resolve, id: InterfaceId, export: bool) -> Vec<Ident> {
    let iface = &resolve.interfaces[id];
    let mut path = Vec::new();
    if export {
        path.push(format_ident!("exports"));
    }
    if let Some(pkg) = iface.package {
        let ns = &resolve.packages[pkg].name.namespace;
        path.push(ident(&wit_bindgen_rust::to_rust_ident(ns)));
        path.push(ident(&wit_bindgen_core::name_package_module(resolve, pkg)));
    }
    if let Some(name) = &iface.name {
        path.push(ident(&wit_bindgen_rust::to_rust_ident(name)));
    }
    path
}

fn ident(s: &str) -> Ident {
    syn::parse_str::<Ident>(s).unwrap_or_else(|_| Ident::new_raw(s, Span::call_site()))
}

// `key-page` → `KeyPage`: the case rule wit-bindgen names types with.
pub(crate) use airssys_contract::naming::upper_camel;

fn interface_names(resolve: &Resolve, id: InterfaceId) -> (Ident, Ident, String) {
    let iface = &resolve.interfaces[id];
    let name = iface.name.clone().unwrap_or_default();
    let qualified = resolve.id_of(id).unwrap_or_else(|| name.clone());
    (
        ident(&wit_bindgen_rust::to_rust_ident(&name)),
        ident(&upper_camel(&name)),
        qualified,
    )
}

/// Public, documented items of a module: what users may name.
fn public_items(items: &[RawItem]) -> Vec<Ident> {
    const NAMED: &[&str] = &["struct", "enum", "type", "trait", "const"];
    items
        .iter()
        .filter_map(|item| {
            if let Some((name, body)) = item.macro_call() {
                // `bitflags!` types.
                return (name == "bitflags")
                    .then(|| {
                        body.into_iter()
                            .skip_while(|t| t.to_string() != "struct")
                            .nth(1)
                    })
                    .flatten()
                    .and_then(|t| syn::parse2::<Ident>(t.into()).ok());
            }
            let (kind, name) = item.kind()?;
            let named = NAMED.iter().any(|k| kind == k);
            (named && item.is_pub() && !item.is_hidden())
                .then(|| name.cloned())
                .flatten()
        })
        .collect()
}

/// The rust name wit-bindgen gives function `f` (`[method]bucket.list-keys`
/// → `list_keys`, a constructor → `new`).
fn rust_fn_name(f: &wit_parser::Function) -> String {
    match f.kind {
        FunctionKind::Constructor(_) => String::from("new"),
        _ => wit_bindgen_rust::to_rust_ident(f.item_name()),
    }
}

/// The `where C: caps::..` bound of a host function, if it is gated.
fn bound(f: Option<&HostFunction>) -> Option<TokenStream> {
    let (domain, action) = gate(f?)?;
    let name = crate::markers::marker_name(domain, action);
    Some(quote!(C: ::airssys::__private::caps::#name))
}

/// Reshapes one imported interface module: raw functions private, gated
/// wrappers beside them.
fn gate_interface(
    world: &World,
    resolve: &Resolve,
    id: InterfaceId,
    path: Vec<Ident>,
    items: &mut Vec<RawItem>,
) -> Module {
    let (name, camel, qualified) = interface_names(resolve, id);
    let iface = &resolve.interfaces[id];

    // Resources whose methods need wrapping: any gated method.
    let mut wrapped: Vec<(wit_parser::TypeId, Ident)> = Vec::new();
    for (_, &tid) in &iface.types {
        let def = &resolve.types[tid];
        if !matches!(def.kind, TypeDefKind::Resource) || def.owner != TypeOwner::Interface(id) {
            continue;
        }
        let gated = iface.functions.values().any(|f| {
            f.kind.resource() == Some(tid) && bound(world.host_function(id, &f.name)).is_some()
        });
        if gated {
            let rust = ident(&upper_camel(def.name.as_deref().unwrap_or_default()));
            wrapped.push((tid, rust));
        }
    }
    let wrapper_of = |raw: &Ident| format_ident!("__AirssysHandle{}", raw);
    let wrapped_names: Vec<Ident> = wrapped.iter().map(|(_, n)| n.clone()).collect();

    let mut free = Vec::new();
    let mut methods: Vec<(Ident, TokenStream)> = Vec::new();
    for f in iface.functions.values() {
        let host = world.host_function(id, &f.name);
        let rust = rust_fn_name(f);
        match f.kind.resource() {
            None => {
                let Some(sig) = take_free_fn(items, &rust) else {
                    continue;
                };
                let call = quote!(self::);
                if let Some(body) = wrapper(&sig, host, &wrapped_names, &wrapper_of, None, call) {
                    free.push(body);
                }
            }
            Some(tid) => {
                let Some((_, res)) = wrapped.iter().find(|(t, _)| *t == tid) else {
                    continue;
                };
                let Some(sig) = take_method(items, res, &rust) else {
                    continue;
                };
                let call = quote!(#res::);
                if let Some(body) =
                    wrapper(&sig, host, &wrapped_names, &wrapper_of, Some(res), call)
                {
                    methods.push((res.clone(), body));
                }
            }
        }
    }

    let mut exposed: Vec<(Ident, Ident)> = public_items(items)
        .into_iter()
        .filter(|i| !wrapped_names.contains(i))
        .map(|i| (i.clone(), i))
        .collect();
    let has_gate = !free.is_empty();
    if has_gate {
        let gate = format_ident!("{}", GATE);
        let doc = format!(
            "The functions of `{qualified}` a component `C` may call: each call needs \
             the capability of its `@capability` line declared for `C`."
        );
        items.push(RawItem::new(quote! {
            #[doc = #doc]
            pub struct #gate<C>(::core::marker::PhantomData<fn() -> C>);
        }));
        items.push(RawItem::new(quote! {
            impl<C> #gate<C> {
                #[doc(hidden)]
                pub const fn new() -> Self {
                    Self(::core::marker::PhantomData)
                }
                #(#free)*
            }
        }));
    }
    for res in &wrapped_names {
        let handle = wrapper_of(res);
        let doc = format!(
            "A `{res}` handle of component `C`: each method needs the capability of its \
             `@capability` line declared for `C`."
        );
        let bodies = methods.iter().filter(|(r, _)| r == res).map(|(_, b)| b);
        items.push(RawItem::new(quote! {
            #[doc = #doc]
            #[derive(Debug)]
            pub struct #handle<C> {
                raw: #res,
                _component: ::core::marker::PhantomData<fn() -> C>,
            }
        }));
        items.push(RawItem::new(quote! {
            impl<C> #handle<C> {
                fn from_raw(raw: #res) -> Self {
                    Self { raw, _component: ::core::marker::PhantomData }
                }
                #(#bodies)*
            }
        }));
        exposed.push((handle, res.clone()));
    }
    Module {
        path,
        name,
        camel,
        items: exposed,
        has_gate,
        qualified,
    }
}

/// Removes `pub` from the free function `name` and returns its signature
/// and doc attributes.
fn take_free_fn(items: &mut [RawItem], name: &str) -> Option<(Signature, Vec<syn::Attribute>)> {
    let item = items
        .iter_mut()
        .find(|i| i.is_pub() && i.named("fn").is_some_and(|n| n == name))?;
    item.make_private();
    let f = item.signature()?;
    Some((f.sig, docs(&f.attrs)))
}

/// Removes `pub` from method `name` of `impl Res` and returns it.
fn take_method(
    items: &mut [RawItem],
    res: &Ident,
    name: &str,
) -> Option<(Signature, Vec<syn::Attribute>)> {
    // wit-bindgen writes one `impl Res { .. }` block per method.
    items
        .iter_mut()
        .filter(|i| i.named("impl") == Some(res))
        .find_map(|imp| {
            let mut inner = imp.inner_items()?;
            let method = inner
                .iter_mut()
                .find(|i| i.is_pub() && i.named("fn").is_some_and(|n| n == name))?;
            method.make_private();
            let f = method.signature()?;
            imp.set_inner_items(&inner);
            Some((f.sig, docs(&f.attrs)))
        })
}

fn docs(attrs: &[syn::Attribute]) -> Vec<syn::Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect()
}

/// How to turn a raw value into its wrapped form.
enum Conv {
    /// A wrapped handle: `Handle::from_raw(v)`.
    Wrap(Ident),
    Result(Option<Box<Conv>>, Option<Box<Conv>>),
    Option(Box<Conv>),
    Vec(Box<Conv>),
    Tuple(Vec<Option<Conv>>),
}

/// The wrapped type of `ty` and its conversion; `Ok(None)` when `ty` holds
/// no wrapped handle; `Err` when it holds one in a shape not handled here.
fn convert(
    ty: &Type,
    wrapped: &[Ident],
    wrapper_of: &dyn Fn(&Ident) -> Ident,
    self_res: Option<&Ident>,
) -> Result<Option<(Type, Conv)>, ()> {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last().ok_or(())?;
            let raw = if p.path.is_ident("Self") {
                self_res.cloned()
            } else if wrapped.iter().any(|w| p.path.is_ident(w)) {
                Some(last.ident.clone())
            } else {
                None
            };
            if let Some(raw) = raw {
                let handle = wrapper_of(&raw);
                return Ok(Some((syn::parse_quote!(#handle<C>), Conv::Wrap(handle))));
            }
            let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
                return Ok(None);
            };
            let tys: Vec<&Type> = args
                .args
                .iter()
                .filter_map(|a| match a {
                    syn::GenericArgument::Type(t) => Some(t),
                    _ => None,
                })
                .collect();
            let inner: Vec<Option<(Type, Conv)>> = tys
                .iter()
                .map(|t| convert(t, wrapped, wrapper_of, self_res))
                .collect::<Result<_, _>>()?;
            if inner.iter().all(Option::is_none) {
                return Ok(None);
            }
            let mut new = p.clone();
            let mut convs = Vec::new();
            if let Some(seg) = new.path.segments.last_mut()
                && let syn::PathArguments::AngleBracketed(args) = &mut seg.arguments
            {
                let mut inner = inner.into_iter();
                for arg in args.args.iter_mut() {
                    if let syn::GenericArgument::Type(t) = arg {
                        match inner.next().flatten() {
                            Some((ty, conv)) => {
                                *t = ty;
                                convs.push(Some(Box::new(conv)));
                            }
                            None => convs.push(None),
                        }
                    }
                }
            }
            let conv = match (last.ident.to_string().as_str(), convs.as_slice()) {
                ("Result", [_, _]) => {
                    let mut c = convs.into_iter();
                    Conv::Result(c.next().flatten(), c.next().flatten())
                }
                ("Option", [Some(_)]) | ("Vec", [Some(_)]) => {
                    let c = convs.into_iter().next().flatten().ok_or(())?;
                    if last.ident == "Option" {
                        Conv::Option(c)
                    } else {
                        Conv::Vec(c)
                    }
                }
                _ => return Err(()),
            };
            Ok(Some((Type::Path(new), conv)))
        }
        Type::Tuple(t) => {
            let inner: Vec<Option<(Type, Conv)>> = t
                .elems
                .iter()
                .map(|e| convert(e, wrapped, wrapper_of, self_res))
                .collect::<Result<_, _>>()?;
            if inner.iter().all(Option::is_none) {
                return Ok(None);
            }
            let mut new = t.clone();
            let mut convs = Vec::new();
            for (slot, conv) in new.elems.iter_mut().zip(inner) {
                match conv {
                    Some((ty, c)) => {
                        *slot = ty;
                        convs.push(Some(c));
                    }
                    None => convs.push(None),
                }
            }
            Ok(Some((Type::Tuple(new), Conv::Tuple(convs))))
        }
        other => {
            let text = quote!(#other).to_string();
            let mentions = wrapped.iter().any(|w| text.contains(&w.to_string()))
                || (self_res.is_some() && text.contains("Self"));
            if mentions { Err(()) } else { Ok(None) }
        }
    }
}

fn apply(conv: &Conv, value: TokenStream, depth: usize) -> TokenStream {
    let v = format_ident!("__v{}", depth);
    let e = format_ident!("__e{}", depth);
    let sub = |c: &Option<Box<Conv>>, x: TokenStream| match c {
        Some(c) => apply(c, x, depth + 1),
        None => x,
    };
    match conv {
        Conv::Wrap(handle) => quote!(#handle::from_raw(#value)),
        Conv::Result(ok, err) => {
            let ok = sub(ok, quote!(#v));
            let err = sub(err, quote!(#e));
            quote!(match #value { ::core::result::Result::Ok(#v) => ::core::result::Result::Ok(#ok), ::core::result::Result::Err(#e) => ::core::result::Result::Err(#err) })
        }
        Conv::Option(c) => {
            let inner = apply(c, quote!(#v), depth + 1);
            quote!(#value.map(|#v| #inner))
        }
        Conv::Vec(c) => {
            let inner = apply(c, quote!(#v), depth + 1);
            quote!(#value.into_iter().map(|#v| #inner).collect())
        }
        Conv::Tuple(items) => {
            let names: Vec<Ident> = (0..items.len())
                .map(|i| format_ident!("__t{}_{}", depth, i))
                .collect();
            let parts = items.iter().zip(&names).map(|(c, n)| match c {
                Some(c) => apply(c, quote!(#n), depth + 1),
                None => quote!(#n),
            });
            quote!({ let (#(#names),*) = #value; (#(#parts),*) })
        }
    }
}

/// The gated wrapper of one raw function or method. `None` when its shape
/// is not handled (then it stays unreachable rather than ungated).
fn wrapper(
    (sig, docs): &(Signature, Vec<syn::Attribute>),
    host: Option<&HostFunction>,
    wrapped: &[Ident],
    wrapper_of: &dyn Fn(&Ident) -> Ident,
    self_res: Option<&Ident>,
    call_prefix: TokenStream,
) -> Option<TokenStream> {
    let mut new = sig.clone();
    let mut args = Vec::new();
    let mut receiver = false;
    for input in new.inputs.iter_mut() {
        match input {
            FnArg::Receiver(_) => receiver = true,
            FnArg::Typed(pt) => {
                let Pat::Ident(pi) = &*pt.pat else {
                    return None;
                };
                let name = pi.ident.clone();
                let (ty, by_ref) = match &*pt.ty {
                    Type::Reference(r) => (&*r.elem, true),
                    t => (t, false),
                };
                match convert(ty, wrapped, wrapper_of, self_res).ok()? {
                    Some((new_ty, Conv::Wrap(_))) => {
                        *pt.ty = if by_ref {
                            syn::parse_quote!(&#new_ty)
                        } else {
                            new_ty
                        };
                        args.push(if by_ref {
                            quote!(&#name.raw)
                        } else {
                            quote!(#name.raw)
                        });
                    }
                    Some(_) => return None,
                    None => args.push(quote!(#name)),
                }
            }
        }
    }
    let name = &sig.ident;
    let mut call = if receiver {
        quote!(self.raw.#name(#(#args),*))
    } else if self_res.is_some() {
        quote!(#call_prefix #name(#(#args),*))
    } else {
        quote!(self::#name(#(#args),*))
    };
    if sig.asyncness.is_some() {
        call = quote!(#call.await);
    }
    if let syn::ReturnType::Type(_, ret) = &mut new.output
        && let Some((ty, conv)) = convert(ret, wrapped, wrapper_of, self_res).ok()?
    {
        **ret = ty;
        call = apply(&conv, call, 0);
    }
    // Free functions of the interface handle take `&self`.
    if self_res.is_none() {
        new.inputs.insert(0, syn::parse_quote!(&self));
    }
    if let Some(bound) = bound(host) {
        new.generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote!(#bound));
    }
    Some(quote! {
        #(#docs)*
        #[inline]
        pub #new {
            #call
        }
    })
}

/// Adds default bodies to the export trait (`Guest`) where one is obvious
/// and a diagnostic for a missing impl.
fn export_defaults(
    resolve: &Resolve,
    id: InterfaceId,
    path: Vec<Ident>,
    items: &mut [RawItem],
) -> Module {
    let (name, camel, qualified) = interface_names(resolve, id);
    let iface = &resolve.interfaces[id];
    let exposed: Vec<(Ident, Ident)> = public_items(items)
        .into_iter()
        .map(|i| {
            if i == "Guest" {
                (i, camel.clone())
            } else {
                (i.clone(), i)
            }
        })
        .collect();
    for item in items.iter_mut() {
        if item.named("trait").is_none_or(|n| n != "Guest") {
            continue;
        }
        let Ok(mut t) = item.parse::<syn::ItemTrait>() else {
            continue;
        };
        let message = format!("component `{{Self}}` does not implement the `{qualified}` export");
        let note = format!(
            "add `impl guest::{camel} for {{Self}} {{}}` next to the component; methods \
             left out do nothing (or return an error where a value is expected)"
        );
        t.attrs.push(syn::parse_quote! {
            #[diagnostic::on_unimplemented(message = #message, label = "exports `{Self}`", note = #note)]
        });
        for it in t.items.iter_mut() {
            let syn::TraitItem::Fn(f) = it else { continue };
            let Some(func) = iface
                .functions
                .values()
                .find(|func| func.kind.resource().is_none() && f.sig.ident == rust_fn_name(func))
            else {
                continue;
            };
            if let Some(body) = default_body(resolve, func, &f.sig) {
                f.default = Some(syn::parse_quote!({ #body }));
                f.attrs.push(syn::parse_quote!(#[allow(unused_variables)]));
            }
        }
        *item = RawItem::new(quote!(#t));
    }
    Module {
        path,
        name,
        camel,
        items: exposed,
        has_gate: false,
        qualified,
    }
}

/// The no-op body of an export: nothing for `-> ()`, `Ok(())` for
/// `result<_, E>`, `Err(E::Other(..))` for another result whose error has an
/// `other(string)` case; otherwise none (the user must write it).
fn default_body(
    resolve: &Resolve,
    func: &wit_parser::Function,
    sig: &Signature,
) -> Option<TokenStream> {
    let Some(result) = &func.result else {
        return Some(quote!());
    };
    let wit_parser::Type::Id(tid) = result else {
        return None;
    };
    let TypeDefKind::Result(r) = &resolve.types[wit_bindgen_core::dealias(resolve, *tid)].kind
    else {
        return None;
    };
    if r.ok.is_none() {
        return Some(quote!(::core::result::Result::Ok(())));
    }
    let wit_parser::Type::Id(err) = r.err? else {
        return None;
    };
    let TypeDefKind::Variant(v) = &resolve.types[wit_bindgen_core::dealias(resolve, err)].kind
    else {
        return None;
    };
    let other = v
        .cases
        .iter()
        .find(|c| c.name == "other" && c.ty.is_some())?;
    let case = ident(&upper_camel(&other.name));
    // The error type as wit-bindgen spelled it: second argument of `Result`.
    let syn::ReturnType::Type(_, ret) = &sig.output else {
        return None;
    };
    let Type::Path(p) = &**ret else { return None };
    let syn::PathArguments::AngleBracketed(args) = &p.path.segments.last()?.arguments else {
        return None;
    };
    let err_ty = args.args.iter().nth(1)?;
    let text = format!("this component does not implement `{}`", func.name);
    Some(quote!(::core::result::Result::Err(<#err_ty>::#case(::core::convert::From::from(#text)))))
}
