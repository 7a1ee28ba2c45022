//! Capability parsing and grant checks.
//!
//! Every text (from the repository's tables, built from small alphabets so
//! that patterns and requests meet, or arbitrary) is parsed as a capability
//! and as a request: never a panic, error spans inside the text, and
//! `Display` round-trips where the parse succeeds. The parsed patterns make
//! a `GrantSet` whose decisions must agree with a linear scan of the same
//! allows and denies (`contract/tests/support/grant_oracle.rs`, shared with
//! the property tests), and `is_subset_of` must be sound on every pair.

#![no_main]

#[path = "../../contract/tests/support/grant_oracle.rs"]
mod grant_oracle;

use std::sync::OnceLock;

use airssys_contract::capability::{Capability, CapabilityError, Domain, GrantSet, Request};
use airssys_fuzz::{read_repo_file, string_literals};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

/// At most this many allows, denies and requests are used from one input,
/// so a single run stays cheap (checks are quadratic in places).
const MAX_RULES: usize = 12;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    allows: Vec<Text<'a>>,
    denies: Vec<Text<'a>>,
    requests: Vec<Text<'a>>,
}

/// Where a text comes from.
#[derive(Debug, Arbitrary)]
enum Text<'a> {
    /// A string literal of the repository's capability tables.
    Seed(u16),
    /// A capability-shaped string from small alphabets.
    Built(Built),
    /// A seed with arbitrary text appended: near misses of real patterns.
    SeedWithTail(u16, &'a str),
    /// Anything.
    Raw(&'a str),
}

/// `domain:action[:resource]` with each part picked from a small alphabet.
#[derive(Debug, Arbitrary)]
struct Built {
    domain: u8,
    action: u8,
    resource: Option<Vec<u8>>,
}

fuzz_target!(|input: Input<'_>| {
    let texts = |list: &[Text<'_>]| -> Vec<String> {
        list.iter().take(MAX_RULES).map(Text::render).collect()
    };
    let (allows, denies, requests) = (
        texts(&input.allows),
        texts(&input.denies),
        texts(&input.requests),
    );
    for text in allows.iter().chain(&denies).chain(&requests) {
        check_parse(text);
    }
    let parse_all =
        |list: &[String]| -> Vec<Capability> { list.iter().flat_map(|t| t.parse()).collect() };
    let set = GrantSet::new(parse_all(&allows), parse_all(&denies));
    let patterns: Vec<&Capability> = set.allows().iter().chain(set.denies()).collect();
    for text in &requests {
        let Ok(request) = Request::parse(text) else {
            continue;
        };
        if let Err(e) = grant_oracle::check_decision(&set, &request) {
            panic!(
                "{e}\nallows: {:?}\ndenies: {:?}",
                set.allows(),
                set.denies()
            );
        }
        let decision = set.check(&request);
        let _ = set.describe(&decision);
        let _ = set.describe_request(&decision, &request);
        for a in &patterns {
            for b in &patterns {
                if let Err(e) = grant_oracle::check_subset(a, b, &request) {
                    panic!("{e}");
                }
            }
        }
    }
});

/// Parses `text` both ways; panics (a finding) when an invariant breaks.
fn check_parse(text: &str) {
    match Capability::parse(text) {
        Ok(capability) => {
            if let Err(e) = grant_oracle::check_display_round_trip(&capability) {
                panic!("{text:?}: {e}");
            }
        }
        Err(e) => check_span(text, &e),
    }
    match Request::parse(text) {
        Ok(request) => {
            let shown = request.to_string();
            assert_eq!(shown, text, "a request displays as written");
            assert_eq!(Request::parse(&shown), Ok(request));
        }
        Err(e) => check_span(text, &e),
    }
}

/// An error's span lies inside the text it points into.
fn check_span(text: &str, e: &CapabilityError) {
    assert!(
        e.offset
            .checked_add(e.len)
            .is_some_and(|end| end <= text.len()),
        "{text:?}: error span {}..+{} outside the text ({} bytes): {e}",
        e.offset,
        e.len,
        text.len()
    );
}

impl Text<'_> {
    fn render(&self) -> String {
        let pick = |i: u16| {
            let s = seeds();
            s[usize::from(i) % s.len()].clone()
        };
        match self {
            Text::Seed(i) => pick(*i),
            Text::SeedWithTail(i, tail) => pick(*i) + tail,
            Text::Built(b) => b.render(),
            Text::Raw(s) => (*s).to_owned(),
        }
    }
}

impl Built {
    fn render(&self) -> String {
        let domain = Domain::ALL[usize::from(self.domain) % Domain::ALL.len()];
        let actions = domain.actions();
        let action = actions[usize::from(self.action) % actions.len()];
        let head = format!("{domain}:{action}");
        let Some(parts) = &self.resource else {
            return head;
        };
        let pick = |alphabet: &[&str], i: usize| -> String {
            let b = parts.get(i).copied().unwrap_or(0);
            alphabet[usize::from(b) % alphabet.len()].to_owned()
        };
        let segments = |alphabet: &[&str]| -> Vec<String> {
            (0..parts.len().min(6)).map(|i| pick(alphabet, i)).collect()
        };
        let resource = match (domain.as_str(), action.as_str()) {
            ("fs", _) | ("proc", _) => format!(
                "/{}",
                segments(&["a", "b", "data", "*", "**", "..", ".", ""]).join("/")
            ),
            ("kv", _) => segments(&["a", "b", "counter", "*", "**", ""]).join("/"),
            ("msg", "request") => pick(&["x", "y", "billing", "a-b_c.d"], 0),
            ("msg", _) => segments(&["a", "b", "orders", "*", ">", ""]).join("."),
            ("net", _) => format!("{}:{}", pick(NET_HOSTS, 0), pick(NET_PORTS, 1)),
            ("log", _) => pick(&["trace", "debug", "info", "warn", "error"], 0),
            _ => pick(&["A", "AB", "A_*", "A*", "AB_C", "APP_*", "APP_MODE"], 0),
        };
        format!("{head}:{resource}")
    }
}

const NET_HOSTS: &[&str] = &[
    "*",
    "a.com",
    "b.a.com",
    "*.a.com",
    "*.com",
    "A.Com",
    "localhost",
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.3",
    "127.0.0.1",
    "0.0.0.0/0",
    "[fd00::/8]",
    "[::1]",
    "[::ffff:10.1.2.3]",
    "[::ffff:127.0.0.1]",
    "[::/0]",
];

const NET_PORTS: &[&str] = &[
    "*", "1", "80", "80-90", "1-65535", "85", "443", "0", "65535",
];

/// The string literals of the capability tables: the adversarial table and
/// the property tests' alphabets of the contract crate.
fn seeds() -> &'static [String] {
    static SEEDS: OnceLock<Vec<String>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut all: Vec<String> = [
            "contract/tests/adversarial.rs",
            "contract/tests/capability_props.rs",
        ]
        .iter()
        .flat_map(|file| string_literals(&read_repo_file(file)))
        .collect();
        all.sort();
        all.dedup();
        assert!(all.len() > 100, "only {} capability seeds", all.len());
        all
    })
}
