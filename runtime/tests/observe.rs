//! The embedder's observation hooks: typed audit records
//! (`RuntimeBuilder::on_audit`) with the deciding rule, its pattern and
//! policy line, next to the unchanged JSON lines; and delivery records
//! (`RuntimeBuilder::on_delivery`) saying what became of every mailbox
//! entry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use airssys_runtime::{
    AuditLog, AuditRecord, DecidingRule, DeliveryKind, DeliveryOutcome, Policy, Runtime,
};
use support::{Sink, ask, cmd, start};

/// Line 2 grants, line 3 denies (the records name these lines).
const PROBE_POLICY: &str = "[components.probe]
grants = [\"kv:read:data/*\", \"kv:write:data/*\", \"kv:delete:data/*\", \"kv:list:data\", \"kv:write:lifecycle/*\", \"log:write:info\", \"env:read:APP_*\"]
denies = [\"kv:read:data/secret\"]
";

/// An audit record, owned, as a test compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    component: String,
    capability: String,
    resource: String,
    allowed: bool,
    kind: &'static str,
    pattern: Option<String>,
    line: Option<u32>,
}

#[test]
fn audit_hooks_get_each_decision_with_its_rule_pattern_and_line() {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let sink = Sink::default();
    let rt = {
        let seen = Arc::clone(&seen);
        Runtime::builder()
            .policy(Policy::from_toml_str(PROBE_POLICY).expect("policy"))
            .audit(AuditLog::to_writer(sink.clone()))
            .on_audit(move |record| {
                let AuditRecord::Decision(d) = record else {
                    return;
                };
                let kind = match d.rule {
                    DecidingRule::Grant(_) => "grant",
                    DecidingRule::DenyRule(_) => "deny rule",
                    DecidingRule::NoGrant => "no grant",
                    _ => "other",
                };
                seen.lock().unwrap().push(Seen {
                    component: d.component.to_owned(),
                    capability: format!("{}:{}", d.domain, d.action),
                    resource: d.resource.to_owned(),
                    allowed: d.is_allowed(),
                    kind,
                    pattern: d.rule.pattern().map(ToString::to_string),
                    line: d.origin.map(|o| o.line),
                });
            })
            .max_instances(4)
            .build()
            .expect("runtime")
    };
    let mut p = support::instance(&rt, "probe");
    ask(&mut p, "set:data/a=1");
    ask(&mut p, "get:data/secret");
    ask(&mut p, "set:other/a=1");

    let seen = seen.lock().unwrap().clone();
    let on = |resource: &str| {
        seen.iter()
            .find(|s| s.resource == resource)
            .unwrap_or_else(|| panic!("a record of `{resource}` in {seen:#?}"))
            .clone()
    };
    let probe = || "probe".to_owned();
    assert_eq!(
        on("data/a"),
        Seen {
            component: probe(),
            capability: "kv:write".into(),
            resource: "data/a".into(),
            allowed: true,
            kind: "grant",
            pattern: Some("kv:write:data/*".into()),
            line: Some(2),
        }
    );
    assert_eq!(
        on("data/secret"),
        Seen {
            component: probe(),
            capability: "kv:read".into(),
            resource: "data/secret".into(),
            allowed: false,
            kind: "deny rule",
            pattern: Some("kv:read:data/secret".into()),
            line: Some(3),
        }
    );
    assert_eq!(
        on("other/a"),
        Seen {
            component: probe(),
            capability: "kv:write".into(),
            resource: "other/a".into(),
            allowed: false,
            kind: "no grant",
            pattern: None,
            line: None,
        }
    );

    // The JSON lines are another consumer of the same decisions, as before.
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).expect("UTF-8");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), seen.len(), "{text}");
    let secret = lines
        .iter()
        .find(|l| l["resource"] == "data/secret")
        .expect("the deny line");
    assert_eq!(secret["verdict"], "deny");
    assert_eq!(secret["rule"], "denied by deny rule `kv:read:data/secret`");
}

/// A delivery record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Delivered {
    to: String,
    from: String,
    topic: Option<String>,
    attempt: u32,
    outcome: String,
}

const PAIR: &str = r#"
[components.alice]
grants = ["msg:publish:orders.*", "msg:request:bob"]

[components.bob]
grants = ["msg:subscribe:orders.*"]
subscribe = ["orders.*"]
"#;

#[test]
fn delivery_hooks_see_what_became_of_each_entry() {
    let seen: Arc<Mutex<Vec<Delivered>>> = Arc::default();
    let rt = {
        let seen = Arc::clone(&seen);
        Runtime::builder()
            .policy(Policy::from_toml_str(PAIR).expect("policy"))
            .on_delivery(move |record| {
                let topic = match record.kind {
                    DeliveryKind::Message { topic } => Some(topic.to_owned()),
                    _ => None,
                };
                let outcome = match record.outcome {
                    DeliveryOutcome::Delivered => "delivered".to_owned(),
                    DeliveryOutcome::Retried(why) => format!("retried: {why}"),
                    DeliveryOutcome::DeadLettered(why) => format!("dead-lettered: {why}"),
                    DeliveryOutcome::Answered(bytes) => {
                        format!("answered: {}", String::from_utf8_lossy(bytes))
                    }
                    DeliveryOutcome::Refused(error) => format!("refused: {error}"),
                    DeliveryOutcome::Expired => "expired".to_owned(),
                    other => format!("{other:?}"),
                };
                seen.lock().unwrap().push(Delivered {
                    to: record.component.to_owned(),
                    from: record.source.to_owned(),
                    topic,
                    attempt: record.attempt,
                    outcome,
                });
            })
            .build()
            .expect("runtime")
    };
    let mut alice = start(&rt, "alice", &["msg:publish:orders.*", "msg:request:bob"]);
    let mut bob = [start(&rt, "bob", &["msg:subscribe:orders.*"])];
    let record = |topic: Option<&str>, attempt, outcome: &str| Delivered {
        to: "bob".into(),
        from: "alice".into(),
        topic: topic.map(str::to_owned),
        attempt,
        outcome: outcome.into(),
    };

    // Refused once, then handled.
    assert_eq!(cmd(&mut bob[0], "fail:1"), "ok");
    assert_eq!(cmd(&mut alice, "publish:orders.created:hello"), "ok");
    rt.run_until_idle(&mut bob, 16).expect("delivery");
    // Answered.
    assert_eq!(cmd(&mut alice, "request:bob:60000:hi"), "ok");
    rt.run_until_idle(&mut bob, 16).expect("delivery");
    // Expired before delivery.
    assert_eq!(cmd(&mut alice, "request:bob:1:late"), "ok");
    std::thread::sleep(std::time::Duration::from_millis(20));
    rt.run_until_idle(&mut bob, 16).expect("delivery");

    assert_eq!(
        *seen.lock().unwrap(),
        [
            record(
                Some("orders.created"),
                1,
                "retried: handler error: told to fail"
            ),
            record(Some("orders.created"), 2, "delivered"),
            record(None, 1, "answered: bob got `hi` from alice"),
            record(None, 1, "expired"),
        ]
    );
}

/// A registration narrowing `bob`'s grant while a dispatcher pass is
/// under way (here: from the delivery hook, right after the first of two
/// queued messages) is in force for the rest of the pass: the second
/// message, on a topic the new grant refuses, is never delivered.
#[test]
fn a_grant_narrowed_during_a_pass_stops_the_rest_of_it() {
    use airssys_runtime::broker::Subscriber;
    use airssys_runtime::contract::capability::{Capability, GrantSet};

    let broker = Arc::new(airssys_runtime::InProcessBroker::new(Default::default()));
    let delivered: Arc<Mutex<Vec<String>>> = Arc::default();
    let rt = {
        let (broker, delivered) = (Arc::clone(&broker), Arc::clone(&delivered));
        Runtime::builder()
            .policy(Policy::from_toml_str(PAIR).expect("policy"))
            .broker(broker.clone())
            .on_delivery(move |record| {
                if let (DeliveryKind::Message { topic }, DeliveryOutcome::Delivered) =
                    (record.kind, &record.outcome)
                {
                    delivered.lock().unwrap().push(topic.to_owned());
                    // The operator narrows bob's grant to `orders.keep`.
                    let narrow = GrantSet::builder()
                        .allow(Capability::parse("msg:subscribe:orders.keep").expect("cap"))
                        .build();
                    let subscriptions =
                        vec![Capability::parse("msg:subscribe:orders.*").expect("cap")];
                    use airssys_runtime::Broker as _;
                    broker.register("bob", Subscriber::new(subscriptions, narrow));
                }
            })
            .build()
            .expect("runtime")
    };
    let mut alice = start(&rt, "alice", &["msg:publish:orders.*", "msg:request:bob"]);
    let mut bob = [start(&rt, "bob", &["msg:subscribe:orders.*"])];
    assert_eq!(cmd(&mut alice, "publish:orders.first:1"), "ok");
    assert_eq!(cmd(&mut alice, "publish:orders.second:2"), "ok");
    rt.run_until_idle(&mut bob, 16).expect("delivery");
    assert_eq!(*delivered.lock().unwrap(), ["orders.first"]);
}
