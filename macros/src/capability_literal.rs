//! Capability string literals, as both macros read them
//! (`requires = ["kv:read:counter/*"]`, `host_fn(capability = "..")`).

use airssys_contract::capability::{Capability, CapabilityError};
use proc_macro2::Span;
use syn::LitStr;

/// Parses the literal's value as a capability.
///
/// # Errors
///
/// A `syn::Error` on the literal whose message repeats the text with a
/// caret under the offending bytes (stable Rust cannot underline inside a
/// literal), says what was expected and, when the mistake is about the
/// shape, recalls it.
pub(crate) fn parse(lit: &LitStr) -> syn::Result<Capability> {
    Capability::parse(&lit.value()).map_err(|e| error(lit, &e))
}

fn error(lit: &LitStr, e: &CapabilityError) -> syn::Error {
    let text = lit.value();
    let start = floor_char_boundary(&text, e.offset.min(text.len()));
    let end = floor_char_boundary(&text, (start + e.len).min(text.len()));
    let caret = format!(
        "{}{}",
        " ".repeat(text[..start].chars().count()),
        "^".repeat(text[start..end].chars().count().max(1))
    );
    let mut message = format!("invalid capability `{text}`: {e}\n  {text}\n  {caret}");
    // `expected()` lists the names that fit; without it, recall the shape.
    if e.expected().is_empty() {
        message.push_str(
            "\n  = help: a capability is `domain:action[:resource]`, e.g. `kv:read:counter/*` \
             or `log:write`",
        );
    }
    syn::Error::new(inner_span(lit, start, end), message)
}

/// The largest char boundary of `text` at or before `i`.
fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The span of bytes `start..end` of the literal's value, or the whole
/// literal when the compiler cannot point inside it (stable Rust) or the
/// literal holds escapes (source and value offsets differ).
fn inner_span(lit: &LitStr, start: usize, end: usize) -> Span {
    let token = lit.token();
    let source = token.to_string();
    let Some(open) = source.find('"') else {
        return lit.span();
    };
    let value = lit.value();
    if !source[open + 1..].starts_with(&value) {
        return lit.span();
    }
    let end = end.max(start + 1).min(value.len()).max(start);
    token
        .subspan(open + 1 + start..open + 1 + end)
        .unwrap_or_else(|| lit.span())
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn message(lit: LitStr) -> String {
        match parse(&lit) {
            Ok(c) => panic!("`{}` parsed as {c}", lit.value()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn valid_literal_parses() {
        let lit: LitStr = parse_quote!("kv:read:counter/*");
        assert_eq!(
            parse(&lit).map(|c| c.to_string()).ok().as_deref(),
            Some("kv:read:counter/*")
        );
    }

    #[test]
    fn caret_sits_under_the_offending_bytes() {
        let text = message(parse_quote!("kv:raed:counter/**"));
        assert!(text.starts_with("invalid capability `kv:raed:counter/**`"));
        assert!(text.contains("\n  kv:raed:counter/**\n     ^^^^"), "{text}");
        // The expected names are listed, so no shape reminder.
        assert!(text.contains("read, write, delete, list"), "{text}");
        assert!(!text.contains("= help"), "{text}");
    }

    #[test]
    fn shape_mistakes_recall_the_shape() {
        let text = message(parse_quote!("kv:read:counter//x"));
        // Byte 16 is the second `/` of `//`.
        let caret = format!("\n  {}^\n", " ".repeat(16));
        assert!(text.contains(&caret), "{text}");
        assert!(text.contains("= help: a capability is"), "{text}");
    }

    #[test]
    fn caret_at_end_of_text_is_still_shown() {
        let text = message(parse_quote!("kv"));
        assert!(
            text.ends_with("\n    ^") || text.contains("\n    ^\n"),
            "{text}"
        );
    }
}
