//! One run of the directory scan: search, then per page map → load → plan →
//! write, and a report stored and logged whatever the outcome.

use crate::ldap::filter;
use crate::ldap::{DirectoryEntry, Session};
use crate::settings::Settings;
use crate::store::schema::Date;
use crate::store::users::{UserWrites, Users};
use crate::store::{Batch, KvStore};

use super::plan::{self, PlanContext};
use super::report::{RunOutcome, SyncReport};
use super::search::{Directory, user_search};
use super::{SyncError, map};

/// The clock of a run (read per page and at the end, for the report).
pub struct RunContext<'a> {
    pub clock: &'a dyn Fn() -> Date,
}

/// Connects to the configured server and runs the sync. The report is
/// stored and logged whatever the outcome.
pub fn run(store: &dyn KvStore, settings: &Settings, ctx: &mut RunContext<'_>) -> Result<SyncReport, SyncError> {
    match Session::open(&settings.connection) {
        Ok(mut session) => {
            let result = run_with(store, settings, &mut session, ctx);
            session.close();
            result
        }
        Err(e) => {
            let started = (ctx.clock)();
            let report = SyncReport { started_at: Some(started), ..SyncReport::default() };
            finish(store, report, Err(e.into()), started, ctx.clock)
        }
    }
}

/// The scan against any [`Directory`]: [`run`] without the connection.
pub fn run_with(
    store: &dyn KvStore,
    settings: &Settings,
    directory: &mut dyn Directory,
    ctx: &mut RunContext<'_>,
) -> Result<SyncReport, SyncError> {
    let started = (ctx.clock)();
    let mut report = SyncReport { started_at: Some(started), ..SyncReport::default() };
    let result = scan(store, settings, directory, ctx, &mut report);
    finish(store, report, result, started, ctx.clock)
}

fn finish(
    store: &dyn KvStore,
    mut report: SyncReport,
    result: Result<(), SyncError>,
    started: Date,
    clock: &dyn Fn() -> Date,
) -> Result<SyncReport, SyncError> {
    let finished = clock();
    report.finished_at = Some(finished);
    report.duration_ms = finished.millis - started.millis;
    report.outcome = if result.is_ok() { RunOutcome::Success } else { RunOutcome::Failed };
    report.error = result.as_ref().err().map(ToString::to_string);
    eprintln!("{}", report.summary());
    let mut batch = Batch::new();
    let stored = batch.put_report(&report).and_then(|()| batch.commit(store));
    result?;
    stored?;
    Ok(report)
}

/// Builds the search (spec §3.3) and applies it page by page.
fn scan(
    store: &dyn KvStore,
    settings: &Settings,
    directory: &mut dyn Directory,
    ctx: &mut RunContext<'_>,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let spec = user_search(settings, None)?;
    eprintln!(
        "ldap-sync: searching base={:?} filter={} page_size={}",
        spec.base,
        filter::to_string(&spec.filter),
        spec.page_size.map_or(0, |n| n.get())
    );
    let mut first_page = true;
    // Counted page by page, so a run that fails mid-search still reports what it wrote.
    directory.search(spec, &mut |entries| {
        report.pages += 1;
        report.entries += entries.len() as u64;
        let written = apply_page(store, settings, entries, first_page, ctx, report);
        first_page = false;
        written
    })?;
    Ok(())
}

/// One page: map, load what it touches (three `get-many`), plan, and write
/// (one `set-many`, one `delete-many`).
fn apply_page(
    store: &dyn KvStore,
    settings: &Settings,
    entries: Vec<DirectoryEntry>,
    first_page: bool,
    ctx: &mut RunContext<'_>,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let mut users = Vec::with_capacity(entries.len());
    for entry in &entries {
        match map::map_entry(entry, &settings.search, &settings.accounts) {
            Ok(user) => users.push(user),
            Err(problem) => report.fail(entry.dn.as_str(), &problem.to_string()),
        }
    }
    let mut loaded = Users::new(store).load(plan::keys_to_load(&users), plan::candidate_ids(&users))?;
    let ctx = PlanContext {
        switches: settings.sync,
        accounts: &settings.accounts,
        merge_existing_users: settings.search.merge_existing_users,
        now: (ctx.clock)(),
    };
    let mut writes = UserWrites::default();
    for user in users {
        match plan::plan_one(&user, &mut loaded, &ctx, &mut writes) {
            Ok(planned) => report.count(planned.change, user.dn.as_str()),
            Err(problem) => report.fail(user.dn.as_str(), &problem.to_string()),
        }
    }
    let mut batch = Batch::new();
    if first_page {
        batch.put_schema_version()?;
    }
    batch.put_users(&writes)?;
    batch.commit(store)?;
    Ok(())
}
