//! `airssys wit diff`: exit codes, text and JSON output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use airssys_contract::compat::{ChangeRule, Impact, Report};

fn corpus(case: &str, side: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../contract/tests/diff_corpus")
        .join(case)
        .join(side)
}

fn airssys(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airssys"))
        .arg("wit")
        .arg("diff")
        .args(args)
        .output()
        .expect("run airssys")
}

fn diff(case: &str, extra: &[&str]) -> Output {
    let (old, new) = (corpus(case, "old"), corpus(case, "new"));
    let mut args = vec![old.as_os_str(), new.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    airssys(&args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn enough_bump_exits_0_and_prints_the_change() {
    let out = diff("func-added", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("[func-added] api.wit:6: function `set` was added"),
        "{stdout}"
    );
    assert!(stdout.contains("declared bump is enough"), "{stdout}");
}

#[test]
fn too_small_bump_exits_1() {
    let out = diff("param-type-changed", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("parameter was `key: string`, is now `key: u32`"));
    assert!(text(&out.stderr).contains("too small"));
}

#[test]
fn strict_fails_on_hygiene_findings_only_when_asked() {
    assert_eq!(diff("func-added-no-since", &[]).status.code(), Some(0));
    let out = diff("func-added-no-since", &["--strict"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("[since-missing]"));
}

#[test]
fn json_output_is_the_documented_report() {
    let out = diff("method-added", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let report = Report::from_json(&text(&out.stdout)).expect("valid JSON report");
    assert_eq!(report.format, 1);
    assert_eq!(report.changes.len(), 1);
    let c = &report.changes[0];
    assert_eq!(
        (c.rule, c.importers, c.exporters),
        (
            ChangeRule::MethodAdded,
            Impact::Compatible,
            Impact::Breaking
        )
    );
    assert_eq!(c.location.item.as_deref(), Some("bucket.put"));
    assert_eq!(
        (c.location.file.as_deref(), c.location.line),
        (Some("api.wit"), Some(7))
    );
    assert!(report.summary.bump_ok);
    let raw: &str = &text(&out.stdout);
    for field in [
        "\"format\"",
        "\"packages\"",
        "\"required_bump\"",
        "\"declared_bump\"",
        "\"unstable_changes\"",
        "\"hygiene\"",
    ] {
        assert!(raw.contains(field), "missing {field}");
    }
}

#[test]
fn single_files_work_too() {
    let old = corpus("record-field-added", "old").join("api.wit");
    let new = corpus("record-field-added", "new").join("api.wit");
    let out = airssys(&[old.as_os_str(), new.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("[record-field-added] api.wit:4"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn invalid_input_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.wit");
    std::fs::write(
        &bad,
        "package a:b@1.0.0;\n\ninterface x {\n  f: func(a: nope);\n}\n",
    )
    .expect("write");
    let good = corpus("identical", "old");
    let out = airssys(&[good.as_os_str(), bad.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad.wit:4:"), "{stderr}");
    assert!(stderr.contains("nope"), "{stderr}");
    let missing = dir.path().join("missing");
    let out = airssys(&[good.as_os_str(), missing.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no such file"));
}
