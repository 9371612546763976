//! The REST rate limiter (spec §1.2 row 3): a fixed window per client and
//! route, counted atomically in the store (`store::access::count_call`)
//! because every request is a fresh instance and requests run in parallel.
//!
//! The client is the connection's address; an IPv6 address counts as its
//! /64, since one host usually holds a whole /64 and could otherwise take a
//! new address per request. Behind a trusted reverse proxy the client is
//! the right-most address of `X-Forwarded-For` that is not a proxy.

use std::net::{IpAddr, Ipv6Addr};

use crate::settings::RateLimit;
use crate::store::access::RateCount;
use crate::store::schema::Date;

/// What the limiter decided for this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// `X-RateLimit-Limit`.
    pub limit: u32,
    /// `X-RateLimit-Remaining`.
    pub remaining: u32,
    /// `X-RateLimit-Reset`: when the window ends.
    pub reset_at: Date,
    /// Seconds to wait, when the call is refused.
    pub refused_for: Option<u64>,
}

impl RateDecision {
    /// The headers upstream sets whenever the limiter is evaluated.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("X-RateLimit-Limit", self.limit.to_string()),
            ("X-RateLimit-Remaining", self.remaining.to_string()),
            ("X-RateLimit-Reset", self.reset_at.millis.to_string()),
        ]
    }
}

/// The verdict on a call counted as `counted` at time `now`.
pub fn decide(counted: RateCount, settings: &RateLimit, now: Date) -> RateDecision {
    let count = u32::try_from(counted.count).unwrap_or(u32::MAX);
    let refused_for =
        (count > settings.calls).then(|| u64::try_from(counted.reset_at.millis - now.millis).unwrap_or(0).div_ceil(1000).max(1));
    RateDecision { limit: settings.calls, remaining: settings.calls.saturating_sub(count), reset_at: counted.reset_at, refused_for }
}

/// The limiter's name for the client of a request from `peer` (the
/// connection's address) carrying `forwarded_for`.
pub fn client_key(peer: &str, forwarded_for: Option<&str>, trusted_proxies: &[IpAddr]) -> String {
    let Ok(peer_ip) = peer.parse::<IpAddr>() else {
        return peer.to_owned();
    };
    let trusted = |ip: &IpAddr| trusted_proxies.contains(ip);
    let mut client = peer_ip;
    if trusted(&peer_ip) {
        // Proxies append the address they saw: walk back past our own proxies.
        let hops = forwarded_for.unwrap_or_default().split(',').rev().map(|hop| hop.trim().parse::<IpAddr>());
        for hop in hops {
            match hop {
                Ok(ip) if trusted(&ip) => continue,
                Ok(ip) => client = ip,
                // A hop that is not an address: stop at the last proxy we trust.
                Err(_) => {}
            }
            break;
        }
    }
    match client {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: RateLimit = RateLimit { enabled: true, calls: 2, window_ms: 60_000, trusted_proxies: Vec::new() };

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let reset_at = Date { millis: 1_020_000 };
        let at = |count, millis| decide(RateCount { count, reset_at }, &SETTINGS, Date { millis });
        assert_eq!((at(1, 1_000_000).remaining, at(1, 1_000_000).refused_for), (1, None));
        assert_eq!((at(2, 1_010_000).remaining, at(2, 1_010_000).refused_for), (0, None));
        assert_eq!(at(3, 1_010_500).refused_for, Some(10));
        assert_eq!(at(3, 1_010_500).headers()[2], ("X-RateLimit-Reset", "1020000".to_owned()));
    }

    #[test]
    fn clients_are_addresses_ipv6_by_its_64_and_proxies_only_when_trusted() {
        assert_eq!(client_key("10.0.0.7", Some("6.6.6.6"), &[]), "10.0.0.7");
        assert_eq!(client_key("2001:db8:1:2:aaaa::1", None, &[]), "2001:db8:1:2::/64");
        assert_eq!(client_key("2001:db8:1:2:bbbb::9", None, &[]), "2001:db8:1:2::/64");
        assert_eq!(client_key("::ffff:10.0.0.7", None, &[]), "10.0.0.7");
        let proxy: IpAddr = "10.0.0.1".parse().expect("literal");
        let other: IpAddr = "10.0.0.2".parse().expect("literal");
        assert_eq!(client_key("10.0.0.1", Some("6.6.6.6, 203.0.113.5"), &[proxy]), "203.0.113.5");
        assert_eq!(client_key("10.0.0.1", Some("203.0.113.5, 10.0.0.2"), &[proxy, other]), "203.0.113.5");
        assert_eq!(client_key("10.0.0.1", Some("garbage"), &[proxy]), "10.0.0.1");
        assert_eq!(client_key("10.0.0.1", None, &[proxy]), "10.0.0.1");
        assert_eq!(client_key("10.0.0.9", Some("203.0.113.5"), &[proxy]), "10.0.0.9");
    }
}
