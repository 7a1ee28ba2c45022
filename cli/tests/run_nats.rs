//! `airssys run --nats URL`: the run's broker is a `NatsBroker` on that
//! server, so a `--message` reaches a subscriber on another host (here, a
//! `NatsBroker` of the test process standing for one); an unreachable
//! server exits 2 without showing the URL's credentials. The test starts
//! its own `nats-server` (Debian package `nats-server`); a missing one
//! fails the test, naming the package.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{NatsServer, airssys_building as airssys, free_port};

use airssys_runtime::Broker;
use airssys_runtime::broker::{Delivery, NatsBroker, Subscriber};
use airssys_runtime::contract::capability::{Capability, GrantSet};

/// The echo fixture crate (written once per test binary).
fn echo() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| common::echo_crate("nats-echo"))
}

#[test]
fn a_message_of_the_run_reaches_a_subscriber_on_another_host() {
    let server = NatsServer::start();
    // The other host: a broker with one subscriber of `orders.*`.
    let other = NatsBroker::builder(server.url())
        .connect()
        .expect("connects");
    let grants = GrantSet::builder()
        .allow(Capability::parse("msg:subscribe:orders.*").unwrap())
        .build();
    other.register(
        "watcher",
        Subscriber::new(
            vec![Capability::parse("msg:subscribe:orders.*").unwrap()],
            grants,
        ),
    );

    let echo = echo();
    let out = airssys(&[
        "run",
        echo.to_str().unwrap(),
        "--nats",
        &server.url(),
        "--message",
        "orders.created=hello",
    ]);
    let stdout = common::succeeded(&out);
    let stderr = common::stderr(&out);
    assert!(!stderr.contains("did not confirm"), "{stderr}");
    assert!(
        stdout.contains("publish orders.created \"hello\" from `cli` -> sent to the NATS server"),
        "{stdout}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while other.pending("watcher") == 0 {
        assert!(
            Instant::now() < deadline,
            "nothing arrived on the other host"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    match other.take("watcher") {
        Some(Delivery::Message { envelope, .. }) => {
            assert_eq!(&*envelope.topic, "orders.created");
            assert_eq!(&*envelope.source, "cli");
            assert_eq!(&*envelope.payload, b"hello");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unreachable_server_exits_2_without_showing_credentials() {
    let echo = echo();
    let url = format!("nats://user:secret@127.0.0.1:{}", free_port());
    let out = airssys(&["run", echo.to_str().unwrap(), "--nats", &url]);
    let stderr = common::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--nats: could not connect to the NATS server at `nats://***@127.0.0.1:"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "{stderr}");
}

#[test]
fn an_unknown_nats_delivery_is_refused_naming_the_choices() {
    let echo = echo();
    let out = airssys(&[
        "run",
        echo.to_str().unwrap(),
        "--nats",
        "nats://127.0.0.1:1",
        "--nats-delivery",
        "exactly-once",
    ]);
    let stderr = common::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown NATS delivery `exactly-once`: use `jetstream`"),
        "{stderr}"
    );
    assert!(stderr.contains("`core`"), "{stderr}");
}
