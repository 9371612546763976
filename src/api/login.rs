//! `POST /api/v1/login`, `POST /api/v1/logout`, `GET /api/v1/me`.
//!
//! Login checks the directory first when LDAP is on (binding as the user,
//! then creating or updating them with the sync's mapping), else the local
//! bcrypt password. Every credential failure is upstream 7.x's single
//! `Unauthorized` body, so a caller cannot tell a wrong password from an
//! unknown user.

use serde_json::{Map, Value, json};

use crate::auth::second_factor::{Presented, Requirement};
use crate::auth::{self, AuthError, Identity, RoutePolicy, token, totp};
use crate::settings::{self, Settings};
use crate::store::Batch;
use crate::store::schema::UserDoc;
use crate::store::users::{Sessions, Users, is_directory_user};
use crate::sync::RunContext;
use crate::sync::login::{DirectoryLogin, verify_password};

use super::reply::success;
use super::{ApiError, Env, Request, Response, credentials, identify, views};

/// Longest password accepted (Meteor's `passwordMaxLength`).
const MAX_PASSWORD_CHARS: usize = 256;
/// Login's gate: limited per client address, a second factor only for
/// users who enabled one.
const POLICY: RoutePolicy =
    RoutePolicy { rate_route: Some("/api/v1/loginpost"), second_factor: Some(Requirement::IfEnabled), permission: None };

/// What the caller claims.
struct LoginRequest {
    /// A username or an e-mail address.
    user: String,
    secret: Secret,
    code: Option<String>,
}

/// The password as sent.
enum Secret {
    Plain(String),
    /// SHA-256 hex of the password (`{"digest","algorithm":"sha-256"}`).
    Digest(String),
}

/// `POST /api/v1/login`.
pub fn login(req: &Request, env: &Env<'_>) -> Response {
    run_login(req, env).unwrap_or_else(ApiError::into_response)
}

fn run_login(req: &Request, env: &Env<'_>) -> Result<Response, ApiError> {
    let claim = parse_login(req)?;
    let settings = Settings::load(env.variables)?;
    let now = (env.clock)();
    let expiry_ms = settings::login_expiration_ms(env.variables)?;
    let mut creds = credentials(req);
    creds.second_factor = Presented { code: claim.code.as_deref(), method: req.header("x-2fa-method") };
    let mut verify = || find_user(env, &settings, &claim);
    let identity = Identity::Password { account: &claim.user, verify: &mut verify };
    let admitted = auth::admit(env.store, identity, &creds, &POLICY, &settings.gate(), now).map_err(ApiError::Login)?;

    // The session has a key of its own: login never rewrites the user document.
    let user = admitted.user;
    let (plaintext, hashed) = token::new_login_token(env.random);
    Sessions::new(env.store).open(&user.id, &hashed, now, |s| now.millis >= s.when.millis.saturating_add(expiry_ms))?;
    let totp_enabled = Users::new(env.store).second_factor(&user)?.totp.is_some_and(|t| t.enabled);

    let mut data = Map::new();
    data.insert("userId".to_owned(), json!(user.id));
    data.insert("authToken".to_owned(), json!(plaintext));
    data.insert("me".to_owned(), Value::Object(views::me(&user, totp_enabled, &origin(req))));
    let mut body = Map::new();
    body.insert("status".to_owned(), json!("success"));
    body.insert("data".to_owned(), Value::Object(data));
    Ok(success(body).with_rate_limit(admitted.rate_limit))
}

/// Accepts upstream's forms: `{"user"|"username"|"email", "password"}`
/// with a plain or digest password, `user` as a string or
/// `{"username"}`/`{"email"}`, and the LDAP form `{"ldap":true, "username", "ldapPass"}`.
fn parse_login(req: &Request) -> Result<LoginRequest, ApiError> {
    let body = req.json_object()?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let code = text(body.get("code")).or_else(|| req.header("x-2fa-code").map(str::to_owned));
    if body.get("ldap") == Some(&Value::Bool(true)) {
        let user = text(body.get("username")).ok_or_else(|| missing("username"))?;
        let password = text(body.get("ldapPass")).ok_or_else(|| missing("ldapPass"))?;
        return checked(LoginRequest { user, secret: Secret::Plain(password), code });
    }
    let user = match body.get("user") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) => text(o.get("username")).or_else(|| text(o.get("email"))),
        _ => None,
    }
    .or_else(|| text(body.get("username")))
    .or_else(|| text(body.get("email")))
    .ok_or_else(|| missing("user"))?;
    let secret = match body.get("password") {
        Some(Value::String(p)) => Secret::Plain(p.clone()),
        Some(Value::Object(p)) if p.get("algorithm").and_then(Value::as_str) == Some("sha-256") => {
            Secret::Digest(text(p.get("digest")).ok_or_else(|| missing("password.digest"))?)
        }
        Some(_) => return Err(ApiError::InvalidParams("password must be a string or {\"digest\",\"algorithm\":\"sha-256\"}".to_owned())),
        None => return Err(missing("password")),
    };
    checked(LoginRequest { user, secret, code })
}

fn checked(claim: LoginRequest) -> Result<LoginRequest, ApiError> {
    let len = match &claim.secret {
        Secret::Plain(p) | Secret::Digest(p) => p.chars().count(),
    };
    if len > MAX_PASSWORD_CHARS {
        return Err(ApiError::BadRequest(format!("password is longer than {MAX_PASSWORD_CHARS} characters")));
    }
    if claim.user.chars().count() > MAX_PASSWORD_CHARS || claim.user.trim().is_empty() {
        return Err(ApiError::InvalidParams("user must be a non-empty string of at most 256 characters".to_owned()));
    }
    if claim.code.as_ref().is_some_and(|c| c.len() > 64) {
        return Err(ApiError::BadRequest("code is longer than 64 characters".to_owned()));
    }
    Ok(claim)
}

fn missing(field: &str) -> ApiError {
    ApiError::InvalidParams(format!("must have required property '{field}'"))
}

/// The directory first (when LDAP is on and the password is plain), then
/// the local password. Directory users cannot log in with a local password;
/// a local user whose name the directory also holds can (its own password).
fn find_user(env: &Env<'_>, settings: &Settings, claim: &LoginRequest) -> Result<UserDoc, AuthError> {
    if let (true, Secret::Plain(password)) = (settings.ldap_enabled, &claim.secret) {
        let mut ctx = RunContext::new(env.clock, env.random);
        match verify_password(env.store, settings, &claim.user, password, &mut ctx) {
            Ok(DirectoryLogin::Accepted(user)) => return Ok(*user),
            Ok(DirectoryLogin::Refused(reason)) => {
                crate::log::info(
                    "login refused by the directory",
                    &[("user", serde_json::json!(claim.user)), ("reason", serde_json::json!(reason.to_string()))],
                );
                // A local (non-directory) user of that name, the bootstrap
                // admin say, is another account: its own password still
                // works, or a directory entry could lock it out. Not
                // upstream's LDAP_Login_Fallback (README).
                let local = Users::new(env.store).by_login_name(&claim.user)?;
                if local.as_ref().is_none_or(is_directory_user) {
                    return Err(AuthError::WrongPassword);
                }
            }
            Ok(DirectoryLogin::NotFound) => {}
            // Upstream falls back to the local password when the directory fails.
            Err(e) => crate::log::warn(
                "directory unavailable for login, trying the local password",
                &[("error", serde_json::json!(e.to_string()))],
            ),
        }
    }
    let user = Users::new(env.store).by_login_name(&claim.user)?;
    let digest = match &claim.secret {
        Secret::Plain(p) => totp::sha256_hex(p),
        Secret::Digest(d) => d.clone(),
    };
    let hash = user.as_ref().and_then(|u| u.services.password.as_ref()).and_then(|p| p.bcrypt.clone());
    let matches = match hash.as_deref() {
        Some(hash) => totp::password_matches(&digest, hash),
        None => {
            // Spend what a comparison costs, so timing does not tell which usernames exist.
            let _ = bcrypt::hash(&digest, auth::bootstrap::BCRYPT_COST);
            false
        }
    };
    match user {
        Some(user) if matches && !(is_directory_user(&user) && settings.ldap_enabled) => Ok(user),
        _ => Err(AuthError::WrongPassword),
    }
}

/// `POST /api/v1/logout`: removes the presented token only.
pub fn logout(req: &Request, env: &Env<'_>) -> Response {
    let run = || -> Result<Value, ApiError> {
        let caller = identify(env, &credentials(req), &RoutePolicy::TOKEN_ONLY)?;
        Sessions::new(env.store).close(&caller.hashed_token)?;
        // A token Rocket.Chat itself issued lives in the document: only
        // then is the document rewritten.
        let mut user = caller.user;
        if let Some(resume) = user.services.resume.as_mut()
            && resume.login_tokens.iter().any(|t| t.hashed_token == caller.hashed_token)
        {
            resume.login_tokens.retain(|t| t.hashed_token != caller.hashed_token);
            let mut batch = Batch::new();
            batch.put_user(&user)?;
            batch.commit(env.store)?;
        }
        // Upstream up to 7.3; from 7.4 its router drops this body (issue #35922).
        Ok(json!({"status": "success", "data": {"message": "You've been logged out!"}}))
    };
    match run() {
        Ok(body) => Response { status: 200, headers: Vec::new(), body, raw: None },
        Err(e) => e.into_response(),
    }
}

/// `GET /api/v1/me`.
pub fn me(req: &Request, env: &Env<'_>) -> Response {
    let run = || -> Result<Response, ApiError> {
        let user = identify(env, &credentials(req), &RoutePolicy::TOKEN_ONLY)?.user;
        let totp_enabled = Users::new(env.store).second_factor(&user)?.totp.is_some_and(|t| t.enabled);
        Ok(success(views::me(&user, totp_enabled, &origin(req))))
    };
    run().unwrap_or_else(ApiError::into_response)
}

/// `scheme://host` of the request, from Spin's `spin-full-url`.
fn origin(req: &Request) -> String {
    let url = req.last_header("spin-full-url").unwrap_or("http://localhost/");
    match url.find("://").map(|i| i + 3) {
        Some(start) => {
            let end = url[start..].find('/').map_or(url.len(), |i| start + i);
            url[..end].to_owned()
        }
        None => "http://localhost".to_owned(),
    }
}
