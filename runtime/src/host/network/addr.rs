//! Address checks for the network service.
//!
//! Every address a connection, datagram or HTTP request actually uses is
//! checked here as the IP request `net:<action>:<ip>:<port>`, whether the
//! component wrote it as a literal or the host resolved it from a name,
//! and so is every datagram's sender. What an address needs depends on
//! its class:
//!
//! - **public**: the component's effective grant covers the address, or
//!   the request named a host that the effective grant allowed (a name
//!   grant reaches the public addresses its name resolves to);
//! - **private** (10/8, 172.16/12, 192.168/16, 198.18/15, fc00::/7,
//!   fec0::/10): the effective grant covers the address, or the request
//!   named an allowed host *and* a rule of the host policy itself names the
//!   address (an IP, or a CIDR block inside the private range): DNS cannot
//!   lead a name grant into the internal network;
//! - **special** (loopback, unspecified, this host's own interface
//!   addresses, link-local, cloud metadata, multicast, broadcast, shared
//!   address space, IETF protocol assignments, IPv4-embedding IPv6): as
//!   above, and *always* a rule of the host policy itself that names the
//!   address, by IP or by a CIDR block no wider than the special range.
//!   The manifest's narrower pattern never counts: a component cannot
//!   name its way into loopback under a policy wildcard.
//!
//! A deny rule covering the address refuses it in every class.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use airssys_contract::capability::{
    Action, Capability, Domain, GrantSet, HostPattern, Request, ResourcePattern, Rule,
};

use super::interfaces;

/// A range of addresses that needs more than a covering grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    /// What kind of address it is, for messages.
    pub(crate) label: &'static str,
    /// The prefix length a CIDR rule must have at least to name an address
    /// of the range (an exact address always names it).
    pub(crate) prefix: u8,
}

/// The class of an address (after [`canonical`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Anything else.
    Public,
    /// An internal-network range.
    Private(Range),
    /// A special-purpose address.
    Special(Range),
}

/// How the address being checked was reached.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Via<'a> {
    /// The component wrote the address itself (or a datagram came from it).
    Literal,
    /// The host resolved it from this host name, which the component's
    /// effective grant allowed (the guard, or the redirect check, already
    /// decided that).
    Name(&'a str),
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[allow(clippy::too_many_arguments)]
const fn v6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, g: u16, h: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
}

/// Cloud metadata and platform endpoints, each special by itself (a
/// link-local or private CIDR rule does not reach them). Sources in
/// docs/network.md.
const METADATA: [IpAddr; 8] = [
    // AWS, GCP, Azure, Oracle, OpenStack, DigitalOcean, ... instance metadata.
    v4(169, 254, 169, 254),
    // AWS ECS task metadata and credentials.
    v4(169, 254, 170, 2),
    // AWS EKS Pod Identity agent.
    v4(169, 254, 170, 23),
    // Alibaba Cloud ECS metadata.
    v4(100, 100, 100, 200),
    // Azure WireServer (VM agent, DHCP, DNS).
    v4(168, 63, 129, 16),
    // AWS instance metadata over IPv6.
    v6(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254),
    // AWS EKS Pod Identity agent over IPv6.
    v6(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0023),
    // OpenStack metadata over IPv6.
    v6(0xfe80, 0, 0, 0, 0, 0, 0xa9fe, 0xa9fe),
];

/// Special ranges checked before this host's own addresses: naming them
/// by their range is enough even for an address a local interface has.
const SPECIAL_FIRST: [(IpAddr, u8, &str); 4] = [
    (v4(127, 0, 0, 0), 8, "loopback"),
    (v6(0, 0, 0, 0, 0, 0, 0, 1), 128, "loopback"),
    (v4(0, 0, 0, 0), 8, "unspecified (\"this network\")"),
    (v6(0, 0, 0, 0, 0, 0, 0, 0), 128, "unspecified"),
];

/// The label of this host's own interface addresses.
const OWN: &str = "this host's own (a network interface's)";

/// The other special ranges.
const SPECIAL: [(IpAddr, u8, &str); 11] = [
    (v4(169, 254, 0, 0), 16, "link-local"),
    (v6(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (v4(224, 0, 0, 0), 4, "multicast"),
    (v6(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
    (v4(255, 255, 255, 255), 32, "broadcast"),
    (
        v4(100, 64, 0, 0),
        10,
        "shared address space (carrier-grade NAT, RFC 6598)",
    ),
    (v4(192, 0, 0, 0), 24, "IETF protocol assignment (RFC 6890)"),
    // IPv4-compatible (`::a.b.c.d`, deprecated): never a real peer, but
    // some stacks route it to the IPv4 address.
    (v6(0, 0, 0, 0, 0, 0, 0, 0), 96, "IPv4-compatible"),
    // NAT64 prefixes: may reach any IPv4 address.
    (v6(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, "NAT64"),
    (v6(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, "NAT64 (local use)"),
    // Discard-only (RFC 6666).
    (v6(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "discard-only"),
];

/// Internal-network ranges.
const PRIVATE: [(IpAddr, u8, &str); 6] = [
    (v4(10, 0, 0, 0), 8, "private (RFC 1918)"),
    (v4(172, 16, 0, 0), 12, "private (RFC 1918)"),
    (v4(192, 168, 0, 0), 16, "private (RFC 1918)"),
    (v4(198, 18, 0, 0), 15, "benchmarking (RFC 2544)"),
    (
        v6(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "unique local (RFC 4193)",
    ),
    (
        v6(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        "site-local (deprecated)",
    ),
];

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

fn width(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Whether `ip` lies in `net/len` (same family).
pub(crate) fn in_block(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    if ip.is_ipv4() != net.is_ipv4() {
        return false;
    }
    let shift = u32::from(width(ip) - len.min(width(ip)));
    let (a, b) = (bits(ip), bits(net));
    shift >= 128 || (a >> shift) == (b >> shift)
}

fn find(table: &[(IpAddr, u8, &'static str)], ip: IpAddr) -> Option<Range> {
    table
        .iter()
        .find(|(net, len, _)| in_block(ip, *net, *len))
        .map(|&(_, prefix, label)| Range { label, prefix })
}

/// The class of `ip` (IPv4-mapped addresses as the IPv4 address). This
/// host's own interface addresses come from a list refreshed at most once
/// a second (see [`interfaces`]).
pub(crate) fn classify(ip: IpAddr) -> Class {
    let ip = canonical(ip);
    if METADATA.contains(&ip) {
        return Class::Special(Range {
            label: "cloud metadata",
            prefix: width(ip),
        });
    }
    if let Some(range) = find(&SPECIAL_FIRST, ip) {
        return Class::Special(range);
    }
    if interfaces::is_own(ip) {
        return Class::Special(Range {
            label: OWN,
            prefix: width(ip),
        });
    }
    if let Some(range) = find(&SPECIAL, ip) {
        return Class::Special(range);
    }
    match find(&PRIVATE, ip) {
        Some(range) => Class::Private(range),
        None => Class::Public,
    }
}

/// The `net` resource text of `addr`: `a.b.c.d:port` or `[v6]:port`.
pub(crate) fn resource(addr: SocketAddr) -> String {
    match canonical(addr.ip()) {
        IpAddr::V4(v4) => format!("{v4}:{}", addr.port()),
        IpAddr::V6(v6) => format!("[{v6}]:{}", addr.port()),
    }
}

/// The rules an address is checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    /// The component's effective grant (manifest ∩ policy, minus denies).
    pub(crate) effective: &'a GrantSet,
    /// The host policy's own `net` allow rules for the component that name
    /// addresses (an IP or a CIDR block), as the operator wrote them.
    pub(crate) named: &'a [Capability],
}

impl Rules<'_> {
    /// Whether a rule of the policy itself covers `request` and names its
    /// address by IP or by a CIDR block of at least `prefix` bits.
    fn policy_names(&self, request: &Request<'_>, prefix: u8) -> bool {
        self.named.iter().any(|rule| {
            rule.action() == request.action()
                && rule.covers(request)
                && names_addresses(rule, prefix)
        })
    }
}

/// Whether `rule` names its addresses by IP or by a CIDR block of at
/// least `prefix` bits.
pub(crate) fn names_addresses(rule: &Capability, prefix: u8) -> bool {
    match rule.resource() {
        Some(ResourcePattern::Net(p)) => match p.host {
            HostPattern::Ip(_) => true,
            HostPattern::Cidr(_, len) => len >= prefix,
            _ => false,
        },
        _ => false,
    }
}

/// The policy's `net` allow rules that name addresses, out of `allows`
/// (for [`Rules::named`]).
pub(crate) fn naming_rules<'a>(
    allows: impl IntoIterator<Item = &'a Capability>,
) -> Vec<Capability> {
    allows
        .into_iter()
        .filter(|c| {
            c.domain() == Domain::Net
                && matches!(
                    c.resource(),
                    Some(ResourcePattern::Net(p))
                        if matches!(p.host, HostPattern::Ip(_) | HostPattern::Cidr(..))
                )
        })
        .cloned()
        .collect()
}

/// Checks one concrete address as the request `net:<action>:<ip>:<port>`
/// (see the [module documentation](self)). Returns the denial text, which
/// names the capability and how to grant it.
pub(crate) fn check(
    rules: Rules<'_>,
    action: Action,
    addr: SocketAddr,
    via: Via<'_>,
) -> Result<(), String> {
    let res = resource(addr);
    let capability = format!("net:{action}:{res}");
    let request = Request::new(Domain::Net, action, &res)
        .map_err(|e| format!("`{capability}` is not a valid request: {e}"))?;
    let decision = rules.effective.check(&request);
    let not_granted = || {
        format!(
            "capability `{capability}` is not granted ({})",
            rules.effective.describe_request(&decision, &request)
        )
    };
    if matches!(decision.rule, Rule::Deny(_)) {
        return Err(not_granted());
    }
    let by_address = decision.is_allowed();
    let by_name = matches!(via, Via::Name(_));
    match classify(addr.ip()) {
        Class::Public if by_address || by_name => Ok(()),
        Class::Public => Err(not_granted()),
        Class::Private(_) if by_address => Ok(()),
        Class::Private(range) => match via {
            Via::Name(_) if rules.policy_names(&request, range.prefix) => Ok(()),
            Via::Name(name) => Err(format!(
                "capability `{capability}` is not granted: `{name}` resolved to {res}, a private \
                 address ({}); a name grant reaches only public addresses (so DNS cannot lead it \
                 into the internal network): add a rule naming the address, e.g. `{capability}`, \
                 to the host policy's grants to allow it",
                range.label
            )),
            Via::Literal => Err(not_granted()),
        },
        Class::Special(range) if (by_address || by_name) => {
            if rules.policy_names(&request, range.prefix) {
                Ok(())
            } else {
                Err(special_refusal(&capability, &res, range))
            }
        }
        Class::Special(range) => Err(special_refusal(&capability, &res, range)),
    }
}

fn special_refusal(capability: &str, res: &str, range: Range) -> String {
    format!(
        "capability `{capability}` is not granted: {res} is a special address ({}), reachable \
         only through a rule of the host policy itself that names it by address (e.g. \
         `{capability}`), not through a host name, a wildcard, a wider address block or the \
         component's manifest",
        range.label
    )
}

/// Resolves `address` (`host:port`, already validated by the capability
/// guard) with the system resolver, on the calling thread.
pub(crate) fn resolve(address: &str) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| format!("`{address}` did not resolve: {e}"))?
        .map(|sa| SocketAddr::new(canonical(sa.ip()), sa.port()))
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

    fn caps(list: &[&str]) -> Vec<Capability> {
        list.iter().map(|g| g.parse().unwrap()).collect()
    }

    fn set(grants: &[&str]) -> GrantSet {
        GrantSet::new(caps(grants), [])
    }

    /// Checks under an effective grant and the policy rules it came from.
    fn run(
        effective: &[&str],
        policy: &[&str],
        action: Action,
        addr: &str,
        via: Via<'_>,
    ) -> Result<(), String> {
        let effective = set(effective);
        let named = naming_rules(&caps(policy));
        check(
            Rules {
                effective: &effective,
                named: &named,
            },
            action,
            addr.parse().unwrap(),
            via,
        )
    }

    /// The policy's rules are also the effective grant (a manifest asking
    /// for everything).
    fn policy(grants: &[&str], action: Action, addr: &str) -> Result<(), String> {
        run(grants, grants, action, addr, Via::Literal)
    }

    fn label(ip: &str) -> Option<&'static str> {
        match classify(ip.parse().unwrap()) {
            Class::Special(r) | Class::Private(r) => Some(r.label),
            Class::Public => None,
        }
    }

    #[test]
    fn special_ranges() {
        for (ip, expected) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.170.2", "cloud metadata"),
            ("169.254.170.23", "cloud metadata"),
            ("100.100.100.200", "cloud metadata"),
            ("168.63.129.16", "cloud metadata"),
            ("fd00:ec2::254", "cloud metadata"),
            ("fd00:ec2::23", "cloud metadata"),
            ("fe80::a9fe:a9fe", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("fe80::1", "link-local"),
            ("0.0.0.0", "unspecified (\"this network\")"),
            ("::", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "broadcast"),
            (
                "100.64.0.1",
                "shared address space (carrier-grade NAT, RFC 6598)",
            ),
            (
                "100.127.255.254",
                "shared address space (carrier-grade NAT, RFC 6598)",
            ),
            ("192.0.0.192", "IETF protocol assignment (RFC 6890)"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("64:ff9b::7f00:1", "NAT64"),
            ("10.0.0.1", "private (RFC 1918)"),
            ("172.31.255.255", "private (RFC 1918)"),
            ("192.168.1.1", "private (RFC 1918)"),
            ("fd00::1", "unique local (RFC 4193)"),
        ] {
            assert_eq!(label(ip), Some(expected), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "2001:db8::1",
            "172.32.0.1",
            "100.128.0.1",
            "8.8.8.8",
        ] {
            assert_eq!(label(ip), None, "{ip}");
        }
    }

    #[test]
    fn loopback_needs_an_address_rule_of_the_policy() {
        let any = &["net:connect:*:*"];
        let err = policy(any, Action::Connect, "127.0.0.1:80").unwrap_err();
        assert!(err.contains("`net:connect:127.0.0.1:80`"), "{err}");
        assert!(err.contains("loopback"), "{err}");
        assert!(policy(any, Action::Connect, "93.184.216.34:80").is_ok());
        let wide = &["net:connect:0.0.0.0/0:*"];
        assert!(policy(wide, Action::Connect, "127.0.0.1:80").is_err());
        let exact = &["net:connect:127.0.0.1:80"];
        assert!(policy(exact, Action::Connect, "127.0.0.1:80").is_ok());
        assert!(policy(exact, Action::Connect, "127.0.0.1:81").is_err());
        // Mapped IPv6 is the IPv4 address it carries.
        assert!(policy(exact, Action::Connect, "[::ffff:127.0.0.1]:80").is_ok());
        let block = &["net:connect:127.0.0.0/8:*"];
        assert!(policy(block, Action::Connect, "127.9.9.9:5").is_ok());
        let name = &["net:connect:localhost:80"];
        assert!(policy(name, Action::Connect, "127.0.0.1:80").is_err());
    }

    /// The bypass of issue #11: the manifest's narrower pattern under a
    /// policy wildcard does not name loopback; only the policy's own rule
    /// does.
    #[test]
    fn a_manifest_pattern_does_not_name_a_special_address() {
        for addr in [
            "127.0.0.1:8080",
            "169.254.169.254:80",
            "0.0.0.0:80",
            "[::]:80",
            "[fe80::1]:80",
        ] {
            let ip = addr.rsplit_once(':').unwrap().0;
            let manifest = format!("net:http:{ip}:*");
            let err = run(
                &[&manifest],
                &["net:http:*:*"],
                Action::Http,
                addr,
                Via::Literal,
            )
            .unwrap_err();
            assert!(
                err.contains("rule of the host policy itself"),
                "{addr}: {err}"
            );
            assert!(
                run(&[&manifest], &[&manifest], Action::Http, addr, Via::Literal).is_ok(),
                "{addr}"
            );
        }
    }

    #[test]
    fn metadata_needs_its_own_address() {
        let link = &["net:http:169.254.0.0/16:*"];
        assert!(policy(link, Action::Http, "169.254.1.1:80").is_ok());
        assert!(policy(link, Action::Http, "169.254.169.254:80").is_err());
        assert!(policy(link, Action::Http, "169.254.170.2:80").is_err());
        let v6 = &["net:http:[fd00::/8]:*"];
        assert!(policy(v6, Action::Http, "[fd00:ec2::254]:80").is_err());
        let azure = &["net:http:168.63.0.0/16:*"];
        assert!(policy(azure, Action::Http, "168.63.129.16:80").is_err());
        assert!(
            policy(
                &["net:http:168.63.129.16:80"],
                Action::Http,
                "168.63.129.16:80"
            )
            .is_ok()
        );
    }

    #[test]
    fn new_special_ranges_need_a_narrow_enough_block() {
        let any = &["net:connect:*:*"];
        for addr in [
            "224.0.0.251:5353",
            "[ff02::fb]:5353",
            "100.64.1.1:80",
            "192.0.0.8:80",
        ] {
            assert!(policy(any, Action::Connect, addr).is_err(), "{addr}");
        }
        assert!(
            policy(
                &["net:connect:224.0.0.0/4:*"],
                Action::Connect,
                "224.0.0.251:5353"
            )
            .is_ok()
        );
        assert!(
            policy(
                &["net:connect:224.0.0.0/3:*"],
                Action::Connect,
                "224.0.0.251:5353"
            )
            .is_err()
        );
        assert!(
            policy(
                &["net:connect:100.64.0.0/10:*"],
                Action::Connect,
                "100.64.1.1:80"
            )
            .is_ok()
        );
    }

    #[test]
    fn a_name_grant_reaches_public_addresses_only() {
        let name = &["net:http:api.example.com:443"];
        let via = Via::Name("api.example.com");
        assert!(run(name, name, Action::Http, "93.184.216.34:443", via).is_ok());
        assert!(run(name, name, Action::Http, "[2606:2800:220:1::1]:443", via).is_ok());
        // The literal is not granted by a name grant.
        assert!(run(name, name, Action::Http, "93.184.216.34:443", Via::Literal).is_err());
        for private in [
            "10.1.2.3:443",
            "192.168.0.10:443",
            "172.16.0.1:443",
            "[fd12::1]:443",
        ] {
            let err = run(name, name, Action::Http, private, via).unwrap_err();
            assert!(
                err.contains("a name grant reaches only public addresses"),
                "{err}"
            );
            assert!(err.contains("`api.example.com` resolved to"), "{err}");
        }
        for special in [
            "127.0.0.1:443",
            "169.254.169.254:443",
            "[::1]:443",
            "100.64.0.1:443",
        ] {
            let err = run(name, name, Action::Http, special, via).unwrap_err();
            assert!(err.contains("rule of the host policy itself"), "{err}");
        }
        // A policy rule naming the private address lets the name reach it.
        let with_block = &["net:http:api.example.com:443", "net:http:10.0.0.0/8:443"];
        assert!(run(name, with_block, Action::Http, "10.1.2.3:443", via).is_ok());
        // ... but not a block wider than the private range.
        let too_wide = &["net:http:api.example.com:443", "net:http:0.0.0.0/0:443"];
        assert!(run(name, too_wide, Action::Http, "10.1.2.3:443", via).is_err());
        // An IP grant in the effective set reaches a private literal.
        let ip = &["net:http:10.0.0.0/8:443"];
        assert!(policy(ip, Action::Http, "10.1.2.3:443").is_ok());
    }

    #[test]
    fn deny_rules_win_for_names_too() {
        let effective = GrantSet::new(
            caps(&["net:http:api.example.com:443"]),
            caps(&["net:http:93.184.216.0/24:*"]),
        );
        let err = check(
            Rules {
                effective: &effective,
                named: &[],
            },
            Action::Http,
            "93.184.216.34:443".parse().unwrap(),
            Via::Name("api.example.com"),
        )
        .unwrap_err();
        assert!(
            err.contains("denied by deny rule `net:http:93.184.216.0/24:*`"),
            "{err}"
        );
    }
}
