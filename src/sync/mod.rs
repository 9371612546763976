//! The directory-scan sync (spec §3, "directory scan" mode) as a stream:
//! LDAP pages → mapped users → one batched read and one batched write per
//! page. Nothing is held beyond one page, so memory does not grow with the
//! directory.
//!
//! Never names a `spin_sdk` or `ldap3_proto` type: it sees [`Directory`] and
//! [`KvStore`].

pub mod error;
pub mod login;
pub mod map;
pub mod plan;
pub mod report;

pub use error::SyncError;
pub use report::SyncReport;

use crate::ldap::filter;
use crate::ldap::{DirectoryEntry, LdapSearchScope, SearchSpec, SearchStats, Session};
use crate::settings::{Scope, Settings};
use crate::store::schema::{Date, UserDoc};
use crate::store::{KvStore, decode, encode, get_json, keys};

use plan::{Loaded, PlanContext};

/// Where the last run's report is stored.
pub const REPORT_KEY: &str = "sync-report:last";

/// The search side of an LDAP session, so the sync can be unit-tested with
/// a scripted directory.
pub trait Directory {
    /// Runs `spec`, handing entries over one page at a time.
    fn search(
        &mut self,
        spec: SearchSpec,
        on_page: &mut dyn FnMut(Vec<DirectoryEntry>) -> Result<(), SyncError>,
    ) -> Result<SearchStats, SyncError>;
}

impl Directory for Session {
    fn search(
        &mut self,
        spec: SearchSpec,
        on_page: &mut dyn FnMut(Vec<DirectoryEntry>) -> Result<(), SyncError>,
    ) -> Result<SearchStats, SyncError> {
        Session::search(self, spec, on_page)
    }
}

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
pub fn run_with(store: &dyn KvStore, settings: &Settings, directory: &mut dyn Directory, ctx: &mut RunContext<'_>) -> Result<SyncReport, SyncError> {
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
    report.outcome = if result.is_ok() { "success" } else { "failed" };
    report.error = result.as_ref().err().map(ToString::to_string);
    eprintln!("{}", report.summary());
    let stored = encode(REPORT_KEY.to_owned(), &report).and_then(|pair| store.set_many(vec![pair]));
    result?;
    stored?;
    Ok(report)
}

/// The user search (spec §3.3): `(&<ldap_user_search_filter><username clause>)`,
/// where the clause matches `username` (escaped) on every search field, or
/// any value when `username` is `None` (the directory scan).
pub fn user_search(settings: &Settings, username: Option<&str>) -> Result<SearchSpec, SyncError> {
    let search = &settings.search;
    if search.search_fields.is_empty() {
        return Err(SyncError::NoSearchField);
    }
    let mut parts: Vec<_> = filter::parse_user_filter(&search.user_search_filter)?.into_iter().collect();
    let clause = |field: &String| match username {
        Some(name) => filter::equality(field.as_str(), name),
        None => filter::present(field.as_str()),
    };
    parts.push(filter::or(search.search_fields.iter().map(clause).collect()));
    Ok(SearchSpec {
        base: search.base_dn.clone(),
        scope: match search.scope {
            Scope::Base => LdapSearchScope::Base,
            Scope::One => LdapSearchScope::OneLevel,
            Scope::Sub => LdapSearchScope::Subtree,
        },
        filter: filter::and(parts),
        attributes: map::attributes_to_request(search),
        page_size: search.page_size,
        size_limit: search.size_limit,
    })
}

/// Finds the one entry whose search field equals `username`; `None` when
/// there is none or more than one (as upstream treats an ambiguous match).
pub fn find_entry(directory: &mut dyn Directory, settings: &Settings, username: &str) -> Result<Option<DirectoryEntry>, SyncError> {
    let spec = user_search(settings, Some(username))?;
    let mut found = Vec::new();
    directory.search(spec, &mut |page| {
        found.extend(page.into_iter().take(2));
        Ok(())
    })?;
    Ok(if found.len() == 1 { found.pop() } else { None })
}

/// Creates or updates the user of one entry with exactly the sync's
/// mapping and rules (login uses this), and returns the stored document.
pub fn upsert_entry(store: &dyn KvStore, settings: &Settings, entry: DirectoryEntry, ctx: &mut RunContext<'_>) -> Result<Result<UserDoc, String>, SyncError> {
    let mut report = SyncReport::default();
    let mapped = map::map_entry(&entry, &settings.search, &settings.accounts);
    // Login creates and updates whatever the background-sync switches say
    // (upstream's login path ignores them; `LDAP_Update_Data_On_Login` is on).
    let mut login_settings = settings.clone();
    login_settings.sync.import_new_users = true;
    login_settings.sync.keep_existing_updated = true;
    apply_page(store, &login_settings, vec![entry], true, ctx, &mut report)?;
    if let Some(problem) = report.problems.pop() {
        return Ok(Err(problem.reason));
    }
    let Ok(user) = mapped else {
        return Ok(Err("the directory entry cannot be mapped to a user".to_owned()));
    };
    let index_key = keys::ldap_id(&user.id_attribute, &user.id);
    let id: Option<String> = get_json(store, &index_key)?;
    let Some(id) = id else {
        return Ok(Err("the user was not written".to_owned()));
    };
    let user_key = keys::user(&id);
    let doc: Option<UserDoc> = get_json(store, &user_key)?;
    Ok(doc.ok_or_else(|| "the user was not written".to_owned()))
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
        spec.page_size
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
            Err(problem) => report.fail(&entry.dn, &problem.to_string()),
        }
    }
    let mut loaded = Loaded::default();
    load_index(store, &mut loaded, plan::keys_to_load(&users))?;
    // Owners named by the index, and the ids these users would be created with.
    let mut ids: Vec<String> = loaded.index.values().flatten().cloned().chain(users.iter().map(plan::directory_user_id)).collect();
    ids.sort();
    ids.dedup();
    let user_keys: Vec<String> = ids.iter().map(|id| keys::user(id)).collect();
    for (key, value) in user_keys.iter().zip(store.get_many(&user_keys)?) {
        if let Some(doc) = decode::<UserDoc>(key, value)? {
            loaded.docs.insert(doc.id.clone(), doc);
        }
    }
    // The keys existing users hold now, so a rename frees only what is theirs.
    let held: Vec<String> = loaded.docs.values().flat_map(plan::index_keys).filter(|k| !loaded.index.contains_key(k)).collect();
    load_index(store, &mut loaded, held)?;

    let now = (ctx.clock)();
    let mut plan_ctx = PlanContext {
        switches: &settings.sync,
        accounts: &settings.accounts,
        merge_existing_users: settings.search.merge_existing_users,
        now,
    };
    let page = plan::plan_page(users, &mut loaded, &mut plan_ctx, report);

    let mut writes = Vec::with_capacity(page.docs.len() * 4 + 1);
    if first_page {
        writes.push(encode(keys::SCHEMA_VERSION.to_owned(), &keys::SCHEMA_VERSION_VALUE)?);
    }
    for doc in &page.docs {
        writes.push(encode(keys::user(&doc.id), doc)?);
    }
    let mut deletes = Vec::new();
    for (key, owner) in page.index_changes {
        match owner {
            Some(id) => writes.push(encode(key, &id)?),
            None => deletes.push(key),
        }
    }
    // Documents and the index keys that name them land in one transaction.
    store.set_many(writes)?;
    store.delete_many(&deletes)?;
    Ok(())
}

fn load_index(store: &dyn KvStore, loaded: &mut Loaded, wanted: Vec<String>) -> Result<(), SyncError> {
    let values = store.get_many(&wanted)?;
    for (key, value) in wanted.into_iter().zip(values) {
        let owner: Option<String> = decode(&key, value)?;
        loaded.index.insert(key, owner);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
