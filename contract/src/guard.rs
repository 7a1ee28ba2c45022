//! Run-time support for the guards that `#[airssys::host_fn]` generates.
//!
//! A guarded host function builds the concrete request from its template
//! (`kv:read:{self}/{key}` with the bound parameters and the handle's name),
//! then checks it twice:
//!
//! 1. against the *declared scope*, the capability written in the
//!    `host_fn` attribute: the host author's own limit on the function;
//! 2. against the calling component's [`GrantSet`], through the host state's
//!    [`GuardContext`].
//!
//! A refusal is a [`Denial`] whose message names the capability and says how
//! to grant it; the generated code returns it as the WIT `denied(..)` error.
//! The allow path does not allocate: the resource is assembled in a stack
//! buffer (heap only beyond [`INLINE_REQUEST_LEN`] bytes; a one-part
//! template uses its parameter as is) and the declared scope is parsed once
//! per function ([`HostFnGuard`] lives in a `static`). A context may offer a
//! [`DecisionCache`]: a repeated allowed call then skips validation and
//! matching (it allocates only while the cache fills), and is recorded
//! like any other.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::capability::{
    Action, Capability, CapabilityError, Decision, Domain, GrantSet, Request, Rule, Verdict,
};

/// Resources up to this many bytes are assembled on the stack; longer ones
/// use one heap buffer.
pub const INLINE_REQUEST_LEN: usize = 256;

/// What the host state must provide so that generated guards can check a
/// call: the calling component, its compiled grants, the names of open
/// handles (for `{self}` in a template), and optionally an audit hook.
///
/// The runtime implements it on the per-store host state; tests implement it
/// on a plain struct.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot run `#[airssys::host_fn]` guards: it does not implement `GuardContext`",
    label = "the host state of this impl",
    note = "implement `airssys::contract::guard::GuardContext` for `{Self}`: it tells the guard which component is calling and what it was granted"
)]
pub trait GuardContext {
    /// The name of the component making the current call.
    fn component(&self) -> &str;

    /// The calling component's effective grants.
    fn grants(&self) -> &GrantSet;

    /// The name a handle was opened with (the `{self}` part of a method's
    /// template), looked up by the WIT resource name (`"bucket"`) and the
    /// handle's representation (`Resource::rep()`). `None` denies the call:
    /// an unknown handle never passes a guard.
    fn handle_name(&self, resource: &str, rep: u32) -> Option<&str> {
        let _ = (resource, rep);
        None
    }

    /// Called once per guarded call, after the decision; the default does
    /// nothing. The runtime writes its audit events here.
    fn record(&self, event: &GuardEvent<'_>) {
        let _ = event;
    }

    /// Whether [`record`](GuardContext::record) wants allowed calls:
    /// `true` (the default) passes every decision. A context that returns
    /// `false` is not handed allows, so the guard does not even build
    /// their event; refusals are always recorded.
    #[inline]
    fn records_allowed(&self) -> bool {
        true
    }

    /// A cache of this caller's allow decisions, or `None` (the default)
    /// to check every call in full.
    ///
    /// A context that returns a cache must return the same
    /// [`grants`](GuardContext::grants) for as long as the cache lives (the
    /// runtime's grant sets are fixed per loaded component). A cached allow
    /// still passes through [`record`](GuardContext::record), exactly as a
    /// computed one.
    fn decisions(&self) -> Option<&DecisionCache> {
        None
    }
}

/// Allow decisions of one caller, remembered by guard and resource so a
/// repeated call skips validating and matching the request again.
///
/// Only allows are kept, and only for guards built by [`HostFnGuard`]:
/// the decision for a request depends on the guard (its declared scope,
/// domain and action, all fixed), the resource text and the caller's
/// grants, and the cache is keyed by the guard's identity and the resource,
/// while the grants must not change for as long as it lives (see
/// [`GuardContext::decisions`]). Refusals are always computed. The cache
/// holds at most [`DecisionCache::SLOTS`] entries of up to
/// [`INLINE_REQUEST_LEN`] bytes each (direct-mapped: a new entry replaces
/// the one in its slot), allocated at the second allowed call, so an
/// instance that makes a single call pays nothing for it.
#[derive(Debug, Default)]
pub struct DecisionCache {
    slots: RefCell<Vec<CachedAllow>>,
    /// Whether an allow was seen while the slots were not allocated yet.
    seen: Cell<bool>,
}

/// One cached allow.
#[derive(Debug, Clone, Default)]
struct CachedAllow {
    /// The guard's [identity](HostFnGuard::id); 0 for an empty slot.
    guard: u32,
    print: Fingerprint,
    /// The whole resource; compared only beyond what `print` covers.
    resource: String,
    rule: usize,
}

/// A resource's length with its first and last eight bytes (all of it,
/// packed into `head`, when shorter than eight): for resources up to
/// sixteen bytes, equal fingerprints mean equal resources.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Fingerprint {
    len: usize,
    head: u64,
    tail: u64,
}

impl Fingerprint {
    /// Shorter than eight bytes, `head` is the bytes as a big-endian
    /// number (`[a, b, c]` → `0x61_62_63`), read without a loop: the
    /// first and the last four (or the first, middle and last byte) each
    /// shifted to their place, overlapping bytes OR-ed onto themselves.
    #[inline]
    fn of(bytes: &[u8]) -> Fingerprint {
        let len = bytes.len();
        let (head, tail) =
            if let (Some(head), Some(tail)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
                (u64::from_le_bytes(*head), u64::from_le_bytes(*tail))
            } else if let (Some(first), Some(last)) =
                (bytes.first_chunk::<4>(), bytes.last_chunk::<4>())
            {
                // 4 to 7 bytes: shift by 0 to 24 bits.
                let first = u64::from(u32::from_be_bytes(*first)) << (8 * (len - 4));
                (first | u64::from(u32::from_be_bytes(*last)), 0)
            } else {
                // 0 to 3 bytes.
                let byte = |i: usize| {
                    bytes
                        .get(i)
                        .map_or(0, |b| u64::from(*b) << (8 * (len - 1 - i)))
                };
                (byte(0) | byte(len / 2) | byte(len.wrapping_sub(1)), 0)
            };
        Fingerprint { len, head, tail }
    }

    /// Whether the fingerprint alone decides equality.
    #[inline]
    fn is_whole(&self) -> bool {
        self.len <= 16
    }
}

/// Where a resource lives in a [`DecisionCache`] under one guard: taken
/// once per call, for the lookup and, on a miss, the store.
#[derive(Debug, Clone, Copy)]
struct CacheKey {
    guard: u32,
    print: Fingerprint,
    slot: usize,
}

impl CacheKey {
    #[inline]
    fn new(guard: u32, resource: &str) -> CacheKey {
        let print = Fingerprint::of(resource.as_bytes());
        CacheKey {
            guard,
            print,
            slot: DecisionCache::slot(guard, &print),
        }
    }
}

impl DecisionCache {
    /// The number of entries kept.
    pub const SLOTS: usize = 64;

    /// An empty cache.
    pub fn new() -> DecisionCache {
        DecisionCache::default()
    }

    /// The slot of a resource under `guard`. Any spread will do (a slot's
    /// entry is compared in full), so only the fingerprint is mixed: a few
    /// instructions for any resource.
    #[inline]
    fn slot(guard: u32, print: &Fingerprint) -> usize {
        let mixed = ((u64::from(guard) << 32) ^ (print.len as u64) ^ print.head).wrapping_mul(SEED)
            ^ print.tail;
        // The top six bits: 0..64.
        (mixed.wrapping_mul(SEED) >> 58) as usize % Self::SLOTS
    }

    /// The grant rule of the cached allow for `resource` under `guard`.
    #[cfg(test)]
    fn get(&self, guard: u32, resource: &str) -> Option<usize> {
        self.lookup(&CacheKey::new(guard, resource), resource)
    }

    /// The grant rule of the cached allow for `resource`, whose key is
    /// already taken (a miss hands it on to `store`).
    #[inline]
    fn lookup(&self, key: &CacheKey, resource: &str) -> Option<usize> {
        let slots = self.slots.try_borrow().ok()?;
        let entry = slots.get(key.slot)?;
        let same = entry.guard == key.guard
            && entry.print == key.print
            && (key.print.is_whole() || entry.resource.as_bytes() == resource.as_bytes());
        same.then_some(entry.rule)
    }

    /// Remembers an allow by grant `rule`.
    #[cfg(test)]
    fn insert(&self, guard: u32, resource: &str, rule: usize) {
        self.store(&CacheKey::new(guard, resource), resource, rule);
    }

    /// Remembers an allow of `resource` by grant `rule`, under its key.
    #[inline]
    fn store(&self, key: &CacheKey, resource: &str, rule: usize) {
        if key.guard == 0 || resource.len() > INLINE_REQUEST_LEN {
            return;
        }
        let Ok(mut slots) = self.slots.try_borrow_mut() else {
            return;
        };
        if slots.is_empty() {
            if !self.seen.replace(true) {
                return;
            }
            slots.resize(Self::SLOTS, CachedAllow::default());
        }
        if let Some(entry) = slots.get_mut(key.slot) {
            // The fingerprint alone decides short resources: their text is
            // never compared, so it is not copied. Longer ones reuse the
            // slot's buffer (no allocation once it is large enough).
            if !key.print.is_whole() {
                entry.resource.clear();
                entry.resource.push_str(resource);
            }
            entry.guard = key.guard;
            entry.print = key.print;
            entry.rule = rule;
        }
    }
}

/// The multiplier of rustc's `FxHasher`.
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// One guard decision, as passed to [`GuardContext::record`].
#[derive(Debug, Clone, Copy)]
pub struct GuardEvent<'a> {
    /// The host function, e.g. `airssys:core/storage@1.0.0#get`.
    pub function: &'a str,
    /// The request's domain.
    pub domain: Domain,
    /// The request's action.
    pub action: Action,
    /// The request's resource as built from the call (possibly invalid,
    /// see [`Outcome::Invalid`]); empty for none.
    pub resource: &'a str,
    /// How the guard decided.
    pub outcome: Outcome<'a>,
}

/// How a guard decided.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// The declared scope and the grant set both allow the request; the
    /// decision names the grant.
    Allowed(&'a Decision),
    /// The grant set refused: no grant covers the request, or a deny rule
    /// matched.
    Refused(&'a Decision),
    /// The request lies outside the host function's declared scope (the
    /// grant set was not consulted).
    OutsideScope(&'a Capability),
    /// The built request is not a valid resource for its domain (for
    /// example a path with `..`), or a handle is unknown.
    Invalid,
}

/// Why a guard refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialReason {
    /// Outside the scope the host function declares.
    OutsideScope,
    /// No grant of the component covers the request.
    NoGrant,
    /// A deny rule of the host policy matched.
    DenyRule,
    /// The request is malformed, or a `{self}` handle is unknown.
    InvalidRequest,
}

/// A refused call: the message to return in the WIT `denied(..)` error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    reason: DenialReason,
    message: String,
}

impl Denial {
    /// Why the call was refused.
    pub fn reason(&self) -> DenialReason {
        self.reason
    }

    /// The message, e.g. ``denied: component `counter` lacks
    /// `kv:write:counter/x`; grant it in the host policy, e.g.
    /// `kv:write:counter/*` ``.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message, by value, for the WIT error's `denied(string)` case.
    pub fn into_message(self) -> String {
        self.message
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Denial {}

/// The guard of one host function, built as a `static` by the generated
/// code: the declared scope is parsed on first use and kept.
#[derive(Debug)]
pub struct HostFnGuard {
    function: &'static str,
    scope_text: &'static str,
    domain: Domain,
    action: Action,
    scope: OnceLock<Result<Capability, CapabilityError>>,
    /// This guard's key in a [`DecisionCache`], given on first use; 0 until
    /// then.
    id: AtomicU32,
}

/// The next guard identity to give out (0 means "none yet").
static NEXT_GUARD_ID: AtomicU32 = AtomicU32::new(1);

impl HostFnGuard {
    /// A guard for `function` (e.g. `airssys:core/storage#get`) whose
    /// requests are `domain:action:..`, limited to `scope` (the capability
    /// written in the attribute, already validated by the macro).
    pub const fn new(
        function: &'static str,
        scope: &'static str,
        domain: Domain,
        action: Action,
    ) -> Self {
        Self {
            function,
            scope_text: scope,
            domain,
            action,
            scope: OnceLock::new(),
            id: AtomicU32::new(0),
        }
    }

    /// The host function this guard protects.
    pub fn function(&self) -> &'static str {
        self.function
    }

    /// The declared scope, parsed once.
    ///
    /// # Errors
    ///
    /// The parse error when the scope text is not a capability (the macro
    /// rejects such scopes at compile time, so this only happens when the
    /// guard is built by hand); every call is then denied.
    #[inline]
    pub fn scope(&self) -> Result<&Capability, &CapabilityError> {
        self.scope
            .get_or_init(|| Capability::parse(self.scope_text))
            .as_ref()
    }

    /// This guard's identity in a [`DecisionCache`]: unique among the
    /// guards of the process (everything that decides a request besides
    /// its resource and the grants is fixed per guard). 0 only if more
    /// than four billion guards were ever built; such a guard is not
    /// cached.
    #[inline]
    fn id(&self) -> u32 {
        match self.id.load(Ordering::Relaxed) {
            0 => self.assign_id(),
            id => id,
        }
    }

    #[cold]
    fn assign_id(&self) -> u32 {
        let fresh = NEXT_GUARD_ID
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |next| {
                next.checked_add(1)
            })
            .unwrap_or(0);
        match self
            .id
            .compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => fresh,
            // Another thread gave this guard its identity first.
            Err(existing) => existing,
        }
    }

    /// Looks up the name of the handle `rep` of WIT resource `resource`, for
    /// a `{self}` part.
    ///
    /// # Errors
    ///
    /// A [`Denial`] when the context does not know the handle.
    pub fn handle<'c, C: GuardContext + ?Sized>(
        &self,
        ctx: &'c C,
        resource: &str,
        rep: u32,
    ) -> Result<&'c str, Denial> {
        match ctx.handle_name(resource, rep) {
            Some(name) => Ok(name),
            None => {
                ctx.record(&GuardEvent {
                    function: self.function,
                    domain: self.domain,
                    action: self.action,
                    resource: "",
                    outcome: Outcome::Invalid,
                });
                Err(Denial {
                    reason: DenialReason::InvalidRequest,
                    message: format!(
                        "`{}` was called on an unknown `{resource}` handle ({rep})",
                        self.function
                    ),
                })
            }
        }
    }

    /// Checks a call whose resource is the concatenation of `parts`
    /// (literals of the template, bound parameters, handle names).
    ///
    /// # Errors
    ///
    /// A [`Denial`] when the request is malformed, outside the declared
    /// scope, or not granted to the calling component.
    #[inline]
    pub fn authorize<C: GuardContext + ?Sized>(
        &self,
        ctx: &C,
        parts: &[&str],
    ) -> Result<(), Denial> {
        with_resource(parts, |resource| self.authorize_resource(ctx, resource))
    }

    #[inline]
    fn authorize_resource<C: GuardContext + ?Sized>(
        &self,
        ctx: &C,
        resource: &str,
    ) -> Result<(), Denial> {
        // A request whose answer is one table lookup in the grant set (a
        // log level, a component, a program: rare calls) is checked in
        // full every time, the cache kept for the domains whose patterns
        // are matched segment by segment, and for variable names, whose
        // calls are frequent and whose miss takes the short path below.
        if self.decides_by_lookup() && self.domain != Domain::Env {
            return self.check(ctx, resource).map(drop);
        }
        // The fast path: an allow this guard computed before for this
        // resource (the scope was checked then and cannot have changed).
        let cached = match ctx.decisions() {
            Some(cache) => {
                let key = CacheKey::new(self.id(), resource);
                if let Some(rule) = cache.lookup(&key, resource) {
                    if ctx.records_allowed() {
                        let decision = Decision {
                            verdict: Verdict::Allow,
                            rule: Rule::Allow(rule),
                        };
                        ctx.record(&GuardEvent {
                            function: self.function,
                            domain: self.domain,
                            action: self.action,
                            resource,
                            outcome: Outcome::Allowed(&decision),
                        });
                    }
                    return Ok(());
                }
                // A miss: the key serves the store after an allow.
                Some((cache, key))
            }
            None => None,
        };
        // A variable name the grants allow: decided without the general
        // request; anything else (a refusal, a malformed name, another
        // domain) takes the full check.
        let rule = match self.allows_env(ctx, resource) {
            Some(rule) => Some(rule),
            None => self.check(ctx, resource)?,
        };
        if let (Some((cache, key)), Some(rule)) = (cached, rule) {
            cache.store(&key, resource, rule);
        }
        Ok(())
    }

    /// The allow path of a variable name (every `get-var` call that
    /// misses the cache), without building the general request: a valid
    /// name inside the declared scope that the grant set allows is
    /// recorded as allowed and its allow rule returned. Anything else
    /// returns `None` having recorded nothing: the full check then
    /// decides, records and explains the refusal.
    #[inline]
    fn allows_env<C: GuardContext + ?Sized>(&self, ctx: &C, name: &str) -> Option<usize> {
        let action = self.action;
        if self.domain != Domain::Env {
            return None;
        }
        let scope = self.scope().ok()?;
        // Scope and grants are matched on the name as given (text
        // comparisons); it is validated before an allow counts, unless the
        // allow names exactly this variable: the grant's name was
        // validated when the policy was read, and the name equals it.
        if !scope.covers_env(action, name) {
            return None;
        }
        let grants = ctx.grants();
        let decision = grants.check_env(action, name);
        let Rule::Allow(rule) = decision.rule else {
            return None;
        };
        if !grants.allows_exactly(rule) && !Request::is_env(action, name) {
            return None;
        }
        if ctx.records_allowed() {
            ctx.record(&GuardEvent {
                function: self.function,
                domain: Domain::Env,
                action,
                resource: name,
                outcome: Outcome::Allowed(&decision),
            });
        }
        Some(rule)
    }

    /// Whether this guard's requests are decided by one lookup in an
    /// exact table of the grant set (no pattern matching), so that a
    /// [`DecisionCache`] saves little (variable names still use it: see
    /// `authorize_resource`).
    #[inline]
    fn decides_by_lookup(&self) -> bool {
        matches!(
            (self.domain, self.action),
            (Domain::Env | Domain::Log | Domain::Proc, _) | (Domain::Msg, Action::Request)
        )
    }

    /// Checks `resource` in full (validation, declared scope, grants) and
    /// records the decision; on an allow, the deciding allow rule, if any.
    #[inline]
    fn check<C: GuardContext + ?Sized>(
        &self,
        ctx: &C,
        resource: &str,
    ) -> Result<Option<usize>, Denial> {
        let scope = match self.scope() {
            Ok(scope) => scope,
            Err(error) => {
                ctx.record(&GuardEvent {
                    function: self.function,
                    domain: self.domain,
                    action: self.action,
                    resource,
                    outcome: Outcome::Invalid,
                });
                return Err(Denial {
                    reason: DenialReason::OutsideScope,
                    message: format!(
                        "host function `{}` declares an invalid scope `{}`: {error}",
                        self.function, self.scope_text
                    ),
                });
            }
        };
        let check = Check {
            function: self.function,
            scope,
            domain: self.domain,
            action: self.action,
            resource,
        };
        check.run(ctx)
    }
}

/// Calls `f` with the concatenation of `parts`: the part itself when there
/// is one, a stack buffer up to [`INLINE_REQUEST_LEN`] bytes, the heap
/// beyond.
#[inline]
fn with_resource<R>(parts: &[&str], f: impl FnOnce(&str) -> R) -> R {
    match parts {
        // One part (`env:read:{name}`, `fs:read:{path}`, ...): the
        // resource is that part; nothing to copy.
        [] => f(""),
        [only] => f(only),
        _ => {
            let mut inline = [0u8; INLINE_REQUEST_LEN];
            match concat_inline(&mut inline, parts) {
                Some(resource) => f(resource),
                None => f(&parts.concat()),
            }
        }
    }
}

/// One request, checked in full (no cache).
struct Check<'a> {
    function: &'a str,
    scope: &'a Capability,
    domain: Domain,
    action: Action,
    resource: &'a str,
}

impl Check<'_> {
    /// Validates the request, checks it against the scope and the grants,
    /// and records the decision; on an allow, the index of the deciding
    /// allow rule, if any.
    #[inline]
    fn run<C: GuardContext + ?Sized>(&self, ctx: &C) -> Result<Option<usize>, Denial> {
        let Check {
            function,
            scope,
            domain,
            action,
            resource,
        } = *self;
        let event = |outcome| GuardEvent {
            function,
            domain,
            action,
            resource,
            outcome,
        };
        // Variable names (every `get-var` call) skip the general dispatch
        // on the domain, in validation and in the grant set alike.
        let env = domain == Domain::Env;
        let request = if env {
            Request::env(action, resource)
        } else {
            Request::new(domain, action, resource)
        };
        let request = match request {
            Ok(request) => request,
            Err(error) => {
                ctx.record(&event(Outcome::Invalid));
                return Err(Denial {
                    reason: DenialReason::InvalidRequest,
                    message: format!(
                        "`{}` is not a valid request: {error}",
                        request_text(domain, action, resource)
                    ),
                });
            }
        };
        if !scope.covers(&request) {
            ctx.record(&event(Outcome::OutsideScope(scope)));
            return Err(Denial {
                reason: DenialReason::OutsideScope,
                message: format!(
                    "`{request}` is outside the scope `{scope}` that the host declares for \
                     `{function}`; the host author limits this function to that scope"
                ),
            });
        }
        let grants = ctx.grants();
        let decision = if env {
            grants.check_env(action, resource)
        } else {
            grants.check(&request)
        };
        if decision.verdict == Verdict::Allow {
            if ctx.records_allowed() {
                ctx.record(&event(Outcome::Allowed(&decision)));
            }
            return Ok(match decision.rule {
                Rule::Allow(rule) => Some(rule),
                _ => None,
            });
        }
        ctx.record(&event(Outcome::Refused(&decision)));
        Err(refusal(ctx.component(), grants, &decision, &request))
    }
}

/// The message for a refusal by the grant set.
fn refusal(
    component: &str,
    grants: &GrantSet,
    decision: &Decision,
    request: &Request<'_>,
) -> Denial {
    let text = request.to_string();
    let deny = match decision.rule {
        Rule::Deny(index) => grants.denies().get(index).map(ToString::to_string),
        _ => None,
    };
    let advice = refusal_advice(
        component,
        &text,
        grants.declared(),
        grants.allows(),
        deny.as_deref(),
    );
    Denial {
        reason: match advice.decided_by {
            DecidedBy::DenyRule => DenialReason::DenyRule,
            _ => DenialReason::NoGrant,
        },
        message: advice.to_string(),
    }
}

/// Which part of the configuration refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecidedBy {
    /// A deny rule of the host policy matched.
    DenyRule,
    /// The component's manifest declares no pattern covering the request,
    /// so no policy can grant it: the fix is in the component.
    Manifest,
    /// The manifest declares this pattern, which covers the request, but
    /// the host policy does not grant it: the fix is in the policy.
    Policy(Capability),
    /// No grant covers the request, and what the manifest declares is not
    /// known (a host state without it).
    NoGrant,
}

/// Why a request was refused and what to change: the single source of the
/// advice the component receives in its `denied(..)` error and that
/// `airssys run` prints on its `fix:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalAdvice {
    /// Who decided.
    pub decided_by: DecidedBy,
    /// The reason, starting with ``component `name` ``.
    pub why: String,
    /// What to change, in words that fit every host (a CLI may replace it
    /// with a more concrete one for the same [`DecidedBy`]).
    pub fix: String,
    /// A note on a near miss (`*` matches one segment, `**` any number),
    /// empty when there is none.
    pub hint: String,
}

impl fmt::Display for RefusalAdvice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.why, self.fix)?;
        if !self.hint.is_empty() {
            write!(f, " ({})", self.hint)?;
        }
        Ok(())
    }
}

/// The advice for refusing `request` (`domain:action[:resource]`) to
/// `component`, given what its manifest declares (`None`: not known), its
/// effective grants `allows` (for near-miss hints) and the deny rule that
/// matched, if one did.
pub fn refusal_advice(
    component: &str,
    request: &str,
    declared: Option<&[Capability]>,
    allows: &[Capability],
    deny_rule: Option<&str>,
) -> RefusalAdvice {
    if let Some(rule) = deny_rule {
        return RefusalAdvice {
            decided_by: DecidedBy::DenyRule,
            why: format!(
                "component `{component}` may not use `{request}`: the host policy denies it \
                 with `{rule}`"
            ),
            fix: "remove that deny rule from the policy if this call should succeed".to_owned(),
            hint: String::new(),
        };
    }
    let parsed = Request::parse(request).ok();
    // `domain:action` of the request, for patterns of the same kind.
    let kind = {
        let mut parts = request.splitn(3, ':');
        match (parts.next(), parts.next()) {
            (Some(d), Some(a)) => format!("{d}:{a}"),
            _ => request.to_owned(),
        }
    };
    let same_kind = |c: &&Capability| {
        let text = c.to_string();
        text == kind || text.starts_with(&format!("{kind}:"))
    };
    let hint = parsed
        .as_ref()
        .and_then(|r| {
            declared
                .unwrap_or_default()
                .iter()
                .chain(allows)
                .filter(same_kind)
                .find_map(|c| near_miss(c, r))
        })
        .unwrap_or_default();
    let Some(declared) = declared else {
        return RefusalAdvice {
            decided_by: DecidedBy::NoGrant,
            why: format!("component `{component}` lacks `{request}`"),
            fix: format!(
                "grant it in the host policy, e.g. `{}`",
                parsed.as_ref().map_or_else(
                    || request.to_owned(),
                    |r| suggest_grant(request, r.domain())
                )
            ),
            hint,
        };
    };
    let covering = match &parsed {
        Some(r) => declared.iter().find(|c| c.covers(r)),
        None => declared.iter().find(same_kind),
    };
    match covering {
        Some(pattern) => RefusalAdvice {
            decided_by: DecidedBy::Policy(pattern.clone()),
            why: format!(
                "component `{component}` lacks `{request}`: no grant of the host policy covers \
                 it (its manifest declares `{pattern}`)"
            ),
            fix: format!("grant `{pattern}` in the host policy"),
            hint,
        },
        None => RefusalAdvice {
            decided_by: DecidedBy::Manifest,
            why: format!(
                "component `{component}` lacks `{request}`: its manifest declares no `{kind}` \
                 pattern covering it, so no host policy can grant it"
            ),
            fix: format!(
                "declare a `{kind}` pattern covering `{request}` in `requires` or `optional` \
                 of `#[airssys::component(..)]` and rebuild"
            ),
            hint,
        },
    }
}

/// A hint when `pattern` almost covers `request`: its last `*` as `**`, or
/// one more segment (`/*`, `.*`), would.
fn near_miss(pattern: &Capability, request: &Request<'_>) -> Option<String> {
    if pattern.covers(request) {
        return None;
    }
    let text = pattern.to_string();
    let separator = match pattern.domain() {
        Domain::Kv | Domain::Fs => "/",
        Domain::Msg => ".",
        _ => return None,
    };
    let mut candidates = Vec::new();
    if text.ends_with('*') && !text.ends_with("**") {
        candidates.push(format!("{text}*"));
    }
    if !text.ends_with('*') {
        candidates.push(format!("{text}{separator}*"));
        candidates.push(format!("{text}{separator}**"));
    }
    let wider = candidates
        .into_iter()
        .find(|c| Capability::parse(c).is_ok_and(|c| c.covers(request)))?;
    Some(if text.ends_with('*') {
        format!("`{text}` matches one segment only; `{wider}` matches any number, at any depth")
    } else {
        format!("`{text}` names that resource exactly; `{wider}` covers what lies under it")
    })
}

/// A grant a policy author would likely write for `text`: the last segment
/// of the resource widened to `*` where the domain has segments, otherwise
/// the exact request. Always a valid capability.
fn suggest_grant(text: &str, domain: Domain) -> String {
    let separator = match domain {
        Domain::Kv | Domain::Fs => '/',
        Domain::Msg => '.',
        Domain::Net | Domain::Log | Domain::Proc | Domain::Env => return text.to_owned(),
    };
    // Only the resource (after `domain:action:`) is widened.
    let resource_start = text.match_indices(':').nth(1).map(|(i, _)| i + 1);
    let Some(resource_start) = resource_start else {
        return text.to_owned();
    };
    match text[resource_start..].rfind(separator) {
        Some(at) => {
            let candidate = format!("{}*", &text[..resource_start + at + 1]);
            if Capability::parse(&candidate).is_ok() {
                candidate
            } else {
                text.to_owned()
            }
        }
        None => text.to_owned(),
    }
}

/// Concatenates `parts` into `buffer`; `None` when they do not fit.
fn concat_inline<'b>(buffer: &'b mut [u8; INLINE_REQUEST_LEN], parts: &[&str]) -> Option<&'b str> {
    let mut len = 0;
    for part in parts {
        let end = len + part.len();
        buffer.get_mut(len..end)?.copy_from_slice(part.as_bytes());
        len = end;
    }
    // Concatenated `str`s are UTF-8; the check cannot fail.
    std::str::from_utf8(&buffer[..len]).ok()
}

/// `domain:action[:resource]`, for messages about invalid requests.
fn request_text(domain: Domain, action: Action, resource: &str) -> String {
    if resource.is_empty() {
        format!("{domain}:{action}")
    } else {
        format!("{domain}:{action}:{resource}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::cell::RefCell;

    use super::*;

    struct State {
        component: &'static str,
        grants: GrantSet,
        handles: Vec<(&'static str, u32, &'static str)>,
        events: RefCell<Vec<String>>,
        cache: Option<DecisionCache>,
        /// What `records_allowed` answers.
        allowed: bool,
    }

    impl State {
        fn new(allow: &[&str], deny: &[&str]) -> State {
            let parse = |list: &[&str]| -> Vec<Capability> {
                list.iter().map(|c| Capability::parse(c).unwrap()).collect()
            };
            State {
                component: "counter",
                grants: GrantSet::new(parse(allow), parse(deny)),
                handles: vec![("bucket", 7, "counter")],
                events: RefCell::new(Vec::new()),
                cache: None,
                allowed: true,
            }
        }

        fn cached(allow: &[&str], deny: &[&str]) -> State {
            State {
                cache: Some(DecisionCache::new()),
                ..State::new(allow, deny)
            }
        }
    }

    impl GuardContext for State {
        fn component(&self) -> &str {
            self.component
        }
        fn grants(&self) -> &GrantSet {
            &self.grants
        }
        fn records_allowed(&self) -> bool {
            self.allowed
        }
        fn handle_name(&self, resource: &str, rep: u32) -> Option<&str> {
            self.handles
                .iter()
                .find(|(r, n, _)| *r == resource && *n == rep)
                .map(|(_, _, name)| *name)
        }
        fn record(&self, event: &GuardEvent<'_>) {
            let outcome = match event.outcome {
                Outcome::Allowed(_) => "allowed",
                Outcome::Refused(_) => "refused",
                Outcome::OutsideScope(_) => "outside-scope",
                Outcome::Invalid => "invalid",
            };
            self.events.borrow_mut().push(format!(
                "{} {}:{}:{} {outcome}",
                event.function, event.domain, event.action, event.resource
            ));
        }
        fn decisions(&self) -> Option<&DecisionCache> {
            self.cache.as_ref()
        }
    }

    static GET: HostFnGuard = HostFnGuard::new(
        "storage#get",
        "kv:read:counter/**",
        Domain::Kv,
        Action::Read,
    );
    static SET: HostFnGuard =
        HostFnGuard::new("storage#set", "kv:write:**", Domain::Kv, Action::Write);

    #[test]
    fn allows_a_granted_request_inside_the_scope() {
        let state = State::new(&["kv:read:counter/*"], &[]);
        assert_eq!(GET.authorize(&state, &["counter/", "hits"]), Ok(()));
        assert_eq!(
            state.events.borrow().as_slice(),
            ["storage#get kv:read:counter/hits allowed"]
        );
    }

    #[test]
    fn denies_outside_the_declared_scope_even_when_granted() {
        let state = State::new(&["kv:read:**"], &[]);
        let denial = GET.authorize(&state, &["other/hits"]).unwrap_err();
        assert_eq!(denial.reason(), DenialReason::OutsideScope);
        assert_eq!(
            denial.message(),
            "`kv:read:other/hits` is outside the scope `kv:read:counter/**` that the \
             host declares for `storage#get`; the host author limits this function to that scope"
        );
        assert_eq!(
            state.events.borrow().as_slice(),
            ["storage#get kv:read:other/hits outside-scope"]
        );
    }

    #[test]
    fn denies_without_grant_and_says_how_to_grant() {
        let state = State::new(&["kv:read:counter/*"], &[]);
        let denial = SET.authorize(&state, &["counter/x"]).unwrap_err();
        assert_eq!(denial.reason(), DenialReason::NoGrant);
        assert_eq!(
            denial.to_string(),
            "component `counter` lacks `kv:write:counter/x`; grant it in the host \
             policy, e.g. `kv:write:counter/*`"
        );
    }

    #[test]
    fn deny_rule_overrides_grant_and_is_named() {
        let state = State::new(&["kv:write:counter/**"], &["kv:write:counter/secret/**"]);
        assert_eq!(SET.authorize(&state, &["counter/open"]), Ok(()));
        let denial = SET.authorize(&state, &["counter/secret/k"]).unwrap_err();
        assert_eq!(denial.reason(), DenialReason::DenyRule);
        assert!(
            denial
                .message()
                .contains("the host policy denies it with `kv:write:counter/secret/**`; remove"),
            "{denial}"
        );
    }

    #[test]
    fn self_parts_use_the_handle_name() {
        let state = State::new(&["kv:read:counter/*"], &[]);
        let name = GET.handle(&state, "bucket", 7).unwrap();
        assert_eq!(name, "counter");
        assert_eq!(GET.authorize(&state, &[name, "/", "hits"]), Ok(()));
        let unknown = GET.handle(&state, "bucket", 8).unwrap_err();
        assert_eq!(unknown.reason(), DenialReason::InvalidRequest);
        assert!(
            unknown.message().contains("unknown `bucket` handle (8)"),
            "{unknown}"
        );
        let wrong_type = GET.handle(&state, "file", 7);
        assert!(wrong_type.is_err());
    }

    #[test]
    fn long_resources_take_the_heap_path_with_the_same_result() {
        let state = State::new(&["kv:read:counter/*"], &[]);
        let long_key = "k".repeat(INLINE_REQUEST_LEN * 2);
        assert_eq!(GET.authorize(&state, &["counter/", &long_key]), Ok(()));
        let denial = GET
            .authorize(&state, &["counter/", &long_key, "/deeper"])
            .unwrap_err();
        assert_eq!(denial.reason(), DenialReason::NoGrant);
        assert!(denial.message().contains(&long_key));
        // The boundary itself: exactly the inline length fits the buffer.
        let edge = "e".repeat(INLINE_REQUEST_LEN - "counter/".len());
        assert_eq!(GET.authorize(&state, &["counter/", &edge]), Ok(()));
    }

    #[test]
    fn malformed_requests_are_denied_never_allowed() {
        let state = State::new(&["fs:read:/data/**"], &[]);
        static READ: HostFnGuard =
            HostFnGuard::new("fs#read", "fs:read:/data/**", Domain::Fs, Action::Read);
        assert_eq!(READ.authorize(&state, &["/data/a.txt"]), Ok(()));
        let denial = READ
            .authorize(&state, &["/data/../etc/passwd"])
            .unwrap_err();
        assert_eq!(denial.reason(), DenialReason::InvalidRequest);
        assert!(
            denial
                .message()
                .starts_with("`fs:read:/data/../etc/passwd` is not a valid request"),
            "{denial}"
        );
    }

    #[test]
    fn an_invalid_declared_scope_denies_without_panicking() {
        static BROKEN: HostFnGuard =
            HostFnGuard::new("storage#get", "kv:raed:**", Domain::Kv, Action::Read);
        let state = State::new(&["kv:read:**"], &[]);
        assert!(BROKEN.scope().is_err());
        let denial = BROKEN.authorize(&state, &["a/b"]).unwrap_err();
        assert!(
            denial.message().contains("invalid scope `kv:raed:**`"),
            "{denial}"
        );
    }

    #[test]
    fn a_scope_of_the_whole_domain_leaves_the_decision_to_the_grants() {
        static ANY_READ: HostFnGuard =
            HostFnGuard::new("storage#get", "kv:read:**", Domain::Kv, Action::Read);
        let state = State::new(&["kv:read:counter/*"], &[]);
        assert_eq!(ANY_READ.authorize(&state, &["counter/a"]), Ok(()));
        let denial = ANY_READ.authorize(&state, &["elsewhere/a"]).unwrap_err();
        assert_eq!(denial.reason(), DenialReason::NoGrant);
    }

    #[test]
    fn cached_allows_are_recorded_like_computed_ones() {
        let state = State::cached(&["kv:read:counter/*"], &[]);
        assert_eq!(GET.authorize(&state, &["counter/", "hits"]), Ok(()));
        // The first allow allocates nothing; the second fills the cache.
        assert!(state.cache.as_ref().unwrap().slots.borrow().is_empty());
        for _ in 0..2 {
            assert_eq!(GET.authorize(&state, &["counter/", "hits"]), Ok(()));
        }
        assert_eq!(
            state.events.borrow().as_slice(),
            ["storage#get kv:read:counter/hits allowed"; 3]
        );
        let cache = state.cache.as_ref().unwrap();
        assert_eq!(cache.get(GET.id(), "counter/hits"), Some(0));
        assert_eq!(cache.get(SET.id(), "counter/hits"), None);
    }

    #[test]
    fn refusals_are_never_cached() {
        let state = State::cached(&["kv:write:counter/**"], &["kv:write:counter/secret/**"]);
        for _ in 0..2 {
            let denial = SET.authorize(&state, &["counter/secret/k"]).unwrap_err();
            assert_eq!(denial.reason(), DenialReason::DenyRule);
            let denial = SET.authorize(&state, &["other/k"]).unwrap_err();
            assert_eq!(denial.reason(), DenialReason::NoGrant);
        }
        assert_eq!(state.events.borrow().len(), 4);
        let slots = state.cache.as_ref().unwrap().slots.borrow();
        assert!(slots.iter().all(|entry| entry.guard == 0));
    }

    #[test]
    fn a_cached_allow_does_not_leak_to_a_narrower_guard() {
        static NARROW: HostFnGuard = HostFnGuard::new(
            "storage#get-narrow",
            "kv:read:counter/a/**",
            Domain::Kv,
            Action::Read,
        );
        static WRITE: HostFnGuard =
            HostFnGuard::new("storage#set", "kv:write:**", Domain::Kv, Action::Write);
        let state = State::cached(&["kv:read:**"], &[]);
        assert_eq!(GET.authorize(&state, &["counter/b"]), Ok(()));
        assert_eq!(GET.authorize(&state, &["counter/b"]), Ok(()));
        let denial = NARROW.authorize(&state, &["counter/b"]).unwrap_err();
        assert_eq!(denial.reason(), DenialReason::OutsideScope);
        // Same resource, other action: not granted.
        let denial = WRITE.authorize(&state, &["counter/b"]).unwrap_err();
        assert_eq!(denial.reason(), DenialReason::NoGrant);
    }

    /// With and without a cache, every call decides the same, over more
    /// distinct requests than the cache has slots, in repeated rounds.
    #[test]
    fn the_cache_never_changes_a_decision() {
        static ENV: HostFnGuard =
            HostFnGuard::new("env#get", "env:read", Domain::Env, Action::Read);
        let allow = ["kv:read:counter/*", "kv:read:shared/**", "env:read:APP_*"];
        let deny = ["kv:read:shared/secret/*", "env:read:APP_KEY"];
        let plain = State::new(&allow, &deny);
        let cached = State::cached(&allow, &deny);
        let mut requests: Vec<(&HostFnGuard, String)> = Vec::new();
        for i in 0..150 {
            requests.push((&GET, format!("counter/k{i}")));
            requests.push((&GET, format!("shared/secret/s{i}")));
            requests.push((&GET, format!("counter/x/{i}")));
            requests.push((&ENV, format!("APP_{i}")));
            requests.push((&ENV, format!("OTHER_{i}")));
        }
        requests.push((&ENV, "APP_KEY".to_owned()));
        requests.push((&GET, "counter/../x".to_owned()));
        for round in 0..3 {
            for (guard, resource) in &requests {
                let parts = [resource.as_str()];
                let expected = guard.authorize(&plain, &parts);
                assert_eq!(
                    guard.authorize(&cached, &parts),
                    expected,
                    "round {round}: {resource}"
                );
            }
        }
        assert_eq!(*plain.events.borrow(), *cached.events.borrow());
        let allowed = plain
            .events
            .borrow()
            .iter()
            .filter(|e| e.ends_with(" allowed"))
            .count();
        assert_eq!(allowed, 3 * (150 + 150), "counter/k*, APP_* allowed");
    }

    /// Variable names take a short path (no general request; a name that
    /// a grant names exactly is not validated again): with and without a
    /// cache, a deny rule still wins, a malformed name is refused even
    /// where a prefix grant or `env:read` would cover its text, and every
    /// call is recorded once.
    #[test]
    fn variable_names_decide_as_the_full_check() {
        static ENV: HostFnGuard =
            HostFnGuard::new("env#get", "env:read", Domain::Env, Action::Read);
        static NARROW: HostFnGuard =
            HostFnGuard::new("env#get-app", "env:read:APP_*", Domain::Env, Action::Read);
        let long = "A_VARIABLE_NAME_LONGER_THAN_SIXTEEN";
        let grants = [
            "env:read:APP_*",
            "env:read:HOME",
            "env:read:A_VARIABLE_NAME_LONGER_THAN_SIXTEEN",
        ];
        for state in [
            State::new(&grants, &["env:read:APP_KEY"]),
            State::cached(&grants, &["env:read:APP_KEY"]),
            State::cached(&["env:read"], &["env:read:APP_KEY", "env:read:SECRET_*"]),
        ] {
            for _ in 0..3 {
                assert_eq!(ENV.authorize(&state, &["APP_MODE"]), Ok(()));
                assert_eq!(ENV.authorize(&state, &["HOME"]), Ok(()));
                assert_eq!(ENV.authorize(&state, &[long]), Ok(()));
                let denial = ENV.authorize(&state, &["APP_KEY"]).unwrap_err();
                assert_eq!(denial.reason(), DenialReason::DenyRule);
                for bad in ["APP_-X", "APP_ X", "1HOME", "", "HOME\0", "APP_É"] {
                    let denial = ENV.authorize(&state, &[bad]).unwrap_err();
                    assert_eq!(denial.reason(), DenialReason::InvalidRequest, "{bad:?}");
                }
                let denial = NARROW.authorize(&state, &["HOME"]).unwrap_err();
                assert_eq!(denial.reason(), DenialReason::OutsideScope);
                assert_eq!(NARROW.authorize(&state, &["APP_MODE"]), Ok(()));
            }
            assert_eq!(state.events.borrow().len(), 3 * 12);
        }
        let state = State::new(&grants, &[]);
        let denial = ENV.authorize(&state, &["PATH"]).unwrap_err();
        assert_eq!(denial.reason(), DenialReason::NoGrant);
    }

    /// A context that takes no allows is handed none, cached or not, on
    /// every path; its refusals are recorded all the same.
    #[test]
    fn a_context_without_allow_records_gets_only_refusals() {
        static ENV: HostFnGuard =
            HostFnGuard::new("env#get", "env:read", Domain::Env, Action::Read);
        let state = State {
            allowed: false,
            ..State::cached(&["kv:read:counter/*", "env:read:HOME"], &[])
        };
        for _ in 0..3 {
            assert_eq!(GET.authorize(&state, &["counter/", "hits"]), Ok(()));
            assert_eq!(ENV.authorize(&state, &["HOME"]), Ok(()));
            assert!(ENV.authorize(&state, &["PATH"]).is_err());
        }
        assert_eq!(
            state.events.borrow().as_slice(),
            ["env#get env:read:PATH refused"; 3]
        );
    }

    /// Fingerprints are read without a loop, yet equal the byte-by-byte
    /// definition the cache's slots were spread by (a big-endian number
    /// below eight bytes), so the cache keys every resource as before.
    #[test]
    fn fingerprints_equal_the_byte_fold() {
        let fold = |b: &[u8]| b.iter().fold(0u64, |w, x| (w << 8) | u64::from(*x));
        for len in 0..=20usize {
            for fill in [0u8, 1, 0x7f, 0x80, 0xff] {
                for at in 0..len.max(1) {
                    let mut bytes: Vec<u8> = (0..len)
                        .map(|i| (i as u8).wrapping_mul(37) ^ fill)
                        .collect();
                    if let Some(b) = bytes.get_mut(at) {
                        *b = !*b;
                    }
                    let print = Fingerprint::of(&bytes);
                    assert_eq!(print.len, len);
                    if len < 8 {
                        assert_eq!((print.head, print.tail), (fold(&bytes), 0), "{bytes:?}");
                    } else {
                        let word = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap());
                        assert_eq!(print.head, word(&bytes[..8]), "{bytes:?}");
                        assert_eq!(print.tail, word(&bytes[len - 8..]), "{bytes:?}");
                    }
                }
            }
        }
    }

    /// The cache compares short resources by fingerprint and long ones in
    /// full: a resource differing from a cached one in any single byte, at
    /// any length, or only in length, is never a hit.
    #[test]
    fn the_cache_tells_apart_resources_differing_in_one_byte() {
        for len in 0..=40usize {
            let cache = DecisionCache::new();
            let resource: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            // The first allow only marks the cache as used; the second fills it.
            cache.insert(1, &resource, 3);
            cache.insert(1, &resource, 3);
            assert_eq!(cache.get(1, &resource), Some(3), "len {len}");
            assert_eq!(cache.get(2, &resource), None, "other guard, len {len}");
            for at in 0..len {
                let mut bytes = resource.clone().into_bytes();
                bytes[at] = b'Z';
                let changed = String::from_utf8(bytes).unwrap();
                assert_eq!(cache.get(1, &changed), None, "len {len}, byte {at}");
            }
            let longer = format!("{resource}\0");
            assert_eq!(cache.get(1, &longer), None, "len {len} + NUL");
            let nul_first = format!("\0{resource}");
            assert_eq!(cache.get(1, &nul_first), None, "NUL + len {len}");
            if let Some(shorter) = resource.get(..len.saturating_sub(1))
                && len > 0
            {
                assert_eq!(cache.get(1, shorter), None, "len {len} - 1");
            }
        }
    }

    #[test]
    fn suggestions_widen_the_last_segment_and_stay_valid() {
        assert_eq!(
            suggest_grant("fs:read:/data/a.txt", Domain::Fs),
            "fs:read:/data/*"
        );
        assert_eq!(
            suggest_grant("kv:write:counter/x", Domain::Kv),
            "kv:write:counter/*"
        );
        assert_eq!(
            suggest_grant("kv:write:counter", Domain::Kv),
            "kv:write:counter"
        );
        assert_eq!(
            suggest_grant("msg:publish:orders.new", Domain::Msg),
            "msg:publish:orders.*"
        );
        assert_eq!(
            suggest_grant("net:connect:api.example.com:443", Domain::Net),
            "net:connect:api.example.com:443"
        );
        for text in [
            "fs:read:/data/a.txt",
            "kv:write:counter/x",
            "msg:publish:orders.new",
        ] {
            let domain = Domain::from_name(text.split(':').next().unwrap()).unwrap();
            assert!(Capability::parse(&suggest_grant(text, domain)).is_ok());
        }
    }

    fn caps(list: &[&str]) -> Vec<Capability> {
        list.iter().map(|c| Capability::parse(c).unwrap()).collect()
    }

    #[test]
    fn advice_names_the_manifest_when_it_does_not_cover_the_request() {
        let declared = caps(&["kv:read:counter/*"]);
        let advice = refusal_advice("m1", "kv:read:other/k", Some(&declared), &[], None);
        assert_eq!(advice.decided_by, DecidedBy::Manifest);
        let text = advice.to_string();
        assert!(
            text.contains("its manifest declares no `kv:read` pattern covering it"),
            "{text}"
        );
        assert!(text.contains("in `requires` or `optional`"), "{text}");
        // Granting it in the policy would not help: never advised.
        assert!(!text.contains("host policy, e.g."), "{text}");
        assert!(!text.contains("grant `"), "{text}");
    }

    #[test]
    fn advice_names_the_policy_when_the_manifest_declares_it() {
        let declared = caps(&["kv:delete:counter/*"]);
        let advice = refusal_advice("c", "kv:delete:counter/n", Some(&declared), &[], None);
        assert_eq!(
            advice.decided_by,
            DecidedBy::Policy(Capability::parse("kv:delete:counter/*").unwrap())
        );
        assert_eq!(
            advice.to_string(),
            "component `c` lacks `kv:delete:counter/n`: no grant of the host policy covers it \
             (its manifest declares `kv:delete:counter/*`); grant `kv:delete:counter/*` in the \
             host policy"
        );
    }

    #[test]
    fn advice_names_a_deny_rule() {
        let advice = refusal_advice("c", "kv:write:a/b", Some(&[]), &[], Some("kv:write:a/**"));
        assert_eq!(advice.decided_by, DecidedBy::DenyRule);
        assert!(
            advice.why.contains("denies it with `kv:write:a/**`"),
            "{advice}"
        );
    }

    #[test]
    fn near_misses_explain_one_star_and_two() {
        let declared = caps(&["fs:read:/data/*"]);
        let advice = refusal_advice("c", "fs:read:/data/sub/file", Some(&declared), &[], None);
        assert_eq!(advice.decided_by, DecidedBy::Manifest);
        assert!(
            advice
                .hint
                .contains("`fs:read:/data/*` matches one segment only")
                && advice.hint.contains("`fs:read:/data/**`"),
            "{advice}"
        );
        let declared = caps(&["kv:read:counter"]);
        let advice = refusal_advice("c", "kv:read:counter/n", Some(&declared), &[], None);
        assert!(
            advice
                .hint
                .contains("`kv:read:counter` names that resource exactly")
                && advice.hint.contains("`kv:read:counter/*`"),
            "{advice}"
        );
        // A policy grant narrower than the manifest: the hint names it.
        let declared = caps(&["fs:read:/data/**"]);
        let granted = caps(&["fs:read:/data/*"]);
        let advice = refusal_advice(
            "c",
            "fs:read:/data/sub/file",
            Some(&declared),
            &granted,
            None,
        );
        assert!(
            matches!(advice.decided_by, DecidedBy::Policy(_)),
            "{advice}"
        );
        assert!(
            advice
                .hint
                .contains("`fs:read:/data/*` matches one segment"),
            "{advice}"
        );
        // No near miss, no hint.
        let declared = caps(&["fs:read:/logs/*"]);
        let advice = refusal_advice("c", "fs:read:/data/f", Some(&declared), &[], None);
        assert_eq!(advice.hint, "");
    }
}
