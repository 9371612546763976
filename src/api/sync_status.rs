//! `GET /api/v1/ldap.syncStatus?count=N`, our extension: the run in
//! progress, if any, and the newest reports of the history. Behind the same
//! gate as `ldap.syncNow` (token, rate limiter, second factor, permission):
//! a report names users and DNs. Read-only.

use serde_json::{Map, Value, json};

use crate::auth::second_factor::Requirement;
use crate::auth::{RoutePolicy, permission};
use crate::store::runs::{self, REPORT_HISTORY};
use crate::sync::SyncReport;

use super::reply::success;
use super::{ApiError, Env, Request, Response, behind_gate};

const POLICY: RoutePolicy = RoutePolicy {
    rate_route: Some("/api/v1/ldap.syncStatusget"),
    second_factor: Some(Requirement::Forced),
    permission: Some(permission::SYNC_AUTH_SERVICES_USERS),
};

/// Reports answered when `count` is not given.
const DEFAULT_COUNT: usize = 10;
/// Entry problems shown per report (the report keeps up to 1,000; the
/// `problemsTotal` beside them counts them all).
const PROBLEMS_SHOWN: usize = 20;

/// Answers the route.
pub fn handle(req: &Request, env: &Env<'_>) -> Response {
    behind_gate(req, env, &POLICY, || status(req, env).unwrap_or_else(ApiError::into_response))
}

fn status(req: &Request, env: &Env<'_>) -> Result<Response, ApiError> {
    let count = parse_count(req.query_param("count").as_deref())?;
    let in_progress = runs::run_in_progress(env.store, (env.clock)())?;
    let (reports, total) = runs::recent_reports::<SyncReport>(env.store, count)?;
    let mut body = Map::new();
    body.insert("inProgress".to_owned(), in_progress.map_or(Value::Null, |run| json!(run)));
    body.insert("reports".to_owned(), Value::Array(reports.iter().map(shown).collect()));
    body.insert("total".to_owned(), json!(total));
    Ok(success(body))
}

/// `count`: an integer from 1 to the history's size; absent = 10.
fn parse_count(raw: Option<&str>) -> Result<usize, ApiError> {
    let Some(raw) = raw else { return Ok(DEFAULT_COUNT) };
    let max = REPORT_HISTORY as usize;
    match raw.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) && !raw.starts_with('+') => Ok(n),
        _ => Err(ApiError::InvalidParams(format!("count must be an integer from 1 to {max}"))),
    }
}

/// A report as the route shows it: its entry problems cut to
/// [`PROBLEMS_SHOWN`], with `problemsTotal` counting every skipped and
/// failed entry.
fn shown(report: &SyncReport) -> Value {
    let mut value = json!(report);
    if let Some(problems) = value.get_mut("problems").and_then(Value::as_array_mut) {
        problems.truncate(PROBLEMS_SHOWN);
    }
    if let Some(object) = value.as_object_mut() {
        object.insert("problemsTotal".to_owned(), json!(report.skipped + report.failed));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_is_one_to_the_history_size() {
        assert_eq!(parse_count(None).ok(), Some(10));
        assert_eq!(parse_count(Some("1")).ok(), Some(1));
        assert_eq!(parse_count(Some("20")).ok(), Some(20));
        for bad in ["0", "21", "-1", "+3", "x", "", "2.5"] {
            assert!(
                matches!(parse_count(Some(bad)), Err(ApiError::InvalidParams(m)) if m == "count must be an integer from 1 to 20"),
                "{bad}"
            );
        }
    }

    #[test]
    fn problems_are_cut_and_counted() {
        let problems = (0..30).map(|i| crate::sync::report::Problem { dn: format!("uid=u{i}"), reason: "x".into() }).collect();
        let report = SyncReport { skipped: 25, failed: 5, problems, ..SyncReport::default() };
        let v = shown(&report);
        assert_eq!(v["problems"].as_array().map(Vec::len), Some(20));
        assert_eq!(v["problemsTotal"], json!(30));
    }
}
