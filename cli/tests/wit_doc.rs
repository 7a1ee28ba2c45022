//! `airssys wit doc` end to end.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

mod common;
use common::{airssys, repo, stderr, stdout};

fn generate(args: &[&str], out: &Path) -> Output {
    let mut all = vec!["wit", "doc"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", out.to_str().unwrap()]);
    airssys(&all)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file below `dir`, relative, with its contents.
fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                files.push((rel, read(&path)));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn the_shipped_reference_is_up_to_date() {
    let reference = repo().join("docs/reference");
    let out = generate(&["--check"], &reference);
    assert_eq!(
        out.status.code(),
        Some(0),
        "docs/reference is stale; run `cargo run -p airssys-cli -- wit doc -o docs/reference`\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).starts_with("ok: "), "{}", stdout(&out));
}

#[test]
fn storage_page_lists_functions_capabilities_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let out = generate(&[], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = read(&dir.path().join("airssys-core/storage.md"));
    assert!(
        page.starts_with("# `airssys:core/storage@1.0.0`\n"),
        "{page}"
    );
    assert!(
        page.contains("Key-value storage in named buckets."),
        "{page}"
    );
    for row in [
        "| [`open`](#open) | `func(name: string) -> result<bucket, error>` | none |",
        "| [`bucket.get`](#bucketget) | `func(key: string) -> result<option<list<u8>>, error>` | `kv:read:{self}/{key}` |",
        "| [`bucket.list-keys`](#bucketlist-keys) | `func(cursor: option<string>) -> result<key-page, error>` | `kv:list:{self}` |",
        // the variant's cases and the record's fields
        "| `denied` | `string` | This component holds no `kv` grant covering the bucket and key. |",
        "| `next` | `option<string>` | Pass this to `list-keys` to get the next page; `none` on the last page. |",
        // the resource's methods
        "| [`set`](#bucketset) | `func(key: string, value: list<u8>) -> result<_, error>` | `kv:write:{self}/{key}` |",
    ] {
        assert!(page.contains(row), "missing row {row}\n{page}");
    }
    for heading in [
        "### `variant error`",
        "### `record key-page`",
        "### `resource bucket`",
    ] {
        assert!(
            page.contains(&format!("\n{heading}\n")),
            "{heading}\n{page}"
        );
    }
    // the `@capability` line is rendered, not copied
    assert!(!page.contains("@capability"), "{page}");
    assert!(page.contains("`{self}` is the name the bucket was opened with"));

    let fs = read(&dir.path().join("airssys-ext/filesystem.md"));
    assert!(
        fs.contains("| handle (authorized when the handle was opened) |"),
        "{fs}"
    );
    assert!(fs.contains("### `enum entry-kind`"), "{fs}");
    // a type `use`d from another package links to its page
    assert!(
        fs.contains(
            "Used from [`airssys:core/poll@1.0.0`](../airssys-core/poll.md#resource-pollable)"
        ),
        "{fs}"
    );
    // component-side interfaces carry no capability
    let handler = read(&dir.path().join("airssys-core/handler.md"));
    assert!(handler.contains("| — (component export) |"), "{handler}");
}

#[test]
fn index_lists_packages_worlds_and_interfaces() {
    let dir = tempfile::tempdir().unwrap();
    generate(&[], dir.path());
    let index = read(&dir.path().join("index.md"));
    for text in [
        "### `airssys:core@1.0.0`",
        "### `airssys:ext@1.0.0`",
        "| [`storage`](airssys-core/storage.md) | host | 6 | Key-value storage in named buckets. |",
        "| [`handler`](airssys-core/handler.md) | component |",
        "### `airssys:ext/component@1.0.0`",
        "- [`airssys:core/lifecycle@1.0.0`](airssys-core/lifecycle.md)",
    ] {
        assert!(index.contains(text), "missing {text}\n{index}");
    }
    // every page the index links to exists
    for link in index.split("](").skip(1) {
        let target = link.split(')').next().unwrap();
        assert!(dir.path().join(target).is_file(), "broken link {target}");
    }
}

#[test]
fn output_is_deterministic_and_the_same_from_the_directory() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    generate(&[], a.path());
    let wit = repo().join("wit");
    let out = generate(&[wit.to_str().unwrap()], b.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first = snapshot(a.path());
    assert_eq!(
        first.len(),
        13,
        "{:?}",
        first.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert_eq!(first, snapshot(b.path()));
    // a second run changes nothing
    let out = generate(&[], a.path());
    assert!(
        stdout(&out).contains("(0 changed, 0 removed)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(first, snapshot(a.path()));
}

#[test]
fn check_lists_stale_missing_and_extra_files() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("reference");
    generate(&[], &out_dir);
    let out = generate(&["--check"], &out_dir);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        format!("ok: {} is up to date (13 files)\n", out_dir.display())
    );

    let storage = out_dir.join("airssys-core/storage.md");
    std::fs::write(&storage, read(&storage).replace("none", "kv:read")).unwrap();
    std::fs::remove_file(out_dir.join("index.md")).unwrap();
    std::fs::write(out_dir.join("airssys-core/old.md"), "# gone\n").unwrap();
    std::fs::write(out_dir.join("notes.txt"), "not markdown: ignored").unwrap();
    let out = generate(&["--check"], &out_dir);
    assert_eq!(out.status.code(), Some(1));
    let shown = |rel: &str| out_dir.join(rel).display().to_string();
    assert_eq!(
        stdout(&out),
        format!(
            "stale: {}\nmissing: {}\nextra: {}\n",
            shown("airssys-core/storage.md"),
            shown("index.md"),
            shown("airssys-core/old.md")
        )
    );
    assert!(
        stderr(&out).contains("out of date (3 files)"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("airssys wit doc -o "),
        "{}",
        stderr(&out)
    );

    // regenerating repairs all three and keeps files that are not Markdown
    let out = generate(&[], &out_dir);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains(&format!("removed: {}", shown("airssys-core/old.md"))),
        "{}",
        stdout(&out)
    );
    assert!(out_dir.join("notes.txt").is_file());
    assert_eq!(generate(&["--check"], &out_dir).status.code(), Some(0));
}

#[test]
fn check_of_a_missing_directory_lists_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = generate(&["--check"], &dir.path().join("nothing"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out).lines().count(), 13, "{}", stdout(&out));
    assert!(stdout(&out).lines().all(|l| l.starts_with("missing: ")));
}

#[test]
fn renders_every_kind_of_type() {
    let dir = tempfile::tempdir().unwrap();
    let wit = dir.path().join("wit");
    std::fs::create_dir(&wit).unwrap();
    std::fs::write(
        wit.join("api.wit"),
        "package demo:kinds@0.2.0;

/// Shapes.
interface shapes {
  /// A point.
  record point { /// Across.
    x: s32, y: s32 }
  /// Colours.
  enum colour { red, /// The green | one.
    green }
  /// Permissions.
  flags perms { read, write }
  /// A shape.
  variant shape { dot(point), nothing }
  /// Bytes.
  type blob = list<u8>;
  /// Errors.
  variant error { denied(string), other(string) }
  /// A canvas.
  resource canvas {
    /// Makes one.
    ///
    /// @capability none
    constructor(name: string);
    /// Finds one.
    ///
    /// @capability env:read:{name}
    find: static func(name: string) -> result<canvas, error>;
    /// Draws.
    ///
    /// @capability handle
    draw: func(s: shape) -> result<_, error>;
  }
  /// No capability line at all.
  broken: func() -> result<tuple<u8, blob>, error>;
}

/// Uses the shapes.
interface user {
  use shapes.{point};
  /// @capability none
  origin: func() -> point;
}

world w { export user; import shapes; import extra: interface { f: func(); } }
",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = generate(&[wit.to_str().unwrap()], &out_dir);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = read(&out_dir.join("demo-kinds/shapes.md"));
    for text in [
        "| `x` | `s32` | Across. |",
        "| `green` | The green \\| one. |",
        "| `write` |  |",
        "| `dot` | `point` |  |",
        "| `nothing` | — |  |",
        "```wit\ntype blob = list<u8>;\n```",
        "| [`canvas.constructor`](#canvasconstructor) | `constructor(name: string)` | none |",
        "| [`canvas.find`](#canvasfind) | `static func(name: string) -> result<canvas, error>` | `env:read:{name}` |",
        "| [`canvas.draw`](#canvasdraw) | `func(s: shape) -> result<_, error>` | handle (authorized when the handle was opened) |",
        "| [`broken`](#broken) | `func() -> result<tuple<u8, blob>, error>` | **missing or invalid `@capability`** (see `airssys wit check`) |",
        "| [`constructor`](#canvasconstructor) |",
        "```wit\nconstructor(name: string);\n```",
        "Static function of [`canvas`](#resource-canvas).",
    ] {
        assert!(page.contains(text), "missing {text}\n{page}");
    }
    let user = read(&out_dir.join("demo-kinds/user.md"));
    assert!(
        user.contains("Used from [`demo:kinds/shapes@0.2.0`](../demo-kinds/shapes.md#record-point): `use demo:kinds/shapes@0.2.0.{point}`."),
        "{user}"
    );
    // exported by the world and not imported: the component side
    assert!(user.contains("| — (component export) |"), "{user}");
    let index = read(&out_dir.join("index.md"));
    assert!(
        index.contains("- `extra`: an inline interface (1 function)\n"),
        "{index}"
    );
}

#[test]
fn invalid_wit_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = generate(&["/no/such/airssys/wit"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/no/such/airssys/wit: not a directory"));
    let entries = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(entries, 0, "nothing is written on error");
}
