//! Concrete requests: what a component asks for at run time.

use std::fmt;

use super::env;
use super::error::{CapabilityError, Result};
use super::glob::{self, Syntax};
use super::level::LogLevel;
use super::net::{self, Host};
use super::{Action, Domain, parse_head};

/// A concrete, validated request such as `fs:read:/data/app/config.toml`
/// or `net:connect:api.example.com:443`.
///
/// It borrows its resource text and allocates nothing. Validation is strict
/// (see the [module docs](super)): a path with `.`, `..`, empty components,
/// NUL or a backslash, or a numeric-looking host such as `127.1`, is an
/// error, so it can never be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    domain: Domain,
    action: Action,
    resource: &'a str,
    pub(crate) target: Target<'a>,
}

/// The parsed form of a request's resource, by domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// `fs`: a normalized absolute path (segments are read from the text).
    Path,
    /// `kv`: `bucket[/key...]`.
    Key,
    /// `msg:publish`, `msg:subscribe`: a concrete topic.
    Topic,
    /// `msg:request`: a component name.
    Component,
    /// `proc`: an absolute program path.
    Program,
    /// `log:write`: the record's level.
    Level(LogLevel),
    /// `env:read`: a variable name.
    Env,
    /// `net`: a host and a port.
    Net(Host<'a>, u16),
}

impl<'a> Request<'a> {
    /// Validates `resource` as a request of `domain:action`.
    ///
    /// An empty resource is only valid for `log:write`, where it stands for
    /// the lowest level (`trace`).
    ///
    /// # Errors
    ///
    /// When `action` does not belong to `domain` or the resource is not a
    /// valid concrete resource of the domain; offsets are relative to
    /// `resource`.
    ///
    /// A guard validates every call that misses its decision cache: the
    /// error messages are built out of line, so that path stays short.
    #[inline]
    pub fn new(domain: Domain, action: Action, resource: &'a str) -> Result<Request<'a>> {
        Request::new_inner(domain, action, resource).map_err(|e| e.within(resource.len()))
    }

    #[inline]
    fn new_inner(domain: Domain, action: Action, resource: &'a str) -> Result<Request<'a>> {
        if !domain.admits(action) {
            return Err(foreign_action(domain, action));
        }
        let target = match (domain, action) {
            (Domain::Log, _) if resource.is_empty() => Target::Level(LogLevel::Trace),
            (_, _) if resource.is_empty() => return Err(missing_resource(domain, action)),
            (Domain::Fs, _) => {
                glob::check_request(resource, Syntax::Path)?;
                Target::Path
            }
            (Domain::Kv, _) => {
                glob::check_request(resource, Syntax::Key)?;
                Target::Key
            }
            (Domain::Msg, Action::Request) => {
                super::check_component(resource)?;
                Target::Component
            }
            (Domain::Msg, _) => {
                glob::check_request(resource, Syntax::Topic)?;
                Target::Topic
            }
            (Domain::Proc, _) => {
                glob::check_request(resource, Syntax::Path)?;
                Target::Program
            }
            (Domain::Log, _) => Target::Level(LogLevel::parse(resource)?),
            (Domain::Env, _) => {
                env::check_name(resource)?;
                Target::Env
            }
            (Domain::Net, _) => {
                let (host, port) = net::parse_request(resource)?;
                Target::Net(host, port)
            }
        };
        Ok(Request {
            domain,
            action,
            resource,
            target,
        })
    }

    /// [`Request::new`] for an `env` request: a valid variable name is
    /// accepted without the dispatch on the domain (a guard checks every
    /// `get-var` call this way); anything else takes [`Request::new`], for
    /// the same error.
    ///
    /// # Errors
    ///
    /// As [`Request::new`].
    #[inline]
    pub(crate) fn env(action: Action, name: &'a str) -> Result<Request<'a>> {
        if Request::is_env(action, name) {
            return Ok(Request {
                domain: Domain::Env,
                action,
                resource: name,
                target: Target::Env,
            });
        }
        Request::new(Domain::Env, action, name)
    }

    /// Whether `env:<action>:<name>` is a valid request (what
    /// [`Request::env`] accepts), without building it.
    #[inline]
    pub(crate) fn is_env(action: Action, name: &str) -> bool {
        Domain::Env.admits(action) && env::is_plain_name(name.as_bytes())
    }

    /// Parses `domain:action[:resource]` as a concrete request.
    ///
    /// # Errors
    ///
    /// As [`Request::new`], with offsets relative to `text`.
    pub fn parse(text: &'a str) -> Result<Request<'a>> {
        let head = parse_head(text)?;
        let (resource, at) = head.resource.unwrap_or(("", text.len()));
        Request::new(head.domain, head.action, resource).map_err(|e| e.shifted(at))
    }

    /// The request's domain.
    pub fn domain(&self) -> Domain {
        self.domain
    }

    /// The request's action.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The resource text as given (empty only for a `log:write` request
    /// without a level).
    pub fn resource(&self) -> &'a str {
        self.resource
    }
}

/// The error of an action outside its domain (`fs:publish`).
#[cold]
#[inline(never)]
fn foreign_action(domain: Domain, action: Action) -> CapabilityError {
    CapabilityError::new(
        0,
        0,
        format!(
            "action `{action}` does not belong to domain `{domain}`; expected one of {}",
            domain.action_list()
        ),
    )
}

/// The error of a request without the resource its domain needs.
#[cold]
#[inline(never)]
fn missing_resource(domain: Domain, action: Action) -> CapabilityError {
    CapabilityError::new(
        0,
        0,
        format!(
            "a `{domain}:{action}` request needs a resource: {}",
            super::resource_help(domain, action)
        ),
    )
}

impl fmt::Display for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.domain, self.action)?;
        if !self.resource.is_empty() {
            write!(f, ":{}", self.resource)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        for text in [
            "fs:read:/data/x",
            "net:connect:example.com:443",
            "net:connect:[::1]:443",
            "kv:read:counter/x",
            "msg:publish:orders.new",
            "msg:request:billing",
            "log:write:warn",
            "log:write",
            "proc:spawn:/usr/bin/git",
            "env:read:HOME",
        ] {
            let r = Request::parse(text).expect(text);
            assert_eq!(r.to_string(), text);
        }
    }

    /// The `env` shortcut gives what the general path gives, valid or not,
    /// for every action.
    #[test]
    fn env_requests_agree_with_the_general_path() {
        for name in [
            "", "A", "_", "a1", "APP_MODE", "1A", "A-B", "A B", "É", "AÉ", "A\0", "A*", "_9",
            "VAR_128", "..", "/x",
        ] {
            for action in Domain::ALL.iter().flat_map(|d| d.actions()) {
                assert_eq!(
                    Request::env(*action, name),
                    Request::new(Domain::Env, *action, name),
                    "{action} {name:?}"
                );
            }
        }
    }

    #[test]
    fn rejects_with_offsets() {
        for (text, offset) in [
            ("fs:read", 7),
            ("fs:read:data", 8),
            ("fs:read:/a/../b", 11),
            ("net:connect:127.1:80", 12),
            ("net:connect:a.com:0", 18),
            ("net:connect:a.com:*", 18),
            ("msg:publish:a.*", 14),
            ("log:write:loud", 10),
            ("env:read:A-B", 10),
            ("fs:publish:/x", 3),
        ] {
            let err = Request::parse(text).expect_err(text);
            assert_eq!(err.offset, offset, "{text}: {err}");
        }
        assert!(Request::new(Domain::Fs, Action::Publish, "/x").is_err());
    }
}
