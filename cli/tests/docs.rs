//! The documentation's code, compiled and run: every Rust snippet of
//! `README.md`, `docs/component-guide.md`, `docs/host-guide.md`,
//! `docs/policy.md` and `docs/runtime.md` must compile, every shell command
//! of `README.md` and of the examples' READMEs is run and its output
//! checked, every `$ airssys ..` transcript of `docs/cli.md` is run and
//! must print what the page shows, every policy shown in a ` ```toml `
//! block of the docs must load, and every flag of a synopsis must exist.
//!
//! Other pages are run by the tests next to their feature:
//! `docs/getting-started.md` by `getting_started.rs`, `docs/serve.md` by
//! `serve.rs` (its line about dropped output by `serve_output.rs`),
//! `docs/distributed.md`'s quickstart by `distributed.rs`,
//! `docs/other-languages.md` by `examples.rs`, `docs/least-privilege.md` by
//! `authority.rs`, `docs/nats.md` and `docs/server.md` as doc tests of
//! `airssys-runtime`.
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
//! Output samples (` ```text ` blocks of what airssys prints) are made
//! again by the `..._are_real` tests below: each builds the situation its
//! page describes, runs the real command (or `Runtime::load`) and finds
//! the sample's lines in what it prints, in order, `…` standing for
//! left-out text. A ` ```text ` block that is not output says so with
//! `<!-- no-test: .. -->`.
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

/// `docs/component-guide.md`'s `Cargo.toml` of a component (its
/// ` ```toml ` block), completed with a `[package]` table.
fn component_guide_cargo_toml() -> String {
    let block = blocks("docs/component-guide.md")
        .into_iter()
        .find(|b| b.info == "toml")
        .expect("docs/component-guide.md shows a component's Cargo.toml");
    local_dependencies(&format!(
        "[package]\nname = \"snippet\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
         publish = false\n\n{}",
        block.body
    ))
}

/// The `Cargo.toml` `docs/component-guide.md` shows is what `airssys new`
/// writes (the `airssys` dependency on this checkout).
#[test]
fn the_cargo_toml_of_the_component_guide_is_what_airssys_new_writes() {
    let block = blocks("docs/component-guide.md")
        .into_iter()
        .find(|b| b.info == "toml")
        .expect("docs/component-guide.md shows a component's Cargo.toml");
    let tmp = scratch("new-");
    let out = Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(["new", "guide"])
        .current_dir(tmp.path())
        .env_remove("AIRSSYS_PATH")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(tmp.path().join("guide/Cargo.toml")).unwrap();
    let written: Vec<&str> = written.lines().map(str::trim).collect();
    for line in block.body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let line = match line.split_once('=') {
            Some((name, _)) if name.trim() == "airssys" => format!(
                "airssys = {{ path = {:?} }}",
                repo_root().display().to_string()
            ),
            _ => line.to_owned(),
        };
        assert!(
            written.contains(&line.as_str()),
            "{}: `airssys new` writes no line `{line}`:\n{}",
            block.at,
            written.join("\n")
        );
    }
}

/// The Rust snippets of the component pages, each a crate of its own (with
/// the `Cargo.toml` the component guide shows).
#[test]
fn rust_snippets_of_readme_and_component_guide_compile() {
    let mut failures = Vec::new();
    let mut checked = 0;
    let cargo_toml = component_guide_cargo_toml();
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
            crate_at(tmp.path(), &cargo_toml, ("src/lib.rs", &block.body));
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

/// Builds `examples/kv-counter` into the shared target as `airssys run`
/// does (cached by the other tests), for the sample at `at`; it may then
/// fail to run (exit 1), not to build.
fn build_kv_counter(at: &str) {
    let krate = repo_root().join("examples/kv-counter");
    let built = run_line(
        &format!("cargo run -p airssys-cli -- run {}", krate.display()),
        &repo_root(),
        at,
    );
    assert!(
        built.status.success() || built.status.code() == Some(1),
        "{}",
        text(&built.stderr)
    );
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
    build_kv_counter(&block.at);
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

/// `README.md`, the pages of `docs/` and the examples' READMEs.
fn doc_pages() -> Vec<String> {
    let mut pages = vec!["README.md".to_owned()];
    for dir in ["docs", "examples"] {
        for entry in std::fs::read_dir(repo_root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let page = if dir == "docs" {
                path.extension()
                    .is_some_and(|e| e == "md")
                    .then(|| format!("docs/{}", path.file_name().unwrap().to_string_lossy()))
            } else {
                path.join("README.md").is_file().then(|| {
                    format!(
                        "examples/{}/README.md",
                        path.file_name().unwrap().to_string_lossy()
                    )
                })
            };
            pages.extend(page);
        }
    }
    pages.sort();
    pages
}

/// Every ` ```toml ` block of the docs that is a host policy (or a part of
/// one: `[components.*]`, `[defaults]`, `[nats]`, ...) loads with
/// `Policy::from_toml_str`; the others must be a `Cargo.toml` or a
/// component manifest (`[component]`, checked by
/// `contract/tests/manifest_format.rs`).
#[test]
fn every_policy_shown_in_the_docs_loads() {
    let mut policies = 0;
    let mut failures = Vec::new();
    for page in doc_pages() {
        for block in blocks(&page) {
            if block.info != "toml" || block.no_test {
                continue;
            }
            let tables: Vec<&str> = block
                .body
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with('['))
                .collect();
            let cargo = tables
                .iter()
                .any(|t| ["[package]", "[lib]", "[dependencies]", "[workspace]"].contains(t));
            let manifest = tables.contains(&"[component]");
            if cargo || manifest {
                continue;
            }
            policies += 1;
            if let Err(e) = airssys_runtime::Policy::from_toml_str(&block.body) {
                failures.push(format!("{}: the policy does not load: {e}", block.at));
            }
        }
    }
    assert!(policies >= 8, "found only {policies} policies in the docs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `docs/policy.md`'s error sample is what `airssys` prints for the page's
/// first policy with `kv:raed` for its first `kv:read`, in `policy.toml`.
#[test]
fn the_policy_error_sample_of_policy_md_is_real() {
    let blocks = blocks("docs/policy.md");
    let shown = blocks
        .iter()
        .find(|b| b.info == "text" && b.body.starts_with("policy.toml:"))
        .expect("docs/policy.md shows a policy error");
    let example = blocks
        .iter()
        .find(|b| b.info == "toml")
        .expect("docs/policy.md shows a policy");
    let tmp = scratch("policy-error-");
    write(
        &tmp.path().join("policy.toml"),
        &example.body.replacen("kv:read", "kv:raed", 1),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(["run", "component.wasm", "--policy", "policy.toml"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!("error: {}", shown.body),
        "{}: the sample is not what `airssys run` prints",
        shown.at
    );
}

/// The host snippets of the pages that describe the runtime's API (not
/// components, not doc tests elsewhere) compile as the body of a host
/// program's `main` returning `Result<(), Box<dyn Error>>`.
#[test]
fn host_snippets_of_policy_and_runtime_md_compile() {
    let tmp = scratch("host-snippets-");
    let mut failures = Vec::new();
    let mut checked = 0;
    for page in ["docs/policy.md", "docs/runtime.md"] {
        for block in blocks(page) {
            if block.info != "rust" || block.no_test || is_component(&block) {
                continue;
            }
            // docs/runtime.md's non-blocking subscriber is compiled by
            // runtime/tests/blocked_output.rs (it needs the tracing crates).
            if block.body.contains("tracing_appender") {
                continue;
            }
            let main = if block.body.contains("fn main") {
                block.body.clone()
            } else {
                format!(
                    "#![allow(unused)]\nfn main() -> Result<(), Box<dyn std::error::Error>> {{\n{}Ok(())\n}}\n",
                    block.body
                )
            };
            let dir = tmp.path().join(format!("snippet-{checked}"));
            crate_at(
                &dir,
                &local_dependencies(
                    "[package]\nname = \"snippet\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
                     publish = false\n\n[dependencies]\nairssys-runtime = \"0.1\"\n",
                ),
                ("src/main.rs", &main),
            );
            checked += 1;
            if let Err(e) = check(&dir, false, &block.at) {
                failures.push(e);
            }
        }
    }
    assert!(checked >= 2, "found only {checked} snippets");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Each synopsis of `docs/cli.md`, `docs/serve.md` and
/// `docs/versioning.md` (a ` ```text ` block
/// whose lines start with `airssys `) names flags that the command's
/// `--help` lists.
#[test]
fn every_flag_of_the_synopses_exists() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for block in ["docs/cli.md", "docs/serve.md", "docs/versioning.md"]
        .into_iter()
        .flat_map(blocks)
    {
        if block.info != "text" || !block.body.starts_with("airssys ") {
            continue;
        }
        let mut command: Vec<String> = Vec::new();
        for line in block.body.lines() {
            let words = words(line);
            if words.first().is_some_and(|w| w == "airssys") {
                command = words
                    .iter()
                    .skip(1)
                    .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()))
                    .cloned()
                    .collect();
            }
            let help = Command::new(env!("CARGO_BIN_EXE_airssys"))
                .args(&command)
                .arg("--help")
                .output()
                .unwrap();
            let help = text(&help.stdout);
            for flag in line
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .filter(|w| w.starts_with("--") && w.len() > 2 && !w.ends_with('-'))
            {
                checked += 1;
                if !help.contains(flag) {
                    failures.push(format!(
                        "{}: `airssys {} --help` lists no `{flag}`",
                        block.at,
                        command.join(" ")
                    ));
                }
            }
        }
    }
    assert!(checked >= 40, "checked only {checked} flags");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Where a `$ airssys ..` line of a `docs/cli.md` transcript runs.
#[derive(Debug, Clone, Copy)]
enum Transcript {
    /// From the repository root (it names `examples/..`; it writes
    /// nothing there).
    Checkout,
    /// In an empty directory of this test, shared by the commands of one
    /// block (so that a block's second command sees what the first wrote),
    /// after the function made there the files the command names.
    Scratch(fn(&Path)),
    /// By the test of this file named here, which compares its own run
    /// with the page.
    ByTest(&'static str),
}

/// Nothing to prepare.
fn nothing(_: &Path) {}

/// Copies the directory `from` to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `my-wit/`: a contract whose line 22 annotates a function with `fs:raed`.
fn my_wit(dir: &Path) {
    let lint = repo_root().join("contract/tests/fixtures/lint/unknown-action");
    copy_dir(&lint, &dir.join("my-wit"));
}

/// `old/` and `new/`: a contract whose package went from 1.0.0 to 2.0.0,
/// dropping a constructor.
fn old_and_new_wit(dir: &Path) {
    let case = repo_root().join("contract/tests/diff_corpus/constructor-removed");
    copy_dir(&case.join("old"), &dir.join("old"));
    copy_dir(&case.join("new"), &dir.join("new"));
}

/// `docs/reference/`: the repository's reference with one page edited.
fn reference_one_page_edited(dir: &Path) {
    let out = dir.join("docs/reference");
    if !out.exists() {
        copy_dir(&repo_root().join("docs/reference"), &out);
    }
    let page = out.join("airssys-core/storage.md");
    let text = std::fs::read_to_string(&page).unwrap();
    std::fs::write(&page, format!("{text}\nedited by hand\n")).unwrap();
}

/// The component world `app.wasm` is built for: storage and logging.
const APP_WORLD: &str = "package test:app;
world app {
  import airssys:core/storage@1.0.0;
  import airssys:core/logging@1.0.0;
  export airssys:core/lifecycle@1.0.0;
}";

/// `app.wasm` (importing storage and logging, no manifest) and a
/// `Component.toml` whose line 7 declares a capability none of its imports
/// can use.
fn app_and_component_toml(dir: &Path) {
    std::fs::write(dir.join("app.wasm"), common::app_component(APP_WORLD)).unwrap();
    write(
        &dir.join("Component.toml"),
        "[component]\nname = \"counter\"\nversion = \"0.1.0\"\n\n[capabilities]\n\
         requires = [\"kv:read:counter/*\", \"kv:write:counter/*\"]\n\
         optional = [\"log:write\", \"net:connect:example.com:443\"]\n",
    );
}

/// `old.wasm`: a component built against a contract whose `storage.open`
/// took `list<u8>`.
fn old_wasm(dir: &Path) {
    let wit = dir.join("old-wit");
    copy_dir(&repo_root().join("wit"), &wit);
    let storage = wit.join("deps/core/storage.wit");
    let text = std::fs::read_to_string(&storage).unwrap();
    let old = "open: func(name: string)";
    assert!(text.contains(old), "storage.wit changed; update this test");
    std::fs::write(&storage, text.replace(old, "open: func(name: list<u8>)")).unwrap();
    let mut resolve = wit_parser::Resolve::new();
    resolve.push_dir(&wit).unwrap();
    let pkg = resolve.push_str("app.wit", APP_WORLD).unwrap();
    let world = resolve.select_world(&[pkg], Some("app")).unwrap();
    let bytes = with_manifest(
        common::dummy_component(&resolve, world),
        "[component]\nname = \"counter\"\nversion = \"0.1.0\"\n\n[capabilities]\n\
         requires = [\"kv:read:counter/*\", \"kv:write:counter/*\"]\n",
    );
    std::fs::write(dir.join("old.wasm"), bytes).unwrap();
}

/// The WIT of a world `app` importing `imports` (such as
/// `airssys:core/logging@1.0.0`) and exporting the lifecycle.
fn app_world(imports: &[&str]) -> String {
    let imports: String = imports.iter().map(|i| format!("  import {i};\n")).collect();
    format!("package test:app;\nworld app {{\n{imports}  export airssys:core/lifecycle@1.0.0;\n}}")
}

/// `component` with the manifest `toml` appended as its `airssys:manifest`
/// section.
fn with_manifest(mut component: Vec<u8>, toml: &str) -> Vec<u8> {
    let manifest = airssys_contract::manifest::Manifest::from_toml_str(toml).unwrap();
    let section = wasm_encoder::CustomSection {
        name: std::borrow::Cow::Borrowed(airssys_contract::manifest::MANIFEST_SECTION),
        data: std::borrow::Cow::Owned(manifest.encode()),
    };
    component.push(wasm_encoder::Section::id(&section));
    wasm_encoder::Encode::encode(&section, &mut component);
    component
}

/// `module.wasm`: an empty core module.
fn core_module(dir: &Path) {
    std::fs::write(dir.join("module.wasm"), b"\0asm\x01\0\0\0").unwrap();
}

/// Every `$ ` command of the ` ```console ` blocks of `docs/cli.md` and
/// `docs/capabilities.md`, as written, and where it runs. A command added to the page fails the test until it
/// is listed here.
const TRANSCRIPTS: &[(&str, Transcript)] = &[
    ("airssys wit check", Transcript::Checkout),
    ("airssys wit check my-wit", Transcript::Scratch(my_wit)),
    (
        "airssys wit diff old/ new/",
        Transcript::Scratch(old_and_new_wit),
    ),
    (
        "airssys wit doc -o docs/reference",
        Transcript::Scratch(reference_one_page_edited),
    ),
    (
        "airssys wit doc --check -o docs/reference",
        Transcript::Scratch(reference_one_page_edited),
    ),
    (
        "airssys wit export wit --world airssys:core/component",
        Transcript::Scratch(nothing),
    ),
    (
        "airssys manifest attach app.wasm --manifest Component.toml -o app.wasm",
        Transcript::Scratch(app_and_component_toml),
    ),
    (
        "airssys cap check --grant fs:read:/data/** --deny fs:read:/data/secret/** fs:read:/data/secret/k",
        Transcript::Scratch(nothing),
    ),
    ("airssys cap check fs:raed:/x", Transcript::Scratch(nothing)),
    (
        "airssys inspect kv_counter.wasm",
        Transcript::ByTest("the_inspect_sample_of_cli_md_is_real_output"),
    ),
    ("airssys inspect old.wasm", Transcript::Scratch(old_wasm)),
    (
        "airssys inspect module.wasm",
        Transcript::Scratch(core_module),
    ),
    (
        "airssys new hello --template storage",
        Transcript::Scratch(nothing),
    ),
    (
        "airssys new files --template filesystem",
        Transcript::Scratch(nothing),
    ),
    ("airssys new my.app", Transcript::Scratch(nothing)),
    ("airssys new hello", Transcript::Scratch(nothing)),
    (
        "airssys run examples/kv-counter --policy examples/kv-counter/policy.toml --request increment --request reset",
        Transcript::Checkout,
    ),
    (
        "airssys run examples/ping-pong/ping examples/ping-pong/pong --policy examples/ping-pong/policy.toml --message game.serve=3",
        Transcript::Checkout,
    ),
    (
        "airssys run examples/ping-pong/ping --message game.serve",
        Transcript::Checkout,
    ),
    (
        "airssys run examples/ping-pong/ping --message game.*=3",
        Transcript::Checkout,
    ),
    (
        "airssys run examples/ping-pong/ping examples/ping-pong/ping",
        Transcript::Checkout,
    ),
    (
        "airssys run examples/kv-counter examples/http-fetch --request-to counter=get",
        Transcript::Checkout,
    ),
    (
        "airssys run examples/kv-counter examples/http-fetch --request-to kv-countr=get",
        Transcript::Checkout,
    ),
    // docs/capabilities.md
    (
        "airssys cap check --grant fs:read:/data/** --deny fs:read:/data/secret/** fs:read:/data/app.toml",
        Transcript::Scratch(nothing),
    ),
    (
        "airssys cap check --grant net:connect:*.example.com:443 net:connect:example.com:443",
        Transcript::Scratch(nothing),
    ),
    (
        "airssys cap check --grant fs:raed:/x fs:read:/x",
        Transcript::Scratch(nothing),
    ),
];

/// `stderr` without what building a crate printed (`airssys: building ..`,
/// `airssys: built ..` and cargo's progress), which the pages leave out.
fn without_build(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| {
            let word = l.trim_start().split(' ').next().unwrap_or("");
            !(l.starts_with("airssys: buil")
                || (l.starts_with("  ")
                    && [
                        "Compiling",
                        "Finished",
                        "Blocking",
                        "Updating",
                        "Locking",
                        "Adding",
                        "Downloading",
                        "Downloaded",
                        "Checking",
                    ]
                    .contains(&word)))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Whether `line` (printed) matches `shown` (a transcript's line, where
/// `…` or `...` stands for any text).
fn line_matches(shown: &str, line: &str) -> bool {
    let shown = shown.replace("...", "…");
    let parts: Vec<&str> = shown.split('…').collect();
    if parts.len() == 1 {
        return shown == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || !line[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether the printed lines are the shown ones, where a shown line that
/// is only `…` or `...` stands for any number of lines.
fn transcript_matches(shown: &[&str], printed: &[&str]) -> bool {
    match shown.split_first() {
        None => printed.is_empty(),
        Some((gap, rest)) if matches!(gap.trim(), "…" | "...") => {
            (0..=printed.len()).any(|skip| transcript_matches(rest, &printed[skip..]))
        }
        Some((first, rest)) => printed.split_first().is_some_and(|(line, more)| {
            line_matches(first, line) && transcript_matches(rest, more)
        }),
    }
}

/// The transcripts of `docs/cli.md` and `docs/capabilities.md`
/// (` ```console ` blocks: `$ airssys ..` and what it prints) are real:
/// each command runs where [`TRANSCRIPTS`] says, and prints (stdout, then stderr) the
/// lines the page shows, `…` standing for text the page leaves out.
#[test]
fn the_transcripts_of_cli_md_and_capabilities_md_are_real_output() {
    let mut listed = Vec::new();
    let mut failures = Vec::new();
    let root = repo_root();
    for block in ["docs/cli.md", "docs/capabilities.md"]
        .into_iter()
        .flat_map(blocks)
    {
        if block.info != "console" || block.no_test {
            continue;
        }
        let scratch = scratch("cli-md-");
        let mut lines = block.body.lines().peekable();
        while let Some(line) = lines.next() {
            let command = line
                .strip_prefix("$ ")
                .unwrap_or_else(|| panic!("{}: a transcript starts with `$ `: {line}", block.at));
            let mut shown = Vec::new();
            while let Some(next) = lines.next_if(|l| !l.starts_with("$ ")) {
                shown.push(next);
            }
            let words = words(command);
            let written = words.join(" ");
            listed.push(written.clone());
            let Some((_, how)) = TRANSCRIPTS.iter().find(|(c, _)| *c == written) else {
                continue;
            };
            let cwd = match how {
                Transcript::Checkout => root.clone(),
                Transcript::Scratch(prepare) => {
                    prepare(scratch.path());
                    scratch.path().to_owned()
                }
                Transcript::ByTest(test) => {
                    let this = std::fs::read_to_string(repo_root().join("cli/tests/docs.rs"));
                    assert!(
                        this.unwrap().contains(&format!("fn {test}()")),
                        "{}: `{command}`: no test `{test}` in cli/tests/docs.rs",
                        block.at
                    );
                    continue;
                }
            };
            assert_eq!(words[0], "airssys", "{}: {command}", block.at);
            let out = airssys(&words[1..], &cwd);
            let printed = format!("{}{}", text(&out.stdout), without_build(&text(&out.stderr)));
            // The page's checkout is `/home/me/airssys`.
            let shown: Vec<String> = shown
                .iter()
                .map(|l| l.replace("/home/me/airssys", &root.display().to_string()))
                .collect();
            let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
            let printed_lines: Vec<&str> = printed.trim_end().lines().collect();
            if !transcript_matches(&shown, &printed_lines) {
                failures.push(format!(
                    "{}: `{command}` prints\n{printed}\nnot what the page shows\n{}",
                    block.at,
                    shown.join("\n")
                ));
            }
        }
    }
    let expected: Vec<&str> = TRANSCRIPTS.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        listed, expected,
        "the transcripts of docs/cli.md or docs/capabilities.md changed: update TRANSCRIPTS in \
         this test"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Example pages whose commands another test runs, and which test: it
/// reads the page's own block, so the page and the run cannot drift.
const EXAMPLES_RUN_ELSEWHERE: &[(&str, &str)] = &[
    // `cargo run -p host-embed`: a host binary of its own.
    (
        "examples/host-embed/README.md",
        "examples/host-embed/tests/run.rs",
    ),
];

/// The commands of the examples' READMEs (their ` ```console ` blocks),
/// run as written from the repository root: `cargo run -p airssys-cli --`
/// stands for the built `airssys`, `mkdir -p DIR` makes a directory of
/// this test that stands for `DIR` in the block's other commands, `cd DIR
/// && python3 -m http.server PORT --bind 127.0.0.1` serves `DIR` on a free
/// port that stands for `PORT` (in the commands, the policy they name and
/// what they print). Each
/// line of the ` ```text ` block after the commands is printed by them
/// (stdout, then stderr), in this order, `…` standing for text the page
/// leaves out.
#[test]
fn the_commands_of_the_examples_readmes_print_what_they_show() {
    let root = repo_root();
    let mut ran = 0;
    let mut failures = Vec::new();
    for page in doc_pages()
        .into_iter()
        .filter(|p| p.starts_with("examples/"))
    {
        if let Some((_, test)) = EXAMPLES_RUN_ELSEWHERE.iter().find(|(p, _)| *p == page) {
            let source = std::fs::read_to_string(root.join(test)).unwrap();
            assert!(
                source.contains("README.md"),
                "{page}: {test} does not read the page"
            );
            continue;
        }
        let blocks = blocks(&page);
        // A server started by one block serves the page's next blocks.
        let mut servers: Vec<HttpServer> = Vec::new();
        for (i, block) in blocks.iter().enumerate() {
            if block.info != "console" || block.no_test {
                continue;
            }
            let expected = blocks.get(i + 1).filter(|next| next.info == "text");
            let scratch = scratch("example-readme-");
            let mut dirs: Vec<(String, String)> = Vec::new();
            let mut printed = String::new();
            for line in block.body.lines().filter(|l| !l.trim().is_empty()) {
                let mut words = words(line);
                for word in &mut words {
                    for (shown, real) in &dirs {
                        *word = word.replace(shown.as_str(), real);
                    }
                }
                if let [mkdir, p, dir] = words.as_slice()
                    && mkdir == "mkdir"
                    && p == "-p"
                {
                    let real = scratch.path().join(format!("dir{}", dirs.len()));
                    std::fs::create_dir_all(&real).unwrap();
                    dirs.push((dir.clone(), real.display().to_string()));
                    continue;
                }
                if let Some(server) = HttpServer::start(&words, &block.at) {
                    servers.push(server);
                    continue;
                }
                // The page's port is granted by the example's policy: run
                // under a copy granting the server's port instead.
                for server in &servers {
                    let mut policy = false;
                    for word in &mut words {
                        if policy {
                            let copy = scratch.path().join("policy.toml");
                            let granted = std::fs::read_to_string(root.join(&*word)).unwrap();
                            std::fs::write(&copy, server.port_for_page(&granted, true)).unwrap();
                            dirs.push((word.clone(), copy.display().to_string()));
                            *word = copy.display().to_string();
                        } else {
                            *word = server.port_for_page(word, true);
                        }
                        policy = word == "--policy";
                    }
                }
                let Some(args) = words
                    .strip_prefix(&["cargo", "run", "-p", "airssys-cli", "--"].map(String::from))
                else {
                    panic!(
                        "{}: this test runs `cargo run -p airssys-cli -- ..`, `mkdir -p` and \
                         `cd DIR && python3 -m http.server ..` lines only (mark the block `<!-- no-test: reason -->` otherwise): {line}",
                        block.at
                    );
                };
                let out = Command::new(env!("CARGO_BIN_EXE_airssys"))
                    .args(args)
                    .current_dir(&root)
                    .env("CARGO_TARGET_DIR", shared_target())
                    .env_remove("RUSTFLAGS")
                    .env_remove("CARGO_ENCODED_RUSTFLAGS")
                    .output()
                    .unwrap();
                let mut seen = format!("{}{}", text(&out.stdout), text(&out.stderr));
                for server in &servers {
                    seen = server.port_for_page(&seen, false);
                }
                for (shown, real) in &dirs {
                    seen = seen.replace(real.as_str(), shown);
                }
                printed.push_str(&seen);
                ran += 1;
            }
            let Some(expected) = expected else { continue };
            let mut lines = printed.lines();
            for shown in expected.body.lines() {
                if !lines.any(|l| line_matches(shown, l)) {
                    failures.push(format!(
                        "{}: `{shown}` is not printed (in this order) by the commands at {}:\n{printed}",
                        expected.at, block.at
                    ));
                    break;
                }
            }
        }
    }
    assert!(ran >= 3, "ran only {ran} commands of the examples' READMEs");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `cd DIR && python3 -m http.server PORT --bind 127.0.0.1`, serving `DIR`
/// on a free port that stands for the page's `PORT`.
struct HttpServer {
    /// The server (killed when dropped).
    child: std::process::Child,
    /// The page's port.
    page: String,
    /// The port it listens on.
    port: String,
}

impl HttpServer {
    /// Starts the server of `words` (the line at `at`), if it is one, and
    /// waits until it accepts connections.
    fn start(words: &[String], at: &str) -> Option<HttpServer> {
        let [cd, dir, and, python, m, module, page, bind, address] = words else {
            return None;
        };
        let shape = [cd, and, python, m, module, bind].map(String::as_str);
        if shape != ["cd", "&&", "python3", "-m", "http.server", "--bind"] {
            return None;
        }
        let port = std::net::TcpListener::bind((address.as_str(), 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string();
        let child = Command::new("python3")
            .args(["-m", "http.server", &port, "--bind", address])
            .current_dir(repo_root().join(dir))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{at}: python3 runs (apt-get install python3): {e}"));
        let server = HttpServer {
            child,
            page: page.clone(),
            port,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(format!("{address}:{}", server.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "{at}: the HTTP server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(server)
    }

    /// `text` with `:<page's port>` written as `:<port>` (`to_real`) or
    /// back.
    fn port_for_page(&self, text: &str, to_real: bool) -> String {
        let (page, port) = (format!(":{}", self.page), format!(":{}", self.port));
        if to_real {
            text.replace(&page, &port)
        } else {
            text.replace(&port, &page)
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A compile error the docs show (a ` ```text ` block pointing at
/// ` --> tests/ui/...rs`) is the one the UI test of that file expects: its
/// lines are lines of the test's `.stderr`, in order (the page may leave
/// lines out).
#[test]
fn compile_errors_shown_in_the_docs_are_the_ui_tests_output() {
    let mut checked = 0;
    for page in doc_pages() {
        for block in blocks(&page) {
            let Some(file) = block.body.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("--> ")
                    .filter(|f| f.starts_with("tests/ui/"))
                    .and_then(|f| f.split(".rs:").next())
            }) else {
                continue;
            };
            let stderr_file = repo_root().join(format!("{file}.stderr"));
            let expected = std::fs::read_to_string(&stderr_file).unwrap_or_else(|e| {
                panic!("{}: cannot read {}: {e}", block.at, stderr_file.display())
            });
            let mut lines = expected.lines();
            for shown in block.body.lines() {
                assert!(
                    lines.any(|l| l == shown),
                    "{}: `{shown}` is not (in this order) in {}:\n{expected}",
                    block.at,
                    stderr_file.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 4, "checked only {checked} compile errors");
}

/// The load refusal `docs/pitfalls.md`, `docs/cli.md` and the
/// `kv-counter` example's README show is what
/// `airssys run` prints for the `kv-counter` example under its policy
/// without `log:write` (the policy at the path each page names), and
/// `docs/pitfalls.md`'s call-time denial is what the example prints under
/// its own policy: the lines of each sample, in order, on stderr (the
/// refusal) or stdout (the denial), `…` standing for the left-out path.
#[test]
fn the_refusals_pitfalls_md_and_cli_md_show_are_real() {
    let root = repo_root();
    let example = root.join("examples/kv-counter");
    let policy = std::fs::read_to_string(example.join("policy.toml")).unwrap();
    let without_log = policy.replace(", \"log:write\"]", "]");
    assert_ne!(without_log, policy, "the example's policy grants log:write");
    let sample = |page: &str, starts: &str| {
        blocks(page)
            .into_iter()
            .find(|b| b.info == "text" && b.body.starts_with(starts))
            .unwrap_or_else(|| panic!("{page} shows `{starts}..`"))
    };
    let run = |cwd: &Path, policy: &str| {
        Command::new(env!("CARGO_BIN_EXE_airssys"))
            .args(["run", &example.display().to_string(), "--policy", policy])
            .args(["--request", "increment", "--request", "reset"])
            .current_dir(cwd)
            .env("CARGO_TARGET_DIR", shared_target())
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .unwrap()
    };
    let assert_shown = |shown: &Block, printed: &str| {
        let mut lines = printed.lines();
        for line in shown.body.lines() {
            assert!(
                lines.any(|l| line_matches(line, l)),
                "{}: `{line}` is not printed (in this order):\n{printed}",
                shown.at
            );
        }
    };
    for (page, policy_path) in [
        ("docs/pitfalls.md", "examples/kv-counter/policy.toml"),
        (
            "examples/kv-counter/README.md",
            "examples/kv-counter/policy.toml",
        ),
        ("docs/cli.md", "policy.toml"),
    ] {
        let shown = sample(page, "error: the host refused to load");
        let tmp = scratch("refusal-");
        write(&tmp.path().join(policy_path), &without_log);
        let out = run(tmp.path(), policy_path);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert_shown(&shown, &without_build(&text(&out.stderr)));
    }
    let shown = sample("docs/pitfalls.md", "  DENY  kv:delete:counter/starts");
    let out = run(&root, "examples/kv-counter/policy.toml");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_shown(&shown, &text(&out.stdout));
}

/// Which test runs the shell blocks (` ```sh `, ` ```console `, ...) of
/// each page that has some (of the one section named, when the test runs
/// only that); the test file names the page.
const SHELL_PAGES: &[(&str, &str)] = &[
    ("README.md", "cli/tests/docs.rs"),
    ("docs/capabilities.md", "cli/tests/docs.rs"),
    ("docs/cli.md", "cli/tests/docs.rs"),
    ("docs/distributed.md#Quickstart", "cli/tests/distributed.rs"),
    ("docs/getting-started.md", "cli/tests/getting_started.rs"),
    ("docs/least-privilege.md", "cli/tests/authority.rs"),
    ("docs/other-languages.md", "cli/tests/examples.rs"),
    ("docs/serve.md", "cli/tests/serve.rs"),
    ("examples/file-indexer/README.md", "cli/tests/docs.rs"),
    (
        "examples/host-embed/README.md",
        "examples/host-embed/tests/run.rs",
    ),
    ("examples/http-fetch/README.md", "cli/tests/docs.rs"),
    ("examples/kv-counter/README.md", "cli/tests/docs.rs"),
    ("examples/ping-pong/README.md", "cli/tests/docs.rs"),
];

/// Every shell block of the docs is run by a test (the one
/// [`SHELL_PAGES`] names for its page) or says why not
/// (`<!-- no-test: reason -->`): a page that gains commands no test runs
/// fails here.
#[test]
fn every_shell_block_of_the_docs_is_run_by_a_test() {
    let mut failures = Vec::new();
    for page in doc_pages() {
        let whole = SHELL_PAGES.iter().any(|(p, _)| *p == page);
        // The line range of the one section a test runs, if listed so.
        let section = SHELL_PAGES.iter().find_map(|(p, _)| {
            let heading = p.strip_prefix(&format!("{page}#"))?;
            let source = std::fs::read_to_string(repo_root().join(&page)).unwrap();
            let lines: Vec<&str> = source.lines().collect();
            let start = lines
                .iter()
                .position(|l| l.starts_with(&format!("## {heading}")))
                .unwrap_or_else(|| panic!("{page} has no section `## {heading}`"));
            let end = lines[start + 1..]
                .iter()
                .position(|l| l.starts_with("## "))
                .map_or(lines.len(), |n| start + 1 + n);
            Some(start + 1..=end)
        });
        for block in blocks(&page) {
            let language = block.info.split(',').next().unwrap_or("");
            if block.no_test || !["sh", "bash", "shell", "console"].contains(&language) {
                continue;
            }
            let line: usize = block.at.rsplit(':').next().unwrap().parse().unwrap();
            if !whole && !section.as_ref().is_some_and(|r| r.contains(&line)) {
                failures.push(format!(
                    "{}: a shell block no test runs: run it from a test and list the page in \
                     SHELL_PAGES, or mark it `<!-- no-test: reason -->`",
                    block.at
                ));
            }
        }
    }
    for (page, test) in SHELL_PAGES {
        let page = page.split('#').next().unwrap();
        let source = std::fs::read_to_string(repo_root().join(test)).unwrap();
        let name = if page.starts_with("examples/") && !test.starts_with("cli/") {
            "README.md"
        } else if page.starts_with("examples/") {
            "examples/"
        } else {
            page
        };
        assert!(source.contains(name), "{test} does not name {page}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Which test compiles the ` ```rust ` blocks of each page that has some
/// (not `ignore`d nor `no-test`); the test file names the page.
const RUST_PAGES: &[(&str, &str)] = &[
    ("README.md", "cli/tests/docs.rs"),
    ("docs/component-guide.md", "cli/tests/docs.rs"),
    // The excerpt is compared with the `src/lib.rs` `airssys new` writes,
    // which the test builds and runs.
    ("docs/getting-started.md", "cli/tests/getting_started.rs"),
    ("docs/host-guide.md", "cli/tests/docs.rs"),
    // Doc tests of `airssys-runtime` (`#[doc = include_str!(..)]`).
    ("docs/nats.md", "runtime/src/broker/nats.rs"),
    ("docs/server.md", "runtime/src/server/mod.rs"),
    ("docs/policy.md", "cli/tests/docs.rs"),
    // Its non-blocking subscriber is runtime/tests/blocked_output.rs's,
    // which compares the two.
    ("docs/runtime.md", "runtime/tests/blocked_output.rs"),
];

/// Every ` ```rust ` block of the docs is compiled by a test (the one
/// [`RUST_PAGES`] names for its page), or is marked `ignore` or
/// `<!-- no-test: reason -->`.
#[test]
fn every_rust_block_of_the_docs_is_compiled_by_a_test() {
    let mut failures = Vec::new();
    for page in doc_pages() {
        let listed = RUST_PAGES.iter().any(|(p, _)| *p == page);
        for block in blocks(&page) {
            let mut info = block.info.split(',');
            if info.next() != Some("rust") || block.no_test || info.any(|i| i == "ignore") {
                continue;
            }
            if !listed {
                failures.push(format!(
                    "{}: a Rust block no test compiles: compile it from a test and list the page \
                     in RUST_PAGES, or mark it ```rust,ignore or `<!-- no-test: reason -->`",
                    block.at
                ));
            }
        }
    }
    for (page, test) in RUST_PAGES {
        let source = std::fs::read_to_string(repo_root().join(test)).unwrap();
        assert!(source.contains(page), "{test} does not name {page}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The "one mistake to try" of each example's README that makes the build
/// fail: the edit it describes ("Remove the line `X` from .. in `FILE`", or
/// "Remove `X` from .. in `FILE`") is made in a copy of the crate, which
/// must then fail to build with the lines of the ` ```text ` block after
/// it, in order (`…` standing for left-out text).
#[test]
fn the_build_mistakes_of_the_examples_readmes_fail_as_shown() {
    let mut tried = 0;
    let mut failures = Vec::new();
    for page in doc_pages()
        .into_iter()
        .filter(|p| p.starts_with("examples/"))
    {
        let example = repo_root().join(page.trim_end_matches("/README.md"));
        let source = std::fs::read_to_string(repo_root().join(&page)).unwrap();
        let blocks = blocks(&page);
        for paragraph in source.split("\n\n") {
            let Some(rest) = paragraph.trim_start().strip_prefix("Remove ") else {
                continue;
            };
            let words: Vec<&str> = paragraph.split_whitespace().collect();
            if !words.join(" ").contains("The build fails") {
                continue;
            }
            let whole_line = rest.starts_with("the line ");
            let quoted: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
            let removed = quoted[0];
            let file = quoted
                .iter()
                .find(|q| q.ends_with(".rs"))
                .unwrap_or_else(|| panic!("{page}: which file? {paragraph}"));
            let krate = example.join(file.trim_end_matches("src/lib.rs"));
            let shown = blocks
                .iter()
                .find(|b| {
                    b.info == "text"
                        && source[..source.find(paragraph).unwrap()].lines().count()
                            < b.at.rsplit(':').next().unwrap().parse().unwrap()
                })
                .expect("a text block after the mistake");
            let tmp = scratch("mistake-");
            for name in ["Cargo.toml", "Cargo.lock", "src/lib.rs"] {
                let text = std::fs::read_to_string(krate.join(name)).unwrap();
                let text = match name {
                    "Cargo.toml" => local_dependencies(&text),
                    "src/lib.rs" if whole_line => {
                        let kept: Vec<&str> =
                            text.lines().filter(|l| l.trim() != removed).collect();
                        assert_ne!(
                            kept.len(),
                            text.lines().count(),
                            "{page}: no line `{removed}`"
                        );
                        kept.join("\n") + "\n"
                    }
                    "src/lib.rs" => {
                        assert!(text.contains(removed), "{page}: no `{removed}` in {file}");
                        text.replacen(&format!(", {removed}"), "", 1)
                            .replacen(removed, "", 1)
                    }
                    _ => text,
                };
                write(&tmp.path().join(name), &text);
            }
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let out = Command::new(cargo)
                .args([
                    "build",
                    "--target",
                    "wasm32-wasip2",
                    "--release",
                    "--color",
                    "never",
                ])
                .current_dir(tmp.path())
                .env("CARGO_TARGET_DIR", shared_target())
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .output()
                .unwrap();
            tried += 1;
            let stderr = text(&out.stderr);
            if out.status.success() {
                failures.push(format!(
                    "{page}: the build with `{removed}` removed succeeds"
                ));
                continue;
            }
            let mut lines = stderr.lines();
            for line in shown.body.lines() {
                if !lines.any(|l| line_matches(line, l)) {
                    failures.push(format!(
                        "{}: `{line}` is not (in this order) in what the build prints:\n{stderr}",
                        shown.at
                    ));
                    break;
                }
            }
        }
    }
    assert!(tried >= 4, "tried only {tried} mistakes");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The keys of a JSON object, sorted.
fn keys(value: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// `docs/cli.md`'s `inspect --format json` sample has the fields the
/// command prints (top level, `manifest`, the items of `imports` and
/// `exports`), and its table describes each of them.
#[test]
fn the_inspect_json_sample_of_cli_md_has_the_real_fields() {
    let page = std::fs::read_to_string(repo_root().join("docs/cli.md")).unwrap();
    let block = blocks("docs/cli.md")
        .into_iter()
        .find(|b| b.info == "json")
        .expect("docs/cli.md shows the JSON format");
    let shown: serde_json::Value =
        serde_json::from_str(&block.body).unwrap_or_else(|e| panic!("{}: not JSON: {e}", block.at));

    build_kv_counter(&block.at);
    let wasm = shared_target().join("wasm32-wasip2/release/kv_counter.wasm");
    let out = Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(["inspect", &wasm.display().to_string(), "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let real: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(keys(&shown), keys(&real), "{}: top-level fields", block.at);
    assert_eq!(
        keys(&shown["manifest"]),
        keys(&real["manifest"]),
        "{}: `manifest` fields",
        block.at
    );
    for list in ["imports", "exports"] {
        assert_eq!(
            keys(&shown[list][0]),
            keys(&real[list][0]),
            "{}: fields of an item of `{list}`",
            block.at
        );
    }
    for key in keys(&real) {
        assert!(
            page.lines().any(|l| l
                .strip_prefix("| ")
                .and_then(|row| row.split('|').next())
                .is_some_and(|field| field.contains(&format!("`{key}`")))),
            "{}: the table does not describe `{key}`",
            block.at
        );
    }
}

/// `docs/policy.md`'s load refusal is what `airssys run` prints for a
/// component `counter` requiring `kv:write:counter/*` and `env:read:HOME`
/// under a `policy.toml` that denies `env:read` on line 4 and has
/// `[components.counter]` on line 9 without those grants.
#[test]
fn the_load_refusal_of_policy_md_is_real() {
    let shown = blocks("docs/policy.md")
        .into_iter()
        .find(|b| b.info == "text" && b.body.contains("requires capabilities the host policy"))
        .expect("docs/policy.md shows a load refusal");
    let tmp = scratch("load-refusal-");
    let world = app_world(&[
        "airssys:core/storage@1.0.0",
        "airssys:core/environment@1.0.0",
    ]);
    let component = with_manifest(
        common::app_component(&world),
        "[component]\nname = \"counter\"\nversion = \"0.1.0\"\n\n[capabilities]\n\
         requires = [\"kv:read:counter/*\", \"kv:write:counter/*\", \"env:read:HOME\"]\n",
    );
    std::fs::write(tmp.path().join("counter.wasm"), component).unwrap();
    write(
        &tmp.path().join("policy.toml"),
        "# For every component:\n[defaults]\ngrants = [\"log:write\"]\ndenies = [\"env:read\"]\n\n\
         # The counter reads its counts; writing them is not granted here.\n\n\n\
         [components.counter]\ngrants = [\"kv:read:counter/*\"]\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(["run", "counter.wasm", "--policy", "policy.toml"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let mut lines = stderr.lines();
    for line in shown.body.lines() {
        assert!(
            lines.any(|l| l.ends_with(line)),
            "{}: `{line}` is not printed (in this order):\n{stderr}",
            shown.at
        );
    }
}

/// `airssys ARGS`, run in `cwd` with the shared target directory.
fn airssys(args: &[String], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(args)
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", shared_target())
        .env_remove("AIRSSYS_PATH")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap()
}

/// The ` ```text ` block of `page` whose first line starts with `starts`.
fn text_block(page: &str, starts: &str) -> Block {
    blocks(page)
        .into_iter()
        .find(|b| b.info == "text" && b.body.starts_with(starts))
        .unwrap_or_else(|| panic!("{page} shows a ```text block starting `{starts}`"))
}

/// Whether each line of `shown` is a line of `printed`, in order (`…`
/// standing for left-out text; a line of a runtime error may also follow
/// a prefix such as `error: ..: `); otherwise the failure.
fn lines_shown(shown: &Block, printed: &str) -> Result<(), String> {
    let mut lines = printed.lines();
    for line in shown.body.lines() {
        if !lines.any(|l| line_matches(&format!("…{line}"), l)) {
            return Err(format!(
                "{}: `{line}` is not printed (in this order):\n{printed}",
                shown.at
            ));
        }
    }
    Ok(())
}

/// The "second mistake" of the examples' READMEs that is made on the
/// host's side: the page's policy edited as the page says (`from` → `to`,
/// the edited file at the same relative path, which the output names),
/// the page's command run with `args` (`examples/..` standing for the
/// checkout's examples), exiting with `code` and printing (stdout, then
/// stderr) the lines of the ` ```text ` block starting `starts`.
#[test]
fn the_host_side_mistakes_of_the_examples_readmes_are_real() {
    struct Mistake {
        page: &'static str,
        starts: &'static str,
        policy: &'static str,
        edit: (&'static str, &'static str),
        args: &'static [&'static str],
        code: i32,
    }
    let mistakes = [
        Mistake {
            page: "examples/ping-pong/README.md",
            starts: "error: the host refused to load …/ping.wasm",
            policy: "examples/ping-pong/policy.toml",
            edit: ("    \"msg:subscribe:ball.to-ping\",\n", ""),
            args: &[
                "run",
                "examples/ping-pong/ping",
                "examples/ping-pong/pong",
                "--policy",
                "examples/ping-pong/policy.toml",
                "--message",
                "game.serve=3",
            ],
            code: 1,
        },
        // `--mount /data=..` left out.
        Mistake {
            page: "examples/file-indexer/README.md",
            starts: "init\n",
            policy: "examples/file-indexer/policy.toml",
            edit: ("", ""),
            args: &[
                "run",
                "examples/file-indexer",
                "--policy",
                "examples/file-indexer/policy.toml",
                "--mount",
                "/out=OUT",
            ],
            code: 1,
        },
        Mistake {
            page: "examples/http-fetch/README.md",
            starts: "request \"localhost:8080/README.md\"",
            policy: "examples/http-fetch/policy.toml",
            edit: ("net:http:127.0.0.1:8080", "net:http:localhost:8080"),
            args: &[
                "run",
                "examples/http-fetch",
                "--policy",
                "examples/http-fetch/policy.toml",
                "--request",
                "localhost:8080/README.md",
            ],
            code: 0,
        },
    ];
    let root = repo_root();
    let mut failures = Vec::new();
    for mistake in &mistakes {
        let shown = text_block(mistake.page, mistake.starts);
        let tmp = scratch("host-mistake-");
        let policy = std::fs::read_to_string(root.join(mistake.policy)).unwrap();
        let edited = policy.replacen(mistake.edit.0, mistake.edit.1, 1);
        assert!(
            mistake.edit.0.is_empty() || edited != policy,
            "{}: `{}` is not in {}",
            mistake.page,
            mistake.edit.0,
            mistake.policy
        );
        write(&tmp.path().join(mistake.policy), &edited);
        let out_dir = tmp.path().join("out");
        std::fs::create_dir_all(&out_dir).unwrap();
        let args: Vec<String> = mistake
            .args
            .iter()
            .map(|a| {
                if *a == mistake.policy {
                    a.to_string()
                } else if let Some(example) = a.strip_prefix("examples/") {
                    root.join("examples").join(example).display().to_string()
                } else {
                    a.replace("OUT", &out_dir.display().to_string())
                }
            })
            .collect();
        let out = airssys(&args, tmp.path());
        let printed = format!("{}{}", text(&out.stdout), without_build(&text(&out.stderr)));
        if out.status.code() != Some(mistake.code) {
            failures.push(format!(
                "{}: exits with {:?}, not {}:\n{printed}",
                shown.at,
                out.status.code(),
                mistake.code
            ));
        } else if let Err(failure) = lines_shown(&shown, &printed) {
            failures.push(failure);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A component named `billing` (logging only), whose manifest says
/// `version`.
fn billing(version: &str) -> Vec<u8> {
    let world = app_world(&["airssys:core/logging@1.0.0"]);
    with_manifest(
        common::app_component(&world),
        &format!("[component]\nname = \"billing\"\nversion = \"{version}\"\n"),
    )
}

/// `printed` with the hex digest of each of `files` written as the page's
/// (`3b1f`, ...) followed by the rest of the real one: the page shows the
/// first four digits and `…`.
fn page_digests(printed: &str, files: &[(&[u8], &str)]) -> String {
    let mut printed = printed.to_owned();
    for (bytes, page) in files {
        let real = airssys_contract::policy::ComponentDigest::of(bytes).to_string();
        printed = printed.replace(&real, &format!("{page}{}", &real[4..]));
    }
    printed
}

/// `docs/pitfalls.md`'s load refusals are what `airssys run` prints: a
/// required capability a deny rule on line 2 covers (the `kv-counter`
/// example) and a name the policy pins to another file (line 3); and
/// what `Runtime::load` answers for a second component claiming a loaded
/// one's name (two builds of `billing`).
#[test]
fn the_load_refusals_of_pitfalls_md_are_real() {
    let root = repo_root();
    let mut failures = Vec::new();

    let shown = text_block("docs/pitfalls.md", "  - `kv:write:counter/*`: denied");
    let tmp = scratch("pitfalls-deny-");
    write(
        &tmp.path().join("policy.toml"),
        "[components.kv-counter]\ndenies = [\"kv:write:counter/*\"]\n\
         grants = [\"kv:read:counter/*\", \"kv:write:counter/*\", \"log:write\"]\n",
    );
    let example = root.join("examples/kv-counter").display().to_string();
    let out = airssys(
        &["run", &example, "--policy", "policy.toml"].map(String::from),
        tmp.path(),
    );
    let stderr = without_build(&text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    failures.extend(lines_shown(&shown, &stderr).err());

    // `airssys run` refuses two components of one name before loading
    // either; an embedder's second `Runtime::load` meets this error.
    let (first, second) = (billing("0.1.0"), billing("0.2.0"));
    let shown = text_block("docs/pitfalls.md", "component `billing` is already loaded");
    let runtime = airssys_runtime::Runtime::builder()
        .policy(airssys_runtime::Policy::builder().build())
        .in_memory_storage()
        .build()
        .unwrap();
    let _loaded = runtime.load(&first).unwrap();
    let Err(refused) = runtime.load(&second) else {
        panic!("a second component named `billing` is loaded");
    };
    let refused = refused.to_string();
    let refused = page_digests(&refused, &[(&first, "3b1f"), (&second, "77c0")]);
    failures.extend(lines_shown(&shown, &refused).err());
    let tmp = scratch("pitfalls-digest-");
    std::fs::write(tmp.path().join("first.wasm"), &first).unwrap();

    let shown = text_block("docs/pitfalls.md", "component `billing` is not the one");
    write(
        &tmp.path().join("policy.toml"),
        "# The billing service, pinned to its release build.\n\
         [components.billing]\n\
         sha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n",
    );
    let out = airssys(
        &["run", "first.wasm", "--policy", "policy.toml"].map(String::from),
        tmp.path(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let stderr = page_digests(&stderr, &[(&first, "6030")]);
    failures.extend(lines_shown(&shown, &stderr).err());

    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `docs/process.md`'s notice of a program granted with any arguments is
/// what `airssys inspect component.wasm --policy policy.toml` prints for a
/// component `builder` granted `proc:spawn:/usr/bin/make` without `args`.
#[test]
fn the_process_notice_of_process_md_is_real() {
    let shown = text_block("docs/process.md", "component `builder` may run");
    let tmp = scratch("process-notice-");
    let world = app_world(&["airssys:ext/process@1.0.0"]);
    let component = with_manifest(
        common::app_component(&world),
        "[component]\nname = \"builder\"\nversion = \"0.1.0\"\n\n[capabilities]\n\
         requires = [\"proc:spawn:/usr/bin/make\"]\n",
    );
    std::fs::write(tmp.path().join("component.wasm"), component).unwrap();
    write(
        &tmp.path().join("policy.toml"),
        "[components.builder]\ngrants = [\"proc:spawn:/usr/bin/make\"]\n",
    );
    let out = airssys(
        &["inspect", "component.wasm", "--policy", "policy.toml"].map(String::from),
        tmp.path(),
    );
    let printed = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{printed}");
    lines_shown(&shown, &printed).unwrap_or_else(|e| panic!("{e}"));
}

/// The refusal of a component without a manifest that the `c-greeter`
/// example's README shows is what `airssys run bare.wasm` prints for one
/// (the same for a component of any language).
#[test]
fn the_refusal_of_a_bare_component_in_the_c_greeter_readme_is_real() {
    let shown = text_block(
        "examples/c-greeter/README.md",
        "error: the host refused to load bare.wasm",
    );
    let tmp = scratch("bare-");
    let world = app_world(&["airssys:core/logging@1.0.0"]);
    std::fs::write(tmp.path().join("bare.wasm"), common::app_component(&world)).unwrap();
    let out = airssys(&["run", "bare.wasm"].map(String::from), tmp.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    lines_shown(&shown, &stderr).unwrap_or_else(|e| panic!("{e}"));
}

/// A component of world `w` of `wit` (resolved on its own, not against the
/// host's contract) with the manifest of a component `name`.
fn foreign_component(wit: &str, name: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_str("app.wit", wit).unwrap();
    let world = resolve.select_world(&[pkg], Some("w")).unwrap();
    with_manifest(
        common::dummy_component(&resolve, world),
        &format!("[component]\nname = \"{name}\"\nversion = \"0.1.0\"\n"),
    )
}

/// `docs/runtime.md`'s load refusals are what `airssys run` prints: a
/// component `counter` built against a logging interface with a `flush`
/// and a `log` taking bytes (`LoadError::Incompatible`), and a component
/// `unlinkable` importing a `wasi:cli/environment` with a `get-secret`
/// (`LoadError::Unlinkable`).
#[test]
fn the_load_refusals_of_runtime_md_are_real() {
    let incompatible = r#"
package test:app;

world w {
    import airssys:core/logging@1.0.0;
}

package airssys:core@1.0.0 {
    interface logging {
        variant error { denied(string), invalid-input(string), quota-exceeded(string), other(string) }
        enum level { trace, debug, info, warn, error }
        enabled: func(level: level) -> bool;
        log: func(level: level, target: string, message: list<u8>) -> result<_, error>;
        flush: func();
    }
}
"#;
    let unlinkable = r#"
package test:app;

world w {
    import wasi:cli/environment@0.2.0;
}

package wasi:cli@0.2.0 {
    interface environment {
        get-environment: func() -> list<tuple<string, string>>;
        get-secret: func(name: string) -> option<string>;
    }
}
"#;
    let mut failures = Vec::new();
    for (wit, name, starts) in [
        (incompatible, "counter", "component `counter` cannot run"),
        (unlinkable, "unlinkable", "component `unlinkable` imports"),
    ] {
        let shown = text_block("docs/runtime.md", starts);
        let tmp = scratch("runtime-md-");
        let file = format!("{name}.wasm");
        std::fs::write(tmp.path().join(&file), foreign_component(wit, name)).unwrap();
        let out = airssys(&["run".to_owned(), file], tmp.path());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        failures.extend(lines_shown(&shown, &stderr).err());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `docs/process.md`'s refusal of a variable the program rule does not
/// list is what a component `builder` sees (and `airssys run` prints) when
/// it passes `BASH_ENV` to `/bin/bash`, granted with a rule (line 6)
/// without `env`.
#[test]
fn the_env_refusal_of_process_md_is_real() {
    let shown = text_block("docs/process.md", "denied: component `builder` may not set");
    let tmp = scratch("process-env-");
    let component = tmp.path().join("builder");
    crate_at(
        &component,
        &component_toml("builder"),
        (
            "src/lib.rs",
            r#"#[airssys::component(world = "airssys:ext/component", requires = ["proc:spawn:/bin/bash"])]
struct Builder;

impl guest::Lifecycle for Builder {
    fn init(_config: Vec<guest::lifecycle::KeyValue>) -> Result<(), guest::lifecycle::Error> {
        Ok(())
    }
}

impl guest::Handler for Builder {
    /// Runs `bash -c true` with the variable the payload names set.
    fn handle_request(
        _source: String,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, guest::handler::Error> {
        let env = [host::process::KeyValue {
            key: String::from_utf8_lossy(&payload).into_owned(),
            value: "/tmp/x".to_owned(),
        }];
        let args = ["-c".to_owned(), "true".to_owned()];
        match Builder::host().process().spawn("/bin/bash", &args, &env) {
            Ok(_) => Ok(b"started".to_vec()),
            Err(host::process::Error::Denied(m)) => Err(guest::handler::Error::Other(format!("denied: {m}"))),
            Err(e) => Err(guest::handler::Error::Other(format!("{e:?}"))),
        }
    }
}
"#,
        ),
    );
    write(
        &tmp.path().join("policy.toml"),
        "# builder runs bash scripts.\n[components.builder]\n\
         grants = [\"proc:spawn:/bin/bash\"]\n\n# No variables of its choosing.\n\
         [components.builder.programs.\"/bin/bash\"]\n",
    );
    let out = airssys(
        &[
            "run",
            "builder",
            "--policy",
            "policy.toml",
            "--request",
            "BASH_ENV",
        ]
        .map(String::from),
        tmp.path(),
    );
    let printed = format!("{}{}", text(&out.stdout), without_build(&text(&out.stderr)));
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{printed}"
    );
    lines_shown(&shown, &printed).unwrap_or_else(|e| panic!("{e}"));
}

/// The "mistake to try" of `examples/host-embed/README.md` that breaks the
/// build: both guards of `src/service.rs` changed to
/// `kv:write:phrasebook/*` in a copy of the crate, whose check then prints
/// the lines of the README's two ` ```text ` blocks (the function's and
/// the method's), in order; the copy's paths are relative to it, not to
/// the repository.
#[test]
fn the_build_mistake_of_the_host_embed_readme_fails_as_shown() {
    let page = "examples/host-embed/README.md";
    let example = repo_root().join("examples/host-embed");
    let tmp = scratch("host-embed-mistake-");
    let service = std::fs::read_to_string(example.join("src/service.rs")).unwrap();
    let guard = "#[airssys::host_fn(capability = \"kv:read:phrasebook/*\")]";
    assert_eq!(service.matches(guard).count(), 2, "src/service.rs: {guard}");
    let source = std::fs::read_to_string(repo_root().join(page)).unwrap();
    let changed = guard.replace("kv:read", "kv:write");
    assert!(source.contains(&changed), "{page} shows {changed}");
    write(
        &tmp.path().join("src/service.rs"),
        &service.replace(guard, &changed),
    );
    std::fs::copy(example.join("src/main.rs"), tmp.path().join("src/main.rs")).unwrap();
    std::os::unix::fs::symlink(example.join("wit"), tmp.path().join("wit")).unwrap();
    crate_at(
        tmp.path(),
        &local_dependencies(
            "[package]\nname = \"host-embed\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
             publish = false\n\n[dependencies]\nairssys = \"0.1\"\nairssys-runtime = \"0.1\"\n\
             serde_json = \"1\"\n",
        ),
        (
            "src/main.rs",
            &std::fs::read_to_string(example.join("src/main.rs")).unwrap(),
        ),
    );
    let Err(printed) = check(tmp.path(), false, page) else {
        panic!("{page}: the crate with {changed} builds");
    };
    let mut shown_blocks = 0;
    for block in blocks(page) {
        if block.info != "text" || !block.body.contains("does not match the WIT") {
            continue;
        }
        shown_blocks += 1;
        let mut lines = printed.lines();
        for shown in block.body.lines() {
            let shown = shown.replace("examples/host-embed/", "");
            assert!(
                lines.any(|l| line_matches(&shown, l)),
                "{}: `{shown}` is not (in this order) in what the build prints:\n{printed}",
                block.at
            );
        }
    }
    assert_eq!(shown_blocks, 2, "{page} shows both refusals");
}

/// `docs/README.md`, the docs index, links every page of `docs/` and
/// `docs/decisions/` (a page added without a line in the index fails
/// here), and every page it links exists.
#[test]
fn the_docs_index_lists_every_page() {
    let index = std::fs::read_to_string(repo_root().join("docs/README.md")).unwrap();
    let mut failures = Vec::new();
    for dir in ["docs", "docs/decisions"] {
        for entry in std::fs::read_dir(repo_root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".md") || name == "README.md" {
                continue;
            }
            let link = match dir.strip_prefix("docs/") {
                Some(sub) => format!("]({sub}/{name})"),
                None => format!("]({name})"),
            };
            if !index.contains(&link) {
                failures.push(format!("{dir}/{name} is not linked from docs/README.md"));
            }
        }
    }
    for link in index.split("](").skip(1) {
        let target = link.split(')').next().unwrap().split('#').next().unwrap();
        if target.is_empty() || target.starts_with("http") {
            continue;
        }
        if !repo_root().join("docs").join(target).exists() {
            failures.push(format!(
                "docs/README.md links {target}, which does not exist"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The layout table of `README.md` names every subcommand `airssys
/// --help` lists (in its `cli/` row) and every directory of `examples/`
/// (in its `examples/` row).
#[test]
fn the_layout_of_the_readme_names_every_subcommand_and_example() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let row = |path: &str| {
        readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{path}` |")))
            .unwrap_or_else(|| panic!("README.md's layout has no row `{path}`"))
            .to_owned()
    };
    let (cli, examples) = (row("cli/"), row("examples/"));
    let help = airssys(&["--help".to_owned()], &root);
    let mut failures = Vec::new();
    for line in text(&help.stdout)
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
    {
        let Some(command) = line.split_whitespace().next() else {
            continue;
        };
        if command != "help" && !cli.contains(&format!("`{command}")) {
            failures.push(format!("README.md's `cli/` row does not name `{command}`"));
        }
    }
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !examples.contains(&format!("`{name}`")) {
            failures.push(format!(
                "README.md's `examples/` row does not name `{name}`"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The anchors of a Markdown page: its headings as GitHub makes them
/// (lower case, punctuation dropped, spaces as `-`; a repeated heading
/// `-1`, `-2`, ..) and its `<a id="..">` tags.
fn anchors(source: &str) -> std::collections::HashSet<String> {
    let mut out = std::collections::HashSet::new();
    let mut fenced = false;
    for line in source.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced {
            continue;
        }
        for id in line.split("<a id=\"").skip(1) {
            out.insert(id.split('"').next().unwrap().to_owned());
        }
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let slug: String = heading
            .trim_start_matches('#')
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while !out.insert(unique.clone()) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
    }
    out
}

/// Every relative link of the docs (README.md, ARCHITECTURE.md, `docs/`,
/// `docs/decisions/`, the examples' READMEs), outside code blocks, names
/// a file that exists and, with `#anchor`, a heading (or `<a id>`) of it.
#[test]
fn every_link_of_the_docs_reaches_its_page_and_heading() {
    let root = repo_root();
    let mut pages = doc_pages();
    pages.push("ARCHITECTURE.md".to_owned());
    for entry in std::fs::read_dir(root.join("docs/decisions")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            pages.push(format!("docs/decisions/{name}"));
        }
    }
    let mut failures = Vec::new();
    let mut links = 0;
    for page in &pages {
        let source = std::fs::read_to_string(root.join(page)).unwrap();
        let mut fenced = false;
        for (n, line) in source.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            }
            if fenced {
                continue;
            }
            for link in line.split("](").skip(1) {
                let Some(target) = link.split(')').next() else {
                    continue;
                };
                if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                    continue;
                }
                links += 1;
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let file = if path.is_empty() {
                    root.join(page)
                } else {
                    root.join(page).parent().unwrap().join(path)
                };
                let at = format!("{page}:{}: `{target}`", n + 1);
                if !file.exists() {
                    failures.push(format!("{at}: no such file"));
                } else if !anchor.is_empty()
                    && file.extension().is_some_and(|e| e == "md")
                    && !anchors(&std::fs::read_to_string(&file).unwrap()).contains(anchor)
                {
                    failures.push(format!("{at}: no such heading"));
                }
            }
        }
    }
    assert!(links > 100, "only {links} links found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Output samples of the NATS and serve pages tied to real output by a
/// test other than the commands' own: the page, how the sample starts,
/// the test that finds it in what the program prints.
const TEXT_SAMPLES: &[(&str, &str, &str)] = &[
    (
        "docs/distributed.md",
        "  note: the NATS server",
        "cli/tests/distributed.rs",
    ),
    (
        "docs/serve.md",
        "{\"error\":\"Forbidden\"",
        "cli/tests/serve.rs",
    ),
    (
        "docs/serve.md",
        "airssys: the output was blocked",
        "cli/tests/serve_output.rs",
    ),
];

/// Every ` ```text ` block of `docs/nats.md`, `docs/distributed.md` and
/// `docs/serve.md` is tied to real output: what the shell block right
/// before it prints (the page's test in [`SHELL_PAGES`] checks it), a
/// synopsis (`airssys ..`, checked by
/// `every_flag_of_the_synopses_exists`), a sample [`TEXT_SAMPLES`] lists
/// with the test that reads it from the page, or marked
/// `<!-- no-test: reason -->`. A new sample without a test fails here.
#[test]
fn every_output_sample_of_the_nats_and_serve_pages_is_tied_to_a_test() {
    let mut failures = Vec::new();
    for page in ["docs/nats.md", "docs/distributed.md", "docs/serve.md"] {
        let blocks = blocks(page);
        for (i, block) in blocks.iter().enumerate() {
            if block.info != "text" || block.no_test || block.body.starts_with("airssys ") {
                continue;
            }
            let after_commands = i > 0
                && ["sh", "console"].contains(&blocks[i - 1].info.as_str())
                && !blocks[i - 1].no_test;
            let listed = TEXT_SAMPLES.iter().find(|(p, starts, _)| {
                *p == page && block.body.trim_start().starts_with(starts.trim_start())
            });
            match listed {
                Some((_, _, test)) => {
                    let source = std::fs::read_to_string(repo_root().join(test)).unwrap();
                    if !source.contains(page) {
                        failures.push(format!("{}: {test} does not read {page}", block.at));
                    }
                }
                None if after_commands => {}
                None => failures.push(format!(
                    "{}: an output sample no test ties to real output: check it against the \
                     program's output in a test and list it in TEXT_SAMPLES, or mark it \
                     `<!-- no-test: reason -->`",
                    block.at
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
