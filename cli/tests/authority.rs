//! Authority over time, through the built `airssys`: `airssys diff` of two
//! releases of `examples/kv-counter` (one widening `kv:read`),
//! `airssys policy diff`, `airssys run --observe` → `airssys policy
//! propose` → a run under the proposed policy with no denial, and every
//! command of `docs/least-privilege.md`.
//!
//! The two releases are copies of the example written under
//! `<repo>/target/new-templates/fixtures/` (inside the checkout, so the
//! pinned toolchain applies) and built into `<repo>/target/new-templates`,
//! the target directory the other CLI tests share.

#![allow(clippy::unwrap_used)]

mod common;

use common::{repo_root, shared_target};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn airssys_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", shared_target())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Writes a copy of `examples/kv-counter` as the crate `package` (its
/// manifest name stays `kv-counter`), with `edit` applied to its
/// `src/lib.rs`; returns its directory. Unchanged files are not
/// rewritten, so a second run does not rebuild.
fn release(package: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let repo = repo_root();
    let example = repo.join("examples/kv-counter");
    let dir = repo.join("target/new-templates/fixtures").join(package);
    let cargo_toml = std::fs::read_to_string(example.join("Cargo.toml"))
        .unwrap()
        .replace("name = \"kv-counter\"", &format!("name = \"{package}\""))
        .replace(
            "airssys = { path = \"../..\" }",
            &format!("airssys = {{ path = {:?} }}", repo.display().to_string()),
        );
    let lib_rs = edit(
        std::fs::read_to_string(example.join("src/lib.rs"))
            .unwrap()
            .replace(
                "#[airssys::component(\n",
                "#[airssys::component(\n    name = \"kv-counter\",\n",
            ),
    );
    let lock = std::fs::read_to_string(example.join("Cargo.lock")).unwrap();
    for (path, contents) in [
        (dir.join("Cargo.toml"), cargo_toml),
        (dir.join("src/lib.rs"), lib_rs),
        (dir.join("Cargo.lock"), lock),
    ] {
        if std::fs::read_to_string(&path).is_ok_and(|old| old == contents) {
            continue;
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
    }
    dir
}

/// The two releases: 0.1.0 as the example is, and 0.1.0 again with
/// `kv:read:counter/*` changed to `kv:read:*`.
fn releases() -> (PathBuf, PathBuf) {
    let old = release("authority-old", |s| s);
    let new = release("authority-new", |s| {
        s.replace("\"kv:read:counter/*\",", "\"kv:read:*\",")
    });
    (old, new)
}

/// The `airssys diff OLD_DIR NEW_DIR --fail-on widened` run, which builds
/// both releases (once for every test).
fn release_diff() -> &'static Output {
    static DIFF: OnceLock<Output> = OnceLock::new();
    DIFF.get_or_init(|| {
        let (old, new) = releases();
        airssys_in(
            &repo_root(),
            &[
                "diff",
                old.to_str().unwrap(),
                new.to_str().unwrap(),
                "--fail-on",
                "widened",
            ],
        )
    })
}

/// The built `.wasm` of the old release (built by [`release_diff`]).
fn old_wasm() -> PathBuf {
    let out = release_diff();
    let wasm = shared_target().join("wasm32-wasip2/release/authority_old.wasm");
    assert!(wasm.is_file(), "{}", show(out));
    wasm
}

fn scratch() -> tempfile::TempDir {
    std::fs::create_dir_all(shared_target()).unwrap();
    tempfile::Builder::new()
        .prefix("authority-")
        .tempdir_in(shared_target())
        .unwrap()
}

/// Writes `old` with its manifest replaced by `Component.toml` `manifest`.
fn with_manifest(dir: &Path, old: &Path, manifest: &str, out: &str) -> PathBuf {
    std::fs::write(dir.join("Component.toml"), manifest).unwrap();
    let attached = airssys_in(
        dir,
        &[
            "manifest",
            "attach",
            "--replace",
            "--manifest",
            "Component.toml",
            "-o",
            out,
            old.to_str().unwrap(),
        ],
    );
    assert_eq!(attached.status.code(), Some(0), "{}", show(&attached));
    dir.join(out)
}

fn manifest(version: &str, requires: &str, optional: &str) -> String {
    format!(
        "[component]\nname = \"kv-counter\"\nversion = \"{version}\"\n\n[capabilities]\n\
         requires = [{requires}]\noptional = [{optional}]\n"
    )
}

#[test]
fn a_release_that_changes_kv_read_counter_to_kv_read_any_fails_fail_on_widened() {
    let out = release_diff();
    assert_eq!(out.status.code(), Some(1), "{}", show(out));
    let stdout = text(&out.stdout);
    // By subset, not text: `kv:read:*` is every one-segment key, so it does
    // not contain `counter/*`: new authority (added) and the old lost.
    common::assert_in_order(
        &stdout,
        &[
            "manifest: kv-counter 0.1.0 -> kv-counter 0.1.0\n",
            "  added: kv:read:*\n",
            "  removed: kv:read:counter/*\n",
            "  finding: the manifest asks for more (kv:read:*) but the version is still 0.1.0",
            "imports and exports: unchanged\n",
            "summary: 0 widened, 1 added, 0 narrowed, 1 removed, 0 new domain(s), 1 finding(s), \
             0 import/export change(s)\n",
        ],
    );
    assert!(
        text(&out.stderr).contains(
            "error: the new build asks for more authority: 0 widened, 1 added (--fail-on widened)"
        ),
        "{}",
        show(out)
    );
}

#[test]
fn widening_to_every_key_is_a_widening_and_fail_on_picks_what_fails() {
    let old = old_wasm();
    let dir = scratch();
    let caps = "\"kv:read:**\", \"kv:write:counter/*\", \"log:write\"";
    let new = with_manifest(
        dir.path(),
        &old,
        &manifest("0.1.0", caps, "\"kv:delete:counter/*\""),
        "new.wasm",
    );
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    let widened = airssys_in(dir.path(), &["diff", old, new, "--fail-on", "widened"]);
    assert_eq!(widened.status.code(), Some(1), "{}", show(&widened));
    assert!(
        text(&widened.stdout).contains("  widened: kv:read:counter/* -> kv:read:**\n"),
        "{}",
        show(&widened)
    );
    // Nothing entirely new: `--fail-on added` passes.
    let added = airssys_in(dir.path(), &["diff", old, new, "--fail-on", "added"]);
    assert_eq!(added.status.code(), Some(0), "{}", show(&added));
    let json = airssys_in(dir.path(), &["diff", old, new, "--format", "json"]);
    assert_eq!(json.status.code(), Some(0), "{}", show(&json));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["summary"]["widened"], 1);
    assert_eq!(
        report["manifest"]["capabilities"]["widened"][0]["from"][0],
        "kv:read:counter/*"
    );
    assert_eq!(
        report["manifest"]["findings"][0]["kind"],
        "authority-grew-under-same-version"
    );
    // The same widening under a new version: no finding, a new domain.
    let bumped = with_manifest(
        dir.path(),
        Path::new(old),
        &manifest(
            "0.2.0",
            caps,
            "\"kv:delete:counter/*\", \"msg:subscribe:orders.*\"",
        ),
        "bumped.wasm",
    );
    let out = airssys_in(dir.path(), &["diff", old, bumped.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("  new domain: msg\n"), "{stdout}");
    assert!(!stdout.contains("  finding:"), "{stdout}");
}

#[test]
fn imports_and_exports_are_compared_through_the_wit_diff_engine() {
    let old = old_wasm();
    let other = repo_root().join("target/new-templates/wasm32-wasip2/release/authority_new.wasm");
    let out = airssys_in(
        &repo_root(),
        &[
            "diff",
            old.to_str().unwrap(),
            other.to_str().unwrap(),
            "--fail-on",
            "any",
        ],
    );
    // The two releases import the same functions: only the manifest differs.
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(text(&out.stdout).contains("imports and exports: unchanged\n"));
    // A component that imports less: the removals are import-side changes.
    let echo = common::echo_crate("authority-echo");
    let echo_out = airssys_in(
        &repo_root(),
        &["diff", old.to_str().unwrap(), echo.to_str().unwrap()],
    );
    assert_eq!(echo_out.status.code(), Some(0), "{}", show(&echo_out));
    let stdout = text(&echo_out.stdout);
    assert!(
        stdout.contains("  import [interface-removed] airssys:core/storage: interface `storage` was removed\n      importers BREAKS, exporters ok, bindings BREAKS\n"),
        "{stdout}"
    );
}

#[test]
fn policy_diff_names_what_each_component_gains_and_loses() {
    let dir = scratch();
    let old = "[defaults]\ngrants = [\"log:write:info\"]\ndenies = [\"env:read:AWS_*\"]\n\n\
               [components.kv-counter]\ngrants = [\"kv:read:counter/*\", \"kv:write:counter/*\"]\n\n\
               [components.billing]\ngrants = [\"net:http:*.bank.example:443\"]\n";
    let new = "[defaults]\ngrants = [\"log:write:info\"]\n\n\
               [components.kv-counter]\ngrants = [\"kv:read:**\", \"kv:write:counter/a\"]\n\n\
               [components.billing]\ngrants = [\"net:http:*.bank.example:443\"]\n";
    std::fs::write(dir.path().join("old.toml"), old).unwrap();
    std::fs::write(dir.path().join("new.toml"), new).unwrap();
    let out = airssys_in(dir.path(), &["policy", "diff", "old.toml", "new.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        text(&out.stdout),
        "[defaults] (every component the policy does not name)\n\
         \x20 denies:\n\
         \x20   removed: env:read:AWS_*\n\
         [components.billing]\n\
         \x20 denies:\n\
         \x20   removed: env:read:AWS_*\n\
         [components.kv-counter]\n\
         \x20 grants:\n\
         \x20   widened: kv:read:counter/* -> kv:read:**\n\
         \x20   narrowed: kv:write:counter/* -> kv:write:counter/a\n\
         \x20 denies:\n\
         \x20   removed: env:read:AWS_*\n"
    );
    let json = airssys_in(
        dir.path(),
        &["policy", "diff", "old.toml", "new.toml", "--format", "json"],
    );
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["components"][1]["component"], "kv-counter");
    assert_eq!(
        report["components"][1]["grants"]["widened"][0]["to"],
        "kv:read:**"
    );
    let bad = airssys_in(dir.path(), &["policy", "diff", "old.toml", "missing.toml"]);
    assert_eq!(bad.status.code(), Some(2), "{}", show(&bad));
}

#[test]
fn observe_then_propose_then_run_with_the_proposal_and_no_denial() {
    let wasm = old_wasm();
    let wasm = wasm.to_str().unwrap();
    let dir = scratch();
    let requests = [
        "--request",
        "increment",
        "--request",
        "get",
        "--request",
        "reset",
    ];
    let mut args = vec![
        "run",
        wasm,
        "--observe",
        "kv-counter",
        "--audit",
        "audit.jsonl",
    ];
    args.extend(requests);
    let observed = airssys_in(dir.path(), &args);
    assert_eq!(observed.status.code(), Some(0), "{}", show(&observed));
    assert!(
        text(&observed.stderr).contains(
            "airssys: OBSERVING `kv-counter`: for this run only it is granted everything its \
             manifest declares: kv:read:counter/*, kv:write:counter/*, log:write, \
             kv:delete:counter/*\n"
        ),
        "{}",
        show(&observed)
    );
    // Nothing beyond the manifest.
    assert!(
        text(&observed.stdout).contains(
            "  granted: kv:read:counter/*, kv:write:counter/*, log:write, kv:delete:counter/*\n"
        ),
        "{}",
        show(&observed)
    );

    let proposed = airssys_in(
        dir.path(),
        &[
            "policy",
            "propose",
            "--audit",
            "audit.jsonl",
            "-o",
            "proposed.toml",
        ],
    );
    assert_eq!(proposed.status.code(), Some(0), "{}", show(&proposed));
    let policy = std::fs::read_to_string(dir.path().join("proposed.toml")).unwrap();
    common::assert_in_order(
        &policy,
        &[
            "[components.kv-counter]\ngrants = [\n",
            "    # 1 request(s) over 1 resource(s), e.g. `counter/starts`; exactly the resource seen\n    \"kv:delete:counter/starts\",\n",
            "    \"kv:read:counter/*\",\n",
            "    \"kv:write:counter/*\",\n",
            "    \"log:write\",\n]\n",
        ],
    );

    let mut args = vec!["run", wasm, "--policy", "proposed.toml", "--fail-on-deny"];
    args.extend(requests);
    let run = airssys_in(dir.path(), &args);
    assert_eq!(run.status.code(), Some(0), "{}", show(&run));
    let stdout = text(&run.stdout);
    assert!(!stdout.contains("deny "), "{stdout}");
    assert!(stdout.contains("  granted: kv:read:counter/*, kv:write:counter/*, log:write, kv:delete:counter/starts\n"), "{stdout}");
    assert!(stdout.contains("  -> reply \"reset\"\n"), "{stdout}");
}

#[test]
fn observe_needs_an_audit_file_and_a_component_of_that_name() {
    let wasm = old_wasm();
    let wasm = wasm.to_str().unwrap();
    let dir = scratch();
    let no_audit = airssys_in(dir.path(), &["run", wasm, "--observe", "kv-counter"]);
    assert_eq!(no_audit.status.code(), Some(2), "{}", show(&no_audit));
    let unknown = airssys_in(
        dir.path(),
        &["run", wasm, "--observe", "other", "--audit", "b.jsonl"],
    );
    assert_eq!(unknown.status.code(), Some(2), "{}", show(&unknown));
    assert!(
        text(&unknown.stderr).contains("--observe `other`: no component of that name is given"),
        "{}",
        show(&unknown)
    );
    let none = airssys_in(
        dir.path(),
        &[
            "policy",
            "propose",
            "--audit",
            "b.jsonl",
            "--component",
            "x",
        ],
    );
    assert_eq!(none.status.code(), Some(2), "{}", show(&none));
}

/// Every ` ```sh ` block of `docs/least-privilege.md` runs, line by line,
/// with `sh` in a scratch directory holding `kv_counter.wasm` (the old
/// release) and the example's `policy.toml`, `airssys` on the `PATH`. A
/// line ending in `# exits N` must exit N, every other 0. The next
/// ` ```text ` block, when there is one, lists lines the output holds, in
/// order.
#[test]
fn least_privilege_md_commands_run() {
    let old = old_wasm();
    let dir = scratch();
    std::fs::copy(&old, dir.path().join("kv_counter.wasm")).unwrap();
    std::fs::copy(
        repo_root().join("examples/kv-counter/policy.toml"),
        dir.path().join("policy.toml"),
    )
    .unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_airssys")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let page = std::fs::read_to_string(repo_root().join("docs/least-privilege.md")).unwrap();
    let blocks = fenced(&page);
    let mut ran = 0;
    for (i, (info, body, line)) in blocks.iter().enumerate() {
        if info != "sh" {
            continue;
        }
        let mut output = String::new();
        for command in body.lines().filter(|l| !l.trim().is_empty()) {
            let (command, expected) = match command.rsplit_once("# exits ") {
                Some((c, code)) => (c.trim(), code.trim().parse::<i32>().unwrap()),
                None => (command, 0),
            };
            // stderr into stdout, in order; the command's own `>` still
            // redirects its stdout alone.
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("exec 2>&1; {command}"))
                .current_dir(dir.path())
                .env("PATH", &path)
                .env("CARGO_TARGET_DIR", shared_target())
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(expected),
                "docs/least-privilege.md:{line}: `{command}`\n{}",
                show(&out)
            );
            output.push_str(&text(&out.stdout));
            ran += 1;
        }
        if let Some((next_info, expected, _)) = blocks.get(i + 1)
            && next_info == "text"
        {
            let needles: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
            common::assert_in_order(&output, &needles);
        }
    }
    assert!(ran >= 6, "docs/least-privilege.md runs {ran} commands");
}

/// `(info, body, line)` of each fenced block of `page`.
fn fenced(page: &str) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    let mut open: Option<(String, String, usize)> = None;
    for (n, line) in page.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_owned(), String::new(), n + 1)),
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some((_, body, _)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

#[test]
fn a_tampered_signed_component_does_not_verify_and_is_refused_at_load() {
    let old = old_wasm();
    let dir = scratch();
    let run = |args: &[&str]| airssys_in(dir.path(), args);
    let keygen = run(&["key", "generate", "--out", "release.key"]);
    assert_eq!(keygen.status.code(), Some(0), "{}", show(&keygen));
    let secret = std::fs::read_to_string(dir.path().join("release.key")).unwrap();
    let public = std::fs::read_to_string(dir.path().join("release.key.pub")).unwrap();
    // Keys are never printed.
    assert!(
        !text(&keygen.stdout).contains(secret.trim()),
        "{}",
        show(&keygen)
    );
    assert!(
        !text(&keygen.stdout).contains(public.trim()),
        "{}",
        show(&keygen)
    );
    // An existing key is never overwritten.
    let again = run(&["key", "generate", "--out", "release.key"]);
    assert_eq!(again.status.code(), Some(2), "{}", show(&again));

    let signed = run(&[
        "sign",
        old.to_str().unwrap(),
        "--key",
        "release.key",
        "-o",
        "signed.wasm",
    ]);
    assert_eq!(signed.status.code(), Some(0), "{}", show(&signed));
    let ok = run(&["verify", "signed.wasm", "--key", "release.key.pub"]);
    assert_eq!(ok.status.code(), Some(0), "{}", show(&ok));

    let tampered = with_manifest(
        dir.path(),
        &dir.path().join("signed.wasm"),
        &manifest(
            "0.1.0",
            "\"kv:read:**\", \"kv:write:counter/*\", \"log:write\"",
            "\"kv:delete:counter/*\"",
        ),
        "tampered.wasm",
    );
    let tampered = tampered.to_str().unwrap();
    let bad = run(&["verify", tampered, "--key", "release.key.pub"]);
    assert_eq!(bad.status.code(), Some(1), "{}", show(&bad));
    assert!(
        text(&bad.stderr)
            .contains("does not verify: the manifest changed after it was signed by key ed25519:"),
        "{}",
        show(&bad)
    );
    let other = run(&["key", "generate", "--out", "other.key"]);
    assert_eq!(other.status.code(), Some(0), "{}", show(&other));
    let untrusted = run(&["verify", "signed.wasm", "--key", "other.key.pub"]);
    assert_eq!(untrusted.status.code(), Some(1), "{}", show(&untrusted));
    assert!(text(&untrusted.stderr).contains("which is not one of the trusted keys"));

    std::fs::write(
        dir.path().join("policy.toml"),
        format!(
            "[components.kv-counter]\ngrants = [\"kv:read:**\", \"kv:write:counter/*\", \"log:write\"]\nsigned_by = [\"{}\"]\n",
            public.trim()
        ),
    )
    .unwrap();
    let loads = run(&[
        "run",
        "signed.wasm",
        "--policy",
        "policy.toml",
        "--request",
        "get",
    ]);
    assert_eq!(loads.status.code(), Some(0), "{}", show(&loads));
    let refused = run(&[
        "run",
        tampered,
        "--policy",
        "policy.toml",
        "--request",
        "get",
    ]);
    assert_eq!(refused.status.code(), Some(1), "{}", show(&refused));
    assert!(
        text(&refused.stderr).contains(
            "component `kv-counter` is refused: the policy requires a signature by a trusted key \
             (`signed_by`, policy.toml line 3), and the manifest changed after it was signed"
        ),
        "{}",
        show(&refused)
    );
}
