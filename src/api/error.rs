//! The only place an error becomes an HTTP status and a Rocket.Chat body.

use serde_json::json;

use crate::auth::bootstrap::BootstrapError;
use crate::auth::{AuthError, Refused, SecondFactorRefusal};
use crate::settings::SettingsError;
use crate::store::StoreError;
use crate::sync::SyncError;

use super::Response;

/// Everything a route can answer other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The gate refused the caller (with the limiter's verdict, if it ran).
    #[error(transparent)]
    Auth(Refused),
    /// A Spin variable has a value we cannot use: an operator's typo.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// `ldap_enable` is not true.
    #[error("LDAP is disabled")]
    LdapDisabled,
    /// `ldap_background_sync` is false (newest upstream's check).
    #[error("background sync is disabled")]
    BackgroundSyncDisabled,
    /// No route has this path.
    #[error("no such endpoint")]
    NotFound,
    /// The path exists with other methods.
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// The sync aborted (connect, TLS, bind, search, store); newest upstream's body.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// Login refused: the gate's refusal in upstream's login shape.
    #[error("login failed: {0}")]
    Login(Refused),
    /// The bootstrap admin could not be created.
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// `ldap.testConnection` could not connect, secure or bind.
    #[error("{0}")]
    ConnectionFailed(String),
    /// A malformed request: bad JSON, a missing or oversized field.
    #[error("{0}")]
    BadRequest(String),
    /// A field fails the route's schema (upstream's ajv `invalid-params`).
    #[error("{0}")]
    InvalidParams(String),
    /// The caller lacks a permission the route requires (`permissionsRequired`).
    #[error("forbidden")]
    Forbidden,
    /// Upstream's `Error('User not found.')` and friends: a 400 with a fixed text.
    #[error("{0}")]
    Plain(&'static str),
    /// The store failed outside the gate. The body never holds the store's
    /// text (it may name keys and users); the log does.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A listing's `sort` or `query` is refused: not JSON, not 1/-1
    /// (`error-invalid-sort`), an attribute or operation `isValidQuery` does
    /// not allow, or a filter we do not evaluate (`error-invalid-query`).
    /// A client bug, or a probe for fields the caller may not see.
    /// `helper_method` is upstream's `details.helperMethod` (`parseJsonQuery`'s own refusals).
    #[error("{error}")]
    Query { error: String, error_type: &'static str, helper_method: Option<&'static str> },
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        ApiError::Auth(error.into())
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        ApiError::Auth(refused)
    }
}

impl ApiError {
    /// The status and exact body (spec §1.2, §1.5).
    pub fn into_response(self) -> Response {
        let (status, body, headers) = match self {
            ApiError::Auth(Refused { error, rate_limit }) => return auth_response(error).with_rate_limit(rate_limit),
            ApiError::Login(Refused { error, rate_limit }) => return login_response(error).with_rate_limit(rate_limit),
            ApiError::Bootstrap(e) => internal(&e.to_string()),
            ApiError::Settings(e) => (400, plain(&e.to_string()), Vec::new()),
            ApiError::LdapDisabled => (400, plain("LDAP_disabled"), Vec::new()),
            ApiError::BackgroundSyncDisabled => (400, plain("LDAP_Background_Sync_disabled"), Vec::new()),
            ApiError::NotFound => (404, plain("API endpoint not found"), Vec::new()),
            ApiError::MethodNotAllowed { allow } => (405, plain("Method not allowed"), vec![("Allow", allow)]),
            // Configuration problems: the setting's own message, as for other bad variables.
            ApiError::Sync(e @ (SyncError::Filter(_) | SyncError::NoSearchField | SyncError::ModeUnavailable(_))) => {
                (400, plain(&e.to_string()), Vec::new())
            }
            ApiError::Sync(e @ (SyncError::Ldap(_) | SyncError::Store(_) | SyncError::BudgetReached { .. } | SyncError::Groups(_))) => {
                (400, json!({"error": "LDAP_Sync_failed", "details": {"error": e.to_string()}, "success": false}), Vec::new())
            }
            ApiError::ConnectionFailed(reason) => (
                400,
                json!({"error": "LDAP_Connection_failed_reason", "errorType": "error-ldap-connection-failed",
                       "details": {"reason": reason}, "success": false}),
                Vec::new(),
            ),
            ApiError::BadRequest(message) => (400, plain(&message), Vec::new()),
            ApiError::InvalidParams(message) => {
                (400, json!({"success": false, "error": format!("{message} [invalid-params]"), "errorType": "invalid-params"}), Vec::new())
            }
            ApiError::Forbidden => {
                (403, plain("User does not have the permissions required for this action [error-unauthorized]"), Vec::new())
            }
            ApiError::Plain(message) => (400, plain(message), Vec::new()),
            ApiError::Store(e) => internal(&e.to_string()),
            ApiError::Query { error, error_type, helper_method } => {
                let mut body = json!({"success": false, "error": format!("{error} [{error_type}]"), "errorType": error_type});
                if let Some(helper) = helper_method {
                    body["details"] = json!({"helperMethod": helper});
                }
                (400, body, Vec::new())
            }
        };
        Response { status, headers, body, raw: None }
    }
}

/// Upstream 7.x's login catch block (HTTP 401): `unauthorized()` plus
/// `status`, `error`, `details` and `message` of the Meteor error. Refusals
/// login does not have (the limiter, a broken store) answer as anywhere else.
fn login_response(error: AuthError) -> Response {
    let body = match error {
        // Wrong password, unknown user, or a directory refusal: one answer for all.
        AuthError::WrongPassword => {
            json!({"success": false, "error": "Unauthorized", "status": "error", "message": "Unauthorized"})
        }
        AuthError::NotActivated => json!({"success": false, "error": "error-user-is-not-activated", "status": "error",
            "details": {"function": "Accounts.validateLoginAttempt"}, "message": "User is not activated"}),
        AuthError::SecondFactor { kind, method, available } => {
            let (error, message) = match kind {
                SecondFactorRefusal::Required => ("totp-required", "TOTP Required"),
                SecondFactorRefusal::Invalid => ("totp-invalid", "TOTP Invalid"),
                SecondFactorRefusal::MaxAttempts => ("totp-max-attempts", "TOTP Maximun Failed Attempts Reached"),
            };
            let available: Vec<&str> = available.iter().map(|m| m.name()).collect();
            json!({"success": false, "error": error, "status": "error",
                "details": {"method": method.name(), "codeGenerated": false, "availableMethods": available},
                "message": message})
        }
        other @ (AuthError::NotLoggedIn
        | AuthError::NoUsername
        | AuthError::RateLimited { .. }
        | AuthError::NotAuthorized
        | AuthError::Store(_)) => {
            return auth_response(other);
        }
    };
    Response { status: 401, headers: Vec::new(), body, raw: None }
}

fn auth_response(error: AuthError) -> Response {
    let (status, body) = match error {
        // The status/message pair is upstream's pre-8.0 compatibility add-on.
        AuthError::NotLoggedIn => (
            401,
            json!({"success": false, "error": "You must be logged in to do this.", "status": "error", "message": "You must be logged in to do this."}),
        ),
        AuthError::NoUsername => {
            (400, json!({"success": false, "error": "Users must have a username [error-unauthorized]", "errorType": "error-unauthorized"}))
        }
        AuthError::RateLimited { wait_seconds } => (
            429,
            plain(&format!(
                "Error, too many requests. Please slow down. You must wait {wait_seconds} seconds before trying this endpoint again. [error-too-many-requests]"
            )),
        ),
        AuthError::SecondFactor { kind, method, available } => {
            let (error, error_type) = match kind {
                SecondFactorRefusal::Required => ("TOTP Required [totp-required]", "totp-required"),
                SecondFactorRefusal::Invalid => ("TOTP Invalid [totp-invalid]", "totp-invalid"),
                // Upstream's spelling, typo included.
                SecondFactorRefusal::MaxAttempts => ("TOTP Maximun Failed Attempts Reached [totp-max-attempts]", "totp-max-attempts"),
            };
            let available: Vec<&str> = available.iter().map(|m| m.name()).collect();
            (
                400,
                json!({
                    "success": false,
                    "error": error,
                    "errorType": error_type,
                    "details": {"method": method.name(), "codeGenerated": false, "availableMethods": available},
                }),
            )
        }
        AuthError::NotAuthorized => (400, plain("error-not-authorized")),
        // Only login refuses these; elsewhere they would be a bug, so answer as login does.
        AuthError::WrongPassword | AuthError::NotActivated => return login_response(error),
        AuthError::Store(e) => {
            let (status, body, _) = internal(&e.to_string());
            (status, body)
        }
    };
    Response { status, headers: Vec::new(), body, raw: None }
}

/// A 500 whose body says nothing about the cause (store errors name keys
/// and users); the cause goes to the log.
fn internal(cause: &str) -> (u16, serde_json::Value, Vec<(&'static str, String)>) {
    crate::log::error("internal error", &[("cause", json!(cause))]);
    (500, plain("Internal server error"), Vec::new())
}

/// Upstream's shape for a plain `Error('x')`: `{"success":false,"error":"x"}`.
fn plain(error: &str) -> serde_json::Value {
    json!({"success": false, "error": error})
}
