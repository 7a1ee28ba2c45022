//! The host policy file: `airssys_contract::policy::Policy::from_toml_str`
//! (what `airssys_runtime::Policy` re-exports) on arbitrary text.
//!
//! Never a panic; an error has a line and a column inside the text. A
//! policy that parses answers every per-component query for each
//! component it names (and for one it does not), its rules display as
//! capabilities that parse back, their lines are lines of the text, and its
//! grants and denies compile into a grant set.

#![no_main]

use airssys_contract::capability::{Capability, GrantSet};
use airssys_contract::policy::{Policy, PolicyError, ResolvedLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = u32::try_from(text.lines().count() + 1).unwrap_or(u32::MAX);
    let policy = match Policy::from_toml_str(text) {
        Ok(policy) => policy,
        Err(e) => {
            let _ = e.to_string();
            if let PolicyError::Invalid { line, column, .. } = e {
                assert!(line >= 1 && column >= 1, "line {line}, column {column}");
                assert!(line <= lines, "line {line} of a {lines}-line text");
            }
            return;
        }
    };
    let _ = policy.allows_unannotated();
    for name in component_names(text)
        .iter()
        .map(String::as_str)
        .chain(["", "not-named-in-the-policy"])
    {
        let grants: Vec<Capability> = policy
            .grants_for(name)
            .chain(policy.denies_for(name))
            .chain(policy.subscriptions_for(name))
            .map(|rule| {
                if let Some(line) = rule.line {
                    assert!((1..=lines).contains(&line), "rule `{rule}` on line {line}");
                }
                let shown = rule.to_string();
                assert_eq!(
                    Capability::parse(&shown).as_ref(),
                    Ok(&rule.capability),
                    "`{shown}` does not parse back"
                );
                rule.capability.clone()
            })
            .collect();
        let denies = policy.denies_for(name).map(|r| r.capability.clone());
        let _ = GrantSet::new(grants, denies);
        let _ = policy.config_for(name);
        let _ = policy.env_for(name);
        let _ = policy.mounts_for(name);
        let _ = policy.limits_for(name, ResolvedLimits::default());
    }
});

/// The keys of the `[components]` table, read with the `toml` crate.
fn component_names(text: &str) -> Vec<String> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    match table.get("components") {
        Some(toml::Value::Table(components)) => components.keys().cloned().collect(),
        _ => Vec::new(),
    }
}
