//! `POST /api/v1/ldap.syncNow`: the gate, the two switches, then the sync.

use crate::auth::second_factor::Requirement;
use crate::auth::{self, Identity, RoutePolicy, permission};
use crate::settings::{self, GateSettings, Settings};
use crate::sync::{self, RunContext};

use super::reply::Reply;
use super::{ApiError, Env, Request, Response, credentials, identify};

const POLICY: RoutePolicy = RoutePolicy {
    rate_route: Some("/api/v1/ldap.syncNowpost"),
    second_factor: Some(Requirement::Forced),
    permission: Some(permission::SYNC_AUTH_SERVICES_USERS),
};

/// Answers the route; the request body is ignored, as upstream does.
pub fn handle(req: &Request, env: &Env<'_>) -> Response {
    run(req, env).unwrap_or_else(ApiError::into_response)
}

/// Upstream's order: the gate (token, rate limiter, second factor,
/// permission) with only its own settings, then `LDAP_Enable`, then the
/// background-sync switch, and only then the rest of the settings: a caller
/// the gate refuses learns nothing of the configuration, and a bad setting
/// does not hide `LDAP_disabled`.
fn run(req: &Request, env: &Env<'_>) -> Result<Response, ApiError> {
    let creds = credentials(req);
    let caller = identify(env, &creds, &POLICY)?;
    let gate = GateSettings::load(env.variables)?;
    let admitted = auth::admit(env.store, Identity::Token(Box::new(caller)), &creds, &POLICY, &gate, (env.clock)())?;
    let answer = sync_now(env).map_or_else(ApiError::into_response, Reply::into_response);
    Ok(answer.with_rate_limit(admitted.rate_limit))
}

fn sync_now(env: &Env<'_>) -> Result<Reply, ApiError> {
    if !settings::ldap_enabled(env.variables)? {
        return Err(ApiError::LdapDisabled);
    }
    if !settings::background_sync(env.variables)? {
        return Err(ApiError::BackgroundSyncDisabled);
    }
    let settings = Settings::load(env.variables)?;
    // Either this call ran the sync, or another run holds the lease: then
    // "Sync_in_progress" is literally true (the other run's id is logged).
    sync::run(env.store, &settings, &mut RunContext::new(env.clock, env.random))?;
    Ok(Reply::SyncInProgress)
}
