//! How Rust bindings name WIT identifiers: `open-bucket` → `open_bucket`,
//! `bucket-entry` → `BucketEntry`, `not-found` → `NOT_FOUND`.
//!
//! Both generators of this project's bindings apply heck's case rules to
//! kebab-case WIT names: wit-bindgen for guests (`#[airssys::component]`)
//! and wasmtime's `bindgen!` for hosts (`#[airssys::host_impl]` checks
//! against its traits). They differ only in the names they escape, so one
//! [`Bindings`] value picks the generator. The CLI uses the same rules for
//! the Rust names it writes (`airssys new`).
//!
//! ```
//! use airssys_contract::naming::{self, Bindings};
//!
//! assert_eq!(naming::upper_camel("bucket-entry"), "BucketEntry");
//! assert_eq!(Bindings::Host.ident("self"), "self_");
//! assert_eq!(Bindings::Host.type_name("host"), "Host_");
//! assert_eq!(Bindings::Guest.type_name("guest"), "Guest_");
//! ```

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};

/// `open-bucket` → `open_bucket` (no keyword escaping: see
/// [`Bindings::ident`]).
pub fn snake(name: &str) -> String {
    unescaped(name).to_snake_case()
}

/// `bucket-entry` → `BucketEntry`, `HTTP-error` → `HttpError` (no
/// escaping: see [`Bindings::type_name`]).
pub fn upper_camel(name: &str) -> String {
    unescaped(name).to_upper_camel_case()
}

/// `not-found` → `NOT_FOUND`: flags constants.
pub fn shouty(name: &str) -> String {
    unescaped(name).to_shouty_snake_case()
}

/// The generator whose names are meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bindings {
    /// wit-bindgen (`wit_bindgen::generate!`, `#[airssys::component]`).
    Guest,
    /// wasmtime's `bindgen!` (the host traits).
    Host,
}

impl Bindings {
    /// A function, parameter or module name: snake case, with a trailing
    /// `_` on Rust keywords (`self` → `self_`, `type` → `type_`).
    pub fn ident(self, name: &str) -> String {
        let snake = snake(name);
        let escaped = KEYWORDS.contains(&snake.as_str())
            || (self == Bindings::Host && HOST_KEYWORDS.contains(&snake.as_str()));
        if escaped { snake + "_" } else { snake }
    }

    /// A type name: upper camel case, with a trailing `_` on the one name
    /// the generator keeps for its own trait (`Guest_` for wit-bindgen,
    /// `Host_` for `bindgen!`).
    pub fn type_name(self, name: &str) -> String {
        let reserved = match self {
            Bindings::Guest => "guest",
            Bindings::Host => "host",
        };
        if unescaped(name) == reserved {
            return upper_camel(name) + "_";
        }
        upper_camel(name)
    }
}

/// A WIT identifier without its `%` escape (`%type` is `type`).
fn unescaped(name: &str) -> &str {
    name.strip_prefix('%').unwrap_or(name)
}

/// The keywords both generators escape (the Rust reference's strict and
/// reserved keywords, and `async`, `await`, `dyn`, `try`).
const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try",
];

/// Escaped by wasmtime's `bindgen!` only.
const HOST_KEYWORDS: &[&str] = &["gen"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_follow_heck() {
        assert_eq!(snake("open-bucket"), "open_bucket");
        assert_eq!(snake("list-keys"), "list_keys");
        assert_eq!(snake("%list"), "list");
        assert_eq!(upper_camel("bucket-entry"), "BucketEntry");
        assert_eq!(upper_camel("HTTP-error"), "HttpError");
        assert_eq!(upper_camel("kv"), "Kv");
        assert_eq!(upper_camel("my-counter_v2"), "MyCounterV2");
        assert_eq!(shouty("not-found"), "NOT_FOUND");
    }

    #[test]
    fn generators_escape_their_own_names() {
        for b in [Bindings::Guest, Bindings::Host] {
            assert_eq!(b.ident("self"), "self_");
            assert_eq!(b.ident("%type"), "type_");
            assert_eq!(b.ident("get-many"), "get_many");
            assert_eq!(b.type_name("bucket"), "Bucket");
        }
        assert_eq!(Bindings::Guest.ident("gen"), "gen");
        assert_eq!(Bindings::Host.ident("gen"), "gen_");
        assert_eq!(Bindings::Guest.type_name("guest"), "Guest_");
        assert_eq!(Bindings::Guest.type_name("host"), "Host");
        assert_eq!(Bindings::Host.type_name("host"), "Host_");
        assert_eq!(Bindings::Host.type_name("guest"), "Guest");
    }
}
