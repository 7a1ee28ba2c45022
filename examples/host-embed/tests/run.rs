//! Builds the `greeter-guest` component (`component/`) for wasm32-wasip2,
//! runs the `host-embed` binary on it and checks what it prints: the
//! grant, one allowed and one denied call of the host's own greeter
//! service through its function and the same through a method of its
//! `phrasebook` resource (`{self}`), and the audit trail with the
//! contract's `log:write` too; that is the output its README shows. Its
//! second "mistake to try" (the English grant deleted from `src/main.rs`)
//! is the host's service and policy without that grant, which must refuse
//! the component with the README's lines. Its third (the line
//! `.handle_name("phrasebook", ..)` deleted from `src/service.rs`) denies
//! both calls through a `phrasebook` handle with the README's lines.
//!
//! The component builds into `<repo>/target/new-templates`, the target
//! directory the CLI tests share, so airssys compiles for wasm32-wasip2
//! once.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

// The host's service, as `src/main.rs` links it.
#[path = "../src/service.rs"]
#[allow(dead_code)]
mod service;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("examples/host-embed is two levels below the root")
        .to_path_buf()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `cargo build --target wasm32-wasip2 --release` in `component/`.
fn build_guest() -> PathBuf {
    let target = repo_root().join("target").join("new-templates");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--target", "wasm32-wasip2", "--release"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("component"))
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("runs cargo");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let wasm = target.join("wasm32-wasip2/release/greeter_guest.wasm");
    assert!(wasm.is_file(), "{} was built", wasm.display());
    wasm
}

#[test]
fn the_host_serves_its_own_interface_and_guards_it() {
    let wasm = build_guest();
    let out = Command::new(env!("CARGO_BIN_EXE_host-embed"))
        .arg(&wasm)
        .output()
        .expect("runs host-embed");
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let denied_fr = "refused: denied: component `greeter-guest` lacks `kv:read:phrasebook/fr`: \
                     no grant of the host policy covers it (its manifest declares \
                     `kv:read:phrasebook/fr`); grant `kv:read:phrasebook/fr` in the host policy";
    let function = "example:greeter/greet@0.1.0#greet";
    // The resource's method: its `{self}` is the language the handle was
    // opened for, which only `.handle_name("phrasebook", ..)` tells the
    // guard (without it both calls are denied on an unknown handle).
    let method = "example:greeter/greet@0.1.0#[method]phrasebook.greet";
    let expected = [
        "loaded `greeter-guest`, granted: log:write, kv:read:phrasebook/en\n".to_owned(),
        "en Ada: Hello, Ada!\n".to_owned(),
        format!("fr Ada: {denied_fr}\n"),
        "book en Ada: Hello, Ada!\n".to_owned(),
        format!("book fr Ada: {denied_fr}\n"),
        format!(
            "  allow kv:read:phrasebook/en  allowed by grant `kv:read:phrasebook/en`  (in {function})\n"
        ),
        "  allow log:write:info  allowed by grant `log:write`  (in airssys:core/logging#log)\n"
            .to_owned(),
        format!(
            "  deny  kv:read:phrasebook/fr  denied: no grant covers the request (deny by default)  \
             (in {function})\n"
        ),
        format!(
            "  allow kv:read:phrasebook/en  allowed by grant `kv:read:phrasebook/en`  (in {method})\n"
        ),
        format!(
            "  deny  kv:read:phrasebook/fr  denied: no grant covers the request (deny by default)  \
             (in {method})\n"
        ),
    ];
    for line in &expected {
        assert!(
            stdout.contains(line.as_str()),
            "missing {line:?} in:\n{stdout}"
        );
    }
    // The README shows this output, line for line.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("reads examples/host-embed/README.md");
    let shown = readme
        .split("It prints:\n\n```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README shows the output after `It prints:`");
    assert_eq!(
        stdout, shown,
        "examples/host-embed/README.md shows another output than the host prints"
    );
    // Each allowed greeting is logged: once per request form.
    assert_eq!(
        stdout.matches("  allow log:write:info ").count(),
        2,
        "{stdout}"
    );
}

#[test]
fn without_a_component_it_prints_its_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_host-embed"))
        .output()
        .expect("runs host-embed");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("usage: host-embed <greeter_guest.wasm>"),
        "{}",
        text(&out.stderr)
    );
}

/// The README's second mistake: `src/main.rs` without the line granting
/// `kv:read:phrasebook/en`. The host (its policy without that grant, its
/// service, the component) refuses to load the component and prints
/// (`error: ..`) the lines the README shows.
#[test]
fn without_the_english_grant_the_host_refuses_the_component_as_the_readme_shows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let main = std::fs::read_to_string(root.join("src/main.rs")).unwrap();
    let deleted = ".grant(\"greeter-guest\", \"kv:read:phrasebook/en\".parse()?)";
    assert!(main.contains(deleted), "src/main.rs has the line {deleted}");
    assert!(
        main.contains(".grant(\"greeter-guest\", \"log:write\".parse()?)"),
        "src/main.rs grants log:write"
    );
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("`{deleted}`")),
        "the README deletes {deleted}"
    );
    let shown = readme
        .split("```text\nerror: component `greeter-guest` requires")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .map(|rest| format!("error: component `greeter-guest` requires{rest}"))
        .expect("the README shows the load refusal");

    let wasm = build_guest();
    let policy = airssys_runtime::Policy::builder()
        .grant("greeter-guest", "log:write".parse().unwrap())
        .build();
    let runtime = airssys_runtime::Runtime::builder()
        .policy(policy)
        .extension(service::extension().unwrap())
        .build()
        .unwrap();
    let Err(error) = runtime.load_file(&wasm) else {
        panic!("greeter-guest loads without kv:read:phrasebook/en");
    };
    assert_eq!(
        format!("error: {error}\n"),
        shown,
        "examples/host-embed/README.md shows another refusal than the host prints"
    );
}

/// The README's third mistake: `src/service.rs` without the line
/// `.handle_name("phrasebook", ..)`, which is `service::greeter()` (the
/// extension that `extension()` names the handles of). The function
/// `greet` still works, but both calls through a `phrasebook` handle are
/// denied on an unknown handle, as the README shows, in `src/main.rs`'s
/// words (`<request>: refused: <error>`).
#[test]
fn without_the_handle_name_every_method_call_is_denied_as_the_readme_shows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(root.join("src/service.rs")).unwrap();
    let deleted =
        "        .handle_name(\"phrasebook\", |open: &OpenBook| open.language.as_str()))\n";
    let extension = "pub(crate) fn extension() -> Result<HostExtension, BuildError> {\n    \
                     Ok(greeter()?\n        // `{self}` of a `phrasebook`'s method: the \
                     language it was opened for.\n";
    assert!(
        source.contains(&format!("{extension}{deleted}}}\n")),
        "src/service.rs: extension() is greeter() and the line {deleted}"
    );
    let main = std::fs::read_to_string(root.join("src/main.rs")).unwrap();
    assert!(
        main.contains("Err(error) => println!(\"{request}: refused: {error}\"),"),
        "src/main.rs prints a refusal as `<request>: refused: <error>`"
    );
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("delete the line `.handle_name(\"phrasebook\", ..)` in\n`src/service.rs`"),
        "the README deletes .handle_name(\"phrasebook\", ..)"
    );
    let shown = readme
        .split("```text\nbook en Ada: refused:")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .map(|rest| format!("book en Ada: refused:{rest}"))
        .expect("the README shows the two refused method calls");

    let wasm = build_guest();
    let policy = airssys_runtime::Policy::builder()
        .grant("greeter-guest", "log:write".parse().unwrap())
        .grant("greeter-guest", "kv:read:phrasebook/en".parse().unwrap())
        .build();
    let runtime = airssys_runtime::Runtime::builder()
        .policy(policy)
        .extension(service::greeter().unwrap())
        .build()
        .unwrap();
    let mut instance = runtime.load_file(&wasm).unwrap().instantiate().unwrap();
    // The function does not need the handle's name.
    match instance.request("host-embed", b"en Ada").unwrap() {
        Ok(reply) => assert_eq!(text(&reply), "Hello, Ada!"),
        Err(error) => panic!("en Ada: refused: {error}"),
    }
    let mut printed = String::new();
    for request in ["book en Ada", "book fr Ada"] {
        match instance.request("host-embed", request.as_bytes()).unwrap() {
            Ok(reply) => printed.push_str(&format!("{request}: {}\n", text(&reply))),
            Err(error) => printed.push_str(&format!("{request}: refused: {error}\n")),
        }
    }
    assert_eq!(
        printed, shown,
        "examples/host-embed/README.md shows other refusals than the host prints"
    );
}
