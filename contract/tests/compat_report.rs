//! The report `airssys wit diff` prints: its text and JSON forms and its
//! pass/fail verdict, on cases of the diff corpus (`tests/diff_corpus/`,
//! verdicts from each case's `expected.toml`), plus the loader's handling
//! of paths that are not a single WIT package.

use std::path::{Path, PathBuf};

use airssys_contract::compat::{
    Bump, ChangeRule, Impact, ItemLocation, REPORT_FORMAT, Report, diff, diff_paths, load_wit,
};

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/diff_corpus")
        .join(name)
}

/// The report of a corpus case.
fn report(name: &str) -> Report {
    let dir = case(name);
    diff_paths(&dir.join("old"), &dir.join("new"))
        .unwrap_or_else(|e| panic!("corpus case {name} loads: {e}"))
}

/// What a case's `expected.toml` says about the verdict.
struct Impacts {
    bump: Bump,
    ok: bool,
    hygiene_clean: bool,
}

fn expected(name: &str) -> Impacts {
    let path = case(name).join("expected.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let table: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bump = table["bump"]
        .as_str()
        .expect("bump is a string")
        .parse()
        .expect("bump is a bump id");
    Impacts {
        bump,
        ok: table["ok"].as_bool().expect("ok is a boolean"),
        hygiene_clean: table["hygiene"]
            .as_array()
            .expect("hygiene is a list")
            .is_empty(),
    }
}

const CASES: &[&str] = &[
    "identical",
    "many-changes",
    "func-added-no-since",
    "unstable-func-added",
    "version-decreased",
    "param-type-changed",
];

#[test]
fn passes_agrees_with_the_expected_verdicts() {
    for name in CASES {
        let r = report(name);
        let want = expected(name);
        assert_eq!(r.summary.required_bump, want.bump, "{name}");
        assert_eq!(r.passes(false), want.ok, "{name}: passes(false)");
        assert_eq!(
            r.passes(true),
            want.ok && want.hygiene_clean,
            "{name}: passes(true)"
        );
    }
    // The cases cover every combination that matters for `--strict`.
    let r = report("func-added-no-since");
    assert!(r.passes(false) && !r.passes(true));
    assert!(report("identical").passes(true));
    assert!(!report("many-changes").passes(false));
}

#[test]
fn json_round_trips() {
    for name in CASES {
        let r = report(name);
        let json = r.to_json();
        assert_eq!(Report::from_json(&json).expect(name), r, "{name}");
        let value: serde_json::Value = serde_json::from_str(&json).expect(name);
        assert_eq!(value["format"], REPORT_FORMAT, "{name}");
        assert_eq!(
            value["changes"].as_array().map(Vec::len),
            Some(r.changes.len()),
            "{name}"
        );
    }
}

#[test]
fn json_that_is_not_a_report_is_an_error() {
    assert!(Report::from_json("{}").is_err());
    assert!(Report::from_json("not json").is_err());
    let mut value: serde_json::Value =
        serde_json::from_str(&report("many-changes").to_json()).expect("valid JSON");
    value["changes"][0]["rule"] = "no-such-rule".into();
    assert!(Report::from_json(&value.to_string()).is_err());
}

#[test]
fn text_lists_every_change_finding_and_package() {
    let r = report("many-changes");
    let text = r.to_text();
    assert!(text.starts_with("changes:\n"), "{text}");
    assert_eq!(r.changes.len(), 3);
    for c in &r.changes {
        let head = format!("  [{}] {}: {}\n", c.rule, c.location, c.message);
        assert!(text.contains(&head), "missing {head:?} in\n{text}");
        assert!(
            c.location.to_string().starts_with("api.wit:"),
            "{}",
            c.location
        );
    }
    let removed = r
        .changes
        .iter()
        .find(|c| c.rule == ChangeRule::FuncRemoved)
        .expect("del was removed");
    assert!(removed.message.contains("`del`"), "{}", removed.message);
    assert!(
        text.contains(&format!(
            "{}\n      importers BREAKS, exporters ok, bindings BREAKS; bump: major\n",
            removed.message
        )),
        "{text}"
    );
    assert!(
        text.contains("hygiene:\n  [removed-without-deprecation] "),
        "{text}"
    );
    for h in &r.hygiene {
        assert!(text.contains(&h.message), "{text}");
    }
    assert!(!text.contains("unstable changes"), "{text}");
    assert!(
        text.contains("packages:\n  FAIL t:p: 1.0.0 -> 1.1.0: declared minor bump, changes require major (a new semver track)\n"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "summary: 3 changes (0 unstable); breaking: 1 for importers, 2 for exporters, \
             2 for bindings; required bump major; declared bump is too small\n"
        ),
        "{text}"
    );
}

#[test]
fn text_keeps_unstable_changes_apart() {
    let r = report("unstable-func-added");
    assert!(r.changes.is_empty());
    assert_eq!(r.unstable_changes.len(), 1);
    let text = r.to_text();
    let c = &r.unstable_changes[0];
    assert!(c.unstable && c.message.contains("`watch`"), "{}", c.message);
    assert!(
        text.starts_with(&format!(
            "unstable changes (not counted):\n  [func-added] {}: {}\n",
            c.location, c.message
        )),
        "{text}"
    );
    assert!(text.contains("  ok   t:p: "), "{text}");
    assert!(
        text.ends_with("required bump none; declared bump is enough\n"),
        "{text}"
    );
}

#[test]
fn a_lower_version_fails_the_bump_check() {
    let r = report("version-decreased");
    assert_eq!(r.packages.len(), 1);
    let p = &r.packages[0];
    assert_eq!(
        (p.old_version.as_deref(), p.new_version.as_deref()),
        (Some("1.1.0"), Some("1.0.0"))
    );
    assert_eq!(p.declared_bump, None);
    assert!(!p.ok);
    assert_eq!(p.message, "version went down: 1.1.0 -> 1.0.0");
    assert!(r.to_text().contains("FAIL t:p: version went down"));
}

#[test]
fn locations_without_a_file_name_the_package() {
    let mut loc = ItemLocation {
        package: "t:p".into(),
        interface: Some("api".into()),
        world: None,
        item: Some("get".into()),
        file: None,
        line: None,
    };
    assert_eq!(loc.to_string(), "t:p/api");
    loc.interface = None;
    loc.world = Some("w".into());
    assert_eq!(loc.to_string(), "t:p world w");
    loc.file = Some("api.wit".into());
    assert_eq!(loc.to_string(), "api.wit");
    loc.line = Some(7);
    assert_eq!(loc.to_string(), "api.wit:7");
}

#[test]
fn rule_verdict_and_bump_ids_parse_and_print() {
    for rule in ChangeRule::ALL {
        assert_eq!(rule.to_string(), rule.id());
        assert_eq!(rule.to_string().parse::<ChangeRule>(), Ok(*rule));
    }
    assert!("no-such-rule".parse::<ChangeRule>().is_err());
    for bump in [Bump::None, Bump::Patch, Bump::Minor, Bump::Major] {
        assert_eq!(bump.to_string().parse::<Bump>(), Ok(bump));
    }
    let err = "huge".parse::<Bump>().expect_err("not a bump");
    assert!(err.contains("`huge`") && err.contains("major"), "{err}");
    assert_eq!(Impact::Breaking.to_string(), "breaking");
    assert_eq!(Impact::Compatible.to_string(), "compatible");
}

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create dirs");
    std::fs::write(path, text).expect("write WIT");
}

#[test]
fn a_directory_of_package_directories_loads_in_dependency_order() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    // `a-app` sorts first but uses `z-lib`: the loader retries it.
    write(
        tmp.path(),
        "a-app/app.wit",
        "package t:app@1.0.0; interface api { use t:lib/types@1.0.0.{id}; get: func(i: id); }",
    );
    write(
        tmp.path(),
        "z-lib/types.wit",
        "package t:lib@1.0.0; interface types { type id = u64; }",
    );
    std::fs::create_dir(tmp.path().join("empty")).expect("an unrelated directory");
    let resolve = load_wit(tmp.path()).expect("both packages load");
    let mut names: Vec<String> = resolve
        .packages
        .iter()
        .map(|(_, p)| p.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["t:app@1.0.0", "t:lib@1.0.0"]);
    // Identical on both sides: nothing to report.
    assert_eq!(diff(&resolve, &resolve), Default::default());
}

#[test]
fn paths_that_do_not_load_are_errors_naming_the_path() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let missing = tmp.path().join("missing");
    let e = load_wit(&missing).expect_err("no such path");
    assert_eq!(e.path, missing);
    assert_eq!(e.message, "no such file or directory");
    assert!(e.to_string().starts_with(&missing.display().to_string()));

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let e = load_wit(&empty).expect_err("no WIT");
    assert_eq!(e.message, "no .wit files found");

    let bad = tmp.path().join("bad.wit");
    std::fs::write(&bad, "package t:p;\ninterface i { get: func( }\n").expect("write");
    let e = load_wit(&bad).expect_err("a syntax error");
    assert_eq!(e.path, bad);
    assert!(e.message.contains("bad.wit:2:"), "{}", e.message);
    let location = e.location.as_ref().expect("a location");
    assert_eq!((location.file.as_path(), location.line), (bad.as_path(), 2));
    let e = diff_paths(&bad, &case("identical").join("new")).expect_err("OLD does not load");
    assert_eq!(e.path, bad);

    // A package directory whose dependency is nowhere: the retry loop stops.
    let orphan = tmp.path().join("orphans");
    write(
        &orphan,
        "app/app.wit",
        "package t:app; interface api { use t:gone/types.{id}; get: func(i: id); }",
    );
    let e = load_wit(&orphan).expect_err("an unresolved dependency");
    assert_eq!(e.path, orphan);
    assert!(e.message.contains("t:gone"), "{}", e.message);
    let location = e.location.as_ref().expect("a location");
    assert_eq!(location.file, orphan.join("app/app.wit"));
    assert_eq!(location.line, 1);
}

#[test]
fn unversioned_packages_cannot_declare_a_bump() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let (old, new) = (tmp.path().join("old.wit"), tmp.path().join("new.wit"));
    std::fs::write(&old, "package t:p;\ninterface api { get: func(); }\n").expect("write");
    std::fs::write(
        &new,
        "package t:p;\ninterface api { get: func(); set: func(v: u32); }\n",
    )
    .expect("write");
    let r = diff_paths(&old, &new).expect("both load");
    assert_eq!(r.summary.required_bump, Bump::Minor);
    assert!(!r.passes(false));
    assert_eq!(r.packages.len(), 1);
    assert_eq!(
        r.packages[0].message,
        "changes require a minor bump but the package has no version"
    );
    // Locations are relative to the file's directory.
    assert_eq!(r.changes[0].location.file.as_deref(), Some("new.wit"));
    assert_eq!(r.changes[0].location.line, Some(2));
}
