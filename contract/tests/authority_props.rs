//! Property tests of `airssys_contract::authority`: capability diffs agree
//! with what the patterns cover, and a proposed policy covers every
//! observed allowed request without reaching beyond the manifest.

#![allow(clippy::unwrap_used)]

#[path = "support/strategies.rs"]
mod strategies;

use airssys_contract::authority::{Observation, diff_capabilities, propose};
use airssys_contract::capability::{Capability, Request};
use airssys_contract::manifest::Manifest;
use airssys_contract::policy::Policy;
use proptest::prelude::*;
use strategies::{pick, segments};

/// Patterns over small alphabets, so that subsets occur.
fn pattern() -> impl Strategy<Value = String> {
    let fs = (
        pick(&["read", "write"]),
        segments(&["a", "b", "c", "*"], 0..3),
        any::<bool>(),
    )
        .prop_map(|(act, segs, rest)| {
            let path = format!("/{}", segs.join("/"));
            match (rest, segs.is_empty()) {
                (true, true) => format!("fs:{act}:/**"),
                (true, false) => format!("fs:{act}:{path}/**"),
                (false, _) => format!("fs:{act}:{path}"),
            }
        });
    let kv = (segments(&["a", "b", "c", "*"], 1..3), any::<bool>()).prop_map(|(mut segs, rest)| {
        if rest {
            segs.push("**".into());
        }
        format!("kv:read:{}", segs.join("/"))
    });
    let topic = (segments(&["a", "b", "*"], 1..3), any::<bool>()).prop_map(|(mut segs, rest)| {
        if rest {
            segs.push(">".into());
        }
        format!("msg:publish:{}", segs.join("."))
    });
    let other = pick(&[
        "log:write",
        "log:write:info",
        "log:write:warn",
        "env:read:A",
        "env:read:A*",
        "proc:spawn:/bin/a",
        "msg:request:x",
        "net:connect:a.com:443",
        "net:connect:*.a.com:443",
        "net:connect:*:*",
        "fs:read",
        "kv:read",
    ]);
    prop_oneof![fs, kv, topic, other]
}

/// Concrete requests over the same alphabets, with more names (so that a
/// level sees several) and a file literally named `*`.
fn request() -> impl Strategy<Value = String> {
    let names = &["a", "b", "c", "d", "e", "*"];
    let fs = (pick(&["read", "write"]), segments(names, 1..4))
        .prop_map(|(act, segs)| format!("fs:{act}:/{}", segs.join("/")));
    let kv = segments(names, 1..4).prop_map(|s| format!("kv:read:{}", s.join("/")));
    let topic = segments(&["a", "b", "c", "d", "e"], 1..4)
        .prop_map(|s| format!("msg:publish:{}", s.join(".")));
    let other = pick(&[
        "log:write",
        "log:write:debug",
        "log:write:warn",
        "log:write:error",
        "env:read:A",
        "env:read:AB",
        "proc:spawn:/bin/a",
        "msg:request:x",
        "net:connect:a.com:443",
        "net:connect:b.a.com:443",
        "net:connect:x.org:80",
    ]);
    prop_oneof![fs, kv, topic, other]
}

fn caps(texts: &[String]) -> Vec<Capability> {
    texts.iter().map(|t| t.parse().unwrap()).collect()
}

fn observation(text: &str, allowed: bool) -> Observation {
    let r = Request::parse(text).unwrap();
    Observation {
        domain: r.domain(),
        action: r.action(),
        resource: r.resource().to_owned(),
        allowed,
        rule: if allowed { "grant" } else { "denied" }.to_owned(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// A request NEW covers and OLD does not is a gain; the reverse a loss.
    #[test]
    fn capability_diffs_agree_with_coverage(
        old in proptest::collection::vec(pattern(), 0..4),
        new in proptest::collection::vec(pattern(), 0..4),
        requests in proptest::collection::vec(request(), 1..8),
    ) {
        let (old, new) = (caps(&old), caps(&new));
        let diff = diff_capabilities(&old, &new);
        let placed = diff.unchanged.len() + diff.within.len() + diff.widened.len()
            + diff.added.len();
        let mut distinct: Vec<String> = new.iter().map(ToString::to_string).collect();
        distinct.sort();
        distinct.dedup();
        prop_assert_eq!(placed, distinct.len(), "{:?}", diff);
        for w in &diff.widened {
            prop_assert!(w.from.iter().all(|f| f.is_subset_of(&w.to)));
        }
        for n in &diff.narrowed {
            prop_assert!(n.to.iter().all(|t| t.is_subset_of(&n.from)));
        }
        for text in &requests {
            let r = Request::parse(text).unwrap();
            let in_old = old.iter().any(|c| c.covers(&r));
            let in_new = new.iter().any(|c| c.covers(&r));
            if in_new && !in_old {
                prop_assert!(diff.gains(), "{} is new authority: {:?}", text, diff);
            }
            if in_old && !in_new {
                prop_assert!(diff.losses(), "{} is lost authority: {:?}", text, diff);
            }
        }
    }

    /// The proposal allows every observed allowed request the manifest
    /// declares, lies inside the manifest, lets the component load, and
    /// writes a policy that parses to the same grants.
    #[test]
    fn a_proposal_covers_what_was_seen_and_nothing_undeclared(
        requires in proptest::collection::vec(pattern(), 0..3),
        optional in proptest::collection::vec(pattern(), 0..7),
        seen in proptest::collection::vec(request(), 0..32),
        undeclared in proptest::collection::vec(request(), 0..4),
    ) {
        let (requires, optional) = (caps(&requires), caps(&optional));
        let declared: Vec<&Capability> = requires.iter().chain(&optional).collect();
        let covered_by_manifest =
            |r: &Request<'_>| declared.iter().any(|d| d.covers(r));
        let mut observed = Vec::new();
        let mut allowed = Vec::new();
        for text in &seen {
            let r = Request::parse(text).unwrap();
            // An observe run allows exactly the declared requests.
            let ok = covered_by_manifest(&r);
            observed.push(observation(text, ok));
            if ok {
                allowed.push(text.clone());
            }
        }
        for text in &undeclared {
            observed.push(observation(text, false));
        }
        let proposal = propose("c", &requires, &optional, &observed);
        let grants: Vec<&Capability> = proposal.grants.iter().map(|g| &g.capability).collect();
        for text in &allowed {
            let r = Request::parse(text).unwrap();
            prop_assert!(grants.iter().any(|g| g.covers(&r)), "{} not covered: {:?}", text, grants);
        }
        for g in &grants {
            prop_assert!(declared.iter().any(|d| g.is_subset_of(d)), "{} beyond the manifest", g);
        }
        for r in &requires {
            prop_assert!(grants.iter().any(|g| r.is_subset_of(g)), "required {} not granted", r);
        }
        // Read back by the host policy's own reader, the one `airssys run`
        // and the runtime use.
        let policy = Policy::from_toml_str(&proposal.to_toml("audit.jsonl")).unwrap();
        let listed: Vec<String> = policy
            .component("c")
            .unwrap()
            .grants
            .iter()
            .map(ToString::to_string)
            .collect();
        let expected: Vec<String> = grants.iter().map(ToString::to_string).collect();
        prop_assert_eq!(listed, expected);
        let manifest = Manifest {
            name: "c".to_owned(),
            version: "0.1.0".to_owned(),
            requires: requires.clone(),
            optional: optional.clone(),
        };
        prop_assert!(policy.effective_grants(&manifest).is_ok(), "the proposal refuses the component");
    }
}

#[test]
fn a_level_seen_three_times_becomes_a_wildcard() {
    let optional = caps(&["kv:read:counter/**".to_owned(), "log:write".to_owned()]);
    let observed: Vec<Observation> = [
        "kv:read:counter/a",
        "kv:read:counter/b",
        "kv:read:counter/c",
        "kv:read:counter/c",
        "kv:read:counter/x/y",
        "log:write:warn",
        "log:write:info",
    ]
    .iter()
    .map(|t| observation(t, true))
    .chain([observation("net:connect:evil.com:443", false)])
    .collect();
    let proposal = propose("counter", &[], &optional, &observed);
    let texts: Vec<String> = proposal
        .grants
        .iter()
        .map(|g| g.capability.to_string())
        .collect();
    assert_eq!(
        texts,
        ["kv:read:counter/*", "kv:read:counter/x/y", "log:write:info"]
    );
    assert_eq!(proposal.grants[0].requests, 4);
    assert_eq!(proposal.grants[0].resources, 3);
    assert_eq!(proposal.left_out[0].request, "net:connect:evil.com:443");
    let toml = proposal.to_toml("audit.jsonl");
    assert!(
        toml.contains("    # 4 request(s) over 3 resource(s), e.g. `counter/a`; 3 names seen under `counter` (a wildcard from 3)\n    \"kv:read:counter/*\",\n"),
        "{toml}"
    );
    assert!(
        toml.contains("#   net:connect:evil.com:443 (1 request(s)): denied"),
        "{toml}"
    );
}

#[test]
fn no_wildcard_where_the_manifest_names_each_key() {
    let optional = caps(&[
        "kv:read:counter/a".to_owned(),
        "kv:read:counter/b".to_owned(),
        "kv:read:counter/c".to_owned(),
    ]);
    let observed: Vec<Observation> = [
        "kv:read:counter/a",
        "kv:read:counter/b",
        "kv:read:counter/c",
    ]
    .iter()
    .map(|t| observation(t, true))
    .collect();
    let proposal = propose("counter", &[], &optional, &observed);
    let texts: Vec<String> = proposal
        .grants
        .iter()
        .map(|g| g.capability.to_string())
        .collect();
    assert_eq!(
        texts,
        [
            "kv:read:counter/a",
            "kv:read:counter/b",
            "kv:read:counter/c"
        ]
    );
}
