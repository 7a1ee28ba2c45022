//! Helpers shared by the CLI's end-to-end tests: run the built `airssys`
//! binary and read what it printed.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `airssys` with `args` and waits for it.
pub(crate) fn airssys(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(args)
        .output()
        .unwrap()
}

/// What the command printed on stdout.
pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// What the command printed on stderr.
pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// What the command printed on stdout, after asserting that it exited 0
/// (showing both streams when it did not).
pub(crate) fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Asserts that `needles` occur in `haystack` in this order.
pub(crate) fn assert_in_order(haystack: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        let Some(at) = haystack[from..].find(needle) else {
            panic!("`{needle}` not found (in order) in:\n{haystack}");
        };
        from += at + needle.len();
    }
}

/// The repository root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Writes a component crate named `name` whose every request is answered
/// with `<name> got <payload>`, and returns its directory (under
/// `<repo>/target/new-templates/fixtures`, inside the airssys workspace so
/// the pinned toolchain applies). It declares no capability, so it loads
/// under any policy. Files already holding the same text are not
/// rewritten, so the crate is not rebuilt for nothing.
pub(crate) fn echo_crate(name: &str) -> PathBuf {
    let repo = std::fs::canonicalize(repo()).unwrap();
    let dir = repo
        .join("target")
        .join("new-templates")
        .join("fixtures")
        .join(name);
    let cargo_toml = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
         publish = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n\
         airssys = {{ path = {:?} }}\n\n[workspace]\n",
        repo.display().to_string()
    );
    let lib_rs = "//! Answers each request with its name and the payload.\n\
        \n\
        #[airssys::component]\n\
        struct Echo;\n\
        \n\
        impl guest::Lifecycle for Echo {}\n\
        \n\
        impl guest::Handler for Echo {\n\
        \x20   fn handle_request(\n\
        \x20       _source: String,\n\
        \x20       payload: Vec<u8>,\n\
        \x20   ) -> Result<Vec<u8>, guest::handler::Error> {\n\
        \x20       let payload = String::from_utf8_lossy(&payload);\n\
        \x20       Ok(format!(\"{} got {payload}\", env!(\"CARGO_PKG_NAME\")).into_bytes())\n\
        \x20   }\n\
        }\n";
    for (path, text) in [
        (dir.join("Cargo.toml"), cargo_toml.as_str()),
        (dir.join("src").join("lib.rs"), lib_rs),
    ] {
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            continue;
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    dir
}
