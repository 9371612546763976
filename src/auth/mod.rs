//! The gate in front of every authenticated route, in upstream's order
//! (spec §1.2): login token → username → rate limiter → second factor →
//! permission. Reads everything it needs in one `get-many` and writes what
//! changed (limiter window, second-factor guard, used backup code) in one
//! `set-many`, on success and on refusal alike.
//!
//! No HTTP here: the API layer turns [`AuthError`] into Rocket.Chat bodies.

pub mod bootstrap;
pub mod enrolment;
pub mod error;
pub mod permission;
pub mod rate_limit;
pub mod second_factor;
pub mod token;
pub mod totp;

pub use error::{AuthError, SecondFactorRefusal};

use crate::settings::Settings;
use crate::store::schema::{Date, Permission, RateWindow, TwoFactorGuard, UserDoc};
use crate::store::{KvStore, StoreError, decode, encode, get_json, keys};

use second_factor::Presented;

/// The credentials and second-factor headers of one request.
#[derive(Clone, Default)]
pub struct Credentials<'a> {
    /// `X-User-Id`.
    pub user_id: Option<&'a str>,
    /// `X-Auth-Token` (plaintext).
    pub token: Option<&'a str>,
    /// `x-2fa-code` / `x-2fa-method`.
    pub second_factor: Presented<'a>,
    /// The client's IP, for the rate limiter.
    pub client_ip: String,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user_id", &self.user_id)
            .field("token", &self.token.map(|_| "<redacted>"))
            .field("second_factor", &self.second_factor)
            .field("client_ip", &self.client_ip)
            .finish()
    }
}

/// What a route demands of its caller.
#[derive(Debug, Clone, Copy)]
pub struct RoutePolicy {
    /// Upstream's limiter key suffix: path + lower-case method (`/api/v1/ldap.syncNowpost`).
    pub rate_key: &'static str,
    /// The permission checked after the second factor.
    pub permission: &'static str,
}

/// A caller whose token matched; nothing else checked yet.
#[derive(Debug)]
pub struct Authenticated {
    pub user: UserDoc,
    guard: TwoFactorGuard,
    rate_window: Option<RateWindow>,
    route_permission: Option<Permission>,
    bypass_permission: Option<Permission>,
}

/// Step 1: the login token. One `get-many` loads everything later steps need.
pub fn authenticate(store: &dyn KvStore, creds: &Credentials<'_>, policy: &RoutePolicy) -> Result<Authenticated, AuthError> {
    let (Some(user_id), Some(token)) = (creds.user_id, creds.token) else {
        return Err(AuthError::NotLoggedIn);
    };
    let user_key = keys::user(user_id);
    let guard_key = keys::two_factor(user_id);
    let rate_key = keys::rate_limit(&creds.client_ip, policy.rate_key);
    let route_key = keys::permission(policy.permission);
    let bypass_key = keys::permission(permission::API_BYPASS_RATE_LIMIT);
    let wanted = [user_key, guard_key, rate_key, route_key, bypass_key];
    let mut values = store.get_many(&wanted)?.into_iter();
    let mut next = |i: usize| values.next().flatten().map(|v| (wanted[i].as_str(), v));
    let user: Option<UserDoc> = take(next(0))?;
    let guard: Option<TwoFactorGuard> = take(next(1))?;
    let rate_window: Option<RateWindow> = take(next(2))?;
    let route_permission: Option<Permission> = take(next(3))?;
    let bypass_permission: Option<Permission> = take(next(4))?;
    let user = user.filter(|u| token::holds_token(u, token)).ok_or(AuthError::NotLoggedIn)?;
    Ok(Authenticated { user, guard: guard.unwrap_or_default(), rate_window, route_permission, bypass_permission })
}

/// Authentication alone, for routes without a second factor: the caller's
/// user document when `X-User-Id`/`X-Auth-Token` match.
pub fn authenticate_user(store: &dyn KvStore, creds: &Credentials<'_>) -> Result<UserDoc, AuthError> {
    let (Some(user_id), Some(token)) = (creds.user_id, creds.token) else {
        return Err(AuthError::NotLoggedIn);
    };
    let key = keys::user(user_id);
    let user: Option<UserDoc> = get_json(store, &key)?;
    user.filter(|u| token::holds_token(u, token)).ok_or(AuthError::NotLoggedIn)
}

/// Whether `user` holds `permission` (the stored record, else upstream's default roles).
pub fn has_permission(store: &dyn KvStore, user: &UserDoc, permission: &str) -> Result<bool, StoreError> {
    let key = keys::permission(permission);
    let stored: Option<Permission> = get_json(store, &key)?;
    Ok(permission::grants(permission, stored.as_ref(), &user.roles))
}

/// Steps 2–6: username, rate limiter, second factor, permission. Limiter
/// headers go into `response_headers` whenever the limiter was evaluated.
pub fn admit(
    store: &dyn KvStore,
    caller: Authenticated,
    creds: &Credentials<'_>,
    policy: &RoutePolicy,
    settings: &Settings,
    now: Date,
    response_headers: &mut Vec<(&'static str, String)>,
) -> Result<UserDoc, AuthError> {
    if caller.user.username.as_deref().is_none_or(str::is_empty) {
        return Err(AuthError::NoUsername);
    }
    let mut writes = Vec::new();
    let verdict = admit_inner(&caller, creds, policy, settings, now, response_headers, &mut writes);
    store.set_many(writes)?;
    verdict?;
    Ok(caller.user)
}

fn admit_inner(
    caller: &Authenticated,
    creds: &Credentials<'_>,
    policy: &RoutePolicy,
    settings: &Settings,
    now: Date,
    response_headers: &mut Vec<(&'static str, String)>,
    writes: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), AuthError> {
    let user = &caller.user;
    let bypass = permission::grants(permission::API_BYPASS_RATE_LIMIT, caller.bypass_permission.as_ref(), &user.roles);
    if settings.rate_limit.enabled && !bypass {
        let key = keys::rate_limit(&creds.client_ip, policy.rate_key);
        rate_limit::enforce(caller.rate_window, key, &settings.rate_limit, now, response_headers, writes)?;
    }

    let outcome = second_factor::check(user, &caller.guard, creds.second_factor, &settings.two_factor, now);
    if let Some(guard) = outcome.guard.as_ref().filter(|g| **g != caller.guard) {
        writes.push(encode(keys::two_factor(&user.id), guard)?);
    }
    if let Some(updated) = &outcome.user {
        writes.push(encode(keys::user(&user.id), updated)?);
    }
    if let Err(refusal) = outcome.verdict {
        return Err(AuthError::SecondFactor { kind: refusal.kind, method: refusal.method, available: refusal.available });
    }

    if !permission::grants(policy.permission, caller.route_permission.as_ref(), &user.roles) {
        return Err(AuthError::NotAuthorized);
    }
    Ok(())
}

fn take<T: serde::de::DeserializeOwned>(found: Option<(&str, Vec<u8>)>) -> Result<Option<T>, StoreError> {
    match found {
        Some((key, bytes)) => decode(key, Some(bytes)),
        None => Ok(None),
    }
}
