//! Hostile probes: filesystem. Each attack runs while the neighbour is
//! checked to keep serving, and ends in a refusal naming the rule. The
//! attacker is started before and nothing inside `while_serving` asserts
//! (a panic there would leave the neighbour's checker running): the
//! attack returns what it saw and the test checks it afterwards.

use std::path::Path;

use airssys_runtime::{LoadError, MountProbe, NameMatching, Policy, Runtime};

use crate::neighbour::{NEIGHBOUR_POLICY, while_serving};
use crate::support::{ask, fixture, instance, runtime_with};

/// `/data` holds `public/a.txt` ("hello") and `secret/key` ("s3cret").
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("public")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("secret")).expect("mkdir");
    std::fs::write(dir.path().join("public/a.txt"), "hello").expect("write");
    std::fs::write(dir.path().join("secret/key"), "s3cret").expect("write");
    dir
}

/// `fsprobe` may do everything under `/data` except what `denies` says.
fn policy(dir: &Path, denies: &str) -> String {
    format!(
        "[components.fsprobe]\ngrants = [\"fs:read:/data/**\", \"fs:write:/data/**\", \
         \"fs:create:/data/**\", \"fs:list:/data/**\", \"fs:stat:/data/**\"]\ndenies = \
         [{denies}]\nmounts = {{ \"/data\" = \"{}\" }}\n{NEIGHBOUR_POLICY}",
        dir.display()
    )
}

const SECRET_DENIED: &str = r#""fs:read:/data/secret/**""#;

/// Item 1: `fs:write` once implied read; a write handle to a file whose
/// read is denied reads nothing.
#[test]
fn a_write_handle_does_not_read_what_fs_read_denies() {
    let dir = data_dir();
    let runtime = runtime_with(&policy(dir.path(), SECRET_DENIED));
    let mut attacker = instance(&runtime, "fsprobe");
    let reply = while_serving(&runtime, || {
        ask(&mut attacker, "write-read:/data/secret/key=")
    });
    assert!(
        reply.starts_with("wrote 0, read refused: denied: "),
        "{reply}"
    );
    assert!(reply.contains("`fs:read:/data/secret/**`"), "{reply}");
    assert!(!reply.contains("s3cret"), "{reply}");
}

/// Item 2: a rename needs `fs:delete` on the source (not granted here),
/// and never moves a file swapped in at the handle's path.
#[test]
fn rename_needs_delete_and_moves_only_the_opened_file() {
    let dir = data_dir();
    let runtime = runtime_with(&policy(dir.path(), ""));
    let mut attacker = instance(&runtime, "fsprobe");
    let reply = while_serving(&runtime, || {
        ask(&mut attacker, "mv:/data/public/a.txt>/data/public/b.txt")
    });
    assert!(reply.starts_with("denied: "), "{reply}");
    assert!(reply.contains("`fs:delete:/data/public/a.txt`"), "{reply}");
    assert!(dir.path().join("public/a.txt").exists());

    // With `fs:delete`, a handle whose path now names another file.
    let text = policy(dir.path(), "").replace(
        "\"fs:stat:/data/**\"]",
        "\"fs:stat:/data/**\", \"fs:delete:/data/**\"]",
    );
    let runtime = runtime_with(&text);
    let mut attacker = instance(&runtime, "fsprobe");
    let (held, reply) = while_serving(&runtime, || {
        let held = ask(&mut attacker, "hold-write:/data/public/a.txt");
        let a = dir.path().join("public/a.txt");
        let swapped = std::fs::rename(&a, dir.path().join("public/gone.txt"))
            .and_then(|()| std::fs::write(&a, "someone else's"));
        let reply = swapped.map(|()| ask(&mut attacker, "mv-held:/data/public/taken.txt"));
        (held, reply)
    });
    assert_eq!(held, "holding 1");
    let reply = reply.expect("the host swapped the file");
    assert!(reply.starts_with("denied: "), "{reply}");
    assert!(
        reply.contains("no longer names the file this handle opened"),
        "{reply}"
    );
    assert!(!dir.path().join("public/taken.txt").exists());
}

/// Item 3: names under a denied subtree do not show in listings.
#[test]
fn listings_do_not_reveal_names_under_a_denied_subtree() {
    let dir = data_dir();
    let runtime = runtime_with(&policy(dir.path(), SECRET_DENIED));
    let mut attacker = instance(&runtime, "fsprobe");
    let (secret, top) = while_serving(&runtime, || {
        (
            ask(&mut attacker, "ls:/data/secret"),
            ask(&mut attacker, "read:/data/secret/key"),
        )
    });
    assert_eq!(secret, "");
    assert!(top.starts_with("denied: "), "{top}");
    assert!(top.contains("`fs:read:/data/secret/**`"), "{top}");
}

/// Pretends every mount is a case-insensitive volume.
#[derive(Debug)]
struct Folding;

impl MountProbe for Folding {
    fn probe(&self, _host_dir: &Path, _dir: &cap_std::fs::Dir) -> NameMatching {
        NameMatching::Folding("a file created as `x` is also found as `X`".into())
    }
}

/// Item 4: on a case-insensitive mount `/data/Secret/key` would evade the
/// deny rule, so the component is refused at load, naming the rule.
#[test]
fn a_case_insensitive_mount_cannot_evade_a_deny_rule() {
    let dir = data_dir();
    let runtime = Runtime::builder()
        .policy(Policy::from_toml_str(&policy(dir.path(), SECRET_DENIED)).expect("policy"))
        .in_memory_storage()
        .mount_probe(std::sync::Arc::new(Folding))
        .build()
        .expect("runtime");
    let loaded = while_serving(&runtime, || runtime.load(fixture("fsprobe")).map(|_| ()));
    let refused = loaded.expect_err("a folding mount under a deny rule must not load");
    assert!(matches!(refused, LoadError::Mount { .. }), "{refused:?}");
    let message = refused.to_string();
    assert!(message.contains("`fs:read:/data/secret/**`"), "{message}");
    assert!(message.contains("mounted at `/data`"), "{message}");
}

/// Item 5: the path checked as a regular file becomes a FIFO before the
/// open (another process renames one over it). Opening a FIFO waits for
/// the other end, which never comes: the open must not wait, so every
/// call returns, refused or served.
#[cfg(unix)]
#[test]
fn a_fifo_swapped_in_after_the_check_holds_no_open() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let dir = data_dir();
    let runtime = runtime_with(&policy(dir.path(), ""));
    let mut attacker = instance(&runtime, "fsprobe");
    let target = dir.path().join("public/swap");
    std::fs::write(&target, "plain").expect("write");
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    // Renames a regular file and a FIFO over `public/swap`, in turn.
    let swapper = {
        let (stop, public) = (std::sync::Arc::clone(&stop), dir.path().join("public"));
        std::thread::spawn(move || {
            let (file, fifo, target) = (
                public.join("swap.file"),
                public.join("swap.fifo"),
                public.join("swap"),
            );
            let mut swaps = 0u64;
            while !stop.load(Ordering::Acquire) {
                std::fs::write(&file, "plain").expect("write");
                std::fs::rename(&file, &target).expect("rename the file");
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &fifo,
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_raw_mode(0o600),
                    0,
                )
                .expect("mkfifo");
                std::fs::rename(&fifo, &target).expect("rename the fifo");
                swaps += 1;
            }
            swaps
        })
    };
    // The component opens the path for reading, then for writing, in a
    // loop; each answer is sent as it comes.
    let (answers, answered) = mpsc::channel();
    let opener = std::thread::spawn(move || {
        for i in 0..4_000 {
            let verb = if i % 2 == 0 { "read" } else { "write" };
            let command = match verb {
                "read" => "read:/data/public/swap".to_owned(),
                _ => "write:/data/public/swap=x".to_owned(),
            };
            let reply = ask(&mut attacker, &command);
            if answers.send(reply).is_err() {
                return;
            }
        }
    });
    let outcome = while_serving(&runtime, || {
        let started = Instant::now();
        let (mut served, mut refused) = (0, Vec::new());
        loop {
            match answered.recv_timeout(Duration::from_secs(10)) {
                Ok(reply) if reply.starts_with("data: ") || reply.starts_with("wrote ") => {
                    served += 1;
                }
                Ok(reply) => refused.push(reply),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Ok((served, refused, started.elapsed()));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "a call held more than 10 s after {} answers: the open waits for the \
                         FIFO's other end",
                        served + refused.len()
                    ));
                }
            }
        }
    });
    stop.store(true, Ordering::Release);
    let swaps = swapper.join().expect("swapper");
    let (served, refused, took) = outcome.unwrap_or_else(|e| {
        // Free the held open (a writer for the FIFO it waits on), so the
        // test process can end.
        let _ = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&target);
        panic!("{e}")
    });
    opener.join().expect("opener");
    eprintln!(
        "{served} served, {} refused in {took:?}, {swaps} swaps",
        refused.len()
    );
    // Every refusal says why: the path is no regular file (or vanished
    // between the rename's two steps).
    for reply in &refused {
        assert!(
            reply.contains("is not a regular file") || reply.starts_with("not-found: "),
            "{reply}"
        );
    }
    assert!(!refused.is_empty(), "the FIFO was never seen");
}
