//! TOTP enrolment: the `2fa:*` Meteor methods the web client calls through
//! `method.call` (upstream `apps/meteor/app/2fa/server/methods/*.ts`). Pure:
//! time and randomness come in, the documents to store go out.
//!
//! Every code these methods accept goes through the same guard as the
//! second factor (replay refused, lockout after repeated failures).

use serde_json::{Map, Value, json};

use crate::settings::TwoFactor;
use crate::store::ids::random_id;
use crate::store::schema::{Date, Totp, TwoFactorGuard, UserDoc};

use super::second_factor::{Verified, guarded, verify_code};
use super::totp::sha256_hex;

/// Backup codes per enrolment (spec §4.3).
const BACKUP_CODES: usize = 12;
/// Characters of a backup code (`Random.id(8)`); also what makes a code a backup code.
const CODE_LEN: usize = super::totp::BACKUP_CODE_LEN;
/// Bytes of a new TOTP secret: 160 bits, RFC 4226's recommended length.
const SECRET_BYTES: usize = 20;

/// A `Meteor.Error` as it travels in the method envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct MeteorError {
    pub error: Value,
    pub reason: Option<String>,
    pub details: Option<Value>,
}

impl MeteorError {
    /// A Meteor.Error with this code, reason and details.
    pub fn new(error: impl Into<Value>, reason: Option<&str>, details: Option<Value>) -> Self {
        Self { error: error.into(), reason: reason.map(str::to_owned), details }
    }

    /// The enumerable fields of a `Meteor.Error`, in constructor order.
    pub fn to_json(&self) -> Value {
        let code = match &self.error {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut out = Map::new();
        out.insert("isClientSafe".to_owned(), json!(true));
        out.insert("error".to_owned(), self.error.clone());
        if let Some(reason) = &self.reason {
            out.insert("reason".to_owned(), json!(reason));
        }
        if let Some(details) = &self.details {
            out.insert("details".to_owned(), details.clone());
        }
        let message = match &self.reason {
            Some(reason) => format!("{reason} [{code}]"),
            None => format!("[{code}]"),
        };
        out.insert("message".to_owned(), json!(message));
        out.insert("errorType".to_owned(), json!("Meteor.Error"));
        Value::Object(out)
    }
}

/// A method's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum MethodResult {
    Value(Value),
    /// `undefined`: the envelope has no `result` key.
    Nothing,
    Error(MeteorError),
}

/// What a call needs besides its parameters.
pub struct CallContext<'a> {
    pub user: &'a UserDoc,
    pub guard: &'a TwoFactorGuard,
    /// base64(SHA-256) of the token this request came with.
    pub current_token_hash: &'a str,
    pub settings: &'a TwoFactor,
    pub now: Date,
    pub random: &'a dyn Fn(&mut [u8]),
}

/// The answer plus the documents to store.
#[derive(Debug)]
pub struct Call {
    pub result: MethodResult,
    pub user: Option<UserDoc>,
    pub guard: Option<TwoFactorGuard>,
}

/// Runs the method `name`; `None` when it is not one of ours.
pub fn call(name: &str, params: &[Value], ctx: &CallContext<'_>) -> Option<Call> {
    let done = |result| Call { result, user: None, guard: None };
    let invalid_user = |method: &str| MeteorError::new("error-invalid-user", Some("Invalid user"), Some(json!({"method": method})));
    let totp = ctx.user.services.totp.clone().unwrap_or_default();
    let first_string = || params.first().and_then(Value::as_str).unwrap_or_default().to_owned();
    Some(match name {
        "2fa:enable" => {
            let Some(username) = ctx.user.username.as_deref() else {
                return Some(done(MethodResult::Error(invalid_user(name))));
            };
            if ctx.user.emails.iter().any(|e| !e.verified) {
                let reason = "You need to verify your emails before setting up 2FA";
                return Some(done(MethodResult::Error(MeteorError::new(
                    "error-invalid-user",
                    Some(reason),
                    Some(json!({"method": name})),
                ))));
            }
            let mut bytes = [0u8; SECRET_BYTES];
            (ctx.random)(&mut bytes);
            let secret = base32(&bytes);
            let mut user = ctx.user.clone();
            let mut extra = Map::new();
            extra.insert("tempSecret".to_owned(), json!(secret));
            // As upstream: enabling starts over and turns any current TOTP off.
            user.services.totp = Some(Totp { enabled: false, secret: None, hashed_backup: None, extra });
            let url = format!("otpauth://totp/Rocket.Chat%3A{}?secret={secret}", url_encode(username));
            Call { result: MethodResult::Value(json!({"secret": secret, "url": url})), user: Some(user), guard: None }
        }
        "2fa:validateTempToken" => {
            let Some(temp) = totp.extra.get("tempSecret").and_then(Value::as_str).map(str::to_owned) else {
                return Some(done(MethodResult::Error(MeteorError::new("invalid-totp", None, None))));
            };
            let code = first_string();
            let (verdict, guard) =
                guarded(ctx.guard, ctx.now, |g| verify_code(&temp, None, &code, g, ctx.settings, ctx.now) == Verified::Totp);
            if verdict.is_err() {
                return Some(Call {
                    result: MethodResult::Error(MeteorError::new("invalid-totp", None, None)),
                    user: None,
                    guard: Some(guard),
                });
            }
            let (codes, hashed) = backup_codes(ctx.random);
            let mut user = ctx.user.clone();
            user.services.totp = Some(Totp { enabled: true, secret: Some(temp), hashed_backup: Some(hashed), extra: Map::new() });
            // Log out every other session; personal access tokens (no `when`) stay.
            if let Some(resume) = user.services.resume.as_mut() {
                resume.login_tokens.retain(|t| t.hashed_token == ctx.current_token_hash || !t.extra.contains_key("when"));
            }
            Call { result: MethodResult::Value(json!({"codes": codes})), user: Some(user), guard: Some(guard) }
        }
        "2fa:disable" => {
            let Some(secret) = totp.secret.clone().filter(|_| totp.enabled) else {
                return Some(done(MethodResult::Value(json!(false))));
            };
            let code = first_string();
            let (verdict, guard) = guarded(ctx.guard, ctx.now, |g| {
                verify_code(&secret, totp.hashed_backup.as_deref(), &code, g, ctx.settings, ctx.now) != Verified::No
            });
            let mut call = Call { result: MethodResult::Value(json!(verdict.is_ok())), user: None, guard: Some(guard) };
            if verdict.is_ok() {
                let mut user = ctx.user.clone();
                user.services.totp = Some(Totp::default());
                call.user = Some(user);
            }
            call
        }
        "2fa:regenerateCodes" => {
            let Some(secret) = totp.secret.clone().filter(|_| totp.enabled) else {
                return Some(done(MethodResult::Error(MeteorError::new("invalid-totp", None, None))));
            };
            let code = first_string();
            let (verdict, guard) = guarded(ctx.guard, ctx.now, |g| {
                verify_code(&secret, totp.hashed_backup.as_deref(), &code, g, ctx.settings, ctx.now) != Verified::No
            });
            if verdict.is_err() {
                return Some(Call { result: MethodResult::Nothing, user: None, guard: Some(guard) });
            }
            let (codes, hashed) = backup_codes(ctx.random);
            let mut user = ctx.user.clone();
            if let Some(t) = user.services.totp.as_mut() {
                t.hashed_backup = Some(hashed);
            }
            Call { result: MethodResult::Value(json!({"codes": codes})), user: Some(user), guard: Some(guard) }
        }
        "2fa:checkCodesRemaining" => {
            if !totp.enabled {
                return Some(done(MethodResult::Error(MeteorError::new("invalid-totp", None, None))));
            }
            done(MethodResult::Value(json!({"remaining": totp.hashed_backup.as_ref().map_or(0, Vec::len)})))
        }
        _ => return None,
    })
}

/// Twelve 8-character codes and their SHA-256 hex hashes.
fn backup_codes(random: &dyn Fn(&mut [u8])) -> (Vec<String>, Vec<String>) {
    let codes: Vec<String> = (0..BACKUP_CODES).map(|_| random_id(CODE_LEN, random)).collect();
    let hashed = codes.iter().map(|c| sha256_hex(c)).collect();
    (codes, hashed)
}

/// RFC 4648 base32 without padding (what authenticator apps read).
fn base32(bytes: &[u8]) -> String {
    match totp_rs::Secret::Raw(bytes.to_vec()).to_encoded() {
        totp_rs::Secret::Encoded(s) => s,
        totp_rs::Secret::Raw(_) => String::new(),
    }
}

/// Percent-encodes a label for an `otpauth://` URL.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests;
