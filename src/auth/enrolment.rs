//! TOTP enrolment: the `2fa:*` Meteor methods the web client calls through
//! `method.call` (upstream `apps/meteor/app/2fa/server/methods/*.ts`). Time
//! and randomness come in, the TOTP state to store goes out; the counters
//! come through [`Claims`].
//!
//! Every code these methods accept goes through the same guard as the
//! second factor (replay refused, lockout after repeated failures).
//! `2fa:enable` itself is behind the gate's second factor (see
//! `api::method_call`): a token alone never enrols a factor.

use serde_json::{Map, Value, json};

use crate::settings::TwoFactor;
use crate::store::StoreError;
use crate::store::ids::random_id;
use crate::store::schema::{Date, Totp, TwoFactorGuard, UserDoc};

use super::second_factor::{Claims, guarded, verify_code};
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
#[derive(Debug, Clone, PartialEq, Default)]
pub enum MethodResult {
    Value(Value),
    /// `undefined`: the envelope has no `result` key.
    #[default]
    Nothing,
    Error(MeteorError),
}

/// What a call needs besides its parameters.
pub struct CallContext<'a> {
    pub user: &'a UserDoc,
    /// The user's TOTP enrolment (default: none).
    pub totp: &'a Totp,
    pub guard: &'a TwoFactorGuard,
    pub settings: &'a TwoFactor,
    pub now: Date,
    pub random: &'a dyn Fn(&mut [u8]),
}

/// The answer plus what to store.
#[derive(Debug, Default)]
pub struct Call {
    pub result: MethodResult,
    /// The new TOTP enrolment, and the backup codes (hashed) it retires.
    pub totp: Option<(Totp, Vec<String>)>,
    /// The lock to store when it changed.
    pub guard: Option<TwoFactorGuard>,
    /// A new factor was enrolled: every other login session ends.
    pub end_other_sessions: bool,
}

/// Runs the method `name`; `Ok(None)` when it is not one of ours.
pub fn call(name: &str, params: &[Value], ctx: &CallContext<'_>, claims: &mut dyn Claims) -> Result<Option<Call>, StoreError> {
    let done = |result| Call { result, ..Call::default() };
    let invalid_user = |method: &str| MeteorError::new("error-invalid-user", Some("Invalid user"), Some(json!({"method": method})));
    let totp = ctx.totp;
    let first_string = || params.first().and_then(Value::as_str).unwrap_or_default().to_owned();
    let retired = || totp.hashed_backup.clone().unwrap_or_default();
    Ok(Some(match name {
        "2fa:enable" => {
            let Some(username) = ctx.user.username.as_deref() else {
                return Ok(Some(done(MethodResult::Error(invalid_user(name)))));
            };
            if ctx.user.emails.iter().any(|e| !e.verified) {
                let reason = "You need to verify your emails before setting up 2FA";
                return Ok(Some(done(MethodResult::Error(MeteorError::new(
                    "error-invalid-user",
                    Some(reason),
                    Some(json!({"method": name})),
                )))));
            }
            // Replacing a factor in force takes disabling it first (with a code of it).
            if totp.enabled {
                return Ok(Some(done(MethodResult::Error(MeteorError::new("error-2fa-already-enabled", None, None)))));
            }
            let mut bytes = [0u8; SECRET_BYTES];
            (ctx.random)(&mut bytes);
            let secret = base32(&bytes);
            let mut pending = totp.clone();
            pending.extra.insert("tempSecret".to_owned(), json!(secret));
            let url = format!("otpauth://totp/Rocket.Chat%3A{}?secret={secret}", url_encode(username));
            Call {
                result: MethodResult::Value(json!({"secret": secret, "url": url})),
                totp: Some((pending, Vec::new())),
                ..Call::default()
            }
        }
        "2fa:validateTempToken" => {
            let Some(temp) = totp.extra.get("tempSecret").and_then(Value::as_str).map(str::to_owned) else {
                return Ok(Some(done(MethodResult::Error(MeteorError::new("invalid-totp", None, None)))));
            };
            let code = first_string();
            let candidate = Totp { enabled: true, secret: Some(temp), ..Totp::default() };
            let (verdict, guard) = guarded(ctx.guard, ctx.now, claims, |c| verify_code(&candidate, &code, ctx.settings, ctx.now, c))?;
            if verdict.is_err() {
                return Ok(Some(Call {
                    result: MethodResult::Error(MeteorError::new("invalid-totp", None, None)),
                    guard,
                    ..Call::default()
                }));
            }
            let (codes, hashed) = backup_codes(ctx.random);
            let enrolled = Totp { hashed_backup: Some(hashed), ..candidate };
            Call {
                result: MethodResult::Value(json!({"codes": codes})),
                totp: Some((enrolled, retired())),
                guard,
                end_other_sessions: true,
            }
        }
        "2fa:disable" => {
            if !totp.enabled || totp.secret.is_none() {
                return Ok(Some(done(MethodResult::Value(json!(false)))));
            }
            let code = first_string();
            let (verdict, guard) = guarded(ctx.guard, ctx.now, claims, |c| verify_code(totp, &code, ctx.settings, ctx.now, c))?;
            let mut call = Call { result: MethodResult::Value(json!(verdict.is_ok())), guard, ..Call::default() };
            if verdict.is_ok() {
                call.totp = Some((Totp::default(), retired()));
            }
            call
        }
        "2fa:regenerateCodes" => {
            if !totp.enabled || totp.secret.is_none() {
                return Ok(Some(done(MethodResult::Error(MeteorError::new("invalid-totp", None, None)))));
            }
            let code = first_string();
            let (verdict, guard) = guarded(ctx.guard, ctx.now, claims, |c| verify_code(totp, &code, ctx.settings, ctx.now, c))?;
            if verdict.is_err() {
                return Ok(Some(Call { result: MethodResult::Nothing, guard, ..Call::default() }));
            }
            let (codes, hashed) = backup_codes(ctx.random);
            let renewed = Totp { hashed_backup: Some(hashed), ..totp.clone() };
            Call { result: MethodResult::Value(json!({"codes": codes})), totp: Some((renewed, retired())), guard, ..Call::default() }
        }
        "2fa:checkCodesRemaining" => {
            if !totp.enabled {
                return Ok(Some(done(MethodResult::Error(MeteorError::new("invalid-totp", None, None)))));
            }
            let hashed = retired();
            let remaining = hashed.len() - claims.used_backup_codes(&hashed)?.min(hashed.len());
            done(MethodResult::Value(json!({"remaining": remaining})))
        }
        _ => return Ok(None),
    }))
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

/// Percent-encodes text for a URL (an `otpauth://` label; the fuzz harness's query strings).
pub(crate) fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests;
