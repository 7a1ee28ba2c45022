//! Helpers shared by the airssys fuzz targets: where the repository is and
//! how to read its test tables as seeds.

use std::path::{Path, PathBuf};

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// Reads a file of the repository; a fuzz target cannot run without its
/// seeds, so a missing file stops it with a message saying which.
pub fn read_repo_file(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fuzz seeds: cannot read {}: {e}", path.display()))
}

/// The string literals of Rust source text, unescaped (`\\`, `\"`, `\0`,
/// `\n`, `\t`, `\r`; other escapes are kept as written). Raw strings and
/// character literals are not handled: the tables read here have none.
pub fn string_literals(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        match c {
            // A comment runs to the end of the line; its quotes are prose.
            '/' if chars.as_str().starts_with('/') => {
                let rest = chars.as_str();
                chars = rest[rest.find('\n').unwrap_or(rest.len())..].chars();
            }
            '"' => {
                let mut literal = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('0') => literal.push('\0'),
                            Some('n') => literal.push('\n'),
                            Some('t') => literal.push('\t'),
                            Some('r') => literal.push('\r'),
                            Some(c @ ('\\' | '"' | '\'')) => literal.push(c),
                            Some(c) => {
                                literal.push('\\');
                                literal.push(c);
                            }
                            None => break,
                        },
                        c => literal.push(c),
                    }
                }
                out.push(literal);
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_unescaped_and_comments_skipped() {
        let src =
            "// \"not this\"\nconst X: &[&str] = &[\"fs:read:/a\\0\", \"a\\\\b\", \"q\\\"\"];";
        assert_eq!(string_literals(src), ["fs:read:/a\0", "a\\b", "q\""]);
    }
}
