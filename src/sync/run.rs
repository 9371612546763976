//! One run of the directory scan: take the lease, search, then per page
//! map → load → plan → write, then offboarding (deactivations, decided only
//! at the end of a complete read and under the circuit breaker), and a
//! report stored and logged whatever the outcome.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::ldap::filter;
use crate::ldap::{DirectoryEntry, SearchEnd, SearchSpec, Session};
use crate::settings::Settings;
use crate::store::buffer::{FlushLimits, WriteBuffer};
use crate::store::ids::random_id;
use crate::store::runs::{self, Lease, LeaseAnswer};
use crate::store::schema::{Date, UserDoc};
use crate::store::users::{Fingerprint, IndexKey, Loaded, MarkKey, Sessions, SyncMark, UserWrites, Users};
use crate::store::{Batch, KvStore, LdapId, UserId};

use super::dirsync;
use super::groups::GroupFacts;
use super::map::{EntryProblem, RcUser};
use super::phases::{Stopwatch, Timed};
use super::plan::{self, Change, PlanContext};
use super::refresh;
use super::report::{Breaker, RolesReport, RunOutcome, SyncReport};
use super::search::{Directory, user_search};
use super::timestamp;
use super::{SyncError, map};

/// Entries planned together (see [`apply_page`]).
const PLAN_SLICE: usize = 250;
/// Why an entry outside the group filter's group is skipped.
const NOT_IN_FILTER_GROUP: &str = "not a member of the group filter's group (ldap_group_filter_*)";
/// Users a deactivation writes per batch.
const DEACTIVATION_BATCH: usize = 500;
/// Usernames a tripped breaker names in the report.
const BREAKER_SAMPLE: usize = 20;
/// A lease lasts one LDAP operation's deadline (4 × `ldap_timeout`) plus a
/// minute: a live run renews it at least once per page.
const LEASE_MARGIN_MS: i64 = 60_000;

/// The clock and randomness of a run, and what it read of groups.
pub struct RunContext<'a> {
    pub clock: &'a dyn Fn() -> Date,
    pub random: &'a dyn Fn(&mut [u8]),
    /// Read at the start of a run (and of a directory login).
    pub groups: GroupFacts,
}

impl<'a> RunContext<'a> {
    /// A context that knows no groups yet.
    pub fn new(clock: &'a dyn Fn() -> Date, random: &'a dyn Fn(&mut [u8])) -> Self {
        Self { clock, random, groups: GroupFacts::default() }
    }
}

/// Takes the lease, connects to the configured server and runs the sync.
/// The report is stored and logged whatever the outcome. When another run
/// holds the lease, nothing starts (its id is logged) and this is `Ok`.
pub fn run(store: &dyn KvStore, settings: &Settings, ctx: &mut RunContext<'_>) -> Result<(), SyncError> {
    let run_id = random_id(12, ctx.random);
    let ttl_ms = 4 * i64::from(settings.connection.timeout_ms) + LEASE_MARGIN_MS;
    let lease = match runs::take_lease(store, &run_id, (ctx.clock)(), ttl_ms)? {
        LeaseAnswer::Taken(lease) => lease,
        LeaseAnswer::Held(other) => {
            crate::log::info("a sync is already in progress; not starting another", &[("otherRunId", serde_json::json!(other))]);
            return Ok(());
        }
    };
    crate::log::start_run(&run_id);
    // The session ends at the run timeout or the time budget, whichever
    // comes first; pages stop being started a little before the budget.
    let limit_ms = settings.sync.run_timeout_ms.min(settings.sync.time_budget_ms);
    let deadline = Instant::now() + Duration::from_millis(u64::from(limit_ms));
    let result = match Session::open_until(&settings.connection, deadline) {
        Ok(mut session) => {
            let result = run_with(store, settings, &mut session, Some(&lease), ctx);
            session.close();
            result
        }
        Err(e) => {
            let started = (ctx.clock)();
            let report = SyncReport { run_id: run_id.clone(), started_at: Some(started), ..SyncReport::default() };
            finish(store, report, Err(e.into()), started, ctx.clock)
        }
    };
    crate::log::end_run();
    lease.release(store, (ctx.clock)())?;
    result.map(|_| ())
}

/// The scan against any [`Directory`]: [`run`] without the connection. With
/// a `lease`, the run renews it per page and deactivates only if it still
/// holds it at the end.
pub fn run_with(
    store: &dyn KvStore,
    settings: &Settings,
    directory: &mut dyn Directory,
    lease: Option<&Lease>,
    ctx: &mut RunContext<'_>,
) -> Result<SyncReport, SyncError> {
    let started = (ctx.clock)();
    let budget = Budget::starting_now(settings.sync.time_budget_ms);
    let run_id = lease.map(|l| l.run_id().to_owned()).unwrap_or_default();
    let mut report = SyncReport { run_id, started_at: Some(started), ..SyncReport::default() };
    if let Some(lease) = lease {
        lease.set_progress("groups", 0);
    }
    let mode = refresh::choose_mode(settings, directory, &mut report).and_then(|mode| {
        let sw = Stopwatch::start();
        ctx.groups = GroupFacts::read(directory, settings)?;
        sw.add_to(&mut report.phases.groups_us);
        if let Some(roles) = &settings.groups.roles {
            let unknown = super::groups::unknown_roles(roles);
            if !unknown.is_empty() {
                crate::log::warn(
                    "ldap_sync_user_data_rolesmap names roles that do not exist (ignored)",
                    &[("roles", serde_json::json!(unknown))],
                );
            }
            report.roles = Some(RolesReport { unknown, ..RolesReport::default() });
        }
        Ok(mode)
    });
    let result = match mode {
        Ok(refresh::Mode::Full) => {
            report.mode = "full".to_owned();
            scan(store, settings, directory, lease, ctx, &budget, &mut report)
        }
        Ok(refresh::Mode::Syncrepl) => {
            report.mode = "syncrepl".to_owned();
            refresh::refresh(store, settings, directory, lease, ctx, &budget, &mut report)
        }
        Ok(refresh::Mode::Dirsync) => {
            report.mode = "dirsync".to_owned();
            dirsync::run(store, settings, directory, lease, ctx, &budget, &mut report)
        }
        Ok(refresh::Mode::Timestamp) => {
            report.mode = "timestamp".to_owned();
            timestamp::run(store, settings, directory, lease, ctx, &budget, &mut report)
        }
        Err(e) => Err(e),
    };
    // The session's deadline is the budget too, when it comes first.
    let result = match result {
        Err(SyncError::Ldap(crate::ldap::LdapError::RunDeadline { .. }))
            if settings.sync.time_budget_ms <= settings.sync.run_timeout_ms =>
        {
            Err(SyncError::BudgetReached { budget_ms: settings.sync.time_budget_ms })
        }
        other => other,
    };
    finish(store, report, result, started, ctx.clock)
}

/// `ldap_sync_time_budget_ms`: no page is started after 90% of it, so the
/// page in hand and the report fit in the rest.
pub(super) struct Budget {
    stop_at: Instant,
    budget_ms: u32,
}

impl Budget {
    fn starting_now(budget_ms: u32) -> Self {
        Self { stop_at: Instant::now() + Duration::from_millis(u64::from(budget_ms) * 9 / 10), budget_ms }
    }

    /// `Err(BudgetReached)` once no page may start any more.
    pub(super) fn check(&self) -> Result<(), SyncError> {
        if Instant::now() >= self.stop_at { Err(SyncError::BudgetReached { budget_ms: self.budget_ms }) } else { Ok(()) }
    }
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
    report.outcome = match &result {
        Ok(()) => RunOutcome::Success,
        Err(SyncError::BudgetReached { .. }) => RunOutcome::Stopped,
        Err(_) => RunOutcome::Failed,
    };
    report.error = result.as_ref().err().map(ToString::to_string);
    if report.outcome != RunOutcome::Success {
        report.fully_in_sync = false;
    }
    report.log();
    let mut batch = Batch::new();
    let stored = runs::next_report_seq(store).and_then(|seq| batch.put_report(&report, seq)).and_then(|()| batch.commit(store));
    match result {
        // A clean stop: what was read is written, and the next call goes on.
        Err(SyncError::BudgetReached { .. }) => {}
        other => other?,
    }
    stored?;
    Ok(report)
}

/// What the pages of a run saw, for offboarding at its end.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// Every user a directory entry stands for.
    pub(super) users: HashSet<UserId>,
    /// Users disabled in the directory and still active here.
    pub(super) disabled: BTreeSet<UserId>,
    /// Entries that could not be tied to any user (no unique id): a read
    /// with one of these cannot say who is missing.
    pub(super) unidentified: u64,
}

/// Builds the search (spec §3.3), applies it page by page, then offboards.
pub(super) fn scan(
    store: &dyn KvStore,
    settings: &Settings,
    directory: &mut dyn Directory,
    lease: Option<&Lease>,
    ctx: &mut RunContext<'_>,
    budget: &Budget,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let spec = user_search(settings, None)?;
    scan_spec(store, settings, directory, spec, &mut |_| {}, lease, ctx, budget, report)
}

/// [`scan`] of `spec`, whose entries `inspect` sees (and may trim) first.
#[allow(clippy::too_many_arguments)]
pub(super) fn scan_spec(
    store: &dyn KvStore,
    settings: &Settings,
    directory: &mut dyn Directory,
    spec: SearchSpec,
    inspect: &mut dyn FnMut(&mut [DirectoryEntry]),
    lease: Option<&Lease>,
    ctx: &mut RunContext<'_>,
    budget: &Budget,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let timed = Timed::new(store);
    let result = read_pages(&timed, settings, directory, spec, inspect, lease, ctx, budget, report).and_then(|(end, seen)| {
        report.fully_in_sync = end.references == 0;
        offboard(&timed, settings, ctx, lease, end, seen, report)
    });
    report.phases.set_store(&timed);
    result
}

/// Runs `spec` and applies it page by page, each page after `inspect` saw
/// it. Page writes go through a
/// [`WriteBuffer`], flushed every few thousand keys and at the end of the
/// search, whether it succeeded or not.
#[allow(clippy::too_many_arguments)]
pub(super) fn read_pages(
    timed: &Timed<'_>,
    settings: &Settings,
    directory: &mut dyn Directory,
    spec: SearchSpec,
    inspect: &mut dyn FnMut(&mut [DirectoryEntry]),
    lease: Option<&Lease>,
    ctx: &mut RunContext<'_>,
    budget: &Budget,
    report: &mut SyncReport,
) -> Result<(SearchEnd, Seen), SyncError> {
    if let Some(lease) = lease {
        lease.set_progress("users", report.pages);
    }
    crate::log::info(
        "searching",
        &[
            ("base", serde_json::json!(spec.base.to_string())),
            ("filter", serde_json::json!(filter::to_string(&spec.filter))),
            ("pageSize", serde_json::json!(spec.page_size.map_or(0, |n| n.get()))),
        ],
    );
    let key = MarkKey::load_or_create(timed, ctx.random)?;
    let buffer = WriteBuffer::new(timed, FlushLimits::SYNC);
    let mut first_page = true;
    let mut seen = Seen::default();
    // Counted page by page, so a run that fails mid-search still reports what it wrote.
    let end = directory.search(spec, &mut |mut entries| {
        budget.check()?;
        inspect(&mut entries);
        report.pages += 1;
        report.entries += entries.len() as u64;
        apply_page(&buffer, timed, settings, entries, first_page, &key, ctx, report, &mut seen)?;
        // The first page lands at once: a store that refuses writes stops
        // the run before the rest of the directory is read.
        if first_page {
            buffer.flush()?
        } else {
            buffer.flush_if_full()?
        }
        first_page = false;
        if let Some(lease) = lease {
            lease.set_progress("users", report.pages);
            lease.renew(timed, (ctx.clock)())?;
        }
        Ok(())
    });
    // What the pages planned is written even when the search failed later:
    // each page's writes are whole.
    let flushed = buffer.flush();
    report.phases.set_ldap(directory.timing());
    let end = end?;
    flushed?;
    Ok((end, seen))
}

/// One page: map and fingerprint; the entries whose sync mark matches are
/// unchanged and done; the rest load what they touch (three `get-many`),
/// are planned, and their writes and new marks staged in one batch.
#[allow(clippy::too_many_arguments)]
pub(super) fn apply_page(
    store: &dyn KvStore,
    timed: &Timed<'_>,
    settings: &Settings,
    entries: Vec<DirectoryEntry>,
    first_page: bool,
    key: &MarkKey,
    ctx: &mut RunContext<'_>,
    report: &mut SyncReport,
    seen: &mut Seen,
) -> Result<(), SyncError> {
    let plan_ctx = PlanContext::new(settings, (ctx.clock)());
    let sw = Stopwatch::start();
    // Entries whose sync mark matches are unchanged: not even mapped.
    let digest = plan::settings_digest(&settings.search, &plan_ctx);
    let mut keyed: Vec<(DirectoryEntry, LdapId, Fingerprint)> = Vec::with_capacity(entries.len());
    let mut rest_entries: Vec<(DirectoryEntry, Option<Fingerprint>)> = Vec::new();
    for entry in entries {
        // The group filter first: an entry outside its group is no user,
        // and not seen (so missing, after a complete read).
        if ctx.groups.filters() && !ctx.groups.admits(entry.dn.as_str(), map::ldap_username(&entry, &settings.search).as_deref()) {
            report.skip(entry.dn.as_str(), NOT_IN_FILTER_GROUP);
            continue;
        }
        match map::ldap_id(&entry, &settings.search) {
            Ok(id) => {
                let facts = map::group_facts(&entry, &id, &settings.search, &settings.accounts, &ctx.groups);
                let fp = map::entry_fingerprint(&entry, &digest, &facts, key);
                keyed.push((entry, id, fp));
            }
            Err(_) => rest_entries.push((entry, None)),
        }
    }
    sw.add_to(&mut report.phases.map_us);
    let repo = Users::new(store);
    let marks = repo.sync_marks(keyed.iter().map(|(_, id, _)| id))?;
    for ((entry, _, fp), mark) in keyed.into_iter().zip(marks) {
        match mark {
            Some(mark) if mark.fp == fp => {
                report.unchanged += 1;
                report.phases.unchanged_by_mark += 1;
                seen.users.insert(mark.id);
            }
            _ => rest_entries.push((entry, Some(fp))),
        }
    }
    // The rest is planned a slice at a time: what planning holds per entry
    // (documents, index changes, the batch) is what bounds guest memory.
    let mut stage_schema = first_page;
    let mut rest_entries = rest_entries.into_iter().peekable();
    loop {
        let slice: Vec<_> = rest_entries.by_ref().take(PLAN_SLICE).collect();
        plan_entries(store, timed, settings, slice, stage_schema, &plan_ctx, &ctx.groups, report, seen)?;
        stage_schema = false;
        if rest_entries.peek().is_none() {
            return Ok(());
        }
    }
}

/// Entries whose marks did not vouch for them: mapped, their users loaded
/// (three `get-many`), planned, and their writes and new marks staged in
/// one batch.
#[allow(clippy::too_many_arguments)]
fn plan_entries(
    store: &dyn KvStore,
    timed: &Timed<'_>,
    settings: &Settings,
    rest_entries: Vec<(DirectoryEntry, Option<Fingerprint>)>,
    stage_schema: bool,
    plan_ctx: &PlanContext<'_>,
    groups: &GroupFacts,
    report: &mut SyncReport,
    seen: &mut Seen,
) -> Result<(), SyncError> {
    let repo = Users::new(store);
    let sw = Stopwatch::start();
    let mut rest = Vec::with_capacity(rest_entries.len());
    // Entries that do not map to a user but still stand for one (by LDAP id).
    let mut unmapped: Vec<LdapId> = Vec::new();
    for (entry, fp) in &rest_entries {
        let avatar_attributes = if settings.avatars.in_sync { settings.avatars.attributes() } else { Vec::new() };
        match map::map_entry(entry, &settings.search, &settings.accounts, &avatar_attributes) {
            Ok(mut user) => {
                user.roles = groups.roles_for(user.dn.as_str(), &user.username);
                rest.push((user, fp.clone()))
            }
            Err(problem) => {
                match (&problem, map::ldap_id(entry, &settings.search)) {
                    (EntryProblem::NoUniqueId(_), _) | (_, Err(_)) => seen.unidentified += 1,
                    (_, Ok(id)) => unmapped.push(id),
                }
                report.fail(entry.dn.as_str(), &problem.to_string());
            }
        }
    }
    drop(rest_entries);
    sw.add_to(&mut report.phases.map_us);
    let mut batch = Batch::new();
    if stage_schema {
        runs::stage_schema_version(store, &mut batch)?;
    }
    if rest.is_empty() && unmapped.is_empty() {
        batch.commit(store)?;
        return Ok(());
    }
    let mut wanted = plan::keys_to_load(rest.iter().map(|(u, _)| u));
    wanted.extend(unmapped.iter().cloned().map(IndexKey::LdapId));
    let sw = Stopwatch::start();
    let read_before = timed.read_time();
    let mut loaded = repo.load(wanted, plan::candidate_ids(rest.iter().map(|(u, _)| u)))?;
    let decode = sw.elapsed().saturating_sub(timed.read_time().saturating_sub(read_before));
    report.phases.json_decode_us += u64::try_from(decode.as_micros()).unwrap_or(u64::MAX);
    let sw = Stopwatch::start();
    let mut writes = UserWrites::default();
    let mut markable: Vec<(RcUser, UserId, Option<Fingerprint>)> = Vec::new();
    for (user, fp) in rest {
        match plan::plan_one(&user, &mut loaded, plan_ctx, &mut writes) {
            Ok(planned) => {
                if let Some(id) = planned.id.clone() {
                    if planned.deactivate {
                        seen.disabled.insert(id.clone());
                    }
                    seen.users.insert(id.clone());
                    if !matches!(planned.change, Change::Skipped(_)) && !planned.deactivate {
                        markable.push((user.clone(), id, fp));
                    }
                }
                if let Some(roles) = report.roles.as_mut() {
                    roles.added += planned.roles_added;
                    roles.removed += planned.roles_removed;
                }
                report.avatar(planned.avatar, user.dn.as_str());
                report.count(planned.change, user.dn.as_str(), &user.username);
            }
            Err(problem) => {
                seen.users.extend(owner(&loaded, &user.ldap_id));
                report.fail(user.dn.as_str(), &problem.to_string());
            }
        }
    }
    for id in &unmapped {
        seen.users.extend(owner(&loaded, id));
    }
    batch.put_users(&writes)?;
    // Marks last: a document staged above drops its mark, and a user whose
    // final document reflects the entry gets it back.
    for (user, id, fp) in markable {
        let Some(fp) = fp else { continue };
        if loaded.docs.get(&id).is_some_and(|doc| plan::reflects(doc, &user, plan_ctx)) {
            batch.put_sync_mark(&user.ldap_id, &SyncMark { id, fp })?;
        }
    }
    sw.add_to(&mut report.phases.plan_us);
    batch.commit(store)?;
    Ok(())
}

/// The user an LDAP id names, if any.
fn owner(loaded: &Loaded, id: &LdapId) -> Option<UserId> {
    loaded.index.get(&IndexKey::LdapId(id.clone())).cloned().flatten()
}

/// The end of a successful search (spec §3.8): deactivate the users
/// disabled in the directory, and (with the switch on, after a complete
/// read) those the read no longer found; never the last active admin;
/// nobody when more than `ldap_sync_max_deactivations` are due, unless
/// forced. Then remember this read's members for the next run.
pub(super) fn offboard(
    store: &dyn KvStore,
    settings: &Settings,
    ctx: &mut RunContext<'_>,
    lease: Option<&Lease>,
    end: SearchEnd,
    seen: Seen,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let switches = &settings.sync;
    if let Some(lease) = lease {
        lease.set_progress("offboarding", report.pages);
    }
    // Complete: the search ended in success (else we are not here) and no
    // part of the result lives on another server. A run that is not complete
    // deactivates nobody.
    let complete = end.references == 0;
    // Missing users also need every entry tied to a user: an entry without a
    // unique id could be anyone.
    let identified = seen.unidentified == 0;
    let mut due: BTreeSet<UserId> = BTreeSet::new();
    if complete {
        due.extend(seen.disabled.iter().cloned());
    } else {
        report.offboarding().missing_users_not_checked = Some(format!(
            "the read was not complete ({} continuation references to other servers): nobody was deactivated",
            end.references
        ));
    }
    // The last complete read's members, what missing users are found
    // against: streamed a chunk at a time, only those not seen kept.
    let mut baseline: Option<Baseline> = None;
    if complete && identified {
        let mut b = Baseline::default();
        let whole = runs::scan_members(store, &mut |chunk| {
            for id in chunk {
                if seen.users.contains(&id) {
                    b.seen += 1;
                } else {
                    b.not_seen.push(id);
                }
            }
        })?;
        baseline = whole.then_some(b);
    }
    if switches.disable_missing && complete {
        let not_checked = match (&baseline, identified) {
            (_, false) => Some(format!("{} entries without a unique id: any of them could be a user this read missed", seen.unidentified)),
            (None, true) => Some("no complete read to compare with yet: the next run compares with this one".to_owned()),
            (Some(b), true) => {
                due.extend(b.not_seen.iter().cloned());
                None
            }
        };
        if let Some(reason) = not_checked {
            report.offboarding().missing_users_not_checked = Some(reason);
        }
    }
    let resolved = deactivate(store, settings, ctx, lease, due, seen.users.len() as u64, report)?;
    if complete && identified {
        // The next baseline: everyone seen, and every earlier member not seen
        // whose case is still open (the switch was off, the breaker tripped,
        // the lease was lost): a user removed from the directory is
        // deactivated once that is allowed, however many runs later.
        let open: Vec<UserId> =
            baseline.as_ref().map(|b| b.not_seen.iter().filter(|id| !resolved.contains(*id)).cloned().collect()).unwrap_or_default();
        // Unchanged (and not written): everyone seen was a member, and no open case closed.
        let unchanged = baseline.as_ref().is_some_and(|b| b.seen == seen.users.len() && open.len() == b.not_seen.len());
        if !unchanged {
            let mut members: Vec<UserId> = seen.users.into_iter().collect();
            members.extend(open);
            members.sort();
            members.dedup();
            runs::save_members(store, &members, &random_id(12, ctx.random))?;
        }
    }
    Ok(())
}

/// What the stored baseline holds against this read's users.
#[derive(Debug, Default)]
struct Baseline {
    /// Members this read saw.
    seen: usize,
    /// Members this read did not see.
    not_seen: Vec<UserId>,
}

/// Adds the users an incremental read saw to the members baseline (the
/// last complete read's), so that a later complete read finds them missing.
/// Nothing without a baseline, or when nobody is new.
pub(super) fn join_baseline(store: &dyn KvStore, users: &HashSet<UserId>, ctx: &mut RunContext<'_>) -> Result<(), SyncError> {
    // First, streamed: does anyone join at all? (Usually not.)
    let mut known = 0usize;
    let whole = runs::scan_members(store, &mut |chunk| known += chunk.iter().filter(|id| users.contains(*id)).count())?;
    if !whole || known == users.len() {
        return Ok(());
    }
    let Some(mut members) = runs::last_members(store)? else {
        return Ok(());
    };
    let known: HashSet<&UserId> = members.iter().collect();
    let mut new: Vec<UserId> = users.iter().filter(|id| !known.contains(id)).cloned().collect();
    if new.is_empty() {
        return Ok(());
    }
    members.append(&mut new);
    members.sort();
    runs::save_members(store, &members, &random_id(12, ctx.random))?;
    Ok(())
}

pub(super) fn deactivate(
    store: &dyn KvStore,
    settings: &Settings,
    ctx: &mut RunContext<'_>,
    lease: Option<&Lease>,
    due: BTreeSet<UserId>,
    seen: u64,
    report: &mut SyncReport,
) -> Result<HashSet<UserId>, SyncError> {
    let switches = &settings.sync;
    if !switches.force_deactivations && runs::force_used(store)? {
        runs::set_force_used(store, false)?;
    }
    // Users whose case is closed: deactivated now, gone, already inactive, or not the directory's.
    let mut resolved: HashSet<UserId> = due.iter().cloned().collect();
    if due.is_empty() {
        return Ok(resolved);
    }
    // Only active directory users: a document may have gone, or been deactivated since.
    let users = Users::new(store);
    let mut docs: Vec<UserDoc> = Vec::with_capacity(due.len());
    let ids: Vec<UserId> = due.into_iter().collect();
    for chunk in ids.chunks(1000) {
        docs.extend(users.by_ids(chunk)?.into_iter().filter(|d| d.active != Some(false) && crate::store::users::is_directory_user(d)));
    }
    // Still open: the due users this run may yet fail to deactivate.
    for doc in &docs {
        resolved.remove(&doc.id);
    }
    let kept = keep_last_admin(&users, &mut docs)?;
    if !kept.is_empty() {
        report.offboarding().kept = kept;
    }
    if docs.is_empty() {
        return Ok(resolved);
    }
    let limit = switches.max_deactivations.limit(seen);
    let count = docs.len() as u64;
    if count > limit {
        let forced = switches.force_deactivations && !runs::force_used(store)?;
        if !forced {
            let sample = docs.iter().take(BREAKER_SAMPLE).map(|d| d.username.clone().unwrap_or_else(|| d.id.to_string())).collect();
            crate::log::warn(
                "circuit breaker: more deactivations are due than the limit; nobody was deactivated \
                 (set ldap_sync_force_deactivations=true to let one run pass)",
                &[("due", serde_json::json!(count)), ("limit", serde_json::json!(limit))],
            );
            report.offboarding().breaker = Some(Breaker { would_deactivate: count, limit, sample });
            return Ok(resolved);
        }
        runs::set_force_used(store, true)?;
        crate::log::warn("circuit breaker passed once by ldap_sync_force_deactivations", &[("deactivating", serde_json::json!(count))]);
    }
    // A run that lost its lease to another leaves deactivating to that one.
    if let Some(lease) = lease
        && !lease.still_held(store)?
    {
        report.offboarding().missing_users_not_checked = Some("another run took over the lease; it decides deactivations".to_owned());
        return Ok(resolved);
    }
    let now = (ctx.clock)();
    let sessions = Sessions::new(store);
    for chunk in docs.chunks_mut(DEACTIVATION_BATCH) {
        let mut batch = Batch::new();
        for doc in chunk.iter_mut() {
            doc.active = Some(false);
            doc.extra.insert("_updatedAt".to_owned(), json!(now));
            // As upstream's setUserActiveStatus: every login token goes, so
            // none comes back if the user is reactivated.
            if let Some(resume) = doc.services.resume.as_mut() {
                resume.login_tokens.clear();
            }
            batch.put_user(doc)?;
        }
        batch.commit(store)?;
        // Counted once written: a failed write deactivated nobody.
        for doc in chunk.iter() {
            report.deactivate(doc.username.as_deref().unwrap_or_default());
            resolved.insert(doc.id.clone());
        }
        sessions.close_all(chunk.iter().map(|d| &d.id))?;
    }
    Ok(resolved)
}

/// Takes out of `docs` the admins whose deactivation would leave no active
/// admin; returns their usernames. Reads every user only when an admin is due.
fn keep_last_admin(users: &Users<'_>, docs: &mut Vec<UserDoc>) -> Result<Vec<String>, SyncError> {
    let is_admin = |roles: &[String]| roles.iter().any(|r| r == "admin");
    if !docs.iter().any(|d| is_admin(&d.roles)) {
        return Ok(Vec::new());
    }
    let due: HashSet<String> = docs.iter().map(|d| d.id.to_string()).collect();
    let others = users
        .all_documents()?
        .iter()
        .filter(|d| d.get("active") != Some(&json!(false)))
        .filter(|d| d.get("roles").and_then(|r| r.as_array()).is_some_and(|r| r.iter().any(|x| x == "admin")))
        .filter(|d| d.get("_id").and_then(|v| v.as_str()).is_some_and(|id| !due.contains(id)))
        .count();
    if others > 0 {
        return Ok(Vec::new());
    }
    // Keep one: the first admin due.
    let Some(index) = docs.iter().position(|d| is_admin(&d.roles)) else {
        return Ok(Vec::new());
    };
    let kept = docs.remove(index);
    crate::log::warn("not deactivating the last active admin", &[("username", serde_json::json!(kept.username))]);
    Ok(vec![kept.username.unwrap_or_else(|| kept.id.to_string())])
}
