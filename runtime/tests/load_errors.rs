//! Load refusals that only linking finds: a component whose `airssys:*`
//! imports match the contract (so the load-time compatibility check passes)
//! but which also imports something outside the contract that this host
//! does not link. The load must fail with `LoadError::Unlinkable` naming
//! the import and what the host provides, never with wasmtime's bare
//! "function implementation is missing".
//!
//! The components are built in the test from WIT: a dummy core module
//! (wit-component) with the world's imports, encoded as a component, plus
//! an `airssys:manifest` custom section.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use airssys_runtime::contract::contract::Contract;
use airssys_runtime::contract::manifest::{MANIFEST_SECTION, Manifest};
use airssys_runtime::{LoadError, Policy, Runtime};
use wit_component::{ComponentEncoder, StringEncoding, dummy_module, embed_component_metadata};
use wit_parser::{LiftLowerAbi, ManglingAndAbi, Resolve};

/// A contract import (resolved against the host's own copy of the
/// contract, so it passes the compatibility check) next to an interface
/// from outside the contract.
const FOREIGN: &str = r#"
package test:unlinkable;

world w {
    import airssys:core/logging@1.0.0;
    import example:clock/time@1.0.0;
    import wasi:cli/environment@0.2.0;
    export run: func() -> u32;
}

package example:clock@1.0.0 {
    interface time {
        now: func() -> u64;
    }
}

package wasi:cli@0.2.0 {
    interface environment {
        get-environment: func() -> list<tuple<string, string>>;
        get-arguments: func() -> list<string>;
        initial-cwd: func() -> option<string>;
    }
}
"#;

/// A WASI interface the host links, but with a function it lacks.
const WASI_EXTRA: &str = r#"
package test:unlinkable;

world w {
    import airssys:core/logging@1.0.0;
    import wasi:cli/environment@0.2.0;
    export run: func() -> u32;
}

package wasi:cli@0.2.0 {
    interface environment {
        get-environment: func() -> list<tuple<string, string>>;
        get-secret: func(name: string) -> option<string>;
    }
}
"#;

const MANIFEST: &str = r#"
[component]
name = "unlinkable"
version = "0.1.0"
"#;

/// A component with the imports of world `w` in `wit` and an airssys
/// manifest; `airssys:*` references resolve to the host's embedded
/// contract.
fn component(wit: &str) -> Vec<u8> {
    let mut resolve: Resolve = Contract::embedded().resolve().clone();
    let pkg = resolve.push_str("test.wit", wit).expect("test WIT parses");
    let world = resolve.select_world(&[pkg], Some("w")).expect("world w");
    let mut module = dummy_module(&resolve, world, ManglingAndAbi::Legacy(LiftLowerAbi::Sync));
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).expect("embed");
    let mut bytes = ComponentEncoder::default()
        .module(&module)
        .expect("module")
        .validate(true)
        .encode()
        .expect("encode component");
    let manifest = Manifest::from_toml_str(MANIFEST).expect("manifest");
    support::append_custom_section(&mut bytes, MANIFEST_SECTION, &manifest.encode());
    bytes
}

fn runtime() -> Runtime {
    Runtime::builder()
        .policy(Policy::builder().build())
        .in_memory_storage()
        .max_instances(4)
        .build()
        .expect("runtime")
}

fn unlinkable(wit: &str) -> (String, String) {
    let bytes = component(wit);
    assert_eq!(
        Manifest::from_wasm(&bytes)
            .expect("section decodes")
            .map(|m| m.name),
        Some("unlinkable".to_owned()),
        "the manifest section is found"
    );
    match runtime().load(&bytes) {
        Err(LoadError::Unlinkable { component, message }) => (component, message),
        Err(other) => panic!("expected LoadError::Unlinkable, got: {other:?}"),
        Ok(_) => panic!("a component with an import the host lacks must not load"),
    }
}

#[test]
fn an_import_outside_the_contract_is_refused_with_an_actionable_message() {
    let (component, message) = unlinkable(FOREIGN);
    assert_eq!(component, "unlinkable");
    assert!(
        message
            .starts_with("component `unlinkable` imports something this host does not provide: "),
        "{message}"
    );
    assert!(message.contains("example:clock/time@1.0.0"), "{message}");
    assert!(
        message.contains("this host provides the airssys contract (airssys:core@"),
        "{message}"
    );
    assert!(message.contains("WASI 0.2 (deny-all)"), "{message}");
    assert!(
        !message.contains("function implementation is missing"),
        "{message}"
    );
}

#[test]
fn a_wasi_function_the_host_lacks_is_refused_with_an_actionable_message() {
    let (component, message) = unlinkable(WASI_EXTRA);
    assert_eq!(component, "unlinkable");
    assert!(
        message
            .starts_with("component `unlinkable` imports something this host does not provide: "),
        "{message}"
    );
    assert!(message.contains("wasi:cli/environment@0.2.0"), "{message}");
    assert!(
        message.contains("(this host does not provide `get-secret` in it)"),
        "{message}"
    );
    assert!(
        !message.contains("function implementation is missing"),
        "{message}"
    );
}

/// The same component without its foreign import loads: the refusal above
/// is about that import, not about how the component was built.
#[test]
fn the_same_component_without_the_foreign_import_loads() {
    let wit = r#"
package test:unlinkable;

world w {
    import airssys:core/logging@1.0.0;
    import wasi:cli/environment@0.2.0;
    export run: func() -> u32;
}

package wasi:cli@0.2.0 {
    interface environment {
        get-environment: func() -> list<tuple<string, string>>;
    }
}
"#;
    runtime()
        .load(&component(wit))
        .expect("a component importing only what the host links loads");
}
