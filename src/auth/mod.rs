//! The gate in front of every authenticated route, in upstream's order
//! (spec §1.2): login token → username → rate limiter → second factor →
//! permission. [`admit`] is the one place that runs the limiter and the
//! second-factor guard, for `ldap.syncNow`, `login` and `method.call`
//! alike; a [`RoutePolicy`] says which steps a route has.
//!
//! A token route reads everything it needs in one `get-many`
//! ([`identify`]). What must hold when requests run in parallel is counted
//! atomically (`increment`): the limiter's windows, the codes tried, the
//! TOTP steps and backup codes used. Login is identified by its password
//! instead, after the limiter has counted the attempt, per client address
//! and per account.
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

use crate::settings::GateSettings;
use crate::store::access::{self, RateSlot};
use crate::store::schema::{Date, Permission, UserDoc};
use crate::store::users::{SecondFactorState, Users};
use crate::store::{Batch, KvStore, StoreError, UserId};

use second_factor::{Claims, Presented, Requirement};

/// The credentials and second-factor headers of one request.
#[derive(Clone, Default)]
pub struct Credentials<'a> {
    /// `X-User-Id`.
    pub user_id: Option<&'a str>,
    /// `X-Auth-Token` (plaintext).
    pub token: Option<&'a str>,
    /// `x-2fa-code` / `x-2fa-method`.
    pub second_factor: Presented<'a>,
    /// The address of the connection (Spin's `spin-client-addr`).
    pub client_ip: String,
    /// `X-Forwarded-For`, believed only from a trusted proxy.
    pub forwarded_for: Option<&'a str>,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user_id", &self.user_id)
            .field("token", &self.token.map(|_| "<redacted>"))
            .field("second_factor", &self.second_factor)
            .field("client_ip", &self.client_ip)
            .field("forwarded_for", &self.forwarded_for)
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
    /// A valid login token, nothing more (`me`, `logout`, ...).
    pub const TOKEN_ONLY: RoutePolicy = RoutePolicy { rate_route: None, second_factor: None, permission: None };
}

/// A caller whose token matched, with what later steps need (read in the
/// same `get-many` as the user).
#[derive(Debug)]
pub struct Caller {
    pub user: UserDoc,
    /// base64(SHA-256) of the token the caller presented.
    pub hashed_token: String,
    second_factor: Option<SecondFactorState>,
    route_permission: Option<Permission>,
    bypass_permission: Option<Permission>,
}

/// How [`admit`] learns who is calling.
pub enum Identity<'a> {
    /// A token route: the caller [`identify`] found.
    Token(Box<Caller>),
    /// Login: `account` is the login name it claims; `verify` proves the
    /// password (and may create a directory user). It runs after the
    /// limiter has counted the attempt, per client and per account, so
    /// guessing is limited before any password work is done.
    Password { account: &'a str, verify: &'a mut dyn FnMut() -> Result<UserDoc, AuthError> },
}

/// A caller the gate let through.
#[derive(Debug)]
pub struct Admitted {
    pub user: UserDoc,
    /// The limiter's verdict, when it was evaluated (its headers go on the reply).
    pub rate_limit: Option<RateDecision>,
}

/// Step 1 of a token route: `X-User-Id`/`X-Auth-Token` → the caller. One
/// `get-many` also loads what the policy's later steps need. A token is
/// good while its session (or, for tokens Rocket.Chat itself issued, its
/// entry in the user document) is younger than `expiry_ms`; a deactivated
/// user's tokens are good for nothing.
pub fn identify(
    store: &dyn KvStore,
    creds: &Credentials<'_>,
    policy: &RoutePolicy,
    expiry_ms: i64,
    now: Date,
) -> Result<Caller, AuthError> {
    let (Some(user_id), Some(token)) = (creds.user_id, creds.token) else {
        return Err(AuthError::NotLoggedIn);
    };
    let user_id = UserId::new(user_id);
    let hashed_token = token::hash_token(token);
    // Only what the policy's steps use: a token-only route reads two keys.
    let bypass = policy.rate_route.map(|_| permission::API_BYPASS_RATE_LIMIT);
    let wanted: Vec<&str> = bypass.into_iter().chain(policy.permission).collect();
    let records = access::read_gate(store, &user_id, &hashed_token, policy.second_factor.is_some(), &wanted)?;
    let live = |when: Date| now.millis < when.millis.saturating_add(expiry_ms);
    let session_ok = records.session.as_ref().is_some_and(|s| s.user_id == user_id && live(s.when));
    let user = records
        .user
        .filter(|u| session_ok || token::holds_token(u, token, &|when| when.is_none_or(live)))
        .filter(|u| u.active != Some(false))
        .ok_or(AuthError::NotLoggedIn)?;
    let mut permissions = records.permissions.into_iter();
    let bypass_permission = if bypass.is_some() { permissions.next().flatten() } else { None };
    Ok(Caller {
        user,
        hashed_token,
        second_factor: records.second_factor,
        bypass_permission,
        route_permission: permissions.next().flatten(),
    })
}

/// The gate: identity, username, limiter, second factor, permission, in
/// the policy's steps and upstream's order. A lock of the second factor
/// that changed is written whatever the verdict.
pub fn admit(
    store: &dyn KvStore,
    identity: Identity<'_>,
    creds: &Credentials<'_>,
    policy: &RoutePolicy,
    settings: &GateSettings,
    now: Date,
) -> Result<Admitted, Refused> {
    let mut gate = Gate { store, creds, policy, settings, now, rate_limit: None };
    match gate.run(identity) {
        Ok(user) => Ok(Admitted { user, rate_limit: gate.rate_limit }),
        Err(error) => Err(Refused { error, rate_limit: gate.rate_limit }),
    }
}

/// Whether `user` holds `permission` (the stored record, else upstream's default roles).
pub fn has_permission(store: &dyn KvStore, user: &UserDoc, permission: &str) -> Result<bool, StoreError> {
    Ok(permission::grants(permission, access::permission_record(store, permission)?.as_ref(), &user.roles))
}

/// The store's atomic counters for one user, as the second-factor check claims them.
pub struct StoreClaims<'a> {
    users: Users<'a>,
    user: UserId,
}

impl<'a> StoreClaims<'a> {
    /// The counters of `user` in `store`.
    pub fn new(store: &'a dyn KvStore, user: &UserId) -> Self {
        Self { users: Users::new(store), user: user.clone() }
    }
}

impl Claims for StoreClaims<'_> {
    fn count_attempt(&mut self) -> Result<i64, StoreError> {
        self.users.count_attempt(&self.user)
    }

    fn reset_attempts(&mut self) -> Result<(), StoreError> {
        self.users.reset_attempts(&self.user)
    }

    fn claim_totp_step(&mut self, step: u64) -> Result<bool, StoreError> {
        self.users.claim_totp_step(&self.user, step)
    }

    fn claim_backup_code(&mut self, hashed_code: &str) -> Result<bool, StoreError> {
        self.users.claim_backup_code(&self.user, hashed_code)
    }

    fn used_backup_codes(&mut self, hashed_codes: &[String]) -> Result<usize, StoreError> {
        Ok(self.users.used_backup_codes(&self.user, hashed_codes)?.into_iter().filter(|used| *used).count())
    }
}

/// One run of the gate: what [`admit`] was given, and the limiter's verdict so far.
struct Gate<'a> {
    store: &'a dyn KvStore,
    creds: &'a Credentials<'a>,
    policy: &'a RoutePolicy,
    settings: &'a GateSettings,
    now: Date,
    rate_limit: Option<RateDecision>,
}

impl Gate<'_> {
    fn run(&mut self, identity: Identity<'_>) -> Result<UserDoc, AuthError> {
        let client = rate_limit::client_key(&self.creds.client_ip, self.creds.forwarded_for, &self.settings.rate_limit.trusted_proxies);
        let (user, state, route_permission) = match identity {
            Identity::Token(caller) => {
                let caller = *caller;
                if caller.user.username.as_deref().is_none_or(str::is_empty) {
                    return Err(AuthError::NoUsername);
                }
                let bypass = permission::grants(permission::API_BYPASS_RATE_LIMIT, caller.bypass_permission.as_ref(), &caller.user.roles);
                if !bypass {
                    self.count_call(client)?;
                }
                (caller.user, caller.second_factor, caller.route_permission)
            }
            Identity::Password { account, verify } => {
                // Per address, then per account: a botnet guessing one password
                // spreads over addresses but not over accounts.
                self.count_call(client)?;
                self.count_call(format!("account:{}", account.trim().to_lowercase()))?;
                let user = verify()?;
                if user.active == Some(false) {
                    return Err(AuthError::NotActivated);
                }
                (user, None, None)
            }
        };

        if let Some(requirement) = self.policy.second_factor {
            let state = match state {
                Some(state) => state,
                None => Users::new(self.store).second_factor(&user)?,
            };
            let mut claims = StoreClaims::new(self.store, &user.id);
            let presented = self.creds.second_factor;
            let checked = second_factor::check(&user, &state, presented, &self.settings.two_factor, self.now, requirement, &mut claims)?;
            if let Some(guard) = checked.guard {
                let mut batch = Batch::new();
                batch.put_two_factor(&user.id, &guard)?;
                batch.commit(self.store)?;
            }
            if let Err(refusal) = checked.verdict {
                return Err(AuthError::SecondFactor { kind: refusal.kind, method: refusal.method, available: refusal.available });
            }
        }

        if let Some(wanted) = self.policy.permission
            && !permission::grants(wanted, route_permission.as_ref(), &user.roles)
        {
            return Err(AuthError::NotAuthorized);
        }
        Ok(user)
    }

    /// Counts one call of `client` on the policy's route (when it is limited).
    fn count_call(&mut self, client: String) -> Result<(), AuthError> {
        let Some(route) = self.policy.rate_route.filter(|_| self.settings.rate_limit.enabled) else {
            return Ok(());
        };
        let counted = access::count_call(self.store, &RateSlot { client, route }, self.now, self.settings.rate_limit.window_ms)?;
        let decision = rate_limit::decide(counted, &self.settings.rate_limit, self.now);
        // The first refusal decides the headers (an address refused before its account).
        if self.rate_limit.is_none_or(|d| d.refused_for.is_none()) {
            self.rate_limit = Some(decision);
        }
        match decision.refused_for {
            Some(wait_seconds) => Err(AuthError::RateLimited { wait_seconds }),
            None => Ok(()),
        }
    }
}
