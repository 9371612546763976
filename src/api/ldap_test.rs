//! `POST /api/v1/ldap.testConnection` and `POST /api/v1/ldap.testSearch`
//! (permission `test-admin-options`, no second factor, as upstream).
//!
//! Upstream 7.x hides why a connection failed (`Connection_failed`, the
//! reason only in its log); we answer newest upstream's
//! `LDAP_Connection_failed_reason` with the reason, which never holds a
//! secret (see `ldap::LdapError`).

use serde_json::{Map, Value, json};

use crate::auth::{self, RoutePolicy, permission};
use crate::ldap::Session;
use crate::settings::Settings;
use crate::sync::{self, Directory};

use super::reply::success;
use super::{ApiError, Env, Request, Response, credentials, identify};

/// `POST /api/v1/ldap.testConnection`: connect, TLS, bind, unbind.
pub fn connection(req: &Request, env: &Env<'_>) -> Response {
    let run = || -> Result<Map<String, Value>, ApiError> {
        let settings = admitted(req, env)?;
        match Session::open(&settings.connection) {
            Ok(session) => session.close(),
            Err(e) => return Err(ApiError::ConnectionFailed(e.to_string())),
        }
        Ok(message("LDAP_Connection_successful"))
    };
    run().map_or_else(ApiError::into_response, success)
}

/// `POST /api/v1/ldap.testSearch` `{"username"}`: exactly one entry must match.
pub fn search(req: &Request, env: &Env<'_>) -> Response {
    let run = || -> Result<Map<String, Value>, ApiError> {
        // Upstream validates the body before the permission check.
        let body = req.json_object()?;
        let username = match (body.get("username"), body.len()) {
            (Some(Value::String(u)), 1) => u.clone(),
            (Some(Value::String(_)), _) => return Err(ApiError::InvalidParams("must NOT have additional properties".to_owned())),
            (Some(_), _) => return Err(ApiError::InvalidParams("must be string".to_owned())),
            (None, _) => return Err(ApiError::InvalidParams("must have required property 'username'".to_owned())),
        };
        let settings = admitted(req, env)?;
        let mut session = Session::open(&settings.connection).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let found = sync::find_entry(&mut session as &mut dyn Directory, &settings, &username);
        session.close();
        match found {
            Ok(Some(_)) => Ok(message("LDAP_User_Found")),
            Ok(None) => Err(ApiError::Plain("User not found")),
            Err(e) => Err(ApiError::BadRequest(e.to_string())),
        }
    };
    run().map_or_else(ApiError::into_response, success)
}

/// Authentication, the permission, the settings and `LDAP_disabled`, in upstream's order.
fn admitted(req: &Request, env: &Env<'_>) -> Result<Settings, ApiError> {
    let user = identify(env, &credentials(req), &RoutePolicy::TOKEN_ONLY)?.user;
    if !auth::has_permission(env.store, &user, permission::TEST_ADMIN_OPTIONS)? {
        return Err(ApiError::Forbidden);
    }
    let settings = Settings::load(env.variables)?;
    if !settings.ldap_enabled {
        return Err(ApiError::LdapDisabled);
    }
    Ok(settings)
}

fn message(text: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("message".to_owned(), json!(text));
    body
}
