//! The `@capability` annotation of a host function: what it requires.

use std::fmt;

use crate::capability::{Action, Domain};

/// The prefix of the doc-comment line that states a function's capability.
pub const ANNOTATION: &str = "@capability";

/// What a host function requires before it runs, from its `@capability`
/// doc line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Requirement {
    /// `@capability none`: the function needs no capability.
    None,
    /// `@capability domain:action[:resource]`: the function needs a grant
    /// covering the rendered template.
    Capability(CapabilityTemplate),
    /// `@capability handle`: a method authorized by the capability checked
    /// when its handle was opened.
    Handle,
    /// The annotation is missing, repeated or malformed;
    /// [`Contract::lint`](super::Contract::lint) says why.
    Invalid,
}

/// A capability with a resource completed at call time, e.g.
/// `kv:read:{self}/{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CapabilityTemplate {
    /// The capability's domain.
    pub domain: Domain,
    /// The capability's action (valid for `domain`).
    pub action: Action,
    /// The resource, in parts; empty when the template has no resource
    /// (`log:write`).
    pub resource: Vec<TemplatePart>,
}

/// One piece of a [`CapabilityTemplate`]'s resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TemplatePart {
    /// Fixed text.
    Literal(String),
    /// `{name}`: the value of the string parameter `name` (its WIT name).
    Param(String),
    /// `{self}`: the name the method's handle was opened with.
    Handle,
}

impl CapabilityTemplate {
    /// The names of the parameters the resource reads, in order.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.resource.iter().filter_map(|p| match p {
            TemplatePart::Param(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// Whether the resource reads `{self}`.
    pub fn uses_handle(&self) -> bool {
        self.resource.contains(&TemplatePart::Handle)
    }

    /// Renders the capability text a call needs, e.g. `kv:read:counter/hits`.
    ///
    /// `values` maps parameter names to their values; `{self}` is looked up
    /// under `"self"`. Returns `None` when a value is missing.
    ///
    /// # Examples
    ///
    /// ```
    /// # use airssys_contract::model::{CapabilityTemplate, TemplatePart};
    /// # use airssys_contract::capability::{Action, Domain};
    /// let t = CapabilityTemplate {
    ///     domain: Domain::Kv,
    ///     action: Action::Read,
    ///     resource: vec![
    ///         TemplatePart::Handle,
    ///         TemplatePart::Literal("/".into()),
    ///         TemplatePart::Param("key".into()),
    ///     ],
    /// };
    /// let text = t.render(&[("self", "counter"), ("key", "hits")]);
    /// assert_eq!(text.as_deref(), Some("kv:read:counter/hits"));
    /// ```
    pub fn render(&self, values: &[(&str, &str)]) -> Option<String> {
        let lookup = |name: &str| values.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let mut out = format!("{}:{}", self.domain, self.action);
        if !self.resource.is_empty() {
            out.push(':');
        }
        for part in &self.resource {
            match part {
                TemplatePart::Literal(text) => out.push_str(text),
                TemplatePart::Param(name) => out.push_str(lookup(name)?),
                TemplatePart::Handle => out.push_str(lookup("self")?),
            }
        }
        Some(out)
    }
}

impl fmt::Display for CapabilityTemplate {
    /// Writes the template as annotated, e.g. `kv:read:{self}/{key}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.domain, self.action)?;
        if !self.resource.is_empty() {
            f.write_str(":")?;
        }
        for part in &self.resource {
            match part {
                TemplatePart::Literal(text) => f.write_str(text)?,
                TemplatePart::Param(name) => write!(f, "{{{name}}}")?,
                TemplatePart::Handle => f.write_str("{self}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Requirement {
    /// Writes the annotation's argument: `none`, `handle`, the template, or
    /// `<invalid>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::None => f.write_str("none"),
            Requirement::Handle => f.write_str("handle"),
            Requirement::Capability(t) => t.fmt(f),
            Requirement::Invalid => f.write_str("<invalid>"),
        }
    }
}

/// The arguments of the `@capability` lines of a doc comment, in order.
pub(crate) fn annotation_lines(docs: &str) -> Vec<&str> {
    docs.lines()
        .filter_map(|line| line.trim().strip_prefix(ANNOTATION))
        // `@capabilityx` is not the annotation.
        .filter(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
        .map(str::trim)
        .collect()
}

/// The requirement a doc comment states: its one valid `@capability`
/// line, or [`Requirement::Invalid`].
pub(crate) fn requirement_of(docs: &str) -> Requirement {
    match annotation_lines(docs).as_slice() {
        [one] => parse_requirement(one).unwrap_or(Requirement::Invalid),
        _ => Requirement::Invalid,
    }
}

/// Parses the argument of an `@capability` line.
///
/// # Errors
///
/// A message saying what is wrong: unknown domain or action (listing the
/// valid ones), a malformed resource template.
pub(crate) fn parse_requirement(text: &str) -> Result<Requirement, String> {
    match text {
        "none" => return Ok(Requirement::None),
        "handle" => return Ok(Requirement::Handle),
        "" => {
            return Err(format!(
                "`{ANNOTATION}` needs an argument: `none`, `handle` or `domain:action[:resource]`"
            ));
        }
        _ => {}
    }
    if let Some(ws) = text.find(char::is_whitespace) {
        return Err(format!(
            "unexpected text `{}` after the capability template `{}`",
            text[ws..].trim(),
            &text[..ws]
        ));
    }
    let Some((domain_name, rest)) = text.split_once(':') else {
        return Err(format!(
            "`{text}` is not `none`, `handle` or `domain:action[:resource]`"
        ));
    };
    let domain = Domain::from_name(domain_name).ok_or_else(|| {
        format!(
            "unknown domain `{domain_name}`; expected one of {}",
            Domain::name_list()
        )
    })?;
    let (action_name, resource) = match rest.split_once(':') {
        Some((action, resource)) => (action, Some(resource)),
        None => (rest, None),
    };
    let action = domain.action(action_name).ok_or_else(|| {
        format!(
            "unknown action `{action_name}` for domain `{domain}`; expected one of {}",
            domain.action_list()
        )
    })?;
    let resource = match resource {
        None => Vec::new(),
        Some("") => {
            return Err(format!(
                "empty resource after `{domain}:{action}:`; drop the `:` or name a resource"
            ));
        }
        Some(resource) => parse_resource(resource)?,
    };
    Ok(Requirement::Capability(CapabilityTemplate {
        domain,
        action,
        resource,
    }))
}

/// Splits a resource template into literal text, `{param}` and `{self}`.
fn parse_resource(text: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match c {
            '{' => {
                let Some(end) = rest.find('}') else {
                    return Err(format!("unclosed `{{` in resource template `{text}`"));
                };
                let name = &rest[1..end];
                if name.is_empty() || !is_wit_identifier(name) {
                    return Err(format!(
                        "`{{{name}}}` in resource template `{text}` is not a parameter name"
                    ));
                }
                if !literal.is_empty() {
                    parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(if name == "self" {
                    TemplatePart::Handle
                } else {
                    TemplatePart::Param(name.to_owned())
                });
                rest = &rest[end + 1..];
            }
            '}' => return Err(format!("unmatched `}}` in resource template `{text}`")),
            c => {
                literal.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if !literal.is_empty() {
        parts.push(TemplatePart::Literal(literal));
    }
    Ok(parts)
}

/// A WIT kebab-case identifier, possibly `%`-escaped.
fn is_wit_identifier(name: &str) -> bool {
    let name = name.strip_prefix('%').unwrap_or(name);
    !name.is_empty()
        && name
            .split('-')
            .all(|word| !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> CapabilityTemplate {
        match parse_requirement(text) {
            Ok(Requirement::Capability(t)) => t,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn parses_templates() {
        let t = template("kv:read:{self}/{key}");
        assert_eq!(
            t.resource,
            [
                TemplatePart::Handle,
                TemplatePart::Literal("/".into()),
                TemplatePart::Param("key".into())
            ]
        );
        assert_eq!(t.to_string(), "kv:read:{self}/{key}");
        assert!(template("log:write").resource.is_empty());
        assert_eq!(
            template("env:read:HOME").resource,
            [TemplatePart::Literal("HOME".into())]
        );
        assert_eq!(parse_requirement("none"), Ok(Requirement::None));
        assert_eq!(parse_requirement("handle"), Ok(Requirement::Handle));
    }

    #[test]
    fn rejects_malformed() {
        for (text, expect) in [
            ("", "needs an argument"),
            ("fss:read", "unknown domain `fss`; expected one of fs, net"),
            (
                "fs:raed",
                "unknown action `raed` for domain `fs`; expected one of read, write",
            ),
            ("fs", "is not `none`"),
            ("kv:read:", "empty resource"),
            ("kv:read:{key", "unclosed `{`"),
            ("kv:read:key}", "unmatched `}`"),
            ("kv:read:{}", "is not a parameter name"),
            ("kv:read:{a b}", "unexpected text"),
            ("kv:read:{key} extra", "unexpected text `extra`"),
        ] {
            let err = parse_requirement(text).expect_err(text);
            assert!(err.contains(expect), "{text}: {err}");
        }
    }

    #[test]
    fn finds_annotation_lines() {
        let docs = "Reads.\n\n@capability kv:read:{key}\n@capabilityx no\n  @capability none";
        assert_eq!(annotation_lines(docs), ["kv:read:{key}", "none"]);
    }

    #[test]
    fn renders() {
        let t = template("fs:read:{path}");
        assert_eq!(
            t.render(&[("path", "/data/x")]).as_deref(),
            Some("fs:read:/data/x")
        );
        assert_eq!(t.render(&[]), None);
        assert_eq!(
            template("log:write").render(&[]).as_deref(),
            Some("log:write")
        );
    }
}
