//! `airssys new`: every template generates a crate that compiles for
//! `wasm32-wasip2` with warnings denied, and the mistake its README
//! suggests fails to compile with the message the README shows; a crate
//! generated with no options outside any workspace builds as it is.
//!
//! The crates are generated into temporary directories under
//! `<repo>/target/new-templates` (inside the airssys workspace, so the
//! crate's own `[workspace]` table is exercised and the pinned toolchain
//! applies) and share that directory as `CARGO_TARGET_DIR`, so airssys
//! and its dependencies compile once.

mod common;

use common::{repo_root, shared_target};
use std::path::Path;
use std::process::{Command, Output};

fn airssys(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(args)
        .current_dir(cwd)
        .env_remove("AIRSSYS_PATH")
        .output()
        .expect("runs airssys")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch directory under the shared target directory.
fn scratch() -> tempfile::TempDir {
    let parent = shared_target();
    std::fs::create_dir_all(&parent).expect("creates target/new-templates");
    tempfile::Builder::new()
        .prefix("crate-")
        .tempdir_in(parent)
        .expect("tempdir")
}

/// `cargo check --target wasm32-wasip2` with warnings denied.
fn cargo_check(dir: &Path) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    Command::new(cargo)
        .args(["check", "--target", "wasm32-wasip2", "--color", "never"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", shared_target())
        .env("RUSTFLAGS", "-Dwarnings")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("runs cargo")
}

/// Generates `name` from `template`, checks it compiles cleanly, then
/// applies the README's mistake and checks the README's error.
fn template_compiles_and_its_mistake_does_not(template: &str, name: &str, type_name: &str) {
    let tmp = scratch();
    let root = repo_root();
    let out = airssys(
        &[
            "new",
            name,
            "--template",
            template,
            "--path",
            tmp.path().to_str().expect("utf-8 path"),
            "--airssys-path",
            root.to_str().expect("utf-8 path"),
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "policy.toml",
        "README.md",
        ".gitignore",
    ] {
        assert!(stdout.contains(&format!("  {file}\n")), "{file}: {stdout}");
    }
    assert!(
        stdout.contains("airssys run . --policy policy.toml"),
        "{stdout}"
    );

    let dir = tmp.path().join(name);
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).expect(file);
    let cargo_toml = read("Cargo.toml");
    let root_canonical = std::fs::canonicalize(&root).expect("canonical root");
    assert!(
        cargo_toml.contains(&format!(
            "airssys = {{ path = \"{}\" }}",
            root_canonical.display()
        )),
        "{cargo_toml}"
    );
    assert!(cargo_toml.contains("\n[workspace]\n"), "{cargo_toml}");
    assert!(
        cargo_toml.contains("crate-type = [\"cdylib\"]"),
        "{cargo_toml}"
    );
    let lib = read("src/lib.rs");
    assert!(lib.contains(&format!("struct {type_name};")), "{lib}");
    let policy = read("policy.toml");
    assert!(policy.contains(&format!("[components.{name}]")), "{policy}");

    // The workspace's lock file pins the dependencies to the versions the
    // workspace tests (cargo drops the entries this crate does not use),
    // and spares a crates.io index update.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).expect("copies Cargo.lock");
    let checked = cargo_check(&dir);
    assert!(
        checked.status.success(),
        "template `{template}` does not compile cleanly:\n{}",
        text(&checked.stderr)
    );

    // The README's mistake: remove the line it names from `requires`.
    let readme = read("README.md");
    let removed = readme
        .lines()
        .find_map(|l| l.strip_prefix("Remove the line `"))
        .and_then(|l| l.split_once("` from `requires`"))
        .map(|(line, _)| line)
        .expect("the README names a line to remove");
    let expected_error = readme
        .lines()
        .find(|l| l.starts_with("error[E0277]: "))
        .expect("the README shows the error");
    let expected_note = readme
        .lines()
        .find(|l| l.trim_start().starts_with("= note: add "))
        .expect("the README shows the note")
        .trim_start();
    assert!(
        expected_error.contains("does not declare capability"),
        "{expected_error}"
    );
    let without: Vec<&str> = lib.lines().filter(|l| l.trim() != removed).collect();
    assert_eq!(
        without.len() + 1,
        lib.lines().count(),
        "`{removed}` is one line of src/lib.rs"
    );
    std::fs::write(dir.join("src/lib.rs"), without.join("\n") + "\n").expect("writes lib.rs");
    let failed = cargo_check(&dir);
    let stderr = text(&failed.stderr);
    assert!(!failed.status.success(), "compiled without `{removed}`");
    assert!(
        stderr.contains(expected_error),
        "expected `{expected_error}` in:\n{stderr}"
    );
    assert!(
        stderr.contains(expected_note),
        "expected `{expected_note}` in:\n{stderr}"
    );
}

#[test]
fn storage_template() {
    template_compiles_and_its_mistake_does_not("storage", "tmpl-storage", "TmplStorage");
}

#[test]
fn messaging_template() {
    template_compiles_and_its_mistake_does_not("messaging", "tmpl-messaging", "TmplMessaging");
}

#[test]
fn network_template() {
    template_compiles_and_its_mistake_does_not("network", "tmpl_network", "TmplNetwork");
}

#[test]
fn filesystem_template() {
    template_compiles_and_its_mistake_does_not("filesystem", "tmpl-fs2", "TmplFs2");
}

#[test]
fn the_default_dependency_is_the_repository_built_from() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = airssys(&["new", "hello"], tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let cargo_toml =
        std::fs::read_to_string(tmp.path().join("hello/Cargo.toml")).expect("Cargo.toml");
    let root = std::fs::canonicalize(repo_root()).expect("canonical root");
    assert!(
        cargo_toml.contains(&format!("airssys = {{ path = \"{}\" }}", root.display())),
        "{cargo_toml}"
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("(template `storage`)"),
        "storage is the default"
    );
    assert!(
        stdout.contains(&format!(
            "airssys from {} (the repository this airssys command was built from",
            root.display()
        )),
        "{stdout}"
    );
}

/// What a user of `cargo install --path cli` gets: `airssys new` with no
/// `--airssys-path`, in a temporary directory outside any workspace, then
/// every command of the `next:` lines it prints, run as printed (`cd`,
/// `cargo ...`, `airssys run ...`; `airssys run` builds the crate for
/// `wasm32-wasip2` as
/// generated: no lock file copied in, cargo resolves the dependencies
/// itself). The target directory is shared with the other tests here
/// (`CARGO_TARGET_DIR`), so only the first run compiles airssys. Returns
/// the last command's output.
fn new_then_next_lines(template: &str, name: &str) -> Output {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = std::fs::canonicalize(tmp.path()).expect("canonical tempdir");
    let root = std::fs::canonicalize(repo_root()).expect("canonical root");
    assert!(
        !outside.starts_with(&root),
        "the temporary directory {} is inside the repository",
        outside.display()
    );
    let out = airssys(&["new", name, "--template", template], &outside);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!outside.join(name).join("Cargo.lock").exists());
    let next: Vec<&str> = stdout
        .lines()
        .skip_while(|line| *line != "next:")
        .skip(1)
        .map(|line| line.split(" #").next().unwrap_or(line).trim())
        .collect();
    assert!(!next.is_empty(), "no `next:` lines in\n{stdout}");
    let mut cwd = outside.clone();
    let mut last = None;
    for line in next {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["cd", dir] => cwd = cwd.join(dir),
            ["airssys", args @ ..] => {
                let out = Command::new(env!("CARGO_BIN_EXE_airssys"))
                    .args(args)
                    .current_dir(&cwd)
                    .env("CARGO_TARGET_DIR", shared_target())
                    .env_remove("AIRSSYS_PATH")
                    .env_remove("RUSTFLAGS")
                    .env_remove("CARGO_ENCODED_RUSTFLAGS")
                    .output()
                    .expect("runs airssys");
                last = Some(out);
            }
            ["cargo", args @ ..] => {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
                let out = Command::new(cargo)
                    .args(args)
                    .current_dir(&cwd)
                    .env("CARGO_TARGET_DIR", shared_target())
                    .env_remove("RUSTFLAGS")
                    .env_remove("CARGO_ENCODED_RUSTFLAGS")
                    .output()
                    .expect("runs cargo");
                assert!(
                    out.status.success(),
                    "`{line}` failed:\n{}",
                    text(&out.stderr)
                );
                last = Some(out);
            }
            _ => panic!("a `next:` line this test does not know how to run: `{line}`"),
        }
    }
    last.expect("a `next:` line runs airssys")
}

/// Exit 0, the component loaded and started, and `expected` in the output.
fn ran(out: &Output, name: &str, expected: &str) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("loaded `{name}`")), "{stdout}");
    assert!(stdout.contains("\ninit\n"), "{stdout}");
    assert!(
        stdout.contains(expected),
        "`{expected}` not in\n{stdout}\n{stderr}"
    );
}

#[test]
fn storage_crate_runs_as_its_next_lines_say_outside_the_workspace() {
    let out = new_then_next_lines("storage", "out-kv");
    ran(&out, "out-kv", "log info out-kv: started 1 time(s)");
}

#[test]
fn messaging_crate_runs_as_its_next_lines_say_outside_the_workspace() {
    let out = new_then_next_lines("messaging", "out-msg");
    ran(
        &out,
        "out-msg",
        "  allow msg:publish:out-msg.started (publish)",
    );
}

#[test]
fn filesystem_crate_runs_as_its_next_lines_say_outside_the_workspace() {
    let out = new_then_next_lines("filesystem", "out-fs");
    // `--mount /data=src`: the component sees the crate's `src/lib.rs`.
    ran(&out, "out-fs", "log info out-fs: /data/lib.rs: ");
}

/// The network template calls example.com:443, which a test machine may
/// not reach: the component loads and starts, and either logs the
/// response or its `init` fails with the host's network error as text (not
/// Rust debug text such as `Unresolved("..")`).
#[test]
fn network_crate_runs_as_its_next_lines_say_outside_the_workspace() {
    let out = new_then_next_lines("network", "out-net");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.contains("loaded `out-net`"), "{stdout}\n{stderr}");
    assert!(stdout.contains("\ninit\n"), "{stdout}\n{stderr}");
    if out.status.code() != Some(0) {
        let all = format!("{stdout}\n{stderr}");
        assert!(!all.contains("(\""), "Rust debug text in\n{all}");
    } else {
        assert!(stdout.contains("GET example.com:443/: status"), "{stdout}");
    }
}

#[test]
fn airssys_path_comes_from_the_environment_too() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(["new", "from-env", "-t", "network"])
        .current_dir(tmp.path())
        .env("AIRSSYS_PATH", repo_root())
        .output()
        .expect("runs airssys");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let cargo_toml =
        std::fs::read_to_string(tmp.path().join("from-env/Cargo.toml")).expect("Cargo.toml");
    assert!(cargo_toml.contains("airssys = { path = \""), "{cargo_toml}");
}

#[test]
fn an_airssys_path_that_is_not_airssys_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = airssys(
        &[
            "new",
            "x",
            "--airssys-path",
            tmp.path().to_str().expect("utf-8"),
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("error: --airssys-path "), "{stderr}");
    assert!(
        stderr.contains("root of the airssys repository"),
        "{stderr}"
    );
    assert!(!tmp.path().join("x").exists(), "nothing is created");
}

#[test]
fn a_bad_name_is_refused_naming_the_character() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = airssys(&["new", "my.app"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: invalid name `my.app`: '.' at byte 2 is not allowed; use ASCII letters, digits, `-` and `_`\n"
    );
    let out = airssys(&["new", "9lives"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("starts with '9'"));
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("reads").count(),
        0,
        "nothing is created"
    );
}

#[test]
fn an_existing_non_empty_directory_is_not_overwritten() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("taken");
    std::fs::create_dir_all(dir.join("src")).expect("mkdir");
    std::fs::write(dir.join("src/lib.rs"), "// mine\n").expect("write");
    let out = airssys(&["new", "taken", "-t", "filesystem"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("already exists and is not empty"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("src/lib.rs")).expect("read"),
        "// mine\n"
    );
    assert!(!dir.join("Cargo.toml").exists());

    // An empty directory is used.
    std::fs::create_dir(tmp.path().join("empty")).expect("mkdir");
    let out = airssys(&["new", "empty"], tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(tmp.path().join("empty/src/lib.rs").is_file());
}
