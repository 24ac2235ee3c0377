//! Source addresses: address and CIDR lists (`STOCKLEDGER_PORTONE_ALLOWED_IPS`,
//! `STOCKLEDGER_TRUSTED_PROXIES`) and which address a request really comes from.
//!
//! The client address is the TCP peer, unless the peer is a trusted proxy: then it is the
//! right-most `X-Forwarded-For` entry that is not itself a trusted proxy. Entries to the
//! left of that one were written by the client (or by proxies we do not know) and are
//! never believed, so a forger cannot pick its own address by sending the header.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// One address range: an address and a prefix length (`10.0.0.0/8`, `2001:db8::/32`, or a
/// single address as `/32` or `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// A list entry that is neither an address nor a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR")]
pub struct InvalidNet(pub String);

impl IpNet {
    /// Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address, or an IPv6 CIDR.
    pub fn parse(s: &str) -> Result<IpNet, InvalidNet> {
        let bad = || InvalidNet(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(bad)?,
        };
        Ok(IpNet { addr, prefix })
    }

    /// True when `ip` is inside this range. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(u128::from(net), u128::from(ip), self.prefix)
            }
            _ => false,
        }
    }
}

/// True when the first `prefix` bits of `a` and `b` are equal.
fn same_prefix(a: u128, b: u128, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = 128u32.saturating_sub(u32::from(prefix));
    (a >> shift) == (b >> shift)
}

/// Parses a configured list; the first bad entry is the error.
pub fn parse_list(entries: &[String]) -> Result<Vec<IpNet>, InvalidNet> {
    entries.iter().map(|e| IpNet::parse(e)).collect()
}

/// True when any range of `list` contains `ip`.
pub fn any_contains(list: &[IpNet], ip: IpAddr) -> bool {
    list.iter().any(|n| n.contains(ip))
}

/// The address the request comes from, as far as it can be believed; `None` when it cannot
/// be known (no peer address, or an unparseable `X-Forwarded-For` entry where one had to be
/// read).
pub fn client_addr(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted_proxies: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if !any_contains(trusted_proxies, peer) {
        return Some(peer);
    }
    // Every X-Forwarded-For header, in order, is one comma-separated list.
    let mut entries: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let text = value.to_str().ok()?;
        entries.extend(text.split(',').map(str::trim).filter(|e| !e.is_empty()));
    }
    let mut last_trusted = peer;
    for entry in entries.iter().rev() {
        let ip = parse_forwarded(entry)?;
        if !any_contains(trusted_proxies, ip) {
            return Some(ip);
        }
        last_trusted = ip;
    }
    // Every hop is a trusted proxy (or there is no header): the request came from inside.
    Some(last_trusted)
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sock) = entry.parse::<std::net::SocketAddr>() {
        return Some(sock.ip().to_canonical());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        parse_list(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).expect("test nets")
    }

    #[test]
    fn cidrs_and_addresses() {
        let list = nets(&["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "0.0.0.0/0"]);
        assert!(list[0].contains(ip("10.255.0.1")));
        assert!(!list[0].contains(ip("11.0.0.1")));
        assert!(list[1].contains(ip("192.168.1.7")));
        assert!(!list[1].contains(ip("192.168.1.8")));
        assert!(list[1].contains(ip("::ffff:192.168.1.7")));
        assert!(list[2].contains(ip("2001:db8:1::5")));
        assert!(!list[2].contains(ip("2001:db9::5")));
        assert!(list[3].contains(ip("8.8.8.8")));
        assert!(!list[3].contains(ip("::1")));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("example.com").is_err());
    }

    #[test]
    fn forwarded_for_is_read_only_behind_a_trusted_proxy() {
        let proxies = nets(&["10.0.0.0/8"]);
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 1.2.3.4"),
        );
        headers.append("x-forwarded-for", HeaderValue::from_static("10.0.0.9"));
        // Untrusted peer: the header is ignored.
        assert_eq!(
            client_addr(Some(ip("5.5.5.5")), &headers, &proxies),
            Some(ip("5.5.5.5"))
        );
        // Trusted peer: right-most entry that is not a trusted proxy.
        assert_eq!(
            client_addr(Some(ip("10.0.0.1")), &headers, &proxies),
            Some(ip("1.2.3.4"))
        );
        // No header behind a trusted proxy: the proxy itself.
        assert_eq!(
            client_addr(Some(ip("10.0.0.1")), &HeaderMap::new(), &proxies),
            Some(ip("10.0.0.1"))
        );
        // A garbage entry where one must be read: unknown.
        let mut bad = HeaderMap::new();
        bad.append("x-forwarded-for", HeaderValue::from_static("nonsense"));
        assert_eq!(client_addr(Some(ip("10.0.0.1")), &bad, &proxies), None);
        assert_eq!(client_addr(None, &headers, &proxies), None);
    }
}
