//! Messaging between components of one runtime, end to end with the
//! `messenger` fixture (built for wasm32-wasip2). One build runs as many
//! components: each test appends a manifest with the name it needs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use airssys_runtime::broker::{BrokerError, Delivery, ReplySlot, Subscriber};
use airssys_runtime::{
    Broker, BrokerConfig, InProcessBroker, Instance, LoadError, Policy, Runtime, RuntimeError,
};
use support::{cmd, start};

/// The messenger component under `name`, asking for `requires`.
fn messenger(name: &str, requires: &[&str]) -> Vec<u8> {
    support::fixture_as("messenger", name, requires)
}

fn runtime(policy: &str) -> Runtime {
    runtime_with(policy, BrokerConfig::default())
}

fn runtime_with(policy: &str, config: BrokerConfig) -> Runtime {
    Runtime::builder()
        .policy(Policy::from_toml_str(policy).expect("valid policy"))
        .broker_config(config)
        .build()
        .expect("runtime builds")
}

const PAIR: &str = r#"
[components.alice]
grants = ["msg:publish:orders.*", "msg:request:bob", "msg:request:nobody"]

[components.bob]
grants = ["msg:subscribe:orders.*"]
subscribe = ["orders.*"]
"#;

#[test]
fn publish_reaches_the_subscriber_with_topic_and_source() {
    let rt = runtime(PAIR);
    let mut alice = start(&rt, "alice", &["msg:publish:orders.*"]);
    let mut bob = [start(&rt, "bob", &["msg:subscribe:orders.*"])];
    assert_eq!(cmd(&mut alice, "publish:orders.created:hello"), "ok");
    let report = rt.run_until_idle(&mut bob, 16).expect("delivery");
    assert_eq!(report.delivered, 1);
    assert_eq!(cmd(&mut bob[0], "log"), "orders.created|alice|hello");
    // Nothing left: a second pass finds no work.
    assert!(rt.run_until_idle(&mut bob, 16).expect("idle").is_empty());
    assert_eq!(cmd(&mut alice, "name"), "alice");
}

#[test]
fn publish_without_the_grant_is_denied_naming_the_capability() {
    let rt = runtime(PAIR);
    let mut alice = start(&rt, "alice", &["msg:publish:orders.*"]);
    let reply = cmd(&mut alice, "publish:billing.paid:x");
    assert!(reply.starts_with("denied:"), "{reply}");
    assert!(reply.contains("msg:publish:billing.paid"), "{reply}");
    // Wildcards are patterns, not topics.
    let reply = cmd(&mut alice, "publish:orders.*:x");
    assert!(
        reply.starts_with("denied:") || reply.starts_with("invalid-input:"),
        "{reply}"
    );
}

#[test]
fn host_topics_are_reserved_even_with_a_wide_grant() {
    let rt = runtime("[components.mallory]\ngrants = [\"msg:publish:>\"]\n");
    let mut mallory = start(&rt, "mallory", &["msg:publish:>"]);
    let reply = cmd(&mut mallory, "publish:airssys.dead-letter.bob:forged");
    assert!(reply.starts_with("invalid-input:"), "{reply}");
    assert!(reply.contains("reserved"), "{reply}");
}

#[test]
fn subscription_not_covered_by_the_grant_refuses_the_load() {
    // The manifest asks for one topic only; the policy subscribes to all.
    let rt = runtime(PAIR);
    let err = rt
        .load(&messenger("bob", &["msg:subscribe:orders.created"]))
        .expect_err("subscription wider than the grant");
    let LoadError::Subscription {
        component,
        message,
        refused,
    } = &err
    else {
        panic!("expected LoadError::Subscription, got {err:?}");
    };
    assert_eq!(component, "bob");
    assert!(message.contains("msg:subscribe:orders.*"), "{message}");
    assert!(message.contains("line 7"), "{message}");
    // The refused subscriptions, as data.
    let refused: Vec<String> = refused.iter().map(ToString::to_string).collect();
    assert_eq!(refused, ["msg:subscribe:orders.*"]);

    // No msg:subscribe grant at all.
    let rt = runtime("[components.eve]\nsubscribe = [\"orders.>\"]\n");
    let err = rt.load(&messenger("eve", &[])).expect_err("no grant");
    let LoadError::Subscription { refused, .. } = &err else {
        panic!("expected LoadError::Subscription, got {err:?}");
    };
    let refused: Vec<String> = refused.iter().map(ToString::to_string).collect();
    assert_eq!(refused, ["msg:subscribe:orders.>"], "{err}");
}

#[test]
fn unloading_a_subscriber_releases_its_mailbox_and_subscriptions() {
    let rt = runtime(PAIR);
    let mut alice = start(&rt, "alice", &["msg:publish:orders.*"]);
    let bob = rt
        .load(&messenger("bob", &["msg:subscribe:orders.*"]))
        .expect("bob loads");
    let copy = bob.clone();
    let instance = bob.instantiate().expect("bob instantiates");
    assert_eq!(cmd(&mut alice, "publish:orders.created:early"), "ok");
    assert_eq!(rt.broker().pending("bob"), 1);
    drop(instance);
    drop(bob);
    // A clone of the loaded component still holds it: nothing released.
    assert_eq!(rt.broker().pending("bob"), 1);
    drop(copy);
    assert_eq!(rt.broker().pending("bob"), 0);
    // No mailbox fills up for the unloaded subscriber: more messages than
    // a queue holds are published without push-back.
    let capacity = BrokerConfig::default().queue_capacity;
    for i in 0..=capacity {
        assert_eq!(
            cmd(&mut alice, &format!("publish:orders.created:{i}")),
            "ok"
        );
    }
    assert_eq!(rt.broker().pending("bob"), 0);
    // Loaded again, it receives what is published from then on.
    let mut bob = [start(&rt, "bob", &["msg:subscribe:orders.*"])];
    assert_eq!(cmd(&mut alice, "publish:orders.created:fresh"), "ok");
    let report = rt.run_until_idle(&mut bob, 16).expect("delivery");
    assert_eq!(report.delivered, 1);
    assert_eq!(cmd(&mut bob[0], "log"), "orders.created|alice|fresh");
}

#[test]
fn delivery_is_fifo_per_topic_per_subscriber() {
    let policy = r#"
[components.alice]
grants = ["msg:publish:orders.*"]
[components.carol]
grants = ["msg:publish:orders.*"]
[components.bob]
grants = ["msg:subscribe:orders.*"]
subscribe = ["orders.*"]
"#;
    let rt = runtime(policy);
    let mut alice = start(&rt, "alice", &["msg:publish:orders.*"]);
    let mut carol = start(&rt, "carol", &["msg:publish:orders.*"]);
    let mut bob = [start(&rt, "bob", &["msg:subscribe:orders.*"])];
    for round in 0..4 {
        let from = round * 50;
        assert_eq!(
            cmd(&mut alice, &format!("flood:orders.a:{from}:50")),
            "sent 50"
        );
        assert_eq!(
            cmd(&mut carol, &format!("flood:orders.a:{from}:50")),
            "sent 50"
        );
    }
    // Small batches interleave delivery with nothing else: order must hold.
    rt.run_until_idle(&mut bob, 7).expect("delivery");
    assert_eq!(cmd(&mut bob[0], "stats"), "count=400 anomalies=0 refused=0");
    let log = cmd(&mut bob[0], "log");
    let first: Vec<&str> = log.lines().take(3).collect();
    assert_eq!(
        first,
        [
            "orders.a|alice|seq:0",
            "orders.a|alice|seq:1",
            "orders.a|alice|seq:2"
        ]
    );
}

const WITH_DLQ: &str = r#"
[components.alice]
grants = ["msg:publish:orders.*"]
[components.bob]
grants = ["msg:subscribe:orders.*"]
subscribe = ["orders.*"]
[components.dlq]
grants = ["msg:subscribe:airssys.dead-letter.bob"]
subscribe = ["airssys.dead-letter.bob"]
"#;

#[test]
fn failing_handler_is_retried_then_dead_lettered() {
    let rt = runtime(WITH_DLQ);
    let mut alice = start(&rt, "alice", &["msg:publish:orders.*"]);
    let mut subs = [
        start(&rt, "bob", &["msg:subscribe:orders.*"]),
        start(&rt, "dlq", &["msg:subscribe:airssys.dead-letter.bob"]),
    ];
    // Two failures, then success on the third attempt (max_attempts = 3).
    assert_eq!(cmd(&mut subs[0], "fail:2"), "ok");
    assert_eq!(cmd(&mut alice, "publish:orders.x:first"), "ok");
    let report = rt.run_until_idle(&mut subs, 16).expect("delivery");
    assert_eq!(
        (report.failed, report.delivered, report.dead_lettered),
        (2, 1, 0)
    );
    assert_eq!(cmd(&mut subs[0], "log"), "orders.x|alice|first");

    // Three failures: the message goes to the dead-letter topic, and the
    // next message is not held back by it.
    assert_eq!(cmd(&mut subs[0], "fail:3"), "ok");
    assert_eq!(cmd(&mut alice, "publish:orders.x:doomed"), "ok");
    assert_eq!(cmd(&mut alice, "publish:orders.x:after"), "ok");
    let report = rt.run_until_idle(&mut subs, 16).expect("delivery");
    assert_eq!((report.failed, report.dead_lettered), (3, 1));
    assert_eq!(
        cmd(&mut subs[0], "log"),
        "orders.x|alice|first\norders.x|alice|after"
    );
    assert_eq!(
        cmd(&mut subs[1], "log"),
        "airssys.dead-letter.bob|alice|doomed"
    );
}

/// Publishes each payload on `orders.x` from `alice`.
fn publish_all(alice: &mut Instance, payloads: &[&str]) {
    for payload in payloads {
        assert_eq!(cmd(alice, &format!("publish:orders.x:{payload}")), "ok");
    }
}

/// A batch in which one message fails: that message alone is retried (in
/// place, ahead of the rest) or dead-lettered; the others arrive once, in
/// publish order.
#[test]
fn a_failing_message_inside_a_batch_is_retried_alone_in_order() {
    let rt = runtime(WITH_DLQ);
    let mut alice = start(&rt, "alice", &["msg:publish:orders.*"]);
    let mut subs = [
        start(&rt, "bob", &["msg:subscribe:orders.*"]),
        start(&rt, "dlq", &["msg:subscribe:airssys.dead-letter.bob"]),
    ];
    // `flaky:2:a` fails twice then succeeds; `flaky:3:b` fails all three
    // attempts and is dead-lettered.
    publish_all(
        &mut alice,
        &["seq:0", "flaky:2:a", "seq:1", "flaky:3:b", "seq:2"],
    );
    let report = rt.run_until_idle(&mut subs, 64).expect("delivery");
    // bob: 4 accepted; dlq: 1 accepted.
    assert_eq!(
        (report.delivered, report.failed, report.dead_lettered),
        (5, 5, 1)
    );
    assert_eq!(
        cmd(&mut subs[0], "log"),
        "orders.x|alice|seq:0\norders.x|alice|flaky:2:a\norders.x|alice|seq:1\n\
         orders.x|alice|seq:2"
    );
    assert_eq!(cmd(&mut subs[0], "stats"), "count=4 anomalies=0 refused=5");
    assert_eq!(
        cmd(&mut subs[1], "log"),
        "airssys.dead-letter.bob|alice|flaky:3:b"
    );
    assert_eq!(rt.broker().pending("bob"), 0);
    assert_eq!(rt.broker().pending("dlq"), 0);
}

/// The same with passes smaller than the retries: every attempt counts
/// against the pass, the unreached rest of a batch goes back to the head of
/// the mailbox, and messages published between passes queue behind it.
#[test]
fn retries_across_small_passes_keep_order_and_lose_nothing() {
    let rt = runtime(WITH_DLQ);
    let mut alice = start(&rt, "alice", &["msg:publish:orders.*"]);
    let mut bob = start(&rt, "bob", &["msg:subscribe:orders.*"]);
    let mut dlq = [start(
        &rt,
        "dlq",
        &["msg:subscribe:airssys.dead-letter.bob"],
    )];
    publish_all(
        &mut alice,
        &["seq:0", "flaky:2:a", "seq:1", "flaky:3:b", "seq:2"],
    );
    // seq:0 delivered, flaky:2:a fails once; four entries stay queued.
    let first = bob.deliver_pending(2).expect("pass");
    assert_eq!((first.delivered, first.failed), (1, 1));
    assert_eq!(rt.broker().pending("bob"), 4);
    publish_all(&mut alice, &["seq:3"]);
    let mut total = first;
    for _ in 0..20 {
        let pass = bob.deliver_pending(2).expect("pass");
        if pass.is_empty() {
            break;
        }
        total.delivered += pass.delivered;
        total.failed += pass.failed;
        total.dead_lettered += pass.dead_lettered;
    }
    assert_eq!(
        (total.delivered, total.failed, total.dead_lettered),
        (5, 5, 1)
    );
    assert_eq!(
        cmd(&mut bob, "log"),
        "orders.x|alice|seq:0\norders.x|alice|flaky:2:a\norders.x|alice|seq:1\n\
         orders.x|alice|seq:2\norders.x|alice|seq:3"
    );
    assert_eq!(cmd(&mut bob, "stats"), "count=5 anomalies=0 refused=5");
    rt.run_until_idle(&mut dlq, 1).expect("dead letter");
    assert_eq!(
        cmd(&mut dlq[0], "log"),
        "airssys.dead-letter.bob|alice|flaky:3:b"
    );
    // The share of a publisher is counted back as entries leave.
    assert_eq!(rt.broker().pending("bob"), 0);
    assert_eq!(cmd(&mut alice, "flood:orders.y:0:512"), "sent 512");
}

#[test]
fn trapping_handler_keeps_the_message_for_the_next_instance() {
    let rt = runtime(WITH_DLQ);
    let mut alice = start(&rt, "alice", &["msg:publish:orders.*"]);
    let bob = rt
        .load(&messenger("bob", &["msg:subscribe:orders.*"]))
        .expect("load bob");
    let mut dlq = [start(
        &rt,
        "dlq",
        &["msg:subscribe:airssys.dead-letter.bob"],
    )];
    assert_eq!(cmd(&mut alice, "publish:orders.x:trap"), "ok");
    assert_eq!(cmd(&mut alice, "publish:orders.x:fine"), "ok");
    let mut traps = 0;
    let mut received = String::new();
    for _ in 0..5 {
        let mut instance = [bob.instantiate().expect("instantiate bob")];
        match rt.run_until_idle(&mut instance, 16) {
            Err(RuntimeError::Trap {
                component, message, ..
            }) => {
                assert_eq!(component, "bob");
                // The trap's cause comes first, not only a backtrace.
                assert!(
                    message.starts_with("wasm trap: wasm `unreachable` instruction executed\n"),
                    "{message}"
                );
                traps += 1;
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => {
                received = cmd(&mut instance[0], "log");
                break;
            }
        }
    }
    assert_eq!(traps, 3, "one trap per attempt, then dead-lettered");
    assert_eq!(received, "orders.x|alice|fine");
    rt.run_until_idle(&mut dlq, 16)
        .expect("dead letter delivered");
    assert_eq!(
        cmd(&mut dlq[0], "log"),
        "airssys.dead-letter.bob|alice|trap"
    );
}

#[test]
fn full_queue_pushes_back_on_the_publisher() {
    let config = BrokerConfig {
        queue_capacity: 10,
        per_publisher_share: 10,
        ..BrokerConfig::default()
    };
    let rt = runtime_with(PAIR, config);
    let mut alice = start(&rt, "alice", &["msg:publish:orders.*"]);
    let mut bob = [start(&rt, "bob", &["msg:subscribe:orders.*"])];
    let reply = cmd(&mut alice, "flood:orders.a:0:15");
    assert!(reply.starts_with("sent 10; quota-exceeded:"), "{reply}");
    assert!(
        reply.contains("queue of component `bob` is full"),
        "{reply}"
    );
    assert_eq!(
        rt.broker().pending("bob"),
        10,
        "never more than the capacity"
    );
    rt.run_until_idle(&mut bob, 4).expect("delivery");
    // Drained: the publisher can continue where it stopped.
    assert_eq!(cmd(&mut alice, "flood:orders.a:10:5"), "sent 5");
    rt.run_until_idle(&mut bob, 4).expect("delivery");
    assert_eq!(cmd(&mut bob[0], "stats"), "count=15 anomalies=0 refused=0");
}

#[test]
fn a_flooding_publisher_cannot_starve_another() {
    let policy = r#"
[components.alice]
grants = ["msg:publish:orders.*"]
[components.carol]
grants = ["msg:publish:orders.*"]
[components.bob]
grants = ["msg:subscribe:orders.*"]
subscribe = ["orders.*"]
"#;
    let config = BrokerConfig {
        queue_capacity: 10,
        per_publisher_share: 5,
        ..BrokerConfig::default()
    };
    let rt = runtime_with(policy, config);
    let mut alice = start(&rt, "alice", &["msg:publish:orders.*"]);
    let mut carol = start(&rt, "carol", &["msg:publish:orders.*"]);
    let mut bob = [start(&rt, "bob", &["msg:subscribe:orders.*"])];
    let reply = cmd(&mut alice, "flood:orders.a:0:1000");
    assert!(reply.starts_with("sent 5; quota-exceeded:"), "{reply}");
    assert!(reply.contains("share"), "{reply}");
    // Carol still gets through to the same subscriber.
    assert_eq!(cmd(&mut carol, "flood:orders.b:0:5"), "sent 5");
    rt.run_until_idle(&mut bob, 3).expect("delivery");
    assert_eq!(cmd(&mut bob[0], "stats"), "count=10 anomalies=0 refused=0");
}

#[test]
fn request_reply_round_trip_remote_error_and_timeout() {
    let rt = runtime(PAIR);
    let mut alice = start(&rt, "alice", &["msg:request:bob", "msg:request:nobody"]);
    let mut bob = [start(&rt, "bob", &["msg:subscribe:orders.*"])];

    assert_eq!(cmd(&mut alice, "request:bob:60000:hi"), "ok");
    assert_eq!(cmd(&mut alice, "reply"), "pending");
    let report = rt.run_until_idle(&mut bob, 16).expect("delivery");
    assert_eq!(report.answered, 1);
    assert_eq!(cmd(&mut alice, "reply"), "reply: bob got `hi` from alice");

    assert_eq!(cmd(&mut alice, "request:bob:60000:refuse"), "ok");
    rt.run_until_idle(&mut bob, 16).expect("delivery");
    let reply = cmd(&mut alice, "reply");
    assert!(reply.starts_with("remote: denied:"), "{reply}");

    // Not served in time: timeout, and the target never sees it.
    assert_eq!(cmd(&mut alice, "request:bob:1:late"), "ok");
    std::thread::sleep(Duration::from_millis(20));
    let reply = cmd(&mut alice, "reply");
    assert!(reply.starts_with("timeout:"), "{reply}");
    let report = rt.run_until_idle(&mut bob, 16).expect("delivery");
    assert_eq!((report.answered, report.expired), (0, 1));

    let reply = cmd(&mut alice, "request:nobody:100:x");
    assert!(reply.starts_with("not-found:"), "{reply}");
    let reply = cmd(&mut alice, "request:carol:100:x");
    assert!(reply.starts_with("denied:"), "{reply}");
    assert!(reply.contains("msg:request:carol"), "{reply}");
}

/// 10 components in a ring, each publishing 10,000 numbered messages to
/// the next (100,000 in all), in rounds of 500 per publisher (within the
/// default per-publisher share of 512) drained by `run_until_idle`. Each
/// receiver checks that every source's numbers arrive as 0, 1, 2, ...:
/// with exactly 10,000 received, none was lost or duplicated.
#[test]
fn load_ten_components_exchange_100_000_messages() {
    const N: usize = 10;
    const ROUNDS: usize = 20;
    const BATCH: usize = 500;
    let mut policy = String::new();
    for i in 0..N {
        policy.push_str(&format!(
            "[components.c{i}]\ngrants = [\"msg:publish:load.*\", \
             \"msg:subscribe:load.c{i}\"]\nsubscribe = [\"load.c{i}\"]\n"
        ));
    }
    let rt = runtime(&policy);
    let loading = Instant::now();
    // Compiling dominates in debug builds: compile on every core.
    let mut instances: Vec<Instance> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let rt = &rt;
                scope.spawn(move || {
                    let subscribe = format!("msg:subscribe:load.c{i}");
                    rt.load(&messenger(
                        &format!("c{i}"),
                        &["msg:publish:load.*", &subscribe],
                    ))
                    .expect("load")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("load thread"))
            .collect::<Vec<_>>()
    })
    .iter()
    .map(|loaded| loaded.instantiate().expect("instantiate"))
    .collect();
    eprintln!("10 components loaded in {:?}", loading.elapsed());
    let began = Instant::now();
    let mut delivered = 0;
    for round in 0..ROUNDS {
        for (i, instance) in instances.iter_mut().enumerate() {
            let to = (i + 1) % N;
            let command = format!("flood:load.c{to}:{}:{BATCH}", round * BATCH);
            assert_eq!(cmd(instance, &command), format!("sent {BATCH}"));
        }
        delivered += rt
            .run_until_idle(&mut instances, 64)
            .expect("delivery")
            .delivered;
    }
    let elapsed = began.elapsed();
    let mut total = 0;
    for instance in &mut instances {
        let per = ROUNDS * BATCH;
        assert_eq!(
            cmd(instance, "stats"),
            format!("count={per} anomalies=0 refused=0")
        );
        total += per;
    }
    assert_eq!(total, 100_000);
    assert_eq!(delivered, 100_000);
    eprintln!("100,000 messages published and delivered in {elapsed:?}");
}

const FAN_OUT: &str = r#"
[components.alice]
grants = ["msg:publish:orders.*"]
[components.slow]
grants = ["msg:subscribe:orders.*"]
subscribe = ["orders.*"]
[components.fast]
grants = ["msg:subscribe:orders.*"]
subscribe = ["orders.*"]
[components.dlq]
grants = ["msg:subscribe:airssys.dead-letter.slow"]
subscribe = ["airssys.dead-letter.slow"]
"#;

/// Delivery is per subscriber: once `slow`'s mailbox is full, what `fast`
/// still takes is published (and `slow`'s copy dead-lettered) instead of
/// being refused for everyone. Only when no subscriber takes a message is
/// the publisher refused, naming each subscriber's bound.
#[test]
fn a_full_mailbox_does_not_fail_the_publish_for_other_subscribers() {
    let config = BrokerConfig {
        queue_capacity: 10,
        per_publisher_share: 10,
        ..BrokerConfig::default()
    };
    let rt = runtime_with(FAN_OUT, config);
    let mut alice = start(&rt, "alice", &["msg:publish:orders.*"]);
    let mut slow = [start(&rt, "slow", &["msg:subscribe:orders.*"])];
    let mut fast = [start(&rt, "fast", &["msg:subscribe:orders.*"])];
    let mut dlq = [start(
        &rt,
        "dlq",
        &["msg:subscribe:airssys.dead-letter.slow"],
    )];
    // Neither consumes yet: the 11th message is taken by nobody.
    let reply = cmd(&mut alice, "flood:orders.a:0:15");
    assert!(reply.starts_with("sent 10; quota-exceeded:"), "{reply}");
    for bound in ["`slow` is full", "`fast` is full", "`queue_capacity`"] {
        assert!(reply.contains(bound), "{reply}");
    }
    // `fast` and `dlq` consume, `slow` does not: publishing goes on, and
    // `slow` keeps what fitted while the rest goes to its dead letters.
    let mut dead = 0;
    for round in 1..3 {
        let delivered = rt.run_until_idle(&mut fast, 64).expect("fast").delivered;
        assert_eq!(delivered, 10);
        let command = format!("flood:orders.a:{}:10", round * 10);
        assert_eq!(cmd(&mut alice, &command), "sent 10");
        dead += rt.run_until_idle(&mut dlq, 64).expect("dlq").delivered;
    }
    rt.run_until_idle(&mut fast, 64).expect("fast");
    assert_eq!(cmd(&mut fast[0], "stats"), "count=30 anomalies=0 refused=0");
    assert_eq!(rt.broker().pending("slow"), 10);
    rt.run_until_idle(&mut slow, 64).expect("slow");
    assert_eq!(cmd(&mut slow[0], "stats"), "count=10 anomalies=0 refused=0");
    assert_eq!(dead, 20);
    let log = cmd(&mut dlq[0], "log");
    assert!(
        log.starts_with("airssys.dead-letter.slow|alice|seq:10\n"),
        "{log}"
    );
}

const BIG: &str = r#"
[components.alice]
grants = ["msg:publish:big.*"]
[components.bob]
grants = ["msg:subscribe:big.*"]
subscribe = ["big.*"]
limits = { memory_bytes = 4194304 }
[components.dlq]
grants = ["msg:subscribe:airssys.dead-letter.bob"]
subscribe = ["airssys.dead-letter.bob"]
"#;

/// 3 MiB for a subscriber with 4 MiB of memory: every instance would hit
/// its memory limit lowering it. It is dead-lettered when published, so
/// no instance is tried (before: three fresh instances trapped on it).
#[test]
fn a_message_larger_than_the_subscribers_memory_allows_is_dead_lettered_at_once() {
    let config = BrokerConfig {
        max_payload_bytes: 8 << 20,
        ..BrokerConfig::default()
    };
    let rt = runtime_with(BIG, config);
    let mut alice = start(&rt, "alice", &["msg:publish:big.*"]);
    let mut bob = [start(&rt, "bob", &["msg:subscribe:big.*"])];
    let mut dlq = [start(
        &rt,
        "dlq",
        &["msg:subscribe:airssys.dead-letter.bob"],
    )];
    let reply = cmd(&mut alice, "publish-big:big.x:3145728");
    assert!(reply.starts_with("invalid-input:"), "{reply}");
    assert!(reply.contains("`limits.memory_bytes`"), "{reply}");
    assert!(reply.contains("dead-letter"), "{reply}");
    assert_eq!(rt.broker().pending("bob"), 0);
    let report = rt.run_until_idle(&mut bob, 16).expect("no trap");
    assert!(report.is_empty(), "{report:?}");
    assert_eq!(rt.run_until_idle(&mut dlq, 16).expect("dlq").delivered, 1);
    let log = cmd(&mut dlq[0], "log");
    assert!(
        log.starts_with("airssys.dead-letter.bob|alice|xxxx"),
        "{log}"
    );
    // A message that fits still arrives, on the same instance.
    assert_eq!(cmd(&mut alice, "publish-big:big.x:1000"), "ok");
    assert_eq!(rt.run_until_idle(&mut bob, 16).expect("bob").delivered, 1);
}

/// A broker that does not know the subscriber's bound (a custom backend):
/// the dispatcher dead-letters the message without calling the handler.
#[derive(Debug)]
struct Unbounded(InProcessBroker);

impl Broker for Unbounded {
    fn register(&self, component: &str, subscriber: Subscriber) {
        let unbounded = Subscriber::new(subscriber.subscriptions, subscriber.grants);
        self.0.register(component, unbounded);
    }
    fn unregister(&self, component: &str) -> usize {
        self.0.unregister(component)
    }
    fn set_running(&self, component: &str, running: bool) {
        self.0.set_running(component, running);
    }
    fn publish(&self, source: &str, topic: &str, payload: Vec<u8>) -> Result<usize, BrokerError> {
        self.0.publish(source, topic, payload)
    }
    fn request(
        &self,
        source: &str,
        target: &str,
        payload: Vec<u8>,
        reply: Arc<ReplySlot>,
    ) -> Result<(), BrokerError> {
        self.0.request(source, target, payload, reply)
    }
    fn take(&self, component: &str) -> Option<Delivery> {
        self.0.take(component)
    }
    fn requeue_front(&self, component: &str, delivery: Delivery) {
        self.0.requeue_front(component, delivery);
    }
    fn pending(&self, component: &str) -> usize {
        self.0.pending(component)
    }
    fn config(&self) -> BrokerConfig {
        self.0.config()
    }
}

#[test]
fn the_dispatcher_dead_letters_a_message_too_large_without_calling_the_handler() {
    let broker = Unbounded(InProcessBroker::new(BrokerConfig {
        max_payload_bytes: 8 << 20,
        ..BrokerConfig::default()
    }));
    let rt = Runtime::builder()
        .policy(Policy::from_toml_str(BIG).expect("valid policy"))
        .broker(Arc::new(broker))
        .build()
        .expect("runtime builds");
    let mut alice = start(&rt, "alice", &["msg:publish:big.*"]);
    let mut bob = [start(&rt, "bob", &["msg:subscribe:big.*"])];
    let mut dlq = [start(
        &rt,
        "dlq",
        &["msg:subscribe:airssys.dead-letter.bob"],
    )];
    assert_eq!(cmd(&mut alice, "publish-big:big.x:3145728"), "ok");
    assert_eq!(rt.broker().pending("bob"), 1);
    let report = rt.run_until_idle(&mut bob, 16).expect("no trap");
    assert_eq!(
        (report.delivered, report.failed, report.dead_lettered),
        (0, 0, 1)
    );
    assert_eq!(cmd(&mut bob[0], "stats"), "count=0 anomalies=0 refused=0");
    assert_eq!(rt.run_until_idle(&mut dlq, 16).expect("dlq").delivered, 1);
}
