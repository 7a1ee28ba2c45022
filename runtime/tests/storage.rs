//! Crash safety of the redb storage: a writer process is killed with
//! SIGKILL in the middle of a loop of durable writes, again and again, and
//! after each kill the reopened file must hold every write whose call
//! returned, nothing half-written, and usage equal to the charge of what
//! is there.
//!
//! The writer is this test binary run again: [`writer_child`] does the
//! writing when [`CHILD_ENV`] names a file (and nothing otherwise), and
//! prints `ack <n>` once write `n` returned. The rounds default to 20;
//! `scripts/storage-crash-soak.sh` runs many more (outside CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airssys_runtime::storage::{RedbStorage, StorageBackend, entry_cost};

/// The storage file the child writes to; unset in a normal run.
const CHILD_ENV: &str = "AIRSSYS_STORAGE_CRASH_CHILD";
/// The number of the child's first write.
const FROM_ENV: &str = "AIRSSYS_STORAGE_CRASH_FROM";
/// Kill rounds (default 20).
const ROUNDS_ENV: &str = "AIRSSYS_STORAGE_CRASH_ROUNDS";

const NAMESPACES: [&str; 2] = ["alpha", "beta"];
const BUCKET: &str = "b";

/// What write `n` of the sequence does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Set {
        namespace: &'static str,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        namespace: &'static str,
        key: String,
    },
}

/// The deterministic sequence of writes: mostly new keys (values from
/// empty to larger than a redb page), some overwrites with another
/// length, some deletes, over two namespaces.
fn op(n: u64) -> Op {
    let namespace = NAMESPACES[(n % 2) as usize];
    let len = match n % 11 {
        0 => 0,
        5 => 5_000 + (n % 3) as usize * 1_000,
        _ => ((n * 37) % 300) as usize,
    };
    let value = |seed: u64| -> Vec<u8> {
        (0..len)
            .map(|j| ((seed * 31 + j as u64) % 251) as u8)
            .collect()
    };
    match n % 7 {
        // Delete a key written four writes earlier (same namespace).
        3 if n >= 4 => Op::Delete {
            namespace,
            key: format!("k{}", n - 4),
        },
        // Overwrite an older key of the same namespace.
        5 if n >= 10 => Op::Set {
            namespace,
            key: format!("k{}", (n / 2) & !1 | (n % 2)),
            value: value(n + 1_000_000),
        },
        _ => Op::Set {
            namespace,
            key: format!("k{n}"),
            value: value(n),
        },
    }
}

type Model = BTreeMap<(&'static str, String), Vec<u8>>;

fn apply(model: &mut Model, op: &Op) {
    match op {
        Op::Set {
            namespace,
            key,
            value,
        } => {
            model.insert((namespace, key.clone()), value.clone());
        }
        Op::Delete { namespace, key } => {
            model.remove(&(*namespace, key.clone()));
        }
    }
}

/// Everything the store holds in the two namespaces.
fn contents(storage: &RedbStorage) -> Model {
    let mut found = Model::new();
    for namespace in NAMESPACES {
        let mut after: Option<String> = None;
        loop {
            let keys = storage
                .list_keys(namespace, BUCKET, after.as_deref(), 100)
                .expect("list");
            let Some(last) = keys.last().cloned() else {
                break;
            };
            for key in keys {
                let value = storage
                    .get(namespace, BUCKET, &key)
                    .expect("get")
                    .expect("a listed key has a value");
                found.insert((namespace, key), value);
            }
            after = Some(last);
        }
    }
    found
}

/// The child: writes the sequence from [`FROM_ENV`] on, durably,
/// acknowledging each write on stdout, until it is killed.
#[test]
fn writer_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let from: u64 = std::env::var(FROM_ENV)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let storage = RedbStorage::open(Path::new(&path)).expect("open");
    let mut out = std::io::stdout().lock();
    for n in from.. {
        match op(n) {
            Op::Set {
                namespace,
                key,
                value,
            } => storage
                .set(namespace, BUCKET, &key, &value, None)
                .expect("set"),
            Op::Delete { namespace, key } => {
                storage.delete(namespace, BUCKET, &key).expect("delete");
            }
        }
        writeln!(out, "ack {n}").expect("stdout");
        out.flush().expect("flush");
    }
}

/// Runs the child from write `from`, kills it (SIGKILL) once it has
/// acknowledged `acks` writes and `delay` more has passed, and returns the
/// writes it acknowledged, in order.
fn write_until_killed(path: &Path, from: u64, acks: usize, delay: Duration) -> Vec<u64> {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "writer_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .env(FROM_ENV, from.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the writer");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut acked = Vec::new();
    let parse = |line: &str, acked: &mut Vec<u64>| {
        // The test harness may have started the line ("test writer_child
        // ... ").
        if let Some((_, n)) = line.split_once("ack ") {
            acked.push(n.trim().parse::<u64>().expect("a write number"));
        }
    };
    while acked.len() < acks {
        let Some(line) = lines.next() else {
            panic!("the writer ended after {} writes", acked.len());
        };
        parse(&line.expect("read"), &mut acked);
    }
    let until = Instant::now() + delay;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    child.kill().expect("SIGKILL the writer");
    // What it acknowledged before it died counts too.
    for line in lines {
        match line {
            Ok(line) => parse(&line, &mut acked),
            Err(_) => break,
        }
    }
    let status = child.wait().expect("reap the writer");
    assert!(!status.success(), "the writer was killed, not finished");
    acked
}

/// 20 rounds (or [`ROUNDS_ENV`]): kill the writer after 1 to 25 writes
/// and 0 to 1.5 ms more, reopen, and compare the file with the model of
/// every acknowledged write. The write in flight at the kill may or may
/// not be there, but whole or not at all.
#[test]
fn killed_writers_lose_no_acknowledged_write_and_leave_usage_exact() {
    let rounds: u64 = std::env::var(ROUNDS_ENV)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crash.redb");
    let mut model = Model::new();
    let mut next = 0u64;
    let (mut in_flight_kept, mut in_flight_lost) = (0, 0);
    for round in 0..rounds {
        let acks = 1 + ((round * 7) % 25) as usize;
        let delay = Duration::from_micros((round * 379) % 1_500);
        let acked = write_until_killed(&path, next, acks, delay);
        assert!(acked.len() >= acks);
        for (i, n) in acked.iter().enumerate() {
            assert_eq!(*n, next + i as u64, "acknowledged in order");
            apply(&mut model, &op(*n));
        }
        next += acked.len() as u64;

        let storage = RedbStorage::open(&path).expect("reopen after SIGKILL");
        let found = contents(&storage);
        if found != model {
            // Only the write in flight may have committed without its
            // acknowledgement reaching us.
            let mut with_next = model.clone();
            apply(&mut with_next, &op(next));
            assert!(
                found == with_next,
                "round {round}: after write {next} the file differs from the acknowledged writes \
                 (and from them plus the one in flight)"
            );
            model = with_next;
            next += 1;
            in_flight_kept += 1;
        } else {
            in_flight_lost += 1;
        }
        for namespace in NAMESPACES {
            let charged: u64 = model
                .iter()
                .filter(|((n, _), _)| *n == namespace)
                .map(|((n, key), value)| entry_cost(n, BUCKET, key, value.len()))
                .sum();
            assert_eq!(
                storage.usage(namespace).expect("usage"),
                charged,
                "round {round}: usage of `{namespace}`"
            );
        }
    }
    eprintln!(
        "{rounds} kills, {next} writes: the write in flight was found whole {in_flight_kept} \
         times, absent {in_flight_lost} times"
    );
}
