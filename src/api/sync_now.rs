//! `POST /api/v1/ldap.syncNow`: the gate, the two switches, then the sync.

use crate::auth::second_factor::Requirement;
use crate::auth::{RoutePolicy, permission};
use crate::settings::{self, Settings};
use crate::sync::{self, RunContext};

use super::reply::Reply;
use super::{ApiError, Env, Request, Response, behind_gate};

const POLICY: RoutePolicy = RoutePolicy {
    rate_route: Some("/api/v1/ldap.syncNowpost"),
    second_factor: Some(Requirement::Forced),
    permission: Some(permission::SYNC_AUTH_SERVICES_USERS),
};

/// Answers the route; the request body is ignored, as upstream does.
/// Upstream's order: the gate (token, rate limiter, second factor,
/// permission) with only its own settings, then `LDAP_Enable`, then the
/// background-sync switch, and only then the rest of the settings: a caller
/// the gate refuses learns nothing of the configuration, and a bad setting
/// does not hide `LDAP_disabled`.
pub fn handle(req: &Request, env: &Env<'_>) -> Response {
    behind_gate(req, env, &POLICY, || sync_now(env).map_or_else(ApiError::into_response, Reply::into_response))
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
