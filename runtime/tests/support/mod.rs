//! Builds the test components in `tests/fixtures/<name>/` for
//! `wasm32-wasip2`, once per test binary, into `<workspace>/target/fixtures`.
//!
//! A fixture with a `Component.toml` gets its manifest through the
//! `AIRSSYS_FIXTURE_MANIFEST` environment variable: the encoded bytes are
//! written next to the build output and the fixture embeds them as its
//! `airssys:manifest` section.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use airssys_runtime::contract::manifest::Manifest;

pub(crate) mod backends;
pub(crate) mod jetstream;

const TARGET: &str = "wasm32-wasip2";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the runtime crate sits in the workspace")
        .to_path_buf()
}

/// The built component of fixture `name`.
pub(crate) fn fixture(name: &str) -> &'static [u8] {
    static BUILT: OnceLock<Mutex<HashMap<String, &'static [u8]>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(bytes) = built.get(name) {
        return bytes;
    }
    let bytes: &'static [u8] = Box::leak(build(name).into_boxed_slice());
    built.insert(name.to_owned(), bytes);
    bytes
}

fn ensure_target() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let list = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .current_dir(workspace())
            .output()
            .expect("run rustup");
        if !String::from_utf8_lossy(&list.stdout)
            .lines()
            .any(|l| l.trim() == TARGET)
        {
            let status = Command::new("rustup")
                .args(["target", "add", TARGET])
                .current_dir(workspace())
                .status()
                .expect("run rustup target add");
            assert!(status.success(), "cannot install the {TARGET} target");
        }
    });
}

fn build(name: &str) -> Vec<u8> {
    ensure_target();
    let dir = workspace().join("runtime/tests/fixtures").join(name);
    let target_dir = workspace().join("target/fixtures");
    std::fs::create_dir_all(&target_dir).expect("create target/fixtures");
    let manifest_path = target_dir.join(format!("{name}.manifest"));
    let toml = dir.join("Component.toml");
    let encoded = if toml.exists() {
        Manifest::from_toml_file(&toml)
            .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
            .encode()
    } else {
        Vec::new()
    };
    // Rewrite only on change, so cargo does not rebuild needlessly.
    if std::fs::read(&manifest_path).ok().as_deref() != Some(&encoded[..]) {
        std::fs::write(&manifest_path, &encoded).expect("write manifest");
    }
    let output = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--target", TARGET, "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("AIRSSYS_FIXTURE_MANIFEST", &manifest_path)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "building fixture {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let wasm = target_dir
        .join(TARGET)
        .join("debug")
        .join(format!("airssys_fixture_{}.wasm", name.replace('-', "_")));
    std::fs::read(&wasm).unwrap_or_else(|e| panic!("read {}: {e}", wasm.display()))
}

/// A runtime with in-memory storage under the policy `policy` (TOML).
pub(crate) fn runtime_with(policy: &str) -> airssys_runtime::Runtime {
    airssys_runtime::Runtime::builder()
        .policy(airssys_runtime::Policy::from_toml_str(policy).expect("valid policy"))
        .in_memory_storage()
        .max_instances(16)
        .build()
        .expect("runtime")
}

/// Loads fixture `name` into `runtime` and instantiates it.
pub(crate) fn instance(
    runtime: &airssys_runtime::Runtime,
    name: &str,
) -> airssys_runtime::Instance {
    runtime
        .load(fixture(name))
        .unwrap_or_else(|e| panic!("{name} loads: {e}"))
        .instantiate()
        .unwrap_or_else(|e| panic!("{name} instantiates: {e}"))
}

/// Sends `command` to the fixture's request handler and returns its reply.
pub(crate) fn ask(instance: &mut airssys_runtime::Instance, command: &str) -> String {
    let reply = instance
        .request("test", command.as_bytes())
        .expect("call succeeds")
        .expect("handler succeeds");
    String::from_utf8(reply).expect("UTF-8 reply")
}

/// Fixture `fixture_name` as component `name`: a manifest requiring
/// `requires` is appended as a top-level `airssys:manifest` section (the
/// loader reads a top-level section before a nested one).
pub(crate) fn fixture_as(fixture_name: &str, name: &str, requires: &[&str]) -> Vec<u8> {
    let list = requires
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let manifest = Manifest::from_toml_str(&format!(
        "[component]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n[capabilities]\nrequires = \
         [{list}]\n"
    ))
    .expect("valid manifest");
    let mut bytes = fixture(fixture_name).to_vec();
    append_custom_section(&mut bytes, "airssys:manifest", &manifest.encode());
    bytes
}

/// Appends custom section `name` holding `data` to a component or module.
pub(crate) fn append_custom_section(wasm: &mut Vec<u8>, name: &str, data: &[u8]) {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb128(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    wasm.push(0);
    leb128(body.len(), wasm);
    wasm.extend_from_slice(&body);
}
