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

/// The flooding host of the shared-stream scenario (JetStream delivery):
/// `alice` publishes on `orders.*` (the flood), `dave` on `news.*`.
pub(crate) const STREAM_FLOODER_POLICY: &str = r#"
[components.alice]
grants = ["msg:publish:orders.*"]

[components.dave]
grants = ["msg:publish:news.*"]
"#;

/// The other host of the shared-stream scenario: `bob` subscribes to
/// `orders.*` (and, in the tests, never consumes), `carol` to `news.*`,
/// `erin` publishes on `news.*`.
pub(crate) const STREAM_NEIGHBOURS_POLICY: &str = r#"
[components.bob]
grants = ["msg:subscribe:orders.*"]
subscribe = ["orders.*"]

[components.carol]
grants = ["msg:subscribe:news.*"]
subscribe = ["news.*"]

[components.erin]
grants = ["msg:publish:news.*"]
"#;

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

/// `module` (a core module) with the component metadata of `world`
/// embedded, encoded as a component.
pub(crate) fn componentize(
    mut module: Vec<u8>,
    resolve: &wit_parser::Resolve,
    world: wit_parser::WorldId,
) -> Vec<u8> {
    use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
    embed_component_metadata(&mut module, resolve, world, StringEncoding::UTF8).expect("embed");
    ComponentEncoder::default()
        .module(&module)
        .expect("module")
        .validate(true)
        .encode()
        .expect("encode component")
}

/// A component of `world` whose core module is wit-component's dummy: it
/// imports and exports what the world does and does nothing.
pub(crate) fn dummy_component(
    resolve: &wit_parser::Resolve,
    world: wit_parser::WorldId,
) -> Vec<u8> {
    use wit_parser::{LiftLowerAbi, ManglingAndAbi};
    let module =
        wit_component::dummy_module(resolve, world, ManglingAndAbi::Legacy(LiftLowerAbi::Sync));
    componentize(module, resolve, world)
}

/// Appends custom section `name` holding `data` to a component or module.
pub(crate) fn append_custom_section(wasm: &mut Vec<u8>, name: &str, data: &[u8]) {
    use wasm_encoder::Section as _;
    wasm_encoder::CustomSection {
        name: name.into(),
        data: data.into(),
    }
    .append_to(wasm);
}

/// `bytes` with a manifest written by hand appended: `name`, version
/// 0.1.0, requiring `requires`, built without the manifest rules (the
/// host must apply them).
pub(crate) fn with_raw_manifest(mut bytes: Vec<u8>, name: &str, requires: &[String]) -> Vec<u8> {
    use airssys_runtime::contract::capability::Capability;
    let manifest = Manifest {
        name: name.to_owned(),
        version: "0.1.0".to_owned(),
        requires: requires
            .iter()
            .map(|c| Capability::parse(c).expect(c))
            .collect(),
        optional: Vec::new(),
    };
    append_custom_section(&mut bytes, "airssys:manifest", &manifest.encode());
    bytes
}

/// The `messenger` fixture as component `name` requiring `requires`
/// ([`fixture_as`]), loaded into `runtime` and instantiated.
pub(crate) fn start(
    runtime: &airssys_runtime::Runtime,
    name: &str,
    requires: &[&str],
) -> airssys_runtime::Instance {
    runtime
        .load(&fixture_as("messenger", name, requires))
        .unwrap_or_else(|e| panic!("{name} loads: {e}"))
        .instantiate()
        .unwrap_or_else(|e| panic!("{name} instantiates: {e}"))
}

/// Sends `command` from the source `host` (the one a messenger takes
/// commands from) and returns the reply text.
pub(crate) fn cmd(instance: &mut airssys_runtime::Instance, command: &str) -> String {
    let reply = instance
        .request("host", command.as_bytes())
        .expect("call succeeds")
        .expect("handler succeeds");
    String::from_utf8(reply).expect("UTF-8 reply")
}

/// A writer for the audit log's JSON lines that keeps what was written,
/// for the test to read.
#[derive(Clone, Default)]
pub(crate) struct Sink(pub(crate) std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether process `pid` is alive (a zombie no longer counts).
pub(crate) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(!matches!(state, 'Z' | 'X'))
        })
        .unwrap_or(false)
}

/// Waits (up to 10 s) until process `pid` is gone.
pub(crate) fn gone(pid: u32) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while alive(pid) {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}
