//! Grant sets: allow and deny patterns compiled once into per-domain
//! indexes, so a check costs about the same for one grant or thousands and
//! allocates nothing.
//!
//! Layout: one slot per `(domain, action)` pair, for allows and for denies.
//! Each slot holds the first resource-less rule (any resource) and the
//! structures of its domain: a segment trie for paths, keys and topics;
//! hash maps for exact names, programs and variables; a label-suffix map for
//! `*.suffix`; CIDR blocks bucketed by prefix length; the lowest log floor.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::glob::{self, Glob, Segment, Syntax};
use super::level::LogLevel;
use super::net::{self, Block, Host, HostPattern, NetPattern, PortPattern};
use super::request::Target;
use super::{Action, Capability, Domain, EnvPattern, Request, ResourcePattern};

/// The outcome of [`GrantSet::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The request is allowed.
    Allow,
    /// The request is denied (by a deny rule or by default).
    Deny,
}

/// The rule that decided a [`Decision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The allow pattern at this index of [`GrantSet::allows`].
    Allow(usize),
    /// The deny pattern at this index of [`GrantSet::denies`].
    Deny(usize),
    /// No allow pattern covers the request: deny by default.
    NoGrant,
}

/// A verdict and the rule that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decision {
    /// Allow or deny.
    pub verdict: Verdict,
    /// Which rule decided.
    pub rule: Rule,
}

impl Decision {
    /// Whether the verdict is [`Verdict::Allow`].
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }
}

/// Allow and deny patterns compiled for fast checks; deny overrides allow,
/// and anything not allowed is denied.
///
/// # Examples
///
/// ```
/// use airssys_contract::capability::{GrantSet, Request, Rule};
///
/// let set = GrantSet::builder()
///     .allow("net:connect:*.example.com:443".parse()?)
///     .deny("net:connect:admin.example.com:*".parse()?)
///     .build();
/// let req = Request::parse("net:connect:api.example.com:443")?;
/// assert_eq!(set.check(&req).rule, Rule::Allow(0));
/// let req = Request::parse("net:connect:admin.example.com:443")?;
/// let decision = set.check(&req);
/// assert_eq!(
///     set.describe(&decision),
///     "denied by deny rule `net:connect:admin.example.com:*`"
/// );
/// # Ok::<(), airssys_contract::capability::CapabilityError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct GrantSet {
    allows: Vec<Capability>,
    denies: Vec<Capability>,
    /// One per `(domain, action)`; empty in a default (empty) set.
    slots: Vec<Matcher>,
}

/// Collects allow and deny patterns for a [`GrantSet`].
#[derive(Debug, Clone, Default)]
pub struct GrantSetBuilder {
    allows: Vec<Capability>,
    denies: Vec<Capability>,
}

impl GrantSetBuilder {
    /// Adds an allow pattern.
    #[must_use]
    pub fn allow(mut self, capability: Capability) -> Self {
        self.allows.push(capability);
        self
    }

    /// Adds a deny pattern; denies override allows.
    #[must_use]
    pub fn deny(mut self, capability: Capability) -> Self {
        self.denies.push(capability);
        self
    }

    /// Compiles the set.
    pub fn build(self) -> GrantSet {
        GrantSet::new(self.allows, self.denies)
    }
}

impl GrantSet {
    /// A builder with no rules.
    pub fn builder() -> GrantSetBuilder {
        GrantSetBuilder::default()
    }

    /// Compiles `allows` and `denies`; indexes in [`Rule`] refer to their
    /// order here.
    pub fn new(
        allows: impl IntoIterator<Item = Capability>,
        denies: impl IntoIterator<Item = Capability>,
    ) -> GrantSet {
        let allows: Vec<_> = allows.into_iter().collect();
        let denies: Vec<_> = denies.into_iter().collect();
        let mut slots = vec![Matcher::default(); SLOTS];
        let rules = (allows.iter().enumerate().map(|(i, c)| (Side::Allow, i, c)))
            .chain(denies.iter().enumerate().map(|(i, c)| (Side::Deny, i, c)));
        for (side, i, cap) in rules {
            if let Some(m) = slot(cap.domain(), cap.action()).and_then(|s| slots.get_mut(s)) {
                m.insert(cap.resource(), side, i);
            }
        }
        GrantSet {
            allows,
            denies,
            slots,
        }
    }

    /// Decides `request`: a covering deny rule wins, then a covering allow
    /// rule, else deny by default. Allocates nothing.
    pub fn check(&self, request: &Request<'_>) -> Decision {
        let hit = slot(request.domain(), request.action())
            .and_then(|s| self.slots.get(s))
            .map(|m| m.find(request))
            .unwrap_or_default();
        match hit {
            Hit { deny: Some(i), .. } => Decision {
                verdict: Verdict::Deny,
                rule: Rule::Deny(i),
            },
            Hit { allow: Some(i), .. } => Decision {
                verdict: Verdict::Allow,
                rule: Rule::Allow(i),
            },
            Hit { .. } => Decision {
                verdict: Verdict::Deny,
                rule: Rule::NoGrant,
            },
        }
    }

    /// The allow patterns, in the order given.
    pub fn allows(&self) -> &[Capability] {
        &self.allows
    }

    /// The deny patterns, in the order given.
    pub fn denies(&self) -> &[Capability] {
        &self.denies
    }

    /// Whether the set has no rules at all (and so denies everything).
    pub fn is_empty(&self) -> bool {
        self.allows.is_empty() && self.denies.is_empty()
    }

    /// One line naming the deciding rule, e.g. "allowed by grant
    /// `fs:read:/data/**`". See [`GrantSet::describe_request`] for a
    /// message that also names the request.
    pub fn describe(&self, decision: &Decision) -> String {
        self.describe_inner(decision, None)
    }

    /// As [`GrantSet::describe`], naming the request when no grant covers
    /// it: "denied: no grant covers `fs:read:/etc/passwd` (deny by
    /// default)".
    pub fn describe_request(&self, decision: &Decision, request: &Request<'_>) -> String {
        self.describe_inner(decision, Some(request))
    }

    fn describe_inner(&self, decision: &Decision, request: Option<&Request<'_>>) -> String {
        let rule = |list: &[Capability], i: usize| {
            list.get(i)
                .map_or_else(|| format!("#{i}"), ToString::to_string)
        };
        match decision.rule {
            Rule::Allow(i) => format!("allowed by grant `{}`", rule(&self.allows, i)),
            Rule::Deny(i) => format!("denied by deny rule `{}`", rule(&self.denies, i)),
            Rule::NoGrant => match request {
                Some(r) => format!("denied: no grant covers `{r}` (deny by default)"),
                None => "denied: no grant covers the request (deny by default)".to_owned(),
            },
        }
    }
}

/// The slot of a `(domain, action)` pair: 20 in all.
const SLOTS: usize = 20;

fn slot(domain: Domain, action: Action) -> Option<usize> {
    let base = match domain {
        Domain::Fs => 0,
        Domain::Net => 6,
        Domain::Kv => 9,
        Domain::Msg => 13,
        Domain::Log => 16,
        Domain::Proc => 17,
        Domain::Env => 19,
    };
    domain
        .actions()
        .iter()
        .position(|a| *a == action)
        .map(|p| base + p)
}

/// Which list a rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Allow,
    Deny,
}

/// The first allow and the first deny rule found for a request. Also used
/// as the payload of index entries: allow and deny rules share one index,
/// so a check walks each structure once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Hit {
    allow: Option<usize>,
    deny: Option<usize>,
}

impl Hit {
    fn set(&mut self, side: Side, i: usize) {
        let slot = match side {
            Side::Allow => &mut self.allow,
            Side::Deny => &mut self.deny,
        };
        slot.get_or_insert(i);
    }

    fn merge(&mut self, other: Hit) {
        self.allow = self.allow.or(other.allow);
        self.deny = self.deny.or(other.deny);
    }

    /// Whether more searching cannot change the decision: a deny was
    /// found, or an allow was found and `denies_left` says no deny rule
    /// remains to be looked at.
    fn settled(self, denies_left: bool) -> bool {
        self.deny.is_some() || (self.allow.is_some() && !denies_left)
    }
}

/// Every rule of one `(domain, action)`.
#[derive(Debug, Clone, Default)]
struct Matcher {
    /// Rules without a resource.
    any: Hit,
    /// Whether any deny rule has a resource.
    denies: bool,
    segments: SegNode,
    exact: FxMap<Box<str>, Hit>,
    /// The lowest floor of each side.
    floor: [Option<(LogLevel, usize)>; 2],
    env: EnvIndex,
    net: NetIndex,
}

impl Matcher {
    fn insert(&mut self, resource: Option<&ResourcePattern>, side: Side, i: usize) {
        let Some(resource) = resource else {
            self.any.set(side, i);
            return;
        };
        self.denies |= side == Side::Deny;
        match resource {
            ResourcePattern::Path(g) | ResourcePattern::Key(g) | ResourcePattern::Topic(g) => {
                self.segments.insert(g, side, i);
            }
            ResourcePattern::Component(s) | ResourcePattern::Program(s) => {
                self.exact
                    .entry(s.as_str().into())
                    .or_default()
                    .set(side, i);
            }
            ResourcePattern::Level(l) => {
                let floor = &mut self.floor[side as usize];
                if floor.is_none_or(|(f, _)| *l < f) {
                    *floor = Some((*l, i));
                }
            }
            ResourcePattern::Env(e) => self.env.insert(e, side, i),
            ResourcePattern::Net(n) => self.net.insert(n, side, i),
        }
    }

    fn find(&self, request: &Request<'_>) -> Hit {
        let mut hit = self.any;
        if hit.settled(self.denies) {
            return hit;
        }
        let text = request.resource();
        let found = match request.target {
            Target::Path => self
                .segments
                .find(glob::request_segments(text, Syntax::Path)),
            Target::Key => self
                .segments
                .find(glob::request_segments(text, Syntax::Key)),
            Target::Topic => self
                .segments
                .find(glob::request_segments(text, Syntax::Topic)),
            Target::Component | Target::Program => {
                self.exact.get(text).copied().unwrap_or_default()
            }
            Target::Level(level) => {
                let pick = |f: Option<(LogLevel, usize)>| {
                    f.and_then(|(floor, i)| (level >= floor).then_some(i))
                };
                Hit {
                    allow: pick(self.floor[Side::Allow as usize]),
                    deny: pick(self.floor[Side::Deny as usize]),
                }
            }
            Target::Env => self.env.find(text),
            Target::Net(host, port) => self.net.find(host, port),
        };
        hit.merge(found);
        hit
    }
}

/// A trie over path, key or topic segments.
///
/// Children are keyed by a 64-bit hash of their literal computed here (no
/// `Hash` machinery on the hot path) and verified by comparing the text;
/// the rare child whose hash collides with a sibling's sits in `overflow`.
#[derive(Debug, Clone, Default)]
struct SegNode {
    /// This node's literal segment (empty for the root and `*` nodes).
    name: Box<str>,
    literal: HashMap<u64, SegNode, BuildHasherDefault<IdentityHasher>>,
    overflow: Vec<SegNode>,
    any: Option<Box<SegNode>>,
    /// Patterns that end exactly here.
    end: Hit,
    /// Patterns that end here with `**` / `>`: one or more more segments.
    rest: Hit,
    /// Whether a deny pattern ends at or below this node.
    denies: bool,
}

impl SegNode {
    fn insert(&mut self, glob: &Glob, side: Side, i: usize) {
        let deny = side == Side::Deny;
        let mut node = self;
        node.denies |= deny;
        for seg in glob.segments() {
            node = match seg {
                Segment::Literal(l) => node.child_mut(l),
                Segment::Any => node.any.get_or_insert_with(Box::default),
            };
            node.denies |= deny;
        }
        if glob.has_rest() {
            node.rest.set(side, i);
        } else {
            node.end.set(side, i);
        }
    }

    fn child_mut(&mut self, name: &str) -> &mut SegNode {
        let new = || SegNode {
            name: name.into(),
            ..SegNode::default()
        };
        let hash = hash_str(name);
        let taken_by_other = self.literal.get(&hash).is_some_and(|c| &*c.name != name);
        if !taken_by_other {
            return self.literal.entry(hash).or_insert_with(new);
        }
        match self.overflow.iter().position(|c| &*c.name == name) {
            Some(at) => &mut self.overflow[at],
            None => {
                self.overflow.push(new());
                let last = self.overflow.len() - 1;
                &mut self.overflow[last]
            }
        }
    }

    fn child(&self, seg: &str) -> Option<&SegNode> {
        if self.literal.is_empty() {
            return None;
        }
        match self.literal.get(&hash_str(seg)) {
            Some(c) if *c.name == *seg => Some(c),
            _ => self.overflow.iter().find(|c| *c.name == *seg),
        }
    }

    fn find<'s>(&self, segs: impl Iterator<Item = &'s str> + Clone) -> Hit {
        let mut hit = Hit::default();
        self.walk(segs, &mut hit);
        hit
    }

    /// Visits every node the remaining segments can reach, stopping once
    /// the decision is settled.
    fn walk<'s>(&self, mut segs: impl Iterator<Item = &'s str> + Clone, hit: &mut Hit) {
        let Some(seg) = segs.next() else {
            hit.merge(self.end);
            return;
        };
        hit.merge(self.rest);
        if hit.settled(self.denies) {
            return;
        }
        if let Some(child) = self.child(seg) {
            child.walk(segs.clone(), hit);
            if hit.settled(self.denies) {
                return;
            }
        }
        if let Some(child) = &self.any {
            child.walk(segs, hit);
        }
    }
}

/// The FxHash of a string's bytes, finished so that both the low bits
/// (bucket index) and the top bits (tag) are mixed.
fn hash_str(s: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(s.as_bytes());
    let x = h.hash;
    x ^ (x >> 29) ^ (x >> 47)
}

/// Passes a precomputed `u64` hash through unchanged.
#[derive(Debug, Clone, Copy, Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed with this hasher; fold anything else.
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Exact variable names and `PREFIX*` patterns.
#[derive(Debug, Clone, Default)]
struct EnvIndex {
    names: FxMap<Box<str>, Hit>,
    prefixes: FxMap<Box<str>, Hit>,
    /// The distinct prefix lengths, ascending: one lookup each.
    lengths: Vec<usize>,
    denies: bool,
}

impl EnvIndex {
    fn insert(&mut self, pattern: &EnvPattern, side: Side, i: usize) {
        match pattern {
            EnvPattern::Name(n) => self
                .names
                .entry(n.as_str().into())
                .or_default()
                .set(side, i),
            EnvPattern::Prefix(p) => {
                self.denies |= side == Side::Deny;
                self.prefixes
                    .entry(p.as_str().into())
                    .or_default()
                    .set(side, i);
                if let Err(at) = self.lengths.binary_search(&p.len()) {
                    self.lengths.insert(at, p.len());
                }
            }
        }
    }

    fn find(&self, name: &str) -> Hit {
        let mut hit = self.names.get(name).copied().unwrap_or_default();
        for len in self.lengths.iter().take_while(|len| **len < name.len()) {
            if hit.settled(self.denies) {
                break;
            }
            if let Some(h) = name.get(..*len).and_then(|p| self.prefixes.get(p)) {
                hit.merge(*h);
            }
        }
        hit
    }
}

/// Port ranges for one host key, with their side and rule index.
#[derive(Debug, Clone, Default)]
struct Ports(Vec<(u16, u16, Side, usize)>);

impl Ports {
    fn insert(&mut self, port: PortPattern, side: Side, i: usize) {
        let (lo, hi) = port.bounds();
        self.0.push((lo, hi, side, i));
    }

    fn find(&self, port: u16, hit: &mut Hit) {
        for (lo, hi, side, i) in &self.0 {
            if *lo <= port && port <= *hi {
                hit.set(*side, *i);
            }
        }
    }
}

/// Host patterns of one net slot.
#[derive(Debug, Clone, Default)]
struct NetIndex {
    any_host: Ports,
    names: FxMap<Box<str>, Ports>,
    /// `*.suffix` keyed by the suffix.
    suffixes: FxMap<Box<str>, Ports>,
    /// Address blocks by prefix length, only lengths present.
    v4: Vec<(u8, FxMap<u128, Ports>)>,
    v6: Vec<(u8, FxMap<u128, Ports>)>,
    /// Whether a deny rule is a suffix or an address block (several of
    /// those can match one request).
    denies: bool,
}

impl NetIndex {
    fn insert(&mut self, pattern: &NetPattern, side: Side, i: usize) {
        let ports = match &pattern.host {
            HostPattern::Any => &mut self.any_host,
            HostPattern::Name(n) => self.names.entry(n.as_str().into()).or_default(),
            HostPattern::Suffix(s) => {
                self.denies |= side == Side::Deny;
                self.suffixes.entry(s.as_str().into()).or_default()
            }
            HostPattern::Ip(ip) => {
                let width = if ip.is_ipv4() { 32 } else { 128 };
                self.denies |= side == Side::Deny;
                self.block(Block::of(*ip, width))
            }
            HostPattern::Cidr(ip, len) => {
                self.denies |= side == Side::Deny;
                self.block(Block::of(*ip, *len))
            }
        };
        ports.insert(pattern.port, side, i);
    }

    fn block(&mut self, block: Block) -> &mut Ports {
        let buckets = if block.v6 { &mut self.v6 } else { &mut self.v4 };
        let at = match buckets.iter().position(|(len, _)| *len == block.len) {
            Some(at) => at,
            None => {
                buckets.push((block.len, FxMap::default()));
                buckets.len() - 1
            }
        };
        buckets[at].1.entry(block.bits).or_default()
    }

    fn find(&self, host: Host<'_>, port: u16) -> Hit {
        let mut hit = Hit::default();
        self.any_host.find(port, &mut hit);
        match host {
            Host::Name(name) => with_lowercase(name, |name| self.find_name(name, port, &mut hit)),
            Host::V4(a) => self.find_block(&self.v4, u128::from(u32::from(a)), 32, port, &mut hit),
            Host::V6(a) => self.find_block(&self.v6, u128::from(a), 128, port, &mut hit),
        }
        hit
    }

    fn find_name(&self, name: &str, port: u16, hit: &mut Hit) {
        if let Some(p) = self.names.get(name) {
            p.find(port, hit);
        }
        if self.suffixes.is_empty() {
            return;
        }
        // Every strict suffix after a dot; the apex itself is never looked up.
        for (at, _) in name.bytes().enumerate().filter(|(_, b)| *b == b'.') {
            if hit.settled(self.denies) {
                return;
            }
            if let Some(p) = name.get(at + 1..).and_then(|s| self.suffixes.get(s)) {
                p.find(port, hit);
            }
        }
    }

    fn find_block(
        &self,
        buckets: &[(u8, FxMap<u128, Ports>)],
        bits: u128,
        width: u8,
        port: u16,
        hit: &mut Hit,
    ) {
        for (len, map) in buckets {
            if hit.settled(self.denies) {
                return;
            }
            if let Some(p) = map.get(&net::mask(bits, *len, width)) {
                p.find(port, hit);
            }
        }
    }
}

/// Runs `f` on `name` lower-cased, in a stack buffer when needed.
fn with_lowercase(name: &str, f: impl FnOnce(&str)) {
    if !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return f(name);
    }
    let mut buf = [0u8; net::MAX_NAME];
    let Some(dst) = buf.get_mut(..name.len()) else {
        return;
    };
    for (d, s) in dst.iter_mut().zip(name.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    if let Ok(lower) = std::str::from_utf8(dst) {
        f(lower);
    }
}

/// A hash map with a fast, non-keyed hash: keys come from the host policy
/// and lookups cannot insert, so flooding is not a concern.
type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The multiply-rotate hash of rustc (`FxHasher`), over 8-byte words.
#[derive(Debug, Clone, Copy, Default)]
struct FxHasher {
    hash: u64,
}

impl FxHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            // A byte loop: cheaper than a variable-length copy for 1-7 bytes.
            let word = tail.iter().fold(0u64, |w, b| (w << 8) | u64::from(*b));
            self.add(word ^ ((tail.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_u128(&mut self, n: u128) {
        self.add(n as u64);
        self.add((n >> 64) as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(allows: &[&str], denies: &[&str]) -> GrantSet {
        let parse = |list: &[&str]| -> Vec<Capability> {
            list.iter()
                .map(|t| t.parse().expect("valid pattern"))
                .collect()
        };
        GrantSet::new(parse(allows), parse(denies))
    }

    fn check(set: &GrantSet, request: &str) -> Rule {
        set.check(&Request::parse(request).expect("valid request"))
            .rule
    }

    #[test]
    fn slots_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for d in Domain::ALL {
            for a in d.actions() {
                let s = slot(d, *a).expect("slot");
                assert!(s < SLOTS && seen.insert(s));
            }
        }
        assert_eq!(seen.len(), SLOTS);
        assert_eq!(slot(Domain::Fs, Action::Publish), None);
    }

    #[test]
    fn deny_overrides_and_rules_are_reported() {
        let s = set(
            &["fs:read:/data/**", "fs:read:/etc/hosts"],
            &["fs:read:/data/secret/**"],
        );
        assert_eq!(check(&s, "fs:read:/data/a"), Rule::Allow(0));
        assert_eq!(check(&s, "fs:read:/etc/hosts"), Rule::Allow(1));
        assert_eq!(check(&s, "fs:read:/data/secret/k"), Rule::Deny(0));
        assert_eq!(check(&s, "fs:read:/data"), Rule::NoGrant);
        assert_eq!(check(&s, "fs:write:/data/a"), Rule::NoGrant);
        let r = Request::parse("fs:read:/etc/passwd").expect("valid");
        let d = s.check(&r);
        assert_eq!(
            s.describe_request(&d, &r),
            "denied: no grant covers `fs:read:/etc/passwd` (deny by default)"
        );
        assert_eq!(
            s.describe(&s.check(&Request::parse("fs:read:/data/x").expect("valid"))),
            "allowed by grant `fs:read:/data/**`"
        );
        assert!(!s.is_empty());
        assert!(GrantSet::default().is_empty());
    }

    #[test]
    fn per_domain_indexes() {
        let s = set(
            &[
                "net:connect:*.Example.com:443",
                "net:connect:db.internal:5432-5433",
                "net:connect:10.0.0.0/8:*",
                "net:connect:[fd00::/8]:80",
                "net:connect:192.168.1.1:22",
                "kv:read:cache/*",
                "msg:publish:orders.>",
                "msg:request:billing",
                "log:write:warn",
                "log:write:info",
                "env:read:APP_*",
                "env:read:HOME",
                "proc:spawn:/usr/bin/git",
            ],
            &[],
        );
        let allowed = [
            "net:connect:API.example.com:443",
            "net:connect:db.internal:5433",
            "net:connect:10.255.255.255:1",
            "net:connect:[fd12::1]:80",
            "net:connect:[::ffff:192.168.1.1]:22",
            "kv:read:cache/x",
            "msg:publish:orders.a.b",
            "msg:request:billing",
            "log:write:info",
            "env:read:APP_X",
            "env:read:HOME",
            "proc:spawn:/usr/bin/git",
        ];
        for r in allowed {
            assert!(matches!(check(&s, r), Rule::Allow(_)), "{r}");
        }
        let denied = [
            "net:connect:example.com:443",
            "net:connect:db.internal:5434",
            "net:connect:11.0.0.0:1",
            "net:connect:[fd12::1]:81",
            "net:connect:192.168.1.2:22",
            "kv:read:cache/x/y",
            "msg:publish:orders",
            "msg:request:billing2",
            "log:write:debug",
            "env:read:APP_",
            "env:read:HOME2",
            "proc:spawn:/usr/bin/gitk",
        ];
        for r in denied {
            assert_eq!(check(&s, r), Rule::NoGrant, "{r}");
        }
        assert_eq!(check(&s, "log:write:error"), Rule::Allow(9));
    }

    #[test]
    fn builder_matches_new() {
        let a: Capability = "kv:read".parse().expect("valid");
        let b = GrantSet::builder().allow(a.clone()).deny(a.clone()).build();
        assert_eq!(b.allows(), std::slice::from_ref(&a));
        assert_eq!(b.denies(), std::slice::from_ref(&a));
        assert_eq!(check(&b, "kv:read:x"), Rule::Deny(0));
    }
}
