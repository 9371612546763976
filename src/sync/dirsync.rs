//! DirSync mode (`ldap_sync_mode=dirsync`, or `auto` against a server that
//! announces Active Directory's DirSync control, `1.2.840.113556.1.4.841`,
//! with objectGUID as the unique identifier).
//!
//! * DirSync searches a whole partition (its base must be a naming
//!   context), returns only the attributes that changed, and reports
//!   deleted objects as tombstones (`isDeleted: TRUE`, moved under
//!   `CN=Deleted Objects`, most attributes stripped). So its answer is used
//!   for *which* objects changed, never as their data:
//!   - changed objects are read again, whole, through the ordinary user
//!     search (base, scope and filter from the settings) restricted to their
//!     DNs, 100 per search; an object that no longer comes back left the
//!     search (moved out of the base, or no longer matching the filter);
//!   - tombstones and objects that left are found by objectGUID
//!     (`ldap-id:objectGUID:<hex>`) and reach offboarding with the same
//!     switch, breaker and completeness rules as a full read.
//! * **No cookie yet** (or one taken with other settings, or one the server
//!   refuses): a DirSync from nothing, only for its cookie, then an ordinary
//!   full read with offboarding; the cookie is stored after it succeeded
//!   completely, and changes made during the full read come again next time.
//! * The cookie is stored only after a run's writes have landed.
//!
//! Without `LDAP_DIRSYNC_OBJECT_SECURITY` (flags 0, as here) the service
//! account needs the "Replicating Directory Changes" right on the partition.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::ldap::filter;
use crate::ldap::{DirSyncRequest, DirectoryEntry, LdapError, SearchSpec};
use crate::settings::Settings;
use crate::store::KvStore;
use crate::store::LdapId;
use crate::store::runs::{self, Lease, SyncCookie};
use crate::store::users::{Fingerprint, Users};

use super::SyncError;
use super::map;
use super::phases::Timed;
use super::plan::PlanContext;
use super::refresh::{cookie_scope, drop_refused_cookie};
use super::report::SyncReport;
use super::run::{Budget, RunContext, Seen, deactivate, join_baseline, read_pages, scan};
use super::search::{Directory, user_search};

/// Changed objects read again per search.
const REREAD_BATCH: usize = 100;
/// Attribute bytes per DirSync round: MS-ADTS's smallest accepted value.
const MAX_BYTES: u32 = 0x10_0000;
/// The attribute that marks a tombstone.
const IS_DELETED: &str = "isDeleted";

/// The unique-id attribute DirSync needs first: tombstones keep little
/// else, and a rename keeps it.
pub fn guid_attribute(settings: &Settings) -> Option<&str> {
    settings.search.unique_id_fields.first().map(String::as_str).filter(|a| a.eq_ignore_ascii_case("objectGUID"))
}

/// A run in DirSync mode.
pub fn run(
    store: &dyn KvStore,
    settings: &Settings,
    directory: &mut dyn Directory,
    lease: Option<&Lease>,
    ctx: &mut RunContext<'_>,
    budget: &Budget,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let plan_ctx = PlanContext::new(settings, (ctx.clock)());
    let scope = cookie_scope(settings, &plan_ctx, &ctx.groups)?;
    let cookie = match runs::sync_cookie(store)? {
        Some(stored) if stored.mode == "dirsync" && stored.scope == scope => match BASE64.decode(&stored.cookie) {
            Ok(bytes) if !bytes.is_empty() => Some(bytes),
            _ => {
                report.mode_note = Some("the stored cookie is not usable: full read".to_owned());
                None
            }
        },
        Some(stored) if stored.mode == "dirsync" => {
            report.mode_note = Some("the search settings or group memberships changed since the cookie was stored: full read".to_owned());
            None
        }
        _ => {
            report.mode_note = Some("no cookie yet: full read".to_owned());
            None
        }
    };
    let base = partition(settings, directory)?;
    let Some(cookie) = cookie else {
        return initial(store, settings, directory, lease, ctx, budget, report, &base, scope);
    };
    crate::log::info("DirSync", &[("base", serde_json::json!(base.to_string())), ("from", serde_json::json!("the stored cookie"))]);
    match read_changes(settings, directory, budget, &base, cookie) {
        // A cookie the server does not take: start over, once.
        Err(SyncError::Ldap(LdapError::Result { code, message, .. })) => {
            drop_refused_cookie(store, report, &code, &message, "full read")?;
            initial(store, settings, directory, lease, ctx, budget, report, &base, scope)
        }
        Err(other) => Err(other),
        Ok((found, next)) => {
            report.deleted_in_directory = found.deleted.len() as u64;
            let timed = Timed::new(store);
            let result = reread_and_offboard(&timed, settings, directory, lease, ctx, budget, report, found);
            report.phases.set_store(&timed);
            result?;
            if !next.is_empty() {
                save(store, &next, scope)?;
            }
            Ok(())
        }
    }
}

/// The naming context that holds `ldap_basedn` (the longest whose DN ends
/// the base's), compared without case and spaces; the base itself when the
/// server lists none that fits.
fn partition(settings: &Settings, directory: &mut dyn Directory) -> Result<String, SyncError> {
    let base = &settings.search.base_dn;
    let norm = |dn: &str| dn.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
    let wanted = norm(base);
    let best = directory
        .naming_contexts()?
        .into_iter()
        .filter(|nc| {
            let nc = norm(nc);
            !nc.is_empty() && (wanted == nc || wanted.ends_with(&format!(",{nc}")))
        })
        .max_by_key(String::len);
    Ok(best.unwrap_or_else(|| base.clone()))
}

/// The DirSync search: the partition, subtree, and the mapped attributes (a
/// change to any other attribute is not reported), plus `name` (renames and
/// moves change it) and `isDeleted`. The filter is not the user filter but
/// `(|(<a search field>=*)(isDeleted=TRUE))`: an object that changed so as
/// to leave the user filter must still be reported (the re-read applies the
/// user filter), and tombstones keep neither `objectCategory` nor, on Samba,
/// `sAMAccountName`.
fn dirsync_spec(settings: &Settings, base: &str, cookie: Vec<u8>) -> Result<SearchSpec, SyncError> {
    let mut spec = user_search(settings, None)?;
    spec.base = base.to_owned();
    spec.scope = crate::settings::Scope::Sub;
    spec.page_size = None;
    spec.size_limit = 0;
    let present = settings.search.search_fields.iter().map(|f| filter::present(f.as_str())).collect();
    spec.filter = filter::or(vec![filter::or(present), filter::equality(IS_DELETED, "TRUE")]);
    for extra in ["name", IS_DELETED] {
        if !spec.attributes.iter().any(|a| a.eq_ignore_ascii_case(extra)) {
            spec.attributes.push(extra.to_owned());
        }
    }
    spec.dirsync = Some(DirSyncRequest { flags: 0, max_bytes: MAX_BYTES, cookie });
    Ok(spec)
}

/// No usable cookie: a DirSync from nothing for the cookie alone, then a
/// full read, then the cookie (only when the read was complete).
#[allow(clippy::too_many_arguments)]
fn initial(
    store: &dyn KvStore,
    settings: &Settings,
    directory: &mut dyn Directory,
    lease: Option<&Lease>,
    ctx: &mut RunContext<'_>,
    budget: &Budget,
    report: &mut SyncReport,
    base: &str,
    scope: Fingerprint,
) -> Result<(), SyncError> {
    crate::log::info("DirSync", &[("base", serde_json::json!(base.to_string())), ("from", serde_json::json!("nothing"))]);
    let end = directory.search(dirsync_spec(settings, base, Vec::new())?, &mut |_| budget.check())?;
    let cookie = end.dirsync_cookie.unwrap_or_default();
    scan(store, settings, directory, lease, ctx, budget, report)?;
    if report.fully_in_sync && !cookie.is_empty() {
        save(store, &cookie, scope)?;
    }
    Ok(())
}

fn save(store: &dyn KvStore, cookie: &[u8], scope: Fingerprint) -> Result<(), SyncError> {
    let cookie =
        SyncCookie { mode: "dirsync".to_owned(), cookie: BASE64.encode(cookie), scope, since: None, full_at: None, ids_verified: false };
    Ok(runs::save_sync_cookie(store, &cookie)?)
}

/// What a DirSync answer says changed.
#[derive(Debug, Default)]
struct Changes {
    /// Live objects that changed: their DN now, and their LDAP id.
    changed: Vec<(String, Option<LdapId>)>,
    /// Tombstones' LDAP ids.
    deleted: Vec<LdapId>,
    references: u64,
}

impl Changes {
    fn note(&mut self, entries: Vec<DirectoryEntry>, settings: &Settings) {
        for entry in entries {
            let id = map::ldap_id(&entry, &settings.search).ok();
            let tombstone = entry.texts(IS_DELETED).iter().any(|v| v.eq_ignore_ascii_case("TRUE"));
            match (tombstone, id) {
                (true, Some(id)) => self.deleted.push(id),
                // A tombstone without its objectGUID cannot be anyone we know.
                (true, None) => {}
                (false, id) => self.changed.push((entry.dn.as_str().to_owned(), id)),
            }
        }
    }
}

/// The DirSync answer from `cookie`: what changed, and the next cookie.
fn read_changes(
    settings: &Settings,
    directory: &mut dyn Directory,
    budget: &Budget,
    base: &str,
    cookie: Vec<u8>,
) -> Result<(Changes, Vec<u8>), SyncError> {
    let mut found = Changes::default();
    let end = directory.search(dirsync_spec(settings, base, cookie)?, &mut |page| {
        budget.check()?;
        found.note(page, settings);
        Ok(())
    })?;
    found.references = end.references;
    Ok((found, end.dirsync_cookie.unwrap_or_default()))
}

/// The changed objects read again whole (and applied), then offboarding of
/// the deleted and departed.
#[allow(clippy::too_many_arguments)]
fn reread_and_offboard(
    timed: &Timed<'_>,
    settings: &Settings,
    directory: &mut dyn Directory,
    lease: Option<&Lease>,
    ctx: &mut RunContext<'_>,
    budget: &Budget,
    report: &mut SyncReport,
    found: Changes,
) -> Result<(), SyncError> {
    let mut seen = Seen::default();
    let mut references = found.references;
    for batch in found.changed.chunks(REREAD_BATCH) {
        let mut spec = user_search(settings, None)?;
        let dns = batch.iter().map(|(dn, _)| filter::equality("distinguishedName", dn.as_str())).collect();
        spec.filter = filter::and(vec![spec.filter, filter::or(dns)]);
        let (end, part) = read_pages(timed, settings, directory, spec, &mut |_| {}, lease, ctx, budget, report)?;
        references += end.references;
        seen.users.extend(part.users);
        seen.disabled.extend(part.disabled);
        seen.unidentified += part.unidentified;
    }
    let complete = references == 0;
    report.fully_in_sync = complete;
    let users = Users::new(timed);
    // Changed objects that did not come back: moved out of the base, or no
    // longer matching the filter. As gone from the search as a tombstone.
    let mut gone: HashSet<_> = HashSet::new();
    let changed_ids: Vec<LdapId> = found.changed.iter().filter_map(|(_, id)| id.clone()).collect();
    for ids in changed_ids.chunks(1000) {
        gone.extend(users.owners_of(ids)?.into_iter().flatten().filter(|id| !seen.users.contains(id)));
    }
    for ids in found.deleted.chunks(1000) {
        gone.extend(users.owners_of(ids)?.into_iter().flatten());
    }
    let mut due = if complete { seen.disabled.clone() } else { Default::default() };
    if settings.sync.disable_missing && complete {
        due.extend(gone);
    } else if !gone.is_empty() && !complete {
        report.offboarding().missing_users_not_checked =
            Some(format!("the read was not complete ({references} continuation references): nobody was deactivated"));
    }
    let population = runs::last_members_total(timed)?.unwrap_or(0).max(seen.users.len() as u64);
    deactivate(timed, settings, ctx, lease, due, population, report)?;
    if complete {
        join_baseline(timed, &seen.users, ctx)?;
    }
    Ok(())
}
