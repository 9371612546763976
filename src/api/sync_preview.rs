//! `POST /api/v1/ldap.syncPreview`, our extension: a dry run of
//! `ldap.syncNow`. The same gate and `LDAP_Enable`; it reads the directory,
//! plans every change with the sync's own code (`sync::preview`), stores
//! the plan and writes nothing else. The request body is ignored.

use serde_json::{Map, json};

use crate::auth::second_factor::Requirement;
use crate::auth::{RoutePolicy, permission};
use crate::settings::{self, Settings};
use crate::sync::RunContext;
use crate::sync::preview::{PreviewError, preview};

use super::reply::success;
use super::{ApiError, Env, Request, Response, behind_gate};

const POLICY: RoutePolicy = RoutePolicy {
    rate_route: Some("/api/v1/ldap.syncPreviewpost"),
    second_factor: Some(Requirement::Forced),
    permission: Some(permission::SYNC_AUTH_SERVICES_USERS),
};

/// Answers the route.
pub fn handle(req: &Request, env: &Env<'_>) -> Response {
    behind_gate(req, env, &POLICY, || dry_run(env).unwrap_or_else(ApiError::into_response))
}

fn dry_run(env: &Env<'_>) -> Result<Response, ApiError> {
    if !settings::ldap_enabled(env.variables)? {
        return Err(ApiError::LdapDisabled);
    }
    let settings = Settings::load(env.variables)?;
    match preview(env.store, &settings, &mut RunContext::new(env.clock, env.random)) {
        Ok(plan) => {
            let mut body = Map::new();
            body.insert("preview".to_owned(), json!(plan));
            Ok(success(body))
        }
        Err(PreviewError::InProgress) => Err(ApiError::Plain("A sync is in progress; preview again when it has finished")),
        Err(PreviewError::Sync(e)) => Err(ApiError::Sync(e)),
    }
}
