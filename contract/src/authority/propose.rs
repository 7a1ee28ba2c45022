//! The narrowest grants covering what a component was seen doing.
//!
//! Input: the component's declared capabilities (its manifest) and the
//! decisions recorded while it ran (`airssys run --observe NAME --audit
//! FILE`). Output: one rule per resource seen, a wildcard only where one
//! level of a path, key or topic held [`WILDCARD_THRESHOLD`] or more
//! distinct names, never beyond what the manifest declares; requests the
//! manifest did not declare (or that were refused for another reason) are
//! listed apart, not granted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::capability::{Action, Capability, Domain, LogLevel, Request, ResourcePattern};

/// Distinct names under one directory, bucket or topic level from which
/// the proposal grants the level with one wildcard (`dir/*`) instead of
/// each name: 3. Below it every name is granted exactly.
pub const WILDCARD_THRESHOLD: usize = 3;

/// One recorded decision of a guarded host call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The request's domain.
    pub domain: Domain,
    /// The request's action.
    pub action: Action,
    /// The request's resource as recorded (possibly cut short by the audit
    /// log, then not granted: see [`Proposal::left_out`]).
    pub resource: String,
    /// Whether the call was allowed.
    pub allowed: bool,
    /// The deciding rule, in words (for the requests left out).
    pub rule: String,
}

/// A proposed grant and what it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProposedRule {
    /// The pattern to grant.
    #[serde(serialize_with = "super::ser::cap")]
    pub capability: Capability,
    /// Observed allowed requests it covers.
    pub requests: usize,
    /// Distinct resources among them.
    pub resources: usize,
    /// One resource it covers, as recorded.
    pub example: String,
    /// Why it is as wide as it is, in words.
    pub reason: String,
}

/// Requests seen but not granted by the proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undeclared {
    /// `domain:action:resource`.
    pub request: String,
    /// How many times.
    pub requests: usize,
    /// Why it is not granted.
    pub reason: String,
}

/// What [`propose`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proposal {
    /// The component.
    pub component: String,
    /// The grants, sorted by pattern.
    pub grants: Vec<ProposedRule>,
    /// Requests seen and not granted, sorted.
    pub left_out: Vec<Undeclared>,
    /// Required capabilities no observed request used (granted whole all
    /// the same: the component does not load without them).
    #[serde(serialize_with = "super::ser::caps")]
    pub unused_required: Vec<Capability>,
}

/// An allowed request the manifest declares, parsed.
struct Seen<'a> {
    resource: &'a str,
    request: Request<'a>,
}

/// Proposes the narrowest grants for `component`, whose manifest declares
/// `requires` and `optional`, covering every allowed request in `observed`
/// that the manifest declares.
///
/// Guarantees (checked by the property test `contract/tests/propose.rs`):
/// every proposed grant lies inside a declared capability; every observed
/// allowed request the manifest declares is covered by a proposed grant;
/// every required capability lies inside a proposed grant (the component
/// loads: a required capability is granted whole, see `docs/policy.md`).
///
/// # Examples
///
/// ```
/// use airssys_contract::authority::{Observation, propose};
/// use airssys_contract::capability::{Action, Domain};
///
/// let seen = |key: &str| Observation {
///     domain: Domain::Kv,
///     action: Action::Read,
///     resource: key.to_owned(),
///     allowed: true,
///     rule: String::new(),
/// };
/// let optional = ["kv:read:counter/*".parse().unwrap()];
/// let proposal = propose("counter", &[], &optional, &[seen("counter/starts")]);
/// assert_eq!(proposal.grants[0].capability.to_string(), "kv:read:counter/starts");
/// ```
pub fn propose(
    component: &str,
    requires: &[Capability],
    optional: &[Capability],
    observed: &[Observation],
) -> Proposal {
    let declared: Vec<&Capability> = requires.iter().chain(optional).collect();
    let mut left_out: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut groups: BTreeMap<(Domain, Action), Vec<Seen<'_>>> = BTreeMap::new();
    for o in observed {
        let text = format!("{}:{}:{}", o.domain, o.action, o.resource);
        let request = Request::new(o.domain, o.action, &o.resource);
        let reason = match &request {
            _ if !o.allowed => o.rule.clone(),
            Err(e) => format!("not a valid request as recorded ({e}); cut short by the audit log?"),
            Ok(r) if !declared.iter().any(|d| d.covers(r)) => {
                "allowed, but the manifest does not declare it".to_owned()
            }
            Ok(request) => {
                groups.entry((o.domain, o.action)).or_default().push(Seen {
                    resource: &o.resource,
                    request: *request,
                });
                continue;
            }
        };
        *left_out.entry((text, reason)).or_default() += 1;
    }

    let mut grants: Vec<ProposedRule> = Vec::new();
    // Required capabilities are granted whole: the load needs them so.
    let mut unused_required = Vec::new();
    for r in requires {
        let covered: Vec<&Seen<'_>> = groups
            .get(&(r.domain(), r.action()))
            .into_iter()
            .flatten()
            .filter(|s| r.covers(&s.request))
            .collect();
        if covered.is_empty() {
            unused_required.push(r.clone());
        }
        grants.push(rule(
            r.clone(),
            &covered,
            "required by the manifest: the component does not load unless it is granted whole"
                .to_owned(),
        ));
    }
    for ((domain, action), seen) in &groups {
        let rest: Vec<&Seen<'_>> = seen
            .iter()
            .filter(|s| !requires.iter().any(|r| r.covers(&s.request)))
            .collect();
        if rest.is_empty() {
            continue;
        }
        grants.extend(narrowest(*domain, *action, &rest, &declared));
    }
    grants.sort_by_key(|g| g.capability.to_string());
    grants.dedup_by(|a, b| a.capability == b.capability);
    Proposal {
        component: component.to_owned(),
        grants,
        left_out: left_out
            .into_iter()
            .map(|((request, reason), requests)| Undeclared {
                request,
                requests,
                reason,
            })
            .collect(),
        unused_required,
    }
}

fn rule(capability: Capability, covered: &[&Seen<'_>], reason: String) -> ProposedRule {
    let resources: BTreeSet<&str> = covered.iter().map(|s| s.resource).collect();
    ProposedRule {
        capability,
        requests: covered.len(),
        resources: resources.len(),
        example: covered
            .first()
            .map(|s| s.resource.to_owned())
            .unwrap_or_default(),
        reason,
    }
}

/// The narrowest rules covering `seen` (all of one domain and action, all
/// declared), each inside a declared capability.
fn narrowest(
    domain: Domain,
    action: Action,
    seen: &[&Seen<'_>],
    declared: &[&Capability],
) -> Vec<ProposedRule> {
    let inside_declared = |c: &Capability| declared.iter().any(|d| c.is_subset_of(d));
    // A candidate is kept only if it lies inside the manifest and covers
    // what it is meant to; otherwise the declared capability itself.
    let checked = |text: String, covered: &[&Seen<'_>], reason: String| -> Option<ProposedRule> {
        match Capability::parse(&text) {
            Ok(c) if inside_declared(&c) && covered.iter().all(|s| c.covers(&s.request)) => {
                Some(rule(c, covered, reason))
            }
            _ => {
                let fallback = declared_for(&covered.first()?.request, declared)?;
                let why = format!(
                    "`{text}` cannot be granted exactly (a name that reads as a wildcard?); the \
                     manifest's own pattern instead"
                );
                Some(rule(fallback, covered, why))
            }
        }
    };
    let mut out = Vec::new();
    let hierarchical = matches!(domain, Domain::Fs | Domain::Kv)
        || (domain == Domain::Msg && action != Action::Request);
    match domain {
        Domain::Log => {
            let floor = seen
                .iter()
                .filter_map(|s| level(s.resource))
                .min()
                .unwrap_or(LogLevel::Trace);
            out.extend(checked(
                format!("log:write:{floor}"),
                seen,
                format!("the lowest level seen is `{floor}`"),
            ));
        }
        _ if hierarchical => {
            let sep = if domain == Domain::Msg { '.' } else { '/' };
            let mut by_parent: BTreeMap<&str, Vec<&Seen<'_>>> = BTreeMap::new();
            for s in seen {
                let parent = s.resource.rsplit_once(sep).map_or("", |(p, _)| p);
                by_parent.entry(parent).or_default().push(s);
            }
            for (parent, items) in by_parent {
                let names: BTreeSet<&str> = items.iter().map(|s| s.resource).collect();
                let wildcard = format!("{domain}:{action}:{parent}{sep}*");
                let level_ok = (!parent.is_empty() || domain == Domain::Fs)
                    && names.len() >= WILDCARD_THRESHOLD
                    && Capability::parse(&wildcard).is_ok_and(|c| inside_declared(&c));
                if level_ok {
                    let shown = if parent.is_empty() { "/" } else { parent };
                    out.extend(checked(
                        wildcard,
                        &items,
                        format!(
                            "{} names seen under `{shown}` (a wildcard from {WILDCARD_THRESHOLD})",
                            names.len()
                        ),
                    ));
                    continue;
                }
                out.extend(exact(domain, action, &items, &checked));
            }
        }
        _ => out.extend(exact(domain, action, seen, &checked)),
    }
    out
}

/// Makes a candidate rule (`pattern text`, the requests it is meant to
/// cover, why) safe: kept if inside the manifest, else the manifest's own
/// pattern.
type Check<'f> = dyn for<'s> Fn(String, &[&Seen<'s>], String) -> Option<ProposedRule> + 'f;

/// One rule per distinct resource.
fn exact(
    domain: Domain,
    action: Action,
    seen: &[&Seen<'_>],
    checked: &Check<'_>,
) -> Vec<ProposedRule> {
    let mut by_resource: BTreeMap<&str, Vec<&Seen<'_>>> = BTreeMap::new();
    for s in seen {
        by_resource.entry(s.resource).or_default().push(s);
    }
    by_resource
        .into_iter()
        .filter_map(|(resource, items)| {
            checked(
                format!("{domain}:{action}:{resource}"),
                &items,
                "exactly the resource seen".to_owned(),
            )
        })
        .collect()
}

/// The narrowest declared capability covering `request` (one that lies
/// inside every other that covers it, or the first).
fn declared_for(request: &Request<'_>, declared: &[&Capability]) -> Option<Capability> {
    let covering: Vec<&Capability> = declared
        .iter()
        .copied()
        .filter(|d| d.covers(request))
        .collect();
    covering
        .iter()
        .find(|c| covering.iter().all(|o| c.is_subset_of(o)))
        .or(covering.first())
        .map(|c| (*c).clone())
}

/// The level of a `log:write` resource (empty: `trace`).
fn level(resource: &str) -> Option<LogLevel> {
    let text = if resource.is_empty() {
        "trace"
    } else {
        resource
    };
    match Capability::parse(&format!("log:write:{text}"))
        .ok()?
        .resource()
    {
        Some(ResourcePattern::Level(l)) => Some(*l),
        _ => None,
    }
}

impl Proposal {
    /// The proposal as a policy file: a `[components.<name>]` table whose
    /// grants each carry a comment (requests covered, an example, why this
    /// wide), then the requests left out, as comments. `source` names
    /// where the observations came from.
    pub fn to_toml(&self, source: &str) -> String {
        let mut out = String::new();
        let total: usize = self.grants.iter().map(|g| g.requests).sum();
        let _ = writeln!(
            out,
            "# Proposed by `airssys policy propose` from {source}: the narrowest grants\n\
             # covering the {total} allowed request(s) of `{}` seen there, never beyond its\n\
             # manifest. Review it, then merge it into your policy.",
            self.component
        );
        let _ = writeln!(out, "[components.{}]", self.component);
        let _ = writeln!(out, "grants = [");
        for g in &self.grants {
            let example = if g.example.is_empty() {
                String::new()
            } else {
                format!(", e.g. `{}`", printable(&g.example))
            };
            let _ = writeln!(
                out,
                "    # {} request(s) over {} resource(s){example}; {}",
                g.requests, g.resources, g.reason
            );
            let _ = writeln!(out, "    {},", toml_string(&g.capability.to_string()));
        }
        let _ = writeln!(out, "]");
        if !self.unused_required.is_empty() {
            let _ = writeln!(
                out,
                "\n# Required by the manifest but never used while observed (consider making them\n\
                 # optional or dropping them):"
            );
            for c in &self.unused_required {
                let _ = writeln!(out, "#   {c}");
            }
        }
        if !self.left_out.is_empty() {
            let _ = writeln!(
                out,
                "\n# Seen but NOT granted (undeclared by the manifest, or refused for another\n\
                 # reason); declare them in the manifest first if the component needs them:"
            );
            for u in &self.left_out {
                let _ = writeln!(
                    out,
                    "#   {} ({} request(s)): {}",
                    printable(&u.request),
                    u.requests,
                    printable(&u.reason)
                );
            }
        }
        out
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text from a component, safe inside a one-line comment.
fn printable(text: &str) -> String {
    crate::text::printable(text).into_owned()
}
