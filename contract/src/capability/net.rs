//! Network resources: `host:port` patterns and concrete request addresses.
//!
//! Hosts are matched as typed values: names case-insensitively (patterns are
//! stored lower-cased), addresses numerically. Numeric-looking names that a
//! resolver would read as an IPv4 address (`127.1`, `2130706433`,
//! `0x7f.1`, `017.0.0.1`) are rejected, and IPv4-mapped IPv6 addresses
//! (`::ffff:127.0.0.1`) are treated as the IPv4 address they carry.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::{CapabilityError, Result};

/// The longest DNS name accepted (without a trailing dot).
pub(crate) const MAX_NAME: usize = 253;

/// A `host:port` pattern of the `net` domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetPattern {
    /// Which hosts.
    pub host: HostPattern,
    /// Which ports.
    pub port: PortPattern,
}

/// The host half of a [`NetPattern`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `*`: any host, name or address.
    Any,
    /// An exact DNS name, stored lower-case without a trailing dot.
    Name(String),
    /// `*.suffix`: any name with one or more labels before `.suffix`; never
    /// the apex `suffix` itself. Stores the suffix, lower-case.
    Suffix(String),
    /// One IP address (`10.0.0.1`, `[::1]`).
    Ip(IpAddr),
    /// An address block (`10.0.0.0/8`, `[fd00::/8]`) with no host bits set.
    Cidr(IpAddr, u8),
}

/// The port half of a [`NetPattern`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortPattern {
    /// `*`: any port 1-65535.
    Any,
    /// `p` (`lo == hi`) or the inclusive range `lo-hi`.
    Range(u16, u16),
}

/// A concrete request host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host<'a> {
    /// A validated DNS name, in the caller's case.
    Name(&'a str),
    /// An IPv4 address (also from an IPv4-mapped IPv6 literal).
    V4(Ipv4Addr),
    /// An IPv6 address.
    V6(Ipv6Addr),
}

impl PortPattern {
    /// The inclusive bounds of the pattern.
    pub fn bounds(self) -> (u16, u16) {
        match self {
            PortPattern::Any => (1, u16::MAX),
            PortPattern::Range(lo, hi) => (lo, hi),
        }
    }

    pub(crate) fn contains(self, port: u16) -> bool {
        let (lo, hi) = self.bounds();
        lo <= port && port <= hi
    }

    fn is_subset_of(self, other: PortPattern) -> bool {
        let ((a, b), (c, d)) = (self.bounds(), other.bounds());
        c <= a && b <= d
    }
}

impl NetPattern {
    /// Parses `host:port`; errors are relative to `text`.
    pub(crate) fn parse(text: &str) -> Result<NetPattern> {
        let parts = split_host_port(text)?;
        let host = if parts.bracketed {
            parse_v6_pattern(parts.host).map_err(|e| e.shifted(parts.host_at))?
        } else {
            parse_host_pattern(parts.host).map_err(|e| e.shifted(parts.host_at))?
        };
        let port = parse_port_pattern(parts.port).map_err(|e| e.shifted(parts.port_at))?;
        Ok(NetPattern { host, port })
    }

    pub(crate) fn matches(&self, host: Host<'_>, port: u16) -> bool {
        self.port.contains(port) && self.host.matches(host)
    }

    pub(crate) fn is_subset_of(&self, other: &NetPattern) -> bool {
        self.port.is_subset_of(other.port) && self.host.is_subset_of(&other.host)
    }

    pub(crate) fn is_universal(&self) -> bool {
        self.host == HostPattern::Any && self.port.bounds() == (1, u16::MAX)
    }
}

impl HostPattern {
    pub(crate) fn matches(&self, host: Host<'_>) -> bool {
        match (self, host) {
            (HostPattern::Any, _) => true,
            (HostPattern::Name(n), Host::Name(h)) => n.eq_ignore_ascii_case(h),
            (HostPattern::Suffix(s), Host::Name(h)) => is_strict_suffix(h, s),
            (HostPattern::Ip(ip), Host::V4(a)) => *ip == IpAddr::V4(a),
            (HostPattern::Ip(ip), Host::V6(a)) => *ip == IpAddr::V6(a),
            (HostPattern::Cidr(net, len), Host::V4(a)) => {
                block_contains(Block::of(*net, *len), Block::of(IpAddr::V4(a), 32))
            }
            (HostPattern::Cidr(net, len), Host::V6(a)) => {
                block_contains(Block::of(*net, *len), Block::of(IpAddr::V6(a), 128))
            }
            _ => false,
        }
    }

    fn is_subset_of(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (_, HostPattern::Any) => true,
            (HostPattern::Any, _) => false,
            (HostPattern::Name(a), HostPattern::Name(b)) => a == b,
            (HostPattern::Name(a), HostPattern::Suffix(s)) => is_strict_suffix(a, s),
            (HostPattern::Suffix(a), HostPattern::Suffix(b)) => a == b || is_strict_suffix(a, b),
            (
                HostPattern::Ip(_) | HostPattern::Cidr(..),
                HostPattern::Ip(_) | HostPattern::Cidr(..),
            ) => match (self.block(), other.block()) {
                (Some(a), Some(b)) => block_contains(b, a),
                _ => false,
            },
            _ => false,
        }
    }

    fn block(&self) -> Option<Block> {
        match self {
            HostPattern::Ip(ip) => Some(Block::of(*ip, if ip.is_ipv4() { 32 } else { 128 })),
            HostPattern::Cidr(ip, len) => Some(Block::of(*ip, *len)),
            _ => None,
        }
    }
}

/// Whether `name` ends in `.suffix` with at least one label before it
/// (ASCII case-insensitive).
pub(crate) fn is_strict_suffix(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len() + 1
        && name.is_char_boundary(name.len() - suffix.len() - 1)
        && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
}

/// An address block as bits: IPv4 in the low 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) v6: bool,
    pub(crate) bits: u128,
    pub(crate) len: u8,
}

impl Block {
    pub(crate) fn of(ip: IpAddr, len: u8) -> Block {
        match ip {
            IpAddr::V4(a) => Block {
                v6: false,
                bits: u128::from(u32::from(a)),
                len,
            },
            IpAddr::V6(a) => Block {
                v6: true,
                bits: u128::from(a),
                len,
            },
        }
    }

    pub(crate) fn width(v6: bool) -> u8 {
        if v6 { 128 } else { 32 }
    }
}

/// `bits` with everything after the first `len` of `width` bits cleared.
pub(crate) fn mask(bits: u128, len: u8, width: u8) -> u128 {
    if len == 0 {
        return 0;
    }
    let full = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    bits & full & (u128::MAX << (width - len))
}

/// Whether block `outer` contains block `inner`.
fn block_contains(outer: Block, inner: Block) -> bool {
    outer.v6 == inner.v6
        && inner.len >= outer.len
        && mask(inner.bits, outer.len, Block::width(outer.v6)) == outer.bits
}

impl fmt::Display for NetPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Any => f.write_str("*")?,
            HostPattern::Name(n) => f.write_str(n)?,
            HostPattern::Suffix(s) => write!(f, "*.{s}")?,
            HostPattern::Ip(IpAddr::V4(a)) => write!(f, "{a}")?,
            HostPattern::Ip(IpAddr::V6(a)) => write!(f, "[{a}]")?,
            HostPattern::Cidr(IpAddr::V4(a), len) => write!(f, "{a}/{len}")?,
            HostPattern::Cidr(IpAddr::V6(a), len) => write!(f, "[{a}/{len}]")?,
        }
        match self.port {
            PortPattern::Any => f.write_str(":*"),
            PortPattern::Range(lo, hi) if lo == hi => write!(f, ":{lo}"),
            PortPattern::Range(lo, hi) => write!(f, ":{lo}-{hi}"),
        }
    }
}

struct HostPort<'a> {
    host: &'a str,
    host_at: usize,
    port: &'a str,
    port_at: usize,
    bracketed: bool,
}

fn split_host_port(text: &str) -> Result<HostPort<'_>> {
    if text.is_empty() {
        return Err(CapabilityError::new(0, 0, "expected `host:port`"));
    }
    if let Some(inner) = text.strip_prefix('[') {
        let close = inner
            .find(']')
            .ok_or_else(|| CapabilityError::new(0, 1, "unclosed `[` in an IPv6 address"))?;
        let after = &inner[close + 1..];
        let port = after.strip_prefix(':').ok_or_else(|| {
            CapabilityError::new(close + 2, after.len().min(1), "expected `:port` after `]`")
        })?;
        return Ok(HostPort {
            host: &inner[..close],
            host_at: 1,
            port,
            port_at: close + 3,
            bracketed: true,
        });
    }
    let colon = text
        .rfind(':')
        .ok_or_else(|| CapabilityError::new(text.len(), 0, "expected `:port` after the host"))?;
    let host = &text[..colon];
    if let Some(i) = host.find(':') {
        return Err(CapabilityError::new(
            i,
            1,
            "IPv6 addresses go in brackets, as in `[::1]:443`",
        ));
    }
    Ok(HostPort {
        host,
        host_at: 0,
        port: &text[colon + 1..],
        port_at: colon + 1,
        bracketed: false,
    })
}

fn parse_host_pattern(text: &str) -> Result<HostPattern> {
    if text == "*" {
        return Ok(HostPattern::Any);
    }
    if let Some(suffix) = text.strip_prefix("*.") {
        check_name(suffix).map_err(|e| e.shifted(2))?;
        return Ok(HostPattern::Suffix(suffix.to_ascii_lowercase()));
    }
    if let Some(i) = text.find('*') {
        return Err(CapabilityError::new(
            i,
            1,
            "`*` in a host must be the whole host or a leading `*.`",
        ));
    }
    if let Some((addr, len)) = text.split_once('/') {
        let ip = parse_v4(addr)?;
        let len = parse_prefix(len, 32).map_err(|e| e.shifted(addr.len() + 1))?;
        return cidr(IpAddr::V4(ip), len, text);
    }
    match parse_host(text)? {
        Host::Name(n) => Ok(HostPattern::Name(n.to_ascii_lowercase())),
        Host::V4(a) => Ok(HostPattern::Ip(IpAddr::V4(a))),
        Host::V6(a) => Ok(HostPattern::Ip(IpAddr::V6(a))),
    }
}

fn parse_v6_pattern(text: &str) -> Result<HostPattern> {
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (addr, Some((len, addr.len() + 1))),
        None => (text, None),
    };
    let ip = parse_v6(addr)?;
    match len {
        None => Ok(match ip.to_ipv4_mapped() {
            Some(v4) => HostPattern::Ip(IpAddr::V4(v4)),
            None => HostPattern::Ip(IpAddr::V6(ip)),
        }),
        Some((len, at)) => {
            let len = parse_prefix(len, 128).map_err(|e| e.shifted(at))?;
            match ip.to_ipv4_mapped() {
                Some(v4) if len >= 96 => cidr(IpAddr::V4(v4), len - 96, text),
                _ => cidr(IpAddr::V6(ip), len, text),
            }
        }
    }
}

fn cidr(ip: IpAddr, len: u8, text: &str) -> Result<HostPattern> {
    let block = Block::of(ip, len);
    if mask(block.bits, len, Block::width(block.v6)) != block.bits {
        return Err(CapabilityError::new(
            0,
            text.len(),
            format!("`{text}` has address bits set beyond the /{len} prefix"),
        ));
    }
    Ok(HostPattern::Cidr(ip, len))
}

fn parse_prefix(text: &str, max: u8) -> Result<u8> {
    let bad = || {
        CapabilityError::new(
            0,
            text.len().max(1),
            format!("expected a prefix length 0-{max}"),
        )
    };
    let n = parse_decimal(text).ok_or_else(bad)?;
    u8::try_from(n).ok().filter(|n| *n <= max).ok_or_else(bad)
}

/// Parses a canonical decimal number (no sign, no leading zero).
fn parse_decimal(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

fn parse_port_pattern(text: &str) -> Result<PortPattern> {
    if text == "*" {
        return Ok(PortPattern::Any);
    }
    match text.split_once('-') {
        Some((lo, hi)) => {
            let a = parse_port(lo)?;
            let b = parse_port(hi).map_err(|e| e.shifted(lo.len() + 1))?;
            if a > b {
                return Err(CapabilityError::new(
                    0,
                    text.len(),
                    format!("empty port range `{text}`: the first port is larger than the second"),
                ));
            }
            Ok(PortPattern::Range(a, b))
        }
        None => parse_port(text).map(|p| PortPattern::Range(p, p)),
    }
}

/// Parses one port number, 1-65535.
pub(crate) fn parse_port(text: &str) -> Result<u16> {
    let span = text.len().max(1);
    let n = parse_decimal(text).ok_or_else(|| {
        CapabilityError::new(
            0,
            span,
            format!("expected a port number 1-65535, found `{text}`"),
        )
    })?;
    match u16::try_from(n) {
        Ok(0) => Err(CapabilityError::new(
            0,
            span,
            "port 0 is not a valid port (1-65535)",
        )),
        Ok(p) => Ok(p),
        Err(_) => Err(CapabilityError::new(
            0,
            span,
            format!("port {n} is out of range (1-65535)"),
        )),
    }
}

/// Parses a concrete request `host:port`.
pub(crate) fn parse_request(text: &str) -> Result<(Host<'_>, u16)> {
    // Requests are parsed on every host call: one pass accepts the usual
    // `name:port`; the general parser below handles addresses and finds
    // and describes any error.
    if let Some(parsed) = parse_plain_request(text) {
        return Ok(parsed);
    }
    let parts = split_host_port(text)?;
    let host = if parts.bracketed {
        let ip = parse_v6(parts.host).map_err(|e| e.shifted(parts.host_at))?;
        match ip.to_ipv4_mapped() {
            Some(v4) => Host::V4(v4),
            None => Host::V6(ip),
        }
    } else {
        parse_host(parts.host).map_err(|e| e.shifted(parts.host_at))?
    };
    let port = parse_port(parts.port).map_err(|e| {
        let e = e.shifted(parts.port_at);
        if parts.port.contains(['*', '-']) {
            CapabilityError::new(
                e.offset,
                e.len,
                "a request names one port, not `*` or a range",
            )
        } else {
            e
        }
    })?;
    Ok((host, port))
}

/// `name:port` in one pass over the name, when the name is certainly valid
/// and not numeric-looking; `None` means "parse fully", not "invalid".
fn parse_plain_request(text: &str) -> Option<(Host<'_>, u16)> {
    let (host, port) = text.split_once(':')?;
    if host.len() > MAX_NAME {
        return None;
    }
    let mut label = 0..0;
    for (i, b) in host.bytes().enumerate() {
        match b {
            b'.' => {
                if !is_plain_label(host.get(label.clone())?) {
                    return None;
                }
                label = i + 1..i + 1;
            }
            b if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' => label.end = i + 1,
            _ => return None,
        }
    }
    let last = host.get(label)?;
    let hex = last.len() >= 2 && last.as_bytes()[..2].eq_ignore_ascii_case(b"0x");
    if !is_plain_label(last) || hex || last.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // A second `:` makes the port invalid: the full parser reports it.
    Some((Host::Name(host), parse_port(port).ok()?))
}

/// A label [`check_label`] accepts, given that its bytes are letters,
/// digits, `-` and `_`.
fn is_plain_label(label: &str) -> bool {
    !label.is_empty() && label.len() <= 63 && !label.starts_with('-') && !label.ends_with('-')
}

/// Parses an unbracketed concrete host: a canonical dotted quad or a name.
fn parse_host(text: &str) -> Result<Host<'_>> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return parse_v4(text).map(Host::V4);
    }
    check_name(text)?;
    Ok(Host::Name(text))
}

fn parse_v4(text: &str) -> Result<Ipv4Addr> {
    // std rejects leading zeros and short forms (`127.1`), as we want.
    let plain = text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    match text.parse::<Ipv4Addr>() {
        Ok(ip) if plain => Ok(ip),
        _ => Err(CapabilityError::new(
            0,
            text.len().max(1),
            format!(
                "`{text}` is not a canonical dotted-quad IPv4 address \
                 (forms like `127.1`, `2130706433` or `017.0.0.1` are refused)"
            ),
        )),
    }
}

fn parse_v6(text: &str) -> Result<Ipv6Addr> {
    text.parse::<Ipv6Addr>().map_err(|_| {
        CapabilityError::new(
            0,
            text.len().max(1),
            format!("`{text}` is not an IPv6 address"),
        )
    })
}

/// Validates a DNS name: labels of letters, digits, `-` and `_`, no
/// trailing dot, and not numeric-looking.
fn check_name(text: &str) -> Result<()> {
    if text.is_empty() {
        return Err(CapabilityError::new(
            0,
            0,
            "expected a host name or address",
        ));
    }
    if text.ends_with('.') {
        return Err(CapabilityError::new(
            text.len() - 1,
            1,
            "trailing dot in a host name; write the name without it",
        ));
    }
    if text.len() > MAX_NAME {
        return Err(CapabilityError::new(
            0,
            text.len(),
            format!("host name longer than {MAX_NAME} bytes"),
        ));
    }
    let mut at = 0;
    let mut last = "";
    for label in text.split('.') {
        check_label(label).map_err(|e| e.shifted(at))?;
        last = label;
        at += label.len() + 1;
    }
    let hex = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    if hex || last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CapabilityError::new(
            0,
            text.len(),
            format!(
                "numeric-looking host `{text}` is refused: a resolver may read it as an \
                 IPv4 address; write a canonical dotted quad"
            ),
        ));
    }
    Ok(())
}

fn check_label(label: &str) -> Result<()> {
    if label.is_empty() {
        return Err(CapabilityError::new(0, 1, "empty label in a host name"));
    }
    if label.len() > 63 {
        return Err(CapabilityError::new(
            0,
            label.len(),
            "host name label longer than 63 bytes",
        ));
    }
    if let Some((i, c)) = label
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(CapabilityError::new(
            i,
            c.len_utf8(),
            format!(
                "`{}` is not allowed in a host name (letters, digits, `-`, `_`)",
                c.escape_default()
            ),
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(CapabilityError::new(
            0,
            label.len(),
            "a host name label may not start or end with `-`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(text: &str) -> NetPattern {
        NetPattern::parse(text).expect("valid net pattern")
    }

    #[test]
    fn patterns_round_trip() {
        for text in [
            "example.com:443",
            "*.example.com:*",
            "*:80-90",
            "10.0.0.0/8:5432",
            "127.0.0.1:1",
            "[::1]:443",
            "[fd00::/8]:*",
            "0.0.0.0/0:65535",
        ] {
            assert_eq!(pat(text).to_string(), text);
        }
        assert_eq!(pat("Example.COM:443").to_string(), "example.com:443");
        assert_eq!(pat("[::ffff:127.0.0.1]:1").to_string(), "127.0.0.1:1");
        assert_eq!(pat("[::ffff:10.0.0.0/104]:1").to_string(), "10.0.0.0/8:1");
    }

    #[test]
    fn rejects_bad_patterns() {
        for (text, offset) in [
            ("example.com", 11),
            ("example.com.:443", 11),
            ("127.1:80", 0),
            ("x:0", 2),
            ("x:65536", 2),
            ("x:90-80", 2),
            ("10.0.0.1/8:1", 0),
            ("::1:443", 0),
            ("[::1]443", 5),
            ("a*.b:1", 1),
            ("0x7f.1:80", 0),
            ("a..b:1", 2),
            ("-a.b:1", 0),
            ("10.0.0.0/33:1", 9),
        ] {
            let err = NetPattern::parse(text).expect_err(text);
            assert_eq!(err.offset, offset, "{text}: {err}");
        }
    }

    #[test]
    fn request_hosts() {
        let ok = |t| parse_request(t).expect("valid request");
        assert_eq!(ok("Example.com:1").0, Host::Name("Example.com"));
        assert_eq!(ok("[::ffff:127.0.0.1]:1").0, Host::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(ok("[::1]:1").0, Host::V6(Ipv6Addr::LOCALHOST));
        for bad in [
            "127.1:1",
            "2130706433:1",
            "0x7f.1:1",
            "017.0.0.1:1",
            "a.:1",
            "a:*",
            "[::1%1]:1",
        ] {
            assert!(parse_request(bad).is_err(), "{bad}");
        }
        // The one-pass parse never accepts what the full parse refuses,
        // and agrees with it on what it accepts.
        let long_label = format!("{}.com:1", "a".repeat(64));
        let long_name = format!("{}a:1", "a.".repeat(127));
        for text in [
            "a.com:443",
            "A-b_c.Example.COM:1",
            "a:65535",
            "a.com:0",
            "a.com:65536",
            "a.com:01",
            "a.com:",
            "a.com:1:2",
            ":1",
            "a..com:1",
            ".a.com:1",
            "a.com.:1",
            "-a.com:1",
            "a-.com:1",
            "a.b-:1",
            "a.123:1",
            "a.0x1f:1",
            "a.0X:1",
            "a.0xg:1",
            "1.2.3.4:1",
            "a b:1",
            "caf\u{e9}.com:1",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            let full = {
                let parts = split_host_port(text);
                parts.and_then(|p| {
                    let host = parse_host(p.host)?;
                    Ok((host, parse_port(p.port)?))
                })
            };
            if let Some(fast) = parse_plain_request(text) {
                assert_eq!(full.as_ref().ok(), Some(&fast), "{text}");
            }
            assert_eq!(parse_request(text).is_ok(), full.is_ok(), "{text}");
        }
    }

    #[test]
    fn subsets() {
        assert!(pat("*.a.com:1").is_subset_of(&pat("*.com:1")));
        assert!(!pat("*.com:1").is_subset_of(&pat("*.a.com:1")));
        assert!(pat("x.a.com:1").is_subset_of(&pat("*.a.com:1")));
        assert!(!pat("a.com:1").is_subset_of(&pat("*.a.com:1")));
        assert!(pat("10.1.0.0/16:1").is_subset_of(&pat("10.0.0.0/8:1")));
        assert!(pat("10.1.2.3:1").is_subset_of(&pat("10.0.0.0/8:1")));
        assert!(!pat("11.0.0.0/16:1").is_subset_of(&pat("10.0.0.0/8:1")));
        assert!(pat("a.com:80-90").is_subset_of(&pat("*:1-1000")));
        assert!(!pat("a.com:80-90").is_subset_of(&pat("a.com:81-90")));
        assert!(pat("*:*").is_universal());
        assert!(pat("*:1-65535").is_universal());
    }
}
