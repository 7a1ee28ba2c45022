//! Storage shared by two hosts through `NatsKvStorage` (feature `nats`):
//! two backend instances on two separate NATS connections, against a real
//! `nats-server -js` started in a temporary directory (a missing
//! `nats-server` fails the test, naming the package to install).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Barrier};
use std::time::Duration;

use airssys_runtime::storage::{NatsKvStorage, StorageBackend, StorageError, entry_cost};

mod support;

use support::jetstream::JetStreamServer;

/// A host's storage: its own connection and tokio runtime.
fn host(server: &JetStreamServer) -> Arc<NatsKvStorage> {
    Arc::new(
        NatsKvStorage::connect(server.url())
            .op_timeout(Duration::from_secs(20))
            .open()
            .expect("opens the bucket"),
    )
}

/// Adds one to the counter through a compare-and-set loop; the attempts
/// it took.
fn increment(storage: &dyn StorageBackend) -> u32 {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let current = storage.get("app", "counters", "hits").expect("get");
        let n: u64 = current
            .as_deref()
            .map_or(0, |v| std::str::from_utf8(v).unwrap().parse().unwrap());
        let next = (n + 1).to_string();
        if storage
            .compare_and_set(
                "app",
                "counters",
                "hits",
                current.as_deref(),
                next.as_bytes(),
                Some(1 << 20),
            )
            .expect("compare-and-set")
        {
            return attempts;
        }
    }
}

/// Two hosts, two writers each, incrementing one counter: the total is
/// exact, and the hosts did contend (some compare-and-set failed).
#[test]
fn two_hosts_incrementing_one_counter_by_compare_and_set_end_with_the_exact_total() {
    const PER_WRITER: u64 = 150;
    let server = JetStreamServer::start();
    let hosts = [host(&server), host(&server)];
    let start = Arc::new(Barrier::new(4));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let host = Arc::clone(&hosts[w % 2]);
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                (0..PER_WRITER).map(|_| increment(&*host)).sum::<u32>()
            })
        })
        .collect();
    let attempts: u32 = writers.into_iter().map(|w| w.join().expect("writer")).sum();
    let total = hosts[1].get("app", "counters", "hits").expect("get");
    assert_eq!(total.as_deref(), Some(&b"600"[..]), "4 × {PER_WRITER}");
    assert!(
        u64::from(attempts) > 4 * PER_WRITER,
        "no compare-and-set ever failed: the writers did not contend ({attempts} attempts)"
    );
    assert_eq!(
        hosts[0].usage("app").expect("usage"),
        entry_cost("app", "counters", "hits", 3)
    );
}

/// Two hosts filling one namespace at once under one quota: together they
/// store exactly what fits, and the usage both read is what is stored.
#[test]
fn a_quota_holds_across_hosts_writing_at_once() {
    let server = JetStreamServer::start();
    let hosts = [host(&server), host(&server)];
    let cost = entry_cost("app", "b", "k000", 100);
    let quota = Some(cost * 10);
    let start = Arc::new(Barrier::new(4));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let host = Arc::clone(&hosts[w % 2]);
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                let mut stored = 0;
                for i in 0..10 {
                    let key = format!("k{w}{i:02}");
                    match host.set("app", "b", &key, &[w as u8; 100], quota) {
                        Ok(()) => stored += 1,
                        Err(StorageError::QuotaExceeded { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                stored
            })
        })
        .collect();
    let stored: u64 = writers.into_iter().map(|w| w.join().expect("writer")).sum();
    assert_eq!(stored, 10, "exactly the ten entries that fit");
    let keys = hosts[0].list_keys("app", "b", None, 100).expect("list");
    assert_eq!(keys.len(), 10, "{keys:?}");
    for host in &hosts {
        assert_eq!(host.usage("app").expect("usage"), cost * 10);
    }
    let err = hosts[1]
        .set("app", "b", "one-more", &[], quota)
        .expect_err("full");
    assert!(err.to_string().contains("limits.storage_bytes"), "{err}");
}
