//! `airssys manifest attach|show|check` end to end, on components built
//! here with wit-component (as any non-Rust toolchain would leave them:
//! no `airssys:manifest` section).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use airssys_contract::manifest::{MANIFEST_SECTION, Manifest, Placement};

mod common;
use common::{airssys, stderr, stdout, succeeded};

/// Imports storage and logging, exports the lifecycle.
const APP_WORLD: &str = "package test:app;
world app {
  import airssys:core/storage@1.0.0;
  import airssys:core/logging@1.0.0;
  export airssys:core/lifecycle@1.0.0;
}";

/// The whole component world, as componentize-py and componentize-js
/// import it.
const WHOLE_WORLD: &str = "package test:app;
world app { include airssys:core/component@1.0.0; }";

const TOML: &str = r#"[component]
name = "counter"
version = "0.1.0"

[capabilities]
requires = ["kv:read:counter/*", "kv:write:counter/*"]
optional = ["log:write"]
"#;

/// A component of `world` without a manifest.
fn component(world: &str) -> Vec<u8> {
    common::app_component(world)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn attach_then_show_then_check() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = write(dir.path(), "app.wasm", &component(APP_WORLD));
    let toml = write(dir.path(), "Component.toml", TOML.as_bytes());
    let out_path = dir.path().join("out.wasm");
    let out = airssys(&[
        "manifest",
        "attach",
        s(&wasm),
        "--manifest",
        s(&toml),
        "-o",
        s(&out_path),
    ]);
    let text = succeeded(&out);
    assert!(
        text.contains("attached manifest `counter` 0.1.0 (2 required, 1 optional) to "),
        "{text}"
    );
    let bytes = std::fs::read(&out_path).unwrap();
    wasmparser::Validator::new().validate_all(&bytes).unwrap();
    assert_eq!(Manifest::placements(&bytes).unwrap(), [Placement::TopLevel]);
    assert_eq!(
        Manifest::from_wasm(&bytes).unwrap(),
        Some(Manifest::from_toml_str(TOML).unwrap())
    );

    let out = airssys(&["manifest", "show", s(&out_path)]);
    let text = succeeded(&out);
    assert!(text.contains("format 1, top level"), "{text}");
    // What `show` prints is a Component.toml that reads back the same.
    assert_eq!(
        Manifest::from_toml_str(&text).unwrap(),
        Manifest::from_toml_str(TOML).unwrap()
    );
    let out = airssys(&["manifest", "show", s(&out_path), "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&succeeded(&out)).unwrap();
    assert_eq!(json["name"], "counter");
    assert_eq!(json["optional"], serde_json::json!(["log:write"]));

    let out = airssys(&["manifest", "check", s(&out_path)]);
    let text = succeeded(&out);
    assert!(text.contains("manifest `counter` 0.1.0 of "), "{text}");
    // storage's delete and the bucket listing need capabilities the
    // manifest does not declare: named, with a Component.toml fix line.
    assert!(
        text.contains(
            "warning: never allowed: `airssys:core/storage` function `bucket.delete` needs \
             `kv:delete:"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "fix: add \"kv:delete:<name>/<key>\" (each `<..>` replaced by a real resource or \
             pattern) to `optional` under [capabilities] in Component.toml"
        ),
        "{text}"
    );

    // inspect says the same and that it is compatible.
    let out = airssys(&["inspect", s(&out_path)]);
    let text = succeeded(&out);
    assert!(text.contains("manifest: counter 0.1.0\n"), "{text}");
    assert!(
        text.contains("least privilege:\n  never allowed: "),
        "{text}"
    );
}

#[test]
fn an_existing_manifest_is_replaced_only_with_replace() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = write(dir.path(), "app.wasm", &component(APP_WORLD));
    let toml = write(dir.path(), "Component.toml", TOML.as_bytes());
    let args = [
        "manifest",
        "attach",
        s(&wasm),
        "--manifest",
        s(&toml),
        "-o",
        s(&wasm),
    ];
    succeeded(&airssys(&args));
    let before = std::fs::read(&wasm).unwrap();
    let toml2 = write(
        dir.path(),
        "Other.toml",
        TOML.replace("0.1.0", "0.2.0").as_bytes(),
    );
    let args = [
        "manifest",
        "attach",
        s(&wasm),
        "--manifest",
        s(&toml2),
        "-o",
        s(&wasm),
    ];
    let out = airssys(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "the component already carries an `airssys:manifest` section (`counter` 0.1.0); \
             pass `--replace` to replace it"
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(&wasm).unwrap(), before, "nothing was written");

    let out = airssys(&[&args[..], &["--replace"]].concat());
    succeeded(&out);
    let bytes = std::fs::read(&wasm).unwrap();
    assert_eq!(Manifest::placements(&bytes).unwrap().len(), 1);
    assert_eq!(
        Manifest::from_wasm(&bytes).unwrap().unwrap().version,
        "0.2.0"
    );
}

#[test]
fn toml_errors_point_at_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = write(dir.path(), "app.wasm", &component(APP_WORLD));
    let bad = TOML.replace("\"log:write\"", "\"log:wrote\"");
    let toml = write(dir.path(), "Component.toml", bad.as_bytes());
    let out_path = dir.path().join("out.wasm");
    let out = airssys(&[
        "manifest",
        "attach",
        s(&wasm),
        "--manifest",
        s(&toml),
        "-o",
        s(&out_path),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:7:", toml.display())),
        "file:line of the bad capability: {err}"
    );
    assert!(err.contains("wrote"), "{err}");
    assert!(!out_path.exists());

    let toml = write(dir.path(), "Broken.toml", b"[component]\nname = \n");
    let out = airssys(&["manifest", "check", s(&wasm), "--manifest", s(&toml)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("{}:2:", toml.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_capability_no_import_can_use_is_refused_in_the_macros_words() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = write(dir.path(), "app.wasm", &component(APP_WORLD));
    let toml = TOML.replace(
        "optional = [\"log:write\"]",
        "optional = [\"log:write\", \"net:connect:example.com:443\"]",
    );
    let toml = write(dir.path(), "Component.toml", toml.as_bytes());
    let out_path = dir.path().join("out.wasm");
    let out = airssys(&[
        "manifest",
        "attach",
        s(&wasm),
        "--manifest",
        s(&toml),
        "-o",
        s(&out_path),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}:7:26: capability `net:connect:example.com:443` (from Component.toml) is of no \
             use in component `counter`: no function it imports requires `net:connect`; remove \
             it, or build the component against a world that imports such a function",
            toml.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("= note: the functions of `counter` require: "),
        "{err}"
    );
    assert!(!out_path.exists(), "nothing was written");
    let out = airssys(&["manifest", "check", s(&wasm), "--manifest", s(&toml)]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_whole_world_import_is_said_instead_of_guessing() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = write(dir.path(), "app.wasm", &component(WHOLE_WORLD));
    let toml = write(dir.path(), "Component.toml", TOML.as_bytes());
    let out = airssys(&["manifest", "check", s(&wasm), "--manifest", s(&toml)]);
    let text = succeeded(&out);
    assert!(
        text.contains(
            "warning: note: the component imports every function of \
             `airssys:core/component@1.0.0`"
        ),
        "{text}"
    );
    assert!(
        !text.contains("never allowed"),
        "no function is named: {text}"
    );
}

#[test]
fn malformed_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let toml = write(dir.path(), "Component.toml", TOML.as_bytes());
    let out_path = dir.path().join("out.wasm");
    // Not wasm, a truncated component, a core module, a missing file.
    let good = component(APP_WORLD);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "text.wasm",
            b"hello".to_vec(),
            "is not a WebAssembly component",
        ),
        (
            "cut.wasm",
            good[..good.len() / 2].to_vec(),
            "is not a valid component",
        ),
        (
            "core.wasm",
            wasm_encoder::Module::new().finish(),
            "core WebAssembly module",
        ),
    ];
    for (name, bytes, expected) in cases {
        let wasm = write(dir.path(), name, &bytes);
        for args in [
            vec![
                "manifest",
                "attach",
                s(&wasm),
                "--manifest",
                s(&toml),
                "-o",
                s(&out_path),
            ],
            vec!["manifest", "show", s(&wasm)],
            vec!["manifest", "check", s(&wasm)],
        ] {
            let out = airssys(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
            assert!(
                stderr(&out).contains(expected),
                "{args:?}: {}",
                stderr(&out)
            );
        }
    }
    assert!(!out_path.exists());

    // A component whose manifest section is garbage: named, no panic.
    let mut bytes = component(APP_WORLD);
    let section = wasm_encoder::CustomSection {
        name: MANIFEST_SECTION.into(),
        data: b"ASYM\x01\xff\xff\xff\xff".as_slice().into(),
    };
    bytes.push(wasm_encoder::Section::id(&section));
    wasm_encoder::Encode::encode(&section, &mut bytes);
    let wasm = write(dir.path(), "garbage.wasm", &bytes);
    for sub in ["show", "check"] {
        let out = airssys(&["manifest", sub, s(&wasm)]);
        assert_eq!(out.status.code(), Some(1), "{sub}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("invalid `airssys:manifest` section at byte"),
            "{sub}: {}",
            stderr(&out)
        );
    }
    // A component without one says how to add one, for its language.
    let wasm = write(dir.path(), "bare.wasm", &component(APP_WORLD));
    let out = airssys(&["manifest", "show", s(&wasm)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("airssys manifest attach COMPONENT.wasm --manifest Component.toml"),
        "{}",
        stderr(&out)
    );
}

/// `airssys run` of a component without a manifest says how to attach one
/// in any language, not only with the Rust attribute.
#[test]
fn run_without_a_manifest_says_how_to_attach_one() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = write(dir.path(), "bare.wasm", &component(APP_WORLD));
    let out = airssys(&["run", s(&wasm), "--no-cache"]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains(
            "in any other language, write a `Component.toml` and attach it with `airssys \
             manifest attach COMPONENT.wasm --manifest Component.toml -o COMPONENT.wasm`"
        ),
        "{err}"
    );
}
