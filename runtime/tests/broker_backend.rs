//! A second [`Broker`] backend written outside the crate, with nothing but
//! the public seam: it keeps its own mailboxes, tells subscribers of mail
//! through the [`Notifier`] their [`Subscriber`] carries, and never fills
//! a reply itself (the runtime's dispatcher does, through the slot the
//! requester made). Publish/subscribe and request/reply work end to end
//! with the `messenger` fixture, with no wake-up of the runtime's called
//! by the backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use airssys_runtime::broker::{
    BrokerError, Delivery, Envelope, Notifier, ReplyOutcome, ReplySlot, Subscriber,
};
use airssys_runtime::contract::capability::Capability;
use airssys_runtime::{Broker, BrokerConfig, Policy, Runtime};
use support::{cmd, start};

/// The simplest backend: one unbounded FIFO per component, subscribers
/// matched by their `msg:subscribe` patterns.
#[derive(Debug, Default)]
struct PlainBroker {
    inner: Mutex<Plain>,
}

#[derive(Debug, Default)]
struct Plain {
    subscribers: HashMap<String, Subscriber>,
    running: HashMap<String, bool>,
    mailboxes: HashMap<String, VecDeque<Delivery>>,
}

impl Plain {
    /// Queues `delivery` for `component` and tells its notifier.
    fn push(&mut self, component: &str, delivery: Delivery, front: bool) {
        let mailbox = self.mailboxes.entry(component.to_owned()).or_default();
        if front {
            mailbox.push_front(delivery);
        } else {
            mailbox.push_back(delivery);
        }
        if let Some(subscriber) = self.subscribers.get(component) {
            subscriber.notifier.notify();
        }
    }
}

impl PlainBroker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Plain> {
        self.inner.lock().unwrap()
    }
}

impl Broker for PlainBroker {
    fn register(&self, component: &str, subscriber: Subscriber) {
        self.lock()
            .subscribers
            .insert(component.to_owned(), subscriber);
    }

    fn unregister(&self, component: &str) -> usize {
        let mut plain = self.lock();
        plain.subscribers.remove(component);
        let dropped = plain.mailboxes.remove(component).unwrap_or_default();
        for delivery in &dropped {
            if let Delivery::Request { reply, .. } = delivery {
                reply.fill(ReplyOutcome::Remote(format!("`{component}` was unloaded")));
            }
        }
        dropped.len()
    }

    fn set_running(&self, component: &str, running: bool) {
        self.lock().running.insert(component.to_owned(), running);
    }

    fn publish(&self, source: &str, topic: &str, payload: Vec<u8>) -> Result<usize, BrokerError> {
        let wanted = Capability::parse(&format!("msg:subscribe:{topic}"))
            .map_err(|e| BrokerError::InvalidInput(e.to_string()))?;
        let envelope = Envelope {
            topic: topic.into(),
            source: source.into(),
            payload: payload.into(),
        };
        let mut plain = self.lock();
        let receivers: Vec<String> = plain
            .subscribers
            .iter()
            .filter(|(_, s)| s.subscriptions.iter().any(|p| wanted.is_subset_of(p)))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &receivers {
            let delivery = Delivery::Message {
                envelope: envelope.clone(),
                attempts: 0,
            };
            plain.push(name, delivery, false);
        }
        Ok(receivers.len())
    }

    fn request(
        &self,
        source: &str,
        target: &str,
        payload: Vec<u8>,
        reply: Arc<ReplySlot>,
    ) -> Result<(), BrokerError> {
        let mut plain = self.lock();
        if plain.running.get(target) != Some(&true) {
            return Err(BrokerError::NotFound(format!("`{target}` is not running")));
        }
        let delivery = Delivery::Request {
            source: source.into(),
            payload,
            reply,
        };
        plain.push(target, delivery, false);
        Ok(())
    }

    fn take(&self, component: &str) -> Option<Delivery> {
        self.lock().mailboxes.get_mut(component)?.pop_front()
    }

    fn requeue_front(&self, component: &str, delivery: Delivery) {
        self.lock().push(component, delivery, true);
    }

    fn pending(&self, component: &str) -> usize {
        self.lock()
            .mailboxes
            .get(component)
            .map_or(0, VecDeque::len)
    }

    fn config(&self) -> BrokerConfig {
        BrokerConfig::default()
    }
}

const PAIR: &str = r#"
[components.alice]
grants = ["msg:publish:orders.*", "msg:request:bob"]

[components.bob]
grants = ["msg:subscribe:orders.*"]
subscribe = ["orders.*"]
"#;

fn runtime() -> Runtime {
    Runtime::builder()
        .policy(Policy::from_toml_str(PAIR).expect("valid policy"))
        .broker(Arc::new(PlainBroker::default()))
        .build()
        .expect("runtime builds")
}

#[test]
fn a_backend_outside_the_crate_carries_publish_and_subscribe() {
    let rt = runtime();
    let mut alice = start(&rt, "alice", &["msg:publish:orders.*"]);
    let bob = rt
        .load(&support::fixture_as(
            "messenger",
            "bob",
            &["msg:subscribe:orders.*"],
        ))
        .expect("load bob");
    let mail: &Arc<Notifier> = bob.mailbox_notifier();
    let seen = mail.generation();
    let mut bob = [bob.instantiate().expect("instantiate bob")];

    assert_eq!(cmd(&mut alice, "publish:orders.created:hello"), "ok");
    assert_ne!(
        mail.generation(),
        seen,
        "the backend told bob's mailbox notifier, which the runtime handed it"
    );
    let report = rt.run_until_idle(&mut bob, 16).expect("delivery");
    assert_eq!(report.delivered, 1);
    assert_eq!(cmd(&mut bob[0], "log"), "orders.created|alice|hello");
    assert_eq!(rt.broker().pending("bob"), 0);
}

#[test]
fn a_backend_outside_the_crate_carries_request_and_reply() {
    let rt = runtime();
    let mut alice = start(&rt, "alice", &["msg:request:bob"]);
    let mut bob = [start(&rt, "bob", &["msg:subscribe:orders.*"])];

    assert_eq!(cmd(&mut alice, "request:bob:60000:hi"), "ok");
    assert_eq!(cmd(&mut alice, "reply"), "pending");
    let report = rt.run_until_idle(&mut bob, 16).expect("delivery");
    assert_eq!(report.answered, 1);
    assert_eq!(cmd(&mut alice, "reply"), "reply: bob got `hi` from alice");

    // The handler's error travels back the same way.
    assert_eq!(cmd(&mut alice, "request:bob:60000:refuse"), "ok");
    rt.run_until_idle(&mut bob, 16).expect("delivery");
    let reply = cmd(&mut alice, "reply");
    assert!(reply.starts_with("remote: denied:"), "{reply}");
}

#[test]
fn a_reply_wakes_only_the_notifier_its_requester_handed_in() {
    // What the runtime relies on when a backend (or the dispatcher) fills
    // a slot: the requester's notifier, and nothing process-wide.
    let requester = Arc::new(Notifier::new());
    let bystander = Arc::new(Notifier::new());
    let slot = ReplySlot::new(std::time::Duration::from_secs(60), Arc::clone(&requester));
    let (before, other) = (requester.generation(), bystander.generation());
    let waiter = {
        let requester = Arc::clone(&requester);
        std::thread::spawn(move || {
            requester.wait(
                before,
                std::time::Instant::now() + std::time::Duration::from_secs(60),
            )
        })
    };
    assert!(slot.fill(ReplyOutcome::Reply(b"done".to_vec())));
    assert!(waiter.join().expect("waiter"), "woken by the fill");
    assert_eq!(bystander.generation(), other);
}
