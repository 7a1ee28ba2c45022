//! Manifests: `Component.toml`, the binary section format, and finding the
//! section in core modules and components.

#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use airssys_contract::capability::Capability;
use airssys_contract::manifest::{MANIFEST_SECTION, Manifest, ManifestError};
use proptest::prelude::*;
use wasm_encoder::{Component, CustomSection, Module, ModuleSection, NestedComponentSection};

const COUNTER: &str = r#"[component]
name = "counter"
version = "0.1.0"

[capabilities]
requires = ["kv:read:counter/*", "kv:write:counter/*", "log:write"]
optional = ["net:connect:api.example.com:443"]
"#;

fn counter() -> Manifest {
    Manifest::from_toml_str(COUNTER).unwrap()
}

/// The line, column and message of a `Component.toml` error.
fn toml_err(text: &str) -> (u32, u32, String) {
    match Manifest::from_toml_str(text).unwrap_err() {
        ManifestError::Toml {
            line,
            column,
            message,
            path: None,
        } => (line, column, message),
        other => panic!("{other:?}"),
    }
}

fn cap(text: &str) -> Capability {
    Capability::parse(text).unwrap()
}

#[test]
fn reads_component_toml() {
    let m = counter();
    assert_eq!(m.name, "counter");
    assert_eq!(m.version, "0.1.0");
    assert_eq!(
        m.requires,
        [
            cap("kv:read:counter/*"),
            cap("kv:write:counter/*"),
            cap("log:write")
        ]
    );
    assert_eq!(m.optional, [cap("net:connect:api.example.com:443")]);
    assert_eq!(m.capabilities().count(), 4);
}

#[test]
fn capabilities_table_is_optional() {
    let m = Manifest::from_toml_str("[component]\nname = \"a\"\nversion = \"1.0.0\"\n").unwrap();
    assert!(m.requires.is_empty() && m.optional.is_empty());
}

#[test]
fn display_writes_toml_that_reads_back() {
    let m = counter();
    assert_eq!(Manifest::from_toml_str(&m.to_string()).unwrap(), m);
}

#[test]
fn invalid_toml_has_line_and_column() {
    let (line, column, message) = toml_err("[component]\nname = \"a\nversion = \"1\"\n");
    assert_eq!((line, column), (2, 10), "{message}");
}

#[test]
fn unknown_keys_list_the_valid_ones() {
    let (line, column, message) = toml_err("[component]\nname = \"a\"\nversoin = \"1.0.0\"\n");
    assert_eq!((line, column), (3, 1), "{message}");
    assert!(message.contains("unknown field `versoin`"), "{message}");
    assert!(
        message.contains("`name`") && message.contains("`version`"),
        "{message}"
    );

    // COUNTER has 7 lines; `extra` sits in `[extra]` on line 9
    let (line, column, message) = toml_err(&format!("{COUNTER}\n[extra]\nx = 1\n"));
    assert_eq!((line, column), (9, 2), "{message}");
    assert!(
        message.contains("unknown field `extra`") && message.contains("`capabilities`"),
        "{message}"
    );

    let (line, _, message) = toml_err(&COUNTER.replace("optional", "maybe"));
    assert_eq!(line, 7, "{message}");
    assert!(
        message.contains("`requires`") && message.contains("`optional`"),
        "{message}"
    );
}

#[test]
fn missing_keys_are_named() {
    let (_, _, message) = toml_err("[component]\nname = \"a\"\n");
    assert!(message.contains("missing field `version`"), "{message}");
    let (_, _, message) = toml_err("[capabilities]\nrequires = []\n");
    assert!(message.contains("missing field `component`"), "{message}");
}

#[test]
fn bad_name_and_version_point_at_the_value() {
    let (line, column, message) = toml_err(&COUNTER.replace("\"counter\"", "\"9lives\""));
    assert_eq!((line, column), (2, 8));
    assert!(
        message.contains("must start with an ASCII letter"),
        "{message}"
    );
    let (line, column, message) = toml_err(&COUNTER.replace("\"counter\"", "\"a b\""));
    assert_eq!((line, column), (2, 8));
    assert!(message.contains("contains ' '"), "{message}");
    let (line, column, message) = toml_err(&COUNTER.replace("0.1.0", "0.1"));
    assert_eq!((line, column), (3, 11));
    assert!(message.contains("not semver"), "{message}");
}

#[test]
fn bad_capability_points_at_the_offending_byte() {
    let text = COUNTER.replace("kv:write:counter/*", "fs:raed:/x");
    let (line, column, message) = toml_err(&text);
    // requires = ["kv:read:counter/*", "fs:raed:/x", ...]: the error
    // points at `raed` inside the string.
    assert_eq!(line, 6);
    let line_text = text.lines().nth(5).unwrap();
    assert_eq!(line_text.find("raed").unwrap() + 1, column as usize);
    assert!(
        message.contains("invalid capability `fs:raed:/x`: unknown action `raed` for domain `fs`"),
        "{message}"
    );

    // Literal strings and non-ASCII text before the error count in characters.
    let text = "[component]\nname = 'é'\nversion = '1.0.0'\n";
    assert!(Manifest::from_toml_str(text).is_err());
    let text = "[component]\nname = \"x\"\nversion = \"1.0.0\"\n[capabilities]\nrequires = ['log:write', 'kv:raed']\n";
    let (line, column, _) = toml_err(text);
    // `raed` starts at column 30
    assert_eq!((line, column), (5, 30));
}

#[test]
fn duplicates_are_rejected_at_the_second_occurrence() {
    let text = COUNTER.replace("\"log:write\"]", "\"log:write\",\n  \"log:write\"]");
    let (line, column, message) = toml_err(&text);
    assert_eq!((line, column), (7, 3));
    assert!(
        message.contains("`log:write` is listed twice in `requires` (first on line 6)"),
        "{message}"
    );

    let text = COUNTER.replace("net:connect:api.example.com:443", "log:write");
    let (line, column, message) = toml_err(&text);
    assert_eq!((line, column), (7, 13));
    assert!(
        message.contains("`log:write` is both required (line 6) and optional"),
        "{message}"
    );
}

#[test]
fn file_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Component.toml");
    std::fs::write(&path, COUNTER.replace("0.1.0", "x")).unwrap();
    let err = Manifest::from_toml_file(&path).unwrap_err();
    assert_eq!(err.line_column(), Some((3, 11)));
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3:11: ", path.display())),
        "{err}"
    );
    std::fs::write(&path, COUNTER).unwrap();
    assert_eq!(Manifest::from_toml_file(&path).unwrap(), counter());
    let err = Manifest::from_toml_file(&dir.path().join("missing.toml")).unwrap_err();
    assert!(matches!(err, ManifestError::Io { .. }), "{err}");
}

#[test]
fn binary_round_trip() {
    let m = counter();
    let bytes = m.encode();
    assert_eq!(&bytes[..5], b"ASYM\x01");
    assert_eq!(Manifest::decode(&bytes).unwrap(), m);
    let empty =
        Manifest::from_toml_str("[component]\nname = \"e\"\nversion = \"0.0.1-rc.1\"\n").unwrap();
    assert_eq!(Manifest::decode(&empty.encode()).unwrap(), empty);
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = counter().encode();
    for len in 0..bytes.len() {
        let err = Manifest::decode(&bytes[..len]).unwrap_err();
        assert!(matches!(err, ManifestError::Decode { .. }), "{len}: {err}");
    }
}

#[test]
fn every_single_byte_corruption_is_handled() {
    let m = counter();
    let bytes = m.encode();
    for i in 0..bytes.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[i] ^= flip;
            // never a panic; a change either fails or still decodes to a
            // valid manifest (e.g. another letter in the name)
            if let Ok(decoded) = Manifest::decode(&bad) {
                assert_ne!(decoded, m, "byte {i} ^ {flip:#x}");
                decoded.validate().unwrap();
            }
        }
    }
}

#[test]
fn corrupt_headers_and_sizes_are_named() {
    let bytes = counter().encode();
    let decode_msg = |b: &[u8]| match Manifest::decode(b).unwrap_err() {
        ManifestError::Decode { offset, message } => (offset, message),
        other => panic!("{other:?}"),
    };
    assert_eq!(decode_msg(b"NOPE\x01").1, "wrong magic bytes");
    let mut v2 = bytes.clone();
    v2[4] = 2;
    assert!(
        decode_msg(&v2)
            .1
            .contains("format version 2 is not supported")
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(
        decode_msg(&trailing)
            .1
            .contains("1 unexpected trailing bytes")
    );
    // a huge capability count must not allocate
    let mut huge = b"ASYM\x01".to_vec();
    for s in ["a", "1.0.0"] {
        huge.extend_from_slice(&u32::try_from(s.len()).unwrap().to_le_bytes());
        huge.extend_from_slice(s.as_bytes());
    }
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    let (offset, message) = decode_msg(&huge);
    assert_eq!(offset, 5 + 4 + 1 + 4 + 5);
    assert!(message.contains("exceeds the remaining bytes"), "{message}");
    let oversized = vec![0u8; airssys_contract::manifest::MAX_ENCODED_LEN + 1];
    assert!(decode_msg(&oversized).1.contains("more than the limit"));
}

#[test]
fn decode_checks_the_same_rules_as_toml() {
    let mut m = counter();
    m.optional.push(cap("log:write"));
    assert!(m.validate().is_err());
    let err = Manifest::decode(&m.encode()).unwrap_err();
    assert!(
        err.to_string().contains("both required and optional"),
        "{err}"
    );

    let mut bad_cap = counter();
    bad_cap.name = "x".into();
    let mut bytes = bad_cap.encode();
    // turn `log:write` into `log:wrxte`
    let at = bytes.windows(9).position(|w| w == b"log:write").unwrap();
    bytes[at + 6] = b'x';
    let err = Manifest::decode(&bytes).unwrap_err();
    assert!(
        err.to_string().contains("invalid capability `log:wrxte`"),
        "{err}"
    );
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Manifest::decode(&bytes);
        let mut framed = b"ASYM\x01".to_vec();
        framed.extend_from_slice(&bytes);
        let _ = Manifest::decode(&framed);
    }

    #[test]
    fn from_wasm_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend_from_slice(&bytes);
        let _ = Manifest::from_wasm(&module);
    }
}

fn section(m: &Manifest) -> CustomSection<'static> {
    CustomSection {
        name: Cow::Borrowed(MANIFEST_SECTION),
        data: Cow::Owned(m.encode()),
    }
}

fn module_with(m: Option<&Manifest>) -> Module {
    let mut module = Module::new();
    module.section(&CustomSection {
        name: Cow::Borrowed("other"),
        data: Cow::Borrowed(b"noise"),
    });
    if let Some(m) = m {
        module.section(&section(m));
    }
    module
}

#[test]
fn finds_the_section_in_a_core_module() {
    let m = counter();
    let bytes = module_with(Some(&m)).finish();
    wasmparser::validate(&bytes).unwrap();
    assert_eq!(Manifest::from_wasm(&bytes).unwrap(), Some(m));
    assert_eq!(
        Manifest::from_wasm(&module_with(None).finish()).unwrap(),
        None
    );
}

#[test]
fn finds_the_section_in_a_nested_core_module_of_a_component() {
    let m = counter();
    let inner = module_with(Some(&m));
    let mut nested = Component::new();
    nested.section(&ModuleSection(&inner));
    let mut component = Component::new();
    component.section(&ModuleSection(&module_with(None)));
    component.section(&NestedComponentSection(&nested));
    let bytes = component.finish();
    wasmparser::validate(&bytes).unwrap();
    assert_eq!(Manifest::from_wasm(&bytes).unwrap(), Some(m.clone()));

    // a section at the component level is found too, and an identical copy
    // in the core module is fine
    let mut component = Component::new();
    component.section(&section(&m));
    component.section(&ModuleSection(&inner));
    assert_eq!(
        Manifest::from_wasm(&component.finish()).unwrap(),
        Some(m.clone())
    );

    let mut other = m.clone();
    other.version = "0.2.0".into();
    let mut component = Component::new();
    component.section(&section(&other));
    component.section(&ModuleSection(&inner));
    let err = Manifest::from_wasm(&component.finish()).unwrap_err();
    assert!(matches!(err, ManifestError::ConflictingSections), "{err}");
}

#[test]
fn corrupt_sections_and_binaries_are_errors() {
    let mut module = Module::new();
    module.section(&CustomSection {
        name: Cow::Borrowed(MANIFEST_SECTION),
        data: Cow::Borrowed(b"ASYM\x01\xff"),
    });
    let err = Manifest::from_wasm(&module.finish()).unwrap_err();
    assert!(matches!(err, ManifestError::Decode { .. }), "{err}");
    let err = Manifest::from_wasm(b"not wasm").unwrap_err();
    assert!(matches!(err, ManifestError::Wasm(_)), "{err}");
}

// ---- identity and size limits -----------------------------------------------

use airssys_contract::manifest::{
    MAX_CAPABILITIES, MAX_CAPABILITY_LEN, MAX_NAME_LEN, MAX_VERSION_LEN, is_reserved_name,
};

/// A `Component.toml` named `name` requiring `requires`.
fn toml_with(name: &str, version: &str, requires: &[String], optional: &[String]) -> String {
    let list = |caps: &[String]| {
        caps.iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(",\n  ")
    };
    format!(
        "[component]\nname = \"{name}\"\nversion = \"{version}\"\n\n[capabilities]\nrequires = \
         [\n  {}\n]\noptional = [\n  {}\n]\n",
        list(requires),
        list(optional)
    )
}

/// `n` distinct capabilities, `kv:read:data/k0` ...
fn distinct(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("kv:read:data/k{i}")).collect()
}

/// A manifest built in code, checked by nothing.
fn unchecked(name: &str, version: &str, requires: &[String], optional: &[String]) -> Manifest {
    Manifest {
        name: name.to_owned(),
        version: version.to_owned(),
        requires: requires.iter().map(|c| cap(c)).collect(),
        optional: optional.iter().map(|c| cap(c)).collect(),
    }
}

/// The three ways a manifest is checked: `Component.toml`, the binary
/// section (what the host reads) and a manifest built in code (what the
/// macro embeds). Each must refuse, with a message containing `needle`.
fn refused_everywhere(m: &Manifest, needle: &str) {
    let text = toml_with(
        &m.name,
        &m.version,
        &m.requires
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        &m.optional
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
    );
    let (_, _, message) = toml_err(&text);
    assert!(message.contains(needle), "Component.toml: {message}");
    let err = Manifest::decode(&m.encode()).unwrap_err();
    assert!(
        matches!(err, ManifestError::Decode { .. }),
        "binary: {err:?}"
    );
    assert!(err.to_string().contains(needle), "binary: {err}");
    let err = m.validate().unwrap_err();
    assert!(err.to_string().contains(needle), "validate: {err}");
}

#[test]
fn names_the_host_uses_are_reserved_in_every_form() {
    for name in [
        "cli",
        "host",
        "unannotated",
        "airssys",
        "airssys-monitor",
        "airssys_x",
        "AIRSSYS",
        "Host",
        "CLI",
    ] {
        refused_everywhere(
            &unchecked(name, "0.1.0", &[], &[]),
            &format!("the component name `{name}` is reserved for the host"),
        );
        assert!(is_reserved_name(name), "{name}");
    }
    // Only the names themselves and the `airssys` prefix.
    for name in [
        "client",
        "hostel",
        "my-host",
        "unannotated2x",
        "airsys",
        "billing",
    ] {
        assert!(!is_reserved_name(name), "{name}");
        unchecked(name, "0.1.0", &[], &[]).validate().unwrap();
    }
    // Component.toml points at the name.
    let (line, column, message) = toml_err(&COUNTER.replace("\"counter\"", "\"host\""));
    assert_eq!((line, column), (2, 8));
    assert!(message.contains("choose another name"), "{message}");
    // The binary form points at the name's length prefix.
    match Manifest::decode(&unchecked("cli", "0.1.0", &[], &[]).encode()).unwrap_err() {
        ManifestError::Decode { offset, .. } => assert_eq!(offset, 5),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_manifest_over_the_capability_cap_is_refused_naming_the_cap() {
    let needle = "the limit is 1024 per manifest, `requires` and `optional` together \
                  (MAX_CAPABILITIES)";
    assert_eq!(MAX_CAPABILITIES, 1024);
    refused_everywhere(
        &unchecked("big", "0.1.0", &distinct(MAX_CAPABILITIES + 1), &[]),
        needle,
    );
    // Both lists count.
    let all = distinct(MAX_CAPABILITIES + 1);
    refused_everywhere(
        &unchecked("big", "0.1.0", &all[..1000], &all[1000..]),
        needle,
    );
    // Component.toml points at the first capability over the cap.
    let text = toml_with("big", "0.1.0", &all, &[]);
    let (line, column, message) = toml_err(&text);
    assert_eq!(
        (line, column),
        (7 + MAX_CAPABILITIES as u32, 3),
        "{message}"
    );
    assert!(message.contains("lists 1025 capabilities"), "{message}");
    // The binary form refuses at the count, before reading any capability.
    let mut bytes = unchecked("big", "0.1.0", &all, &[]).encode();
    let count_at = 5 + 4 + 3 + 4 + 5;
    assert_eq!(
        &bytes[count_at..count_at + 4],
        &1025u32.to_le_bytes(),
        "layout"
    );
    // Corrupt the last capability: the cap is still what is reported.
    let last = bytes.len() - 5;
    bytes[last] = b'!';
    match Manifest::decode(&bytes).unwrap_err() {
        ManifestError::Decode { offset, message } => {
            assert_eq!(offset, count_at, "{message}");
            assert!(message.contains(needle), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_manifest_at_the_cap_loads_and_one_of_duplicates_is_refused_as_duplicates() {
    let all = distinct(MAX_CAPABILITIES);
    let m = Manifest::from_toml_str(&toml_with("big", "0.1.0", &all, &[])).unwrap();
    assert_eq!(m.requires.len(), MAX_CAPABILITIES);
    assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
    m.validate().unwrap();
    let split = unchecked("big", "0.1.0", &all[..24], &all[24..]);
    assert_eq!(Manifest::decode(&split.encode()).unwrap(), split);

    let same = vec!["kv:read:data/k".to_owned(); MAX_CAPABILITIES];
    refused_everywhere(
        &unchecked("big", "0.1.0", &same, &[]),
        "capability `kv:read:data/k` is listed twice in `requires`",
    );
    // The duplicate is found wherever it sits, in one pass.
    let mut late = all.clone();
    late[MAX_CAPABILITIES - 1] = all[0].clone();
    let (line, _, message) = toml_err(&toml_with("big", "0.1.0", &late, &[]));
    assert_eq!(line, 7 + MAX_CAPABILITIES as u32 - 1);
    assert!(message.contains("(first on line 7)"), "{message}");
    let across = unchecked("big", "0.1.0", &all[..512], &all[511..1023]);
    refused_everywhere(&across, "is both required");
    let optional_twice = unchecked("big", "0.1.0", &[], &[all[3].clone(), all[3].clone()]);
    refused_everywhere(&optional_twice, "listed twice in `optional`");
}

#[test]
fn over_long_names_versions_and_capabilities_are_refused_naming_the_limit() {
    let name = format!("a{}", "b".repeat(MAX_NAME_LEN));
    refused_everywhere(
        &unchecked(&name, "0.1.0", &[], &[]),
        "bytes long; the limit is 64 bytes (MAX_NAME_LEN)",
    );
    unchecked(&name[..MAX_NAME_LEN], "0.1.0", &[], &[])
        .validate()
        .unwrap();
    let version = format!("0.1.0-{}", "a".repeat(MAX_VERSION_LEN));
    refused_everywhere(
        &unchecked("v", &version, &[], &[]),
        "bytes long; the limit is 128 bytes (MAX_VERSION_LEN)",
    );
    let long = format!("kv:read:data/{}", "k".repeat(MAX_CAPABILITY_LEN));
    refused_everywhere(
        &unchecked("c", "0.1.0", &[long], &[]),
        "bytes long; the limit is 1024 bytes (MAX_CAPABILITY_LEN)",
    );
    let fits = format!("kv:read:data/{}", "k".repeat(MAX_CAPABILITY_LEN - 13));
    assert_eq!(fits.len(), MAX_CAPABILITY_LEN);
    unchecked("c", "0.1.0", &[fits], &[]).validate().unwrap();
}

#[test]
fn manifest_text_in_messages_is_escaped_and_clipped() {
    // A name that would drive the operator's terminal.
    let mut m = unchecked("x", "0.1.0", &[], &[]);
    m.name = "\u{1b}]0;owned\u{7}".to_owned();
    let err = Manifest::decode(&m.encode()).unwrap_err().to_string();
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(err.contains("\\u{1b}]0;owned\\u{7}"), "{err}");
    m.name = format!("a\u{1b}{}", "b".repeat(10_000));
    let err = Manifest::decode(&m.encode()).unwrap_err().to_string();
    assert!(err.len() < 400, "{} bytes: {err}", err.len());
    assert!(!err.contains('\u{1b}'), "{err:?}");
}
