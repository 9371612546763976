//! Errors of the authorization gate.

use crate::store::StoreError;

use super::rate_limit::RateDecision;
use super::second_factor::Method;

/// Why a caller is refused before the action runs.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Missing `X-User-Id`/`X-Auth-Token`, unknown user, or wrong token.
    #[error("you must be logged in to do this")]
    NotLoggedIn,
    /// Login: wrong password, unknown user, or a directory refusal (one
    /// answer for all, so a caller cannot tell which).
    #[error("wrong username or password")]
    WrongPassword,
    /// Login: the account is deactivated.
    #[error("the user is not activated")]
    NotActivated,
    /// The user document has no username (upstream's Hono middleware refuses these).
    #[error("users must have a username")]
    NoUsername,
    /// The caller made too many calls in the limiter window.
    #[error("too many requests; retry in {wait_seconds} s")]
    RateLimited { wait_seconds: u64 },
    /// The second factor is missing, wrong or locked.
    #[error("second factor: {kind:?}")]
    SecondFactor { kind: SecondFactorRefusal, method: Method, available: Vec<Method> },
    /// The user's roles do not hold the route's permission.
    #[error("not authorized")]
    NotAuthorized,
    /// The store could not be read or written while checking.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A caller the gate stopped.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Refused {
    pub error: AuthError,
    /// The limiter's verdict, when it was evaluated before the refusal.
    pub rate_limit: Option<RateDecision>,
}

impl From<AuthError> for Refused {
    fn from(error: AuthError) -> Self {
        Self { error, rate_limit: None }
    }
}

impl From<StoreError> for Refused {
    fn from(error: StoreError) -> Self {
        AuthError::from(error).into()
    }
}

/// Which second-factor answer upstream gives (spec §1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactorRefusal {
    /// No `x-2fa-code` header.
    Required,
    /// The code did not verify.
    Invalid,
    /// Too many wrong codes in a row; the user's second factor is locked.
    MaxAttempts,
}
