//! Hostile probes: messaging. A publisher flooding a mailbox is held to
//! its share of it, in entries and in bytes (`BrokerConfig::
//! per_publisher_share`, `per_publisher_bytes`), while another subscriber
//! of the same topic keeps receiving and the neighbour keeps serving; a
//! payload larger than a subscriber's memory allows (half its
//! `limits.memory_bytes`) is dead-lettered at once, never retried through
//! fresh instances; replies a requester has not collected are held to its
//! `limits.held_bytes` and `limits.max_pending`. Over NATS with JetStream
//! (feature `nats`), a publisher is held to its share of the stream every
//! host shares (`stream_max_messages_per_component`).

use airssys_runtime::{BrokerConfig, Policy, Runtime};

use crate::neighbour::{NEIGHBOUR_POLICY, while_serving};
use crate::support::{cmd, start};

fn runtime(policy: &str, config: BrokerConfig) -> Runtime {
    Runtime::builder()
        .policy(Policy::from_toml_str(&format!("{policy}{NEIGHBOUR_POLICY}")).expect("policy"))
        .in_memory_storage()
        .max_instances(16)
        .broker_config(config)
        .build()
        .expect("runtime")
}

const FLOOD: &str = r#"
[components.flooder]
grants = ["msg:publish:feed.*"]
[components.carol]
grants = ["msg:publish:feed.*"]
[components.slow]
grants = ["msg:subscribe:feed.*"]
subscribe = ["feed.*"]
[components.fast]
grants = ["msg:subscribe:feed.*"]
subscribe = ["feed.*"]
[components.dlq]
grants = ["msg:subscribe:airssys.dead-letter.slow"]
subscribe = ["airssys.dead-letter.slow"]
"#;

/// 16 KiB messages against a 64 KiB share per publisher: three fit in a
/// mailbox. The flooder is refused, naming `per_publisher_bytes`, only
/// while no subscriber takes its messages; once `fast` consumes, the
/// flood reaches `fast` while `slow` (which never consumes) holds no more
/// than the flooder's share and gets the rest as dead letters, another
/// publisher still reaches `slow`, and the neighbour answers throughout.
#[test]
fn a_message_flood_is_held_to_its_share_while_others_receive() {
    const PAD: usize = 16 * 1024;
    let config = BrokerConfig {
        per_publisher_bytes: 64 * 1024,
        mailbox_bytes: 256 * 1024,
        ..BrokerConfig::default()
    };
    let rt = runtime(FLOOD, config);
    let mut flooder = start(&rt, "flooder", &["msg:publish:feed.*"]);
    let mut carol = start(&rt, "carol", &["msg:publish:feed.*"]);
    let mut slow = [start(&rt, "slow", &["msg:subscribe:feed.*"])];
    let mut fast = [start(&rt, "fast", &["msg:subscribe:feed.*"])];
    let mut dlq = [start(
        &rt,
        "dlq",
        &["msg:subscribe:airssys.dead-letter.slow"],
    )];
    while_serving(&rt, || {
        let reply = cmd(&mut flooder, &format!("flood:feed.x:0:1000:{PAD}"));
        assert!(reply.starts_with("sent 3; quota-exceeded:"), "{reply}");
        assert!(reply.contains("`per_publisher_bytes`"), "{reply}");
        for round in 1..=5 {
            assert_eq!(rt.run_until_idle(&mut fast, 64).expect("fast").delivered, 3);
            let reply = cmd(&mut flooder, &format!("flood:feed.x:{}:3:{PAD}", round * 3));
            assert_eq!(reply, "sent 3", "round {round}");
            assert_eq!(rt.broker().pending("slow"), 3, "never more than the share");
            let dead = rt.run_until_idle(&mut dlq, 64).expect("dlq").delivered;
            assert_eq!(dead, 3, "round {round}");
        }
        // Another publisher has its own share of `slow`.
        assert_eq!(
            cmd(&mut carol, &format!("flood:feed.y:0:3:{PAD}")),
            "sent 3"
        );
        assert_eq!(rt.broker().pending("slow"), 6);
    });
    rt.run_until_idle(&mut fast, 64).expect("fast");
    assert_eq!(cmd(&mut fast[0], "stats"), "count=21 anomalies=0 refused=0");
    rt.run_until_idle(&mut slow, 64).expect("slow");
    assert_eq!(cmd(&mut slow[0], "stats"), "count=6 anomalies=0 refused=0");
}

const OVERSIZE: &str = r#"
[components.big]
grants = ["msg:publish:big.*"]
[components.small]
grants = ["msg:subscribe:big.*"]
subscribe = ["big.*"]
limits = { memory_bytes = 4194304 }
[components.dlq]
grants = ["msg:subscribe:airssys.dead-letter.small"]
subscribe = ["airssys.dead-letter.small"]
"#;

/// 3 MiB for a subscriber with 4 MiB of memory: dead-lettered when
/// published, naming `limits.memory_bytes`; delivery calls no handler, so
/// no instance traps and none is started anew.
#[test]
fn an_oversize_payload_is_dead_lettered_without_fresh_instances() {
    let config = BrokerConfig {
        max_payload_bytes: 8 << 20,
        ..BrokerConfig::default()
    };
    let rt = runtime(OVERSIZE, config);
    let mut big = start(&rt, "big", &["msg:publish:big.*"]);
    let mut small = [start(&rt, "small", &["msg:subscribe:big.*"])];
    let mut dlq = [start(
        &rt,
        "dlq",
        &["msg:subscribe:airssys.dead-letter.small"],
    )];
    let reply = while_serving(&rt, || {
        let reply = cmd(&mut big, "publish-big:big.x:3145728");
        let report = rt.run_until_idle(&mut small, 16).expect("no handler traps");
        assert!(report.is_empty(), "nothing reaches `small`: {report:?}");
        reply
    });
    assert!(reply.starts_with("invalid-input:"), "{reply}");
    assert!(reply.contains("half its `limits.memory_bytes`"), "{reply}");
    assert_eq!(rt.run_until_idle(&mut dlq, 16).expect("dlq").delivered, 1);
    // The same instance of `small` still takes what fits.
    assert_eq!(cmd(&mut big, "publish-big:big.x:1024"), "ok");
    assert_eq!(
        rt.run_until_idle(&mut small, 16).expect("small").delivered,
        1
    );
    assert_eq!(cmd(&mut small[0], "stats"), "count=1 anomalies=0 refused=0");
}

const HOARD: &str = r#"
[components.hoarder]
grants = ["msg:request:server"]
limits = { held_bytes = 65536, max_pending = 6 }
[components.server]
grants = ["msg:subscribe:unused.*"]
"#;

/// Replies the host holds for a requester until it collects them are
/// charged to its `limits.held_bytes` and `limits.max_pending`: with
/// 64 KiB, three 20 KiB answers are held and the fourth is refused at
/// once, its `get` answering `quota-exceeded` naming `limits.held_bytes`;
/// collecting gives the bytes back. A seventh uncollected request is
/// refused naming `limits.max_pending`. The neighbour answers throughout.
#[test]
fn uncollected_replies_are_held_to_the_requesters_budget() {
    const PAD: usize = 20 * 1024;
    let rt = runtime(HOARD, BrokerConfig::default());
    let mut hoarder = start(&rt, "hoarder", &["msg:request:server"]);
    let mut server = [start(&rt, "server", &["msg:subscribe:unused.*"])];
    let payload = "x".repeat(PAD);
    let request = format!("request:server:60000:{payload}");
    while_serving(&rt, || {
        for _ in 0..4 {
            assert_eq!(cmd(&mut hoarder, &request), "ok");
        }
        let report = rt.run_until_idle(&mut server, 16).expect("server");
        assert_eq!(report.answered, 4);
        for n in 1..=3 {
            let reply = cmd(&mut hoarder, "reply");
            assert!(
                reply.starts_with("reply: server got `xxx"),
                "reply {n}: {reply:.80}"
            );
        }
        let reply = cmd(&mut hoarder, "reply");
        assert!(reply.starts_with("quota-exceeded:"), "{reply:.300}");
        assert!(reply.contains("limits.held_bytes"), "{reply}");

        // Collected: the budget is free again.
        assert_eq!(cmd(&mut hoarder, &request), "ok");
        rt.run_until_idle(&mut server, 16).expect("server");
        let reply = cmd(&mut hoarder, "reply");
        assert!(reply.starts_with("reply: server got `xxx"), "{reply:.80}");

        // Requests waiting for an answer hold a pending slot each.
        for n in 1..=6 {
            assert_eq!(
                cmd(&mut hoarder, "request:server:60000:hi"),
                "ok",
                "request {n}"
            );
        }
        let reply = cmd(&mut hoarder, "request:server:60000:hi");
        assert!(reply.starts_with("quota-exceeded:"), "{reply}");
        assert!(reply.contains("limits.max_pending"), "{reply}");
    });
}

/// Messaging over NATS with JetStream delivery: one stream holds every
/// component's messages, on every host.
#[cfg(feature = "nats")]
mod nats_stream {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use airssys_runtime::broker::NatsBroker;
    use airssys_runtime::{Broker, Policy, Runtime};

    use crate::neighbour::{NEIGHBOUR_POLICY, while_serving};
    use crate::support::jetstream::JetStreamServer;
    use crate::support::{STREAM_FLOODER_POLICY, STREAM_NEIGHBOURS_POLICY, cmd, start};

    fn host(server: &JetStreamServer, policy: &str) -> Runtime {
        let broker = NatsBroker::builder(server.url())
            .stream_max_messages(40)
            .connect()
            .expect("connects to the test's nats-server");
        Runtime::builder()
            .policy(Policy::from_toml_str(&format!("{policy}{NEIGHBOUR_POLICY}")).expect("policy"))
            .in_memory_storage()
            .broker(Arc::new(broker) as Arc<dyn Broker>)
            .build()
            .expect("runtime")
    }

    /// A component publishing to a subscriber that never consumes used to
    /// fill the shared stream (40 messages here) so that every other
    /// component's publish, on any host, was refused. It is now held to its
    /// share (by default a quarter of the stream: 10), refused naming
    /// `stream_max_messages_per_component`, while `dave` on its host and
    /// `erin` on another still publish, `carol` receives both, and the
    /// neighbour keeps serving.
    #[test]
    fn a_flooder_is_held_to_its_share_of_the_shared_stream() {
        let server = JetStreamServer::start();
        let a = host(&server, STREAM_FLOODER_POLICY);
        let b = host(&server, STREAM_NEIGHBOURS_POLICY);
        let _bob = start(&b, "bob", &["msg:subscribe:orders.*"]);
        let mut carol = [start(&b, "carol", &["msg:subscribe:news.*"])];
        let mut alice = start(&a, "alice", &["msg:publish:orders.*"]);
        let mut dave = start(&a, "dave", &["msg:publish:news.*"]);
        let mut erin = start(&b, "erin", &["msg:publish:news.*"]);
        let flood = while_serving(&a, || cmd(&mut alice, "flood:orders.x:0:200"));
        assert!(
            flood.starts_with("sent 10; quota-exceeded")
                && flood.contains("stream_max_messages_per_component"),
            "{flood}"
        );
        assert_eq!(cmd(&mut dave, "publish:news.d:from-dave"), "ok");
        assert_eq!(cmd(&mut erin, "publish:news.e:from-erin"), "ok");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            b.run_until_idle(&mut carol, 64).expect("delivery");
            let stats = cmd(&mut carol[0], "stats");
            if stats.starts_with("count=2 ") {
                break;
            }
            assert!(Instant::now() < deadline, "carol: {stats}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `mallory` fails every message it gets; `dlq` reads its dead letters
    /// and lags (never runs here).
    const DEAD_LETTERS_POLICY: &str = r#"
[components.alice]
grants = ["msg:publish:orders.*"]

[components.mallory]
grants = ["msg:subscribe:orders.*"]
subscribe = ["orders.*"]

[components.dlq]
grants = ["msg:subscribe:airssys.dead-letter.mallory"]
subscribe = ["airssys.dead-letter.mallory"]
"#;

    /// A dead letter of `mallory` of `alice`'s message is offered on a
    /// subject stamped with alice; it used to count in alice's share, so
    /// mallory failing every message of hers while `dlq` lagged refused
    /// alice's publishes after 10 (her share) without one of hers waiting.
    /// Dead letters now count in the share of the component that made
    /// them: alice publishes 30, each dead-lettered, while the neighbour
    /// keeps serving.
    #[test]
    fn a_component_failing_a_neighbours_messages_uses_up_only_its_own_share() {
        let server = JetStreamServer::start();
        let a = host(&server, DEAD_LETTERS_POLICY);
        let _dlq = start(&a, "dlq", &["msg:subscribe:airssys.dead-letter.mallory"]);
        let mut mallory = [start(&a, "mallory", &["msg:subscribe:orders.*"])];
        assert_eq!(cmd(&mut mallory[0], "fail:1000000"), "ok");
        let mut alice = start(&a, "alice", &["msg:publish:orders.*"]);
        while_serving(&a, || {
            let mut dead = 0;
            for i in 0..30 {
                let sent = cmd(&mut alice, &format!("publish:orders.x:m{i}"));
                assert_eq!(sent, "ok", "alice's publish {i}");
                let deadline = Instant::now() + Duration::from_secs(30);
                while dead <= i {
                    dead += a
                        .run_until_idle(&mut mallory, 64)
                        .expect("delivery")
                        .dead_lettered;
                    assert!(Instant::now() < deadline, "{dead} dead-lettered");
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
    }
}
