//! The WIT text the contract model gives for parameter and result types
//! (`HostFunction::params[i].ty`, `HostFunction::result`): every primitive,
//! every constructed type and named types, as a user would write them.

use std::path::Path;

use airssys_contract::model::{Contract, HostFunction, WitType};

const API: &str = r#"package test:types@1.0.0;

interface shapes {
    resource file {
        read: func(len: u32, into: borrow<file>) -> list<u8>;
        clone-into: static func(f: own<file>) -> file;
    }
    type bytes = list<u8>;
    record point { x: s32, y: s32 }
    variant error { denied(string), other(string) }

    primitives: func(a: bool, b: u8, c: u16, d: u32, e: u64, f: s8, g: s16, h: s32, i: s64,
        j: f32, k: f64, l: char, m: string, n: error-context);
    containers: func(a: list<string>, b: option<u32>, c: tuple<u32, string, point>,
        d: list<u8, 4>, e: map<string, list<point>>, f: option<option<bytes>>);
    results-plain: func() -> result;
    results-ok: func() -> result<u64>;
    results-err: func() -> result<_, error>;
    results-both: func() -> result<option<list<u8>>, error>;
    handles: func(a: borrow<file>, b: file, c: list<own<file>>) -> option<file>;
    named: func(p: point, b: bytes) -> point;
    async-types: func(a: future, b: future<u32>, c: stream, d: stream<list<u8>>)
        -> tuple<future<string>, stream<bytes>>;
    nothing: func();
}
"#;

fn contract() -> Contract {
    Contract::from_sources(Path::new("mem"), &[("api.wit", API)])
        .unwrap_or_else(|e| panic!("the fixture contract loads: {e}"))
}

fn function<'a>(contract: &'a Contract, name: &str) -> &'a HostFunction {
    contract
        .function("shapes", name)
        .unwrap_or_else(|| panic!("function `{name}` is in the model"))
}

/// The WIT text of a result.
fn text(ty: &Option<WitType>) -> Option<String> {
    ty.as_ref().map(ToString::to_string)
}

/// `name: type` for every parameter, in order.
fn params(f: &HostFunction) -> Vec<String> {
    f.params
        .iter()
        .map(|p| format!("{}: {}", p.name, p.ty))
        .collect()
}

#[test]
fn primitives_are_written_by_their_keyword() {
    let contract = contract();
    let f = function(&contract, "primitives");
    assert_eq!(
        params(f),
        [
            "a: bool",
            "b: u8",
            "c: u16",
            "d: u32",
            "e: u64",
            "f: s8",
            "g: s16",
            "h: s32",
            "i: s64",
            "j: f32",
            "k: f64",
            "l: char",
            "m: string",
            "n: error-context",
        ]
    );
    assert_eq!(f.result, None);
}

#[test]
fn constructed_types_nest_their_element_types() {
    let contract = contract();
    let f = function(&contract, "containers");
    assert_eq!(
        params(f),
        [
            "a: list<string>",
            "b: option<u32>",
            "c: tuple<u32, string, point>",
            "d: list<u8, 4>",
            "e: map<string, list<point>>",
            "f: option<option<bytes>>",
        ]
    );
}

#[test]
fn results_are_written_in_all_four_forms() {
    let contract = contract();
    let result = |name: &str| text(&function(&contract, name).result);
    assert_eq!(result("results-plain").as_deref(), Some("result"));
    assert_eq!(result("results-ok").as_deref(), Some("result<u64>"));
    assert_eq!(result("results-err").as_deref(), Some("result<_, error>"));
    assert_eq!(
        result("results-both").as_deref(),
        Some("result<option<list<u8>>, error>")
    );
    assert_eq!(result("nothing"), None);
}

#[test]
fn handles_name_their_resource() {
    let contract = contract();
    let f = function(&contract, "handles");
    assert_eq!(params(f), ["a: borrow<file>", "b: file", "c: list<file>"]);
    assert_eq!(text(&f.result).as_deref(), Some("option<file>"));

    // A method's implicit `self` is not listed; its other handles are.
    let read = function(&contract, "[method]file.read");
    assert_eq!(params(read), ["len: u32", "into: borrow<file>"]);
    assert_eq!(text(&read.result).as_deref(), Some("list<u8>"));
    let clone = function(&contract, "[static]file.clone-into");
    assert_eq!(params(clone), ["f: file"]);
    assert_eq!(text(&clone.result).as_deref(), Some("file"));
}

#[test]
fn named_types_and_aliases_keep_their_names() {
    let contract = contract();
    let f = function(&contract, "named");
    assert_eq!(params(f), ["p: point", "b: bytes"]);
    assert_eq!(text(&f.result).as_deref(), Some("point"));
}

#[test]
fn futures_and_streams_with_and_without_payload() {
    let contract = contract();
    let f = function(&contract, "async-types");
    assert_eq!(
        params(f),
        [
            "a: future",
            "b: future<u32>",
            "c: stream",
            "d: stream<list<u8>>",
        ]
    );
    assert_eq!(
        text(&f.result).as_deref(),
        Some("tuple<future<string>, stream<bytes>>")
    );
}
