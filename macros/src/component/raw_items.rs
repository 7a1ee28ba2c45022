//! wit-bindgen's output as a list of items kept as tokens.
//!
//! Parsing the whole output (about 12,000 lines for the shipped world) with
//! syn and printing it back cost more than everything else the macro does.
//! Here the output is only split into items at the token level; the few
//! items the reshaping touches are parsed with syn, and then without their
//! bodies (a function's signature, a `Guest` trait of signatures).

use proc_macro2::{Delimiter, Group, Ident, TokenStream, TokenTree};
use quote::{ToTokens, TokenStreamExt};
use syn::TraitItemFn;

/// One item (`pub fn open(..) { .. }`, `impl Bucket { .. }`, `mod x { .. }`)
/// with its attributes.
pub(crate) struct RawItem(Vec<TokenTree>);

impl RawItem {
    /// An item from tokens that hold exactly one item.
    pub(crate) fn new(tokens: TokenStream) -> RawItem {
        RawItem(tokens.into_iter().collect())
    }

    /// Index of the first token after the outer and inner attributes.
    fn after_attrs(&self) -> usize {
        let mut i = 0;
        loop {
            let Some(TokenTree::Punct(p)) = self.0.get(i) else {
                return i;
            };
            if p.as_char() != '#' {
                return i;
            }
            let bang = matches!(self.0.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!');
            let at = i + 1 + usize::from(bang);
            match self.0.get(at) {
                Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Bracket => i = at + 1,
                _ => return i,
            }
        }
    }

    /// Index of the `pub` token when the item is plainly `pub` (not
    /// `pub(crate)`).
    fn pub_token(&self) -> Option<usize> {
        let at = self.after_attrs();
        let is_pub = matches!(self.0.get(at), Some(TokenTree::Ident(i)) if i == "pub");
        let restricted = matches!(
            self.0.get(at + 1),
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis
        );
        (is_pub && !restricted).then_some(at)
    }

    /// Whether the item is plainly `pub`.
    pub(crate) fn is_pub(&self) -> bool {
        self.pub_token().is_some()
    }

    /// Removes a plain `pub`, making the item private to its module.
    pub(crate) fn make_private(&mut self) {
        if let Some(at) = self.pub_token() {
            self.0.remove(at);
        }
    }

    /// The item's keyword (`fn`, `struct`, `impl`, `mod`, ...) and the
    /// token after it (the name; for `impl` the type when it is a plain
    /// identifier). Qualifiers such as `unsafe` or `const fn` are skipped.
    pub(crate) fn kind(&self) -> Option<(&Ident, Option<&Ident>)> {
        const KINDS: &[&str] = &[
            "fn", "struct", "enum", "union", "type", "trait", "const", "static", "mod", "impl",
            "use",
        ];
        let mut tokens = self.0[self.after_attrs()..].iter().peekable();
        while let Some(token) = tokens.next() {
            let TokenTree::Ident(keyword) = token else {
                continue;
            };
            if !KINDS.iter().any(|k| keyword == k) {
                continue;
            }
            let next = match tokens.peek() {
                Some(TokenTree::Ident(next)) => Some(next),
                _ => None,
            };
            // `const fn`, `const unsafe fn`: the keyword is further on.
            if keyword == "const" && next.is_some_and(|n| n == "fn" || n == "unsafe") {
                continue;
            }
            return Some((keyword, next));
        }
        None
    }

    /// `Some(name)` when the item is `<keyword> name`.
    pub(crate) fn named(&self, keyword: &str) -> Option<&Ident> {
        match self.kind()? {
            (k, name) if k == keyword => name,
            _ => None,
        }
    }

    /// Whether the attributes include `#[doc(hidden)]`.
    pub(crate) fn is_hidden(&self) -> bool {
        self.0[..self.after_attrs()].iter().any(|t| match t {
            TokenTree::Group(g) => {
                let mut inner = g.stream().into_iter();
                matches!(inner.next(), Some(TokenTree::Ident(i)) if i == "doc")
                    && matches!(inner.next(), Some(TokenTree::Group(args))
                        if args.stream().into_iter().any(|t| matches!(&t, TokenTree::Ident(i) if i == "hidden")))
            }
            _ => false,
        })
    }

    /// For a macro call item (`path::bitflags! { .. }`): the macro's name
    /// and its body.
    pub(crate) fn macro_call(&self) -> Option<(&Ident, TokenStream)> {
        let rest = &self.0[self.after_attrs()..];
        let bang = rest
            .iter()
            .position(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == '!'))?;
        let name = match rest.get(bang.checked_sub(1)?)? {
            TokenTree::Ident(name) => name,
            _ => return None,
        };
        match rest.get(bang + 1)? {
            TokenTree::Group(g) => Some((name, g.stream())),
            _ => None,
        }
    }

    /// The `{ .. }` body that ends the item (a module's, an impl's, a
    /// function's), if any.
    fn body(&self) -> Option<&Group> {
        match self.0.last()? {
            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => Some(g),
            _ => None,
        }
    }

    /// The items inside the body (of a `mod` or an `impl`).
    pub(crate) fn inner_items(&self) -> Option<Vec<RawItem>> {
        self.body().map(|g| split(g.stream()))
    }

    /// Replaces the items inside the body, keeping its span.
    pub(crate) fn set_inner_items(&mut self, items: &[RawItem]) {
        if let Some(TokenTree::Group(g)) = self.0.last_mut() {
            let mut new = Group::new(g.delimiter(), join(items));
            new.set_span(g.span());
            *g = new;
        }
    }

    /// The attributes and signature of a function item, parsed without its
    /// body.
    pub(crate) fn signature(&self) -> Option<TraitItemFn> {
        self.body()?;
        let mut head: TokenStream = self.0[..self.0.len() - 1].iter().cloned().collect();
        // A trait item with no default body: attributes, signature and `;`.
        head.append(proc_macro2::Punct::new(';', proc_macro2::Spacing::Alone));
        syn::parse2(head).ok()
    }

    /// The item parsed with syn (for the few small items rewritten whole).
    pub(crate) fn parse<T: syn::parse::Parse>(&self) -> syn::Result<T> {
        syn::parse2(self.0.iter().cloned().collect())
    }
}

impl ToTokens for RawItem {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(self.0.iter().cloned());
    }
}

/// Splits a module's (or an impl's) tokens into items. An item ends at a
/// top-level `;`, or at a `{ .. }` group unless it is an item whose braces
/// are part of an expression or a path (`const`, `static`, `type`, `use`).
pub(crate) fn split(tokens: TokenStream) -> Vec<RawItem> {
    let mut items = Vec::new();
    let mut current = RawItem(Vec::new());
    for token in tokens {
        let ends = match &token {
            TokenTree::Punct(p) => p.as_char() == ';',
            TokenTree::Group(g) => {
                g.delimiter() == Delimiter::Brace && !ends_at_semicolon(&current)
            }
            _ => false,
        };
        current.0.push(token);
        if ends {
            items.push(std::mem::replace(&mut current, RawItem(Vec::new())));
        }
    }
    if !current.0.is_empty() {
        items.push(current);
    }
    items
}

fn ends_at_semicolon(item: &RawItem) -> bool {
    item.kind()
        .is_some_and(|(k, _)| ["const", "static", "type", "use"].iter().any(|w| k == w))
}

/// The items back as tokens.
pub(crate) fn join(items: &[RawItem]) -> TokenStream {
    let mut out = TokenStream::new();
    for item in items {
        item.to_tokens(&mut out);
    }
    out
}

/// Runs `f` on the items of the module at `path` (nested `mod` items),
/// writing them back afterwards; `None` when there is no such module.
pub(crate) fn with_module<R>(
    items: &mut [RawItem],
    path: &[Ident],
    f: impl FnOnce(&mut Vec<RawItem>) -> R,
) -> Option<R> {
    let (first, rest) = path.split_first()?;
    let module = items.iter_mut().find(|i| i.named("mod") == Some(first))?;
    let mut inner = module.inner_items()?;
    let out = if rest.is_empty() {
        f(&mut inner)
    } else {
        with_module(&mut inner, rest, f)?
    };
    module.set_inner_items(&inner);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn names(items: &[RawItem]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i.kind() {
                Some((k, Some(n))) => format!("{k} {n}"),
                Some((k, None)) => k.to_string(),
                None => String::from("?"),
            })
            .collect()
    }

    #[test]
    fn splits_every_kind_of_item() {
        let items = split(quote! {
            #![allow(dead_code)]
            #[doc = "x"]
            pub struct Unit;
            pub struct Tuple(u32);
            pub struct Named { a: u32 }
            pub const X: Named = Named { a: 1 };
            const _: () = { let _ = 1; };
            pub use a::{b, c};
            pub const fn f() -> u32 { 1 }
            unsafe extern "C" { fn g(); }
            impl Named { pub fn get(&self) -> u32 { self.a } }
            pub mod m { pub fn h() {} }
            ::bitflags::bitflags! { pub struct Flags: u8 { const A = 1; } }
            macro_rules! mac { () => {} }
            pub(crate) use mac as export;
        });
        assert_eq!(
            names(&items),
            [
                "struct Unit",
                "struct Tuple",
                "struct Named",
                "const X",
                "const _",
                "use a",
                "fn f",
                "?",
                "impl Named",
                "mod m",
                "?",
                "?",
                "use mac",
            ]
        );
        assert!(items[0].is_pub() && !items[12].is_pub());
        assert_eq!(
            items[10]
                .macro_call()
                .map(|(n, _)| n.to_string())
                .as_deref(),
            Some("bitflags")
        );
    }

    #[test]
    fn hidden_items_are_recognised() {
        let items = split(quote! {
            #[doc(hidden)] pub fn a() {}
            #[doc = "hidden"] pub fn b() {}
        });
        assert!(items[0].is_hidden());
        assert!(!items[1].is_hidden());
    }

    #[test]
    fn rewrites_a_nested_module_in_place() {
        let mut items = split(quote! {
            pub mod a { pub mod b { /// Doc.
                pub fn f(x: u32) -> u32 { x } } }
        });
        let a = quote::format_ident!("a");
        let b = quote::format_ident!("b");
        let sig = with_module(&mut items, &[a, b], |inner| {
            inner[0].make_private();
            inner[0].signature()
        })
        .flatten()
        .expect("module and signature found");
        assert_eq!(sig.sig.ident, "f");
        assert_eq!(sig.attrs.len(), 1);
        let out = join(&items).to_string();
        assert!(out.contains("{ # [doc = r\" Doc.\"] fn f"), "{out}");
    }
}
