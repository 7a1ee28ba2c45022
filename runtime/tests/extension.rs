//! `HostExtension`: an embedder's own WIT package served next to the
//! contract. Components importing it are checked against the extension's
//! WIT at load time (a mismatch is refused with the contract's wording),
//! link when the extension's functions are linked, and get the extension's
//! per-instance state; a misconfigured extension stops `build()`.
//!
//! `{self}` in a guard on a method of an extension's resource resolves
//! through the extension's `handle_name`.
//!
//! The components are dummy core modules with embedded WIT metadata,
//! encoded by wit-component (no wasm build needed); the one that calls a
//! resource method is a small hand-written core module.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use airssys_runtime::contract::capability::{Action, Capability, Domain};
use airssys_runtime::contract::guard::HostFnGuard;
use airssys_runtime::contract::manifest::{MANIFEST_SECTION, Manifest};
use airssys_runtime::wasmtime::StoreContextMut;
use airssys_runtime::wasmtime::component::{Linker, Resource, ResourceType};
use airssys_runtime::{AuditLog, BuildError, HostExtension, HostState, LoadError, Policy, Runtime};
use wit_parser::Resolve;

/// The host's copy of the extension's WIT.
const HOST_WIT: &str = "package example:greeter@0.1.0;
interface greet {
  /// @capability none
  greet: func(name: string) -> string;
}";

/// A component whose world `w` imports `import` (a WIT interface body) as
/// `example:greeter/greet@<version>`.
fn component(version: &str, import: &str) -> Vec<u8> {
    let wit = format!(
        "package example:greeter@{version};\ninterface greet {{ {import} }}\nworld w {{ import greet; }}"
    );
    let mut resolve = Resolve::new();
    let pkg = resolve
        .push_str("guest.wit", &wit)
        .expect("guest WIT parses");
    let world = resolve.select_world(&[pkg], Some("w")).expect("world w");
    support::dummy_component(&resolve, world)
}

/// Links `greet: func(name: string) -> string` as the extension's host
/// function (what `bindgen!`'s `add_to_linker` does for a real WIT).
fn link_greet(linker: &mut Linker<HostState>) -> airssys_runtime::wasmtime::Result<()> {
    linker
        .instance("example:greeter/greet@0.1.0")?
        .func_wrap("greet", |_store, (name,): (String,)| {
            Ok((format!("hello, {name}"),))
        })
}

fn greeter() -> HostExtension {
    HostExtension::from_wit_str("greeter.wit", HOST_WIT)
        .expect("host WIT parses")
        .link(link_greet)
}

fn runtime(extension: Option<HostExtension>) -> Runtime {
    let mut builder = Runtime::builder()
        .pooling(false)
        .policy(Policy::builder().allow_unannotated(true).build());
    if let Some(extension) = extension {
        builder = builder.extension(extension);
    }
    builder.build().expect("runtime builds")
}

const GREET: &str = "greet: func(name: string) -> string;";

#[test]
fn a_component_importing_the_extension_loads_and_gets_its_state() {
    let made = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&made);
    let extension = greeter().instance_state(move |component| {
        counter.fetch_add(1, Ordering::SeqCst);
        component.to_owned()
    });
    let runtime = runtime(Some(extension));
    let loaded = runtime
        .load(&component("0.1.0", GREET))
        .expect("the extension serves the import");
    assert_eq!(made.load(Ordering::SeqCst), 0, "state is made per instance");
    let instance = loaded.instantiate().expect("instantiates");
    assert_eq!(made.load(Ordering::SeqCst), 1);
    drop(instance);
}

#[test]
fn an_import_that_disagrees_with_the_extension_wit_is_refused_at_load() {
    let runtime = runtime(Some(greeter()));
    let error = runtime
        .load(&component("0.1.0", "greet: func(name: u32) -> string;"))
        .expect_err("a different parameter type must not load");
    let LoadError::Incompatible {
        mismatches,
        message,
        ..
    } = &error
    else {
        panic!("expected Incompatible, got {error:?}");
    };
    assert_eq!(mismatches.len(), 1, "{mismatches:?}");
    assert_eq!(mismatches[0].interface, "example:greeter/greet@0.1.0");
    assert!(
        mismatches[0]
            .message
            .contains("`name: u32`, the host has `name: string`"),
        "{message}"
    );
    assert!(message.contains("example:greeter@0.1.0"), "{message}");
}

#[test]
fn an_import_on_another_track_is_refused_at_load() {
    let runtime = runtime(Some(greeter()));
    let error = runtime
        .load(&component("0.2.0", GREET))
        .expect_err("0.2 is not served by 0.1");
    let LoadError::Incompatible { mismatches, .. } = &error else {
        panic!("expected Incompatible, got {error:?}");
    };
    assert_eq!(mismatches[0].interface, "example:greeter/greet@0.2.0");
}

#[test]
fn a_missing_function_is_named() {
    let runtime = runtime(Some(greeter()));
    let error = runtime
        .load(&component("0.1.0", "wave: func(name: string) -> string;"))
        .expect_err("`wave` is not served");
    let LoadError::Incompatible { mismatches, .. } = &error else {
        panic!("expected Incompatible, got {error:?}");
    };
    assert!(mismatches[0].message.contains("wave"), "{mismatches:?}");
}

#[test]
fn without_the_extension_the_import_is_unlinkable() {
    let runtime = runtime(None);
    let error = runtime
        .load(&component("0.1.0", GREET))
        .expect_err("nothing serves the import");
    assert!(
        matches!(error, LoadError::Unlinkable { .. }),
        "expected Unlinkable, got {error:?}"
    );
}

#[test]
fn an_extension_may_not_serve_a_contract_package() {
    let extension = HostExtension::from_wit_str(
        "core.wit",
        "package airssys:core@1.0.0; interface mine { f: func(); }",
    )
    .expect("parses")
    .link(|_| Ok(()));
    let error = Runtime::builder()
        .pooling(false)
        .extension(extension)
        .build()
        .expect_err("airssys:core is the contract's");
    let BuildError::Extension {
        package, message, ..
    } = &error
    else {
        panic!("expected Extension, got {error:?}");
    };
    assert_eq!(package, "airssys:core@1.0.0");
    assert!(
        message.contains("part of the airssys contract"),
        "{message}"
    );
}

#[test]
fn two_extensions_may_not_serve_one_package() {
    let error = Runtime::builder()
        .pooling(false)
        .extension(greeter())
        .extension(greeter())
        .build()
        .expect_err("one package, one server");
    assert!(
        error
            .to_string()
            .contains("another extension already serves"),
        "{error}"
    );
}

#[test]
fn an_extension_without_a_link_function_is_refused() {
    let extension = HostExtension::from_wit_str("greeter.wit", HOST_WIT).expect("parses");
    let error = Runtime::builder()
        .pooling(false)
        .extension(extension)
        .build()
        .expect_err("nothing would serve the functions");
    assert!(error.to_string().contains("no link function"), "{error}");
}

#[test]
fn invalid_extension_wit_names_file_and_line() {
    let error = HostExtension::from_wit_str("greeter.wit", "package example:greeter;\ninterface {")
        .expect_err("does not parse");
    let text = error.to_string();
    assert!(text.contains("greeter.wit:2"), "{text}");
}

// ---------------------------------------------------------------------
// `{self}` on an extension's resource.

/// An extension with a resource whose method is guarded by `{self}`.
const FILES_WIT: &str = "package example:files@0.1.0;
interface files {
  resource file {
    /// @capability kv:read:{self}
    check: func() -> bool;
  }
  /// @capability none
  open: func(index: u32) -> file;
  /// @capability none
  open-note: func() -> u32;
  /// @capability none
  check-rep: func(rep: u32) -> bool;
}
world w {
  import files;
  export run: func(index: u32) -> bool;
  export run-rep: func(rep: u32) -> bool;
  export wrong-type: func() -> bool;
}";

const FILES: &str = "example:files/files@0.1.0";

/// The guest: `run(i)` opens file `i`, calls `check` on it and drops it;
/// `run-rep(rep)` asks the host to check the raw rep `rep` as a `file`;
/// `wrong-type()` does so with the rep of a value of another type.
const GUEST_WAT: &str = r#"(module
  (import "example:files/files@0.1.0" "open" (func $open (param i32) (result i32)))
  (import "example:files/files@0.1.0" "[method]file.check" (func $check (param i32) (result i32)))
  (import "example:files/files@0.1.0" "[resource-drop]file" (func $drop (param i32)))
  (import "example:files/files@0.1.0" "open-note" (func $open_note (result i32)))
  (import "example:files/files@0.1.0" "check-rep" (func $check_rep (param i32) (result i32)))
  (memory (export "memory") 0)
  (func (export "run") (param i32) (result i32)
    (local $file i32) (local $allowed i32)
    (local.set $file (call $open (local.get 0)))
    (local.set $allowed (call $check (local.get $file)))
    (call $drop (local.get $file))
    (local.get $allowed))
  (func (export "run-rep") (param i32) (result i32)
    (call $check_rep (local.get 0)))
  (func (export "wrong-type") (result i32)
    (call $check_rep (call $open_note))))"#;

/// What a `file` handle stands for; its name is what `{self}` becomes.
struct File {
    name: String,
}

/// A host value of another type, in the same resource table.
struct Note;

/// The names `open(index)` gives its files.
const NAMES: [&str; 2] = ["docs/readme", "secret/key"];

/// The guard `#[airssys::host_fn]` generates for `[method]file.check`
/// (`kv:read:{self}`), written out: the handle's name, then the request.
static CHECK: HostFnGuard = HostFnGuard::new(
    "example:files/files@0.1.0#[method]file.check",
    "kv:read:**",
    Domain::Kv,
    Action::Read,
);

/// Runs the guard of `check` on the `file` handle `rep`; a denial's
/// message is kept in `denials`.
fn check(state: &HostState, rep: u32, denials: &Mutex<Vec<String>>) -> bool {
    let result = CHECK
        .handle(state, "file", rep)
        .and_then(|name| CHECK.authorize(state, &[name]));
    match result {
        Ok(()) => true,
        Err(denial) => {
            denials.lock().unwrap().push(denial.into_message());
            false
        }
    }
}

/// Links the `files` interface (what `bindgen!`'s `add_to_linker` would
/// do for `FILES_WIT` with `with: { "example:files/files/file": File }`).
fn link_files(
    linker: &mut Linker<HostState>,
    denials: &Arc<Mutex<Vec<String>>>,
) -> airssys_runtime::wasmtime::Result<()> {
    let mut files = linker.instance(FILES)?;
    files.resource(
        "file",
        ResourceType::host::<File>(),
        |mut store: StoreContextMut<'_, HostState>, rep| {
            store
                .data_mut()
                .resource_table()
                .delete(Resource::<File>::new_own(rep))?;
            Ok(())
        },
    )?;
    files.func_wrap(
        "open",
        |mut store: StoreContextMut<'_, HostState>, (index,): (u32,)| {
            let name = NAMES[index as usize].to_owned();
            let file = store.data_mut().resource_table().push(File { name })?;
            Ok((file,))
        },
    )?;
    files.func_wrap(
        "open-note",
        |mut store: StoreContextMut<'_, HostState>, (): ()| {
            let note = store.data_mut().resource_table().push(Note)?;
            Ok((note.rep(),))
        },
    )?;
    let seen = Arc::clone(denials);
    files.func_wrap(
        "[method]file.check",
        move |store: StoreContextMut<'_, HostState>, (file,): (Resource<File>,)| {
            Ok((check(store.data(), file.rep(), &seen),))
        },
    )?;
    let seen = Arc::clone(denials);
    files.func_wrap(
        "check-rep",
        move |store: StoreContextMut<'_, HostState>, (rep,): (u32,)| {
            Ok((check(store.data(), rep, &seen),))
        },
    )?;
    Ok(())
}

/// The `files` extension, naming a `file` handle by its `File::name`.
fn files(denials: &Arc<Mutex<Vec<String>>>) -> HostExtension {
    let denials = Arc::clone(denials);
    HostExtension::from_wit_str("files.wit", FILES_WIT)
        .expect("host WIT parses")
        .link(move |linker| link_files(linker, &denials))
        .handle_name("file", |file: &File| file.name.as_str())
}

/// The guest of `GUEST_WAT` as component `reader`, which asks for
/// `kv:read:docs/*`.
fn reader() -> Vec<u8> {
    let mut resolve = Resolve::new();
    let pkg = resolve
        .push_str("files.wit", FILES_WIT)
        .expect("guest WIT parses");
    let world = resolve.select_world(&[pkg], Some("w")).expect("world w");
    let module = wat::parse_str(GUEST_WAT).expect("guest WAT parses");
    let mut bytes = support::componentize(module, &resolve, world);
    let manifest = Manifest::from_toml_str(
        "[component]\nname = \"reader\"\nversion = \"0.1.0\"\n\n[capabilities]\nrequires = \
         [\"kv:read:docs/*\"]\n",
    )
    .expect("manifest");
    support::append_custom_section(&mut bytes, MANIFEST_SECTION, &manifest.encode());
    bytes
}

/// A `Write` whose bytes the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The audit records written so far.
    fn records(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap();
        std::str::from_utf8(&bytes)
            .expect("UTF-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON record per line"))
            .collect()
    }
}

/// A runtime with the `files` extension that grants `reader`
/// `kv:read:docs/*`, its audit log, and the denial messages.
fn files_runtime() -> (Runtime, Captured, Arc<Mutex<Vec<String>>>) {
    let denials = Arc::default();
    let audit = Captured::default();
    let grant = Capability::parse("kv:read:docs/*").expect("capability");
    let runtime = Runtime::builder()
        .pooling(false)
        .policy(Policy::builder().grant("reader", grant).build())
        .audit(AuditLog::to_writer(audit.clone()))
        .extension(files(&denials))
        .build()
        .expect("runtime builds");
    (runtime, audit, denials)
}

/// The `reader` component, loaded and instantiated in `runtime`.
fn reader_instance(runtime: &Runtime) -> airssys_runtime::Instance {
    runtime
        .load(&reader())
        .expect("loads")
        .instantiate()
        .expect("instantiates")
}

#[test]
fn self_names_a_granted_extension_handle() {
    let (runtime, audit, denials) = files_runtime();
    let mut instance = reader_instance(&runtime);
    let (allowed,): (bool,) = instance.call(None, "run", (0_u32,)).expect("run");
    assert!(allowed, "denied: {:?}", denials.lock().unwrap());
    let records = audit.records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["verdict"], "allow");
    assert_eq!(records[0]["resource"], "docs/readme", "the handle's name");
    assert_eq!(records[0]["component"], "reader");
}

#[test]
fn self_outside_the_grant_is_denied_and_named() {
    let (runtime, audit, denials) = files_runtime();
    let mut instance = reader_instance(&runtime);
    let (allowed,): (bool,) = instance.call(None, "run", (1_u32,)).expect("run");
    assert!(!allowed, "`secret/key` is not granted");
    let denials = denials.lock().unwrap();
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert!(
        denials[0].contains("`kv:read:secret/key`"),
        "the denial names the handle: {}",
        denials[0]
    );
    let records = audit.records();
    assert_eq!(records[0]["verdict"], "deny");
    assert_eq!(records[0]["resource"], "secret/key");
}

#[test]
fn an_unknown_or_foreign_rep_has_no_name() {
    let (runtime, audit, denials) = files_runtime();
    let mut instance = reader_instance(&runtime);
    let (allowed,): (bool,) = instance
        .call(None, "run-rep", (9_999_u32,))
        .expect("run-rep");
    assert!(!allowed, "no handle 9999");
    let (allowed,): (bool,) = instance.call(None, "wrong-type", ()).expect("wrong-type");
    assert!(!allowed, "a `Note` is not a `File`");
    let denials = denials.lock().unwrap();
    assert_eq!(denials.len(), 2, "{denials:?}");
    for denial in denials.iter() {
        assert!(denial.contains("unknown `file` handle"), "{denial}");
    }
    let records = audit.records();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records.iter().all(|r| r["verdict"] == "deny"),
        "{records:?}"
    );
}

#[test]
fn without_handle_name_self_is_denied() {
    let denials = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&denials);
    let extension = HostExtension::from_wit_str("files.wit", FILES_WIT)
        .expect("host WIT parses")
        .link(move |linker| link_files(linker, &seen));
    let grant = Capability::parse("kv:read:docs/*").expect("capability");
    let runtime = Runtime::builder()
        .pooling(false)
        .policy(Policy::builder().grant("reader", grant).build())
        .extension(extension)
        .build()
        .expect("runtime builds");
    let mut instance = reader_instance(&runtime);
    let (allowed,): (bool,) = instance.call(None, "run", (0_u32,)).expect("run");
    assert!(!allowed, "nobody names a `file` handle");
    let denials = denials.lock().unwrap();
    assert!(denials[0].contains("unknown `file` handle"), "{denials:?}");
}

/// `build()`'s refusal of a runtime with `extensions`: the package
/// named and the message.
fn build_error(extensions: Vec<HostExtension>) -> (String, String) {
    let mut builder = Runtime::builder().pooling(false);
    for extension in extensions {
        builder = builder.extension(extension);
    }
    let error = builder.build().expect_err("refused");
    let BuildError::Extension {
        package, message, ..
    } = error
    else {
        panic!("expected Extension, got {error:?}");
    };
    (package, message)
}

/// An extension serving `example:<package>`, whose one resource
/// `resource` has its handles named.
fn named(package: &str, resource: &str) -> HostExtension {
    let wit = format!(
        "package example:{package}@0.1.0; interface i {{ resource {resource} {{ f: func(); }} }}"
    );
    HostExtension::from_wit_str("x.wit", &wit)
        .expect("parses")
        .link(|_| Ok(()))
        .handle_name(resource, |file: &File| file.name.as_str())
}

#[test]
fn a_resource_named_by_two_extensions_is_refused() {
    let (package, message) = build_error(vec![named("one", "file"), named("two", "file")]);
    assert_eq!(package, "example:two@0.1.0");
    assert!(
        message.contains(r#"`.handle_name("file", ..)`"#),
        "{message}"
    );
    assert!(
        message.contains("the extension serving `example:one@0.1.0` already names"),
        "names the other extension: {message}"
    );
}

#[test]
fn a_resource_named_twice_is_refused() {
    let twice = named("one", "file").handle_name("file", |file: &File| file.name.as_str());
    let (package, message) = build_error(vec![twice]);
    assert_eq!(package, "example:one@0.1.0");
    assert!(message.contains("is given twice"), "{message}");
}

#[test]
fn a_contract_resource_name_is_refused() {
    for resource in ["bucket", "child"] {
        let (package, message) = build_error(vec![named("one", resource)]);
        assert_eq!(package, "example:one@0.1.0");
        assert!(
            message.contains(&format!(
                "`{resource}` is also a resource of the airssys contract"
            )),
            "{message}"
        );
    }
}

#[test]
fn a_resource_the_extension_does_not_serve_is_refused() {
    let extension = named("one", "file").handle_name("folder", |file: &File| file.name.as_str());
    let (_, message) = build_error(vec![extension]);
    assert!(
        message.contains("`example:one@0.1.0` has no resource `folder` (its resources: file)"),
        "{message}"
    );
}
