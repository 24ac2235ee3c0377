//! Source addresses: address and CIDR lists (`STOCKLEDGER_PORTONE_ALLOWED_IPS`,
//! `STOCKLEDGER_TRUSTED_PROXIES`, ranges from the `ipnet` crate) and which address a
//! request really comes from.
//!
//! The client address is the TCP peer, unless the peer is a trusted proxy: then it is the
//! right-most `X-Forwarded-For` entry that is not itself a trusted proxy. Entries to the
//! left of that one were written by the client (or by proxies we do not know) and are
//! never believed, so a forger cannot pick its own address by sending the header.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// One address range: `10.0.0.0/8`, `2001:db8::/32`, or a single address (a `/32` or
/// `/128`). The range arithmetic is the `ipnet` crate's; this wrapper adds the list
/// format's rules (a bare address is a range, IPv4-mapped IPv6 counts as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet(ipnet::IpNet);

/// A list entry that is neither an address nor a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR")]
pub struct InvalidNet(pub String);

impl IpNet {
    /// Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address, or an IPv6 CIDR (spaces around the
    /// address and the prefix are ignored, as operators write lists by hand).
    pub fn parse(s: &str) -> Result<IpNet, InvalidNet> {
        let bad = || InvalidNet(s.to_owned());
        let net = match s.split_once('/') {
            Some((a, p)) => format!("{}/{}", a.trim(), p.trim())
                .parse::<ipnet::IpNet>()
                .map_err(|_| bad())?,
            None => ipnet::IpNet::from(s.trim().parse::<IpAddr>().map_err(|_| bad())?),
        };
        Ok(IpNet(canonical(net)))
    }

    /// True when `ip` is inside this range. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

/// An IPv4-mapped IPv6 range (`::ffff:10.0.0.0/104`) as the IPv4 range it maps, so that it
/// matches the IPv4 addresses peers are canonicalized to.
fn canonical(net: ipnet::IpNet) -> ipnet::IpNet {
    if let ipnet::IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && let Some(prefix) = v6.prefix_len().checked_sub(96)
        && let Ok(v4net) = ipnet::Ipv4Net::new(v4, prefix)
    {
        return ipnet::IpNet::V4(v4net);
    }
    net
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
        assert!(IpNet::parse(" 10.0.0.0 / 8 ").is_ok_and(|n| n.contains(ip("10.1.2.3"))));
        let mapped = IpNet::parse("::ffff:10.0.0.0/104").expect("mapped range");
        assert!(mapped.contains(ip("10.1.2.3")));
        assert!(!mapped.contains(ip("11.1.2.3")));
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
