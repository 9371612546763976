//! Outbound network permissions: Spin's `allowed_outbound_hosts` rules.
//!
//! Spin 4 checks every socket a guest uses against the component's
//! `allowed_outbound_hosts` (`crates/factor-outbound-networking/src/lib.rs`,
//! `crates/outbound-networking-config/src/allowed_hosts.rs` in the Spin
//! repository). This module reimplements the parts that matter here:
//!
//! * an entry is `<scheme>://<host>[:<port>]`, each part possibly `*`;
//! * a host is `*`, an IP literal, a CIDR block (`10.0.0.0/8`), `*.domain`,
//!   `self`, or a domain name. A socket check only ever sees an IP address,
//!   so a domain name never matches a socket (Spin resolves no names for the
//!   guest: `allow_ip_name_lookup` stays off);
//! * a port is a number, a range `a..b` (end excluded, as Rust's `Range`),
//!   or `*`; it may be left out only for schemes with a well-known port
//!   (`http`, `https`, `postgres`, `mysql`, `redis`, `mqtt`), so `tcp://`
//!   entries always name one;
//! * `TcpConnect` is checked with scheme `tcp`; UDP is not enabled at all
//!   by this host, and listening/accepting is refused.
//!
//! Outbound `wasi:http` requests are checked too ([`OutboundHttp`]), with the
//! request's scheme (`http`/`https`); a denied request fails with
//! `HttpRequestDenied`, as in Spin.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::{Context as _, bail, ensure};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

/// One parsed `allowed_outbound_hosts` entry (after template resolution).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHost {
    original: String,
    scheme: SchemeRule,
    host: HostRule,
    port: PortRule,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum SchemeRule {
    Any,
    Exact(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostRule {
    Any,
    /// `*.example.com`, stored as `.example.com`.
    AnySubdomain(String),
    /// `self` / `self.alt`: service chaining and self-requests, which this
    /// host does not implement; never matches.
    ToSelf,
    /// A domain name: matches an outbound HTTP request to that name, never a
    /// socket address.
    Name(String),
    /// An IP literal (a /32 or /128 block) or a CIDR block.
    Cidr(IpAddr, u8),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PortRule {
    Any,
    Port(u16),
    /// `start..end`, end excluded.
    Range(u16, u16),
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    /// Parses one resolved entry such as `tcp://127.0.0.1:389`.
    pub fn parse(entry: &str) -> anyhow::Result<Self> {
        let url = entry.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            bail!(
                "allowed outbound host {url:?} has no scheme: expected <scheme>://<host>[:<port>] \
                 (use '*://*:*' to allow everything)"
            );
        };
        let (host, port) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match port.split_once('/') {
            Some((port, path)) => {
                ensure!(path.is_empty(), "allowed outbound host {url:?} has a path");
                port
            }
            None => port,
        };
        Ok(Self {
            original: entry.to_owned(),
            scheme: SchemeRule::parse(scheme)?,
            host: HostRule::parse(host)?,
            port: PortRule::parse(port, scheme)?,
        })
    }

    fn allows(&self, scheme: &str, host: &Target<'_>, port: Option<u16>) -> bool {
        self.scheme.allows(scheme) && self.host.allows(host) && self.port.allows(port, scheme)
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl SchemeRule {
    fn parse(scheme: &str) -> anyhow::Result<Self> {
        if scheme == "*" {
            return Ok(Self::Any);
        }
        ensure!(!scheme.starts_with('{'), "scheme lists are not supported");
        ensure!(!scheme.is_empty() && scheme.chars().all(char::is_alphabetic), "scheme {scheme:?} contains a non-alphabetic character");
        Ok(Self::Exact(scheme.to_owned()))
    }

    fn allows(&self, scheme: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(s) => s == scheme,
        }
    }
}

/// What a rule is matched against: an IP (sockets) or a URL host (HTTP).
enum Target<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

fn parse_cidr(host: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match host.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (host, None),
    };
    let addr = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')).unwrap_or(addr);
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
        None => max,
    };
    Some((ip, prefix))
}

fn cidr_contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

impl HostRule {
    fn parse(host: &str) -> anyhow::Result<Self> {
        let host = host.trim();
        if host == "*" {
            return Ok(Self::Any);
        }
        if host == "self" || host == "self.alt" {
            return Ok(Self::ToSelf);
        }
        ensure!(!host.starts_with('{'), "host lists are not supported");
        if let Some((ip, prefix)) = parse_cidr(host) {
            return Ok(Self::Cidr(ip, prefix));
        }
        if matches!(host.split('/').nth(1), Some(path) if !path.is_empty()) {
            bail!("allowed outbound host {host:?} must not contain a path");
        }
        if let Some(domain) = host.strip_prefix("*.") {
            ensure!(!domain.contains('*'), "invalid allowed host {host}: wildcards are allowed only as prefixes");
            return Ok(Self::AnySubdomain(format!(".{domain}")));
        }
        ensure!(!host.contains('*'), "invalid allowed host {host}: wildcards are allowed only as subdomains");
        ensure!(!host.is_empty(), "allowed outbound host has an empty host part");
        Ok(Self::Name(host.trim_end_matches('/').to_owned()))
    }

    fn allows(&self, target: &Target<'_>) -> bool {
        match (self, target) {
            (Self::Any, _) => true,
            (Self::ToSelf, _) => false,
            (Self::Cidr(net, prefix), Target::Ip(ip)) => cidr_contains(*net, *prefix, *ip),
            (Self::Cidr(net, prefix), Target::Name(name)) => parse_cidr(name).is_some_and(|(ip, _)| cidr_contains(*net, *prefix, ip)),
            // A socket check sees only an IP: names never match it.
            (Self::Name(_) | Self::AnySubdomain(_), Target::Ip(_)) => false,
            (Self::Name(n), Target::Name(name)) => n == name,
            (Self::AnySubdomain(suffix), Target::Name(name)) => name.ends_with(suffix.as_str()),
        }
    }
}

impl PortRule {
    fn parse(port: &str, scheme: &str) -> anyhow::Result<Self> {
        if port.is_empty() {
            return well_known_port(scheme).map(Self::Port).with_context(|| {
                format!(
                    "no port was provided and the scheme {scheme:?} does not have a known \
                     default port number"
                )
            });
        }
        if port == "*" {
            return Ok(Self::Any);
        }
        ensure!(!port.starts_with('{'), "port lists are not supported");
        if let Some((start, end)) = port.split_once("..") {
            let start = start.parse().with_context(|| format!("port range {port:?} contains a non-number"))?;
            let end = end.parse().with_context(|| format!("port range {port:?} contains a non-number"))?;
            return Ok(Self::Range(start, end));
        }
        Ok(Self::Port(port.parse().with_context(|| format!("port {port:?} is not a number"))?))
    }

    fn allows(&self, port: Option<u16>, scheme: &str) -> bool {
        let port = match (self, port.or_else(|| well_known_port(scheme))) {
            (Self::Any, _) => return true,
            (_, None) => return false,
            (_, Some(p)) => p,
        };
        match self {
            Self::Any => true,
            Self::Port(p) => *p == port,
            Self::Range(start, end) => (*start..*end).contains(&port),
        }
    }
}

/// A component's resolved `allowed_outbound_hosts`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<AllowedHost>);

impl AllowedHosts {
    /// Parses resolved entries (templates already substituted).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> anyhow::Result<Self> {
        if let [only] = entries
            && only.as_ref() == "insecure:allow-all"
        {
            bail!("'insecure:allow-all' is not allowed: use '*://*:*' to allow all outbound traffic");
        }
        entries.iter().map(|e| AllowedHost::parse(e.as_ref())).collect::<anyhow::Result<_>>().map(Self)
    }

    /// The entries, as written after template resolution.
    pub fn entries(&self) -> impl Iterator<Item = &AllowedHost> {
        self.0.iter()
    }

    /// Whether a socket connection of `scheme` (`tcp`/`udp`) to `addr` is allowed.
    pub fn allows_socket(&self, scheme: &str, addr: SocketAddr) -> bool {
        let target = Target::Ip(addr.ip());
        self.0.iter().any(|h| h.allows(scheme, &target, Some(addr.port())))
    }

    /// Whether an outbound HTTP request to `scheme://host[:port]` is allowed.
    pub fn allows_url(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let target = Target::Name(host);
        self.0.iter().any(|h| h.allows(scheme, &target, port))
    }
}

/// The `socket_addr_check` rule: Spin 4's, plus one deliberate difference.
///
/// * `TcpConnect`: allowed when an entry of scheme `tcp` (or `*`) matches the
///   IP and port.
/// * `TcpBind`: **deliberate difference from Spin.** Spin 4.0.2 refuses every
///   `TcpBind`, but it runs on wasmtime 44, which does not run the check for
///   the implicit bind that `connect` performs. wasmtime 48 does (passing the
///   unspecified address with port 0), so refusing it would make every connect
///   fail with "permission denied". This host therefore allows exactly that
///   implicit-bind shape (unspecified IP, port 0) and refuses any other bind,
///   which keeps Spin's "no explicit binds" rule for every bind that names an
///   address or a port.
/// * Everything else (listen, accept, UDP) is refused.
pub fn socket_addr_allowed(allowed: &AllowedHosts, addr: SocketAddr, use_: SocketAddrUse) -> bool {
    match use_ {
        SocketAddrUse::TcpConnect => allowed.allows_socket("tcp", addr),
        SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
        _ => false,
    }
}

/// `wasi:http` hooks that apply `allowed_outbound_hosts` to outgoing requests.
pub struct OutboundHttp {
    allowed: Arc<AllowedHosts>,
}

impl OutboundHttp {
    /// Hooks for one instance with the component's allowed hosts.
    pub fn new(allowed: Arc<AllowedHosts>) -> Self {
        Self { allowed }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_owned();
        let allowed = uri.host().is_some_and(|host| self.allowed.allows_url(&scheme, host, uri.port_u16()));
        if !allowed {
            let target = uri.to_string();
            return Box::new(async move {
                eprintln!(
                    "ldap-sync-host: outbound HTTP request to {target} denied: not in \
                     allowed_outbound_hosts"
                );
                Err(wasmtime_wasi_http::Error::HttpRequestDenied)
            });
        }
        _ = fut;
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("test socket address")
    }

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(entries).expect("entries parse")
    }

    #[test]
    fn exact_ip_and_port() {
        let h = hosts(&["tcp://127.0.0.1:389"]);
        assert!(h.allows_socket("tcp", sa("127.0.0.1:389")));
        assert!(!h.allows_socket("tcp", sa("127.0.0.1:390")));
        assert!(!h.allows_socket("tcp", sa("127.0.0.2:389")));
        assert!(!h.allows_socket("udp", sa("127.0.0.1:389")));
    }

    #[test]
    fn cidr_range_and_wildcards() {
        let h = hosts(&["tcp://10.0.0.0/8:1..1024"]);
        assert!(h.allows_socket("tcp", sa("10.1.2.3:389")));
        assert!(h.allows_socket("tcp", sa("10.255.255.255:1")));
        assert!(!h.allows_socket("tcp", sa("10.1.2.3:1024")), "range end is excluded");
        assert!(!h.allows_socket("tcp", sa("11.0.0.1:389")));

        let h = hosts(&["tcp://*:636"]);
        assert!(h.allows_socket("tcp", sa("192.0.2.7:636")));
        assert!(h.allows_socket("tcp", sa("[::1]:636")));
        assert!(!h.allows_socket("tcp", sa("192.0.2.7:389")));

        let h = hosts(&["*://127.0.0.1:*"]);
        assert!(h.allows_socket("tcp", sa("127.0.0.1:1")));
        assert!(h.allows_socket("udp", sa("127.0.0.1:65535")));
        assert!(!h.allows_socket("tcp", sa("127.0.0.2:1")));

        let h = hosts(&["*://*:*"]);
        assert!(h.allows_socket("tcp", sa("203.0.113.9:4242")));
    }

    #[test]
    fn ipv6_literal_and_block() {
        let h = hosts(&["tcp://[::1]:389", "tcp://[fd00::]/8:636"]);
        assert!(h.allows_socket("tcp", sa("[::1]:389")));
        assert!(h.allows_socket("tcp", sa("[fd12::5]:636")));
        assert!(!h.allows_socket("tcp", sa("[fe80::1]:636")));
        assert!(!h.allows_socket("tcp", sa("127.0.0.1:389")));
    }

    #[test]
    fn domain_names_never_match_sockets() {
        let h = hosts(&["tcp://localhost:389", "tcp://*.example.com:389"]);
        assert!(!h.allows_socket("tcp", sa("127.0.0.1:389")));
        assert!(h.allows_url("tcp", "ldap.example.com", Some(389)));
    }

    #[test]
    fn other_schemes_do_not_grant_tcp() {
        let h = hosts(&["https://127.0.0.1", "http://127.0.0.1:389"]);
        assert!(!h.allows_socket("tcp", sa("127.0.0.1:389")));
        assert!(!h.allows_socket("tcp", sa("127.0.0.1:443")));
        assert!(h.allows_url("https", "127.0.0.1", None));
        assert!(h.allows_url("https", "127.0.0.1", Some(443)));
        assert!(!h.allows_url("https", "127.0.0.1", Some(8443)));
    }

    #[test]
    fn empty_list_allows_nothing() {
        let h = AllowedHosts::default();
        assert!(!h.allows_socket("tcp", sa("127.0.0.1:389")));
        assert!(!h.allows_url("https", "example.com", None));
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "127.0.0.1:389",
            "tcp://127.0.0.1",
            "tcp://127.0.0.1:abc",
            "tcp://127.0.0.1:1..x",
            "tcp://a*b.example.com:389",
            "tcp://host/path:389",
            "t3p://127.0.0.1:389",
            "*",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(AllowedHosts::parse(&["insecure:allow-all"]).is_err());
    }

    #[test]
    fn socket_check_rules() {
        let h = hosts(&["tcp://127.0.0.1:389"]);
        assert!(socket_addr_allowed(&h, sa("127.0.0.1:389"), SocketAddrUse::TcpConnect));
        assert!(!socket_addr_allowed(&h, sa("127.0.0.1:22"), SocketAddrUse::TcpConnect));
        // The implicit bind of a connect (wasmtime 48), both families.
        assert!(socket_addr_allowed(&h, sa("0.0.0.0:0"), SocketAddrUse::TcpBind));
        assert!(socket_addr_allowed(&h, sa("[::]:0"), SocketAddrUse::TcpBind));
        // Any explicit bind: refused, as in Spin.
        assert!(!socket_addr_allowed(&h, sa("0.0.0.0:8080"), SocketAddrUse::TcpBind));
        assert!(!socket_addr_allowed(&h, sa("127.0.0.1:0"), SocketAddrUse::TcpBind));
        assert!(!socket_addr_allowed(&h, sa("127.0.0.1:389"), SocketAddrUse::TcpBind));
        // Listening, accepting and UDP: refused.
        assert!(!socket_addr_allowed(&h, sa("0.0.0.0:0"), SocketAddrUse::TcpListen));
        assert!(!socket_addr_allowed(&h, sa("127.0.0.1:389"), SocketAddrUse::TcpAccept));
        assert!(!socket_addr_allowed(&h, sa("0.0.0.0:0"), SocketAddrUse::UdpBind));
        assert!(!socket_addr_allowed(&h, sa("127.0.0.1:389"), SocketAddrUse::UdpSend));
    }
}
