//! Hostile probes: identity. A component names itself in its own
//! manifest, and grants, storage, mailboxes and requests follow that
//! name; so a stranger must not get a name the policy pins to another
//! file, a name another loaded component holds, or a name the host uses
//! itself; and its manifest must not cost the host more than linear time.
//! See docs/decisions/containment-identity.md.

use airssys_runtime::contract::manifest::MAX_ENCODED_LEN;
use airssys_runtime::{ComponentDigest, LoadError};

use crate::neighbour::{NEIGHBOUR_POLICY, while_serving};
use crate::support::{fixture, fixture_as, runtime_with, with_raw_manifest};

/// The `messenger` fixture under a manifest written by hand (no manifest
/// rule applied on this side: the host must apply them).
fn messenger_claiming(name: &str, requires: &[String]) -> Vec<u8> {
    with_raw_manifest(fixture("messenger").to_vec(), name, requires)
}

/// The policy pins `billing` to one build; a stranger's build claiming
/// `billing` (to get its storage grant) is refused, naming the name, both
/// digests and the pin's line.
#[test]
fn a_stranger_claiming_a_pinned_name_is_refused() {
    let billing = fixture_as("messenger", "billing", &[]);
    let stranger = fixture_as("messenger", "billing", &["kv:read:billing/*"]);
    let (pinned, actual) = (
        ComponentDigest::of(&billing),
        ComponentDigest::of(&stranger),
    );
    let runtime = runtime_with(&format!(
        "[components.billing]\ngrants = [\"kv:read:billing/*\"]\nsha256 = \"{pinned}\"\n{NEIGHBOUR_POLICY}"
    ));
    // Nothing panics inside `while_serving` (its checker would wait forever).
    let outcome = while_serving(&runtime, || runtime.load(&stranger));
    let err = outcome.expect_err("not the pinned file");
    let text = err.to_string();
    assert!(
        matches!(&err, LoadError::DigestMismatch { component, expected, actual: got, line, .. }
            if component == "billing" && *expected == pinned && *got == actual && *line == Some(3)),
        "{err:?}"
    );
    assert!(
        text.contains("`sha256` of [components.billing] (policy line 3)"),
        "{text}"
    );
    assert!(
        text.contains(&pinned.to_string()) && text.contains(&actual.to_string()),
        "{text}"
    );
    runtime.load(&billing).expect("the pinned build loads");
}

/// The neighbour `probe` is loaded; a different component claiming
/// `probe` (to get its grants and storage, and its requests) is refused,
/// naming both digests, and the neighbour keeps serving under its name.
#[test]
fn a_second_component_under_a_loaded_name_is_refused() {
    let runtime = runtime_with(NEIGHBOUR_POLICY);
    let impostor = fixture_as("messenger", "probe", &["kv:read:data/*", "kv:write:data/*"]);
    let outcome = while_serving(&runtime, || runtime.load(&impostor));
    let err = outcome.expect_err("the name `probe` is in use");
    let (loaded, offered) = (
        ComponentDigest::of(fixture("probe")),
        ComponentDigest::of(&impostor),
    );
    assert!(
        matches!(&err, LoadError::DuplicateName { component, loaded: l, offered: o }
            if component == "probe" && *l == loaded && *o == offered),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("component `probe` is already loaded from another file"),
        "{text}"
    );
    assert!(
        text.contains(&loaded.to_string()) && text.contains(&offered.to_string()),
        "{text}"
    );
}

/// Names the host uses itself (`host` is the sender the `messenger`
/// fixture obeys, `cli` the one `airssys run` uses) are refused in a
/// manifest at load, naming the name.
#[test]
fn names_the_host_uses_are_refused() {
    let runtime = runtime_with(&format!("allow_unannotated = true\n{NEIGHBOUR_POLICY}"));
    let names = [
        "host",
        "cli",
        "unannotated",
        "airssys",
        "airssys-broker",
        "Host",
    ];
    let outcomes = while_serving(&runtime, || {
        names.map(|name| runtime.load(&messenger_claiming(name, &[])))
    });
    for (name, outcome) in names.into_iter().zip(outcomes) {
        let err = outcome.expect_err("a reserved name");
        let text = err.to_string();
        assert!(matches!(err, LoadError::Manifest(_)), "{name}: {err:?}");
        assert!(
            text.contains(&format!(
                "the component name `{name}` is reserved for the host"
            )),
            "{text}"
        );
    }
}

/// A manifest as large as the section decoder reads (1 MiB, 46,072
/// capabilities) once took 98 s to load in a debug build (quadratic
/// duplicate checks); it is now refused at its capability count, naming
/// the cap, before any capability is read.
#[test]
fn an_oversized_manifest_is_refused() {
    let runtime = runtime_with(&format!(
        "[components.big]\ngrants = [\"kv:read:data/*\"]\n{NEIGHBOUR_POLICY}"
    ));
    let mut caps = Vec::new();
    let mut size = 9 + 4 + 3 + 4 + 5 + 4 + 4;
    for i in 0.. {
        let cap = format!("kv:read:data/k{i}");
        size += 4 + cap.len();
        if size > MAX_ENCODED_LEN {
            break;
        }
        caps.push(cap);
    }
    let bytes = messenger_claiming("big", &caps);
    let outcome = while_serving(&runtime, || runtime.load(&bytes));
    let err = outcome.expect_err("over the cap");
    let text = err.to_string();
    assert!(matches!(err, LoadError::Manifest(_)), "{err:?}");
    assert!(
        text.contains(&format!(
            "the manifest lists {} capabilities; the limit is 1024 per manifest",
            caps.len()
        )),
        "{text}"
    );
    assert!(text.contains("MAX_CAPABILITIES"), "{text}");
}
