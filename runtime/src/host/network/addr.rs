//! Address checks for the network service: every address a name resolves
//! to (and every datagram's sender) is checked again as an IP request
//! against the component's grants, and special-purpose addresses
//! (loopback, link-local, unspecified, broadcast, cloud metadata) pass only
//! through a grant that names them by address or by a CIDR block inside
//! their special range.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use airssys_contract::capability::{
    Action, Domain, GrantSet, HostPattern, Request, ResourcePattern,
};

/// A special-purpose address range: reachable only through an explicit
/// address grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Special {
    /// What kind of address it is, for messages.
    pub(crate) label: &'static str,
    /// The prefix length of the range: a CIDR grant must be at least this
    /// narrow (an exact address counts as fully narrow).
    pub(crate) prefix: u8,
}

/// Maps IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) to the IPv4 address
/// they carry; other addresses are returned unchanged.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// The special range `ip` falls in, if any (after [`canonical`]).
pub(crate) fn special(ip: IpAddr) -> Option<Special> {
    let s = |label, prefix| Some(Special { label, prefix });
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4 == Ipv4Addr::new(169, 254, 169, 254) || v4 == Ipv4Addr::new(100, 100, 100, 200) {
                s("cloud metadata", 32)
            } else if o[0] == 127 {
                s("loopback", 8)
            } else if o[0] == 169 && o[1] == 254 {
                s("link-local", 16)
            } else if o[0] == 0 {
                s("unspecified (\"this network\")", 8)
            } else if v4 == Ipv4Addr::BROADCAST {
                s("broadcast", 32)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            if v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
                s("cloud metadata", 128)
            } else if v6 == Ipv6Addr::LOCALHOST {
                s("loopback", 128)
            } else if v6 == Ipv6Addr::UNSPECIFIED {
                s("unspecified", 128)
            } else if seg[0] & 0xffc0 == 0xfe80 {
                s("link-local", 10)
            } else if seg[..6] == [0, 0, 0, 0, 0, 0] {
                // IPv4-compatible (`::a.b.c.d`, deprecated): never a real
                // peer, but some stacks route it to the IPv4 address.
                s("IPv4-compatible", 96)
            } else if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                // NAT64 well-known prefix: may reach any IPv4 address.
                s("NAT64", 96)
            } else {
                None
            }
        }
    }
}

/// The `net` resource text of `addr`: `a.b.c.d:port` or `[v6]:port`.
pub(crate) fn resource(addr: SocketAddr) -> String {
    match canonical(addr.ip()) {
        IpAddr::V4(v4) => format!("{v4}:{}", addr.port()),
        IpAddr::V6(v6) => format!("[{v6}]:{}", addr.port()),
    }
}

/// Checks one concrete address as the request `net:<action>:<ip>:<port>`:
/// the grants must allow it, and a special address needs a grant naming
/// it by address (or a CIDR no wider than its special range). Returns the
/// denial text, which names the capability.
pub(crate) fn check(grants: &GrantSet, action: Action, addr: SocketAddr) -> Result<(), String> {
    let res = resource(addr);
    let capability = format!("net:{action}:{res}");
    let request = Request::new(Domain::Net, action, &res)
        .map_err(|e| format!("`{capability}` is not a valid request: {e}"))?;
    let decision = grants.check(&request);
    if !decision.is_allowed() {
        return Err(format!(
            "capability `{capability}` is not granted ({})",
            grants.describe_request(&decision, &request)
        ));
    }
    let Some(special) = special(addr.ip()) else {
        return Ok(());
    };
    let explicit = grants.allows().iter().any(|grant| {
        grant.domain() == Domain::Net
            && grant.action() == action
            && grant.covers(&request)
            && match grant.resource() {
                Some(ResourcePattern::Net(p)) => match p.host {
                    HostPattern::Ip(_) => true,
                    HostPattern::Cidr(_, len) => len >= special.prefix,
                    _ => false,
                },
                _ => false,
            }
    });
    if explicit {
        Ok(())
    } else {
        Err(format!(
            "capability `{capability}` is not granted: {res} is a {} address, reachable only \
             through a grant that names it by address (e.g. `{capability}`), not by a host \
             name or a wildcard",
            special.label
        ))
    }
}

/// Resolves `address` (`host:port`, already validated by the capability
/// guard) on the calling thread.
pub(crate) fn resolve(address: &str) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| format!("`{address}` did not resolve: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("`{address}` resolved to no address"));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn set(grants: &[&str]) -> GrantSet {
        grants
            .iter()
            .fold(GrantSet::builder(), |b, g| b.allow(g.parse().unwrap()))
            .build()
    }

    fn sa(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn special_ranges() {
        for (ip, label) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("169.254.169.254", "cloud metadata"),
            ("fd00:ec2::254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("fe80::1", "link-local"),
            ("0.0.0.0", "unspecified (\"this network\")"),
            ("::", "unspecified"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("64:ff9b::7f00:1", "NAT64"),
        ] {
            assert_eq!(
                special(ip.parse().unwrap()).map(|s| s.label),
                Some(label),
                "{ip}"
            );
        }
        for ip in ["10.0.0.1", "93.184.216.34", "2001:db8::1", "fd00::1"] {
            assert_eq!(special(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn loopback_needs_an_address_grant() {
        let any = set(&["net:connect:*:*"]);
        let err = check(&any, Action::Connect, sa("127.0.0.1:80")).unwrap_err();
        assert!(err.contains("`net:connect:127.0.0.1:80`"), "{err}");
        assert!(check(&any, Action::Connect, sa("93.184.216.34:80")).is_ok());
        let wide = set(&["net:connect:0.0.0.0/0:*"]);
        assert!(check(&wide, Action::Connect, sa("127.0.0.1:80")).is_err());
        let exact = set(&["net:connect:127.0.0.1:80"]);
        assert!(check(&exact, Action::Connect, sa("127.0.0.1:80")).is_ok());
        assert!(check(&exact, Action::Connect, sa("127.0.0.1:81")).is_err());
        // Mapped IPv6 is the IPv4 address it carries.
        assert!(check(&exact, Action::Connect, sa("[::ffff:127.0.0.1]:80")).is_ok());
        let block = set(&["net:connect:127.0.0.0/8:*"]);
        assert!(check(&block, Action::Connect, sa("127.9.9.9:5")).is_ok());
        let name = set(&["net:connect:localhost:80"]);
        assert!(check(&name, Action::Connect, sa("127.0.0.1:80")).is_err());
    }

    #[test]
    fn metadata_needs_its_own_address() {
        let link = set(&["net:http:169.254.0.0/16:*"]);
        assert!(check(&link, Action::Http, sa("169.254.1.1:80")).is_ok());
        assert!(check(&link, Action::Http, sa("169.254.169.254:80")).is_err());
        let v6 = set(&["net:http:[fd00::/8]:*"]);
        assert!(check(&v6, Action::Http, sa("[fd00:ec2::254]:80")).is_err());
    }
}
