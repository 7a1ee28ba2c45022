//! Property tests of the capability DSL: display round-trips, subset is
//! consistent with coverage, and compiled grant sets agree with a linear
//! scan of the same patterns. The checks themselves live in
//! `support/grant_oracle.rs`, shared with the fuzz target
//! `fuzz/fuzz_targets/capability.rs`.

#![allow(clippy::unwrap_used)]

#[path = "support/grant_oracle.rs"]
mod grant_oracle;
#[path = "support/strategies.rs"]
mod strategies;

use airssys_contract::capability::{Capability, GrantSet, Request};
use proptest::prelude::*;
use strategies::{pick, segments};

/// Pattern strings over small alphabets, so that subsets and matches occur.
fn pattern() -> impl Strategy<Value = String> {
    let fs = (
        pick(&["read", "write"]),
        segments(&["a", "b", "*"], 0..4),
        any::<bool>(),
    )
        .prop_map(|(act, segs, rest)| {
            let mut path = format!("/{}", segs.join("/"));
            if rest {
                path = if segs.is_empty() {
                    "/**".into()
                } else {
                    format!("{path}/**")
                };
            }
            format!("fs:{act}:{path}")
        });
    let kv = (segments(&["a", "b", "*"], 0..3), any::<bool>()).prop_filter_map(
        "an empty key",
        |(segs, rest)| {
            let mut parts = segs;
            if rest {
                parts.push("**".into());
            }
            (!parts.is_empty()).then(|| format!("kv:read:{}", parts.join("/")))
        },
    );
    let topic = (segments(&["a", "b", "*"], 0..3), any::<bool>()).prop_filter_map(
        "an empty topic",
        |(segs, rest)| {
            let mut parts = segs;
            if rest {
                parts.push(">".into());
            }
            (!parts.is_empty()).then(|| format!("msg:publish:{}", parts.join(".")))
        },
    );
    let net = (
        pick(&[
            "*",
            "a.com",
            "b.a.com",
            "*.a.com",
            "*.com",
            "A.Com",
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.1.2.3",
            "0.0.0.0/0",
            "[fd00::/8]",
            "[::1]",
            "[::ffff:10.1.2.3]",
        ]),
        pick(&["*", "80", "80-90", "1-65535", "85", "443"]),
    )
        .prop_map(|(h, p)| format!("net:connect:{h}:{p}"));
    let other = pick(&[
        "log:write",
        "log:write:trace",
        "log:write:info",
        "log:write:warn",
        "env:read:A",
        "env:read:A_*",
        "env:read:A*",
        "env:read:AB_C",
        "proc:spawn:/bin/a",
        "proc:spawn:/bin/b",
        "msg:request:x",
        "msg:request:y",
        "fs:read",
        "kv:read",
        "net:connect",
        "msg:publish",
        "env:read",
    ]);
    prop_oneof![fs, kv, topic, net, other]
}

/// Valid concrete request strings over the same alphabets.
fn request() -> impl Strategy<Value = String> {
    let fs = (pick(&["read", "write"]), segments(&["a", "b", "c"], 0..5))
        .prop_map(|(act, segs)| format!("fs:{act}:/{}", segs.join("/")));
    let kv = segments(&["a", "b", "c"], 1..4).prop_map(|s| format!("kv:read:{}", s.join("/")));
    let topic =
        segments(&["a", "b", "c"], 1..4).prop_map(|s| format!("msg:publish:{}", s.join(".")));
    let net = (
        pick(&[
            "a.com",
            "b.a.com",
            "c.b.a.com",
            "com",
            "B.A.COM",
            "x.org",
            "10.0.0.1",
            "10.1.2.3",
            "11.0.0.1",
            "[fd00::1]",
            "[::1]",
            "[::ffff:10.1.2.3]",
        ]),
        pick(&["1", "80", "85", "90", "91", "443", "65535"]),
    )
        .prop_map(|(h, p)| format!("net:connect:{h}:{p}"));
    let other = pick(&[
        "log:write",
        "log:write:debug",
        "log:write:info",
        "log:write:error",
        "env:read:A",
        "env:read:AB",
        "env:read:A_X",
        "env:read:A_",
        "env:read:AB_C",
        "proc:spawn:/bin/a",
        "proc:spawn:/bin/c",
        "msg:request:x",
        "msg:request:z",
    ]);
    prop_oneof![fs, kv, topic, net, other]
}

fn cap(text: &str) -> Capability {
    Capability::parse(text).unwrap_or_else(|e| panic!("pattern `{text}`: {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn display_round_trips(text in pattern()) {
        prop_assert_eq!(grant_oracle::check_display_round_trip(&cap(&text)), Ok(()));
    }

    #[test]
    fn request_display_round_trips(text in request()) {
        let r = Request::parse(&text).unwrap();
        prop_assert_eq!(r.to_string(), text);
    }

    #[test]
    fn subset_is_consistent_with_coverage(
        a in pattern(),
        b in pattern(),
        requests in proptest::collection::vec(request(), 1..16),
    ) {
        let (a, b) = (cap(&a), cap(&b));
        for text in &requests {
            let r = Request::parse(text).unwrap();
            prop_assert_eq!(grant_oracle::check_subset(&a, &b, &r), Ok(()));
        }
    }

    #[test]
    fn grant_set_agrees_with_linear_scan(
        allows in proptest::collection::vec(pattern(), 0..10),
        denies in proptest::collection::vec(pattern(), 0..3),
        text in request(),
    ) {
        let set = GrantSet::new(allows.iter().map(|t| cap(t)), denies.iter().map(|t| cap(t)));
        let r = Request::parse(&text).unwrap();
        prop_assert_eq!(grant_oracle::check_decision(&set, &r), Ok(()));
    }
}

/// Subset checks over a fixed universe: soundness for every pair, and the
/// relation is far from trivially false (the property above is not vacuous).
#[test]
fn subset_pairs_over_a_fixed_universe() {
    let patterns = [
        "fs:read",
        "fs:read:/a/**",
        "fs:read:/a/*",
        "fs:read:/a/b",
        "fs:read:/*/b",
        "fs:read:/**",
        "net:connect",
        "net:connect:*:*",
        "net:connect:*.a.com:80-90",
        "net:connect:*.com:*",
        "net:connect:b.a.com:85",
        "net:connect:10.0.0.0/8:*",
        "net:connect:10.1.2.3:80",
        "kv:read:a/**",
        "kv:read:a/*",
        "kv:read:**",
        "msg:publish:a.>",
        "msg:publish:a.b",
        "log:write:info",
        "log:write",
        "env:read:A_*",
        "env:read:A_X",
    ];
    let requests = [
        "fs:read:/a/b",
        "fs:read:/a/b/c",
        "fs:read:/a",
        "fs:read:/c/b",
        "fs:read:/",
        "net:connect:b.a.com:85",
        "net:connect:a.com:85",
        "net:connect:10.1.2.3:80",
        "net:connect:10.9.9.9:80",
        "net:connect:x.com:1",
        "kv:read:a/b",
        "kv:read:a/b/c",
        "kv:read:a",
        "msg:publish:a.b",
        "msg:publish:a.b.c",
        "log:write:warn",
        "log:write:debug",
        "env:read:A_X",
        "env:read:A_Y",
    ];
    let mut subset_pairs = 0;
    for a in patterns.iter().map(|t| cap(t)) {
        for b in patterns.iter().map(|t| cap(t)) {
            if !a.is_subset_of(&b) {
                continue;
            }
            subset_pairs += 1;
            for r in requests.iter().map(|t| Request::parse(t).unwrap()) {
                assert_eq!(grant_oracle::check_subset(&a, &b, &r), Ok(()));
            }
        }
    }
    assert!(
        subset_pairs > 2 * patterns.len(),
        "{subset_pairs} subset pairs"
    );
}
