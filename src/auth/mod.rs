//! The gate in front of every authenticated route, in upstream's order
//! (spec §1.2): login token → username → rate limiter → second factor →
//! permission. [`admit`] is the one place that runs the limiter and the
//! second-factor guard, for `ldap.syncNow`, `login` and `method.call`
//! alike; a [`RoutePolicy`] says which steps a route has.
//!
//! A token route reads everything it needs in one `get-many`
//! ([`identify`]) and writes what changed (limiter window, second-factor
//! guard, used backup code) in one `set-many`, on success and on refusal
//! alike. Login is identified by its password instead, after the limiter
//! has counted the attempt.
//!
//! No HTTP here: the API layer turns [`AuthError`] into Rocket.Chat bodies
//! and [`RateDecision`] into headers.

pub mod bootstrap;
pub mod enrolment;
pub mod error;
pub mod permission;
pub mod rate_limit;
pub mod second_factor;
pub mod token;
pub mod totp;

pub use error::{AuthError, Refused, SecondFactorRefusal};
pub use rate_limit::RateDecision;

use crate::settings::Settings;
use crate::store::access::{self, RateSlot};
use crate::store::schema::{Date, Permission, RateWindow, TwoFactorGuard, UserDoc};
use crate::store::users::Users;
use crate::store::{Batch, KvStore, StoreError, UserId};

use second_factor::{Presented, Requirement};

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
    /// Upstream's limiter key suffix: path + lower-case method
    /// (`/api/v1/ldap.syncNowpost`); `None` = the route is not limited.
    pub rate_route: Option<&'static str>,
    /// Whether and when a second factor is demanded; `None` = never.
    pub second_factor: Option<Requirement>,
    /// The permission checked after the second factor; `None` = any user.
    pub permission: Option<&'static str>,
}

impl RoutePolicy {
    /// A valid login token, nothing more (`me`, `logout`, `users.*`, ...).
    pub const TOKEN_ONLY: RoutePolicy = RoutePolicy { rate_route: None, second_factor: None, permission: None };
}

/// A caller whose token matched, with what later steps need (read in the
/// same `get-many` as the user).
#[derive(Debug)]
pub struct Caller {
    pub user: UserDoc,
    two_factor: TwoFactorGuard,
    window: Option<RateWindow>,
    route_permission: Option<Permission>,
    bypass_permission: Option<Permission>,
}

/// How [`admit`] learns who is calling.
pub enum Identity<'a> {
    /// A token route: the caller [`identify`] found.
    Token(Box<Caller>),
    /// Login: proves the password (and may create a directory user). Runs
    /// after the limiter has counted the attempt, so guessing is limited
    /// before any password work is done.
    Password(&'a mut dyn FnMut() -> Result<UserDoc, AuthError>),
}

/// A caller the gate let through.
#[derive(Debug)]
pub struct Admitted {
    pub user: UserDoc,
    /// The limiter's verdict, when it was evaluated (its headers go on the reply).
    pub rate_limit: Option<RateDecision>,
}

/// Step 1 of a token route: `X-User-Id`/`X-Auth-Token` → the caller. One
/// `get-many` also loads what the policy's later steps need.
pub fn identify(store: &dyn KvStore, creds: &Credentials<'_>, policy: &RoutePolicy) -> Result<Caller, AuthError> {
    let (Some(user_id), Some(token)) = (creds.user_id, creds.token) else {
        return Err(AuthError::NotLoggedIn);
    };
    let slot = policy.rate_route.map(|route| RateSlot { client_ip: creds.client_ip.clone(), route });
    // Only what the policy's steps use: a token-only route reads one key.
    let bypass = slot.as_ref().map(|_| permission::API_BYPASS_RATE_LIMIT);
    let wanted: Vec<&str> = bypass.into_iter().chain(policy.permission).collect();
    let records = access::read_gate(store, &UserId::new(user_id), policy.second_factor.is_some(), slot.as_ref(), &wanted)?;
    let user = records.user.filter(|u| token::holds_token(u, token)).ok_or(AuthError::NotLoggedIn)?;
    let mut permissions = records.permissions.into_iter();
    let bypass_permission = if bypass.is_some() { permissions.next().flatten() } else { None };
    Ok(Caller {
        user,
        two_factor: records.two_factor,
        window: records.window,
        bypass_permission,
        route_permission: permissions.next().flatten(),
    })
}

/// The gate: identity, username, limiter, second factor, permission, in
/// the policy's steps and upstream's order. What changed (limiter window,
/// second-factor guard, a used backup code) is written in one `set-many`
/// whatever the verdict.
pub fn admit(
    store: &dyn KvStore,
    identity: Identity<'_>,
    creds: &Credentials<'_>,
    policy: &RoutePolicy,
    settings: &Settings,
    now: Date,
) -> Result<Admitted, Refused> {
    let slot = policy.rate_route.map(|route| RateSlot { client_ip: creds.client_ip.clone(), route });
    let mut batch = Batch::new();
    let mut rate_limit = None;
    let verdict = gate(store, identity, creds, policy, settings, now, slot.as_ref(), &mut batch, &mut rate_limit);
    let stored = batch.commit(store);
    match (verdict, stored) {
        (Ok(mut admitted), Ok(())) => {
            admitted.rate_limit = rate_limit;
            Ok(admitted)
        }
        (Err(error), _) => Err(Refused { error, rate_limit }),
        (Ok(_), Err(e)) => Err(Refused { error: e.into(), rate_limit }),
    }
}

/// Whether `user` holds `permission` (the stored record, else upstream's default roles).
pub fn has_permission(store: &dyn KvStore, user: &UserDoc, permission: &str) -> Result<bool, StoreError> {
    Ok(permission::grants(permission, access::permission(store, permission)?.as_ref(), &user.roles))
}

#[allow(clippy::too_many_arguments)] // the gate's state, threaded once through its steps
fn gate(
    store: &dyn KvStore,
    identity: Identity<'_>,
    creds: &Credentials<'_>,
    policy: &RoutePolicy,
    settings: &Settings,
    now: Date,
    slot: Option<&RateSlot>,
    batch: &mut Batch,
    rate_limit: &mut Option<RateDecision>,
) -> Result<Admitted, AuthError> {
    let mut count_call = |window: Option<RateWindow>, batch: &mut Batch| -> Result<(), AuthError> {
        let Some(slot) = slot.filter(|_| settings.rate_limit.enabled) else {
            return Ok(());
        };
        let decision = rate_limit::count_call(window, &settings.rate_limit, now);
        batch.put_rate_window(slot, &decision.window)?;
        *rate_limit = Some(decision);
        match decision.refused_for {
            Some(wait_seconds) => Err(AuthError::RateLimited { wait_seconds }),
            None => Ok(()),
        }
    };
    let (user, guard, route_permission) = match identity {
        Identity::Token(caller) => {
            let caller = *caller;
            if caller.user.username.as_deref().is_none_or(str::is_empty) {
                return Err(AuthError::NoUsername);
            }
            let bypass = permission::grants(permission::API_BYPASS_RATE_LIMIT, caller.bypass_permission.as_ref(), &caller.user.roles);
            if !bypass {
                count_call(caller.window, batch)?;
            }
            (caller.user, caller.two_factor, caller.route_permission)
        }
        Identity::Password(verify) => {
            let window = match slot.filter(|_| settings.rate_limit.enabled) {
                Some(slot) => access::rate_window(store, slot)?,
                None => None,
            };
            count_call(window, batch)?;
            let user = verify()?;
            if user.active == Some(false) {
                return Err(AuthError::NotActivated);
            }
            let guard = match policy.second_factor {
                Some(_) => Users::new(store).two_factor(&user.id)?,
                None => TwoFactorGuard::default(),
            };
            (user, guard, None)
        }
    };

    let mut user = user;
    if let Some(requirement) = policy.second_factor {
        let checked = second_factor::check(&user, &guard, creds.second_factor, &settings.two_factor, now, requirement);
        if let Some(after) = checked.guard.filter(|g| *g != guard) {
            batch.put_two_factor(&user.id, &after)?;
        }
        if let Some(updated) = checked.user {
            batch.put_user(&updated)?;
            user = updated;
        }
        if let Err(refusal) = checked.verdict {
            return Err(AuthError::SecondFactor { kind: refusal.kind, method: refusal.method, available: refusal.available });
        }
    }

    if let Some(wanted) = policy.permission
        && !permission::grants(wanted, route_permission.as_ref(), &user.roles)
    {
        return Err(AuthError::NotAuthorized);
    }
    Ok(Admitted { user, rate_limit: None })
}
