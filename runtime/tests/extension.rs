//! `HostExtension`: an embedder's own WIT package served next to the
//! contract. Components importing it are checked against the extension's
//! WIT at load time (a mismatch is refused with the contract's wording),
//! link when the extension's functions are linked, and get the extension's
//! per-instance state; a misconfigured extension stops `build()`.
//!
//! The components are dummy core modules with embedded WIT metadata,
//! encoded by wit-component (no wasm build needed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use airssys_runtime::wasmtime::component::Linker;
use airssys_runtime::{BuildError, HostExtension, HostState, LoadError, Policy, Runtime};
use wit_component::{ComponentEncoder, StringEncoding, dummy_module, embed_component_metadata};
use wit_parser::{LiftLowerAbi, ManglingAndAbi, Resolve};

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
    let mut module = dummy_module(&resolve, world, ManglingAndAbi::Legacy(LiftLowerAbi::Sync));
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).expect("embed");
    ComponentEncoder::default()
        .module(&module)
        .expect("module")
        .validate(true)
        .encode()
        .expect("encode component")
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
    let BuildError::Extension { package, message } = &error else {
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
