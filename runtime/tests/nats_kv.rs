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

/// Under `examples/nats/server.conf`, host A's NATS user (its own inbox
/// prefix, as the example says) keeps, reads and lists storage namespace
/// `ping`; the server refuses it namespace `pong`: nothing is written,
/// read or listed there, and the refusal names the subject.
#[test]
fn the_example_permissions_fence_a_hosts_storage_to_its_namespaces() {
    use airssys_runtime::broker::{NatsBroker, NatsConnectOptions};

    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/nats/server.conf");
    let server = JetStreamServer::start_with(&["-c", conf]);
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("a.password");
    std::fs::write(&password, "host-a-password\n").unwrap();
    let options = NatsConnectOptions::new()
        .user_password_file("host-a", &password)
        .unwrap()
        .inbox_prefix("_INBOX.host-a");
    let watch = options.watch();
    let broker = NatsBroker::builder(server.url())
        .connect_options(options)
        .op_timeout(Duration::from_secs(2))
        .connect()
        .expect("host A connects and finds its streams");
    let a = NatsKvStorage::builder(broker.client(), broker.runtime_handle())
        .op_timeout(Duration::from_secs(2))
        .open()
        .expect("host A opens the bucket");

    // Its own namespace.
    a.set("ping", "b", "k", b"v", Some(1 << 20)).expect("set");
    assert_eq!(a.get("ping", "b", "k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(a.list_keys("ping", "b", None, 10).unwrap(), ["k"]);
    assert!(a.usage("ping").unwrap() > 0);
    assert_eq!(watch.status().server_errors, 0, "{:?}", watch.status());

    // Another host's.
    let refused = a.set("pong", "b", "k", b"v", Some(1 << 20));
    assert!(
        matches!(refused, Err(StorageError::Backend(_))),
        "{refused:?}"
    );
    let said = watch.status().last_server_error.unwrap_or_default();
    assert!(
        said.contains(
            "Permissions Violation for Publish to \"$JS.API.DIRECT.GET.KV_airssys.$KV.airssys.e.\
             cG9uZw.Yg.aw\""
        ),
        "{said}"
    );
    assert!(a.get("pong", "b", "k").is_err());
    assert!(a.list_keys("pong", "b", None, 10).is_err());
    let said = watch.status().last_server_error.unwrap_or_default();
    assert!(
        said.contains("$JS.API.CONSUMER.CREATE.KV_airssys.airssys-keys-")
            && said.contains(".$KV.airssys.e.cG9uZw.Yg.*"),
        "{said}"
    );
    // Nothing reached namespace `pong`: host B's user sees it empty.
    std::fs::write(&password, "host-b-password\n").unwrap();
    let broker_b = NatsBroker::builder(server.url())
        .connect_options(
            NatsConnectOptions::new()
                .user_password_file("host-b", &password)
                .unwrap()
                .inbox_prefix("_INBOX.host-b"),
        )
        .connect()
        .expect("host B connects");
    let b = NatsKvStorage::builder(broker_b.client(), broker_b.runtime_handle())
        .open()
        .expect("host B opens the bucket");
    assert_eq!(b.get("pong", "b", "k").unwrap(), None);
    assert_eq!(b.usage("pong").unwrap(), 0);
    assert!(b.list_keys("pong", "b", None, 10).unwrap().is_empty());
}
