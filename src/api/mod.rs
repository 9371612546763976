//! The HTTP edge: the route table, request parsing and replies. Platform
//! neutral: `lib.rs` converts Spin's request into [`Request`] and
//! [`Response`] back, so routing is unit-tested natively.

pub mod avatar;
pub mod error;
pub mod ldap_test;
pub mod login;
pub mod method_call;
pub mod reply;
pub mod sync_now;
pub mod sync_preview;
pub mod sync_status;
pub mod users;
pub mod views;

pub use error::ApiError;

use crate::auth::second_factor::Presented;
use crate::auth::{self, Caller, Credentials, RoutePolicy};
use crate::settings::{self, AdminBootstrap, VariableSource};
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
    /// The raw query string, without `?`.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body went past [`MAX_BODY`] (or broke off) and was not read to its end.
    pub body_oversized: bool,
}

/// Largest body read and parsed. Login and method calls carry a few
/// hundred bytes; anything near this is an attack or a mistake. The entry
/// point stops reading past it; `ldap.syncNow` ignores its body, as upstream.
pub const MAX_BODY: usize = 64 * 1024;

impl Request {
    /// Builds a request from raw parts.
    pub fn new(method: &str, path_and_query: &str, headers: impl IntoIterator<Item = (String, Vec<u8>)>) -> Self {
        let without_fragment = path_and_query.split('#').next().unwrap_or_default();
        let (path, query) = without_fragment.split_once('?').unwrap_or((without_fragment, ""));
        let headers =
            headers.into_iter().map(|(name, value)| (name.to_ascii_lowercase(), String::from_utf8_lossy(&value).into_owned())).collect();
        Self {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            body: Vec::new(),
            body_oversized: false,
        }
    }

    /// The same request with a body (one longer than [`MAX_BODY`] counts as oversized).
    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        if body.len() > MAX_BODY {
            return self.with_oversized_body();
        }
        self.body = body;
        self
    }

    /// The same request with a body that was not read because it is too large.
    pub fn with_oversized_body(mut self) -> Self {
        self.body = Vec::new();
        self.body_oversized = true;
        self
    }

    /// The body as a JSON object. Upstream turns malformed JSON into `{}`
    /// and fails later with a confusing error; we answer a clear 400.
    pub fn json_object(&self) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
        if self.body_oversized {
            return Err(ApiError::BadRequest(format!("request body is larger than {MAX_BODY} bytes")));
        }
        match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            Ok(_) => Err(ApiError::BadRequest("request body must be a JSON object".to_owned())),
            Err(e) => Err(ApiError::BadRequest(format!("request body is not valid JSON: {e}"))),
        }
    }

    /// The decoded value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(k, _)| percent_decode(k) == name)
            .map(|(_, v)| percent_decode(v))
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

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%xx` a byte.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match text.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: serde_json::Value,
    /// A body that is not JSON (an avatar), sent as it is with the
    /// `Content-Type` in `headers`; `body` is then unused.
    pub raw: Option<Vec<u8>>,
}

impl Response {
    /// Adds the limiter's headers when it was evaluated (upstream sets them
    /// on every answer of a limited route, refusals included).
    pub fn with_rate_limit(mut self, decision: Option<crate::auth::RateDecision>) -> Self {
        self.headers.extend(decision.iter().flat_map(crate::auth::RateDecision::headers));
        self
    }

    /// The body as bytes (`application/json`).
    pub fn body_bytes(&self) -> Vec<u8> {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
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
        forwarded_for: req.header("x-forwarded-for"),
    }
}

/// The caller of a token route (step 1 of the gate), with the login
/// expiry read on its own: nothing else is loaded before the token is checked.
pub fn identify(env: &Env<'_>, creds: &Credentials<'_>, policy: &RoutePolicy) -> Result<Caller, ApiError> {
    let expiry_ms = settings::login_expiration_ms(env.variables)?;
    Ok(auth::identify(env.store, creds, policy, expiry_ms, (env.clock)())?)
}

/// A token route behind the whole gate (token, rate limiter, second factor,
/// permission), read with only the gate's own settings: `answer` runs only
/// for an admitted caller, and its response gets the limiter's headers. The
/// sync routes use it, in upstream's order for `ldap.syncNow`.
pub fn behind_gate(req: &Request, env: &Env<'_>, policy: &RoutePolicy, answer: impl FnOnce() -> Response) -> Response {
    let admitted = (|| -> Result<auth::Admitted, ApiError> {
        let creds = credentials(req);
        let caller = identify(env, &creds, policy)?;
        let gate = settings::GateSettings::load(env.variables)?;
        Ok(auth::admit(env.store, auth::Identity::Token(Box::new(caller)), &creds, policy, &gate, (env.clock)())?)
    })();
    match admitted {
        Ok(admitted) => answer().with_rate_limit(admitted.rate_limit),
        Err(e) => e.into_response(),
    }
}

/// Creates the bootstrap admin if configured and missing (every request
/// checks with one key read; creation happens once).
fn bootstrap_admin(env: &Env<'_>) -> Result<(), ApiError> {
    if let Some(admin) = AdminBootstrap::load(env.variables)? {
        auth::bootstrap::ensure_admin(env.store, &admin, (env.clock)())?;
    }
    Ok(())
}

/// One route: path (a trailing `/` matches any suffix), method, handler.
struct Route {
    path: &'static str,
    method: &'static str,
    handler: fn(&Request, &Env<'_>) -> Response,
}

impl Route {
    /// A path ending in `/` takes any non-empty suffix, never the bare prefix
    /// (`/avatar/` and `/api/v1/method.call/` alone are unknown paths).
    fn matches(&self, path: &str) -> bool {
        match self.path.strip_suffix('/') {
            Some(_) => path.len() > self.path.len() && path.starts_with(self.path),
            None => self.path == path,
        }
    }
}

/// The route table. Upstream matches REST paths case-sensitively.
const ROUTES: &[Route] = &[
    Route { path: "/api/v1/ldap.syncNow", method: "POST", handler: sync_now::handle },
    Route { path: "/api/v1/ldap.syncStatus", method: "GET", handler: sync_status::handle },
    Route { path: "/api/v1/ldap.syncPreview", method: "POST", handler: sync_preview::handle },
    Route { path: "/api/v1/login", method: "POST", handler: login::login },
    Route { path: "/api/v1/logout", method: "POST", handler: login::logout },
    Route { path: "/api/v1/me", method: "GET", handler: login::me },
    Route { path: "/api/v1/method.call/", method: "POST", handler: method_call::handle },
    Route { path: "/api/v1/ldap.testConnection", method: "POST", handler: ldap_test::connection },
    Route { path: "/api/v1/ldap.testSearch", method: "POST", handler: ldap_test::search },
    Route { path: "/api/v1/users.info", method: "GET", handler: users::info },
    Route { path: "/api/v1/users.list", method: "GET", handler: users::list },
    Route { path: "/avatar/", method: "GET", handler: avatar::serve },
];

/// Dispatches a request; unknown paths and methods get JSON errors, not
/// the SDK router's plain-text defaults.
pub fn route(req: &Request, env: &Env<'_>) -> Response {
    let mut on_path = ROUTES.iter().filter(|r| r.matches(&req.path)).peekable();
    if on_path.peek().is_none() {
        return ApiError::NotFound.into_response();
    }
    match on_path.clone().find(|r| r.method == req.method) {
        Some(r) => match bootstrap_admin(env) {
            Ok(()) => (r.handler)(req, env),
            Err(e) => e.into_response(),
        },
        None => ApiError::MethodNotAllowed { allow: on_path.map(|r| r.method).collect::<Vec<_>>().join(", ") }.into_response(),
    }
}

#[cfg(test)]
mod tests;
