//! The WIT contract model and its lint, on small fixture directories (one
//! mistake each) and on the embedded contract.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use airssys_contract::capability::{Action, Domain};
use airssys_contract::model::{
    Contract, ContractError, EMBEDDED_FILES, Problem, Requirement, TemplatePart,
};

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lint")
        .join(case)
}

fn lint(case: &str) -> Vec<Problem> {
    Contract::load_dir(&fixture(case))
        .unwrap_or_else(|e| panic!("{case} loads: {e}"))
        .lint()
}

/// Lints a one-mistake fixture and checks its single problem's line and
/// message.
fn assert_one(case: &str, line: u32, expected: &[&str]) {
    let problems = lint(case);
    assert_eq!(problems.len(), 1, "{case}: {problems:#?}");
    let p = &problems[0];
    assert_eq!(p.location.file, fixture(case).join("api.wit"), "{case}");
    assert_eq!(p.location.line, line, "{case}: {p}");
    for part in expected {
        assert!(p.message.contains(part), "{case}: `{part}` not in: {p}");
    }
    let shown = p.to_string();
    assert!(
        shown.starts_with(&format!("{}:{line}: ", p.location.file.display())),
        "{shown}"
    );
}

#[test]
fn clean_fixture_lints_clean_and_models_every_function() {
    let contract = Contract::load_dir(&fixture("clean")).unwrap();
    assert_eq!(contract.lint(), []);
    let files = contract.interface("files").unwrap();
    assert_eq!(files.qualified_name(), "fixture:clean/files@1.0.0");
    assert_eq!(files.package, "fixture:clean@1.0.0");
    let names: Vec<_> = files.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "open",
            "level",
            "write",
            "[method]file.read",
            "[method]file.size",
            "[static]file.create"
        ]
    );

    let open = contract.function("files", "open").unwrap();
    assert_eq!(open.params[0].name, "path");
    assert_eq!(open.params[0].ty.to_string(), "path");
    assert_eq!(
        open.result.as_ref().map(ToString::to_string).as_deref(),
        Some("result<file, error>")
    );
    assert_eq!(open.location.line, 43);
    let Requirement::Capability(t) = &open.requirement else {
        panic!("{:?}", open.requirement)
    };
    assert_eq!((t.domain, t.action), (Domain::Fs, Action::Read));
    assert_eq!(t.resource, [TemplatePart::Param("path".into())]);

    let read = contract
        .function("fixture:clean/files", "[method]file.read")
        .unwrap();
    assert!(read.is_method());
    assert_eq!(read.resource.as_deref(), Some("file"));
    assert_eq!(read.display_name(), "file.read");
    // the implicit `self` is not listed
    assert_eq!(read.params.len(), 1);
    assert_eq!(
        read.result.as_ref().map(ToString::to_string).as_deref(),
        Some("result<list<u8>, error>")
    );
    assert_eq!(
        contract
            .function("files", "[method]file.size")
            .unwrap()
            .requirement,
        Requirement::Handle
    );
    assert_eq!(
        contract.function("files", "level").unwrap().requirement,
        Requirement::None
    );

    // lifecycle is exported only: not a host interface
    assert!(contract.interface("lifecycle").is_none());
    let summary = contract.summary();
    assert_eq!(
        (
            summary.packages,
            summary.interfaces,
            summary.host_interfaces,
            summary.functions,
            summary.annotated
        ),
        (1, 3, 2, 6, 6)
    );
    assert_eq!(contract.worlds(), ["fixture:clean/component@1.0.0"]);
    let imported = contract.world_functions("component").unwrap();
    assert_eq!(imported.len(), 6);
    assert!(contract.world_functions("nope").is_none());
}

#[test]
fn missing_annotation() {
    assert_one(
        "missing",
        21,
        &["function `get` in `fixture:case/api@1.0.0` has no `@capability` line"],
    );
}

#[test]
fn more_than_one_annotation() {
    assert_one(
        "multiple",
        23,
        &["has 2 `@capability` lines; keep exactly one"],
    );
}

#[test]
fn unknown_domain() {
    assert_one(
        "unknown-domain",
        22,
        &["unknown domain `db`; expected one of fs, net, kv, msg, log, proc, env"],
    );
}

#[test]
fn unknown_action() {
    assert_one(
        "unknown-action",
        22,
        &[
            "unknown action `raed` for domain `fs`; expected one of read, write, create, delete, list, stat",
        ],
    );
}

#[test]
fn template_names_missing_parameter() {
    assert_one(
        "missing-param",
        22,
        &["names `{name}`, which is not a parameter; its parameters are `key`"],
    );
}

#[test]
fn template_names_non_string_parameter() {
    assert_one(
        "non-string-param",
        22,
        &["names `{port}`, whose type is `u16`; only `string` parameters"],
    );
}

#[test]
fn self_outside_method() {
    assert_one(
        "self-outside-method",
        22,
        &["uses `{self}`, but only a resource method has a handle"],
    );
}

#[test]
fn handle_on_non_method() {
    assert_one(
        "handle-not-method",
        22,
        &["`@capability handle` needs a resource method"],
    );
}

#[test]
fn result_cannot_carry_denied() {
    assert_one(
        "result-without-denied",
        23,
        &[
            "requires `log:write` but its result `result<_, string>` cannot carry `denied`",
            "its error type `string` is not a variant",
        ],
    );
}

#[test]
fn error_variant_lacks_other() {
    assert_one(
        "error-variant",
        5,
        &["error variant `error` of `fixture:case/api@1.0.0` lacks a `other(string)` case"],
    );
}

#[test]
fn all_problems_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("api.wit"),
        "package t:many@1.0.0;\n\
         interface api {\n\
           variant error { denied(string) }\n\
           a: func();\n\
           /// @capability nope\n\
           b: func();\n\
           /// @capability log:write\n\
           c: func();\n\
         }\n",
    )
    .unwrap();
    let problems = Contract::load_dir(dir.path()).unwrap().lint();
    let lines: Vec<_> = problems.iter().map(|p| p.location.line).collect();
    assert_eq!(lines, [3, 4, 5, 8], "{problems:#?}");
}

#[test]
fn parse_errors_keep_file_and_line() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parse-error");
    let err = Contract::load_dir(&dir).unwrap_err();
    let ContractError::Wit { message, location } = &err else {
        panic!("{err:?}")
    };
    let location = location.as_ref().unwrap();
    assert_eq!(location.file, dir.join("api.wit"));
    assert_eq!(location.line, 6, "{message}");
    assert!(message.contains("api.wit:6:"), "{message}");
}

#[test]
fn missing_directory_is_an_error() {
    let err = Contract::load_dir(Path::new("/no/such/wit/dir")).unwrap_err();
    assert!(matches!(err, ContractError::NotADirectory { .. }), "{err}");
}

#[test]
fn sources_from_memory_match_the_directory() {
    let text = std::fs::read_to_string(fixture("clean").join("api.wit")).unwrap();
    let contract = Contract::from_sources(Path::new("mem"), &[("api.wit", &text)]).unwrap();
    let on_disk = Contract::load_dir(&fixture("clean")).unwrap();
    assert_eq!(contract.summary(), on_disk.summary());
    let open = contract.function("files", "open").unwrap();
    assert_eq!(open.location.to_string(), "mem/api.wit:43");

    let err = Contract::from_sources(Path::new("mem"), &[("a/b/c.wit", "")]).unwrap_err();
    assert!(matches!(err, ContractError::Layout { .. }), "{err}");
    let err =
        Contract::from_sources(Path::new("mem"), &[("api.wit", "package x:y;\nbad")]).unwrap_err();
    assert!(err.to_string().contains("mem/api.wit:2:1"), "{err}");
}

#[test]
fn embedded_contract_lints_clean() {
    let contract = Contract::embedded();
    let problems: Vec<String> = contract.lint().iter().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let summary = contract.summary();
    assert!(summary.functions > 0);
    assert_eq!(summary.functions, summary.annotated);
    assert!(!EMBEDDED_FILES.is_empty());
}

#[test]
fn embedded_contract_equals_the_directory() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let on_disk = Contract::load_dir(&dir).unwrap();
    let embedded = Contract::embedded();
    assert_eq!(on_disk.summary(), embedded.summary());
    let names = |c: &Contract| -> Vec<String> {
        c.interfaces()
            .iter()
            .flat_map(|i| {
                i.functions
                    .iter()
                    .map(move |f| format!("{}#{} {}", i.qualified_name(), f.name, f.requirement))
            })
            .collect()
    };
    assert_eq!(names(&on_disk), names(embedded));
}

/// wit-parser renders an error on a line longer than 500 characters as
/// `file:line:col: message`, without the `-->` pointer: the location
/// comes from the error's span, not from the text.
#[test]
fn errors_on_long_lines_keep_their_location() {
    let text = format!(
        "package t:long;\n\ninterface api {{\n  f: func() -> no-such-type;{}\n}}\n",
        " ".repeat(600)
    );
    let line_of = |err: &ContractError| match err {
        ContractError::Wit { location, message } => {
            assert!(!message.contains("-->"), "{message}");
            location.as_ref().map(|l| (l.file.clone(), l.line))
        }
        other => panic!("{other:?}"),
    };

    let err = Contract::from_sources(Path::new("mem"), &[("api.wit", &text)]).unwrap_err();
    assert_eq!(line_of(&err), Some(("mem/api.wit".into(), 4)), "{err}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api.wit"), &text).unwrap();
    let err = Contract::load_dir(dir.path()).unwrap_err();
    assert_eq!(
        line_of(&err),
        Some((dir.path().join("api.wit"), 4)),
        "{err}"
    );

    // A syntax error and an unresolved package are located too.
    let err = Contract::from_sources(
        Path::new("mem"),
        &[(
            "api.wit",
            &format!("package t:long;\nbad{}", " ".repeat(600)),
        )],
    )
    .unwrap_err();
    assert_eq!(line_of(&err).map(|(_, line)| line), Some(2), "{err}");
    let err = Contract::from_sources(
        Path::new("mem"),
        &[(
            "api.wit",
            &format!(
                "package t:long;\ninterface api {{\n  use other:pkg/types.{{x}};{}\n  f: func(a: x);\n}}\n",
                " ".repeat(600)
            ),
        )],
    )
    .unwrap_err();
    assert_eq!(line_of(&err).map(|(_, line)| line), Some(3), "{err}");
}
