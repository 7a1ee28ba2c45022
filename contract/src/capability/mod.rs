//! The capability DSL: `domain:action[:resource]`, parsed once into typed
//! values and matched without touching strings again.
//!
//! ```
//! use airssys_contract::capability::{Capability, GrantSet, Request, Verdict};
//!
//! let grant: Capability = "fs:read:/data/**".parse()?;
//! let secret: Capability = "fs:read:/data/secret/**".parse()?;
//! let set = GrantSet::builder().allow(grant).deny(secret).build();
//!
//! let ok = Request::parse("fs:read:/data/app/config.toml")?;
//! assert_eq!(set.check(&ok).verdict, Verdict::Allow);
//! let no = Request::parse("fs:read:/data/secret/key")?;
//! assert_eq!(set.check(&no).verdict, Verdict::Deny);
//! // Requests are validated strictly: `..` is an error, never a match.
//! assert!(Request::parse("fs:read:/data/../etc/passwd").is_err());
//! # Ok::<(), airssys_contract::capability::CapabilityError>(())
//! ```
//!
//! Resources by domain (an omitted resource means any resource):
//!
//! | domain | resource pattern |
//! |---|---|
//! | `fs` | absolute path; `*` one whole component, `**` (last) one or more components below |
//! | `net` | `host:port`: name, `*.suffix`, `*`, IPv4, `[IPv6]`, CIDR; port, `a-b` or `*` |
//! | `kv` | `bucket/key...`; `*` one segment, `**` (last) one or more segments |
//! | `msg` | publish/subscribe: topic with `*` one segment, `>` (last) one or more; request: a component name |
//! | `log` | a level floor: `trace`, `debug`, `info`, `warn`, `error` |
//! | `proc` | an absolute program path, exact |
//! | `env` | a variable name or `PREFIX*` (prefix plus at least one character) |
//!
//! See `docs/capabilities.md` for every edge decision.

mod domain;
mod env;
mod error;
mod glob;
mod grant;
mod level;
mod net;
mod print;
mod request;

use std::fmt;
use std::str::FromStr;

pub use domain::{Action, Domain};
pub use env::EnvPattern;
pub use error::CapabilityError;
pub use glob::{Glob, Segment};
pub use grant::{Decision, GrantSet, GrantSetBuilder, Rule, Verdict};
pub use level::LogLevel;
pub use net::{HostPattern, NetPattern, PortPattern};
pub use request::Request;

use error::Result;
use glob::Syntax;
use request::Target;

/// A parsed capability pattern `domain:action[:resource]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Capability {
    domain: Domain,
    action: Action,
    resource: Option<ResourcePattern>,
}

/// The resource part of a [`Capability`], typed by domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResourcePattern {
    /// `fs`: an absolute path glob.
    Path(Glob),
    /// `net`: `host:port`.
    Net(NetPattern),
    /// `kv`: a `bucket/key` glob.
    Key(Glob),
    /// `msg:publish`, `msg:subscribe`: a topic glob.
    Topic(Glob),
    /// `msg:request`: the name of the component to call.
    Component(String),
    /// `log:write`: the lowest level allowed.
    Level(LogLevel),
    /// `proc`: an absolute program path, matched exactly.
    Program(String),
    /// `env:read`: a name or prefix.
    Env(EnvPattern),
}

impl Capability {
    /// Parses `domain:action[:resource]`.
    ///
    /// # Errors
    ///
    /// A [`CapabilityError`] with the byte span of the first mistake and
    /// what was expected there.
    pub fn parse(text: &str) -> Result<Capability> {
        Capability::parse_inner(text).map_err(|e| e.within(text.len()))
    }

    fn parse_inner(text: &str) -> Result<Capability> {
        let head = parse_head(text)?;
        let resource = match head.resource {
            None => None,
            Some((res, at)) => Some(
                ResourcePattern::parse(head.domain, head.action, res).map_err(|e| e.shifted(at))?,
            ),
        };
        Ok(Capability {
            domain: head.domain,
            action: head.action,
            resource,
        })
    }

    /// The capability covering every resource of `domain:action`, or `None`
    /// when the action does not belong to the domain.
    pub fn any(domain: Domain, action: Action) -> Option<Capability> {
        domain.action(action.as_str()).map(|action| Capability {
            domain,
            action,
            resource: None,
        })
    }

    /// The domain (`fs`, `net`, ...).
    pub fn domain(&self) -> Domain {
        self.domain
    }

    /// The action (`read`, `connect`, ...).
    pub fn action(&self) -> Action {
        self.action
    }

    /// The resource pattern; `None` means any resource of this
    /// domain and action.
    pub fn resource(&self) -> Option<&ResourcePattern> {
        self.resource.as_ref()
    }

    /// Whether this pattern allows (or, as a deny entry, forbids) `request`.
    #[inline]
    pub fn covers(&self, request: &Request<'_>) -> bool {
        self.domain == request.domain()
            && self.action == request.action()
            && self.resource.as_ref().is_none_or(|p| p.matches(request))
    }

    /// [`Capability::covers`] for the request `env:<action>:<name>`, known
    /// to be valid ([`Request::is_env`]), without building it.
    #[inline]
    pub(crate) fn covers_env(&self, action: Action, name: &str) -> bool {
        self.domain == Domain::Env
            && self.action == action
            && self.resource.as_ref().is_none_or(|p| match p {
                ResourcePattern::Env(pattern) => pattern.matches(name),
                _ => false,
            })
    }

    /// Whether every request this pattern covers, `other` covers too.
    ///
    /// Sound (never true when some request is covered by `self` only) and,
    /// for patterns of the same shape, complete; used to check a manifest's
    /// required capabilities against a host policy.
    pub fn is_subset_of(&self, other: &Capability) -> bool {
        self.domain == other.domain
            && self.action == other.action
            && match (&self.resource, &other.resource) {
                (_, None) => true,
                (None, Some(b)) => b.is_universal(),
                (Some(a), Some(b)) => a.is_subset_of(b),
            }
    }
}

impl ResourcePattern {
    fn parse(domain: Domain, action: Action, text: &str) -> Result<ResourcePattern> {
        Ok(match (domain, action) {
            (Domain::Fs, _) => ResourcePattern::Path(Glob::parse(text, Syntax::Path)?),
            (Domain::Net, _) => ResourcePattern::Net(NetPattern::parse(text)?),
            (Domain::Kv, _) => ResourcePattern::Key(Glob::parse(text, Syntax::Key)?),
            (Domain::Msg, Action::Request) => {
                check_component(text)?;
                ResourcePattern::Component(text.to_owned())
            }
            (Domain::Msg, _) => ResourcePattern::Topic(Glob::parse(text, Syntax::Topic)?),
            (Domain::Log, _) => ResourcePattern::Level(LogLevel::parse(text)?),
            (Domain::Proc, _) => {
                check_program(text)?;
                ResourcePattern::Program(text.to_owned())
            }
            (Domain::Env, _) => ResourcePattern::Env(EnvPattern::parse(text)?),
        })
    }

    fn matches(&self, request: &Request<'_>) -> bool {
        let text = request.resource();
        match (self, request.target) {
            (ResourcePattern::Path(g), Target::Path) => {
                g.matches(glob::request_segments(text, Syntax::Path))
            }
            (ResourcePattern::Key(g), Target::Key) => {
                g.matches(glob::request_segments(text, Syntax::Key))
            }
            (ResourcePattern::Topic(g), Target::Topic) => {
                g.matches(glob::request_segments(text, Syntax::Topic))
            }
            (ResourcePattern::Component(n), Target::Component) => n == text,
            (ResourcePattern::Program(p), Target::Program) => p == text,
            (ResourcePattern::Level(floor), Target::Level(level)) => level >= *floor,
            (ResourcePattern::Env(p), Target::Env) => p.matches(text),
            (ResourcePattern::Net(p), Target::Net(host, port)) => p.matches(host, port),
            _ => false,
        }
    }

    fn is_subset_of(&self, other: &ResourcePattern) -> bool {
        use ResourcePattern as R;
        match (self, other) {
            (R::Path(a), R::Path(b)) | (R::Key(a), R::Key(b)) | (R::Topic(a), R::Topic(b)) => {
                a.is_subset_of(b)
            }
            (R::Net(a), R::Net(b)) => a.is_subset_of(b),
            (R::Component(a), R::Component(b)) | (R::Program(a), R::Program(b)) => a == b,
            (R::Level(a), R::Level(b)) => a >= b,
            (R::Env(a), R::Env(b)) => a.is_subset_of(b),
            _ => false,
        }
    }

    /// Whether the pattern matches every valid request resource.
    fn is_universal(&self) -> bool {
        match self {
            ResourcePattern::Key(g) | ResourcePattern::Topic(g) => g.is_universal(),
            ResourcePattern::Net(n) => n.is_universal(),
            ResourcePattern::Level(l) => *l == LogLevel::Trace,
            ResourcePattern::Path(_)
            | ResourcePattern::Component(_)
            | ResourcePattern::Program(_)
            | ResourcePattern::Env(_) => false,
        }
    }
}

impl FromStr for Capability {
    type Err = CapabilityError;

    fn from_str(s: &str) -> Result<Capability> {
        Capability::parse(s)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.domain, self.action)?;
        if let Some(resource) = &self.resource {
            write!(f, ":{resource}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourcePattern::Path(g) => g.write(f, Syntax::Path),
            ResourcePattern::Key(g) => g.write(f, Syntax::Key),
            ResourcePattern::Topic(g) => g.write(f, Syntax::Topic),
            ResourcePattern::Net(n) => n.fmt(f),
            ResourcePattern::Component(s) | ResourcePattern::Program(s) => f.write_str(s),
            ResourcePattern::Level(l) => l.fmt(f),
            ResourcePattern::Env(e) => e.fmt(f),
        }
    }
}

/// `domain:action` and where the resource starts, shared by patterns and
/// requests.
struct Head<'a> {
    domain: Domain,
    action: Action,
    /// The resource text and its byte offset, when a third part is present.
    resource: Option<(&'a str, usize)>,
}

fn parse_head(text: &str) -> Result<Head<'_>> {
    let (domain_text, rest) = match text.split_once(b':' as char) {
        Some((d, rest)) => (d, Some(rest)),
        None => (text, None),
    };
    let domain = Domain::from_name(domain_text).ok_or_else(|| {
        let names: Vec<_> = Domain::ALL.iter().map(|d| d.as_str()).collect();
        CapabilityError::new(
            0,
            domain_text.len(),
            format!(
                "unknown domain `{domain_text}`; {}expected one of {}",
                did_you_mean(domain_text, &names),
                Domain::name_list()
            ),
        )
        .with_expected(&names)
    })?;
    // Built only on the error paths: parsing a valid request allocates nothing.
    let action_names = || -> Vec<&str> { domain.actions().iter().map(|a| a.as_str()).collect() };
    let Some(rest) = rest else {
        return Err(CapabilityError::new(
            text.len(),
            0,
            format!(
                "expected `:` and an action after `{domain}`; expected one of {}",
                domain.action_list()
            ),
        )
        .with_expected(&action_names()));
    };
    let action_at = domain_text.len() + 1;
    let (action_text, resource) = match rest.split_once(':') {
        Some((a, res)) => (a, Some((res, action_at + a.len() + 1))),
        None => (rest, None),
    };
    let action = domain.action(action_text).ok_or_else(|| {
        CapabilityError::new(
            action_at,
            action_text.len(),
            format!(
                "unknown action `{action_text}` for domain `{domain}`; {}expected one of {}",
                did_you_mean(action_text, &action_names()),
                domain.action_list()
            ),
        )
        .with_expected(&action_names())
    })?;
    if let Some(("", at)) = resource {
        return Err(CapabilityError::new(
            at - 1,
            1,
            format!(
                "empty resource after `:`; write `{domain}:{action}` for any resource, or {}",
                resource_help(domain, action)
            ),
        ));
    }
    Ok(Head {
        domain,
        action,
        resource,
    })
}

/// What a resource of `domain:action` looks like, for error messages.
fn resource_help(domain: Domain, action: Action) -> &'static str {
    match (domain, action) {
        (Domain::Fs, _) => "an absolute path",
        (Domain::Net, _) => "`host:port`",
        (Domain::Kv, _) => "`bucket/key`",
        (Domain::Msg, Action::Request) => "a component name",
        (Domain::Msg, _) => "a `.`-separated topic",
        (Domain::Log, _) => "a log level",
        (Domain::Proc, _) => "an absolute program path",
        (Domain::Env, _) => "a variable name",
    }
}

/// Validates a component name: ASCII letters, digits, `-`, `_` and `.`.
fn check_component(text: &str) -> Result<()> {
    if text.is_empty() {
        return Err(CapabilityError::new(0, 0, "expected a component name"));
    }
    match text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some((i, c)) => Err(CapabilityError::new(
            i,
            c.len_utf8(),
            format!(
                "`{}` is not allowed in a component name (letters, digits, `-`, `_`, `.`)",
                c.escape_default()
            ),
        )),
        None => Ok(()),
    }
}

/// Validates a program path pattern: a normalized absolute path, no
/// wildcards.
fn check_program(text: &str) -> Result<()> {
    glob::check_request(text, Syntax::Path)?;
    let mut at = 0;
    for seg in text.split('/') {
        if seg == "*" || seg == "**" {
            return Err(CapabilityError::new(
                at,
                seg.len(),
                "a `proc` pattern names one program exactly; wildcards are not allowed",
            ));
        }
        at += seg.len() + 1;
    }
    Ok(())
}

/// `did you mean `x`? ` when one of `names` is close to `word`.
fn did_you_mean(word: &str, names: &[&str]) -> String {
    crate::suggest::closest(word, names.iter().copied())
        .map(|n| format!("did you mean `{n}`? "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(text: &str) -> Capability {
        Capability::parse(text).expect(text)
    }

    fn req(text: &str) -> Request<'_> {
        Request::parse(text).expect(text)
    }

    /// The `env` shortcut of `covers` agrees with it for every scope shape
    /// (other domains and actions, no resource, names, prefixes).
    #[test]
    fn covers_env_agrees_with_covers() {
        let scopes = [
            "env:read",
            "env:read:HOME",
            "env:read:APP_*",
            "env:read:A",
            "kv:read:**",
            "fs:read:/**",
            "log:write",
        ];
        for scope in scopes {
            let scope = Capability::parse(scope).expect(scope);
            for name in ["HOME", "HOMES", "APP_", "APP_X", "A", "AB", "_"] {
                let request = Request::env(Action::Read, name).expect(name);
                assert_eq!(
                    scope.covers_env(Action::Read, name),
                    scope.covers(&request),
                    "{scope} {name}"
                );
            }
        }
    }

    #[test]
    fn near_misses_get_a_did_you_mean() {
        let err = Capability::parse("kv:reed:counter/*").expect_err("bad action");
        assert!(
            err.to_string()
                .starts_with("unknown action `reed` for domain `kv`; did you mean `read`?"),
            "{err}"
        );
        let err = Capability::parse("kb:read:counter/*").expect_err("bad domain");
        assert!(
            err.to_string()
                .starts_with("unknown domain `kb`; did you mean `kv`?"),
            "{err}"
        );
    }

    #[test]
    fn unknown_action_message() {
        let err = Capability::parse("fs:raed:/x").expect_err("bad action");
        assert_eq!(
            err.to_string(),
            "unknown action `raed` for domain `fs`; expected one of read, write, create, \
             delete, list, stat (at byte 3)"
        );
        assert_eq!((err.offset, err.len), (3, 4));
        assert_eq!(err.expected().len(), 6);
    }

    #[test]
    fn head_errors() {
        for (text, offset, len) in [
            ("files:read", 0, 5),
            ("fs", 2, 0),
            ("fs:", 3, 0),
            ("fs:read:", 7, 1),
            ("net:connect:", 11, 1),
            ("msg:request:a b", 13, 1),
            ("proc:spawn:/usr/bin/*", 20, 1),
            ("proc:spawn:bin", 11, 1),
        ] {
            let err = Capability::parse(text).expect_err(text);
            assert_eq!((err.offset, err.len), (offset, len), "{text}: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "fs:read",
            "fs:read:/data/**",
            "net:connect:*.example.com:443",
            "kv:write:counter/*",
            "msg:subscribe:orders.>",
            "msg:request:billing",
            "log:write:warn",
            "proc:spawn:/usr/bin/git",
            "env:read:APP_*",
        ] {
            assert_eq!(cap(text).to_string(), text);
            assert_eq!(text.parse::<Capability>().as_ref(), Ok(&cap(text)));
        }
    }

    #[test]
    fn covers_by_domain() {
        assert!(cap("fs:read").covers(&req("fs:read:/x")));
        assert!(!cap("fs:read").covers(&req("fs:write:/x")));
        assert!(cap("log:write:warn").covers(&req("log:write:error")));
        assert!(!cap("log:write:warn").covers(&req("log:write:info")));
        assert!(!cap("log:write:warn").covers(&req("log:write")));
        assert!(cap("msg:request:billing").covers(&req("msg:request:billing")));
        assert!(!cap("msg:request:billing").covers(&req("msg:request:billing2")));
        assert!(cap("proc:spawn:/usr/bin/git").covers(&req("proc:spawn:/usr/bin/git")));
        assert!(!cap("proc:spawn:/usr/bin/git").covers(&req("proc:spawn:/usr/bin/gitk")));
        assert!(cap("env:read:APP_*").covers(&req("env:read:APP_MODE")));
    }

    #[test]
    fn subsets() {
        assert!(cap("fs:read:/data/x").is_subset_of(&cap("fs:read")));
        assert!(!cap("fs:read").is_subset_of(&cap("fs:read:/**")));
        assert!(cap("kv:read").is_subset_of(&cap("kv:read:**")));
        assert!(cap("msg:publish").is_subset_of(&cap("msg:publish:>")));
        assert!(cap("log:write").is_subset_of(&cap("log:write:trace")));
        assert!(cap("log:write:error").is_subset_of(&cap("log:write:info")));
        assert!(!cap("log:write:info").is_subset_of(&cap("log:write:error")));
        assert!(!cap("fs:read:/x").is_subset_of(&cap("fs:write")));
        assert!(cap("net:connect").is_subset_of(&cap("net:connect:*:*")));
        assert!(Capability::any(Domain::Fs, Action::Publish).is_none());
        assert_eq!(
            Capability::any(Domain::Fs, Action::Read).map(|c| c.to_string()),
            Some("fs:read".to_owned())
        );
    }
}
