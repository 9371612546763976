//! Spin's request preparation (its `server.rs`, `headers.rs` and `wasi.rs`):
//! what happens to a request before any guest code runs. The `Host` header
//! is filled in or stripped, the path is routed against the manifest (or
//! answered by the host: 404s, `/.well-known/spin/*`), the URI is made
//! absolute after checking that `Host` and the URI authority agree, and
//! Spin's `spin-*` headers are appended. No wasmtime here: the result is plain
//! [`http`] parts for [`crate::Host`] to hand to a fresh instance.

use std::net::SocketAddr;

use anyhow::{Context as _, bail, ensure};
use http::header::{HOST, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme as UriScheme};

use crate::host::Response;
use crate::manifest::{Manifest, RouteMatch};

/// The client address given to the guest (`spin-client-addr`) when the
/// request names none (see [`ClientAddr`] and [`crate::Host::send_from`]).
pub const DEFAULT_CLIENT_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 49152);

/// A request extension carrying the client address for `spin-client-addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// What the host does with a request before any guest code runs.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// Answered by the host itself (404, well-known paths).
    Respond(Response),
    /// To be handled by the component, with Spin's headers added.
    Invoke(http::request::Parts),
}

/// Routes a request and adds Spin's headers, as `spin up` would.
pub(crate) fn prepare_request(manifest: &Manifest, mut parts: http::request::Parts, client: SocketAddr) -> anyhow::Result<Prepared> {
    // A real HTTP/1.1 client always sends `Host`; requests built in tests
    // often do not, so supply what a client would have sent.
    if !parts.headers.contains_key(HOST) {
        let host = parts.uri.authority().map_or_else(|| "localhost".to_owned(), |a| a.as_str().to_owned());
        parts.headers.insert(HOST, HeaderValue::from_str(&host)?);
    }
    // Spin's strip_forbidden_headers.
    if parts.headers.get(HOST).and_then(|h| h.to_str().ok()).is_some_and(is_service_chaining_host) {
        parts.headers.remove(HOST);
    }

    let path = parts.uri.path().to_owned();
    if let Some(well_known) = path.strip_prefix("/.well-known/spin/") {
        let mut res = Response::empty(200);
        match well_known {
            "health" => res.body = b"OK".to_vec(),
            "info" => {
                res.headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                res.body = serde_json::to_vec_pretty(&serde_json::json!({
                    "name": manifest.app_name,
                    "version": manifest.app_version,
                    "bindle_version": null,
                    "oci_image_digest": null,
                }))?;
            }
            _ => res = Response::empty(404),
        }
        return Ok(Prepared::Respond(res));
    }
    let Some(route) = manifest.route(&path) else {
        return Ok(Prepared::Respond(Response::empty(404)));
    };

    // Spin fails these before routing to the component: the connection gets
    // no response at all, so this is an error of `send`.
    set_req_uri(&mut parts)?;
    // Spin fails these inside the executor, which it turns into an empty 500.
    let extra = match spin_headers(&parts, &route, client) {
        Ok(extra) => extra,
        Err(e) => {
            let error = format!("{e:#}");
            eprintln!("ldap-sync-host: error processing request: {error}");
            return Ok(Prepared::Respond(Response { error: Some(error), ..Response::empty(500) }));
        }
    };
    // Spin rebuilds the header map from the client's headers followed by its
    // own (HeaderMap::extend appends): a client-sent `spin-*` header comes
    // first and is NOT removed.
    parts.headers.extend(extra);
    Ok(Prepared::Invoke(parts))
}

/// Whether a `Host` header names Spin's service-chaining domain
/// (`<component>.spin.internal`), which Spin strips from inbound requests.
fn is_service_chaining_host(host: &str) -> bool {
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    host.split_once('.').is_some_and(|(_, rest)| rest == "spin.internal")
}

/// Spin's `set_req_uri`: an absolute URI from the `Host` header (or the URI's
/// own authority; they must agree), scheme `http`.
fn set_req_uri(parts: &mut http::request::Parts) -> anyhow::Result<()> {
    let header_authority = parts
        .headers
        .get(HOST)
        .map(|h| -> anyhow::Result<Authority> {
            let s = h.to_str().context("'Host' header is not valid UTF-8")?;
            s.parse().context("'Host' header contains an invalid authority")
        })
        .transpose()?;
    let mut uri_parts = parts.uri.clone().into_parts();
    let authority = match (header_authority, uri_parts.authority.take()) {
        (None, None) => bail!("no 'Host' header present in request"),
        (Some(a), None) | (None, Some(a)) => a,
        (Some(a1), Some(a2)) => {
            ensure!(a1 == a2, "authority in 'Host' header does not match authority in URI");
            a1
        }
    };
    uri_parts.scheme = Some(UriScheme::HTTP);
    uri_parts.authority = Some(authority);
    if uri_parts.path_and_query.is_none() {
        uri_parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    parts.uri = http::Uri::from_parts(uri_parts).context("rebuilding the request URI")?;
    Ok(())
}

/// Spin's `compute_default_headers` for a route match.
fn spin_headers(parts: &http::request::Parts, route: &RouteMatch, client: SocketAddr) -> anyhow::Result<Vec<(HeaderName, HeaderValue)>> {
    // Spin requires every client header value to be UTF-8.
    for (name, value) in &parts.headers {
        value.to_str().with_context(|| format!("header {name} is not valid UTF-8"))?;
    }
    let host = match parts.headers.get(HOST) {
        Some(h) => h.to_str()?.to_owned(),
        None => "localhost".to_owned(),
    };
    let abs_path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let scheme = parts.uri.scheme_str().unwrap_or("http");
    let pairs = [
        ("spin-path-info", route.path_info.clone()),
        ("spin-full-url", format!("{scheme}://{host}{abs_path}")),
        ("spin-matched-route", route.based_route.clone()),
        ("spin-base-path", "/".to_owned()),
        ("spin-raw-component-route", route.raw_route.clone()),
        ("spin-component-route", route.component_route.clone()),
        ("spin-client-addr", client.to_string()),
    ];
    pairs
        .into_iter()
        .map(|(name, value)| {
            Ok((
                HeaderName::from_static(name),
                HeaderValue::from_str(&value).with_context(|| format!("{name} value {value:?} is not a header value"))?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests;
