//! `POST /api/v1/method.call/:method`: the DDP-over-REST envelope of
//! Rocket.Chat's web client, for the TOTP enrolment methods.
//!
//! Request `{"message": "<JSON {msg:'method', id, method, params}>"}`;
//! answer `{"message": "<JSON {msg:'result', id, result | error}>", "success": true}`.
//! As in upstream 7.x a method error is still HTTP 200, inside the envelope.

use serde_json::{Map, Value, json};

use crate::auth::enrolment::{self, CallContext, MeteorError, MethodResult};
use crate::auth::{self, Identity, RoutePolicy, token};
use crate::settings::Settings;
use crate::store::Batch;
use crate::store::users::Users;

use super::reply::success;
use super::{ApiError, Env, Request, Response, credentials};

/// `POST /api/v1/method.call/...` (the method name in the path is ignored, as upstream).
pub fn handle(req: &Request, env: &Env<'_>) -> Response {
    run(req, env).map_or_else(ApiError::into_response, success)
}

fn run(req: &Request, env: &Env<'_>) -> Result<Map<String, Value>, ApiError> {
    let creds = credentials(req);
    let caller = auth::identify(env.store, &creds, &RoutePolicy::TOKEN_ONLY)?;
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
    let admitted = auth::admit(env.store, Identity::Token(Box::new(caller)), &creds, &RoutePolicy::TOKEN_ONLY, &settings, now)?;
    let guard = Users::new(env.store).two_factor(&admitted.user.id)?;
    let current = token::hash_token(creds.token.unwrap_or_default());
    let ctx = CallContext {
        user: &admitted.user,
        guard: &guard,
        current_token_hash: &current,
        settings: &settings.two_factor,
        now,
        random: env.random,
    };
    let outcome = enrolment::call(method, params, &ctx);
    let result = match outcome {
        Some(done) => {
            let mut batch = Batch::new();
            if let Some(updated) = &done.user {
                batch.put_user(updated)?;
            }
            if let Some(g) = done.guard.as_ref().filter(|g| **g != guard) {
                batch.put_two_factor(&admitted.user.id, g)?;
            }
            batch.commit(env.store)?;
            done.result
        }
        None => MethodResult::Error(MeteorError { error: json!(404), reason: Some(format!("Method '{method}' not found")), details: None }),
    };

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
    Ok(body)
}
