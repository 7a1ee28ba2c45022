//! Every per-component limit the policy accepts is documented: in
//! `docs/runtime.md`'s limits table (default, key, what the component sees)
//! and in `docs/policy.md`'s key table. The keys are read from the policy
//! file's `[limits]` table definition and each is checked against the
//! parser, so a new limit that is not documented fails here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use airssys_runtime::Policy;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The field names of `struct LimitsFile { .. }` in the policy parser.
fn limit_keys() -> Vec<String> {
    let source = read("contract/src/policy/toml_file.rs");
    let start = source
        .find("struct LimitsFile {")
        .expect("contract/src/policy/toml_file.rs defines `struct LimitsFile`");
    let body = &source[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
    body.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("//") && !line.starts_with('#'))
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.trim_start_matches("pub ").trim().to_string())
        .collect()
}

#[test]
fn every_limit_key_is_documented_in_runtime_and_policy_pages() {
    let keys = limit_keys();
    assert!(keys.len() >= 16, "found only {keys:?} in LimitsFile");
    // The list read from the source is the parser's: each key is accepted,
    // and an unknown one is refused (so no key can hide elsewhere).
    for key in &keys {
        Policy::from_toml_str(&format!("[defaults.limits]\n{key} = 1\n"))
            .unwrap_or_else(|e| panic!("the parser refuses `limits.{key}`: {e}"));
    }
    assert!(Policy::from_toml_str("[defaults.limits]\nnot_a_limit = 1\n").is_err());

    let runtime = read("docs/runtime.md");
    let limits_section = &runtime[runtime
        .find("## Limits")
        .expect("docs/runtime.md has ## Limits")..];
    let policy = read("docs/policy.md");
    let mut missing = Vec::new();
    for key in &keys {
        let cell = format!("| `limits.{key}` |");
        if !limits_section
            .lines()
            .any(|l| l.starts_with('|') && l.contains(&cell))
        {
            missing.push(format!(
                "docs/runtime.md ## Limits: no table row with {cell}"
            ));
        }
        if !policy
            .lines()
            .any(|l| l.starts_with(&format!("| `limits.{key}` |")))
        {
            missing.push(format!(
                "docs/policy.md: no key-table row for `limits.{key}`"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented limits:\n{}",
        missing.join("\n")
    );
}
