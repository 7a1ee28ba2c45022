//! This host's own interface addresses (a service bound to `0.0.0.0` is
//! reachable through every one of them), read with `if-addrs`
//! (`getifaddrs` on Unix) and cached for the whole process.
//!
//! The list is read again when a check finds it older than [`REFRESH`],
//! by that check (on the network service's thread for resolved addresses,
//! on the component's call for literals): a lookup is a system call that
//! walks every interface, so it stays off the per-call path except once a
//! second. An address added to an interface is therefore special at most
//! [`REFRESH`] after it appears. When the system cannot list its
//! interfaces the last list read stays in use.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How old the cached list may be when a check uses it.
pub(crate) const REFRESH: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Cached {
    read_at: Instant,
    addrs: Arc<[IpAddr]>,
}

static CACHE: RwLock<Option<Cached>> = RwLock::new(None);

/// Whether `ip` is an address of one of this host's network interfaces.
pub(crate) fn is_own(ip: IpAddr) -> bool {
    current().contains(&ip)
}

/// The host's interface addresses, at most [`REFRESH`] old.
pub(crate) fn current() -> Arc<[IpAddr]> {
    let now = Instant::now();
    if let Some(cached) = crate::sync::read(&CACHE).as_ref()
        && now.duration_since(cached.read_at) < REFRESH
    {
        return Arc::clone(&cached.addrs);
    }
    let mut cache = crate::sync::write(&CACHE);
    // Another thread may have refreshed while this one waited.
    if let Some(cached) = cache.as_ref()
        && now.duration_since(cached.read_at) < REFRESH
    {
        return Arc::clone(&cached.addrs);
    }
    let addrs: Arc<[IpAddr]> = match if_addrs::get_if_addrs() {
        Ok(list) => list
            .iter()
            .map(|i| super::addr::canonical(i.ip()))
            .collect(),
        Err(error) => {
            tracing::warn!(
                target: "airssys::network",
                %error,
                "cannot list this host's interface addresses; keeping the last list read"
            );
            cache
                .as_ref()
                .map_or_else(|| Arc::from(Vec::new()), |c| Arc::clone(&c.addrs))
        }
    };
    *cache = Some(Cached {
        read_at: Instant::now(),
        addrs: Arc::clone(&addrs),
    });
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_loopback_address() {
        // Every machine that runs these tests has a loopback interface.
        let addrs = current();
        assert!(
            addrs.iter().any(IpAddr::is_loopback),
            "no loopback in {addrs:?}"
        );
        assert!(is_own(IpAddr::from([127, 0, 0, 1])));
        assert!(!is_own(IpAddr::from([203, 0, 113, 254])), "{addrs:?}");
    }
}
