//! The local addresses a multicast request is sent from.
//!
//! Like the classic agent, one request goes out per local address of the
//! chosen family, each naming that address as the call-back target, so that
//! whichever network reaches a daemon also carries the call back. IPv4
//! keeps every address (127.0.0.1 included: a daemon on the same machine
//! needs it); IPv6 skips loopback and link-local addresses, which a daemon
//! could not call back without a scope. Interfaces that are down are skipped.

use std::io;
use std::net::IpAddr;

use nix::ifaddrs::getifaddrs;
use nix::net::if_::{if_nametoindex, InterfaceFlags};

/// One address to send from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddr {
    /// The address.
    pub ip: IpAddr,
    /// Its interface's name.
    pub ifname: String,
    /// Its interface's index (the IPv6 multicast interface).
    pub ifindex: u32,
}

/// The usable addresses of the IPv6 (`v6`) or IPv4 family, loopback last.
pub fn local_addresses(v6: bool) -> io::Result<Vec<LocalAddr>> {
    let mut out: Vec<LocalAddr> = Vec::new();
    for ifa in getifaddrs().map_err(io::Error::from)? {
        if !ifa.flags.contains(InterfaceFlags::IFF_UP) {
            continue;
        }
        let Some(addr) = ifa.address else { continue };
        let ip = if let Some(a) = addr.as_sockaddr_in() {
            IpAddr::V4(a.ip())
        } else if let Some(a) = addr.as_sockaddr_in6() {
            IpAddr::V6(a.ip())
        } else {
            continue;
        };
        if ip.is_ipv6() != v6 || !usable(ip) || out.iter().any(|l| l.ip == ip) {
            continue;
        }
        let ifindex = if_nametoindex(ifa.interface_name.as_str()).unwrap_or(0);
        out.push(LocalAddr {
            ip,
            ifname: ifa.interface_name.clone(),
            ifindex,
        });
    }
    out.sort_by_key(|l| l.ip.is_loopback());
    Ok(out)
}

/// Whether a request may name `ip` as its call-back address.
pub fn usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast(),
        IpAddr::V6(a) => {
            !a.is_loopback()
                && !a.is_unspecified()
                && !a.is_multicast()
                && (a.segments()[0] & 0xffc0) != 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0u8; 4]))
    }

    #[test]
    fn which_addresses_are_used() {
        assert!(usable(ip("127.0.0.1")));
        assert!(usable(ip("10.229.0.11")));
        assert!(!usable(ip("0.0.0.0")));
        assert!(usable(ip("fdfe:229::11")));
        assert!(usable(ip("2001:db8::1")));
        assert!(!usable(ip("::1")));
        for ll in ["fe80::1", "fe90::1", "fea0::1", "febf::1"] {
            assert!(!usable(ip(ll)), "{ll}");
        }
        assert!(usable(ip("fec0::1")));
    }

    #[test]
    fn listing_works_here() {
        // Whatever this machine has, the call succeeds and honours the rules.
        for v6 in [false, true] {
            let l = local_addresses(v6);
            assert!(l.is_ok());
            for a in l.unwrap_or_default() {
                assert_eq!(a.ip.is_ipv6(), v6);
                assert!(usable(a.ip));
            }
        }
    }
}
