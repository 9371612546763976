//! `POST /api/v1/ldap.syncNow`: the gate, the two switches, then the sync.

use crate::auth::{self, RoutePolicy, permission};
use crate::settings::Settings;
use crate::sync::{self, RunContext};

use super::reply::Reply;
use super::{ApiError, Env, Request, Response, credentials};

const POLICY: RoutePolicy = RoutePolicy { rate_key: "/api/v1/ldap.syncNowpost", permission: permission::SYNC_AUTH_SERVICES_USERS };

/// Answers the route; the request body is ignored, as upstream does.
pub fn handle(req: &Request, env: &Env<'_>) -> Response {
    let mut headers = Vec::new();
    let mut response = match run(req, env, &mut headers) {
        Ok(reply) => reply.into_response(),
        Err(error) => error.into_response(),
    };
    response.headers.extend(headers);
    response
}

fn run(req: &Request, env: &Env<'_>, headers: &mut Vec<(&'static str, String)>) -> Result<Reply, ApiError> {
    let creds = credentials(req);
    let caller = auth::authenticate(env.store, &creds, &POLICY)?;
    let settings = Settings::load(env.variables)?;
    auth::admit(env.store, caller, &creds, &POLICY, &settings, (env.clock)(), headers)?;
    if !settings.ldap_enabled {
        return Err(ApiError::LdapDisabled);
    }
    if !settings.sync.background_sync {
        return Err(ApiError::BackgroundSyncDisabled);
    }
    sync::run(env.store, &settings, &mut RunContext { clock: env.clock })?;
    Ok(Reply::SyncInProgress)
}
