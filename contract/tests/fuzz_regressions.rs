//! Inputs the fuzz targets (`fuzz/`, see docs/fuzzing.md) found to break
//! an invariant of this crate, kept as regression tests.

#![allow(clippy::unwrap_used)]

use airssys_contract::capability::{Action, Capability, CapabilityError, Domain, Request};
use airssys_contract::compat::{ChangeRule, diff};
use wit_parser::Resolve;

/// Where an error's span lies in `text`, asserting it lies inside.
fn span(text: &str, e: &CapabilityError) -> (usize, usize) {
    assert!(
        e.offset + e.len <= text.len(),
        "{text:?}: span {}..+{} is outside the {}-byte text: {e}",
        e.offset,
        e.len,
        text.len()
    );
    (e.offset, e.len)
}

/// Found by the `capability` target: a trailing separator was reported one
/// byte past the end of the text (`fs:read:/data/x/` at byte 16 of 16),
/// where `CapabilityError` promises a span inside the input. It is now
/// reported at the separator itself.
#[test]
fn trailing_separator_is_reported_inside_the_text() {
    for text in [
        "fs:read:/data/x/",
        "fs:read:/data/",
        "kv:read:b/",
        "kv:read:b/k/",
        "msg:publish:a.",
        "msg:subscribe:a.b.",
        "proc:spawn:/usr/bin/",
    ] {
        let last = text.len() - 1;
        if let Err(e) = Request::parse(text) {
            assert_eq!(span(text, &e), (last, 1), "request {text:?}: {e}");
        } else {
            panic!("request {text:?} parsed");
        }
        let e = Capability::parse(text).expect_err(text);
        assert_eq!(span(text, &e), (last, 1), "pattern {text:?}: {e}");
    }
    // `//` inside the text keeps pointing at the second separator.
    let e = Request::parse("fs:read:/a//b").expect_err("empty component");
    assert_eq!(span("fs:read:/a//b", &e), (11, 1));
}

/// Found by the `capability` target: an empty port at the end of the text
/// (`net:connect:api.example.coms:`) was reported as one byte past the
/// end. Something missing at the end is an empty span at the end.
#[test]
fn missing_port_is_an_empty_span_at_the_end() {
    for text in ["net:connect:api.example.coms:", "net:connect:[::1]:"] {
        let end = (text.len(), 0);
        let e = Capability::parse(text).expect_err(text);
        assert_eq!(span(text, &e), end, "pattern {text:?}: {e}");
        let e = Request::parse(text).expect_err(text);
        assert_eq!(span(text, &e), end, "request {text:?}: {e}");
    }
    // Patterns only: a CIDR block with no port, a range with no upper end.
    for text in ["net:connect:10.0.0.0/8:", "net:connect:a.com:80-"] {
        let e = Capability::parse(text).expect_err(text);
        assert_eq!(span(text, &e), (text.len(), 0), "{text:?}: {e}");
    }
    // `Request::new` reports offsets relative to the resource.
    let resource = "a.com:";
    let e = Request::new(Domain::Net, Action::Connect, resource).expect_err(resource);
    assert_eq!(span(resource, &e), (resource.len(), 0));
}

fn resolve(text: &str) -> Resolve {
    let mut resolve = Resolve::new();
    resolve.push_str("api.wit", text).unwrap();
    resolve
}

/// Found by the `wit_diff` target: wit-parser accepts a variant whose
/// cases repeat a name (`d(string), d`), and the engine paired every OLD
/// case with the first NEW case of its name, so a package compared with
/// itself showed a change ("case was `d`, is now `d: string`"). Members of
/// one name now pair in order: the first with the first, and so on.
#[test]
fn repeated_member_names_pair_in_order() {
    let text = "package t:p@0.1.0;\ninterface api {\n  variant error { d(string), d }\n}\n";
    let same = diff(&resolve(text), &resolve(text));
    assert!(
        same.changes.is_empty() && same.hygiene.is_empty(),
        "{same:#?}"
    );
    // A change to the second `d` is still one change, of that case.
    let changed = text.replace("d(string), d }", "d(string), d(u32) }");
    let d = diff(&resolve(text), &resolve(&changed));
    let rules: Vec<ChangeRule> = d.changes.iter().map(|c| c.rule).collect();
    assert_eq!(rules, [ChangeRule::VariantCaseTypeChanged], "{d:#?}");
    assert!(
        d.changes[0].message.contains("was `d`, is now `d: u32`"),
        "{d:#?}"
    );
}

/// Found by the `wit_diff` target: one file may hold two versions of a
/// package (`package t:q@1.0.0;` with a nested `package t:q@1.8.0 { … }`).
/// Packages were paired by `namespace:name` alone, so each version was
/// compared with the other and a set compared with itself showed an
/// interface added and one removed. A name held in more than one version
/// now pairs by exact version; the bump verdicts follow the same pairs.
#[test]
fn a_package_held_in_two_versions_pairs_by_version() {
    let text = "package t:q@1.0.0;\n\ninterface api {\n  get: func() -> u32;\n}\n\n\
                package t:q@1.8.0 {\n  interface k {\n    ping: func();\n  }\n}\n";
    let same = diff(&resolve(text), &resolve(text));
    assert!(
        same.changes.is_empty() && same.hygiene.is_empty(),
        "{same:#?}"
    );
    let verdicts =
        airssys_contract::compat::package_verdicts(&resolve(text), &resolve(text), &same.changes);
    let pairs: Vec<_> = verdicts
        .iter()
        .map(|v| {
            (
                v.package.as_str(),
                v.old_version.as_deref(),
                v.new_version.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("t:q@1.0.0", Some("1.0.0"), Some("1.0.0")),
            ("t:q@1.8.0", Some("1.8.0"), Some("1.8.0"))
        ],
        "{verdicts:#?}"
    );
    // A change to the newer version is reported against it.
    let changed = text.replace("ping: func();", "ping: func(n: u32);");
    let d = diff(&resolve(text), &resolve(&changed));
    let places: Vec<_> = d
        .changes
        .iter()
        .map(|c| c.location.package.as_str())
        .collect();
    assert_eq!(places, ["t:q@1.8.0"], "{d:#?}");
}
