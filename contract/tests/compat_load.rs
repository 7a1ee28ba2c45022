//! The load-time compatibility check (`check_import`,
//! `check_world_imports`, `compare_interfaces`) on small Resolves built
//! from WIT text: a host contract `test:svc@1.2.0` and components that
//! import it as written, with a changed signature, a missing function, on
//! another semver track, newer than the host, on `0.x` tracks, and next to
//! imports the host does not serve (WASI).

use airssys_contract::compat::{
    ChangeRule, Mismatch, check_import, check_world_imports, compare_interfaces,
};
use wit_parser::{InterfaceId, Resolve, WorldId};

/// The host's `store` interface at a version, with extra items a component
/// does not need to know about.
fn host_svc(version: &str) -> String {
    format!(
        "package test:svc@{version};
         interface store {{
             resource bucket {{
                 get: func(key: string) -> option<list<u8>>;
             }}
             variant error {{ denied(string), other(string) }}
             open: func(name: string) -> result<bucket, error>;
             get: func(key: string) -> option<list<u8>>;
             put: func(key: string, value: list<u8>) -> result<_, error>;
             delete: func(key: string);
             extra: func() -> u32;
         }}
         interface clock {{ now: func() -> u64; }}"
    )
}

/// A component's view of `test:svc`: `store_body` is the interface body.
fn component_svc(version: &str, store_body: &str) -> String {
    format!("package test:svc@{version}; interface store {{ {store_body} }}")
}

/// The component's world, importing `test:svc/store` at `version` and
/// `extra_imports` (full `import ...;` lines).
fn component_world(version: &str, extra_imports: &str) -> String {
    format!("package test:app; world comp {{ import test:svc/store@{version}; {extra_imports} }}")
}

/// The same functions the host has, as the component was built.
const SAME_BODY: &str = "
    resource bucket { get: func(key: string) -> option<list<u8>>; }
    variant error { denied(string), other(string) }
    open: func(name: string) -> result<bucket, error>;
    get: func(key: string) -> option<list<u8>>;
    put: func(key: string, value: list<u8>) -> result<_, error>;
    delete: func(key: string);
";

fn resolve(sources: &[String]) -> Resolve {
    let mut r = Resolve::new();
    for (i, text) in sources.iter().enumerate() {
        if let Err(e) = r.push_str(format!("src{i}.wit"), text) {
            panic!("test WIT does not resolve: {}", r.render_error(&e));
        }
    }
    r
}

fn host(versions: &[&str]) -> Resolve {
    resolve(&versions.iter().map(|v| host_svc(v)).collect::<Vec<_>>())
}

/// A component importing `test:svc/store@version` whose `store` has `body`.
fn component(version: &str, body: &str) -> (Resolve, WorldId) {
    component_with(version, body, &[], "")
}

fn component_with(
    version: &str,
    body: &str,
    deps: &[&str],
    extra_imports: &str,
) -> (Resolve, WorldId) {
    let mut sources: Vec<String> = deps.iter().map(|d| (*d).to_string()).collect();
    sources.push(component_svc(version, body));
    sources.push(component_world(version, extra_imports));
    let r = resolve(&sources);
    let world = r
        .worlds
        .iter()
        .find(|(_, w)| w.name == "comp")
        .map(|(id, _)| id)
        .expect("the component world exists");
    (r, world)
}

/// The interface `name` of package `ns:pkg` (any version) in `r`.
fn interface(r: &Resolve, ns: &str, pkg: &str, name: &str) -> InterfaceId {
    r.packages
        .iter()
        .find(|(_, p)| p.name.namespace == ns && p.name.name == pkg)
        .and_then(|(_, p)| p.interfaces.get(name).copied())
        .unwrap_or_else(|| panic!("{ns}:{pkg}/{name} exists"))
}

fn store(r: &Resolve) -> InterfaceId {
    interface(r, "test", "svc", "store")
}

fn rules(ms: &[Mismatch]) -> Vec<ChangeRule> {
    ms.iter().map(|m| m.rule).collect()
}

/// The one mismatch of a check, failing with all of them otherwise.
fn single(ms: Vec<Mismatch>) -> Mismatch {
    match <[Mismatch; 1]>::try_from(ms) {
        Ok([m]) => m,
        Err(ms) => panic!("expected one mismatch, got {ms:#?}"),
    }
}

#[test]
fn the_same_interface_is_served() {
    let h = host(&["1.2.0"]);
    let (c, world) = component("1.2.0", SAME_BODY);
    assert_eq!(check_world_imports(&c, world, &h), []);
    assert_eq!(check_import(&c, store(&c), &h), []);
}

#[test]
fn an_older_component_using_fewer_functions_is_served() {
    // The host's extra functions, types and interface are not mismatches.
    let h = host(&["1.2.0"]);
    let (c, world) = component("1.1.0", "get: func(key: string) -> option<list<u8>>;");
    assert_eq!(check_world_imports(&c, world, &h), []);
}

#[test]
fn a_changed_parameter_type_names_interface_function_and_both_types() {
    let h = host(&["1.2.0"]);
    let body = SAME_BODY.replace(
        "    get: func(key: string) -> option<list<u8>>;\n",
        "    get: func(key: u32) -> option<list<u8>>;\n",
    );
    assert_ne!(body, SAME_BODY, "the fixture edit applies");
    let (c, world) = component("1.2.0", &body);
    let m = single(check_world_imports(&c, world, &h));
    assert_eq!(m.rule, ChangeRule::FuncParamTypeChanged);
    assert_eq!(m.interface, "test:svc/store@1.2.0");
    assert_eq!(
        m.message,
        "interface test:svc/store@1.2.0: function `get`: the component expects \
         parameter `key: u32`, the host has `key: string`"
    );
    assert_eq!(m.to_string(), m.message);
    // check_import on the interface alone finds the same.
    assert_eq!(check_import(&c, store(&c), &h), [m]);
}

#[test]
fn a_changed_method_and_result_are_reported_per_function() {
    let h = host(&["1.2.0"]);
    let body = SAME_BODY
        .replace(
            "resource bucket { get: func(key: string)",
            "resource bucket { get: func(key: list<u8>)",
        )
        .replace(
            "put: func(key: string, value: list<u8>) -> result<_, error>;",
            "put: func(key: string, value: list<u8>) -> result<u64, error>;",
        );
    let (c, world) = component("1.2.0", &body);
    let ms = check_world_imports(&c, world, &h);
    let mut found = rules(&ms);
    found.sort();
    let mut want = vec![
        ChangeRule::FuncParamTypeChanged,
        ChangeRule::FuncResultChanged,
    ];
    want.sort();
    assert_eq!(found, want, "{ms:#?}");
    let method = ms
        .iter()
        .find(|m| m.rule == ChangeRule::FuncParamTypeChanged)
        .expect("the method mismatch");
    assert!(
        method.message.contains("method `bucket.get`")
            && method.message.contains("`key: list<u8>`")
            && method.message.contains("`key: string`"),
        "{}",
        method.message
    );
    let put = ms
        .iter()
        .find(|m| m.rule == ChangeRule::FuncResultChanged)
        .expect("the result mismatch");
    assert!(
        put.message.contains("function `put`")
            && put.message.contains("result<u64, error>")
            && put.message.contains("result<_, error>"),
        "{}",
        put.message
    );
}

#[test]
fn a_function_the_host_lacks_is_a_removal() {
    let h = host(&["1.2.0"]);
    let body = format!("{SAME_BODY} rename: func(old-key: string, new-key: string);");
    let (c, world) = component("1.2.0", &body);
    let m = single(check_world_imports(&c, world, &h));
    assert_eq!(m.rule, ChangeRule::FuncRemoved);
    assert_eq!(
        m.message,
        "interface test:svc/store@1.2.0: function `rename` is imported by the component \
         but the host lacks it"
    );
}

#[test]
fn another_major_track_is_not_served() {
    let h = host(&["1.2.0"]);
    let (c, world) = component("2.0.0", SAME_BODY);
    let m = single(check_world_imports(&c, world, &h));
    assert_eq!(m.rule, ChangeRule::PackageTrackChanged);
    assert_eq!(m.interface, "test:svc/store@2.0.0");
    assert_eq!(
        m.message,
        "interface test:svc/store@2.0.0: the component needs track @2, the host offers @1 \
         (version 1.2.0)"
    );
}

#[test]
fn a_component_newer_than_the_host_is_not_served() {
    let h = host(&["1.2.0"]);
    let (c, world) = component("1.3.0", SAME_BODY);
    let m = single(check_world_imports(&c, world, &h));
    assert_eq!(m.rule, ChangeRule::PackageTrackChanged);
    assert_eq!(
        m.message,
        "interface test:svc/store@1.3.0: the component needs version 1.3.0 or newer, \
         the host has 1.2.0 (version 1.2.0)"
    );
}

#[test]
fn zero_x_tracks_are_minor_versions() {
    let h = host(&["0.2.3"]);
    let (c, world) = component("0.2.1", SAME_BODY);
    assert_eq!(check_world_imports(&c, world, &h), []);

    let (c, world) = component("0.3.0", SAME_BODY);
    let m = single(check_world_imports(&c, world, &h));
    assert_eq!(m.rule, ChangeRule::PackageTrackChanged);
    assert!(
        m.message
            .ends_with("the component needs track @0.3, the host offers @0.2 (version 0.2.3)"),
        "{}",
        m.message
    );

    let (c, world) = component("0.2.4", SAME_BODY);
    let m = single(check_world_imports(&c, world, &h));
    assert!(
        m.message
            .ends_with("needs version 0.2.4 or newer, the host has 0.2.3 (version 0.2.3)"),
        "{}",
        m.message
    );
}

#[test]
fn the_host_version_on_the_component_track_serves_it() {
    // The host carries 1.2.0 and 2.1.0; 2.x changed every `get`'s key to u64.
    let to_v2 = |text: &str| text.replace("get: func(key: string)", "get: func(key: u64)");
    let v2 = to_v2(&host_svc("2.1.0"));
    assert_ne!(v2, host_svc("2.1.0"), "the fixture edit applies");
    let h = resolve(&[host_svc("1.2.0"), v2]);

    let (c, world) = component("1.0.0", SAME_BODY);
    assert_eq!(check_world_imports(&c, world, &h), []);

    let (c, world) = component("2.0.0", &to_v2(SAME_BODY));
    assert_eq!(check_world_imports(&c, world, &h), []);

    // A 2.x component built with the 1.x signatures is checked against 2.1.0.
    let (c, world) = component("2.0.0", SAME_BODY);
    let ms = check_world_imports(&c, world, &h);
    assert_eq!(rules(&ms), [ChangeRule::FuncParamTypeChanged; 2], "{ms:#?}");
    for m in &ms {
        assert!(
            m.message
                .contains("expects parameter `key: string`, the host has `key: u64`"),
            "{}",
            m.message
        );
    }
}

#[test]
fn the_highest_host_version_on_the_track_serves_it() {
    // The host carries 1.2.0 and 1.4.0, which adds `watch`. Both serve a
    // 1.1.0 component; the check must pick 1.4.0, as wasmtime does, or
    // `watch` would be missing.
    let v14 = host_svc("1.4.0").replace("extra: func()", "watch: func(key: string); extra: func()");
    assert_ne!(v14, host_svc("1.4.0"), "the fixture edit applies");
    let body = format!("{SAME_BODY} watch: func(key: string);");
    for hosts in [
        [host_svc("1.2.0"), v14.clone()],
        [v14.clone(), host_svc("1.2.0")],
    ] {
        let h = resolve(&hosts);
        for version in ["1.1.0", "1.3.0"] {
            let (c, world) = component(version, &body);
            assert_eq!(check_world_imports(&c, world, &h), [], "{version}");
        }
    }
    // Against 1.2.0 alone, `watch` is missing.
    let (c, world) = component("1.1.0", &body);
    let m = single(check_world_imports(&c, world, &host(&["1.2.0"])));
    assert_eq!(m.rule, ChangeRule::FuncRemoved);
    assert!(m.message.contains("function `watch`"), "{}", m.message);
}

#[test]
fn an_unversioned_host_package_does_not_serve_a_versioned_import() {
    let h = resolve(&[host_svc("1.2.0").replace("package test:svc@1.2.0;", "package test:svc;")]);
    let (c, world) = component("1.2.0", SAME_BODY);
    let m = single(check_world_imports(&c, world, &h));
    assert_eq!(m.rule, ChangeRule::PackageTrackChanged);
    assert!(
        m.message
            .ends_with("the component needs track @1, the host offers unversioned (no version)"),
        "{}",
        m.message
    );
}

#[test]
fn an_interface_the_host_package_lacks_is_a_removal() {
    let h = host(&["1.2.0"]);
    let mut sources = vec![format!(
        "{} interface metrics {{ count: func() -> u64; }}",
        component_svc("1.2.0", SAME_BODY)
    )];
    sources.push(
        "package test:app; world comp { import test:svc/store@1.2.0; import test:svc/metrics@1.2.0; }"
            .to_string(),
    );
    let c = resolve(&sources);
    let world = c.worlds.iter().map(|(id, _)| id).next().expect("one world");
    let m = single(check_world_imports(&c, world, &h));
    assert_eq!(m.rule, ChangeRule::InterfaceRemoved);
    assert_eq!(m.interface, "test:svc/metrics@1.2.0");
    assert_eq!(
        m.message,
        "interface test:svc/metrics@1.2.0: the host's package `test:svc@1.2.0` has no \
         interface `metrics`"
    );
}

#[test]
fn imports_of_packages_the_host_does_not_know_are_left_alone() {
    let h = host(&["1.2.0"]);
    let wasi = "package wasi:io@0.2.0; interface streams { resource input-stream; }";
    let (c, world) = component_with(
        "1.2.0",
        SAME_BODY,
        &[wasi],
        "import wasi:io/streams@0.2.0;
         import inline: interface { ping: func(); }
         import log: func(msg: string);",
    );
    assert_eq!(
        c.worlds[world].imports.len(),
        4,
        "the fixture imports four items"
    );
    assert_eq!(check_world_imports(&c, world, &h), []);

    // An inline interface belongs to the component: nothing to check.
    let inline = c.worlds[world]
        .imports
        .values()
        .find_map(|item| match item {
            wit_parser::WorldItem::Interface { id, .. } if c.interfaces[*id].name.is_none() => {
                Some(*id)
            }
            _ => None,
        })
        .expect("the inline import");
    assert_eq!(check_import(&c, inline, &h), []);

    // Asked about directly, the WASI import is one the host cannot serve.
    let streams = interface(&c, "wasi", "io", "streams");
    let m = single(check_import(&c, streams, &h));
    assert_eq!(m.rule, ChangeRule::InterfaceRemoved);
    assert_eq!(
        m.message,
        "interface wasi:io/streams@0.2.0: the host does not provide package `wasi:io`"
    );
}

#[test]
fn mismatches_round_trip_through_json() {
    let h = host(&["1.2.0"]);
    let (c, world) = component("2.0.0", SAME_BODY);
    let m = single(check_world_imports(&c, world, &h));
    let json = serde_json::to_string(&m).expect("a mismatch serializes");
    assert!(json.contains("\"package-track-changed\""), "{json}");
    let back: Mismatch = serde_json::from_str(&json).expect("and reads back");
    assert_eq!(back, m);
}

/// `compare_interfaces` in both directions of `package t:k@1.0.0`'s
/// interface `i` written as `old` and `new`.
fn compare(old: &str, new: &str) -> Vec<airssys_contract::compat::Change> {
    let wrap = |body: &str| resolve(&[format!("package t:k@1.0.0; interface i {{ {body} }}")]);
    let (o, n) = (wrap(old), wrap(new));
    compare_interfaces(
        &o,
        interface(&o, "t", "k", "i"),
        &n,
        interface(&n, "t", "k", "i"),
    )
}

#[test]
fn compare_interfaces_words_every_change_as_old_and_new() {
    let changes = compare(
        "resource r; record p { x: u32 }
         f: func(a: s8, b: s16, c: s32, d: s64, e: f32, f: f64, g: char, h: error-context,
                 i: borrow<r>, j: r, k: list<u8, 4>, l: map<string, u8>, m: result,
                 n: result<u8>, o: future, p: stream<u8>, q: p);",
        "resource r; record p { x: u32 }
         f: func(a: s16, b: s32, c: s64, d: s8, e: f64, f: f32, g: string, h: u8,
                 i: r, j: borrow<r>, k: list<u8, 5>, l: map<string, u16>, m: result<u8>,
                 n: result, o: future<u8>, p: stream, q: tuple<u32>);",
    );
    let messages: Vec<&str> = changes.iter().map(|c| c.message.as_str()).collect();
    let want = [
        "a: s8`, is now `a: s16",
        "b: s16`, is now `b: s32",
        "c: s32`, is now `c: s64",
        "d: s64`, is now `d: s8",
        "e: f32`, is now `e: f64",
        "f: f64`, is now `f: f32",
        "g: char`, is now `g: string",
        "h: error-context`, is now `h: u8",
        "i: borrow<r>`, is now `i: r",
        "j: r`, is now `j: borrow<r>",
        "k: list<u8, 4>`, is now `k: list<u8, 5>",
        "l: map<string, u8>`, is now `l: map<string, u16>",
        "m: result`, is now `m: result<u8>",
        "n: result<u8>`, is now `n: result",
        "o: future`, is now `o: future<u8>",
        "p: stream<u8>`, is now `p: stream",
        "q: p`, is now `q: tuple<u32>",
    ];
    assert_eq!(changes.len(), want.len(), "{messages:#?}");
    for (change, want) in changes.iter().zip(want) {
        assert_eq!(change.rule, ChangeRule::FuncParamTypeChanged);
        assert_eq!(
            change.message,
            format!("function `f`: parameter was `{want}`"),
        );
        assert!(change.importers.is_breaking() && change.exporters.is_breaking());
        assert_eq!(change.location.package, "t:k");
        assert_eq!(change.location.interface.as_deref(), Some("i"));
        assert_eq!(change.location.item.as_deref(), Some("f"));
        assert!(!change.unstable);
    }
}

#[test]
fn compare_interfaces_reports_retargeted_aliases_and_additions() {
    let changes = compare(
        "type al = list<u8>; f: func(q: al);",
        "type al = list<u16>; f: func(q: al); g: func();",
    );
    let summary: Vec<(ChangeRule, &str)> = changes
        .iter()
        .map(|c| (c.rule, c.message.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                ChangeRule::TypeChanged,
                "type `al`: the type was `list<u8>`, is now `list<u16>`"
            ),
            (ChangeRule::FuncAdded, "function `g` was added"),
        ]
    );
    // An addition breaks exporters only.
    assert!(!changes[1].importers.is_breaking() && changes[1].exporters.is_breaking());
}
