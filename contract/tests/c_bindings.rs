//! The contract is language-neutral: wit-bindgen-c generates bindings for
//! every world in `wit/`, and the C compiler accepts them with warnings as
//! errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use wit_bindgen_core::Files;
use wit_parser::{Resolve, WorldId};

/// The C compiler; `CC` overrides it, as in most build systems.
fn compiler() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_owned())
}

fn load() -> Resolve {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let mut resolve = Resolve::default();
    if let Err(err) = resolve.push_dir(&dir) {
        panic!("wit/ does not resolve:\n{}", resolve.render_error(&err));
    }
    resolve
}

/// Generates the C bindings of `world` into `out` and returns the `.c`
/// files written.
fn generate(resolve: &Resolve, world: WorldId, out: &Path) -> Vec<PathBuf> {
    // The generator may add nominal type ids to the resolve: give it a copy.
    let mut resolve = resolve.clone();
    let mut files = Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .unwrap_or_else(|err| panic!("wit-bindgen-c failed: {err:?}"));
    let mut sources = Vec::new();
    for (name, contents) in files.iter() {
        let path = out.join(name);
        std::fs::write(&path, contents)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
        if name.ends_with(".c") {
            sources.push(path);
        }
    }
    sources
}

/// Compiles `source` to an object file, panicking with the compiler's
/// output on failure.
fn compile(source: &Path, include: &Path, label: &str) {
    let cc = compiler();
    let object = source.with_extension("o");
    let output = Command::new(&cc)
        .args(["-c", "-std=c11", "-Wall", "-Wextra", "-Werror"])
        // The wasm import/export attributes mean nothing to a native
        // compiler, which warns that it ignores them; every other warning
        // stays an error.
        .arg("-Wno-attributes")
        .arg("-I")
        .arg(include)
        .arg(source)
        .arg("-o")
        .arg(&object)
        .output()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run the C compiler `{cc}` ({err}); install a C compiler (e.g. gcc) \
                 or set CC to one"
            )
        });
    assert!(
        output.status.success(),
        "world {label}: `{cc}` rejected {}:\n{}{}",
        source.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(object.is_file(), "world {label}: no object file written");
}

#[test]
fn every_world_has_c_bindings_that_compile() {
    let resolve = load();
    let mut compiled = Vec::new();
    for (id, world) in &resolve.worlds {
        let package = world
            .package
            .map(|p| resolve.packages[p].name.to_string())
            .unwrap_or_default();
        let label = format!("{package} {}", world.name);
        // One directory per world: worlds of both packages share names.
        let dir = tempfile::tempdir().expect("a temporary directory");
        let sources = generate(&resolve, id, dir.path());
        assert!(!sources.is_empty(), "world {label}: no .c file generated");
        for source in &sources {
            compile(source, dir.path(), &label);
        }
        compiled.push(label);
    }
    assert!(
        compiled.len() >= 4,
        "expected at least four worlds, compiled {compiled:?}"
    );
}
