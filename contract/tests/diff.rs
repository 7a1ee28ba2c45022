//! Runs the WIT diff corpus in `tests/diff_corpus/` (see its README).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use airssys_contract::compat::{Bump, Change, ChangeRule, HygieneRule, Impact, Report, diff_paths};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    bump: Bump,
    ok: bool,
    hygiene: Vec<HygieneRule>,
    #[serde(default)]
    change: Vec<ExpectedChange>,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields)]
struct ExpectedChange {
    rule: ChangeRule,
    importers: Impact,
    exporters: Impact,
    bindings: Impact,
    #[serde(default)]
    unstable: bool,
}

fn observed(c: &Change) -> ExpectedChange {
    ExpectedChange {
        rule: c.rule,
        importers: c.importers,
        exporters: c.exporters,
        bindings: c.bindings,
        unstable: c.unstable,
    }
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff_corpus")
}

fn check_case(report: &Report, expected: &Expected) -> Vec<String> {
    let mut problems = Vec::new();
    if report.summary.required_bump != expected.bump {
        problems.push(format!(
            "required bump {} (expected {})",
            report.summary.required_bump, expected.bump
        ));
    }
    if report.summary.bump_ok != expected.ok {
        problems.push(format!(
            "bump ok = {} (expected {})",
            report.summary.bump_ok, expected.ok
        ));
    }
    let mut hygiene: Vec<HygieneRule> = report.hygiene.iter().map(|h| h.rule).collect();
    hygiene.sort();
    let mut want_h = expected.hygiene.clone();
    want_h.sort();
    if hygiene != want_h {
        problems.push(format!("hygiene {hygiene:?} (expected {want_h:?})"));
    }
    let key = |c: &ExpectedChange| {
        (
            c.rule,
            c.importers.as_str(),
            c.exporters.as_str(),
            c.bindings.as_str(),
            c.unstable,
        )
    };
    let mut got: Vec<ExpectedChange> = report
        .changes
        .iter()
        .chain(&report.unstable_changes)
        .map(observed)
        .collect();
    got.sort_by_key(key);
    let mut want = expected.change.clone();
    want.sort_by_key(key);
    if got != want {
        let show = |v: &[ExpectedChange]| {
            v.iter()
                .map(|c| {
                    format!(
                        "{} {}/{}/{}{}",
                        c.rule,
                        c.importers,
                        c.exporters,
                        c.bindings,
                        if c.unstable { " unstable" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let messages: Vec<String> = report
            .changes
            .iter()
            .chain(&report.unstable_changes)
            .map(|c| format!("    {} {}: {}", c.rule, c.location, c.message))
            .collect();
        problems.push(format!(
            "changes [{}]\n  expected [{}]\n{}",
            show(&got),
            show(&want),
            messages.join("\n")
        ));
    }
    for c in report.changes.iter().chain(&report.unstable_changes) {
        if c.message.is_empty() || c.location.package.is_empty() {
            problems.push(format!("{}: empty message or location", c.rule));
        }
    }
    problems
}

#[test]
fn every_corpus_case_matches_its_expected_classification() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("corpus directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 50,
        "the corpus has {} cases, want at least 50",
        dirs.len()
    );
    let mut failures = Vec::new();
    let mut covered: BTreeSet<ChangeRule> = BTreeSet::new();
    let mut covered_h: BTreeSet<HygieneRule> = BTreeSet::new();
    for dir in &dirs {
        let name = dir.file_name().expect("name").to_string_lossy().to_string();
        let text = match std::fs::read_to_string(dir.join("expected.toml")) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{name}: no expected.toml ({e})"));
                continue;
            }
        };
        let expected: Expected = match toml::from_str(&text) {
            Ok(e) => e,
            Err(e) => {
                failures.push(format!("{name}: bad expected.toml: {e}"));
                continue;
            }
        };
        let report = match diff_paths(&dir.join("old"), &dir.join("new")) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        covered.extend(expected.change.iter().map(|c| c.rule));
        covered_h.extend(expected.hygiene.iter().copied());
        for p in check_case(&report, &expected) {
            failures.push(format!("{name}: {p}"));
        }
    }
    let missing: Vec<&ChangeRule> = ChangeRule::ALL
        .iter()
        .filter(|r| !covered.contains(r))
        .collect();
    if !missing.is_empty() {
        failures.push(format!("rules covered by no case: {missing:?}"));
    }
    let missing_h: Vec<&HygieneRule> = HygieneRule::ALL
        .iter()
        .filter(|r| !covered_h.contains(r))
        .collect();
    if !missing_h.is_empty() {
        failures.push(format!("hygiene rules covered by no case: {missing_h:?}"));
    }
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ----- evolution of the project's own contract ---------------------------

/// Copies `wit/` of the repository into a temp dir, with every `@1.0.0` of
/// the airssys packages moved to `@1.1.0`, and applies `edit` to each file
/// (path relative to the copy, contents).
fn evolve(edit: impl Fn(&str, &mut String)) -> tempfile::TempDir {
    fn walk(from: &Path, to: &Path, rel: &str, edit: &dyn Fn(&str, &mut String)) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read wit dir") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .to_string();
            let rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if path.is_dir() {
                walk(&path, &to.join(&name), &rel, edit);
            } else {
                let mut text = std::fs::read_to_string(&path).expect("read wit file");
                if path.extension().is_some_and(|e| e == "wit") {
                    text = text.replace("@1.0.0", "@1.1.0");
                    edit(&rel, &mut text);
                }
                std::fs::write(to.join(&name), text).expect("write");
            }
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    walk(&repo_wit(), &dir.path().join("wit"), "", &edit);
    dir
}

fn repo_wit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")
}

/// Inserts `item` (indented) after the first `interface <name> {` line.
fn add_to_first_interface(text: &mut String, item: &str) {
    let at = text.find("\ninterface ").expect("an interface in the file") + 1;
    let open = at + text[at..].find('\n').expect("end of line") + 1;
    text.insert_str(open, item);
}

#[test]
fn own_contract_minor_release_with_since_items_passes_the_bump_check() {
    let old = repo_wit();
    airssys_contract::compat::load_wit(&old).expect("wit/ of the repository resolves");
    let dir = evolve(|rel, text| match rel {
        "deps/core/storage.wit" => {
            add_to_first_interface(
                text,
                "  /// Added in 1.1.0.\n  @since(version = 1.1.0)\n  evolution-probe: func(name: string) -> u32;\n",
            );
            text.push_str("\n/// Added in 1.1.0.\n@since(version = 1.1.0)\ninterface evolution {\n  /// Added in 1.1.0.\n  @since(version = 1.1.0)\n  ping: func() -> u64;\n}\n");
        }
        "filesystem.wit" => add_to_first_interface(
            text,
            "  @since(version = 1.1.0)\n  evolution-stat: func(path: string) -> bool;\n",
        ),
        _ => {}
    });
    let report = diff_paths(&old, &dir.path().join("wit")).expect("evolved wit resolves");
    let rules: Vec<ChangeRule> = report.changes.iter().map(|c| c.rule).collect();
    assert!(
        rules.contains(&ChangeRule::FuncAdded) && rules.contains(&ChangeRule::InterfaceAdded),
        "{}",
        report.to_text()
    );
    assert_eq!(report.summary.breaking_importers, 0, "{}", report.to_text());
    assert_eq!(
        report.summary.required_bump,
        Bump::Minor,
        "{}",
        report.to_text()
    );
    let versions: Vec<(Option<&str>, Option<&str>)> = report
        .packages
        .iter()
        .map(|p| (p.old_version.as_deref(), p.new_version.as_deref()))
        .collect();
    assert!(
        versions.contains(&(Some("1.0.0"), Some("1.1.0"))),
        "{versions:?}"
    );
    assert!(report.passes(true), "{}", report.to_text());
}

#[test]
fn own_contract_minor_release_with_a_changed_parameter_fails_the_bump_check() {
    let old = repo_wit();
    let dir = evolve(|rel, text| {
        if rel == "deps/core/storage.wit" {
            // Retype the first `string` parameter of the file.
            let at = text.find("func(").expect("a function");
            let colon = at + text[at..].find(": string").expect("a string parameter");
            text.replace_range(colon..colon + ": string".len(), ": u64");
        }
    });
    let report = diff_paths(&old, &dir.path().join("wit")).expect("evolved wit resolves");
    let changed: Vec<&Change> = report
        .changes
        .iter()
        .filter(|c| c.rule == ChangeRule::FuncParamTypeChanged)
        .collect();
    assert_eq!(changed.len(), 1, "{}", report.to_text());
    assert!(
        changed[0].importers.is_breaking()
            && changed[0].location.file.as_deref() == Some("deps/core/storage.wit")
    );
    assert_eq!(report.summary.required_bump, Bump::Major);
    assert!(!report.passes(false), "{}", report.to_text());
}

#[test]
fn docs_rule_table_matches_the_engine() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/versioning.md"),
    )
    .expect("docs/versioning.md");
    let verdict = |v: Impact| {
        if v.is_breaking() {
            "**breaking**"
        } else {
            "compatible"
        }
    };
    for rule in ChangeRule::ALL {
        let v = rule.impacts();
        let row = format!(
            "| `{}` | {} | {} | {} | {} | {} |",
            rule.id(),
            rule.summary(),
            verdict(v.importers),
            verdict(v.exporters),
            verdict(v.bindings),
            rule.bump()
        );
        assert!(
            doc.contains(&row),
            "docs/versioning.md lacks or differs on the row\n{row}"
        );
    }
    for rule in HygieneRule::ALL {
        assert!(
            doc.contains(&format!("| `{}` |", rule.id())),
            "docs lack hygiene rule {rule}"
        );
    }
}
