//! docs/getting-started.md, followed to the letter: every command of its
//! shell blocks runs, in order, and prints what the test expects; the
//! `src/lib.rs` and `policy.toml` excerpts it shows are what `airssys new`
//! writes.
//!
//! Fences: ```` ```sh ```` blocks run in one fresh temporary directory
//! (outside the repository; `cd` carries over from block to block),
//! ```` ```sh,checkout ```` blocks in the repository root (the page says
//! "In the checkout"), ```` ```sh,no-run ```` blocks are skipped and must
//! follow an HTML comment `<!-- no-run: REASON -->`. `airssys ...` and
//! `cargo run -p airssys-cli -- ...` both run the `airssys` binary this
//! test was built with. Crates build into `<repo>/target/new-templates`,
//! the target directory the other CLI tests share.

mod common;

use common::repo_root;
use std::path::Path;
use std::process::{Command, Output};

fn page() -> String {
    std::fs::read_to_string(repo_root().join("docs/getting-started.md"))
        .expect("reads docs/getting-started.md")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Where a shell block runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The repository root.
    Checkout,
    /// The test's temporary directory (and where `cd` leads from it).
    Scratch,
}

/// A fenced block: its info string and its lines.
struct Block {
    info: String,
    lines: Vec<String>,
    /// The lines of the page before the fence.
    before: Vec<String>,
}

fn blocks(page: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let lines: Vec<&str> = page.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if let Some(info) = lines[i].strip_prefix("```") {
            let before = lines[..i].iter().map(|l| (*l).to_owned()).collect();
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].starts_with("```") {
                body.push(lines[i].to_owned());
                i += 1;
            }
            out.push(Block {
                info: info.trim().to_owned(),
                lines: body,
                before,
            });
        }
        i += 1;
    }
    out
}

/// The words of a shell line: single and double quotes group, an unquoted
/// `#` after a space starts a comment.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, '#') if word.is_none() => break,
            (None, c) if c.is_whitespace() => out.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(quote.is_none(), "unclosed quote in `{line}`");
    out.extend(word);
    out
}

/// The page's commands in order, with where each runs.
fn commands(page: &str) -> Vec<(Place, Vec<String>)> {
    let mut out = Vec::new();
    for block in blocks(page) {
        let place = match block.info.as_str() {
            "sh" => Place::Scratch,
            "sh,checkout" => Place::Checkout,
            "sh,no-run" => {
                let comment = block
                    .before
                    .iter()
                    .rev()
                    .take_while(|l| !l.trim().is_empty())
                    .cloned()
                    .collect::<Vec<_>>();
                assert!(
                    comment
                        .first()
                        .is_some_and(|l| l.trim_end().ends_with("-->"))
                        && comment.iter().any(|l| l.contains("<!-- no-run:")),
                    "a ```sh,no-run block must follow `<!-- no-run: REASON -->`: {:?}",
                    block.lines
                );
                continue;
            }
            info if ["sh", "bash", "console", "shell"]
                .iter()
                .any(|s| info.split(',').next() == Some(*s)) =>
            {
                panic!(
                    "a shell block with fence `{info}` this test does not know: use sh, sh,checkout or sh,no-run"
                )
            }
            _ => continue,
        };
        for line in &block.lines {
            let words = words(line);
            if !words.is_empty() {
                out.push((place, words));
            }
        }
    }
    out
}

fn airssys(args: &[String], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(args)
        .current_dir(cwd)
        .env(
            "CARGO_TARGET_DIR",
            repo_root().join("target").join("new-templates"),
        )
        .env_remove("AIRSSYS_PATH")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("runs airssys")
}

/// What runs the CLI without installing it.
const CARGO_RUN: [&str; 5] = ["cargo", "run", "-p", "airssys-cli", "--"];

/// What each command must do: the command as the page writes it (without
/// its comment), its exit code, and what it prints, in order (stdout,
/// then stderr).
const EXPECTED: &[(&str, i32, &[&str])] = &[
    (
        "cargo run -p airssys-cli -- run examples/kv-counter --policy examples/kv-counter/policy.toml --request increment --request reset",
        0,
        &[
            "loaded `kv-counter`",
            "\ninit\n",
            "  log info kv-counter: started 1 time(s)",
            "request \"increment\"",
            "  allow kv:write:counter/starts (bucket.set)",
            "  -> reply \"2\"",
            "request \"reset\"",
            "  DENY  kv:delete:counter/starts (bucket.delete)",
            "  fix: add \"kv:delete:counter/*\" to `grants` of [components.kv-counter]",
        ],
    ),
    (
        "airssys new hello",
        0,
        &[
            "created component `hello` (template `storage`) in ./hello",
            "next:\n  cd ./hello\n  airssys run . --policy policy.toml",
        ],
    ),
    ("cd hello", 0, &[]),
    (
        "airssys run . --policy policy.toml --request get",
        0,
        &[
            "loaded `hello`",
            "\ninit\n",
            "  log info hello: started 1 time(s)",
            "request \"get\"",
            "  -> reply \"1\"",
        ],
    ),
    (
        "airssys run . --policy policy.toml --deny kv:write:counter/*",
        1,
        &[
            "error: the host refused to load",
            "`kv:write:counter/*`: denied by the policy's deny rule `kv:write:counter/*`",
        ],
    ),
    (
        "airssys run . --policy policy.toml --storage state.redb",
        0,
        &["\ninit\n", "  log info hello: started 1 time(s)"],
    ),
    (
        "airssys run . --policy policy.toml --storage state.redb",
        0,
        &["\ninit\n", "  log info hello: started 2 time(s)"],
    ),
];

#[test]
fn every_command_of_getting_started_runs_as_the_page_says() {
    let page = page();
    let commands = commands(&page);
    let listed: Vec<String> = commands.iter().map(|(_, w)| w.join(" ")).collect();
    let expected: Vec<&str> = EXPECTED.iter().map(|(c, _, _)| *c).collect();
    assert_eq!(
        listed, expected,
        "docs/getting-started.md's commands changed: update EXPECTED in this test"
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let scratch = std::fs::canonicalize(tmp.path()).expect("canonical tempdir");
    assert!(!scratch.starts_with(std::fs::canonicalize(repo_root()).expect("root")));
    let mut cwd = scratch.clone();
    for ((place, words), (command, code, needles)) in commands.iter().zip(EXPECTED) {
        let here = match place {
            Place::Checkout => repo_root(),
            Place::Scratch => cwd.clone(),
        };
        let args: &[String] = match words.as_slice() {
            [cd, dir] if cd == "cd" => {
                cwd = here.join(dir);
                assert!(cwd.is_dir(), "`{command}`: no directory {}", cwd.display());
                continue;
            }
            [a, rest @ ..] if a == "airssys" => rest,
            _ if words.starts_with(&CARGO_RUN.map(String::from)) => &words[CARGO_RUN.len()..],
            _ => panic!(
                "`{command}`: this test runs `airssys`, `cargo run -p airssys-cli --` and `cd` only"
            ),
        };
        let out = airssys(args, &here);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(
            out.status.code(),
            Some(*code),
            "`{command}`:\n{stdout}\n{stderr}"
        );
        // What the page's reader sees: stdout, then stderr (errors).
        let seen = format!("{stdout}{stderr}");
        let mut from = 0;
        for needle in *needles {
            let Some(at) = seen[from..].find(needle) else {
                panic!("`{command}`: `{needle}` not found (in order) in:\n{stdout}\n{stderr}");
            };
            from += at + needle.len();
        }
    }

    // The excerpts the page shows are what `airssys new hello` wrote.
    let hello = scratch.join("hello");
    let lib = std::fs::read_to_string(hello.join("src/lib.rs")).expect("hello/src/lib.rs");
    let policy = std::fs::read_to_string(hello.join("policy.toml")).expect("hello/policy.toml");
    let shown: Vec<Block> = blocks(&page)
        .into_iter()
        .filter(|b| b.info == "rust" || b.info == "toml")
        .collect();
    assert_eq!(shown.len(), 2, "one src/lib.rs and one policy.toml excerpt");
    for block in shown {
        let excerpt = block.lines.join("\n");
        let file = if block.info == "rust" { &lib } else { &policy };
        assert!(
            file.contains(&excerpt),
            "docs/getting-started.md shows\n{excerpt}\nwhich `airssys new hello` does not write:\n{file}"
        );
    }
}

/// The page's route without installing: `cargo run -p airssys-cli -- new
/// hello` in the checkout, then, inside `hello/`, `cargo run -q
/// --manifest-path ../Cargo.toml -p airssys-cli --` for `airssys`. The
/// crate is made inside a copy of the checkout (links to its files), the
/// manifest path names the checkout's CLI package, and the crate builds
/// and runs there (a crate inside the checkout's workspace directory).
#[test]
fn the_route_without_installing_works_inside_the_checkout() {
    let page = page();
    let inside = "cargo run -q --manifest-path ../Cargo.toml -p airssys-cli --";
    for shown in [
        "`cargo run -p airssys-cli -- new hello`",
        &format!("`{inside}`"),
    ] {
        assert!(
            page.contains(shown),
            "docs/getting-started.md no longer says {shown}: update this test"
        );
    }
    let target = repo_root().join("target").join("new-templates");
    std::fs::create_dir_all(&target).expect("target dir");
    let tmp = tempfile::Builder::new()
        .prefix("checkout-")
        .tempdir_in(&target)
        .expect("tempdir");
    let checkout = tmp.path();
    for entry in std::fs::read_dir(repo_root()).expect("reads the checkout") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name != "target" && name != ".git" {
            std::os::unix::fs::symlink(entry.path(), checkout.join(&name)).expect("links");
        }
    }
    let out = airssys(&words("new hello"), checkout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let hello = checkout.join("hello");

    // `../Cargo.toml` from `hello/` is the workspace holding the CLI.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let inside_words = words(inside);
    let manifest = inside_words
        .iter()
        .skip_while(|w| *w != "--manifest-path")
        .nth(1)
        .expect("the page names --manifest-path");
    let metadata = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(manifest)
        .current_dir(&hello)
        .output()
        .expect("runs cargo metadata");
    assert!(metadata.status.success(), "{}", text(&metadata.stderr));
    assert!(
        text(&metadata.stdout).contains("\"name\":\"airssys-cli\""),
        "`{manifest}` from hello/ is not the workspace of airssys-cli"
    );

    let out = airssys(&words("run . --policy policy.toml --request get"), &hello);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("  -> reply \"1\""), "{stdout}");
}
