//! The second factor of `ldap.syncNow`, as upstream runs it on a server
//! without a licence: demanded on every call, nothing remembered, password
//! fallback forced when no other method is enabled (spec §1.4–§1.7).
//!
//! Beyond upstream: an accepted TOTP step or backup code cannot be used
//! again, and [`MAX_FAILED_ATTEMPTS`] codes in a row without a success lock
//! the user's second factor for [`LOCK_MILLIS`]. Each of those is decided
//! by an atomic counter ([`Claims`]), so parallel requests cannot replay a
//! code or try more codes than the limit.
//!
//! The e-mail method is never *enabled* here, because a component cannot
//! send mail: it is left out of method selection and `availableMethods`.
//! A caller that names it with `x-2fa-method: email` gets what upstream
//! gives for a named method the user has not enabled: `totp-required`
//! without a code, `totp-invalid` with one.
//!
//! No I/O of its own: time comes in as an argument, the counters through
//! [`Claims`], and the caller stores the lock it returns.

use crate::settings::TwoFactor;
use crate::store::StoreError;
use crate::store::schema::{Date, Totp, TwoFactorGuard, UserDoc};
use crate::store::users::SecondFactorState;

use super::error::SecondFactorRefusal;
use super::totp;

/// Wrong codes in a row that lock a user's second factor.
pub const MAX_FAILED_ATTEMPTS: u32 = 5;
/// How long the lock lasts: long enough to make guessing 10^6 codes
/// hopeless (5 guesses per 5 minutes), short enough not to need an admin.
pub const LOCK_MILLIS: i64 = 5 * 60 * 1000;

/// A second-factor method (upstream's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Totp,
    Email,
    Password,
}

impl Method {
    /// The wire name in `details.method` and `availableMethods`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::Email => "email",
            Method::Password => "password",
        }
    }
}

/// The second-factor headers of a request.
#[derive(Clone, Copy, Default)]
pub struct Presented<'a> {
    /// `x-2fa-code`; `Some("")` counts as no code, as upstream's `if (!code)`.
    pub code: Option<&'a str>,
    /// `x-2fa-method`.
    pub method: Option<&'a str>,
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented").field("code", &self.code.map(|_| "<redacted>")).field("method", &self.method).finish()
    }
}

/// The counters a check claims: the store's atomic counters in the
/// component (`store::users`), a map in unit tests.
pub trait Claims {
    /// Counts one more code tried; returns how many since the last reset.
    fn count_attempt(&mut self) -> Result<i64, StoreError>;
    /// Starts the count again.
    fn reset_attempts(&mut self) -> Result<(), StoreError>;
    /// `true` for the one request that may use TOTP step `step`.
    fn claim_totp_step(&mut self, step: u64) -> Result<bool, StoreError>;
    /// `true` for the first use of a backup code (by its SHA-256 hex).
    fn claim_backup_code(&mut self, hashed_code: &str) -> Result<bool, StoreError>;
    /// How many of `hashed_codes` were used.
    fn used_backup_codes(&mut self, hashed_codes: &[String]) -> Result<usize, StoreError>;
}

/// What the check decided, plus the lock to write back.
#[derive(Debug)]
pub struct Checked {
    pub verdict: Result<(), Refusal>,
    /// The guard to store when the lock changed.
    pub guard: Option<TwoFactorGuard>,
}

/// A refusal with the details upstream puts in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: SecondFactorRefusal,
    pub method: Method,
    pub available: Vec<Method>,
}

/// Whether a user without any enabled method must still give a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// `requireSecondFactor` (routes like `ldap.syncNow` on a server
    /// without a licence): nothing enabled means the password is forced.
    Forced,
    /// Login: only users with an enabled method give a code; no password fallback.
    IfEnabled,
}

/// Runs the check for `user` (second-factor state `state`) at `now`.
pub fn check(
    user: &UserDoc,
    state: &SecondFactorState,
    presented: Presented<'_>,
    settings: &TwoFactor,
    now: Date,
    requirement: Requirement,
    claims: &mut dyn Claims,
) -> Result<Checked, StoreError> {
    let pass = Checked { verdict: Ok(()), guard: None };
    if !settings.enabled {
        return Ok(pass);
    }
    let available = available_methods(state.totp.as_ref(), settings);
    let method = match (presented.method, available.first(), requirement) {
        (Some("totp"), _, _) => Method::Totp,
        (Some("email"), _, _) => Method::Email,
        // Any other value (absent, "password", garbage) means auto-selection.
        (_, Some(first), _) => *first,
        // Nothing enabled: requireSecondFactor forces the password...
        (_, None, Requirement::Forced) => Method::Password,
        // ...while login lets the user through without a code.
        (_, None, Requirement::IfEnabled) => return Ok(pass),
    };
    let refuse = |kind| Refusal { kind, method, available: available.clone() };

    // Upstream tests `!code`: an empty code is no code (`totp-required`),
    // not a wrong one, and it does not count towards the lock.
    let Some(code) = presented.code.filter(|c| !c.is_empty()) else {
        return Ok(Checked { verdict: Err(refuse(SecondFactorRefusal::Required)), ..pass });
    };
    let (verdict, guard) = guarded(&state.guard, now, claims, |claims| match method {
        Method::Totp => match state.totp.as_ref().filter(|t| t.enabled) {
            Some(totp) => verify_code(totp, code, settings, now, claims),
            None => Ok(false),
        },
        Method::Email => Ok(false),
        Method::Password => {
            Ok(user.services.password.as_ref().and_then(|p| p.bcrypt.as_deref()).is_some_and(|hash| totp::password_matches(code, hash)))
        }
    })?;
    Ok(Checked { verdict: verdict.map_err(refuse), guard })
}

/// Runs `verify` under the guard: refused while locked; every code counts
/// as an attempt ([`Claims::count_attempt`]) before it is verified, so
/// parallel requests cannot try more than [`MAX_FAILED_ATTEMPTS`]; a
/// success starts the count again; the attempt that reaches the limit
/// without one starts a lock of [`LOCK_MILLIS`]. Returns the verdict and
/// the guard to store when the lock changed.
pub fn guarded(
    guard: &TwoFactorGuard,
    now: Date,
    claims: &mut dyn Claims,
    verify: impl FnOnce(&mut dyn Claims) -> Result<bool, StoreError>,
) -> Result<(Result<(), SecondFactorRefusal>, Option<TwoFactorGuard>), StoreError> {
    let mut changed = None;
    if let Some(until) = guard.locked_until {
        if until > now {
            return Ok((Err(SecondFactorRefusal::MaxAttempts), None));
        }
        claims.reset_attempts()?;
        changed = Some(TwoFactorGuard { locked_until: None, ..guard.clone() });
    }
    let locked = || Some(TwoFactorGuard { locked_until: Some(Date { millis: now.millis + LOCK_MILLIS }), ..guard.clone() });
    let attempt = claims.count_attempt()?;
    if attempt > i64::from(MAX_FAILED_ATTEMPTS) {
        // Parallel attempts past the limit: refused unverified.
        return Ok((Err(SecondFactorRefusal::MaxAttempts), locked()));
    }
    if verify(claims)? {
        claims.reset_attempts()?;
        return Ok((Ok(()), changed));
    }
    if attempt == i64::from(MAX_FAILED_ATTEMPTS) {
        return Ok((Err(SecondFactorRefusal::MaxAttempts), locked()));
    }
    Ok((Err(SecondFactorRefusal::Invalid), changed))
}

/// Enabled methods in upstream's order; e-mail is never enabled here.
pub fn available_methods(totp: Option<&Totp>, settings: &TwoFactor) -> Vec<Method> {
    let totp_on = settings.totp_enabled && totp.is_some_and(|t| t.enabled);
    if totp_on { vec![Method::Totp] } else { Vec::new() }
}

/// Upstream's TOTPCheck against an enrolment: an 8-character code is only
/// ever a backup code (when a list exists), claimed once; anything else is
/// an RFC 6238 code of the secret, whose step is claimed once (a step at
/// or before the last accepted one is a replay).
pub fn verify_code(totp: &Totp, code: &str, settings: &TwoFactor, now: Date, claims: &mut dyn Claims) -> Result<bool, StoreError> {
    if code.chars().count() == totp::BACKUP_CODE_LEN
        && let Some(hashed) = totp.hashed_backup.as_deref()
    {
        return match totp::backup_code_index(hashed, code).and_then(|index| hashed.get(index)) {
            Some(hashed_code) => claims.claim_backup_code(hashed_code),
            None => Ok(false),
        };
    }
    let Some(secret) = totp.secret.as_deref() else {
        return Ok(false);
    };
    let unix_seconds = u64::try_from(now.millis / 1000).unwrap_or(0);
    match totp::matching_step(secret, code, unix_seconds, settings.max_delta) {
        Some(step) => claims.claim_totp_step(step),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests;
