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
