//! The documentation's code, compiled and run: every Rust snippet of
//! `README.md`, `docs/component-guide.md` and `docs/host-guide.md` must
//! compile, and every shell command of `README.md` is run and its output
//! checked.
//!
//! Fences:
//!
//! - ` ```rust ` must compile. A snippet holding `#[airssys::component` is
//!   a component: a crate of its own checked for `wasm32-wasip2`; any
//!   other is a host program (`src/main.rs`) checked for the host.
//! - ` ```rust,ignore ` is deliberately partial and skipped, and so is any
//!   fence whose previous line is `<!-- no-test: <reason> -->`.
//! - `<!-- file: <path> -->` before a fence puts the block at `<path>` in
//!   the crate the page's marked blocks make together (`docs/host-guide.md`:
//!   `Cargo.toml`, `wit/*.wit`, `src/main.rs` and the component in
//!   `guest/src/lib.rs`); `airssys` and `airssys-runtime` dependencies are
//!   pointed at this checkout, and `wit/deps/core` is the checkout's.
//! - A ` ```sh ` block of `README.md` is run, each line a command, in a
//!   fresh directory holding the checkout's files (not its `target/`),
//!   `cargo run -p airssys-cli --` standing for the built `airssys`; the
//!   next ` ```text ` block lists lines its output must hold, in order.
//!
//! Crates are written under `<repo>/target/new-templates` (inside the
//! checkout, so the pinned toolchain applies) and share it as
//! `CARGO_TARGET_DIR` with the other CLI tests, so airssys and its
//! dependencies compile once.

#![allow(clippy::unwrap_used)]

mod common;

use common::{repo_root, shared_target};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One fenced block of a Markdown page.
#[derive(Debug)]
struct Block {
    /// `page:line` of the opening fence.
    at: String,
    /// The fence's info string (`rust`, `rust,ignore`, `sh`, ...).
    info: String,
    /// `<!-- no-test: .. -->` before the fence.
    no_test: bool,
    /// `<!-- file: .. -->` before the fence.
    file: Option<String>,
    /// The text between the fences, de-indented by the fence's indent.
    body: String,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The fenced blocks of `page` (relative to the repository root).
fn blocks(page: &str) -> Vec<Block> {
    let source = std::fs::read_to_string(repo_root().join(page)).unwrap();
    let lines: Vec<&str> = source.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let indent = line.len() - trimmed.len();
        let before = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim())
            .unwrap_or("");
        let comment = |key: &str| {
            before
                .strip_prefix("<!--")
                .and_then(|c| c.strip_suffix("-->"))
                .and_then(|c| c.trim().strip_prefix(key))
                .map(|rest| rest.trim().to_owned())
        };
        let no_test = comment("no-test:");
        assert!(
            no_test.as_ref().is_none_or(|reason| !reason.is_empty()),
            "{page}:{}: `<!-- no-test: -->` needs a reason",
            i + 1
        );
        let mut body = String::new();
        let mut j = i + 1;
        while j < lines.len() && !lines[j].trim_start().starts_with("```") {
            let l = lines[j];
            body.push_str(l.get(indent.min(l.len())..).unwrap_or(""));
            body.push('\n');
            j += 1;
        }
        assert!(j < lines.len(), "{page}:{}: unclosed fence", i + 1);
        out.push(Block {
            at: format!("{page}:{}", i + 1),
            info: info.trim().to_owned(),
            no_test: no_test.is_some(),
            file: comment("file:"),
            body,
        });
        i = j + 1;
    }
    out
}

/// A scratch directory under the shared target directory.
fn scratch(prefix: &str) -> tempfile::TempDir {
    std::fs::create_dir_all(shared_target()).unwrap();
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(shared_target())
        .unwrap()
}

fn write(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// `airssys = "<anything>"` and `airssys-runtime = "<anything>"` pointed
/// at this checkout.
fn local_dependencies(cargo_toml: &str) -> String {
    let root = repo_root();
    cargo_toml
        .lines()
        .map(|line| match line.split_once('=') {
            Some((name, _)) if name.trim() == "airssys" => {
                format!("airssys = {{ path = {:?} }}", root.display().to_string())
            }
            Some((name, _)) if name.trim() == "airssys-runtime" => format!(
                "airssys-runtime = {{ path = {:?} }}",
                root.join("runtime").display().to_string()
            ),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes a crate of its own in `dir` (`Cargo.toml` with a `[workspace]`
/// table and the workspace's lock file).
fn crate_at(dir: &Path, cargo_toml: &str, source: (&str, &str)) {
    write(
        &dir.join("Cargo.toml"),
        &format!("{cargo_toml}\n[workspace]\n"),
    );
    write(&dir.join(source.0), source.1);
    std::fs::copy(repo_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
}

fn component_toml(name: &str) -> String {
    local_dependencies(&format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
         publish = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nairssys = \"0.1\"\n"
    ))
}

/// `cargo check` of the crate in `dir` (for `wasm32-wasip2` when
/// `component`), with warnings denied; the error names `at`.
fn check(dir: &Path, component: bool, at: &str) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.args(["check", "--color", "never", "--quiet"]);
    if component {
        command.args(["--target", "wasm32-wasip2"]);
    }
    let out = command
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", shared_target())
        .env("RUSTFLAGS", "-Dwarnings")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "the snippet at {at} does not compile (mark it ```rust,ignore or \
             `<!-- no-test: reason -->` if it is partial on purpose):\n{}",
            text(&out.stderr)
        ))
    }
}

fn is_component(block: &Block) -> bool {
    block.body.contains("#[airssys::component")
}

/// The Rust snippets of the component pages, each a crate of its own.
#[test]
fn rust_snippets_of_readme_and_component_guide_compile() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for page in ["README.md", "docs/component-guide.md"] {
        for block in blocks(page) {
            if block.info != "rust" || block.no_test {
                continue;
            }
            assert!(
                is_component(&block),
                "{}: a Rust snippet of {page} that is not a component; mark it",
                block.at
            );
            let tmp = scratch("snippet-");
            crate_at(
                tmp.path(),
                &component_toml("snippet"),
                ("src/lib.rs", &block.body),
            );
            checked += 1;
            if let Err(e) = check(tmp.path(), true, &block.at) {
                failures.push(e);
            }
        }
    }
    assert!(checked >= 2, "found only {checked} snippets");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `docs/host-guide.md`: its `<!-- file: .. -->` blocks make a host crate
/// and, in `guest/`, a component; both must compile. Unmarked ` ```rust `
/// blocks there are refused (mark them or give them a file).
#[test]
fn host_guide_host_and_guest_compile() {
    let tmp = scratch("host-guide-");
    let dir = tmp.path();
    let mut guest = None;
    let mut host_source = false;
    for block in blocks("docs/host-guide.md") {
        if block.no_test {
            continue;
        }
        let Some(file) = &block.file else {
            assert!(
                block.info != "rust",
                "{}: a ```rust snippet of the host guide with neither \
                 `<!-- file: .. -->` nor `ignore`/`no-test`",
                block.at
            );
            continue;
        };
        if file == "Cargo.toml" {
            write(&dir.join(file), &local_dependencies(&block.body));
        } else if file.starts_with("guest/") {
            assert!(is_component(&block), "{}: not a component", block.at);
            guest = Some(block);
        } else {
            host_source |= file == "src/main.rs";
            write(&dir.join(file), &block.body);
        }
    }
    assert!(host_source, "the host guide shows no `src/main.rs`");
    let guest = guest.expect("the host guide shows the component (`guest/src/lib.rs`)");
    // The guide says: copy `wit/deps/core` of the airssys sources.
    let core = repo_root().join("wit").join("deps").join("core");
    for entry in std::fs::read_dir(&core).unwrap() {
        let entry = entry.unwrap();
        std::fs::create_dir_all(dir.join("wit/deps/core")).unwrap();
        std::fs::copy(
            entry.path(),
            dir.join("wit/deps/core").join(entry.file_name()),
        )
        .unwrap();
    }
    let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    write(
        &dir.join("Cargo.toml"),
        &format!("{cargo_toml}\n[workspace]\n"),
    );
    std::fs::copy(repo_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let guest_dir = dir.join("guest");
    crate_at(
        &guest_dir,
        &component_toml("greeter-guest"),
        ("src/lib.rs", &guest.body),
    );

    let mut failures = Vec::new();
    if let Err(e) = check(&guest_dir, true, &guest.at) {
        failures.push(e);
    }
    if let Err(e) = check(dir, false, "docs/host-guide.md (src/main.rs)") {
        failures.push(e);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Splits a shell line into words (single and double quotes, no
/// expansion: the README's commands use none).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// A fresh directory holding the checkout's files (symbolic links to its
/// top-level entries, without `target/` and `.git`), as a new clone would.
/// Its path is fixed, so the crates the commands build are compiled once
/// across runs.
fn fresh_checkout() -> PathBuf {
    let dir = shared_target().join("readme-checkout");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(repo_root()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        std::os::unix::fs::symlink(entry.path(), dir.join(&name)).unwrap();
    }
    dir
}

fn run_line(line: &str, cwd: &Path, at: &str) -> Output {
    let words = words(line);
    let (program, args): (String, &[String]) = match words.iter().position(|w| w == "--") {
        Some(dash) if words[..dash] == ["cargo", "run", "-p", "airssys-cli"] => {
            (env!("CARGO_BIN_EXE_airssys").to_owned(), &words[dash + 1..])
        }
        _ => panic!("{at}: the harness runs `cargo run -p airssys-cli -- ..` lines only: {line}"),
    };
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", shared_target())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap()
}

/// Every unmarked ` ```sh ` block of `README.md`, run as written in a fresh
/// checkout; the ` ```text ` block after it lists what it prints.
#[test]
fn readme_commands_run_and_print_what_the_readme_shows() {
    let blocks = blocks("README.md");
    let mut ran = 0;
    for (i, block) in blocks.iter().enumerate() {
        if block.info != "sh" || block.no_test {
            continue;
        }
        let expected = blocks.get(i + 1).filter(|next| next.info == "text");
        let checkout = fresh_checkout();
        let mut stdout = String::new();
        for line in block.body.lines().filter(|l| !l.trim().is_empty()) {
            let out = run_line(line, &checkout, &block.at);
            let (o, e) = (text(&out.stdout), text(&out.stderr));
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}: `{line}`\n{o}\n{e}",
                block.at
            );
            stdout.push_str(&o);
            ran += 1;
        }
        if let Some(expected) = expected {
            let lines: Vec<&str> = expected.body.lines().collect();
            common::assert_in_order(&stdout, &lines);
        }
    }
    assert!(ran >= 1, "README.md runs no command");
}

/// `docs/cli.md`'s `airssys inspect kv_counter.wasm` sample is what the
/// command prints for the `kv-counter` example, line for line (the
/// `wasi:*` imports included).
#[test]
fn the_inspect_sample_of_cli_md_is_real_output() {
    let block = blocks("docs/cli.md")
        .into_iter()
        .find(|b| b.body.starts_with("$ airssys inspect kv_counter.wasm\n"))
        .expect("docs/cli.md shows `$ airssys inspect kv_counter.wasm`");
    let sample: String = block
        .body
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("$ "))
        .map(|l| format!("{l}\n"))
        .collect();

    // Build the example (cached by the other tests) and inspect it from
    // its directory, so the path prints as in the sample.
    let krate = repo_root().join("examples").join("kv-counter");
    let built = run_line(
        &format!("cargo run -p airssys-cli -- run {}", krate.display()),
        &repo_root(),
        &block.at,
    );
    assert!(
        built.status.success() || built.status.code() == Some(1),
        "{}",
        text(&built.stderr)
    );
    let dir = shared_target().join("wasm32-wasip2").join("release");
    let out = Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(["inspect", "kv_counter.wasm"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        sample,
        "{}: the sample differs from the output",
        block.at
    );
}
