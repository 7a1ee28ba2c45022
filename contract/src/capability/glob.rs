//! Segment globs shared by three domains: filesystem paths (`/`-separated,
//! absolute), key-value keys (`bucket/key`) and message topics
//! (`.`-separated).
//!
//! A glob is a list of segments, each a literal or `*` (exactly one
//! segment), optionally ended by a rest marker (`**` for paths and keys,
//! `>` for topics) that matches one or more further segments. A rest marker
//! never matches zero segments: `/data/**` does not cover `/data` itself.

use std::fmt;

use super::error::{CapabilityError, Result};

/// The three spellings of a segment glob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Syntax {
    /// Absolute filesystem path: leading `/`, `/` separators, `**` rest.
    Path,
    /// Key-value `bucket/key`: `/` separators, `**` rest.
    Key,
    /// Message topic: `.` separators, `>` rest.
    Topic,
}

impl Syntax {
    const fn separator(self) -> char {
        match self {
            Syntax::Path | Syntax::Key => '/',
            Syntax::Topic => '.',
        }
    }

    const fn rest(self) -> &'static str {
        match self {
            Syntax::Path | Syntax::Key => "**",
            Syntax::Topic => ">",
        }
    }

    const fn unit(self) -> &'static str {
        match self {
            Syntax::Path => "path component",
            Syntax::Key => "key segment",
            Syntax::Topic => "topic segment",
        }
    }
}

/// One segment of a [`Glob`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Matches exactly this text (case-sensitive).
    Literal(String),
    /// `*`: matches any one segment.
    Any,
}

/// A parsed path, key or topic pattern (see the module docs of
/// [`capability`](super)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Glob {
    segments: Vec<Segment>,
    rest: bool,
}

impl Glob {
    /// The segments before the rest marker.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether the glob ends in `**` (paths, keys) or `>` (topics): one or
    /// more further segments.
    pub fn has_rest(&self) -> bool {
        self.rest
    }

    /// Parses a pattern; errors are relative to `text`.
    pub(crate) fn parse(text: &str, syntax: Syntax) -> Result<Glob> {
        let (body, base) = split_root(text, syntax)?;
        let mut segments = Vec::new();
        let mut rest = false;
        for (offset, seg) in segments_with_offsets(body, syntax.separator()) {
            let offset = offset + base;
            if rest {
                return Err(CapabilityError::new(
                    offset - 1 - syntax.rest().len(),
                    syntax.rest().len(),
                    format!("`{}` must be the last {}", syntax.rest(), syntax.unit()),
                ));
            }
            if seg == syntax.rest() {
                rest = true;
            } else if seg == "*" {
                segments.push(Segment::Any);
            } else {
                check_segment(seg, syntax, true).map_err(|e| e.shifted(offset))?;
                segments.push(Segment::Literal(seg.to_owned()));
            }
        }
        Ok(Glob { segments, rest })
    }

    /// Whether the concrete segments match this glob.
    pub(crate) fn matches<'s>(&self, mut segs: impl Iterator<Item = &'s str>) -> bool {
        for pattern in &self.segments {
            match (pattern, segs.next()) {
                (_, None) => return false,
                (Segment::Literal(lit), Some(seg)) if lit != seg => return false,
                _ => {}
            }
        }
        if self.rest {
            segs.next().is_some()
        } else {
            segs.next().is_none()
        }
    }

    /// Whether every sequence this glob matches, `other` matches.
    ///
    /// Exact: the segment alphabet is infinite, so a literal never covers `*`.
    pub(crate) fn is_subset_of(&self, other: &Glob) -> bool {
        let (n, m) = (self.segments.len(), other.segments.len());
        let lengths_fit = match (self.rest, other.rest) {
            // other matches exactly m segments.
            (false, false) => n == m,
            (true, false) => false,
            // other matches m + 1 or more.
            (false, true) => n > m,
            // self matches n + 1 or more; other m + 1 or more.
            (true, true) => n >= m,
        };
        lengths_fit
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| match (a, b) {
                    (_, Segment::Any) => true,
                    (Segment::Literal(x), Segment::Literal(y)) => x == y,
                    (Segment::Any, Segment::Literal(_)) => false,
                })
    }

    /// Whether the glob matches every valid request of its syntax.
    pub(crate) fn is_universal(&self) -> bool {
        // A path request may be `/` (no segments), which `/**` misses; keys
        // and topics always have at least one segment.
        self.segments.is_empty() && self.rest
    }

    pub(crate) fn write(&self, f: &mut fmt::Formatter<'_>, syntax: Syntax) -> fmt::Result {
        let sep = syntax.separator();
        let mut first = syntax != Syntax::Path;
        if syntax == Syntax::Path && self.segments.is_empty() && !self.rest {
            return f.write_str("/");
        }
        let parts = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.as_str(),
                Segment::Any => "*",
            })
            .chain(self.rest.then_some(syntax.rest()));
        for part in parts {
            if !first {
                write!(f, "{sep}")?;
            }
            first = false;
            f.write_str(part)?;
        }
        Ok(())
    }
}

/// Strips the leading `/` of a path; returns the body and its offset.
fn split_root(text: &str, syntax: Syntax) -> Result<(&str, usize)> {
    if text.is_empty() {
        return Err(CapabilityError::new(
            0,
            0,
            format!("expected {}", describe(syntax)),
        ));
    }
    if syntax != Syntax::Path {
        return Ok((text, 0));
    }
    match text.strip_prefix('/') {
        Some(body) => Ok((body, 1)),
        None => Err(CapabilityError::new(
            0,
            text.chars().next().map_or(1, char::len_utf8),
            "expected an absolute path starting with `/`",
        )),
    }
}

fn describe(syntax: Syntax) -> &'static str {
    match syntax {
        Syntax::Path => "an absolute path starting with `/`",
        Syntax::Key => "a `bucket/key` pattern",
        Syntax::Topic => "a `.`-separated topic",
    }
}

/// The segments of `body` with their byte offsets; an empty body has no
/// segments (the root path `/`).
fn segments_with_offsets(body: &str, sep: char) -> impl Iterator<Item = (usize, &str)> {
    let count = if body.is_empty() { 0 } else { usize::MAX };
    body.split(sep)
        .scan(0usize, move |pos, seg| {
            let at = *pos;
            *pos += seg.len() + 1;
            Some((at, seg))
        })
        .take(count)
}

/// The concrete segments of a validated request resource.
pub(crate) fn request_segments(resource: &str, syntax: Syntax) -> Segments<'_> {
    let body = match syntax {
        Syntax::Path => resource.get(1..).unwrap_or(""),
        Syntax::Key | Syntax::Topic => resource,
    };
    Segments {
        rest: (!body.is_empty()).then_some(body),
        sep: syntax.separator() as u8,
    }
}

/// Splits on an ASCII separator byte; cheaper than `str::split` for the
/// short segments of paths, keys and topics, and `Copy` for backtracking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segments<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl Segments<'_> {
    /// Whether no segment is left (without splitting the next one off).
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_none()
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.bytes().position(|b| b == self.sep) {
            Some(i) => {
                // `sep` is ASCII, so both sides are on char boundaries.
                self.rest = rest.get(i + 1..);
                rest.get(..i)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// Validates a concrete resource (a request): the same rules as a pattern's
/// literals, with no wildcards.
pub(crate) fn check_request(text: &str, syntax: Syntax) -> Result<()> {
    let (body, base) = split_root(text, syntax)?;
    for (offset, seg) in segments_with_offsets(body, syntax.separator()) {
        check_segment(seg, syntax, false).map_err(|e| e.shifted(offset + base))?;
    }
    Ok(())
}

/// Validates one segment; `pattern` says whether wildcards are reserved.
fn check_segment(seg: &str, syntax: Syntax, pattern: bool) -> Result<()> {
    let unit = syntax.unit();
    if seg.is_empty() {
        let what = match syntax {
            Syntax::Path => "empty path component (`//` or a trailing `/`)",
            Syntax::Key => "empty key segment (`//`, or a leading or trailing `/`)",
            Syntax::Topic => "empty topic segment (`..`, or a leading or trailing `.`)",
        };
        return Err(CapabilityError::new(0, 1, what));
    }
    if syntax == Syntax::Path && (seg == "." || seg == "..") {
        return Err(CapabilityError::new(
            0,
            seg.len(),
            format!("`{seg}` is not allowed in a path; paths must be normalized"),
        ));
    }
    for (i, c) in seg.char_indices() {
        let bad = match c {
            '\0' => Some(format!("NUL byte in a {unit}")),
            '\\' if syntax == Syntax::Path => Some("backslash in a path component".to_owned()),
            c if syntax == Syntax::Topic && (c.is_whitespace() || c.is_control()) => {
                Some(format!("whitespace or control character in a {unit}"))
            }
            '*' if pattern => Some(format!(
                "`*` must be a whole {unit} (`*` or `{}`)",
                syntax.rest()
            )),
            '>' if pattern && syntax == Syntax::Topic => {
                Some("`>` must be a whole topic segment".to_owned())
            }
            _ => None,
        };
        if let Some(message) = bad {
            return Err(CapabilityError::new(i, c.len_utf8(), message));
        }
    }
    if !pattern && syntax == Syntax::Topic && (seg == "*" || seg == ">") {
        return Err(CapabilityError::new(
            0,
            1,
            format!("a request topic is concrete; `{seg}` is a wildcard"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(text: &str, syntax: Syntax) -> Glob {
        Glob::parse(text, syntax).expect("valid glob")
    }

    fn show(g: &Glob, syntax: Syntax) -> String {
        struct D<'a>(&'a Glob, Syntax);
        impl fmt::Display for D<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write(f, self.1)
            }
        }
        D(g, syntax).to_string()
    }

    #[test]
    fn round_trips() {
        for (text, syntax) in [
            ("/", Syntax::Path),
            ("/**", Syntax::Path),
            ("/data/*/x", Syntax::Path),
            ("/data/**", Syntax::Path),
            ("b/k", Syntax::Key),
            ("**", Syntax::Key),
            ("b/*/**", Syntax::Key),
            ("orders.*", Syntax::Topic),
            (">", Syntax::Topic),
            ("a.b.>", Syntax::Topic),
        ] {
            assert_eq!(show(&glob(text, syntax), syntax), text);
        }
    }

    #[test]
    fn rejects_bad_patterns_with_spans() {
        let cases = [
            ("data", Syntax::Path, 0),
            ("/data//x", Syntax::Path, 6),
            ("/data/", Syntax::Path, 6),
            ("/data/../x", Syntax::Path, 6),
            ("/a/b\\c", Syntax::Path, 4),
            ("/a/x*", Syntax::Path, 4),
            ("/a/**/b", Syntax::Path, 3),
            ("b//k", Syntax::Key, 2),
            ("/b", Syntax::Key, 0),
            ("a.>.b", Syntax::Topic, 2),
            ("a. b", Syntax::Topic, 2),
            ("", Syntax::Topic, 0),
        ];
        for (text, syntax, offset) in cases {
            let err = Glob::parse(text, syntax).expect_err(text);
            assert_eq!(err.offset, offset, "{text}: {err}");
        }
    }

    #[test]
    fn subset_rules() {
        let p = |t| glob(t, Syntax::Path);
        assert!(p("/a/b").is_subset_of(&p("/a/*")));
        assert!(p("/a/b/c").is_subset_of(&p("/a/**")));
        assert!(p("/a/*/**").is_subset_of(&p("/a/**")));
        assert!(!p("/a/**").is_subset_of(&p("/a/*")));
        assert!(!p("/a").is_subset_of(&p("/a/**")));
        assert!(!p("/a/*").is_subset_of(&p("/a/b")));
        assert!(p("/a/**").is_subset_of(&p("/a/**")));
        assert!(!p("/a/**").is_subset_of(&p("/a/b/**")));
    }

    #[test]
    fn request_checks() {
        assert!(check_request("/", Syntax::Path).is_ok());
        assert!(check_request("/a/%2e%2e", Syntax::Path).is_ok());
        assert!(check_request("/a/*", Syntax::Path).is_ok());
        assert!(check_request("/a/./b", Syntax::Path).is_err());
        assert!(check_request("orders.*", Syntax::Topic).is_err());
        assert_eq!(request_segments("/", Syntax::Path).count(), 0);
        assert_eq!(
            request_segments("/a/b", Syntax::Path).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }
}
