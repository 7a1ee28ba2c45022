//! Operations the NATS server refused under this host's permissions.
//!
//! A server whose `permissions` do not let the host's NATS user publish on
//! a subject (or subscribe to one) drops the operation and answers, some
//! time later, `-ERR 'Permissions Violation for Publish to "<subject>"'`
//! (`... for Subscription to "<subject>"`): it names only the subject.
//! async-nats hands that text to the connection's event callback
//! (`Event::ServerError`), not to the operation. An operation that waits
//! for an answer (a request, a JetStream publish waiting for its
//! acknowledgement) registers the subjects it uses here
//! ([`Refusals::watch`]); the event callback reports each server error
//! ([`Refusals::server_error`]), and a refusal naming a watched subject
//! wakes the oldest operation watching it, which fails at once naming the
//! subject instead of waiting out its time. One refusal wakes one
//! operation: several requests on one subject are each refused by the
//! server, each with its own error.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

/// What the server refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Violation {
    /// A publish (a message, a request, an answer) on the subject.
    Publish,
    /// A subscription to the subject.
    Subscribe,
}

/// A refusal of the server: what, on which subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    /// Publish or subscribe.
    pub(super) violation: Violation,
    /// The subject, as the server named it.
    pub(super) subject: String,
}

impl Refusal {
    /// The error text of an operation this refusal ended: `what` the
    /// operation was (`request for component `bob``), the subject, that the
    /// server's permissions refused it and how to change them.
    pub(super) fn text(&self, what: &str) -> String {
        let subject = &self.subject;
        match self.violation {
            Violation::Publish => format!(
                "the NATS server refused this host's {what}: its permissions for this host's \
                 NATS user do not allow publishing on `{subject}` (the server said \
                 `Permissions Violation for Publish to \"{subject}\"`). This is the operator's \
                 NATS server configuration, not the component's grants: add `{subject}` to \
                 the user's `permissions.publish.allow` (and out of its `deny`; \
                 docs/distributed.md, \"NATS permissions per host\") if this host should \
                 send it"
            ),
            Violation::Subscribe => format!(
                "the NATS server refused this host's {what}: its permissions for this host's \
                 NATS user do not allow subscribing to `{subject}`, where the answer would \
                 come (the server said `Permissions Violation for Subscription to \
                 \"{subject}\"`). This is the operator's NATS server configuration: let the \
                 user subscribe to its inbox prefix (`<inbox prefix>.>`, \
                 `--nats-inbox-prefix`, `[nats] inbox_prefix`; docs/distributed.md, \"NATS \
                 permissions per host\")"
            ),
        }
    }
}

/// What a server error's text says was refused: `Permissions Violation
/// for Publish to "<subject>"` or `... for Subscription to "<subject>"`
/// (optionally followed by ` using queue "<group>"`), the subject quoted
/// as Go's `%q` writes it. `None` for any other error (and for the
/// server's `..., too many tokens` form, which names no subject to match).
pub(super) fn parse(text: &str) -> Option<Refusal> {
    let rest = text.trim().strip_prefix("Permissions Violation for ")?;
    let (violation, quoted) = if let Some(quoted) = rest.strip_prefix("Publish to ") {
        (Violation::Publish, quoted)
    } else if let Some(quoted) = rest.strip_prefix("Subscription to ") {
        (Violation::Subscribe, quoted)
    } else {
        return None;
    };
    let (subject, after) = unquote(quoted)?;
    if !(after.is_empty() || after.starts_with(" using queue ")) {
        return None;
    }
    Some(Refusal { violation, subject })
}

/// The string Go's `strconv.Quote` wrote at the start of `text` (a `"`,
/// the string with `\` escapes, a `"`), and what follows it.
fn unquote(text: &str) -> Option<(String, &str)> {
    let mut chars = text.strip_prefix('"')?.char_indices();
    let body = &text[1..];
    let mut out = String::new();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[at + 1..])),
            '\\' => {
                let (_, escape) = chars.next()?;
                let hex = |n: usize, chars: &mut std::str::CharIndices<'_>| {
                    let digits: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                    (digits.len() == n)
                        .then(|| u32::from_str_radix(&digits, 16).ok())
                        .flatten()
                };
                let decoded = match escape {
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\u{b}',
                    '\\' | '"' | '\'' => escape,
                    // A byte that is not UTF-8: no subject of this host's.
                    'x' => char::from_u32(hex(2, &mut chars)?).filter(char::is_ascii)?,
                    'u' => char::from_u32(hex(4, &mut chars)?)?,
                    'U' => char::from_u32(hex(8, &mut chars)?)?,
                    _ => return None,
                };
                out.push(decoded);
            }
            c => out.push(c),
        }
    }
    None
}

/// A watched subject: what the server may refuse on it, and the subject.
type Key = (Violation, String);

/// The operations waiting on subjects, oldest first per subject.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    waiting: Mutex<HashMap<Key, VecDeque<Arc<Waiter>>>>,
    /// The reply subjects of the latest requests this host answers (at
    /// most [`ANSWERS_KEPT`]), with the request's source and target: an
    /// answer the server refuses is reported naming its request.
    answers: Mutex<VecDeque<(String, String, String)>>,
}

/// Requests whose reply subject is kept for a refusal's report.
const ANSWERS_KEPT: usize = 1024;

/// One waiting operation.
#[derive(Debug, Default)]
pub(super) struct Waiter {
    refused: OnceLock<Refusal>,
    woken: tokio::sync::Notify,
}

/// An operation's registration ([`Refusals::watch`]); dropping it takes
/// the operation off the table.
#[derive(Debug)]
pub(super) struct Watch {
    refusals: Arc<Refusals>,
    waiter: Arc<Waiter>,
    keys: Vec<Key>,
}

impl Refusals {
    /// Registers an operation about to use `subjects` (in the order it
    /// uses them, before it does).
    pub(super) fn watch(self: &Arc<Self>, subjects: Vec<Key>) -> Watch {
        let waiter = Arc::new(Waiter::default());
        let mut waiting = crate::sync::lock(&self.waiting);
        for key in &subjects {
            waiting
                .entry(key.clone())
                .or_default()
                .push_back(Arc::clone(&waiter));
        }
        drop(waiting);
        Watch {
            refusals: Arc::clone(self),
            waiter,
            keys: subjects,
        }
    }

    /// A server error's `text`: when it is a permissions violation on a
    /// watched subject, the oldest operation watching it is refused.
    /// Returns the refusal, and whether it ended an operation.
    pub(super) fn server_error(&self, text: &str) -> Option<(Refusal, bool)> {
        let refusal = parse(text)?;
        let key = (refusal.violation, refusal.subject.clone());
        let mut waiting = crate::sync::lock(&self.waiting);
        let mut ended = false;
        if let Some(queue) = waiting.get_mut(&key) {
            // An operation refused on another of its subjects already is
            // passed over (it fails with that refusal).
            while let Some(waiter) = queue.pop_front() {
                if waiter.refused.set(refusal.clone()).is_ok() {
                    waiter.woken.notify_one();
                    ended = true;
                    break;
                }
            }
            if queue.is_empty() {
                waiting.remove(&key);
            }
        }
        drop(waiting);
        if !ended
            && refusal.violation == Violation::Publish
            && let Some((source, target)) = self.answered_on(&refusal.subject)
        {
            tracing::warn!(
                target: "airssys::messaging",
                subject = refusal.subject,
                source,
                component = target,
                "the NATS server refused this host's answer to a request from `{source}` for \
                 `{target}` (on its reply subject `{}`): the requester gets no answer and waits \
                 until its timeout. The server lets a user answer a request on a subject it may \
                 not publish to only under `allow_responses`, at most `max` times (default 1), \
                 and an airssys host answers twice (`accepted`, then the answer): give this \
                 host's NATS user `allow_responses: {{ max: 2, expires: \"1h\" }}` in the \
                 server's configuration, as examples/nats/server.conf does \
                 (docs/distributed.md, \"NATS permissions per host\")",
                refusal.subject
            );
        }
        Some((refusal, ended))
    }

    /// This host is about to answer a request from `source` for `target`
    /// on `reply_to`.
    pub(super) fn answering(&self, reply_to: &str, source: &str, target: &str) {
        let mut answers = crate::sync::lock(&self.answers);
        if answers.len() >= ANSWERS_KEPT {
            answers.pop_front();
        }
        answers.push_back((reply_to.to_owned(), source.to_owned(), target.to_owned()));
    }

    /// The request answered on `subject`, if this host answers it: its
    /// source and target.
    fn answered_on(&self, subject: &str) -> Option<(String, String)> {
        crate::sync::lock(&self.answers)
            .iter()
            .rev()
            .find(|(reply_to, _, _)| reply_to == subject)
            .map(|(_, source, target)| (source.clone(), target.clone()))
    }

    #[cfg(test)]
    fn watched(&self) -> usize {
        crate::sync::lock(&self.waiting)
            .values()
            .map(VecDeque::len)
            .sum()
    }
}

impl Watch {
    /// Waits until the server refuses one of the operation's subjects.
    pub(super) async fn refused(&self) -> Refusal {
        loop {
            if let Some(refusal) = self.waiter.refused.get() {
                return refusal.clone();
            }
            self.waiter.woken.notified().await;
        }
    }

    /// The refusal, if one came.
    #[cfg(test)]
    pub(super) fn get(&self) -> Option<&Refusal> {
        self.waiter.refused.get()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut waiting = crate::sync::lock(&self.refusals.waiting);
        for key in self.keys.drain(..) {
            if let Some(queue) = waiting.get_mut(&key) {
                queue.retain(|w| !Arc::ptr_eq(w, &self.waiter));
                if queue.is_empty() {
                    waiting.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(subject: &str) -> Key {
        (Violation::Publish, subject.to_owned())
    }

    #[test]
    fn the_servers_words_are_read() {
        assert_eq!(
            parse("Permissions Violation for Publish to \"airssys.request.bob.alice\""),
            Some(Refusal {
                violation: Violation::Publish,
                subject: "airssys.request.bob.alice".to_owned()
            })
        );
        assert_eq!(
            parse("Permissions Violation for Subscription to \"_INBOX.x.y\" using queue \"q\""),
            Some(Refusal {
                violation: Violation::Subscribe,
                subject: "_INBOX.x.y".to_owned()
            })
        );
        assert_eq!(
            parse(r#"Permissions Violation for Publish to "a.\"b\\c\u200b.\xe9""#),
            None,
            "a byte that is not UTF-8"
        );
        assert_eq!(
            parse(r#"Permissions Violation for Publish to "a.\"b\\c\u200b.é""#).map(|r| r.subject),
            Some("a.\"b\\c\u{200b}.é".to_owned())
        );
        for other in [
            "Authorization Violation",
            "Permissions Violation for Subscription to \"a.b\", too many tokens",
            "Permissions Violation for Publish to \"a.b",
            "Permissions Violation for Publish to a.b",
            "Permissions Violation for Publish to \"a\\q\"",
            "Maximum Payload Violation",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    /// One refusal ends the oldest operation on its subject, and only
    /// one; other subjects and the other kind are left alone; a dropped
    /// watch leaves the table.
    #[test]
    fn one_refusal_ends_the_oldest_operation_on_its_subject() {
        let refusals = Arc::new(Refusals::default());
        let first = refusals.watch(vec![publish("s.a")]);
        let second = refusals.watch(vec![publish("s.a")]);
        let other = refusals.watch(vec![
            (Violation::Subscribe, "s.a".to_owned()),
            publish("s.b"),
        ]);
        let refused = "Permissions Violation for Publish to \"s.a\"";
        assert!(
            refusals
                .server_error(refused)
                .is_some_and(|(_, ended)| ended)
        );
        assert!(first.get().is_some() && second.get().is_none() && other.get().is_none());
        assert!(
            refusals
                .server_error(refused)
                .is_some_and(|(_, ended)| ended)
        );
        assert!(second.get().is_some() && other.get().is_none());
        assert!(
            refusals
                .server_error(refused)
                .is_some_and(|(_, ended)| !ended)
        );
        assert!(refusals.server_error("Authorization Violation").is_none());
        let subscribe = "Permissions Violation for Subscription to \"s.a\"";
        assert!(
            refusals
                .server_error(subscribe)
                .is_some_and(|(_, ended)| ended)
        );
        // Refused already: a refusal of its other subject passes it over.
        assert!(
            refusals
                .server_error("Permissions Violation for Publish to \"s.b\"")
                .is_some_and(|(_, ended)| !ended)
        );
        assert_eq!(other.get().map(|r| r.violation), Some(Violation::Subscribe));
        drop((first, second, other));
        assert_eq!(refusals.watched(), 0);
        let left = refusals.watch(vec![publish("s.c")]);
        drop(left);
        assert_eq!(refusals.watched(), 0);
    }
}
