//! The HTTP edge: the route table, request parsing and replies. Platform
//! neutral: `lib.rs` converts Spin's request into [`Request`] and
//! [`Response`] back, so routing is unit-tested natively.

pub mod error;
pub mod reply;
pub mod sync_now;

pub use error::ApiError;

use crate::auth::Credentials;
use crate::auth::second_factor::Presented;
use crate::settings::VariableSource;
use crate::store::KvStore;
use crate::store::schema::Date;

/// Everything a handler may touch: the store, the variables, the clock and
/// randomness. Handlers read the clock once for their checks; the sync
/// reads it again to time itself.
pub struct Env<'a> {
    pub store: &'a dyn KvStore,
    pub variables: &'a dyn VariableSource,
    pub clock: &'a dyn Fn() -> Date,
    /// Fills a buffer with cryptographically secure random bytes.
    pub random: &'a dyn Fn(&mut [u8]),
}

/// An HTTP request as the handlers see it. Header names are lower case;
/// values that are not UTF-8 are decoded lossily, so a mangled credential is
/// simply a wrong one.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// Builds a request from raw parts.
    pub fn new(method: &str, path_and_query: &str, headers: impl IntoIterator<Item = (String, Vec<u8>)>) -> Self {
        let path = path_and_query.split(['?', '#']).next().unwrap_or_default().to_owned();
        let headers = headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), String::from_utf8_lossy(&value).into_owned()))
            .collect();
        Self { method: method.to_ascii_uppercase(), path, headers }
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The last value of header `name`. Spin appends its `spin-*` headers
    /// after the client's own, so for those the last value is Spin's and an
    /// earlier one is a client trying to spoof it.
    pub fn last_header(&self, name: &str) -> Option<&str> {
        self.headers.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A JSON response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: serde_json::Value,
}

impl Response {
    /// The body as bytes (`application/json`).
    pub fn body_bytes(&self) -> Vec<u8> {
        // Serializing a Value cannot fail (all keys are strings); fall back to an empty object anyway.
        serde_json::to_vec(&self.body).unwrap_or_else(|_| b"{}".to_vec())
    }
}

/// The credential headers of a request. The client IP comes from Spin's
/// `spin-client-addr` (upstream uses the connection's address by default).
pub fn credentials(req: &Request) -> Credentials<'_> {
    let client_addr = req.last_header("spin-client-addr").unwrap_or_default();
    let client_ip = match client_addr.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().to_string(),
        Err(_) => client_addr.to_owned(),
    };
    Credentials {
        user_id: req.header("x-user-id"),
        token: req.header("x-auth-token"),
        second_factor: Presented { code: req.header("x-2fa-code"), method: req.header("x-2fa-method") },
        client_ip,
    }
}

/// One route: path, method, handler.
struct Route {
    path: &'static str,
    method: &'static str,
    handler: fn(&Request, &Env<'_>) -> Response,
}

/// The route table. Upstream matches REST paths case-sensitively.
const ROUTES: &[Route] = &[Route { path: "/api/v1/ldap.syncNow", method: "POST", handler: sync_now::handle }];

/// Dispatches a request; unknown paths and methods get JSON errors, not
/// the SDK router's plain-text defaults.
pub fn route(req: &Request, env: &Env<'_>) -> Response {
    let mut on_path = ROUTES.iter().filter(|r| r.path == req.path).peekable();
    if on_path.peek().is_none() {
        return ApiError::NotFound.into_response();
    }
    match on_path.clone().find(|r| r.method == req.method) {
        Some(r) => (r.handler)(req, env),
        None => ApiError::MethodNotAllowed { allow: on_path.map(|r| r.method).collect::<Vec<_>>().join(", ") }.into_response(),
    }
}

#[cfg(test)]
mod tests;
