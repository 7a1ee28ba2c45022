//! The `include` statements of a world as its source file writes them,
//! with their `@since` gates (wit-parser's resolved world keeps neither
//! the statement nor its gate).

use wit_parser::{Resolve, WorldId};

/// One `include` statement of a world's source.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct IncludeInSource {
    /// The included world's name (the path's last segment, no version).
    pub(super) world: String,
    /// The statement carries `@since`.
    pub(super) since: bool,
}

/// The `include` statements of `world`, read from its source file (the
/// body between the braces after its name); empty when the file cannot
/// be read. Comments are skipped; gates are the `@…(…)` attributes just
/// before `include`.
pub(super) fn includes_in_source(resolve: &Resolve, world: WorldId) -> Vec<IncludeInSource> {
    let Some(loc) = resolve.source_map.resolve_span(resolve.worlds[world].span) else {
        return Vec::new();
    };
    let Ok(text) = std::fs::read_to_string(loc.path) else {
        return Vec::new();
    };
    let Some(rest) = text.get(loc.range.end..) else {
        return Vec::new();
    };
    scan_includes(rest)
}

/// [`includes_in_source`] on the text that follows a world's name.
fn scan_includes(text: &str) -> Vec<IncludeInSource> {
    // Tokens: words (identifiers, paths, versions), `@`, punctuation.
    let mut tokens: Vec<&str> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    while i < bytes.len() {
        let c = bytes[i];
        if text[i..].starts_with("//") {
            i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
        } else if text[i..].starts_with("/*") {
            i = text[i + 2..]
                .find("*/")
                .map_or(bytes.len(), |n| i + 2 + n + 2);
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphanumeric() || b"%_-:/.+".contains(&c) {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || b"%_-:/.+".contains(&bytes[i]))
            {
                i += 1;
            }
            if depth == 1 {
                tokens.push(&text[start..i]);
            }
        } else {
            match c {
                b'{' => depth += 1,
                b'}' if depth <= 1 => break,
                b'}' => depth -= 1,
                _ => {}
            }
            if depth >= 1 {
                tokens.push(&text[i..=i]);
            }
            i += 1;
        }
    }
    let mut out = Vec::new();
    for (n, token) in tokens.iter().enumerate() {
        let is_word = |t: &&str| t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '%');
        if *token != "include" || !tokens.get(n + 1).is_some_and(is_word) {
            continue;
        }
        // Walk back over `@name(...)` attributes to the previous statement.
        let mut since = false;
        let mut k = n;
        while k >= 2 && tokens[k - 1] == ")" {
            let Some(open) = tokens[..k - 1].iter().rposition(|t| *t == "(") else {
                break;
            };
            if open < 2 || tokens[open - 2] != "@" {
                break;
            }
            since |= tokens[open - 1] == "since";
            k = open - 2;
        }
        let path = tokens[n + 1];
        let last = path.rsplit('/').next().unwrap_or(path);
        let world = last.split('@').next().unwrap_or(last);
        out.push(IncludeInSource {
            world: world.trim_start_matches('%').to_string(),
            since,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(world: &str, since: bool) -> IncludeInSource {
        IncludeInSource {
            world: world.to_string(),
            since,
        }
    }

    #[test]
    fn includes_are_read_with_their_gates() {
        let text = " {
            import log: func(s: string);
            @since(version = 1.1.0)
            include extra;
            include wasi:cli/imports@0.2.0 with { environment as env }
            // include commented;
            /* @since(version = 1.0.0) include hidden; */
            @unstable(feature = f) @since(version = 1.2.0) include %gated;
            include x;
        }
        world next { @since(version = 9.0.0) include later; }";
        assert_eq!(
            scan_includes(text),
            [
                inc("extra", true),
                inc("imports", false),
                inc("gated", true),
                inc("x", false)
            ]
        );
    }

    #[test]
    fn an_unfinished_world_gives_what_it_has() {
        assert_eq!(scan_includes(" { @since(version = 1.0.0) include"), []);
        assert_eq!(scan_includes(" { include a"), [inc("a", false)]);
        assert_eq!(scan_includes(""), []);
    }
}
