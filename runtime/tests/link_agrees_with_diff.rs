//! Real linking agrees with the WIT diff's importer verdict.
//!
//! For one case per rule family: a component is built from OLD (a dummy
//! core module + embedded metadata, encoded by wit-component) importing the
//! interface; a wasmtime 48 host is typed with NEW through `func_wrap` and
//! Rust types matching the NEW signatures. `instantiate_pre` must link
//! exactly when the engine says the change is compatible for importers,
//! and the load-time check (`check_world_imports` on the decoded
//! component) must agree too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use airssys_contract::compat::{check_world_imports, diff};
use wasmtime::component::{Component, ComponentType, Lift, Linker, Lower, Resource, ResourceType};
use wasmtime::{Config, Engine};
use wit_parser::Resolve;
use wit_parser::decoding::{DecodedWasm, decode};

type Host = fn(&mut Linker<()>) -> wasmtime::Result<()>;

fn resolve(src: &str) -> Resolve {
    let mut r = Resolve::new();
    r.push_str("test.wit", src).expect("test WIT parses");
    r
}

/// A component built against `old` that imports everything world `w` imports.
fn component_from(old: &str) -> Vec<u8> {
    let r = resolve(old);
    let pkg = r.packages.iter().next().expect("one package").0;
    let world = r.select_world(&[pkg], Some("w")).expect("world w");
    support::dummy_component(&r, world)
}

/// Does wasmtime link the component against the host? (`Err` carries
/// wasmtime's reason.)
fn links(engine: &Engine, bytes: &[u8], host: Host) -> Result<(), String> {
    let component = Component::new(engine, bytes).expect("compile component");
    let mut linker = Linker::<()>::new(engine);
    host(&mut linker).expect("define host");
    linker
        .instantiate_pre(&component)
        .map(|_| ())
        .map_err(|e| format!("{e:#}"))
}

/// The engine's importer verdict for OLD → NEW: does any stable change
/// break importers?
fn breaks_importers(old: &str, new: &str) -> bool {
    diff(&resolve(old), &resolve(new))
        .changes
        .iter()
        .any(|c| !c.unstable && c.importers.is_breaking())
}

/// The load-time check on the decoded component against the NEW contract.
fn load_time_mismatches(bytes: &[u8], new: &str) -> Vec<String> {
    let DecodedWasm::Component(decoded, world) = decode(bytes).expect("decode component") else {
        panic!("not a component");
    };
    check_world_imports(&decoded, world, &resolve(new))
        .into_iter()
        .map(|m| m.message)
        .collect()
}

struct Case {
    name: &'static str,
    old: String,
    new: String,
    host: Host,
}

fn pkg(version: &str, body: &str) -> String {
    format!(
        "package t:p@{version};\n\ninterface api {{\n{body}\n}}\n\nworld w {{\n  import api;\n}}\n"
    )
}

#[derive(ComponentType, Lift, Lower)]
#[component(record)]
struct Entry {
    key: String,
    size: u64,
}

#[derive(ComponentType, Lift, Lower)]
#[component(variant)]
enum Error {
    #[component(name = "denied")]
    Denied(String),
    #[component(name = "other")]
    Other(String),
}

#[allow(dead_code)] // only its type is checked against the component
#[derive(ComponentType, Lift, Lower, Clone, Copy)]
#[component(enum)]
#[repr(u8)]
enum Mode {
    #[component(name = "read")]
    Read,
    #[component(name = "modify")]
    Modify,
}

#[derive(ComponentType, Lift, Lower)]
#[component(record)]
struct Coord {
    x: u32,
    y: u32,
}

struct Iter;

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "func-param-type-changed",
            old: pkg("1.0.0", "  get: func(key: string) -> u32;"),
            new: pkg("1.1.0", "  get: func(key: u32) -> u32;"),
            host: |l| l.instance("t:p/api@1.1.0")?.func_wrap("get", |_, (_k,): (u32,)| Ok((0u32,))),
        },
        Case {
            name: "func-result-changed",
            old: pkg("1.0.0", "  size: func() -> u32;"),
            new: pkg("1.1.0", "  size: func() -> u64;"),
            host: |l| l.instance("t:p/api@1.1.0")?.func_wrap("size", |_, (): ()| Ok((0u64,))),
        },
        Case {
            name: "func-added",
            old: pkg("1.0.0", "  get: func(key: string) -> u32;"),
            new: pkg("1.1.0", "  get: func(key: string) -> u32;\n  @since(version = 1.1.0)\n  set: func(key: string, v: u32);"),
            host: |l| {
                let mut i = l.instance("t:p/api@1.1.0")?;
                i.func_wrap("get", |_, (_k,): (String,)| Ok((0u32,)))?;
                i.func_wrap("set", |_, (_k, _v): (String, u32)| Ok(()))
            },
        },
        Case {
            name: "func-removed",
            old: pkg("1.0.0", "  get: func(key: string) -> u32;\n  del: func(key: string);"),
            new: pkg("2.0.0", "  get: func(key: string) -> u32;"),
            host: |l| l.instance("t:p/api@2.0.0")?.func_wrap("get", |_, (_k,): (String,)| Ok((0u32,))),
        },
        Case {
            name: "func-removed-same-track",
            old: pkg("1.0.0", "  get: func(key: string) -> u32;\n  del: func(key: string);"),
            new: pkg("1.1.0", "  get: func(key: string) -> u32;"),
            host: |l| l.instance("t:p/api@1.1.0")?.func_wrap("get", |_, (_k,): (String,)| Ok((0u32,))),
        },
        Case {
            name: "record-field-added",
            old: pkg("1.0.0", "  record entry { key: string }\n  put: func(e: entry);"),
            new: pkg("1.1.0", "  record entry { key: string, size: u64 }\n  put: func(e: entry);"),
            host: |l| l.instance("t:p/api@1.1.0")?.func_wrap("put", |_, (_e,): (Entry,)| Ok(())),
        },
        Case {
            name: "variant-case-added",
            old: pkg("1.0.0", "  variant error { denied(string) }\n  get: func() -> result<u32, error>;"),
            new: pkg("1.1.0", "  variant error { denied(string), other(string) }\n  get: func() -> result<u32, error>;"),
            host: |l| {
                l.instance("t:p/api@1.1.0")?
                    .func_wrap("get", |_, (): ()| Ok((Err::<u32, Error>(Error::Denied(String::new())),)))
            },
        },
        Case {
            name: "enum-case-renamed",
            old: pkg("1.0.0", "  enum mode { read, write }\n  open: func(m: mode);"),
            new: pkg("1.1.0", "  enum mode { read, modify }\n  open: func(m: mode);"),
            host: |l| l.instance("t:p/api@1.1.0")?.func_wrap("open", |_, (_m,): (Mode,)| Ok(())),
        },
        Case {
            name: "type-renamed (resource)",
            old: pkg("1.0.0", "  resource cursor {\n    next: func() -> u32;\n  }"),
            new: pkg("1.1.0", "  resource iter {\n    next: func() -> u32;\n  }"),
            host: |l| {
                let mut i = l.instance("t:p/api@1.1.0")?;
                i.resource("iter", ResourceType::host::<Iter>(), |_, _| Ok(()))?;
                i.func_wrap("[method]iter.next", |_, (_s,): (Resource<Iter>,)| Ok((0u32,)))
            },
        },
        Case {
            name: "package-track-changed",
            old: pkg("1.0.0", "  get: func(key: string) -> u32;"),
            new: pkg("2.0.0", "  get: func(key: string) -> u32;"),
            host: |l| l.instance("t:p/api@2.0.0")?.func_wrap("get", |_, (_k,): (String,)| Ok((0u32,))),
        },
        Case {
            name: "minor version bump, same content",
            old: pkg("1.0.0", "  get: func(key: string) -> u32;"),
            new: pkg("1.4.2", "  get: func(key: string) -> u32;"),
            host: |l| l.instance("t:p/api@1.4.2")?.func_wrap("get", |_, (_k,): (String,)| Ok((0u32,))),
        },
        Case {
            name: "0.x patch bump",
            old: pkg("0.2.1", "  get: func(key: string) -> u32;"),
            new: pkg("0.2.3", "  get: func(key: string) -> u32;"),
            host: |l| l.instance("t:p/api@0.2.3")?.func_wrap("get", |_, (_k,): (String,)| Ok((0u32,))),
        },
        Case {
            name: "0.x track changed",
            old: pkg("0.2.0", "  get: func(key: string) -> u32;"),
            new: pkg("0.3.0", "  get: func(key: string) -> u32;"),
            host: |l| l.instance("t:p/api@0.3.0")?.func_wrap("get", |_, (_k,): (String,)| Ok((0u32,))),
        },
        Case {
            name: "interface-removed",
            old: "package t:p@1.0.0;\n\ninterface api {\n  get: func() -> u32;\n}\n\ninterface extra {\n  ping: func();\n}\n\nworld w {\n  import api;\n  import extra;\n}\n".to_string(),
            new: "package t:p@1.1.0;\n\ninterface api {\n  get: func() -> u32;\n}\n\nworld w {\n  import api;\n}\n".to_string(),
            host: |l| l.instance("t:p/api@1.1.0")?.func_wrap("get", |_, (): ()| Ok((0u32,))),
        },
    ]
}

#[test]
fn wasmtime_links_exactly_when_the_importer_verdict_is_compatible() {
    let engine = Engine::new(&Config::new()).expect("engine");
    let mut failures = Vec::new();
    for case in cases() {
        let bytes = component_from(&case.old);
        let breaking = breaks_importers(&case.old, &case.new);
        let linked = links(&engine, &bytes, case.host);
        let mismatches = load_time_mismatches(&bytes, &case.new);
        println!(
            "{}: verdict {}, wasmtime {}, load-time check {:?}",
            case.name,
            if breaking { "breaking" } else { "compatible" },
            match &linked {
                Ok(()) => "links".to_string(),
                Err(e) => format!("refuses ({e})"),
            },
            mismatches
        );
        if linked.is_ok() == breaking {
            failures.push(format!(
                "{}: wasmtime {:?} but the verdict says breaking = {breaking}",
                case.name, linked
            ));
        }
        if mismatches.is_empty() == breaking {
            failures.push(format!(
                "{}: load-time check {mismatches:?} but the verdict says breaking = {breaking}",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Where wasmtime is more lenient than the component model: it does not
/// check the names of non-resource types an imported instance exports, nor
/// parameter names of host functions typed from Rust (a tuple has no names).
/// The engine still calls both changes breaking (composition tools and
/// generated bindings do check them); this test pins wasmtime's behaviour so
/// a change there is noticed.
#[test]
fn wasmtime_is_lenient_on_type_and_parameter_names() {
    let engine = Engine::new(&Config::new()).expect("engine");
    let renamed_record_old = pkg(
        "1.0.0",
        "  record point { x: u32, y: u32 }\n  move-to: func(p: point);",
    );
    let renamed_record_new = pkg(
        "1.1.0",
        "  record coord { x: u32, y: u32 }\n  move-to: func(p: coord);",
    );
    let host: Host = |l| {
        l.instance("t:p/api@1.1.0")?
            .func_wrap("move-to", |_, (_p,): (Coord,)| Ok(()))
    };
    assert!(breaks_importers(&renamed_record_old, &renamed_record_new));
    assert_eq!(
        links(&engine, &component_from(&renamed_record_old), host),
        Ok(())
    );

    let renamed_param_old = pkg("1.0.0", "  get: func(key: string) -> u32;");
    let renamed_param_new = pkg("1.1.0", "  get: func(name: string) -> u32;");
    let host: Host = |l| {
        l.instance("t:p/api@1.1.0")?
            .func_wrap("get", |_, (_n,): (String,)| Ok((0u32,)))
    };
    assert!(breaks_importers(&renamed_param_old, &renamed_param_new));
    assert_eq!(
        links(&engine, &component_from(&renamed_param_old), host),
        Ok(())
    );
}

#[test]
fn load_time_messages_name_interface_function_and_both_types() {
    let old = pkg("1.0.0", "  get: func(key: string) -> u32;");
    let new = pkg("1.0.0", "  get: func(key: u32) -> u32;");
    let messages = load_time_mismatches(&component_from(&old), &new);
    assert_eq!(
        messages,
        vec![
            "interface t:p/api@1.0.0: function `get`: the component expects parameter `key: string`, the host has `key: u32`"
                .to_string()
        ]
    );
}
