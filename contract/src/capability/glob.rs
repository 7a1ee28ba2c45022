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
        for (at, seg) in segments_with_offsets(body, syntax.separator()) {
            let offset = at + base;
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
                check_segment_at(body, at, seg, syntax, true).map_err(|e| e.shifted(base))?;
                segments.push(Segment::Literal(seg.to_owned()));
            }
        }
        Ok(Glob { segments, rest })
    }

    /// Whether the concrete segments (bytes, as [`request_segments`]
    /// yields them) match this glob.
    pub(crate) fn matches<'s>(&self, mut segs: impl Iterator<Item = &'s [u8]>) -> bool {
        for pattern in &self.segments {
            match (pattern, segs.next()) {
                (_, None) => return false,
                (Segment::Literal(lit), Some(seg)) if lit.as_bytes() != seg => return false,
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

/// The concrete segments of a validated request resource, as bytes.
pub(crate) fn request_segments(resource: &str, syntax: Syntax) -> Segments<'_> {
    let body = match syntax {
        Syntax::Path => resource.as_bytes().get(1..).unwrap_or_default(),
        Syntax::Key | Syntax::Topic => resource.as_bytes(),
    };
    Segments {
        rest: body,
        done: body.is_empty(),
        sep: syntax.separator() as u8,
    }
}

/// Splits on an ASCII separator byte. Works on bytes rather than `str`:
/// the trie compares bytes, and slicing a `str` would check char
/// boundaries at every split. `Copy`, for backtracking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segments<'a> {
    rest: &'a [u8],
    done: bool,
    sep: u8,
}

impl Segments<'_> {
    /// Whether no segment is left (without splitting the next one off).
    pub(crate) fn is_empty(&self) -> bool {
        self.done
    }
}

impl<'a> Segments<'a> {
    /// The next segment and its [`prefix_word`], found 8 bytes at a time:
    /// most segments are at most 8 bytes, so one word load finds both the
    /// separator and the key the trie compares first.
    #[inline]
    pub(crate) fn next_keyed(&mut self) -> Option<(&'a [u8], u64)> {
        if self.done {
            return None;
        }
        let rest = self.rest;
        let (at, key) = match rest.first_chunk::<8>() {
            Some(chunk) => {
                let word = u64::from_le_bytes(*chunk);
                match first_byte(word, self.sep) {
                    Some(i) => (Some(i), word & low_bytes(i)),
                    None => (find_byte(rest, self.sep, 8), word),
                }
            }
            None => {
                let at = find_byte(rest, self.sep, 0);
                let seg = at.and_then(|i| rest.get(..i)).unwrap_or(rest);
                (at, prefix_word(seg))
            }
        };
        match at {
            Some(i) => {
                let (seg, tail) = rest.split_at(i);
                self.rest = tail.get(1..).unwrap_or_default();
                Some((seg, key))
            }
            None => {
                self.done = true;
                Some((rest, key))
            }
        }
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.next_keyed().map(|(seg, _)| seg)
    }
}

/// The first (up to) 8 bytes of `bytes` as a little-endian word,
/// zero-padded: a segment's key (segments never contain NUL).
pub(crate) fn prefix_word(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(8)
        .rev()
        .fold(0u64, |w, b| (w << 8) | u64::from(*b))
}

/// A word with the low `n` (< 8) bytes set.
fn low_bytes(n: usize) -> u64 {
    (1u64 << (8 * n)) - 1
}

/// The index of the first byte of `word` (little-endian) equal to `byte`.
/// The zero-byte test: a borrow only runs upwards from a real match, so
/// the lowest flagged byte is exact.
#[inline]
fn first_byte(word: u64, byte: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let x = word ^ (ONES * u64::from(byte));
    let found = x.wrapping_sub(ONES) & !x & (ONES << 7);
    (found != 0).then(|| (found.trailing_zeros() / 8) as usize)
}

/// The index of the first `byte` in `bytes` at or after `from`.
fn find_byte(bytes: &[u8], byte: u8, from: usize) -> Option<usize> {
    let tail = bytes.get(from..)?;
    tail.iter().position(|b| *b == byte).map(|i| i + from)
}

/// Validates a concrete resource (a request): the same rules as a pattern's
/// literals, with no wildcards.
pub(crate) fn check_request(text: &str, syntax: Syntax) -> Result<()> {
    // Requests are validated on every host call: one pass over the bytes
    // accepts the usual case; the segment-by-segment check below finds
    // and describes the error otherwise (and decides non-ASCII text).
    if is_plain_request(text.as_bytes(), syntax) {
        return Ok(());
    }
    let (body, base) = split_root(text, syntax)?;
    for (offset, seg) in segments_with_offsets(body, syntax.separator()) {
        check_segment_at(body, offset, seg, syntax, false).map_err(|e| e.shifted(base))?;
    }
    Ok(())
}

/// [`check_segment`] for the segment at byte `offset` of `body`, errors
/// relative to `body`. An empty segment is reported at the separator
/// after it, or, when it is the last one (a trailing separator), at the
/// separator before it: the span stays inside the text.
fn check_segment_at(
    body: &str,
    offset: usize,
    seg: &str,
    syntax: Syntax,
    pattern: bool,
) -> Result<()> {
    let at = if seg.is_empty() && offset == body.len() {
        offset.saturating_sub(1)
    } else {
        offset
    };
    check_segment(seg, syntax, pattern).map_err(|e| e.shifted(at))
}

/// Whether `text` is a request [`check_request`] accepts, judged in one
/// pass over printable ASCII; `false` means "check fully", not "invalid".
fn is_plain_request(text: &[u8], syntax: Syntax) -> bool {
    let body = match (syntax, text.split_first()) {
        (Syntax::Path, Some((b'/', body))) => body,
        (Syntax::Path, _) | (_, None) => return false,
        (Syntax::Key | Syntax::Topic, Some(_)) => text,
    };
    if body.is_empty() {
        // The root path `/`.
        return true;
    }
    let sep = syntax.separator() as u8;
    // Printable ASCII that no rule of `check_segment` refuses in a request
    // (topics refuse whitespace, so start after the space), decided
    // before the loop so each byte costs two comparisons.
    let lowest = if syntax == Syntax::Topic { b'!' } else { b' ' };
    let refused = if syntax == Syntax::Path {
        b'\\'
    } else {
        b'~' + 1
    };
    let mut start = 0;
    for (i, b) in body.iter().enumerate() {
        if *b == sep {
            if !is_plain_segment(body.get(start..i).unwrap_or_default(), syntax) {
                return false;
            }
            start = i + 1;
        } else if b.wrapping_sub(lowest) > b'~' - lowest || *b == refused {
            return false;
        }
    }
    is_plain_segment(body.get(start..).unwrap_or_default(), syntax)
}

/// A segment of plain bytes that [`check_segment`] accepts in a request.
fn is_plain_segment(seg: &[u8], syntax: Syntax) -> bool {
    !seg.is_empty()
        && match syntax {
            Syntax::Path => seg != b"." && seg != b"..",
            Syntax::Key => true,
            Syntax::Topic => seg != b"*" && seg != b">",
        }
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
            ("/data/", Syntax::Path, 5),
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
        assert!(is_plain_request(
            b"/srv/app/config/settings.toml",
            Syntax::Path
        ));
        assert!(is_plain_request(b"counter/x", Syntax::Key));
        // The one-pass check agrees with the full one, both ways.
        for (text, syntax) in [
            ("/", Syntax::Path),
            ("/a b/c~", Syntax::Path),
            ("/a/.", Syntax::Path),
            ("/a/..", Syntax::Path),
            ("/a/...", Syntax::Path),
            ("/a//b", Syntax::Path),
            ("/a/", Syntax::Path),
            ("a", Syntax::Path),
            ("/a\\b", Syntax::Path),
            ("/a\0b", Syntax::Path),
            ("/caf\u{e9}", Syntax::Path),
            ("b/k\\x", Syntax::Key),
            ("b/ k", Syntax::Key),
            ("/b", Syntax::Key),
            ("b/", Syntax::Key),
            ("b\tk", Syntax::Key),
            ("", Syntax::Key),
            ("a.b", Syntax::Topic),
            ("a. b", Syntax::Topic),
            ("a.>", Syntax::Topic),
            ("a.*", Syntax::Topic),
            ("a.*x", Syntax::Topic),
            ("a\u{a0}b", Syntax::Topic),
        ] {
            let full = check_request(text, syntax).is_ok();
            if is_plain_request(text.as_bytes(), syntax) {
                assert!(full, "{text:?} passed the one-pass check only");
            }
            let (body, base) = split_root(text, syntax).unwrap_or(("", 0));
            let slow = split_root(text, syntax).is_ok()
                && segments_with_offsets(body, syntax.separator()).all(|(at, seg)| {
                    check_segment(seg, syntax, false)
                        .map_err(|e| e.shifted(at + base))
                        .is_ok()
                });
            assert_eq!(full, slow, "{text:?}");
        }
        assert_eq!(request_segments("/", Syntax::Path).count(), 0);
        // Separators within, at and beyond the first 8 bytes.
        for text in [
            "/a/bcdefghij/k",
            "/abcdefg/h",
            "/abcdefgh/i",
            "/abcdefghijk",
            "/a",
            "/ab/c",
            "/a/b/c/d",
        ] {
            let mut segs = request_segments(text, Syntax::Path);
            let mut expected = text[1..].split('/');
            while let Some((seg, key)) = segs.next_keyed() {
                assert_eq!(Some(seg), expected.next().map(str::as_bytes), "{text}");
                assert_eq!(key, prefix_word(seg), "{text}");
            }
            assert_eq!(expected.next(), None, "{text}");
        }
        assert_eq!(
            request_segments("/a/b", Syntax::Path).collect::<Vec<_>>(),
            [b"a", b"b"]
        );
    }
}
