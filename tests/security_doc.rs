//! `docs/security.md` states each guarantee with the test that proves it.
//! This test keeps those references true: every `hostile::area::name` must
//! be a test function in `runtime/tests/hostile/area.rs`, every
//! `path/to/file.rs` must exist, and every `` `name` `` in the parentheses
//! after such a path must be a function in that file. A renamed or deleted
//! test fails here instead of leaving the page pointing at nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn defines(source: &str, function: &str) -> bool {
    source.contains(&format!("fn {function}("))
}

/// `hostile::area::name` references, as (area, name).
fn hostile_references(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for piece in page.split("hostile::").skip(1) {
        let reference: String = piece
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == ':')
            .collect();
        if let Some((area, name)) = reference
            .split_once("::")
            .filter(|(area, name)| !area.is_empty() && !name.is_empty())
        {
            out.push((area.to_owned(), name.trim_end_matches(':').to_owned()));
        }
    }
    out
}

/// `` `path.rs` `` followed by `` (`name`, ...) ``: (path, names).
fn file_references(page: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('`') else { break };
        let token = &after[..end];
        rest = &after[end + 1..];
        if !(token.ends_with(".rs") && token.contains('/')) || token.contains(' ') {
            continue;
        }
        let mut names = Vec::new();
        let trimmed = rest.trim_start();
        if let Some(paren) = trimmed.strip_prefix('(') {
            let inside = &paren[..paren.find(')').unwrap_or(0)];
            for name in inside.split('`').skip(1).step_by(2) {
                let snake = name.starts_with(|c: char| c.is_ascii_lowercase())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if snake {
                    names.push(name.to_owned());
                }
            }
        }
        out.push((token.to_owned(), names));
    }
    out
}

#[test]
fn every_test_the_security_page_names_exists() {
    let page = read(&root().join("docs/security.md"));
    let hostile = hostile_references(&page);
    assert!(hostile.len() > 30, "the page names the hostile probes");
    for (area, name) in &hostile {
        let file = root().join(format!("runtime/tests/hostile/{area}.rs"));
        let source = read(&file);
        assert!(
            defines(&source, name),
            "docs/security.md names hostile::{area}::{name}, which {} does not define",
            file.display()
        );
    }
    let files = file_references(&page);
    assert!(files.len() > 10, "the page names test files");
    for (path, names) in &files {
        let file = root().join(path);
        assert!(
            file.exists(),
            "docs/security.md names {path}, which does not exist"
        );
        let source = read(&file);
        for name in names {
            assert!(
                defines(&source, name),
                "docs/security.md names `{name}` in {path}, which does not define it"
            );
        }
    }
}

#[test]
fn the_checker_notices_a_missing_test() {
    let page = "`tests/host_fn_guard.rs` (`no_such_test`) and hostile::held::nothing_here";
    let files = file_references(page);
    assert_eq!(
        files,
        [(
            "tests/host_fn_guard.rs".to_owned(),
            vec!["no_such_test".to_owned()]
        )]
    );
    let source = read(&root().join("tests/host_fn_guard.rs"));
    assert!(!defines(&source, "no_such_test"));
    assert_eq!(
        hostile_references(page),
        [("held".to_owned(), "nothing_here".to_owned())]
    );
}
