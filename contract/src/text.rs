//! Text from a component, made safe to show to a person.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` from a component, safe to print on one line: every control
/// character (line breaks, carriage returns, escape sequences, C1) and
/// every Unicode bidirectional control is escaped (`\n`, `\r`, `\t`,
/// `\u{1b}`), so a component cannot forge report lines or drive the
/// terminal. Borrowed when nothing needs escaping.
///
/// ```
/// use airssys_contract::text::printable;
/// assert_eq!(printable("a\r\u{1b}[2J\u{202e}b"), "a\\r\\u{1b}[2J\\u{202e}b");
/// assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.into()
}

/// Control characters and the Unicode bidirectional controls (which can
/// reorder what a terminal shows).
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}
