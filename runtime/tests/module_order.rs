//! The runtime's modules depend only downward: every `crate::<module>`
//! path in the code of a top-level module of `runtime/src` names a module
//! listed before it in the order written in `ARCHITECTURE.md` (the fenced
//! block after `<!-- runtime-module-order -->`). Comments are not code:
//! doc links may point anywhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The order in ARCHITECTURE.md, lowest first.
fn allowed_order(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let (_, after) = text
        .split_once("<!-- runtime-module-order -->")
        .expect("ARCHITECTURE.md has a `<!-- runtime-module-order -->` marker");
    let block = after
        .split("```")
        .nth(1)
        .expect("a fenced block after the marker");
    block
        .lines()
        .skip(1) // the fence's info string
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules `crate::<name>` names in the code (not the comments) of
/// `text`; only lower-case names (modules, not re-exported items).
fn used_modules(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.starts_with(|c: char| c.is_ascii_lowercase()) {
                used.insert(name);
            }
        }
    }
    used
}

#[test]
fn runtime_modules_depend_only_downward() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let order = allowed_order(manifest_dir.parent().expect("repository root"));
    let src = manifest_dir.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut unlisted = BTreeSet::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative.components().next().expect("a component");
        let module = first
            .as_os_str()
            .to_str()
            .expect("utf-8")
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" {
            continue;
        }
        let Some(rank) = order.iter().position(|m| *m == module) else {
            unlisted.insert(module);
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("read source");
        for used in used_modules(&text) {
            if used == module {
                continue;
            }
            match order.iter().position(|m| *m == used) {
                Some(r) if r < rank => {}
                Some(_) => wrong.push(format!(
                    "{}: `{module}` uses `crate::{used}`, which ARCHITECTURE.md puts above it",
                    relative.display()
                )),
                None => {
                    unlisted.insert(used);
                }
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "modules missing from ARCHITECTURE.md's runtime module order: {unlisted:?}"
    );
    assert!(
        wrong.is_empty(),
        "upward dependencies:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_scanner_sees_code_and_skips_comments() {
    let used = used_modules(
        "use crate::broker::Broker;\n/// [`x`](crate::runtime::Runtime)\nlet a = crate::sync::lock(&m); // crate::host\nuse crate::Runtime;\n",
    );
    assert_eq!(used, BTreeSet::from(["broker".into(), "sync".into()]));
}
