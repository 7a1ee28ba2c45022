//! The filesystem service end to end, with the `fsprobe` component on a
//! real temporary directory tree: grants, denials, and the ways a path
//! could try to escape its grant (`..`, absolute and relative symlinks,
//! symlink chains, a symlink to an ungranted sibling, a directory swapped
//! for a symlink between calls, renames out of scope), plus the release
//! of open files when an instance goes away.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use airssys_runtime::{Instance, Policy, PolicyError, Runtime};
use support::ask;

/// A temporary tree:
///
/// ```text
/// root/                       mounted as /data
///   public/a.txt              "hello"
///   public/sub/b.txt          "bee"
///   public/swap/f.txt         "public swap"
///   public/abs-link    ->     <tmp>/outside/x.txt      (absolute, out)
///   public/chain-1     ->     ../chain-2               (relative chain, out)
///   chain-2            ->     ../outside/x.txt
///   public/sibling     ->     ../secret/key.txt        (inside the root, ungranted)
///   public/dir-link    ->     ../secret                (directory link)
///   secret/key.txt            "s3cret"
///   secret/f.txt              "secret swap"
/// outside/x.txt               "outside"
/// ```
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = tmp.path();
    let root = base.join("root");
    for dir in ["public/sub", "public/swap", "secret"] {
        fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    fs::create_dir_all(base.join("outside")).expect("mkdir");
    fs::write(root.join("public/a.txt"), "hello").expect("write");
    fs::write(root.join("public/sub/b.txt"), "bee").expect("write");
    fs::write(root.join("public/swap/f.txt"), "public swap").expect("write");
    fs::write(root.join("secret/key.txt"), "s3cret").expect("write");
    fs::write(root.join("secret/f.txt"), "secret swap").expect("write");
    fs::write(base.join("outside/x.txt"), "outside").expect("write");
    symlink(base.join("outside/x.txt"), root.join("public/abs-link")).expect("symlink");
    symlink("../chain-2", root.join("public/chain-1")).expect("symlink");
    symlink("../outside/x.txt", root.join("chain-2")).expect("symlink");
    symlink("../secret/key.txt", root.join("public/sibling")).expect("symlink");
    symlink("../secret", root.join("public/dir-link")).expect("symlink");
    Tree { _tmp: tmp, root }
}

fn policy(root: &Path) -> String {
    format!(
        r#"
[components.fsprobe]
grants = [
    "fs:read:/data/public/**", "fs:write:/data/public/**", "fs:create:/data/public/**",
    "fs:delete:/data/public/**", "fs:list:/data/public", "fs:list:/data/public/**",
    "fs:stat:/data", "fs:stat:/data/**", "fs:read:/elsewhere/**",
]
mounts = {{ "/data" = "{}" }}
"#,
        root.display()
    )
}

fn runtime(policy: &str) -> Runtime {
    support::runtime_with(policy)
}

fn fsprobe(runtime: &Runtime) -> Instance {
    support::instance(runtime, "fsprobe")
}

/// Asserts a denial that leaks none of the secret contents.
fn assert_denied(reply: &str, mentions: &str) {
    assert!(reply.starts_with("denied: "), "{reply}");
    assert!(reply.contains(mentions), "{reply}");
    for secret in ["s3cret", "outside", "secret swap"] {
        assert!(!reply.contains(&format!("data: {secret}")), "{reply}");
    }
}

#[test]
fn granted_operations_work_beneath_the_mount() {
    let t = tree();
    let rt = runtime(&policy(&t.root));
    let mut p = fsprobe(&rt);
    assert_eq!(ask(&mut p, "read:/data/public/a.txt"), "data: hello");
    assert_eq!(ask(&mut p, "read:/data/public/sub/b.txt"), "data: bee");
    assert_eq!(ask(&mut p, "stat:/data/public/a.txt"), "file 5");
    assert_eq!(ask(&mut p, "stat:/data/public"), "dir 0");
    assert_eq!(ask(&mut p, "stat:/data"), "dir 0");
    // A symlink is listed and stat'ed as itself (`other`), never followed.
    assert_eq!(
        ask(&mut p, "ls:/data/public"),
        "a.txt:file,abs-link:other,chain-1:other,dir-link:other,sibling:other,sub:dir,swap:dir"
    );
    assert_eq!(
        ask(&mut p, "stat:/data/public/sibling").split(' ').next(),
        Some("other")
    );

    assert_eq!(
        ask(&mut p, "create:/data/public/new.txt=fresh"),
        "created file 5"
    );
    assert_eq!(
        fs::read_to_string(t.root.join("public/new.txt")).expect("host sees it"),
        "fresh"
    );
    let reply = ask(&mut p, "create:/data/public/new.txt=again");
    assert!(reply.starts_with("already-exists: "), "{reply}");
    assert_eq!(ask(&mut p, "write:/data/public/new.txt=changed"), "wrote 7");
    assert_eq!(ask(&mut p, "read:/data/public/new.txt"), "data: changed");
    assert_eq!(ask(&mut p, "mkdir:/data/public/made"), "ok");
    assert!(t.root.join("public/made").is_dir());
    assert_eq!(ask(&mut p, "rm:/data/public/made"), "ok");
    assert_eq!(ask(&mut p, "rm:/data/public/new.txt"), "ok");
    assert!(!t.root.join("public/new.txt").exists());
    let reply = ask(&mut p, "read:/data/public/missing.txt");
    assert!(reply.starts_with("not-found: "), "{reply}");
    assert!(reply.contains("/data/public/missing.txt"), "{reply}");
}

#[test]
fn ungranted_paths_are_denied_naming_the_capability() {
    let t = tree();
    let rt = runtime(&policy(&t.root));
    let mut p = fsprobe(&rt);
    assert_denied(
        &ask(&mut p, "read:/data/secret/key.txt"),
        "`fs:read:/data/secret/key.txt`",
    );
    assert_denied(&ask(&mut p, "ls:/data/secret"), "`fs:list:/data/secret`");
    assert_denied(&ask(&mut p, "ls:/data"), "`fs:list:/data`");
    assert_denied(
        &ask(&mut p, "rm:/data/secret/key.txt"),
        "`fs:delete:/data/secret/key.txt`",
    );
    assert_denied(
        &ask(&mut p, "mkdir:/data/secret/x"),
        "`fs:create:/data/secret/x`",
    );
    assert_denied(
        &ask(&mut p, "write:/data/secret/key.txt=pwned"),
        "`fs:write:/data/secret/key.txt`",
    );
    assert_eq!(
        fs::read_to_string(t.root.join("secret/key.txt")).expect("read"),
        "s3cret"
    );
}

#[test]
fn dot_dot_and_unnormalized_paths_are_refused() {
    let t = tree();
    let rt = runtime(&policy(&t.root));
    let mut p = fsprobe(&rt);
    for path in [
        "/data/public/../secret/key.txt",
        "/data/public/../../outside/x.txt",
        "/data/public/./a.txt",
        "/data/public//a.txt",
        "data/public/a.txt",
        "/data/public/a.txt/",
        "",
    ] {
        let reply = ask(&mut p, &format!("read:{path}"));
        assert!(reply.starts_with("denied: "), "{path}: {reply}");
        assert!(!reply.contains("data: "), "{path}: {reply}");
    }
}

#[test]
fn absolute_symlink_out_of_the_root_is_not_followed() {
    let t = tree();
    let rt = runtime(&policy(&t.root));
    let mut p = fsprobe(&rt);
    assert_denied(&ask(&mut p, "read:/data/public/abs-link"), "symbolic link");
    assert_denied(
        &ask(&mut p, "write:/data/public/abs-link=pwned"),
        "symbolic link",
    );
    assert_eq!(
        fs::read_to_string(t.root.join("../outside/x.txt")).expect("read"),
        "outside"
    );
}

#[test]
fn relative_symlink_chain_out_of_the_root_is_not_followed() {
    let t = tree();
    let rt = runtime(&policy(&t.root));
    let mut p = fsprobe(&rt);
    assert_denied(
        &ask(&mut p, "read:/data/public/chain-1"),
        "`/data/public/chain-1`",
    );
}

#[test]
fn symlink_to_an_ungranted_sibling_inside_the_root_is_not_followed() {
    let t = tree();
    let rt = runtime(&policy(&t.root));
    let mut p = fsprobe(&rt);
    // The grant covers /data/public/sibling, not its target.
    assert_denied(&ask(&mut p, "read:/data/public/sibling"), "symbolic link");
    // A directory link on the way is refused too.
    assert_denied(
        &ask(&mut p, "read:/data/public/dir-link/key.txt"),
        "`/data/public/dir-link`",
    );
    assert_denied(&ask(&mut p, "ls:/data/public/dir-link"), "symbolic link");
    // Removing the link removes the link, never the target.
    assert_eq!(ask(&mut p, "rm:/data/public/sibling"), "ok");
    assert!(t.root.join("secret/key.txt").exists());
}

#[test]
fn directory_swapped_for_a_symlink_between_calls_is_refused() {
    let t = tree();
    let rt = runtime(&policy(&t.root));
    let mut p = fsprobe(&rt);
    assert_eq!(
        ask(&mut p, "read:/data/public/swap/f.txt"),
        "data: public swap"
    );
    assert_eq!(ask(&mut p, "hold:/data/public/swap/f.txt"), "holding 1");
    // Between two calls, the directory becomes a link to the secret one.
    let swap = t.root.join("public/swap");
    fs::rename(&swap, t.root.join("public/swapped-away")).expect("move dir");
    symlink("../secret", &swap).expect("symlink");
    assert_denied(
        &ask(&mut p, "read:/data/public/swap/f.txt"),
        "`/data/public/swap`",
    );
    assert_denied(
        &ask(&mut p, "create:/data/public/swap/planted=x"),
        "symbolic link",
    );
    assert!(!t.root.join("secret/planted").exists());
    // The file opened before the swap is still the one that was checked.
    assert_eq!(ask(&mut p, "read-held"), "data: public swap");
}

#[test]
fn renames_need_a_create_grant_on_the_destination() {
    let t = tree();
    let rt = runtime(&policy(&t.root));
    let mut p = fsprobe(&rt);
    assert_eq!(
        ask(&mut p, "create:/data/public/m.txt=move me"),
        "created file 7"
    );
    // Out of scope: denied naming the destination's capability.
    assert_denied(
        &ask(&mut p, "mv:/data/public/m.txt>/data/secret/m.txt"),
        "`fs:create:/data/secret/m.txt`",
    );
    assert_denied(
        &ask(&mut p, "mv:/data/public/m.txt>/data/public/../secret/m.txt"),
        "fs:create",
    );
    assert!(t.root.join("public/m.txt").exists());
    assert!(!t.root.join("secret/m.txt").exists());
    // Through a symlinked directory: refused, nothing moved.
    assert_denied(
        &ask(&mut p, "mv:/data/public/m.txt>/data/public/dir-link/m.txt"),
        "symbolic link",
    );
    assert!(!t.root.join("secret/m.txt").exists());
    // Onto an existing entry: refused (create does not cover replacing).
    let reply = ask(&mut p, "mv:/data/public/m.txt>/data/public/a.txt");
    assert!(reply.starts_with("already-exists: "), "{reply}");
    assert_eq!(
        fs::read_to_string(t.root.join("public/a.txt")).expect("read"),
        "hello"
    );
    // Within scope: works, and the handle follows the file.
    assert_eq!(
        ask(&mut p, "mv:/data/public/m.txt>/data/public/sub/m2.txt"),
        "moved, still reads: move me"
    );
    assert!(t.root.join("public/sub/m2.txt").exists());
    assert!(!t.root.join("public/m.txt").exists());
    // A read-only handle cannot rename or write.
    assert_denied(
        &ask(&mut p, "mv-readonly:/data/public/a.txt>/data/public/b.txt"),
        "open-read",
    );
    assert_denied(
        &ask(&mut p, "write-readonly:/data/public/a.txt"),
        "open-read",
    );
}

#[test]
fn paths_under_no_mount_are_not_found() {
    let t = tree();
    let rt = runtime(&policy(&t.root));
    let mut p = fsprobe(&rt);
    // Granted, but nothing is mounted at /elsewhere.
    let reply = ask(&mut p, "read:/elsewhere/x.txt");
    assert!(reply.starts_with("not-found: "), "{reply}");
    assert!(reply.contains("beneath no mounted directory"), "{reply}");
    assert!(reply.contains("`/data`"), "{reply}");
}

#[test]
fn a_missing_host_directory_is_reported_per_call() {
    let t = tree();
    let rt = runtime(&policy(&t.root.join("does-not-exist")));
    let mut p = fsprobe(&rt);
    let reply = ask(&mut p, "read:/data/public/a.txt");
    assert!(reply.starts_with("other: "), "{reply}");
    assert!(reply.contains("cannot be opened"), "{reply}");
}

/// The open descriptors of this process that point at `path`.
fn open_fds(path: &Path) -> usize {
    let path = fs::canonicalize(path).expect("canonical path");
    fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter(|target| *target == path)
        .count()
}

#[test]
#[cfg(target_os = "linux")]
fn open_files_are_released_when_dropped_or_on_unload() {
    let t = tree();
    let file = t.root.join("public/a.txt");
    let rt = runtime(&policy(&t.root));
    let mut p = fsprobe(&rt);
    assert_eq!(open_fds(&file), 0);
    assert_eq!(ask(&mut p, "hold:/data/public/a.txt"), "holding 1");
    assert_eq!(ask(&mut p, "hold:/data/public/a.txt"), "holding 2");
    assert_eq!(open_fds(&file), 2);
    assert_eq!(ask(&mut p, "release"), "released");
    assert_eq!(open_fds(&file), 0);
    assert_eq!(ask(&mut p, "hold:/data/public/a.txt"), "holding 1");
    assert_eq!(open_fds(&file), 1);
    drop(p);
    assert_eq!(open_fds(&file), 0);
}

#[test]
fn mounts_are_validated_in_the_policy() {
    let err = Policy::from_toml_str("[components.a]\nmounts = { \"/data/../x\" = \"/srv\" }\n")
        .expect_err("bad virtual root");
    let PolicyError::Invalid { line, message, .. } = &err else {
        panic!("expected Invalid, got {err:?}");
    };
    assert_eq!(*line, 2, "{message}");
    assert!(message.contains("absolute, normalized"), "{message}");
    let err = Policy::from_toml_str("[components.a]\nmounts = { \"/data\" = \"relative/dir\" }\n")
        .expect_err("relative host dir");
    assert!(
        err.to_string().contains("must be an absolute path"),
        "{err}"
    );

    let policy = Policy::builder()
        .mount("a", "/data", "/srv/a")
        .expect("valid mount")
        .build();
    assert_eq!(
        policy.mounts_for("a").get("/data").map(PathBuf::as_path),
        Some(Path::new("/srv/a"))
    );
    assert!(matches!(
        Policy::builder().mount("a", "data", "/srv/a"),
        Err(PolicyError::Mount(_))
    ));
}

/// The tree's policy with `extra` grants and `denies` (TOML lists).
fn policy_with(root: &Path, grants: &str, denies: &str) -> String {
    format!(
        "[components.fsprobe]\ngrants = [{grants}]\ndenies = [{denies}]\nmounts = {{ \"/data\" = \
         \"{}\" }}\n",
        root.display()
    )
}

/// Grants everything under `/data`, as the tests of deny rules start from.
const ALL_OF_DATA: &str = r#""fs:read:/data/**", "fs:write:/data/**", "fs:create:/data/**",
    "fs:delete:/data/**", "fs:list:/data", "fs:list:/data/**", "fs:stat:/data", "fs:stat:/data/**""#;

#[test]
fn write_handles_read_only_where_fs_read_allows() {
    let t = tree();
    let rt = runtime(&policy_with(
        &t.root,
        ALL_OF_DATA,
        r#""fs:read:/data/secret/**""#,
    ));
    let mut p = fsprobe(&rt);
    // `fs:write` covers the secret file, `fs:read` is denied: the handle
    // writes, and its read is refused naming the deny rule.
    let reply = ask(&mut p, "write-read:/data/secret/key.txt=S");
    assert!(
        reply.starts_with("wrote 1, read refused: denied: "),
        "{reply}"
    );
    assert!(reply.contains("`fs:read:/data/secret/**`"), "{reply}");
    assert!(reply.contains("opened for writing only"), "{reply}");
    assert!(!reply.contains("3cret"), "{reply}");
    assert_eq!(
        fs::read_to_string(t.root.join("secret/key.txt")).expect("read"),
        "S3cret"
    );
    // The same through a `create` handle.
    let reply = ask(&mut p, "create-read:/data/secret/new.txt=abc");
    assert!(
        reply.starts_with("wrote 3, read refused: denied: "),
        "{reply}"
    );
    assert!(reply.contains("`fs:read:/data/secret/**`"), "{reply}");
    // Where `fs:read` allows the path, a write handle reads as before.
    assert_eq!(
        ask(&mut p, "write-read:/data/public/a.txt=J"),
        "wrote 1, read: Jello"
    );
    assert_eq!(
        ask(&mut p, "create-read:/data/public/c.txt=cee"),
        "wrote 3, read: cee"
    );
    // Stat through a write-only handle needs `fs:stat` (granted here).
    assert_eq!(ask(&mut p, "hold-write:/data/secret/key.txt"), "holding 1");
    assert_eq!(ask(&mut p, "stat-held"), "file 6");
    let reply = ask(&mut p, "read-held");
    assert!(reply.starts_with("denied: "), "{reply}");
}

#[test]
fn write_only_grants_give_write_only_handles() {
    let t = tree();
    let rt = runtime(&policy_with(
        &t.root,
        r#""fs:write:/data/public/**", "fs:create:/data/public/**""#,
        "",
    ));
    let mut p = fsprobe(&rt);
    let reply = ask(&mut p, "write-read:/data/public/a.txt=J");
    assert!(
        reply.starts_with("wrote 1, read refused: denied: "),
        "{reply}"
    );
    assert!(
        reply.contains("lacks `fs:read:/data/public/a.txt`"),
        "{reply}"
    );
    assert!(!reply.contains("ello"), "{reply}");
    // No `fs:stat` either: the handle's metadata is refused too.
    assert_eq!(ask(&mut p, "hold-write:/data/public/a.txt"), "holding 1");
    let reply = ask(&mut p, "stat-held");
    assert!(reply.starts_with("denied: "), "{reply}");
    assert!(reply.contains("`fs:stat:/data/public/a.txt`"), "{reply}");
}

#[test]
fn rename_needs_delete_on_the_source() {
    let t = tree();
    let rt = runtime(&policy_with(
        &t.root,
        r#""fs:read:/data/public/**", "fs:write:/data/public/**", "fs:create:/data/public/**",
           "fs:delete:/data/public/sub/**""#,
        "",
    ));
    let mut p = fsprobe(&rt);
    let reply = ask(&mut p, "mv:/data/public/a.txt>/data/public/sub/a.txt");
    assert_denied(&reply, "`fs:delete:/data/public/a.txt`");
    assert!(t.root.join("public/a.txt").exists());
    assert!(!t.root.join("public/sub/a.txt").exists());
    // Out of `sub`, where deleting is granted, it moves.
    assert_eq!(
        ask(&mut p, "mv:/data/public/sub/b.txt>/data/public/b.txt"),
        "moved, still reads: bee"
    );
}

#[test]
fn rename_acts_on_the_opened_file_not_on_what_the_path_names_now() {
    let t = tree();
    let rt = runtime(&policy_with(&t.root, ALL_OF_DATA, ""));
    let mut p = fsprobe(&rt);
    let held = t.root.join("public/swap/f.txt");

    // The host swaps another file in at the path between two calls.
    assert_eq!(
        ask(&mut p, "hold-write:/data/public/swap/f.txt"),
        "holding 1"
    );
    fs::rename(&held, t.root.join("public/swap/original.txt")).expect("move away");
    fs::write(&held, "the other file").expect("write");
    let reply = ask(&mut p, "mv-held:/data/public/moved.txt");
    assert_denied(&reply, "no longer names the file this handle opened");
    assert!(!t.root.join("public/moved.txt").exists());
    assert_eq!(fs::read_to_string(&held).expect("read"), "the other file");

    // The path now names nothing.
    fs::remove_file(&held).expect("rm");
    let reply = ask(&mut p, "mv-held:/data/public/moved.txt");
    assert_denied(&reply, "no longer names the file this handle opened");

    // The path is a symlink to a secret.
    symlink("../../secret/key.txt", &held).expect("symlink");
    let reply = ask(&mut p, "mv-held:/data/public/moved.txt");
    assert_denied(&reply, "symbolic link");
    assert!(t.root.join("secret/key.txt").exists());

    // Put back, the opened file is renamed and the handle follows it.
    fs::remove_file(&held).expect("rm link");
    fs::rename(t.root.join("public/swap/original.txt"), &held).expect("move back");
    assert_eq!(ask(&mut p, "mv-held:/data/public/moved.txt"), "moved");
    assert_eq!(
        fs::read_to_string(t.root.join("public/moved.txt")).expect("read"),
        "public swap"
    );
    assert_eq!(ask(&mut p, "read-held"), "data: public swap");
}

#[test]
fn rename_refuses_a_file_the_component_replaced_itself() {
    let t = tree();
    let rt = runtime(&policy_with(&t.root, ALL_OF_DATA, ""));
    let mut p = fsprobe(&rt);
    assert_eq!(
        ask(&mut p, "create:/data/public/r.txt=first"),
        "created file 5"
    );
    assert_eq!(ask(&mut p, "hold-write:/data/public/r.txt"), "holding 1");
    assert_eq!(ask(&mut p, "rm:/data/public/r.txt"), "ok");
    assert_eq!(
        ask(&mut p, "create:/data/public/r.txt=second"),
        "created file 6"
    );
    let reply = ask(&mut p, "mv-held:/data/public/r2.txt");
    assert_denied(&reply, "no longer names the file this handle opened");
    assert_eq!(
        fs::read_to_string(t.root.join("public/r.txt")).expect("read"),
        "second"
    );
    assert!(!t.root.join("public/r2.txt").exists());
}

#[test]
fn listings_hide_entries_a_deny_rule_covers() {
    let t = tree();
    fs::create_dir_all(t.root.join("secret/inner")).expect("mkdir");
    let rt = runtime(&policy_with(
        &t.root,
        ALL_OF_DATA,
        r#""fs:read:/data/secret/**", "fs:stat:/data/public/sub", "fs:list:/data/public/swap""#,
    ));
    let mut p = fsprobe(&rt);
    // The denied subtree's own name shows; nothing beneath it does.
    let top = ask(&mut p, "ls:/data");
    assert!(top.split(',').any(|e| e == "secret:dir"), "{top}");
    assert_eq!(ask(&mut p, "ls:/data/secret"), "");
    // A deny on stat'ing or listing an entry hides that entry.
    assert_eq!(
        ask(&mut p, "ls:/data/public"),
        "a.txt:file,abs-link:other,chain-1:other,dir-link:other,sibling:other"
    );
    // Entries merely not granted are still listed (`fs:list` grants
    // their names): only deny rules hide.
    let rt = runtime(&policy_with(&t.root, r#""fs:list:/data/secret""#, ""));
    let mut p = fsprobe(&rt);
    assert_eq!(
        ask(&mut p, "ls:/data/secret"),
        "f.txt:file,inner:dir,key.txt:file"
    );
}

/// A probe that answers what it is told and counts its calls.
#[derive(Debug)]
struct FixedProbe {
    answer: airssys_runtime::NameMatching,
    calls: std::sync::atomic::AtomicUsize,
}

impl airssys_runtime::MountProbe for FixedProbe {
    fn probe(&self, _host_dir: &Path, _dir: &cap_std::fs::Dir) -> airssys_runtime::NameMatching {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.answer.clone()
    }
}

fn runtime_probed(
    policy: &str,
    answer: airssys_runtime::NameMatching,
) -> (Runtime, std::sync::Arc<FixedProbe>) {
    let probe = std::sync::Arc::new(FixedProbe {
        answer,
        calls: Default::default(),
    });
    let rt = Runtime::builder()
        .policy(Policy::from_toml_str(policy).expect("valid policy"))
        .in_memory_storage()
        .mount_probe(probe.clone())
        .build()
        .expect("runtime");
    (rt, probe)
}

#[test]
fn a_case_insensitive_mount_under_a_deny_rule_is_refused_at_load() {
    use airssys_runtime::{LoadError, NameMatching};
    let t = tree();
    let policy = policy_with(&t.root, ALL_OF_DATA, r#""fs:read:/data/secret/**""#);
    let (rt, probe) = runtime_probed(
        &policy,
        NameMatching::Folding("a file created as `x` is also found as `X`".into()),
    );
    let err = rt
        .load(support::fixture("fsprobe"))
        .expect_err("a folding mount under a deny rule must not load");
    let LoadError::Mount {
        component,
        virtual_root,
        message,
        ..
    } = &err
    else {
        panic!("expected LoadError::Mount, got {err:?}");
    };
    assert_eq!(component, "fsprobe");
    assert_eq!(virtual_root, "/data");
    assert!(message.contains("`fs:read:/data/secret/**`"), "{message}");
    assert!(message.contains("also found as `X`"), "{message}");
    assert!(message.contains("case-sensitive"), "{message}");
    assert_eq!(probe.calls.load(std::sync::atomic::Ordering::Relaxed), 1);

    // A probe that cannot tell refuses too.
    let (rt, _) = runtime_probed(&policy, NameMatching::Unknown("read-only".into()));
    let err = rt.load(support::fixture("fsprobe")).expect_err("unknown");
    assert!(err.to_string().contains("could not be probed"), "{err}");

    // Byte-for-byte matching loads, and the deny rule holds.
    let (rt, _) = runtime_probed(&policy, NameMatching::Exact);
    let mut p = fsprobe(&rt);
    assert_denied(
        &ask(&mut p, "read:/data/secret/key.txt"),
        "`fs:read:/data/secret/**`",
    );
}

#[test]
fn mounts_no_deny_rule_reaches_are_not_probed() {
    use airssys_runtime::NameMatching;
    let t = tree();
    let policy = policy_with(
        &t.root,
        ALL_OF_DATA,
        r#""fs:read:/elsewhere/**", "kv:read:x/**""#,
    );
    let (rt, probe) = runtime_probed(&policy, NameMatching::Folding("pretend".into()));
    let mut p = fsprobe(&rt);
    assert_eq!(ask(&mut p, "read:/data/public/a.txt"), "data: hello");
    assert_eq!(probe.calls.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn the_system_probe_accepts_this_machine_s_directories_and_leaves_nothing() {
    let t = tree();
    let before: Vec<_> = fs::read_dir(&t.root)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    let rt = runtime(&policy_with(
        &t.root,
        ALL_OF_DATA,
        r#""fs:read:/data/secret/**""#,
    ));
    let mut p = fsprobe(&rt);
    assert_denied(
        &ask(&mut p, "read:/data/secret/key.txt"),
        "`fs:read:/data/secret/**`",
    );
    // Another spelling is another (missing) name here.
    let reply = ask(&mut p, "read:/data/Secret/key.txt");
    assert!(reply.starts_with("not-found: "), "{reply}");
    let after: Vec<_> = fs::read_dir(&t.root)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(before.len(), after.len(), "{after:?}");
}

/// The default probe on a real case-insensitive directory, which this
/// test cannot make itself (it needs a mount). For example, as root with
/// `fusefat` and `dosfstools` installed:
///
/// ```text
/// truncate -s 16M /tmp/fat.img && mkfs.fat /tmp/fat.img
/// mkdir -p /tmp/fat && fusefat -o rw+ /tmp/fat.img /tmp/fat
/// AIRSSYS_CASE_INSENSITIVE_DIR=/tmp/fat cargo test -p airssys-runtime \
///     --test filesystem -- --ignored a_real_case_insensitive
/// ```
#[test]
#[ignore = "needs a case-insensitive directory in AIRSSYS_CASE_INSENSITIVE_DIR"]
fn a_real_case_insensitive_directory_is_refused_under_a_deny_rule() {
    use airssys_runtime::{LoadError, MountProbe, NameMatching, SystemMountProbe};
    let dir = PathBuf::from(
        std::env::var_os("AIRSSYS_CASE_INSENSITIVE_DIR")
            .expect("set AIRSSYS_CASE_INSENSITIVE_DIR to a case-insensitive directory"),
    );
    let opened = cap_std::fs::Dir::open_ambient_dir(&dir, cap_std::ambient_authority())
        .expect("open the directory");
    let found = SystemMountProbe.probe(&dir, &opened);
    assert!(matches!(found, NameMatching::Folding(_)), "{found:?}");
    let rt = runtime(&policy_with(
        &dir,
        ALL_OF_DATA,
        r#""fs:read:/data/secret/**""#,
    ));
    let err = rt
        .load(support::fixture("fsprobe"))
        .expect_err("a folding mount under a deny rule must not load");
    assert!(matches!(err, LoadError::Mount { .. }), "{err:?}");
    eprintln!("{err}");
    // What the refusal prevents: loaded anyway (a probe that says
    // "exact", as the runtime behaved before), another spelling evades
    // the deny rule.
    std::fs::create_dir_all(dir.join("secret")).expect("mkdir");
    std::fs::write(dir.join("secret/key"), "s3cret").expect("write");
    let (rt, _) = runtime_probed(
        &policy_with(&dir, ALL_OF_DATA, r#""fs:read:/data/secret/**""#),
        NameMatching::Exact,
    );
    let mut p = fsprobe(&rt);
    assert_denied(
        &ask(&mut p, "read:/data/secret/key"),
        "fs:read:/data/secret/**",
    );
    let evaded = ask(&mut p, "read:/data/Secret/KEY");
    assert!(evaded.starts_with("data: s3cret"), "{evaded}");
    // Without deny rules it loads: allow patterns match the text asked for.
    let rt = runtime(&policy_with(&dir, r#""fs:list:/data""#, ""));
    let mut p = fsprobe(&rt);
    assert!(!ask(&mut p, "ls:/data").starts_with("denied"));
}
