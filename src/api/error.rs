//! The only place an error becomes an HTTP status and a Rocket.Chat body.

use serde_json::json;

use crate::auth::second_factor::Refusal;
use crate::auth::{AuthError, SecondFactorRefusal};
use crate::settings::SettingsError;
use crate::store::StoreError;
use crate::sync::SyncError;

use super::Response;

/// Why a login failed (HTTP 401 in upstream's login shape).
#[derive(Debug)]
pub enum LoginFailure {
    /// Wrong password, unknown user, or a directory refusal: one answer for all.
    Unauthorized,
    /// The account is deactivated.
    NotActivated,
    /// The user's second factor is missing or wrong.
    SecondFactor(Refusal),
}

/// Everything a route can answer other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
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
    /// Login refused.
    #[error("login failed")]
    Login(LoginFailure),
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
    /// The store failed outside the gate.
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

impl ApiError {
    /// The status and exact body (spec §1.2, §1.5).
    pub fn into_response(self) -> Response {
        let (status, body, headers) = match self {
            ApiError::Auth(auth) => return auth_response(auth),
            ApiError::Settings(e) => (400, plain(&e.to_string()), Vec::new()),
            ApiError::LdapDisabled => (400, plain("LDAP_disabled"), Vec::new()),
            ApiError::BackgroundSyncDisabled => (400, plain("LDAP_Background_Sync_disabled"), Vec::new()),
            ApiError::NotFound => (404, plain("API endpoint not found"), Vec::new()),
            ApiError::MethodNotAllowed { allow } => (405, plain("Method not allowed"), vec![("Allow", allow)]),
            // Configuration problems: the setting's own message, as for other bad variables.
            ApiError::Sync(e @ (SyncError::Filter(_) | SyncError::NoSearchField)) => (400, plain(&e.to_string()), Vec::new()),
            ApiError::Sync(e @ (SyncError::Ldap(_) | SyncError::Store(_))) => (
                400,
                json!({"error": "LDAP_Sync_failed", "details": {"error": e.to_string()}, "success": false}),
                Vec::new(),
            ),
            ApiError::Login(failure) => (401, login_failure(failure), Vec::new()),
            ApiError::ConnectionFailed(reason) => (
                400,
                json!({"error": "LDAP_Connection_failed_reason", "errorType": "error-ldap-connection-failed",
                       "details": {"reason": reason}, "success": false}),
                Vec::new(),
            ),
            ApiError::BadRequest(message) => (400, plain(&message), Vec::new()),
            ApiError::InvalidParams(message) => (
                400,
                json!({"success": false, "error": format!("{message} [invalid-params]"), "errorType": "invalid-params"}),
                Vec::new(),
            ),
            ApiError::Forbidden => (
                403,
                plain("User does not have the permissions required for this action [error-unauthorized]"),
                Vec::new(),
            ),
            ApiError::Plain(message) => (400, plain(message), Vec::new()),
            ApiError::Store(e) => (500, plain(&e.to_string()), Vec::new()),
            ApiError::Query { error, error_type, helper_method } => {
                let mut body = json!({"success": false, "error": format!("{error} [{error_type}]"), "errorType": error_type});
                if let Some(helper) = helper_method {
                    body["details"] = json!({"helperMethod": helper});
                }
                (400, body, Vec::new())
            }
        };
        Response { status, headers, body }
    }
}

/// Upstream 7.x's login catch block: `unauthorized()` plus `status`,
/// `error`, `details` and `message` of the Meteor error.
fn login_failure(failure: LoginFailure) -> serde_json::Value {
    match failure {
        LoginFailure::Unauthorized => {
            json!({"success": false, "error": "Unauthorized", "status": "error", "message": "Unauthorized"})
        }
        LoginFailure::NotActivated => json!({"success": false, "error": "error-user-is-not-activated", "status": "error",
            "details": {"function": "Accounts.validateLoginAttempt"}, "message": "User is not activated"}),
        LoginFailure::SecondFactor(refusal) => {
            let (error, message) = match refusal.kind {
                SecondFactorRefusal::Required => ("totp-required", "TOTP Required"),
                SecondFactorRefusal::Invalid => ("totp-invalid", "TOTP Invalid"),
                SecondFactorRefusal::MaxAttempts => ("totp-max-attempts", "TOTP Maximun Failed Attempts Reached"),
            };
            let available: Vec<&str> = refusal.available.iter().map(|m| m.name()).collect();
            json!({"success": false, "error": error, "status": "error",
                "details": {"method": refusal.method.name(), "codeGenerated": false, "availableMethods": available},
                "message": message})
        }
    }
}

fn auth_response(error: AuthError) -> Response {
    let (status, body) = match error {
        // The status/message pair is upstream's pre-8.0 compatibility add-on.
        AuthError::NotLoggedIn => (
            401,
            json!({"success": false, "error": "You must be logged in to do this.", "status": "error", "message": "You must be logged in to do this."}),
        ),
        AuthError::NoUsername => (
            400,
            json!({"success": false, "error": "Users must have a username [error-unauthorized]", "errorType": "error-unauthorized"}),
        ),
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
        AuthError::Store(e) => (500, plain(&e.to_string())),
    };
    Response { status, headers: Vec::new(), body }
}

/// Upstream's shape for a plain `Error('x')`: `{"success":false,"error":"x"}`.
fn plain(error: &str) -> serde_json::Value {
    json!({"success": false, "error": error})
}
