//! Manifest decoding: the same bytes are read as an `airssys:manifest`
//! section, as that section inside a core module and a component, as a
//! whole wasm binary and, when they are UTF-8, as a `Component.toml`.
//!
//! Never a panic. Whenever a manifest comes out, it is valid and survives
//! every way back: `decode(encode(m)) == m`, no strict prefix of
//! `encode(m)` decodes, its `Display` (a `Component.toml`) reads back equal,
//! and `from_wasm` finds it in a module and in a component.
//!
//! With `AIRSSYS_FUZZ_EMIT=<dir>` in the environment, every manifest
//! checked is also written to `<dir>` in its binary forms (section, module,
//! component): `scripts/fuzz.sh` runs the target once over the TOML seeds
//! this way to seed the binary decoder with the project's own encoder.

#![no_main]

use std::borrow::Cow;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::OnceLock;

use airssys_contract::manifest::{MANIFEST_SECTION, Manifest, ManifestError};
use libfuzzer_sys::fuzz_target;
use wasm_encoder::{Component, CustomSection, Module, ModuleSection};

fuzz_target!(|data: &[u8]| {
    // The section decoder, directly and through a module: the same answer.
    let decoded = Manifest::decode(data);
    match (&decoded, Manifest::from_wasm(&module_with_section(data))) {
        (Ok(a), Ok(Some(b))) => assert_eq!(*a, b, "from_wasm and decode disagree"),
        (Err(_), Err(ManifestError::Decode { .. })) => {}
        (a, b) => panic!("decode gave {a:?}, from_wasm of the same section {b:?}"),
    }
    if let Ok(m) = &decoded {
        check_manifest(m);
    }

    // Arbitrary wasm.
    if let Ok(Some(m)) = Manifest::from_wasm(data) {
        check_manifest(&m);
    }

    // Component.toml.
    if let Ok(text) = std::str::from_utf8(data) {
        match Manifest::from_toml_str(text) {
            Ok(m) => check_manifest(&m),
            Err(e) => {
                let (line, column) = e.line_column().expect("a TOML error has a position");
                assert!(line >= 1 && column >= 1, "{e}");
                let _ = e.to_string();
            }
        }
    }
});

/// Every way back from a valid manifest gives the same manifest.
fn check_manifest(m: &Manifest) {
    if let Err(e) = m.validate() {
        panic!("a manifest that came out of a parser is invalid: {e}\n{m:?}");
    }
    let bytes = m.encode();
    match Manifest::decode(&bytes) {
        Ok(back) => assert_eq!(back, *m, "decode(encode(m)) != m"),
        Err(e) => panic!("decode(encode(m)) failed: {e}\n{m:?}"),
    }
    // A truncated section never decodes (all prefixes when short, else a
    // sample, to keep a run cheap).
    let step = (bytes.len() / 64).max(1);
    for len in (0..bytes.len()).step_by(step) {
        assert!(
            Manifest::decode(&bytes[..len]).is_err(),
            "a {len}-byte prefix of a {}-byte manifest decodes",
            bytes.len()
        );
    }
    let toml = m.to_string();
    match Manifest::from_toml_str(&toml) {
        Ok(back) => assert_eq!(
            back, *m,
            "Component.toml display does not read back:\n{toml}"
        ),
        Err(e) => panic!("the manifest's own Component.toml does not parse: {e}\n{toml}"),
    }
    let module = module_with_section(&bytes);
    assert_eq!(Manifest::from_wasm(&module).ok(), Some(Some(m.clone())));
    let mut component = Component::new();
    component.section(&ModuleSection(&module_of(&bytes)));
    let component = component.finish();
    assert_eq!(Manifest::from_wasm(&component).ok(), Some(Some(m.clone())));
    for form in [&bytes, &module, &component] {
        emit(form);
    }
}

/// Writes `bytes` to `$AIRSSYS_FUZZ_EMIT`, when set, named by its hash.
fn emit(bytes: &[u8]) {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    let Some(dir) = DIR.get_or_init(|| std::env::var_os("AIRSSYS_FUZZ_EMIT").map(PathBuf::from))
    else {
        return;
    };
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    let path = dir.join(format!("{:016x}", hasher.finish()));
    if let Err(e) = std::fs::write(&path, bytes) {
        panic!("cannot write {}: {e}", path.display());
    }
}

fn module_of(section: &[u8]) -> Module {
    let mut module = Module::new();
    module.section(&CustomSection {
        name: Cow::Borrowed(MANIFEST_SECTION),
        data: Cow::Borrowed(section),
    });
    module
}

fn module_with_section(section: &[u8]) -> Vec<u8> {
    module_of(section).finish()
}
