//! The checks of `#[airssys::component]`, one small function per rule.
//!
//! Each rule pushes its errors into the accumulator and carries on, so a
//! user sees every mistake of an attribute in one compile.

use airssys_contract::capability::Capability;
use airssys_contract::model::{ImportUsage, Wording};
use darling::Error;
use proc_macro2::Span;
use syn::LitStr;

use crate::capability_literal;
use crate::errors::Errors;

/// Which list a capability was declared in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List {
    /// `requires = [..]`.
    Requires,
    /// `optional = [..]`.
    Optional,
}

impl List {
    fn key(self) -> &'static str {
        match self {
            List::Requires => "requires",
            List::Optional => "optional",
        }
    }
}

/// A parsed capability and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Declared {
    /// The parsed capability.
    pub(crate) capability: Capability,
    /// The list it was declared in.
    pub(crate) list: List,
    /// The span to blame: the literal, or the `manifest = ".."` literal.
    pub(crate) span: Span,
    /// Where the capability came from when not from a literal of the
    /// attribute (`Component.toml`), for messages.
    pub(crate) origin: Option<String>,
}

/// Rule: every capability literal parses (`domain:action[:resource]` with
/// a known domain and an action of that domain); see
/// [`capability_literal::parse`] for the message.
pub(crate) fn parse_literals(lits: &[LitStr], list: List, errors: &mut Errors) -> Vec<Declared> {
    let mut out = Vec::new();
    for lit in lits {
        match capability_literal::parse(lit) {
            Ok(capability) => out.push(Declared {
                capability,
                list,
                span: lit.span(),
                origin: None,
            }),
            Err(e) => errors.push(e),
        }
    }
    out
}

/// Rule: a manifest lists at most `MAX_CAPABILITIES` capabilities of at
/// most `MAX_CAPABILITY_LEN` bytes each, as the host reads them (the
/// limits of `airssys_contract::manifest`).
pub(crate) fn manifest_limits(declared: &[Declared], errors: &mut Errors) {
    use airssys_contract::manifest::{MAX_CAPABILITIES, MAX_CAPABILITY_LEN};
    if let Some(over) = declared.get(MAX_CAPABILITIES) {
        errors.push(
            Error::custom(format!(
                "this component declares {} capabilities{}; a manifest may list at most \
                 {MAX_CAPABILITIES}, `requires` and `optional` together (the host refuses a \
                 larger one); use wildcard patterns (`*`, `**`) to cover many resources with one \
                 capability",
                declared.len(),
                origin(over)
            ))
            .with_span(&over.span),
        );
    }
    for d in declared {
        let len = d.capability.to_string().len();
        if len > MAX_CAPABILITY_LEN {
            errors.push(
                Error::custom(format!(
                    "this capability is {len} bytes long{}; the host refuses capabilities longer \
                     than {MAX_CAPABILITY_LEN} bytes",
                    origin(d)
                ))
                .with_span(&d.span),
            );
        }
    }
}

/// Rule: a capability is not listed twice in the same list.
pub(crate) fn duplicates(declared: &[Declared], errors: &mut Errors) {
    for (i, d) in declared.iter().enumerate() {
        let earlier = declared[..i]
            .iter()
            .find(|e| e.list == d.list && e.capability == d.capability);
        if earlier.is_some() {
            errors.push(
                Error::custom(format!(
                    "capability `{}` is listed twice in `{}`{}; remove one",
                    d.capability,
                    d.list.key(),
                    origin(d)
                ))
                .with_span(&d.span),
            );
        }
    }
}

/// Rule: a capability is either required or optional, not both.
pub(crate) fn required_and_optional(declared: &[Declared], errors: &mut Errors) {
    for d in declared.iter().filter(|d| d.list == List::Optional) {
        let required = declared
            .iter()
            .any(|r| r.list == List::Requires && r.capability == d.capability);
        if required {
            errors.push(
                Error::custom(format!(
                    "capability `{}` is both required and optional{}; keep it in `requires` \
                     if the component cannot run without it, otherwise in `optional`",
                    d.capability,
                    origin(d)
                ))
                .with_span(&d.span),
            );
        }
    }
}

/// Rule: every capability can be used by some function the world imports:
/// its domain and action match the `@capability` template of one of them
/// (`msg:subscribe`: the world exports the handler). The analysis and its
/// wording are the contract's ([`ImportUsage`]), shared with `airssys
/// manifest check` for components of other languages.
pub(crate) fn usable(declared: &[Declared], usage: &ImportUsage, world: &str, errors: &mut Errors) {
    let subject = format!("world `{world}`");
    let owner = format!("`{world}`");
    let wording = Wording {
        subject: &subject,
        owner: &owner,
        remedy: "select a world that imports such a function with `world = \"..\"`",
        handler_remedy: "select a world that exports the handler with `world = \"..\"`",
    };
    for d in declared {
        if let Some(message) = usage.unusable_message(&d.capability, &origin(d), &wording) {
            errors.push(Error::custom(message).with_span(&d.span));
        }
    }
}

/// ` (from Component.toml)` when the capability came from a file.
fn origin(d: &Declared) -> String {
    d.origin
        .as_ref()
        .map(|o| format!(" (from {o})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use airssys_contract::capability::{Action, Domain};
    use syn::parse_quote;

    fn run(
        requires: &[LitStr],
        optional: &[LitStr],
        usable_pairs: &[(Domain, Action)],
    ) -> Vec<String> {
        let mut errors = Errors::default();
        let mut declared = parse_literals(requires, List::Requires, &mut errors);
        declared.extend(parse_literals(optional, List::Optional, &mut errors));
        manifest_limits(&declared, &mut errors);
        duplicates(&declared, &mut errors);
        required_and_optional(&declared, &mut errors);
        let usage = ImportUsage {
            usable: usable_pairs.iter().copied().collect(),
            ..ImportUsage::default()
        };
        usable(&declared, &usage, "airssys:core/component", &mut errors);
        errors.messages()
    }

    const KV: &[(Domain, Action)] = &[
        (Domain::Kv, Action::Read),
        (Domain::Kv, Action::Write),
        (Domain::Log, Action::Write),
    ];

    #[test]
    fn more_capabilities_than_a_manifest_holds_are_refused_at_the_first_over() {
        let max = airssys_contract::manifest::MAX_CAPABILITIES;
        let lits = |n: usize| -> Vec<LitStr> {
            (0..n)
                .map(|i| LitStr::new(&format!("kv:read:b/k{i}"), Span::call_site()))
                .collect()
        };
        assert!(run(&lits(max), &[], KV).is_empty());
        let extra = [parse_quote!("kv:write:b/x")];
        let errors = run(&lits(max), &extra, KV);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("declares 1025 capabilities; a manifest may list at most 1024"),
            "{errors:?}"
        );
        let long = LitStr::new(
            &format!("kv:read:b/{}", "k".repeat(1100)),
            Span::call_site(),
        );
        let errors = run(&[long], &[], KV);
        assert!(
            errors[0].contains("the host refuses capabilities longer than 1024 bytes"),
            "{errors:?}"
        );
    }

    #[test]
    fn valid_declarations_pass() {
        let errors = run(
            &[parse_quote!("kv:read:counter/*"), parse_quote!("log:write")],
            &[parse_quote!("kv:write:counter/*")],
            KV,
        );
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn malformed_capability_names_the_offset() {
        let errors = run(&[parse_quote!("kv")], &[], KV);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("invalid capability `kv`"),
            "{}",
            errors[0]
        );
        assert!(errors[0].contains("at byte"), "{}", errors[0]);
    }

    #[test]
    fn unknown_domain_and_action_list_the_valid_names() {
        let errors = run(&[parse_quote!("db:read:x")], &[], KV);
        assert!(
            errors[0].contains("fs, net, kv, msg, log, proc, env"),
            "{}",
            errors[0]
        );
        let errors = run(&[parse_quote!("kv:raed:x")], &[], KV);
        assert!(
            errors[0].contains("read, write, delete, list"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn duplicate_in_one_list() {
        let errors = run(
            &[parse_quote!("log:write"), parse_quote!("log:write")],
            &[],
            KV,
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("listed twice in `requires`"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn same_capability_required_and_optional() {
        let errors = run(
            &[parse_quote!("log:write")],
            &[parse_quote!("log:write")],
            KV,
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("both required and optional"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn capability_no_function_uses() {
        let errors = run(&[parse_quote!("net:connect:example.com:443")], &[], KV);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("is of no use in world"), "{}", errors[0]);
        assert!(
            errors[0].contains("kv:read, kv:write, log:write"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn every_rule_reports_in_one_pass() {
        let errors = run(
            &[
                parse_quote!("kv"),
                parse_quote!("log:write"),
                parse_quote!("log:write"),
            ],
            &[parse_quote!("log:write"), parse_quote!("env:read:HOME")],
            KV,
        );
        // malformed, duplicate, required+optional, unusable.
        assert_eq!(errors.len(), 4, "{errors:?}");
    }
}
