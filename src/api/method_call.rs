//! `POST /api/v1/method.call/:method`: the DDP-over-REST envelope of
//! Rocket.Chat's web client, for the TOTP enrolment methods.
//!
//! Request `{"message": "<JSON {msg:'method', id, method, params}>"}`;
//! answer `{"message": "<JSON {msg:'result', id, result | error}>", "success": true}`.
//! As in upstream 7.x a method error is still HTTP 200, inside the envelope.

use serde_json::{Map, Value, json};

use crate::auth::enrolment::{self, CallContext, MeteorError, MethodResult};
use crate::auth::second_factor::{Method, Requirement};
use crate::auth::{self, AuthError, Identity, Refused, RoutePolicy, SecondFactorRefusal, StoreClaims, token};
use crate::settings::Settings;
use crate::store::Batch;
use crate::store::schema::UserDoc;
use crate::store::users::{Sessions, Users};

use super::reply::success;
use super::{ApiError, Env, Request, Response, credentials, identify};

/// `POST /api/v1/method.call/...` (the method name in the path is ignored, as upstream).
pub fn handle(req: &Request, env: &Env<'_>) -> Response {
    run(req, env).map_or_else(ApiError::into_response, success)
}

fn run(req: &Request, env: &Env<'_>) -> Result<Map<String, Value>, ApiError> {
    let creds = credentials(req);
    let caller = identify(env, &creds, &RoutePolicy::TOKEN_ONLY)?;
    let hashed_token = caller.hashed_token.clone();
    let body = req.json_object()?;
    let message = match (body.get("message"), body.len()) {
        (Some(Value::String(m)), 1) => m.clone(),
        (Some(Value::String(_)), _) => return Err(ApiError::InvalidParams("must NOT have additional properties".to_owned())),
        _ => return Err(ApiError::InvalidParams("must have required property 'message'".to_owned())),
    };
    let call: Value = serde_json::from_str(&message).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let (Some("method"), Some(id), Some(method), Some(params)) = (
        call.get("msg").and_then(Value::as_str),
        call.get("id").and_then(Value::as_str),
        call.get("method").and_then(Value::as_str),
        call.get("params").and_then(Value::as_array),
    ) else {
        return Err(ApiError::Plain("Invalid method call"));
    };

    let settings = Settings::load(env.variables)?;
    let now = (env.clock)();
    // Enrolling a factor takes the second factor the user has now (TOTP, or
    // the password when there is none): a stolen token alone never enrols
    // a factor that then satisfies ldap.syncNow's.
    let policy = if method == "2fa:enable" { ENROL } else { RoutePolicy::TOKEN_ONLY };
    let admitted = match auth::admit(env.store, Identity::Token(Box::new(caller)), &creds, &policy, &settings.gate(), now) {
        Ok(admitted) => admitted,
        Err(Refused { error: AuthError::SecondFactor { kind, method: factor, available }, .. }) => {
            return Ok(envelope(id, MethodResult::Error(second_factor_error(kind, factor, &available))));
        }
        Err(refused) => return Err(refused.into()),
    };
    let user = admitted.user;
    let users = Users::new(env.store);
    let state = users.second_factor(&user)?;
    let totp = state.totp.clone().unwrap_or_default();
    let ctx = CallContext { user: &user, totp: &totp, guard: &state.guard, settings: &settings.two_factor, now, random: env.random };
    let mut claims = StoreClaims::new(env.store, &user.id);
    let result = match enrolment::call(method, params, &ctx, &mut claims)? {
        Some(done) => {
            let mut batch = Batch::new();
            if let Some((enrolled, retired)) = &done.totp {
                batch.put_totp(&user.id, enrolled, retired)?;
            }
            if let Some(guard) = &done.guard {
                batch.put_two_factor(&user.id, guard)?;
            }
            if done.end_other_sessions {
                end_other_sessions(env, &user, &hashed_token, &mut batch)?;
            }
            batch.commit(env.store)?;
            done.result
        }
        None => MethodResult::Error(MeteorError { error: json!(404), reason: Some(format!("Method '{method}' not found")), details: None }),
    };
    Ok(envelope(id, result))
}

/// `2fa:enable`'s gate: the second factor as `ldap.syncNow` demands it.
const ENROL: RoutePolicy = RoutePolicy { rate_route: None, second_factor: Some(Requirement::Forced), permission: None };

/// The `Meteor.Error` a method protected by a second factor throws
/// (`totp-required`, `totp-invalid`, `totp-max-attempts`), which clients
/// answer by asking for the code and calling again with `x-2fa-code`.
fn second_factor_error(kind: SecondFactorRefusal, method: Method, available: &[Method]) -> MeteorError {
    let (error, reason) = match kind {
        SecondFactorRefusal::Required => ("totp-required", "TOTP Required"),
        SecondFactorRefusal::Invalid => ("totp-invalid", "TOTP Invalid"),
        // Upstream's spelling, typo included.
        SecondFactorRefusal::MaxAttempts => ("totp-max-attempts", "TOTP Maximun Failed Attempts Reached"),
    };
    let available: Vec<&str> = available.iter().map(|m| m.name()).collect();
    MeteorError::new(error, Some(reason), Some(json!({"method": method.name(), "codeGenerated": false, "availableMethods": available})))
}

/// After a new factor: every other session ends (sessions of their own,
/// and tokens with a `when` in the document; personal access tokens stay).
fn end_other_sessions(env: &Env<'_>, user: &UserDoc, current: &str, batch: &mut Batch) -> Result<(), ApiError> {
    Sessions::new(env.store).close_others(&user.id, current)?;
    let mut user = user.clone();
    if let Some(resume) = user.services.resume.as_mut() {
        let before = resume.login_tokens.len();
        resume.login_tokens.retain(|t| t.hashed_token == current || token::issued_at(t).is_none());
        if resume.login_tokens.len() != before {
            batch.put_user(&user)?;
        }
    }
    Ok(())
}

/// The DDP result envelope, as `{"message": "<JSON>"}`.
fn envelope(id: &str, result: MethodResult) -> Map<String, Value> {
    let mut envelope = Map::new();
    envelope.insert("msg".to_owned(), json!("result"));
    envelope.insert("id".to_owned(), json!(id));
    match result {
        MethodResult::Value(v) => {
            envelope.insert("result".to_owned(), v);
        }
        MethodResult::Nothing => {}
        MethodResult::Error(e) => {
            envelope.insert("error".to_owned(), e.to_json());
        }
    }
    let mut body = Map::new();
    body.insert("message".to_owned(), json!(Value::Object(envelope).to_string()));
    body
}
