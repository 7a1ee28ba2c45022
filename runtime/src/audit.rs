//! The audit trail: every capability decision of a guarded host call.
//!
//! Each decision is a `tracing` event with target `airssys::audit` and the
//! fields `component`, `function`, `capability` (`domain:action`),
//! `resource`, `verdict` and `rule`; allowed calls are logged at `TRACE`,
//! refusals at `WARN`. An optional sink also writes each decision as one
//! JSON object per line, and every hook registered with
//! [`RuntimeBuilder::on_audit`](crate::RuntimeBuilder::on_audit) gets it as
//! a typed [`AuditRecord`]: the component, the host function, the request
//! (domain, action, resource), the deciding rule with its pattern
//! ([`DecidingRule`]) and, where the policy was read from TOML, the line
//! of that rule.
//!
//! What a component controls is bounded:
//!
//! - a resource longer than [`MAX_RESOURCE`] bytes is cut there, with
//!   `…(N bytes)` appended;
//! - records of refusals are rate limited per component
//!   (`limits.audit_denials_per_second`): beyond it the refusal still
//!   happens but is not recorded, and the drops are said once per window
//!   and at the end of each call into the component — a `warn` event
//!   with fields `component`, `dropped` and `limit`, in the sink a line
//!   `{"time_ms":..,"component":..,"dropped":N,"limit":"limits.audit_denials_per_second"}`,
//!   and to the hooks an [`AuditRecord::RateLimited`].

use std::collections::HashMap;
use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use airssys_contract::capability::{Action, Capability, Domain};

use crate::error::BuildError;
use crate::policy::{DEFAULT_AUDIT_DENIALS_PER_SECOND, RuleOrigin};
use crate::rate::RateWindow;
use crate::sync::lock;

/// Longest resource written to an audit record, in bytes.
pub(crate) const MAX_RESOURCE: usize = 256;

/// Where audit records go besides `tracing`.
#[derive(Default)]
pub struct AuditLog {
    sink: Option<Sink>,
    /// The embedder's hooks ([`RuntimeBuilder::on_audit`](crate::RuntimeBuilder::on_audit)).
    hooks: Vec<AuditHook>,
    /// Whether `sink` or `hooks` take records (kept in step with both):
    /// the guards' allow path reads this field instead of calling.
    listens: bool,
    /// Per component: its quota of refusal records and their window.
    denials: Mutex<HashMap<String, Arc<DenialQuota>>>,
    /// Refusal records dropped and not said yet, all components together
    /// (wrapping: a drop may be said an instant before it is added): while
    /// it is 0, the end of a call has nothing to say and skips the lookup
    /// of its component's quota ([`AuditLog::report_dropped`]).
    unsaid: AtomicU64,
}

/// Where the JSON lines go.
enum Sink {
    /// Written under a lock, on the thread that decided.
    Writer(Mutex<Box<dyn Write + Send>>),
    /// Handed over with their kind ([`AuditLog::to_lines`]).
    Lines(Box<LineSink>),
}

/// A [`AuditLog::to_lines`] sink: what a line records, the component it
/// is of, the line.
type LineSink = dyn Fn(AuditLineKind, &str, String) + Send + Sync;

/// What one JSON line of the audit sink records, for a sink that treats
/// them apart ([`AuditLog::to_lines`]): a bounded queue may keep room for
/// refusals that allowed calls cannot take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditLineKind {
    /// The decision of an allowed call.
    Allowed,
    /// The decision of a refused call.
    Refused,
    /// Anything else: refusals a component's
    /// `limits.audit_denials_per_second` kept out, policy reloads.
    Other,
}

/// A hook registered with
/// [`RuntimeBuilder::on_audit`](crate::RuntimeBuilder::on_audit).
pub(crate) type AuditHook = Box<dyn Fn(&AuditRecord<'_>) + Send + Sync>;

/// The refusal records of one component.
#[derive(Debug)]
struct DenialQuota {
    per_second: u64,
    window: RateWindow<1>,
}

/// The policy key of the quota.
const DENIALS_KEY: &str = "limits.audit_denials_per_second";

/// A drop summary, as written to the JSON-lines sink.
#[derive(serde::Serialize)]
struct DroppedRecord<'a> {
    time_ms: u128,
    component: &'a str,
    dropped: u64,
    limit: &'a str,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("sink", &self.sink.is_some())
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

/// A policy reload's change to one component, as written to the
/// JSON-lines sink.
#[derive(serde::Serialize)]
struct ReloadLine<'a> {
    time_ms: u128,
    component: &'a str,
    event: &'a str,
    gained: &'a [String],
    lost: &'a [String],
    stopped: Option<&'a str>,
}

/// One decision, as written to the JSON-lines sink.
#[derive(serde::Serialize)]
struct DecisionLine<'a> {
    time_ms: u128,
    component: &'a str,
    function: &'a str,
    /// `domain:action`.
    capability: &'a str,
    resource: &'a str,
    /// `allow` or `deny`.
    verdict: &'a str,
    /// The deciding rule, in words.
    rule: &'a str,
}

/// What the runtime hands an audit hook
/// ([`RuntimeBuilder::on_audit`](crate::RuntimeBuilder::on_audit)): one
/// decision of a guarded host call, or how many refusals went unrecorded.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum AuditRecord<'a> {
    /// A guard decided a host call.
    Decision(AuditDecision<'a>),
    /// Refusals of a component were not recorded: it reached its
    /// `limits.audit_denials_per_second`. The calls were refused all the
    /// same.
    RateLimited(DroppedDenials<'a>),
}

/// One capability decision of a guarded host call.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AuditDecision<'a> {
    /// When it was decided.
    pub time: SystemTime,
    /// The calling component.
    pub component: &'a str,
    /// The host function, e.g. `airssys:core/storage@1.0.0#[method]bucket.get`.
    pub function: &'a str,
    /// The request's domain.
    pub domain: Domain,
    /// The request's action.
    pub action: Action,
    /// The request's resource as built from the call (empty when it has
    /// none; possibly invalid, see [`DecidingRule::Invalid`]), cut at 256
    /// bytes with `…(N bytes)` appended, as in the log.
    pub resource: &'a str,
    /// The rule that decided, with its pattern.
    pub rule: DecidingRule<'a>,
    /// Where the deciding grant or deny rule is written in the policy,
    /// when the policy was read from TOML. A grant the manifest narrowed
    /// is credited to the policy grant that contains it.
    pub origin: Option<&'a RuleOrigin>,
}

impl AuditDecision<'_> {
    /// Whether the call was allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self.rule, DecidingRule::Grant(_))
    }
}

/// The rule that decided a host call, with the pattern that matched.
/// `Display` says it in words, as the log's `rule` field does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecidingRule<'a> {
    /// Allowed by this pattern of the component's effective grant.
    Grant(&'a Capability),
    /// Denied by this deny rule of the policy.
    DenyRule(&'a Capability),
    /// Denied: no grant covers the request (deny by default).
    NoGrant,
    /// Denied: the request lies outside this scope, which the host
    /// function itself declares (the grants were not consulted).
    OutsideScope(&'a Capability),
    /// Denied: the request is not valid for its domain (a path with
    /// `..`, say), or a `{self}` handle is unknown.
    Invalid,
    /// Denied by the network service's check of a concrete address (a
    /// name that resolved to a private or special address, an address no
    /// rule allows), in the words of its refusal.
    Address(&'a str),
}

impl DecidingRule<'_> {
    /// The pattern that matched: the grant, the deny rule or the declared
    /// scope.
    pub fn pattern(&self) -> Option<&Capability> {
        match self {
            DecidingRule::Grant(c) | DecidingRule::DenyRule(c) | DecidingRule::OutsideScope(c) => {
                Some(c)
            }
            DecidingRule::NoGrant | DecidingRule::Invalid | DecidingRule::Address(_) => None,
        }
    }
}

impl fmt::Display for DecidingRule<'_> {
    /// The words of `GrantSet::describe` for grants and deny rules, so log
    /// lines read as they always did.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecidingRule::Grant(c) => write!(f, "allowed by grant `{c}`"),
            DecidingRule::DenyRule(c) => write!(f, "denied by deny rule `{c}`"),
            DecidingRule::NoGrant => {
                f.write_str("denied: no grant covers the request (deny by default)")
            }
            DecidingRule::OutsideScope(c) => {
                write!(f, "outside the host function's declared scope `{c}`")
            }
            DecidingRule::Invalid => f.write_str("invalid request or unknown handle"),
            DecidingRule::Address(why) => f.write_str(why),
        }
    }
}

/// Refusals of one component that its `limits.audit_denials_per_second`
/// kept out of the audit trail ([`AuditRecord::RateLimited`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DroppedDenials<'a> {
    /// When it was said.
    pub time: SystemTime,
    /// The component.
    pub component: &'a str,
    /// Refusals not recorded since the last time.
    pub dropped: u64,
    /// The policy key of the limit: `limits.audit_denials_per_second`.
    pub limit: &'static str,
}

/// A guard decision as the host reports it to [`AuditLog::record`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decided<'a> {
    pub(crate) component: &'a str,
    pub(crate) function: &'a str,
    pub(crate) domain: Domain,
    pub(crate) action: Action,
    pub(crate) resource: &'a str,
    pub(crate) rule: DecidingRule<'a>,
    pub(crate) origin: Option<&'a RuleOrigin>,
}

impl AuditLog {
    /// Records only to `tracing`.
    pub fn tracing_only() -> AuditLog {
        AuditLog::default()
    }

    /// Also writes JSON lines to `writer`.
    ///
    /// Each line is written on the thread that decided (a component's
    /// call), under a lock every component shares: a `writer` that blocks
    /// (a FIFO nobody reads, a full pipe, a stalled disk) holds the call,
    /// and every other component's calls that are audited. Where the
    /// writer may block, use [`AuditLog::to_lines`] with a bounded queue.
    pub fn to_writer(writer: impl Write + Send + 'static) -> AuditLog {
        AuditLog::with_sink(Sink::Writer(Mutex::new(Box::new(writer))))
    }

    /// Hands each record to `sink` as one JSON line (without its line
    /// break), with what it records and the component it is of (so a
    /// bounded queue can keep one component's records from crowding out
    /// its neighbours').
    ///
    /// `sink` runs on the thread that decided (a component's call), with
    /// no lock held: it must return at once, e.g. queue the line in a
    /// bounded queue written by a thread of its own and count what does
    /// not fit, as `airssys serve --audit FILE` does. A `sink` that
    /// blocks holds the component's call.
    pub fn to_lines(
        sink: impl Fn(AuditLineKind, &str, String) + Send + Sync + 'static,
    ) -> AuditLog {
        AuditLog::with_sink(Sink::Lines(Box::new(sink)))
    }

    fn with_sink(sink: Sink) -> AuditLog {
        AuditLog {
            sink: Some(sink),
            hooks: Vec::new(),
            listens: true,
            denials: Mutex::default(),
            unsaid: AtomicU64::new(0),
        }
    }

    /// Also appends JSON lines to the file at `path` (created if missing),
    /// as [`AuditLog::to_writer`] writes them: on the calling thread.
    ///
    /// # Errors
    ///
    /// [`BuildError::Audit`] when the file cannot be opened.
    pub fn to_file(path: &Path) -> Result<AuditLog, BuildError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| BuildError::Audit {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(AuditLog::to_writer(file))
    }

    /// Sets the quota of refusal records of `component`.
    pub(crate) fn limit_denials(&self, component: &str, per_second: u64) {
        let mut denials = lock(&self.denials);
        if denials
            .get(component)
            .is_none_or(|q| q.per_second != per_second)
        {
            let quota = Arc::new(DenialQuota {
                per_second,
                window: RateWindow::default(),
            });
            let older = denials.insert(component.to_owned(), quota);
            // Drops of the older quota are not said any more.
            if let Some([dropped]) = older.and_then(|q| q.window.take_dropped()) {
                self.said(dropped);
            }
        }
    }

    /// Forgets the quota of `component` (it was unloaded).
    pub(crate) fn forget(&self, component: &str) {
        let quota = lock(&self.denials).remove(component);
        // Its drops are not said any more: no longer waiting.
        if let Some([dropped]) = quota.and_then(|q| q.window.take_dropped()) {
            self.said(dropped);
        }
    }

    /// `dropped` refusal records were said (or forgotten with their
    /// component).
    fn said(&self, dropped: u64) {
        self.unsaid.fetch_sub(dropped, Ordering::Relaxed);
    }

    fn denial_quota(&self, component: &str) -> Arc<DenialQuota> {
        let mut denials = lock(&self.denials);
        let quota = denials.entry(component.to_owned()).or_insert_with(|| {
            Arc::new(DenialQuota {
                per_second: DEFAULT_AUDIT_DENIALS_PER_SECOND,
                window: RateWindow::default(),
            })
        });
        Arc::clone(quota)
    }

    /// Whether a refusal of `component` may be recorded now.
    fn admit_denial(&self, component: &str) -> bool {
        let quota = self.denial_quota(component);
        let charge = quota.window.charge([quota.per_second], [1]);
        if !charge.admitted {
            self.unsaid.fetch_add(1, Ordering::Relaxed);
        }
        if let Some([dropped]) = charge.ended {
            self.said(dropped);
            self.say_dropped(component, dropped);
        }
        charge.admitted
    }

    /// Says how many refusal records of `component` were dropped since the
    /// last time (at the end of a call into the component).
    pub(crate) fn report_dropped(&self, component: &str) {
        // Drops this thread counted are seen here; one another thread
        // counts at this moment is said at the next call's end, as if it
        // had come just after the lookup.
        if self.unsaid.load(Ordering::Relaxed) == 0 {
            return;
        }
        let quota = {
            let denials = lock(&self.denials);
            denials.get(component).cloned()
        };
        if let Some([dropped]) = quota.and_then(|q| q.window.take_dropped()) {
            self.said(dropped);
            self.say_dropped(component, dropped);
        }
    }

    fn say_dropped(&self, component: &str, dropped: u64) {
        tracing::warn!(
            target: "airssys::audit",
            component,
            dropped,
            limit = DENIALS_KEY,
            "{dropped} audit records of refusals of component `{component}` dropped by \
             {DENIALS_KEY}"
        );
        let time = SystemTime::now();
        if self.sink.is_some() {
            self.write(
                AuditLineKind::Other,
                component,
                &DroppedRecord {
                    time_ms: millis(time),
                    component,
                    dropped,
                    limit: DENIALS_KEY,
                },
            );
        }
        self.call_hooks(&AuditRecord::RateLimited(DroppedDenials {
            time,
            component,
            dropped,
            limit: DENIALS_KEY,
        }));
    }

    /// Adds hooks that get every record.
    pub(crate) fn add_hooks(&mut self, hooks: Vec<AuditHook>) {
        self.hooks.extend(hooks);
        self.listens = self.sink.is_some() || !self.hooks.is_empty();
    }

    fn call_hooks(&self, record: &AuditRecord<'_>) {
        for hook in &self.hooks {
            hook(record);
        }
    }

    fn write(&self, kind: AuditLineKind, component: &str, record: &impl serde::Serialize) {
        match &self.sink {
            None => {}
            Some(Sink::Writer(sink)) => {
                if let Ok(mut line) = serde_json::to_vec(record) {
                    line.push(b'\n');
                    let mut sink = lock(sink);
                    // An audit sink that fails must not fail the call; say
                    // so once per failure in the host's log.
                    if let Err(error) = sink.write_all(&line) {
                        tracing::error!(target: "airssys::audit", %error, "cannot write the audit log");
                    }
                }
            }
            Some(Sink::Lines(sink)) => {
                if let Ok(line) = serde_json::to_string(record) {
                    sink(kind, component, line);
                }
            }
        }
    }

    /// Flushes the JSON-lines sink, if any (a [`AuditLog::to_lines`] sink
    /// flushes itself).
    pub(crate) fn flush(&self) -> std::io::Result<()> {
        match &self.sink {
            Some(Sink::Writer(sink)) => lock(sink).flush(),
            Some(Sink::Lines(_)) | None => Ok(()),
        }
    }

    /// Records that a policy reload changed `component`'s effective
    /// grant: a `tracing` event (target `airssys::audit`, `INFO`, `WARN`
    /// when stopped) and, in the sink, a line
    /// `{"time_ms":..,"component":..,"event":"policy-reload","gained":[..],"lost":[..],"stopped":..}`.
    pub(crate) fn policy_reloaded(
        &self,
        component: &str,
        gained: &[String],
        lost: &[String],
        stopped: Option<&str>,
    ) {
        match stopped {
            Some(reason) => tracing::warn!(
                target: "airssys::audit",
                component,
                event = "policy-reload",
                stopped = reason,
                "policy reload stopped component `{component}`: {reason}"
            ),
            None => tracing::info!(
                target: "airssys::audit",
                component,
                event = "policy-reload",
                gained = %gained.join(", "),
                lost = %lost.join(", "),
                "policy reloaded for component `{component}`"
            ),
        }
        if self.sink.is_some() {
            self.write(
                AuditLineKind::Other,
                component,
                &ReloadLine {
                    time_ms: millis(SystemTime::now()),
                    component,
                    event: "policy-reload",
                    gained,
                    lost,
                    stopped,
                },
            );
        }
    }

    /// Whether a JSON-lines sink is attached.
    pub fn has_sink(&self) -> bool {
        self.sink.is_some()
    }

    /// Whether anyone takes records of allowed calls: a sink, a hook, or
    /// a `tracing` subscriber at `TRACE` for `airssys::audit` (otherwise
    /// the guards skip building them).
    ///
    /// Inlined into the guards' allow path: a field read, then `tracing`'s
    /// global level filter (one atomic load) when nothing else listens.
    #[inline(always)]
    pub(crate) fn records_allowed(&self) -> bool {
        self.listens || tracing::enabled!(target: "airssys::audit", tracing::Level::TRACE)
    }

    /// Records one guard decision.
    pub(crate) fn record(&self, decided: &Decided<'_>) {
        let allowed = matches!(decided.rule, DecidingRule::Grant(_));
        if !allowed && !self.admit_denial(decided.component) {
            return;
        }
        let component = decided.component;
        let function = decided.function;
        let capability = format!("{}:{}", decided.domain, decided.action);
        let capability = capability.as_str();
        let resource = truncated(decided.resource);
        let resource = resource.as_ref();
        let rule = &decided.rule;
        if allowed {
            tracing::trace!(
                target: "airssys::audit",
                component, function, capability, resource,
                verdict = "allow", rule = %rule,
            );
        } else {
            tracing::warn!(
                target: "airssys::audit",
                component, function, capability, resource,
                verdict = "deny", rule = %rule,
            );
        }
        let time = SystemTime::now();
        if self.sink.is_some() {
            let kind = if allowed {
                AuditLineKind::Allowed
            } else {
                AuditLineKind::Refused
            };
            self.write(
                kind,
                component,
                &DecisionLine {
                    time_ms: millis(time),
                    component,
                    function,
                    capability,
                    resource,
                    verdict: if allowed { "allow" } else { "deny" },
                    rule: &rule.to_string(),
                },
            );
        }
        self.call_hooks(&AuditRecord::Decision(AuditDecision {
            time,
            component,
            function,
            domain: decided.domain,
            action: decided.action,
            resource,
            rule: decided.rule,
            origin: decided.origin,
        }));
    }
}

/// Milliseconds since the Unix epoch, as the JSON lines give the time.
fn millis(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// `resource`, cut at [`MAX_RESOURCE`] bytes (on a character boundary)
/// with the full length appended.
fn truncated(resource: &str) -> std::borrow::Cow<'_, str> {
    if resource.len() <= MAX_RESOURCE {
        return resource.into();
    }
    let mut end = MAX_RESOURCE;
    while !resource.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…({} bytes)", &resource[..end], resource.len()).into()
}

#[cfg(test)]
mod tests {
    use airssys_contract::capability::{Decision, GrantSet, Request, Rule, Verdict};

    use super::*;

    /// The field the guards read follows the sink and the hooks: an
    /// allow is built whenever either takes records.
    #[test]
    fn records_allowed_follows_the_sink_and_the_hooks() {
        let mut log = AuditLog::tracing_only();
        assert!(
            !log.records_allowed(),
            "no sink, no hook, no TRACE subscriber"
        );
        log.add_hooks(Vec::new());
        assert!(!log.records_allowed());
        log.add_hooks(vec![Box::new(|_: &AuditRecord<'_>| {})]);
        assert!(log.records_allowed());
        let mut log = AuditLog::to_writer(std::io::sink());
        assert!(log.records_allowed());
        log.add_hooks(Vec::new());
        assert!(log.records_allowed(), "adding no hook keeps the sink's");
    }

    #[test]
    fn the_rule_in_words_is_the_grant_sets_own() {
        let allow: Capability = "kv:read:counter/*".parse().expect("allow");
        let deny: Capability = "kv:read:counter/secret".parse().expect("deny");
        let set = GrantSet::new([allow.clone()], [deny.clone()]);
        let decided = |request: &str| set.check(&Request::parse(request).expect("request"));
        for (decision, rule) in [
            (decided("kv:read:counter/x"), DecidingRule::Grant(&allow)),
            (
                decided("kv:read:counter/secret"),
                DecidingRule::DenyRule(&deny),
            ),
            (decided("kv:read:other/x"), DecidingRule::NoGrant),
        ] {
            assert_eq!(rule.to_string(), set.describe(&decision));
        }
        let no_grant = Decision {
            verdict: Verdict::Deny,
            rule: Rule::NoGrant,
        };
        assert_eq!(DecidingRule::NoGrant.to_string(), set.describe(&no_grant));
    }

    #[test]
    fn hooks_get_typed_decisions_and_the_refusals_the_quota_dropped() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut log = AuditLog::tracing_only();
        let sink = Arc::clone(&seen);
        log.add_hooks(vec![Box::new(move |record: &AuditRecord<'_>| {
            let line = match record {
                AuditRecord::Decision(d) => format!(
                    "{} {}:{}:{} {:?} {:?} {:?}",
                    d.component,
                    d.domain,
                    d.action,
                    d.resource,
                    d.rule.pattern().map(ToString::to_string),
                    d.origin.map(|o| o.line),
                    d.is_allowed()
                ),
                AuditRecord::RateLimited(r) => {
                    format!("{} dropped {} {}", r.component, r.dropped, r.limit)
                }
            };
            lock(&sink).push(line);
        })]);
        log.limit_denials("c", 1);
        let deny: Capability = "kv:read:counter/secret".parse().expect("deny");
        let origin = RuleOrigin {
            file: None,
            line: 4,
        };
        let refused = Decided {
            component: "c",
            function: "get",
            domain: Domain::Kv,
            action: Action::Read,
            resource: "counter/secret",
            rule: DecidingRule::DenyRule(&deny),
            origin: Some(&origin),
        };
        for _ in 0..3 {
            log.record(&refused);
        }
        log.report_dropped("c");
        assert_eq!(
            *lock(&seen),
            [
                "c kv:read:counter/secret Some(\"kv:read:counter/secret\") Some(4) false"
                    .to_owned(),
                "c dropped 2 limits.audit_denials_per_second".to_owned(),
            ]
        );
    }

    /// A line sink gets each record as one JSON line with its kind, so it
    /// can keep room for refusals.
    #[test]
    fn a_line_sink_gets_each_line_with_what_it_records() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let log = AuditLog::to_lines(move |kind, component, line| {
            assert_eq!(component, "c");
            lock(&sink).push((kind, line));
        });
        log.limit_denials("c", 1);
        let grant: Capability = "kv:read:counter/*".parse().expect("grant");
        let mut decided = Decided {
            component: "c",
            function: "get",
            domain: Domain::Kv,
            action: Action::Read,
            resource: "counter/x",
            rule: DecidingRule::Grant(&grant),
            origin: None,
        };
        log.record(&decided);
        decided.rule = DecidingRule::NoGrant;
        log.record(&decided);
        log.record(&decided);
        log.report_dropped("c");
        let seen = lock(&seen);
        let kinds: Vec<AuditLineKind> = seen.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [
                AuditLineKind::Allowed,
                AuditLineKind::Refused,
                AuditLineKind::Other
            ]
        );
        assert!(seen[1].1.contains(r#""verdict":"deny""#), "{}", seen[1].1);
        assert!(seen.iter().all(|(_, l)| !l.contains('\n')));
        assert!(log.flush().is_ok());
    }

    #[test]
    fn drops_of_each_component_are_said_at_its_own_calls_end_once() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut log = AuditLog::tracing_only();
        let sink = Arc::clone(&seen);
        log.add_hooks(vec![Box::new(move |record: &AuditRecord<'_>| {
            if let AuditRecord::RateLimited(r) = record {
                lock(&sink).push(format!("{} dropped {}", r.component, r.dropped));
            }
        })]);
        let deny: Capability = "kv:read:counter/secret".parse().expect("deny");
        let refused = |component| Decided {
            component,
            function: "get",
            domain: Domain::Kv,
            action: Action::Read,
            resource: "counter/secret",
            rule: DecidingRule::DenyRule(&deny),
            origin: None,
        };
        // Nothing dropped: the end of a call has nothing to say.
        log.report_dropped("c");
        log.limit_denials("c", 1);
        log.limit_denials("d", 1);
        for _ in 0..3 {
            log.record(&refused("c"));
        }
        for _ in 0..2 {
            log.record(&refused("d"));
        }
        log.report_dropped("d");
        log.report_dropped("d");
        log.report_dropped("c");
        log.report_dropped("c");
        assert_eq!(*lock(&seen), ["d dropped 1", "c dropped 2"]);
        // All said: the fast path is back in force.
        assert_eq!(log.unsaid.load(Ordering::Relaxed), 0);
        // Drops of a component forgotten (unloaded) are not waited for.
        log.record(&refused("c"));
        log.forget("c");
        assert_eq!(log.unsaid.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn long_resources_are_cut_on_a_character_boundary() {
        assert_eq!(truncated("short"), "short");
        let long = format!("a{}", "é".repeat(300));
        let cut = truncated(&long);
        assert!(cut.ends_with(&format!("…({} bytes)", long.len())), "{cut}");
        assert!(cut.len() < MAX_RESOURCE + 20, "{}", cut.len());
    }
}
