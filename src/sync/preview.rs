//! `ldap.syncPreview`'s dry run: the real sync over [`DryRun`], which keeps
//! every write to itself, then the plan read off what the run would have
//! written. The plan is stored (`sync-preview`), nothing else is.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::settings::Settings;
use crate::store::dry_run::{DryRun, UserChange};
use crate::store::schema::Date;
use crate::store::{KvStore, StoreError, runs};

use super::report::{Breaker, RunOutcome, SyncReport};
use super::{RunContext, SyncError, run};

/// Users named per list of the sample.
pub const SAMPLE: usize = 20;

/// What a sync would do now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// The dry run's id (not a real run's).
    pub run_id: String,
    pub made_at: Option<Date>,
    /// How the dry run ended: `"stopped"` when the time budget ran out (then
    /// the counts cover only the pages read).
    pub outcome: RunOutcome,
    /// The read was complete: a sync now would do exactly this.
    pub complete: bool,
    pub mode: String,
    pub create: u64,
    pub update: u64,
    pub deactivate: u64,
    pub reactivate: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub failed: u64,
    pub roles_added: u64,
    pub roles_removed: u64,
    /// The circuit breaker would trip: how many, the limit, some names.
    pub breaker: Option<Breaker>,
    /// Why missing users would not be looked for, if they would not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_users_not_checked: Option<String>,
    pub sample: Sample,
}

/// Up to [`SAMPLE`] users of each kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub create: Vec<String>,
    pub update: Vec<FieldChanges>,
    pub deactivate: Vec<String>,
    pub reactivate: Vec<String>,
}

/// A user an update would change, and which fields (`services` and
/// `customFields` one level down, e.g. `services.ldap`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChanges {
    pub username: String,
    pub fields: Vec<String>,
}

/// Why there is no preview.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// A real run holds the lease; its writes would change the plan.
    #[error("a sync is in progress")]
    InProgress,
    #[error(transparent)]
    Sync(#[from] SyncError),
}

impl From<StoreError> for PreviewError {
    fn from(e: StoreError) -> Self {
        PreviewError::Sync(e.into())
    }
}

/// Runs the sync dry over `store` and stores the plan.
pub fn preview(store: &dyn KvStore, settings: &Settings, ctx: &mut RunContext<'_>) -> Result<Preview, PreviewError> {
    let dry = DryRun::new(store);
    crate::log::set_dry_run(true);
    let result = run(&dry, settings, ctx);
    crate::log::set_dry_run(false);
    let Some(report) = dry.last_report::<SyncReport>()? else {
        // No report: the lease was held by a real run (or the run failed
        // before it could write one, which `result` says).
        result?;
        return Err(PreviewError::InProgress);
    };
    match result {
        Ok(()) | Err(SyncError::BudgetReached { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let plan = plan(&report, &dry.user_changes()?);
    runs::save_preview(store, &plan)?;
    Ok(plan)
}

/// The plan from the dry run's report and the documents it wrote.
fn plan(report: &SyncReport, changes: &[UserChange]) -> Preview {
    let username = |doc: &Value| doc.get("username").and_then(Value::as_str).unwrap_or_default().to_owned();
    let listed = |names: &[String], doc: &Value| names.iter().any(|n| *n == username(doc));
    let mut create: Vec<String> = changes.iter().filter(|c| c.before.is_none()).map(|c| username(&c.after)).collect();
    create.sort();
    let mut update: Vec<FieldChanges> = changes
        .iter()
        .filter_map(|c| Some((c.before.as_ref()?, &c.after)))
        .filter(|(_, after)| !listed(&report.deactivations, after) && !listed(&report.reactivations, after))
        .map(|(before, after)| FieldChanges { username: username(after), fields: changed_fields(before, after) })
        .filter(|c| !c.fields.is_empty())
        .collect();
    update.sort_by(|a, b| a.username.cmp(&b.username));
    let offboarding = report.offboarding.as_ref();
    let roles = report.roles.as_ref();
    Preview {
        run_id: report.run_id.clone(),
        made_at: report.started_at,
        outcome: report.outcome,
        complete: report.fully_in_sync,
        mode: report.mode.clone(),
        create: report.created,
        update: report.updated,
        deactivate: report.deactivated,
        reactivate: report.reactivated,
        unchanged: report.unchanged,
        skipped: report.skipped,
        failed: report.failed,
        roles_added: roles.map_or(0, |r| r.added),
        roles_removed: roles.map_or(0, |r| r.removed),
        breaker: offboarding.and_then(|o| o.breaker.clone()),
        missing_users_not_checked: offboarding.and_then(|o| o.missing_users_not_checked.clone()),
        sample: Sample {
            create: create.into_iter().take(SAMPLE).collect(),
            update: update.into_iter().take(SAMPLE).collect(),
            deactivate: report.deactivations.iter().take(SAMPLE).cloned().collect(),
            reactivate: report.reactivations.iter().take(SAMPLE).cloned().collect(),
        },
    }
}

/// Bookkeeping that changes with every write, not a change of the user.
const NOT_A_CHANGE: [&str; 1] = ["_updatedAt"];

/// The fields that differ, sorted; `services` and `customFields` are
/// compared one level down.
fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (b, a) = (before.as_object().unwrap_or(&empty), after.as_object().unwrap_or(&empty));
    let mut fields = Vec::new();
    let mut names: Vec<&String> = b.keys().chain(a.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        if NOT_A_CHANGE.contains(&name.as_str()) || b.get(name) == a.get(name) {
            continue;
        }
        match (name.as_str(), b.get(name).and_then(Value::as_object), a.get(name).and_then(Value::as_object)) {
            ("services" | "customFields", Some(bi), Some(ai)) => {
                let mut inner: Vec<&String> = bi.keys().chain(ai.keys()).collect();
                inner.sort();
                inner.dedup();
                fields.extend(inner.into_iter().filter(|k| bi.get(*k) != ai.get(*k)).map(|k| format!("{name}.{k}")));
            }
            _ => fields.push(name.clone()),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_fields_ignore_bookkeeping_and_go_into_services() {
        let before =
            json!({"name": "A", "_updatedAt": 1, "services": {"ldap": {"id": "1"}, "password": {"bcrypt": "x"}}, "roles": ["user"]});
        let after = json!({"name": "B", "_updatedAt": 2, "services": {"ldap": {"id": "2"}, "password": {"bcrypt": "x"}}, "roles": ["user"], "emails": []});
        assert_eq!(changed_fields(&before, &after), ["emails", "name", "services.ldap"]);
    }

    #[test]
    fn the_plan_takes_counts_from_the_report_and_names_from_the_documents() {
        let report = SyncReport {
            run_id: "r".into(),
            created: 1,
            updated: 1,
            deactivated: 1,
            deactivations: vec!["carol".into()],
            fully_in_sync: true,
            ..SyncReport::default()
        };
        let changes = [
            UserChange { before: None, after: json!({"username": "alice"}) },
            UserChange { before: Some(json!({"username": "bob", "name": "B"})), after: json!({"username": "bob", "name": "Bob"}) },
            UserChange { before: Some(json!({"username": "carol", "active": true})), after: json!({"username": "carol", "active": false}) },
        ];
        let p = plan(&report, &changes);
        assert_eq!((p.create, p.update, p.deactivate, p.complete), (1, 1, 1, true));
        assert_eq!(p.sample.create, ["alice"]);
        assert_eq!(p.sample.update, [FieldChanges { username: "bob".into(), fields: vec!["name".into()] }]);
        assert_eq!(p.sample.deactivate, ["carol"]);
    }
}
