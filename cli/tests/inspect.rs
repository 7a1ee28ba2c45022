//! `airssys inspect` end to end, on components built here with
//! wit-component.

#![allow(clippy::unwrap_used)]

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use airssys_contract::manifest::{MANIFEST_SECTION, Manifest};
use airssys_contract::model::Contract;
use wasm_encoder::{CustomSection, Encode, Section};
use wit_parser::Resolve;

mod common;
use common::{airssys, stderr, stdout};

/// A component world that imports core storage and logging and exports
/// the lifecycle, as a user's component would.
const APP_WORLD: &str = "package test:app;
world app {
  import airssys:core/storage@1.0.0;
  import airssys:core/logging@1.0.0;
  export airssys:core/lifecycle@1.0.0;
}";

fn manifest() -> Manifest {
    Manifest::from_toml_str(
        r#"
[component]
name = "counter"
version = "0.1.0"

[capabilities]
requires = ["kv:read:counter/*", "kv:write:counter/*"]
optional = ["log:write"]
"#,
    )
    .unwrap()
}

/// Encodes a component of the world `app` (pushed into `contract`), with
/// the manifest appended as an `airssys:manifest` custom section.
fn component(mut contract: Resolve, manifest: Option<&Manifest>) -> Vec<u8> {
    let pkg = contract.push_str("app.wit", APP_WORLD).unwrap();
    let world = contract.select_world(&[pkg], Some("app")).unwrap();
    let mut bytes = common::dummy_component(&contract, world);
    if let Some(m) = manifest {
        let section = CustomSection {
            name: Cow::Borrowed(MANIFEST_SECTION),
            data: Cow::Owned(m.encode()),
        };
        bytes.push(section.id());
        section.encode(&mut bytes);
    }
    wasmparser::Validator::new().validate_all(&bytes).unwrap();
    bytes
}

/// The repository's `wit/` copied into a temporary directory, with
/// `storage.open` taking `list<u8>` instead of `string`.
fn altered_contract(dir: &Path) -> Resolve {
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    copy_dir(&wit, dir);
    let storage = dir.join("deps/core/storage.wit");
    let text = std::fs::read_to_string(&storage).unwrap();
    let old = "open: func(name: string)";
    assert!(text.contains(old), "storage.wit changed; update this test");
    std::fs::write(&storage, text.replace(old, "open: func(name: list<u8>)")).unwrap();
    let mut resolve = Resolve::new();
    resolve.push_dir(dir).unwrap();
    resolve
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn compatible_component_text() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = component(Contract::embedded().resolve().clone(), Some(&manifest()));
    let path = write(dir.path(), "counter.wasm", &bytes);
    let out = airssys(&["inspect", path.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("manifest: counter 0.1.0\n"), "{text}");
    assert!(
        text.contains("  requires: kv:read:counter/*, kv:write:counter/*\n"),
        "{text}"
    );
    assert!(text.contains("  optional: log:write\n"), "{text}");
    // the exported lifecycle's `use types.{key-value}` makes `types` an import.
    assert!(text.contains("imports (3):\n"), "{text}");
    assert!(
        text.contains("  airssys:core/types@1.0.0    0 functions\n"),
        "{text}"
    );
    let storage = Contract::embedded()
        .interface("airssys:core/storage@1.0.0")
        .unwrap()
        .functions
        .len();
    assert!(
        text.contains(&format!(
            "  airssys:core/storage@1.0.0  {storage} functions\n"
        )),
        "{text}"
    );
    assert!(text.contains("exports (1):\n"), "{text}");
    assert!(text.contains("  airssys:core/lifecycle@1.0.0"), "{text}");
    assert!(
        text.contains(
            "verdict: compatible with this host (airssys:core@1.0.0, airssys:ext@1.0.0, \
             wasi:io@0.2.12, wasi:clocks@0.2.12, wasi:random@0.2.12, wasi:filesystem@0.2.12, \
             wasi:sockets@0.2.12, wasi:cli@0.2.12)\n"
        ),
        "{text}"
    );
}

#[test]
fn compatible_component_json() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = component(Contract::embedded().resolve().clone(), Some(&manifest()));
    let path = write(dir.path(), "counter.wasm", &bytes);
    let out = airssys(&["inspect", path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["format"], 1);
    assert_eq!(json["path"], path.to_str().unwrap());
    assert_eq!(json["manifest"]["name"], "counter");
    assert_eq!(json["manifest"]["version"], "0.1.0");
    assert_eq!(
        json["manifest"]["requires"],
        serde_json::json!(["kv:read:counter/*", "kv:write:counter/*"])
    );
    assert_eq!(
        json["manifest"]["optional"],
        serde_json::json!(["log:write"])
    );
    assert!(json["manifest_error"].is_null());
    let imports = json["imports"].as_array().unwrap();
    assert_eq!(imports.len(), 3);
    assert_eq!(imports[0]["kind"], "interface");
    assert_eq!(imports[0]["name"], "airssys:core/storage@1.0.0");
    assert_eq!(imports[0]["package"], "airssys:core");
    assert_eq!(imports[0]["version"], "1.0.0");
    assert_eq!(imports[0]["checked"], true);
    assert_eq!(json["exports"][0]["name"], "airssys:core/lifecycle@1.0.0");
    assert_eq!(json["exports"][0]["checked"], false);
    assert_eq!(json["compatible"], true);
    assert_eq!(json["mismatches"], serde_json::json!([]));
    assert_eq!(
        json["host_packages"],
        serde_json::json!([
            "airssys:core@1.0.0",
            "airssys:ext@1.0.0",
            "wasi:io@0.2.12",
            "wasi:clocks@0.2.12",
            "wasi:random@0.2.12",
            "wasi:filesystem@0.2.12",
            "wasi:sockets@0.2.12",
            "wasi:cli@0.2.12"
        ])
    );
}

#[test]
fn component_without_manifest_says_how_to_add_one() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = component(Contract::embedded().resolve().clone(), None);
    let path = write(dir.path(), "bare.wasm", &bytes);
    let out = airssys(&["inspect", path.to_str().unwrap()]);
    let text = stdout(&out);
    // `airssys run` refuses it, so the verdict does not say "compatible".
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("manifest: no airssys manifest"), "{text}");
    assert!(text.contains("Component.toml"), "{text}");
    assert!(!text.contains("verdict: compatible"), "{text}");
    assert!(
        text.contains("but the host refuses to load it: it has no airssys manifest"),
        "{text}"
    );
    assert!(
        stderr(&out).contains("cannot be loaded by this host: it has no airssys manifest"),
        "{}",
        stderr(&out)
    );
    // Under a policy that loads unannotated components, it is compatible.
    let policy = write(dir.path(), "policy.toml", b"allow_unannotated = true\n");
    let out = airssys(&[
        "inspect",
        path.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("verdict: compatible with this host"),
        "{text}"
    );
    let out = airssys(&["inspect", path.to_str().unwrap(), "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(json["manifest"].is_null());
}

#[test]
fn changed_parameter_type_is_incompatible() {
    let dir = tempfile::tempdir().unwrap();
    let altered = altered_contract(&dir.path().join("wit"));
    let bytes = component(altered, Some(&manifest()));
    let path = write(dir.path(), "old.wasm", &bytes);

    let out = airssys(&["inspect", path.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("verdict: incompatible with this host"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("  - "))
        .unwrap_or_else(|| panic!("no mismatch line: {text}"));
    assert!(line.contains("airssys:core/storage@1.0.0"), "{line}");
    assert!(line.contains("`open`"), "{line}");
    assert!(line.contains("list<u8>"), "{line}");
    assert!(stderr(&out).contains("cannot be loaded by this host"));

    let out = airssys(&["inspect", path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["compatible"], false);
    let mismatches = json["mismatches"].as_array().unwrap();
    assert!(!mismatches.is_empty());
    assert_eq!(mismatches[0]["interface"], "airssys:core/storage@1.0.0");
    assert!(
        mismatches[0]["message"]
            .as_str()
            .unwrap()
            .contains("`open`"),
        "{json}"
    );
    assert!(!mismatches[0]["rule"].as_str().unwrap().is_empty());
}

#[test]
fn core_module_is_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "core.wasm",
        &wasm_encoder::Module::new().finish(),
    );
    let out = airssys(&["inspect", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert!(
        err.contains("core WebAssembly module, not a component"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn text_file_is_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "notes.wasm", b"hello");
    let out = airssys(&["inspect", path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert!(err.contains("is not a WebAssembly component"), "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn missing_file_exits_2() {
    let out = airssys(&["inspect", "/no/such/airssys/component.wasm"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: cannot read /no/such/airssys/component.wasm: "),
        "{err}"
    );
}

#[test]
fn policy_reports_programs_run_with_any_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = Manifest::from_toml_str(
        r#"
[component]
name = "builder"
version = "0.1.0"

[capabilities]
requires = ["proc:spawn:/bin/sh"]
optional = ["proc:spawn:/usr/bin/git"]
"#,
    )
    .unwrap();
    let bytes = component(Contract::embedded().resolve().clone(), Some(&manifest));
    let path = write(dir.path(), "builder.wasm", &bytes);
    let policy = write(
        dir.path(),
        "policy.toml",
        br#"
[components.builder]
grants = ["proc:spawn:/bin/sh", "proc:spawn:/usr/bin/git"]

[components.builder.programs."/usr/bin/git"]
args = [["status"]]
"#,
    );
    let args = ["inspect", path.to_str().unwrap(), "--policy"];
    let out = airssys(&[&args[..], &[policy.to_str().unwrap()]].concat());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.contains(
            "process: warning: component `builder` may run `/bin/sh` with any arguments: full \
             code execution as the host user"
        ),
        "{text}"
    );
    assert!(!text.contains("/usr/bin/git` with any"), "{text}");
    let out = airssys(&[&args[..], &[policy.to_str().unwrap(), "--format", "json"]].concat());
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let notices = json["process_notices"].as_array().unwrap();
    assert_eq!(notices.len(), 1, "{json}");
    // Without `--policy` nothing is said about it.
    let out = airssys(&["inspect", path.to_str().unwrap(), "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(json["process_notices"].is_null(), "{json}");
}

/// A component importing `wasi:http` (which this host does not link) is
/// incompatible, named by inspect without compiling anything; a WASI
/// interface the host links is checked and fine.
#[test]
fn an_import_this_host_cannot_link_is_incompatible() {
    let wit = "package test:app;
world app {
  import airssys:core/logging@1.0.0;
  import wasi:http/outgoing-handler@0.2.3;
  import wasi:cli/environment@0.2.0;
  export airssys:core/lifecycle@1.0.0;
}
package wasi:http@0.2.3 {
  interface outgoing-handler { handle: func(url: string) -> result<u32, string>; }
}
package wasi:cli@0.2.0 {
  interface environment { get-environment: func() -> list<tuple<string, string>>; }
}";
    let bytes = common::app_component(wit);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "http.wasm", &bytes);
    let out = airssys(&["inspect", path.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("verdict: incompatible with this host"),
        "{text}"
    );
    assert!(
        text.contains(
            "  - interface wasi:http/outgoing-handler@0.2.3: the host does not provide package \
             `wasi:http`"
        ),
        "{text}"
    );
    assert!(!text.contains("wasi:cli/environment@0.2.0: "), "{text}");
    let out = airssys(&["inspect", path.to_str().unwrap(), "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mismatches = json["mismatches"].as_array().unwrap();
    assert_eq!(mismatches.len(), 1, "{json}");
    assert_eq!(
        mismatches[0]["interface"],
        "wasi:http/outgoing-handler@0.2.3"
    );
}

/// Least privilege in the JSON report: over-privilege and never-allowed
/// functions.
#[test]
fn least_privilege_is_reported() {
    let manifest = Manifest::from_toml_str(
        r#"
[component]
name = "counter"
version = "0.1.0"

[capabilities]
requires = ["kv:read:counter/*", "proc:spawn:/bin/sh"]
"#,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bytes = component(Contract::embedded().resolve().clone(), Some(&manifest));
    let path = write(dir.path(), "counter.wasm", &bytes);
    let out = airssys(&["inspect", path.to_str().unwrap(), "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let lines: Vec<&str> = json["least_privilege"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l.starts_with(
            "over-privileged: capability `proc:spawn:/bin/sh` is of no use in component `counter`"
        )),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l
            .starts_with("never allowed: `airssys:core/logging` function `log` needs `log:write`")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("`bucket.get`")),
        "kv:read is declared: {lines:?}"
    );
}
