//! The second factor of `ldap.syncNow`, as upstream runs it on a server
//! without a licence: demanded on every call, nothing remembered, password
//! fallback forced when no other method is enabled (spec §1.4–§1.7).
//!
//! Beyond upstream: an accepted TOTP step cannot be replayed, and
//! [`MAX_FAILED_ATTEMPTS`] wrong codes in a row lock the user's second
//! factor for [`LOCK_MILLIS`].
//!
//! The e-mail method is never *enabled* here, because a component cannot
//! send mail: it is left out of method selection and `availableMethods`.
//! A caller that names it with `x-2fa-method: email` gets what upstream
//! gives for a named method the user has not enabled: `totp-required`
//! without a code, `totp-invalid` with one.
//!
//! Pure: time comes in as an argument and the caller stores the result.

use crate::settings::TwoFactor;
use crate::store::schema::{Date, TwoFactorGuard, UserDoc};

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
    /// `x-2fa-code`; `Some("")` counts as a code (a wrong one).
    pub code: Option<&'a str>,
    /// `x-2fa-method`.
    pub method: Option<&'a str>,
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented").field("code", &self.code.map(|_| "<redacted>")).field("method", &self.method).finish()
    }
}

/// What the check decided, plus the state to write back.
#[derive(Debug)]
pub struct Checked {
    pub verdict: Result<(), Refusal>,
    /// The guard to store when it changed.
    pub guard: Option<TwoFactorGuard>,
    /// The user document to store when it changed (a backup code was used).
    pub user: Option<UserDoc>,
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

/// Runs the check for `user` at `now`.
pub fn check(
    user: &UserDoc,
    guard: &TwoFactorGuard,
    presented: Presented<'_>,
    settings: &TwoFactor,
    now: Date,
    requirement: Requirement,
) -> Checked {
    let pass = Checked { verdict: Ok(()), guard: None, user: None };
    if !settings.enabled {
        return pass;
    }
    let available = available_methods(user, settings);
    let method = match (presented.method, available.first(), requirement) {
        (Some("totp"), _, _) => Method::Totp,
        (Some("email"), _, _) => Method::Email,
        // Any other value (absent, "password", garbage) means auto-selection.
        (_, Some(first), _) => *first,
        // Nothing enabled: requireSecondFactor forces the password...
        (_, None, Requirement::Forced) => Method::Password,
        // ...while login lets the user through without a code.
        (_, None, Requirement::IfEnabled) => return pass,
    };
    let refuse = |kind| Refusal { kind, method, available: available.clone() };

    let Some(code) = presented.code else {
        return Checked { verdict: Err(refuse(SecondFactorRefusal::Required)), ..pass };
    };
    let mut user_after = None;
    let (verdict, guard) = guarded(guard, now, |guard| match method {
        Method::Totp => verify_totp(user, guard, code, settings, now, &mut user_after),
        Method::Email => false,
        Method::Password => {
            user.services.password.as_ref().and_then(|p| p.bcrypt.as_deref()).is_some_and(|hash| totp::password_matches(code, hash))
        }
    });
    match verdict {
        Ok(()) => Checked { verdict: Ok(()), guard: Some(guard), user: user_after },
        Err(kind) => Checked { verdict: Err(refuse(kind)), guard: Some(guard), user: None },
    }
}

/// Runs `verify` under the guard: refused while locked, failures counted,
/// [`MAX_FAILED_ATTEMPTS`] in a row start a lock of [`LOCK_MILLIS`]. Returns
/// the verdict and the guard to store.
pub fn guarded(
    guard: &TwoFactorGuard,
    now: Date,
    verify: impl FnOnce(&mut TwoFactorGuard) -> bool,
) -> (Result<(), SecondFactorRefusal>, TwoFactorGuard) {
    let mut guard = guard.clone();
    if let Some(until) = guard.locked_until {
        if until > now {
            return (Err(SecondFactorRefusal::MaxAttempts), guard);
        }
        guard.locked_until = None;
        guard.failed_attempts = 0;
    }
    if verify(&mut guard) {
        guard.failed_attempts = 0;
        return (Ok(()), guard);
    }
    guard.failed_attempts += 1;
    if guard.failed_attempts >= MAX_FAILED_ATTEMPTS {
        guard.failed_attempts = 0;
        guard.locked_until = Some(Date { millis: now.millis + LOCK_MILLIS });
        return (Err(SecondFactorRefusal::MaxAttempts), guard);
    }
    (Err(SecondFactorRefusal::Invalid), guard)
}

/// Enabled methods in upstream's order; e-mail is never enabled here.
pub fn available_methods(user: &UserDoc, settings: &TwoFactor) -> Vec<Method> {
    let totp_on = settings.totp_enabled && user.services.totp.as_ref().is_some_and(|t| t.enabled);
    if totp_on { vec![Method::Totp] } else { Vec::new() }
}

/// TOTPCheck on the user's enabled secret; a used backup code is removed
/// from the copy put in `user_after`.
fn verify_totp(
    user: &UserDoc,
    guard: &mut TwoFactorGuard,
    code: &str,
    settings: &TwoFactor,
    now: Date,
    user_after: &mut Option<UserDoc>,
) -> bool {
    let Some(totp) = user.services.totp.as_ref().filter(|t| t.enabled) else {
        return false;
    };
    let Some(secret) = totp.secret.as_deref() else {
        return false;
    };
    match verify_code(secret, totp.hashed_backup.as_deref(), code, guard, settings, now) {
        Verified::Totp => true,
        Verified::Backup(index) => {
            let mut updated = user.clone();
            if let Some(list) = updated.services.totp.as_mut().and_then(|t| t.hashed_backup.as_mut()) {
                list.remove(index);
            }
            *user_after = Some(updated);
            true
        }
        Verified::No => false,
    }
}

/// What [`verify_code`] matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// A TOTP code of a step after the last accepted one (now recorded in the guard).
    Totp,
    /// The backup code at this index of the list.
    Backup(usize),
    No,
}

/// Upstream's TOTPCheck: an 8-character code is only ever a backup code
/// (when a list exists); anything else is an RFC 6238 code, and a step at
/// or before the last accepted one is a replay.
pub fn verify_code(
    secret: &str,
    backups: Option<&[String]>,
    code: &str,
    guard: &mut TwoFactorGuard,
    settings: &TwoFactor,
    now: Date,
) -> Verified {
    if code.chars().count() == totp::BACKUP_CODE_LEN
        && let Some(hashed) = backups
    {
        return totp::backup_code_index(hashed, code).map_or(Verified::No, Verified::Backup);
    }
    let unix_seconds = u64::try_from(now.millis / 1000).unwrap_or(0);
    match totp::matching_step(secret, code, unix_seconds, settings.max_delta) {
        Some(step) if guard.last_totp_step.is_none_or(|last| step > last) => {
            guard.last_totp_step = Some(step);
            Verified::Totp
        }
        _ => Verified::No,
    }
}

#[cfg(test)]
mod tests;
