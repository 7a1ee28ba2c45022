//! Grant sets: allow and deny patterns compiled once into per-domain
//! indexes, so a check costs about the same for one grant or thousands and
//! allocates nothing.
//!
//! Layout: one slot per `(domain, action)` pair, for allows and for denies.
//! Each slot holds the first resource-less rule (any resource) and the
//! structures of its domain: a segment trie for paths, keys and topics;
//! tables keyed by a text's print (length and end words, see `print.rs`) for
//! exact component names, programs, variables and variable prefixes; a
//! label-suffix map for `*.suffix`; CIDR blocks bucketed by prefix length;
//! the lowest log floor.

use std::hash::Hasher as _;

use rustc_hash::FxHasher;

use super::glob::{self, Glob, Segment, Segments, Syntax};
use super::level::LogLevel;
use super::net::{self, Block, Host, HostPattern, NetPattern, PortPattern};
use super::print::Print;
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
    /// What the component's manifest declares (`requires` and
    /// `optional`), when known: refusal messages say whether the manifest
    /// or the policy left a request out.
    declared: Option<std::sync::Arc<[Capability]>>,
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
                m.insert(cap.resource(), side, rule_number(i));
            }
        }
        GrantSet {
            allows,
            denies,
            slots,
            declared: None,
        }
    }

    /// Records what the component's manifest declares (`requires` and
    /// `optional`), for refusal messages; it grants nothing.
    #[must_use]
    pub fn with_declared(mut self, declared: impl IntoIterator<Item = Capability>) -> GrantSet {
        self.declared = Some(declared.into_iter().collect());
        self
    }

    /// What the component's manifest declares, when the set was built
    /// with [`GrantSet::with_declared`].
    pub fn declared(&self) -> Option<&[Capability]> {
        self.declared.as_deref()
    }

    /// Decides `request`: a covering deny rule wins, then a covering allow
    /// rule, else deny by default. Allocates nothing.
    #[inline]
    pub fn check(&self, request: &Request<'_>) -> Decision {
        let hit = slot(request.domain(), request.action())
            .and_then(|s| self.slots.get(s))
            .map(|m| m.find(request))
            .unwrap_or_default();
        decide(hit)
    }

    /// [`GrantSet::check`] for a request already known to be an `env`
    /// one (built by [`Request::env`]): one lookup in the variable-name
    /// table, without the dispatch on the request's target.
    #[inline(always)]
    pub(crate) fn check_env(&self, action: Action, name: &str) -> Decision {
        let hit = slot(Domain::Env, action)
            .and_then(|s| self.slots.get(s))
            .map(|m| m.find_env(name))
            .unwrap_or_default();
        decide(hit)
    }

    /// Whether allow rule `rule` names one variable (`env:<action>:NAME`):
    /// a request it allows is that name, valid since the rule was parsed.
    #[inline]
    pub(crate) fn allows_exactly(&self, rule: usize) -> bool {
        matches!(
            self.allows.get(rule).and_then(Capability::resource),
            Some(ResourcePattern::Env(EnvPattern::Name(_)))
        )
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

/// The decision for the rules found: a deny wins, then an allow, else
/// deny by default.
#[inline]
fn decide(hit: Hit) -> Decision {
    if hit.deny != NONE {
        Decision {
            verdict: Verdict::Deny,
            rule: Rule::Deny(hit.deny as usize),
        }
    } else if hit.allow != NONE {
        Decision {
            verdict: Verdict::Allow,
            rule: Rule::Allow(hit.allow as usize),
        }
    } else {
        Decision {
            verdict: Verdict::Deny,
            rule: Rule::NoGrant,
        }
    }
}

/// The slot of a `(domain, action)` pair: 20 in all.
const SLOTS: usize = 20;

/// Marks a `(domain, action)` pair that has no slot in [`SLOT_TABLE`].
const NO_SLOT: u8 = u8::MAX;

/// Slots by `[domain][action]`, numbered in the order of [`Domain::ALL`]
/// and [`Domain::actions`]: a check finds its slot with one load instead of
/// searching the domain's action list.
const SLOT_TABLE: [[u8; ACTIONS]; Domain::ALL.len()] = slot_table();

/// The number of [`Action`] variants.
const ACTIONS: usize = Action::Signal as usize + 1;

const fn slot_table() -> [[u8; ACTIONS]; Domain::ALL.len()] {
    let mut table = [[NO_SLOT; ACTIONS]; Domain::ALL.len()];
    let mut next = 0;
    let mut d = 0;
    while d < Domain::ALL.len() {
        let domain = Domain::ALL[d];
        let actions = domain.actions();
        let mut a = 0;
        while a < actions.len() {
            table[domain as usize][actions[a] as usize] = next;
            next += 1;
            a += 1;
        }
        d += 1;
    }
    table
}

#[inline]
fn slot(domain: Domain, action: Action) -> Option<usize> {
    let s = SLOT_TABLE[domain as usize][action as usize];
    (s != NO_SLOT).then_some(usize::from(s))
}

/// Which list a rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Allow,
    Deny,
}

/// "No rule" in a [`Hit`] field.
const NONE: u32 = u32::MAX;

/// The rule number stored in the indexes: `u32` keeps [`Hit`] at 8 bytes.
fn rule_number(i: usize) -> u32 {
    // A `Vec<Capability>` of 2^32 - 1 rules would need hundreds of GiB,
    // so this cannot fail for a set that was built.
    u32::try_from(i)
        .ok()
        .filter(|n| *n != NONE)
        .expect("a grant set holds fewer than 2^32 - 1 rules")
}

/// The first allow and the first deny rule found for a request ([`NONE`]
/// when absent). Also the payload of index entries: allow and deny rules
/// share one index, so a check walks each structure once. Two packed
/// `u32`s, because a hit is merged at every node a check visits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hit {
    allow: u32,
    deny: u32,
}

impl Default for Hit {
    fn default() -> Self {
        Hit {
            allow: NONE,
            deny: NONE,
        }
    }
}

impl Hit {
    fn set(&mut self, side: Side, i: u32) {
        let slot = match side {
            Side::Allow => &mut self.allow,
            Side::Deny => &mut self.deny,
        };
        if *slot == NONE {
            *slot = i;
        }
    }

    fn merge(&mut self, other: Hit) {
        if self.allow == NONE {
            self.allow = other.allow;
        }
        if self.deny == NONE {
            self.deny = other.deny;
        }
    }

    /// Whether more searching cannot change the decision: a deny was
    /// found, or an allow was found and `denies_left` says no deny rule
    /// remains to be looked at.
    fn settled(self, denies_left: bool) -> bool {
        self.deny != NONE || (self.allow != NONE && !denies_left)
    }
}

/// Every rule of one `(domain, action)`.
#[derive(Debug, Clone, Default)]
struct Matcher {
    /// Rules without a resource.
    any: Hit,
    /// Whether any deny rule has a resource.
    denies: bool,
    segments: Trie,
    exact: ExactIndex,
    /// The lowest floor of each side.
    floor: [Option<(LogLevel, u32)>; 2],
    env: EnvIndex,
    net: NetIndex,
}

impl Matcher {
    fn insert(&mut self, resource: Option<&ResourcePattern>, side: Side, i: u32) {
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
                self.exact.insert(s.as_bytes(), side, i);
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

    /// [`Matcher::find`] for a variable name.
    #[inline(always)]
    fn find_env(&self, name: &str) -> Hit {
        let mut hit = self.any;
        if !hit.settled(self.denies) {
            hit.merge(self.env.find(name));
        }
        hit
    }

    #[inline]
    fn find(&self, request: &Request<'_>) -> Hit {
        let mut hit = self.any;
        if hit.settled(self.denies) {
            return hit;
        }
        let text = request.resource();
        let segments = |syntax| self.segments.find(glob::request_segments(text, syntax));
        let found = match request.target {
            Target::Path => segments(Syntax::Path),
            Target::Key => segments(Syntax::Key),
            Target::Topic => segments(Syntax::Topic),
            Target::Component | Target::Program => self.exact.get(text.as_bytes()),
            Target::Level(level) => {
                let pick = |f: Option<(LogLevel, u32)>| match f {
                    Some((floor, i)) if level >= floor => i,
                    _ => NONE,
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

/// A trie over path, key or topic segments, its nodes in one vector.
#[derive(Debug, Clone)]
struct Trie {
    /// Node 0 is the root; no node points back to it, so 0 doubles as
    /// "no node" in [`TrieNode::any`] and [`Children::find`].
    nodes: Vec<TrieNode>,
}

impl Default for Trie {
    fn default() -> Self {
        Trie {
            nodes: vec![TrieNode::default()],
        }
    }
}

/// One trie node: the rules ending at it and its children.
#[derive(Debug, Clone, Default)]
struct TrieNode {
    /// Patterns that end exactly here.
    end: Hit,
    /// Patterns that end here with `**` / `>`: one or more more segments.
    rest: Hit,
    /// Whether a deny pattern ends at or below this node.
    denies: bool,
    /// The `*` child, or 0.
    any: u32,
    literal: Children,
}

impl Trie {
    fn insert(&mut self, glob: &Glob, side: Side, i: u32) {
        let deny = side == Side::Deny;
        let mut at = 0;
        self.nodes[at].denies |= deny;
        for seg in glob.segments() {
            at = match seg {
                Segment::Literal(l) => self.literal_child(at, l.as_bytes()),
                Segment::Any => self.any_child(at),
            };
            self.nodes[at].denies |= deny;
        }
        let node = &mut self.nodes[at];
        if glob.has_rest() {
            node.rest.set(side, i);
        } else {
            node.end.set(side, i);
        }
    }

    /// A fresh node's number.
    fn push(&mut self) -> u32 {
        self.nodes.push(TrieNode::default());
        u32::try_from(self.nodes.len() - 1).expect("fewer than 2^32 trie nodes")
    }

    fn any_child(&mut self, at: usize) -> usize {
        if self.nodes[at].any == 0 {
            let child = self.push();
            self.nodes[at].any = child;
        }
        self.nodes[at].any as usize
    }

    fn literal_child(&mut self, at: usize, name: &[u8]) -> usize {
        let found = self.nodes[at].literal.find(name, glob::prefix_word(name));
        if found != 0 {
            return found as usize;
        }
        let child = self.push();
        self.nodes[at].literal.insert(name, child);
        child as usize
    }

    fn find(&self, segs: Segments<'_>) -> Hit {
        self.walk(0, segs, Hit::default())
    }

    /// Visits every node the remaining segments can reach, literal child
    /// before `*` child, stopping once the decision is settled; returns
    /// `hit` with what was found merged in. A loop that recurses only where
    /// a node has both a matching literal child and a `*` child, so the
    /// common path costs one iteration per segment. The hit and the
    /// segments travel by value so they stay in registers.
    fn walk(&self, mut at: usize, mut segs: Segments<'_>, mut hit: Hit) -> Hit {
        while let Some(node) = self.nodes.get(at) {
            if segs.is_empty() {
                hit.merge(node.end);
                return hit;
            }
            hit.merge(node.rest);
            // Checked before the next segment is split off: a deny (or an
            // allow with no deny below) ends the walk at once.
            if hit.settled(node.denies) {
                return hit;
            }
            let Some((seg, key)) = segs.next_keyed() else {
                return hit;
            };
            let literal = node.literal.find(seg, key);
            at = match (literal, node.any) {
                (0, 0) => return hit,
                (0, any) => any as usize,
                (literal, 0) => literal as usize,
                (literal, any) => {
                    hit = self.walk(literal as usize, segs, hit);
                    if hit.settled(node.denies) {
                        return hit;
                    }
                    any as usize
                }
            };
        }
        hit
    }
}

/// Up to this many children are found by a scan; more get a hash index.
const SCAN_MAX: usize = 8;

/// The literal children of a trie node.
#[derive(Debug, Clone, Default)]
struct Children {
    list: Vec<Child>,
    /// Empty until the node has more than [`SCAN_MAX`] children.
    index: HashIndex,
}

/// A literal child, in insertion order.
#[derive(Debug, Clone)]
struct Child {
    /// [`glob::prefix_word`] of the name: one compare rejects almost every
    /// other segment, and decides names of up to 8 bytes.
    key: u64,
    len: usize,
    node: u32,
    name: Box<[u8]>,
}

impl Child {
    #[inline]
    fn is(&self, seg: &[u8], key: u64) -> bool {
        self.key == key
            && self.len == seg.len()
            && (self.len <= 8 || self.name.get(8..) == seg.get(8..))
    }
}

impl Children {
    /// The child named `seg` (with its [`glob::prefix_word`] `key`), or 0.
    /// Few children are scanned, which is cheaper than hashing `seg`.
    #[inline]
    fn find(&self, seg: &[u8], key: u64) -> u32 {
        if self.index.is_empty() {
            self.list
                .iter()
                .find(|c| c.is(seg, key))
                .map_or(0, |c| c.node)
        } else {
            self.find_hashed(seg, key)
        }
    }

    /// [`Children::find`] in a node with many children.
    #[inline(never)]
    fn find_hashed(&self, seg: &[u8], key: u64) -> u32 {
        self.index
            .find(seg_hash(seg, key), |e| {
                self.list.get(e).is_some_and(|c| c.is(seg, key))
            })
            .and_then(|e| self.list.get(e))
            .map_or(0, |c| c.node)
    }

    fn insert(&mut self, name: &[u8], node: u32) {
        let key = glob::prefix_word(name);
        self.list.push(Child {
            key,
            len: name.len(),
            node,
            name: name.into(),
        });
        if self.list.len() > SCAN_MAX {
            if self.index.is_empty() {
                for c in &self.list {
                    self.index.push(seg_hash(&c.name, c.key));
                }
            } else {
                self.index.push(seg_hash(name, key));
            }
        }
    }
}

/// The hash of a segment: its key alone when that holds the whole
/// segment (the common case), else all of its bytes.
fn seg_hash(seg: &[u8], key: u64) -> u64 {
    if seg.len() <= 8 {
        let mut h = FxHasher::default();
        h.write_u64(key);
        h.write_u64(seg.len() as u64);
        h.finish()
    } else {
        hash_bytes(seg, 0)
    }
}

/// An open-addressing table from a string's hash to its entry number in a
/// list kept by the owner, which verifies the text. Linear probing, at
/// most a quarter full: a lookup costs a hash and about one probe however
/// many entries there are (a miss at half load would take 2.5 on average).
#[derive(Debug, Clone, Default)]
struct HashIndex {
    /// Entry number + 1 per slot, 0 when empty; a power of two long.
    slots: Vec<u32>,
    /// The hash of each entry, by entry number.
    hashes: Vec<u64>,
}

impl HashIndex {
    fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Adds the next entry (numbered `hashes.len()`).
    fn push(&mut self, hash: u64) {
        self.hashes.push(hash);
        if self.hashes.len() * 4 > self.slots.len() {
            let size = (self.hashes.len() * 4).next_power_of_two().max(16);
            self.slots = vec![0; size];
            for e in 0..self.hashes.len() {
                self.place(e);
            }
        } else {
            self.place(self.hashes.len() - 1);
        }
    }

    fn place(&mut self, entry: usize) {
        let mask = self.slots.len() - 1;
        let mut at = bucket(self.hashes[entry]) & mask;
        while self.slots[at] != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = u32::try_from(entry + 1).expect("fewer than 2^32 entries");
    }

    /// The first entry with `hash` that `is` accepts.
    #[inline]
    fn find(&self, hash: u64, mut is: impl FnMut(usize) -> bool) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut at = bucket(hash) & mask;
        loop {
            let entry = (*self.slots.get(at)? as usize).checked_sub(1)?;
            if self.hashes.get(entry) == Some(&hash) && is(entry) {
                return Some(entry);
            }
            at = (at + 1) & mask;
        }
    }
}

/// The bucket bits of a hash: `FxHasher::finish` already rotates its
/// well-mixed high bits down to the low ones.
fn bucket(hash: u64) -> usize {
    hash as usize
}

/// Folds ASCII letters to lower case in every byte of a word (and maps
/// `_` to DEL, harmless in a hash whose matches are verified).
const FOLD_CASE: u64 = 0x2020_2020_2020_2020;

/// FxHash of `bytes` seeded with its length, over 8-byte words OR-ed with
/// `fold` (0, or [`FOLD_CASE`] for case-insensitive host names). The last
/// partial word is read as the final 8 bytes when the text is that long,
/// avoiding a byte loop.
#[inline]
fn hash_bytes(bytes: &[u8], fold: u64) -> u64 {
    let mut h = FxHasher::default();
    h.write_u64(bytes.len() as u64);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        h.write_u64(word(chunk) | fold);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let last = match bytes.len().checked_sub(8) {
            Some(at) => word(bytes.get(at..).unwrap_or_default()),
            None => tail.iter().fold(0u64, |w, b| (w << 8) | u64::from(*b)),
        };
        h.write_u64(last | fold);
    }
    h.finish()
}

/// Whether `a` and `b` are equal once every byte is OR-ed with `fold`:
/// word by word, in the same shape as [`hash_bytes`]. With [`FOLD_CASE`]
/// this is exactly ASCII case-insensitive equality for validated host
/// names (letters, digits, `-`, `_`, `.`): only letters differ in bit
/// 0x20 from another byte allowed in a name.
fn same(a: &[u8], b: &[u8], fold: u64) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a.chunks_exact(8), b.chunks_exact(8));
    if !(&mut x)
        .zip(&mut y)
        .all(|(x, y)| word(x) | fold == word(y) | fold)
    {
        return false;
    }
    let tail = x.remainder().len();
    if tail == 0 {
        return true;
    }
    match a.len().checked_sub(8) {
        // The last 8 bytes, overlapping the words already compared.
        Some(at) => word(&a[at..]) | fold == word(&b[at..]) | fold,
        None => x
            .remainder()
            .iter()
            .zip(y.remainder())
            .all(|(p, q)| p | fold as u8 == q | fold as u8),
    }
}

/// The little-endian word of exactly 8 bytes (0 for any other length).
fn word(bytes: &[u8]) -> u64 {
    <[u8; 8]>::try_from(bytes).map_or(0, u64::from_le_bytes)
}

/// Exact texts (variable names and prefixes, programs, components) to
/// their rules: open addressing over [`Print`]s kept in the slots, at most
/// half full. A lookup reads the text's ends (no loop, no hashing of every
/// byte), probes about one slot, and compares the text itself only beyond
/// 16 bytes, where the print does not decide equality.
#[derive(Debug, Clone, Default)]
struct ExactIndex {
    /// A power of two long, or empty; a slot with no rule is free.
    slots: Vec<ExactSlot>,
    /// Entries in use.
    count: usize,
    /// Texts longer than 16 bytes, by [`ExactSlot::long`].
    long: Vec<Box<[u8]>>,
}

/// One entry of an [`ExactIndex`].
#[derive(Debug, Clone, Copy, Default)]
struct ExactSlot {
    print: Print,
    /// Both sides [`NONE`] in a free slot: an entry has at least one rule.
    hit: Hit,
    /// The text's number in [`ExactIndex::long`] when it is longer than 16
    /// bytes.
    long: u32,
}

impl ExactSlot {
    fn is_free(&self) -> bool {
        self.hit == Hit::default()
    }
}

impl ExactIndex {
    fn insert(&mut self, text: &[u8], side: Side, i: u32) {
        let print = Print::of(text);
        if let Some(at) = self.position(text, &print) {
            self.slots[at].hit.set(side, i);
            return;
        }
        if (self.count + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let long = if print.is_whole() {
            0
        } else {
            self.long.push(text.into());
            u32::try_from(self.long.len() - 1).expect("fewer than 2^32 texts")
        };
        let mut hit = Hit::default();
        hit.set(side, i);
        let at = self.free_slot(&print);
        self.slots[at] = ExactSlot { print, hit, long };
        self.count += 1;
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![ExactSlot::default(); size]);
        for slot in old.into_iter().filter(|s| !s.is_free()) {
            let at = self.free_slot(&slot.print);
            self.slots[at] = slot;
        }
    }

    /// The first free slot on `print`'s probe sequence (the table is never
    /// full).
    fn free_slot(&self, print: &Print) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = print.hash() as usize & mask;
        while !self.slots[at].is_free() {
            at = (at + 1) & mask;
        }
        at
    }

    /// The slot holding `text`.
    #[inline]
    fn position(&self, text: &[u8], print: &Print) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut at = print.hash() as usize & mask;
        loop {
            let slot = self.slots.get(at)?;
            if slot.is_free() {
                return None;
            }
            if slot.print == *print
                && (print.is_whole()
                    || self.long.get(slot.long as usize).map(|t| &**t) == Some(text))
            {
                return Some(at);
            }
            at = (at + 1) & mask;
        }
    }

    /// The rules for exactly `text`.
    #[inline(always)]
    fn get(&self, text: &[u8]) -> Hit {
        if self.count == 0 {
            return Hit::default();
        }
        let print = Print::of(text);
        if !print.is_whole() {
            return self.get_long(text, &print);
        }
        // Up to 16 bytes the print is the text: the probe compares prints
        // only (a slot of a longer text differs in length), in few
        // registers.
        let Some(mask) = self.slots.len().checked_sub(1) else {
            return Hit::default();
        };
        let mut at = print.hash() as usize & mask;
        loop {
            let Some(slot) = self.slots.get(at) else {
                return Hit::default();
            };
            if slot.is_free() {
                return Hit::default();
            }
            if slot.print == print {
                return slot.hit;
            }
            at = (at + 1) & mask;
        }
    }

    /// [`ExactIndex::get`] for a text longer than its print.
    #[inline(never)]
    fn get_long(&self, text: &[u8], print: &Print) -> Hit {
        self.position(text, print)
            .and_then(|at| self.slots.get(at))
            .map_or_else(Hit::default, |s| s.hit)
    }
}

/// Exact variable names and `PREFIX*` patterns.
#[derive(Debug, Clone, Default)]
struct EnvIndex {
    names: ExactIndex,
    prefixes: ExactIndex,
    /// The distinct prefix lengths, ascending: one lookup each.
    lengths: Vec<usize>,
    denies: bool,
}

impl EnvIndex {
    fn insert(&mut self, pattern: &EnvPattern, side: Side, i: u32) {
        match pattern {
            EnvPattern::Name(n) => self.names.insert(n.as_bytes(), side, i),
            EnvPattern::Prefix(p) => {
                self.denies |= side == Side::Deny;
                self.prefixes.insert(p.as_bytes(), side, i);
                if let Err(at) = self.lengths.binary_search(&p.len()) {
                    self.lengths.insert(at, p.len());
                }
            }
        }
    }

    #[inline(always)]
    fn find(&self, name: &str) -> Hit {
        let name = name.as_bytes();
        let mut hit = self.names.get(name);
        for len in self.lengths.iter().take_while(|len| **len < name.len()) {
            if hit.settled(self.denies) {
                break;
            }
            if let Some(prefix) = name.get(..*len) {
                hit.merge(self.prefixes.get(prefix));
            }
        }
        hit
    }
}

/// Port ranges for one host key, with their side and rule number.
#[derive(Debug, Clone, Default)]
struct Ports(Vec<(u16, u16, Side, u32)>);

impl Ports {
    fn insert(&mut self, port: PortPattern, side: Side, i: u32) {
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

/// Host names (stored lower-case) to their ports, looked up
/// case-insensitively, so a request name is never copied to lower case.
#[derive(Debug, Clone, Default)]
struct NameTable {
    entries: Vec<(Box<str>, Ports)>,
    index: HashIndex,
}

impl NameTable {
    fn entry(&mut self, name: &str) -> &mut Ports {
        let at = match self.position(name) {
            Some(at) => at,
            None => {
                self.entries.push((name.into(), Ports::default()));
                self.index.push(hash_bytes(name.as_bytes(), FOLD_CASE));
                self.entries.len() - 1
            }
        };
        &mut self.entries[at].1
    }

    fn position(&self, name: &str) -> Option<usize> {
        let hash = hash_bytes(name.as_bytes(), FOLD_CASE);
        self.index.find(hash, |e| {
            self.entries
                .get(e)
                .is_some_and(|(n, _)| same(n.as_bytes(), name.as_bytes(), FOLD_CASE))
        })
    }

    fn get(&self, name: &str) -> Option<&Ports> {
        if self.entries.is_empty() {
            return None;
        }
        self.entries.get(self.position(name)?).map(|(_, p)| p)
    }
}

/// Host patterns of one net slot.
#[derive(Debug, Clone, Default)]
struct NetIndex {
    any_host: Ports,
    names: NameTable,
    /// `*.suffix` keyed by the suffix.
    suffixes: NameTable,
    /// Address blocks by prefix length, only lengths present.
    v4: Vec<(u8, FxMap<u128, Ports>)>,
    v6: Vec<(u8, FxMap<u128, Ports>)>,
    /// Whether a deny rule is a suffix or an address block (several of
    /// those can match one request).
    denies: bool,
}

impl NetIndex {
    fn insert(&mut self, pattern: &NetPattern, side: Side, i: u32) {
        let ports = match &pattern.host {
            HostPattern::Any => &mut self.any_host,
            HostPattern::Name(n) => self.names.entry(n),
            HostPattern::Suffix(s) => {
                self.denies |= side == Side::Deny;
                self.suffixes.entry(s)
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
            Host::Name(name) => self.find_name(name, port, &mut hit),
            Host::V4(a) => self.find_block(&self.v4, u128::from(u32::from(a)), 32, port, &mut hit),
            Host::V6(a) => self.find_block(&self.v6, u128::from(a), 128, port, &mut hit),
        }
        hit
    }

    fn find_name(&self, name: &str, port: u16, hit: &mut Hit) {
        if let Some(p) = self.names.get(name) {
            p.find(port, hit);
        }
        if self.suffixes.entries.is_empty() {
            return;
        }
        // Every strict suffix after a dot, longest first; the apex itself
        // is never looked up.
        let mut rest = name;
        while let Some(dot) = rest.bytes().position(|b| b == b'.') {
            if hit.settled(self.denies) {
                return;
            }
            rest = rest.get(dot + 1..).unwrap_or_default();
            if let Some(p) = self.suffixes.get(rest) {
                p.find(port, hit);
                // Settled now means settled at the next dot too: skip the
                // scan for it.
                if hit.settled(self.denies) {
                    return;
                }
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

/// A hash map with a fast, non-keyed hash: keys come from the host policy
/// and lookups cannot insert, so flooding is not a concern.
type FxMap<K, V> = rustc_hash::FxHashMap<K, V>;

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

    /// The `env` shortcut decides as the general check does: names,
    /// prefixes, deny rules of either kind, `env:read` without a name.
    #[test]
    fn env_checks_agree_with_the_general_check() {
        let sets = [
            set(&["env:read:APP_*", "env:read:HOME"], &["env:read:APP_KEY"]),
            set(&["env:read"], &["env:read:SECRET_*", "env:read:HOME"]),
            set(&["env:read:A", "env:read:AB*"], &[]),
            set(&["fs:read:/**"], &["env:read"]),
            set(&[], &[]),
        ];
        let names = [
            "A", "AB", "ABC", "APP_", "APP_MODE", "APP_KEY", "HOME", "HOMES", "SECRET_X",
            "SECRET_", "PATH", "_",
        ];
        for (i, s) in sets.iter().enumerate() {
            for name in names {
                let request = Request::env(Action::Read, name).expect("valid name");
                assert_eq!(
                    s.check_env(Action::Read, name),
                    s.check(&request),
                    "set {i}: {name}"
                );
            }
        }
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

    /// Many siblings (hashed children and name tables, grown several
    /// times) and segments that share their first 8 bytes agree with
    /// matching each pattern on its own.
    #[test]
    fn big_nodes_agree_with_each_pattern() {
        let mut allows = Vec::new();
        for i in 0..40 {
            allows.push(format!("fs:read:/srv/app{i}/**"));
            allows.push(format!("fs:read:/srv/longprefix{i}/*"));
            allows.push(format!("kv:read:b{i}/*"));
            allows.push(format!("net:connect:svc{i}.internal:80"));
            allows.push(format!("net:connect:*.t{i}.Example.com:443"));
        }
        allows.push("fs:read:/srv/longprefix/x".to_owned());
        let allows: Vec<&str> = allows.iter().map(String::as_str).collect();
        let denies = [
            "fs:read:/srv/app7/secret/**",
            "net:connect:*.x.t3.example.com:*",
        ];
        let s = set(&allows, &denies);
        let requests = [
            "fs:read:/srv/app7/a",
            "fs:read:/srv/app7/secret/k",
            "fs:read:/srv/app39/a/b",
            "fs:read:/srv/app40/a",
            "fs:read:/srv/app",
            "fs:read:/srv/longprefix12/a",
            "fs:read:/srv/longprefix12/a/b",
            "fs:read:/srv/longprefix/x",
            "fs:read:/srv/longprefi/x",
            "fs:read:/srv/longprefix1",
            "kv:read:b3/k",
            "kv:read:b33/k",
            "kv:read:b333/k",
            "net:connect:svc5.internal:80",
            "net:connect:SVC5.Internal:80",
            "net:connect:svc5.internal:81",
            "net:connect:svc55.internal:80",
            "net:connect:a.t9.example.com:443",
            "net:connect:A.B.T9.EXAMPLE.COM:443",
            "net:connect:t9.example.com:443",
            "net:connect:y.x.t3.example.com:443",
            "net:connect:a.t3.example.com:443",
        ];
        for text in requests {
            let r = Request::parse(text).expect("valid request");
            let caps = |list: &[&str]| -> Vec<Capability> {
                list.iter().map(|t| t.parse().expect("valid")).collect()
            };
            let deny = caps(&denies).iter().position(|c| c.covers(&r));
            let allow = caps(&allows).iter().position(|c| c.covers(&r));
            let expected = match (deny, allow) {
                (Some(i), _) => Rule::Deny(i),
                (None, Some(i)) => Rule::Allow(i),
                (None, None) => Rule::NoGrant,
            };
            assert_eq!(s.check(&r).rule, expected, "{text}");
        }
    }

    /// The exact-text tables (variables, prefixes, programs, components)
    /// decide as a linear scan does, over names of every length from 1 to
    /// 40 bytes that differ from a grant in one byte, in length only, or
    /// only beyond the 16 bytes a print holds, with denies overlapping
    /// allows and prefixes at every length.
    #[test]
    fn exact_tables_agree_with_a_linear_scan() {
        let base = "ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789ABCD";
        let mut allows = Vec::new();
        let mut denies = Vec::new();
        let mut requests = Vec::new();
        for len in 1..=40 {
            let name = &base[..len];
            allows.push(format!("env:read:{name}"));
            allows.push(format!("proc:spawn:/bin/{name}"));
            allows.push(format!("msg:request:c{}", name.to_ascii_lowercase()));
            if len % 3 == 0 {
                allows.push(format!("env:read:{name}*"));
            }
            if len % 5 == 0 {
                denies.push(format!("env:read:{name}"));
                denies.push(format!("proc:spawn:/bin/{name}"));
            }
            if len % 7 == 0 {
                denies.push(format!("env:read:{name}_*"));
            }
            requests.push(format!("env:read:{name}"));
            requests.push(format!("env:read:{name}_"));
            requests.push(format!("env:read:{name}_X"));
            requests.push(format!("proc:spawn:/bin/{name}"));
            requests.push(format!("proc:spawn:/bin/{name}x"));
            requests.push(format!("msg:request:c{}", name.to_ascii_lowercase()));
            for at in 0..len {
                let mut bytes = name.as_bytes().to_vec();
                bytes[at] = if bytes[at] == b'Q' { b'R' } else { b'Q' };
                let changed = String::from_utf8(bytes).expect("ascii");
                requests.push(format!("env:read:{changed}"));
                requests.push(format!("proc:spawn:/bin/{changed}"));
                requests.push(format!("msg:request:c{}", changed.to_ascii_lowercase()));
            }
        }
        let parse = |list: &[String]| -> Vec<Capability> {
            list.iter()
                .map(|t| t.parse().expect("valid pattern"))
                .collect()
        };
        let (allows, denies) = (parse(&allows), parse(&denies));
        let s = GrantSet::new(allows.clone(), denies.clone());
        let mut decided = [0usize; 3];
        for text in &requests {
            let r = Request::parse(text).expect("valid request");
            let denied = denies.iter().any(|c| c.covers(&r));
            let allowed = allows.iter().any(|c| c.covers(&r));
            // The verdict is the scan's, and the rule named covers the
            // request (an exact name and a prefix may both cover it).
            let kind = match s.check(&r).rule {
                Rule::Deny(i) => {
                    assert!(denied && denies[i].covers(&r), "{text}: deny {i}");
                    1
                }
                Rule::Allow(i) => {
                    assert!(!denied && allows[i].covers(&r), "{text}: allow {i}");
                    0
                }
                Rule::NoGrant => {
                    assert!(!denied && !allowed, "{text}: no grant");
                    2
                }
            };
            decided[kind] += 1;
        }
        assert!(decided.iter().all(|n| *n > 20), "{decided:?}");
    }

    #[test]
    fn hash_index_finds_colliding_entries() {
        let mut index = HashIndex::default();
        for _ in 0..20 {
            index.push(7);
        }
        assert_eq!(index.find(7, |e| e == 13), Some(13));
        assert_eq!(index.find(7, |_| false), None);
        assert_eq!(index.find(8, |_| true), None);
        assert_eq!(HashIndex::default().find(7, |_| true), None);
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
