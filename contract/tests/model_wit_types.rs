//! The structured WIT types of the contract model (`model::WitType`): what
//! the conversion from wit-parser gives for every form, and that printing
//! them gives back the WIT the contract's authors wrote.

use std::path::Path;

use airssys_contract::model::{Contract, EMBEDDED_FILES, NamedType, NamedTypeKind, WitType};

const API: &str = r#"package test:kinds@1.0.0;

interface types {
    variant error { denied(string), other(string) }
    resource bucket;
}

interface kinds {
    use types.{error, bucket};

    record point { x: s32, y: s32 }
    variant shape { circle(u32), square(point) }
    enum color { red, green }
    flags access { read, write }
    resource file {
        constructor(path: string);
        read: func(len: u32) -> list<u8>;
    }
    type bytes = list<u8>;
    type count = u32;
    type place = point;
    type file-ref = borrow<file>;

    named: func(a: point, b: shape, c: color, d: access, e: file, f: own<file>,
        g: borrow<file>, h: bytes, i: count, j: place, k: file-ref, l: bucket, m: borrow<bucket>)
        -> result<_, error>;
    nested: func(a: list<option<tuple<u8, string>>>, b: result<list<u8>>, c: result,
        d: list<u8, 3>, e: map<string, point>, f: future<bytes>, g: stream, h: error-context)
        -> result<option<point>, error>;
}
"#;

fn contract() -> Contract {
    Contract::from_sources(Path::new("mem"), &[("api.wit", API)])
        .unwrap_or_else(|e| panic!("the fixture contract loads: {e}"))
}

fn named(name: &str, kind: NamedTypeKind) -> WitType {
    WitType::Named(NamedType {
        name: name.into(),
        kind,
    })
}

fn resource(name: &str) -> NamedType {
    NamedType {
        name: name.into(),
        kind: NamedTypeKind::Resource,
    }
}

fn boxed(ty: WitType) -> Box<WitType> {
    Box::new(ty)
}

#[test]
fn named_types_carry_their_kind() {
    let contract = contract();
    let f = contract
        .function("kinds", "named")
        .expect("`named` is a host function");
    let types: Vec<&WitType> = f.params.iter().map(|p| &p.ty).collect();
    let point = named("point", NamedTypeKind::Record);
    let used_error = named(
        "error",
        NamedTypeKind::Alias(boxed(named("error", NamedTypeKind::Variant))),
    );
    let used_bucket = NamedType {
        name: "bucket".into(),
        kind: NamedTypeKind::Alias(boxed(WitType::Named(resource("bucket")))),
    };
    assert_eq!(
        types,
        [
            &point,
            &named("shape", NamedTypeKind::Variant),
            &named("color", NamedTypeKind::Enum),
            &named("access", NamedTypeKind::Flags),
            // An owned handle is written by the resource's name, with or
            // without `own<..>`.
            &WitType::Own(resource("file")),
            &WitType::Own(resource("file")),
            &WitType::Borrow(resource("file")),
            &named(
                "bytes",
                NamedTypeKind::Alias(boxed(WitType::List(boxed(WitType::U8))))
            ),
            &named("count", NamedTypeKind::Alias(boxed(WitType::U32))),
            &named("place", NamedTypeKind::Alias(boxed(point.clone()))),
            &named(
                "file-ref",
                NamedTypeKind::Alias(boxed(WitType::Borrow(resource("file"))))
            ),
            &WitType::Own(used_bucket.clone()),
            &WitType::Borrow(used_bucket),
        ]
    );
    assert_eq!(
        f.result,
        Some(WitType::Result {
            ok: None,
            err: Some(boxed(used_error)),
        })
    );
    let written: Vec<String> = types.iter().map(ToString::to_string).collect();
    assert_eq!(
        written,
        [
            "point",
            "shape",
            "color",
            "access",
            "file",
            "file",
            "borrow<file>",
            "bytes",
            "count",
            "place",
            "file-ref",
            "bucket",
            "borrow<bucket>",
        ]
    );
}

#[test]
fn constructed_types_nest() {
    let contract = contract();
    let f = contract
        .function("kinds", "nested")
        .expect("`nested` is a host function");
    let types: Vec<&WitType> = f.params.iter().map(|p| &p.ty).collect();
    let point = named("point", NamedTypeKind::Record);
    let bytes = named(
        "bytes",
        NamedTypeKind::Alias(boxed(WitType::List(boxed(WitType::U8)))),
    );
    assert_eq!(
        types,
        [
            &WitType::List(boxed(WitType::Option(boxed(WitType::Tuple(vec![
                WitType::U8,
                WitType::String
            ]))))),
            &WitType::Result {
                ok: Some(boxed(WitType::List(boxed(WitType::U8)))),
                err: None
            },
            &WitType::Result {
                ok: None,
                err: None
            },
            &WitType::FixedLengthList(boxed(WitType::U8), 3),
            &WitType::Map(boxed(WitType::String), boxed(point.clone())),
            &WitType::Future(Some(boxed(bytes))),
            &WitType::Stream(None),
            &WitType::ErrorContext,
        ]
    );
    let written: Vec<String> = types.iter().map(ToString::to_string).collect();
    assert_eq!(
        written,
        [
            "list<option<tuple<u8, string>>>",
            "result<list<u8>>",
            "result",
            "list<u8, 3>",
            "map<string, point>",
            "future<bytes>",
            "stream",
            "error-context",
        ]
    );
    assert_eq!(
        f.result.as_ref().map(ToString::to_string).as_deref(),
        Some("result<option<point>, error>")
    );
}

#[test]
fn dealias_handles_and_definitions() {
    let contract = contract();
    let f = contract
        .function("kinds", "named")
        .expect("`named` is a host function");
    let ty = |name: &str| {
        &f.params
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("parameter `{name}`"))
            .ty
    };
    // `place` → `point`; `bytes` → `list<u8>`; a record is itself.
    assert_eq!(ty("j").dealias(), ty("a"));
    assert_eq!(ty("h").dealias(), &WitType::List(boxed(WitType::U8)));
    assert_eq!(ty("a").dealias(), ty("a"));
    assert_eq!(ty("h").definition_text(), "list<u8>");
    assert_eq!(ty("k").definition_text(), "borrow<file>");
    assert_eq!(ty("a").definition_text(), "point");
    // Handles name their resource as the type writes it.
    for (param, resource) in [
        ("e", Some("file")),
        ("f", Some("file")),
        ("g", Some("file")),
        ("k", Some("file")),
        ("l", Some("bucket")),
        ("m", Some("bucket")),
        ("a", None),
        ("h", None),
    ] {
        assert_eq!(ty(param).handle_resource(), resource, "parameter `{param}`");
    }
    // A constructor's and a method's types.
    let read = contract
        .function("kinds", "[method]file.read")
        .expect("a method");
    assert_eq!(read.params[0].ty, WitType::U32);
    let new = contract
        .function("kinds", "[constructor]file")
        .expect("a constructor");
    assert_eq!(new.params[0].ty, WitType::String);
}

/// Every host function of the embedded contract prints its parameter and
/// result types as `wit/` writes them: the printer is checked against the
/// source, not against itself.
#[test]
fn embedded_contract_prints_its_types_as_written() {
    let contract = Contract::embedded();
    let mut checked = 0;
    for interface in contract.interfaces() {
        for f in &interface.functions {
            let file = f
                .location
                .file
                .strip_prefix("wit")
                .expect("embedded locations name `wit/...`");
            let (_, text) = EMBEDDED_FILES
                .iter()
                .find(|(path, _)| Path::new(path) == file)
                .expect("the function's file is embedded");
            let (params, result) = signature_at(text, f.location.line);
            let printed: Vec<String> = f
                .params
                .iter()
                .map(|p| format!("{}: {}", p.name, p.ty))
                .collect();
            assert_eq!(printed, params, "{} at {}", f.name, f.location);
            assert_eq!(
                f.result.as_ref().map(ToString::to_string),
                result,
                "{} at {}",
                f.name,
                f.location
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} functions checked");
}

/// The parameters (`name: type`, whitespace normalised) and the result of
/// the function whose declaration starts at `line` (1-based).
fn signature_at(text: &str, line: u32) -> (Vec<String>, Option<String>) {
    let from = text
        .lines()
        .skip(line as usize - 1)
        .collect::<Vec<_>>()
        .join(" ");
    let decl = &from[..from.find(';').expect("a declaration ends with `;`")];
    let open = decl.find('(').expect("a parameter list");
    let mut depth = 0;
    let close = decl[open..]
        .char_indices()
        .find_map(|(i, c)| {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(open + i)
        })
        .expect("a closing parenthesis");
    let params = split_top_level(&decl[open + 1..close])
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| normalise(&p))
        .collect();
    let result = decl[close + 1..]
        .trim()
        .strip_prefix("->")
        .map(|r| normalise(r.trim()));
    (params, result)
}

fn split_top_level(list: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut depth = 0;
    for c in list.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        parts.last_mut().expect("one part").push(c);
    }
    parts.into_iter().map(|p| p.trim().to_owned()).collect()
}

/// Single spaces, as the printer writes: `a: list<u8>`, `result<_, error>`.
fn normalise(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
}
