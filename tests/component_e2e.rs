//! End to end: build a component declared with `#[airssys::component]` for
//! `wasm32-wasip2`, read its `airssys:manifest` section back with the
//! contract crate, and compare it with the declared capabilities.
//!
//! The fixture crate (`tests/fixtures/components/counter`) is not a
//! workspace member; it builds into `target/fixtures` so the workspace's
//! lock on `target/` is not contended, with the workspace's `Cargo.lock`
//! copied beside it so it uses the same dependency versions.

use std::path::{Path, PathBuf};
use std::process::Command;

use airssys::contract::capability::Capability;
use airssys::contract::manifest::Manifest;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo build --target wasm32-wasip2` of the fixture `name`, into
/// `target/fixtures`.
fn cargo_build(name: &str) -> Command {
    let root = workspace();
    let fixture = root.join("tests/fixtures/components").join(name);
    let lock = fixture.join("Cargo.lock");
    if !lock.exists() {
        std::fs::copy(root.join("Cargo.lock"), &lock).expect("copy the workspace Cargo.lock");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| String::from("cargo"));
    let mut command = Command::new(&cargo);
    command
        .args(["build", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(fixture.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", fixtures_target());
    command
}

fn fixtures_target() -> PathBuf {
    workspace().join("target/fixtures")
}

/// Builds the fixture `name` and returns the `.wasm` path.
fn build_fixture(name: &str) -> PathBuf {
    let status = cargo_build(name).status().expect("run cargo");
    assert!(
        status.success(),
        "building fixture `{name}` failed (is the wasm32-wasip2 target installed? \
         `rustup target add wasm32-wasip2`)"
    );
    fixtures_target()
        .join("wasm32-wasip2/debug")
        .join(format!("{}.wasm", name_to_file(name)))
}

fn name_to_file(name: &str) -> String {
    format!("fixture_{}", name.replace('-', "_"))
}

fn caps(list: &[&str]) -> Vec<Capability> {
    list.iter()
        .map(|c| Capability::parse(c).expect("test capability parses"))
        .collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn manifest_section_matches_the_declaration() {
    let wasm = read(&build_fixture("counter"));
    // A component (layer 1), not a core module: the section sits in the
    // nested core module that rustc produced.
    assert_eq!(&wasm[..4], b"\0asm");
    assert_eq!(wasm[6..8], [1, 0], "expected a component binary");

    let manifest = Manifest::from_wasm(&wasm)
        .expect("the binary parses")
        .expect("the component carries an `airssys:manifest` section");
    // The crate name (names starting with `airssys` are reserved for the
    // host, so the fixture crate is not called `airssys-fixture-counter`).
    assert_eq!(manifest.name, "fixture-counter");
    assert_eq!(manifest.version, "0.4.2");
    assert_eq!(
        manifest.requires,
        caps(&["kv:read:counter/*", "kv:write:counter/*", "log:write"])
    );
    assert_eq!(manifest.optional, caps(&["msg:publish:counter.changed"]));
}

/// Without the `manifest-file` feature the macros compile no TOML reader;
/// `manifest = ".."` is then refused with the feature's name (a component
/// crate's default build, as `airssys new` writes it).
#[test]
fn manifest_file_without_its_feature_names_the_feature() {
    let out = cargo_build("manifest-file-off")
        .output()
        .expect("run cargo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the fixture built without the feature:\n{stderr}"
    );
    assert!(
        stderr.contains(
            "`manifest = \"Component.toml\"` needs the `manifest-file` feature of airssys"
        ) && stderr.contains("features = [\"manifest-file\"]"),
        "expected the error naming the `manifest-file` feature:\n{stderr}"
    );
}
