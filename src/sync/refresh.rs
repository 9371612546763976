//! Incremental runs: RFC 4533 refreshOnly from a stored cookie
//! (`ldap_sync_mode=syncrepl`, or `auto` when the root DSE announces the
//! Sync Request control).
//!
//! * **No cookie yet** (or one that belongs to other search settings): a
//!   refresh without a cookie, i.e. the whole content, handled like a full
//!   read (the sync marks make known users cheap) and offboarded like one.
//! * **With a cookie**: only added, modified and renamed entries arrive
//!   (whole), and deletions either as entryUUIDs (`refreshDeletes` TRUE: the
//!   server's session log) or as a present phase (every unchanged entry's
//!   entryUUID; whatever is not reported is gone). Both reach offboarding
//!   with the same switch, breaker and completeness rules as a full read.
//! * A cookie the server refuses (`e-syncRefreshRequired`, or any error
//!   result to a search with a cookie) is dropped and the run starts over
//!   with a full refresh, once; the report says so.
//! * The new cookie is stored only after the run's writes have landed, so a
//!   run that fails or is stopped is simply done again from the old one.
//!
//! Deleted and present entries come as entryUUIDs only, so this mode needs
//! entryUUID as the unique identifier (first in `ldap_unique_identifier_field`):
//! the user is found through `ldap-id:entryUUID:<hex of the UUID's text>`.
//! Never paged: slapd answers a paged sync search with one page and success.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ldap3_proto::proto::LdapResultCode;

use crate::ldap::{LdapError, SearchEnd, SyncChunk, SyncRequest};
use crate::settings::{Settings, SyncMode};
use crate::store::buffer::{FlushLimits, WriteBuffer};
use crate::store::ids::hex;
use crate::store::runs::{self, Lease, SyncCookie};
use crate::store::users::{Fingerprint, MarkKey, Users};
use crate::store::{KvStore, LdapId, UserId};

use super::SyncError;
use super::groups::GroupFacts;
use super::phases::Timed;
use super::plan::{self, PlanContext};
use super::report::SyncReport;
use super::run::{Budget, RunContext, Seen, apply_page, deactivate, offboard};
use super::search::{Directory, user_search};

/// RFC 4533's Sync Request control.
pub const OID_SYNC_REQUEST: &str = "1.3.6.1.4.1.4203.1.9.1.1";
/// Items handed over per chunk of a refresh (as a page of a full read).
const CHUNK: usize = 1000;

/// How a run reads the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Full,
    Syncrepl,
    Timestamp,
    Dirsync,
}

/// `ldap_sync_mode`, resolved: `auto` asks the root DSE (one search).
pub fn choose_mode(settings: &Settings, directory: &mut dyn Directory, report: &mut SyncReport) -> Result<Mode, SyncError> {
    let by_uuid = uuid_attribute(settings).is_some();
    match settings.sync.mode {
        SyncMode::Full => Ok(Mode::Full),
        SyncMode::Syncrepl if !by_uuid => Err(SyncError::ModeUnavailable(
            "syncrepl needs entryUUID (nsUniqueId on 389-ds) as the unique identifier: put it first in ldap_unique_identifier_field"
                .to_owned(),
        )),
        SyncMode::Syncrepl => Ok(Mode::Syncrepl),
        SyncMode::Timestamp => Ok(Mode::Timestamp),
        SyncMode::Dirsync if super::dirsync::guid_attribute(settings).is_none() => Err(SyncError::ModeUnavailable(
            "dirsync needs objectGUID as the unique identifier: put it first in ldap_unique_identifier_field".to_owned(),
        )),
        SyncMode::Dirsync => Ok(Mode::Dirsync),
        SyncMode::Auto => {
            let by_guid = super::dirsync::guid_attribute(settings).is_some();
            let controls = if by_uuid || by_guid { directory.supported_controls()? } else { Vec::new() };
            let announces = |oid: &str| controls.iter().any(|c| c == oid);
            let why_not = if by_uuid && announces(OID_SYNC_REQUEST) {
                return Ok(Mode::Syncrepl);
            } else if by_guid && announces(crate::ldap::connection::OID_DIRSYNC) {
                return Ok(Mode::Dirsync);
            } else if by_uuid {
                "the server does not announce RFC 4533 content synchronisation"
            } else if by_guid {
                "the server does not announce DirSync"
            } else {
                "incremental reads need entryUUID or nsUniqueId (RFC 4533) or objectGUID (DirSync) first in ldap_unique_identifier_field"
            };
            // Timestamp reads cannot see deletions: only where missing users
            // do not matter is that as good as a full read.
            if settings.sync.disable_missing {
                report.mode_note = Some(format!(
                    "full read: {why_not}, and modifyTimestamp reads cannot see deleted users, which \
                     ldap_background_sync_disable_missing_users needs (ldap_sync_mode=timestamp finds them once every \
                     ldap_full_sync_interval_hours)"
                ));
                Ok(Mode::Full)
            } else {
                report.mode_note = Some(format!("timestamp: {why_not}"));
                Ok(Mode::Timestamp)
            }
        }
    }
}

/// The first unique-id candidate when RFC 4533's sync UUIDs can be mapped
/// to it: entryUUID (OpenLDAP), or nsUniqueId (389-ds, whose sync UUID is
/// the entry's nsUniqueId; its entryUUID is another, unrelated value).
fn uuid_attribute(settings: &Settings) -> Option<&str> {
    settings
        .search
        .unique_id_fields
        .first()
        .map(String::as_str)
        .filter(|a| a.eq_ignore_ascii_case("entryUUID") || a.eq_ignore_ascii_case("nsUniqueId"))
}

/// The LDAP id of the entry whose sync UUID is `uuid`: the hex of the
/// attribute's text form, as `services.ldap.id` holds it (`map::ldap_id` of
/// the raw value).
fn ldap_id_of_uuid(attribute: &str, uuid: &[u8; 16]) -> LdapId {
    LdapId::new(attribute, hex(uuid_text_of(attribute, uuid).as_bytes()))
}

/// The text of `attribute` whose value is the sync UUID `uuid`.
fn uuid_text_of(attribute: &str, uuid: &[u8; 16]) -> String {
    if attribute.eq_ignore_ascii_case("nsUniqueId") { ns_unique_id_text(uuid) } else { uuid_text(uuid) }
}

/// 389-ds's nsUniqueId text: lower-case hex in four groups of 8 digits.
fn ns_unique_id_text(uuid: &[u8; 16]) -> String {
    uuid.chunks(4).map(hex).collect::<Vec<_>>().join("-")
}

/// RFC 4122 text: lower-case hex, hyphens after 4, 6, 8 and 10 bytes.
fn uuid_text(uuid: &[u8; 16]) -> String {
    let (a, rest) = uuid.split_at(4);
    let (b, rest) = rest.split_at(2);
    let (c, rest) = rest.split_at(2);
    let (d, e) = rest.split_at(2);
    [a, b, c, d, e].map(hex).join("-")
}

/// The search a cookie belongs to: base, scope, filter, attributes, the
/// mapping settings and the run's group memberships. A cookie taken for
/// another search is not used; a membership change (which changes no user
/// entry) therefore means one full read, which gives and takes the roles.
pub(super) fn cookie_scope(settings: &Settings, ctx: &PlanContext<'_>, groups: &GroupFacts) -> Result<Fingerprint, SyncError> {
    let spec = user_search(settings, None)?;
    let search = format!("{:?}|{:?}|{:?}|{:?}", spec.base, spec.scope, spec.filter, spec.attributes);
    let memberships = groups.digest().map(Fingerprint::as_bytes).unwrap_or_default();
    Ok(Fingerprint::of([search.as_bytes(), plan::settings_digest(&settings.search, ctx).as_bytes(), memberships]))
}

/// An incremental run: refresh from the stored cookie, or from nothing.
pub fn refresh(
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
    let mut verified = false;
    let cookie = match runs::sync_cookie(store)? {
        Some(stored) if stored.mode == "syncrepl" && stored.scope == scope => match BASE64.decode(&stored.cookie) {
            Ok(bytes) => {
                verified = stored.ids_verified;
                Some(bytes)
            }
            Err(_) => {
                report.mode_note = Some("the stored cookie is not base64: full refresh".to_owned());
                None
            }
        },
        Some(_) => {
            report.mode_note =
                Some("the search settings or group memberships changed since the cookie was stored: full refresh".to_owned());
            None
        }
        None => {
            report.mode_note = Some("no cookie yet: full refresh".to_owned());
            None
        }
    };
    let had_cookie = cookie.is_some();
    match refresh_from(store, settings, directory, lease, ctx, budget, report, cookie, verified, &scope) {
        Err(SyncError::Ldap(LdapError::Result { code, message, .. })) if had_cookie && report.entries == 0 => {
            drop_refused_cookie(store, report, &code, &message, "full refresh")?;
            refresh_from(store, settings, directory, lease, ctx, budget, report, None, false, &scope)
        }
        other => other,
    }
}

/// A stored cookie the server refused with `code`: said in the log and the
/// report (the run goes on with a `fallback`), and forgotten.
pub(super) fn drop_refused_cookie(
    store: &dyn KvStore,
    report: &mut SyncReport,
    code: &LdapResultCode,
    message: &str,
    fallback: &str,
) -> Result<(), SyncError> {
    let why = if *code == LdapResultCode::EsyncRefreshRequired {
        "the server asked for a full reload (e-syncRefreshRequired)".to_owned()
    } else {
        let detail = if message.is_empty() { String::new() } else { format!(": {message}") };
        format!("the server refused the stored cookie ({}{detail})", crate::ldap::error::code_name(code))
    };
    crate::log::info("starting over", &[("why", serde_json::json!(why.to_string())), ("with", serde_json::json!(fallback.to_string()))]);
    report.mode_note = Some(format!("{why}: {fallback}"));
    Ok(runs::clear_sync_cookie(store)?)
}

/// One refresh, from `cookie` (`None`: the whole content). `verified`: an
/// earlier refresh from this cookie's line showed that the server's sync
/// UUIDs are the entries' unique ids; deleted and present ids are used
/// only when that is known (from then, or from this run's entries).
#[allow(clippy::too_many_arguments)]
fn refresh_from(
    store: &dyn KvStore,
    settings: &Settings,
    directory: &mut dyn Directory,
    lease: Option<&Lease>,
    ctx: &mut RunContext<'_>,
    budget: &Budget,
    report: &mut SyncReport,
    cookie: Option<Vec<u8>>,
    verified: bool,
    scope: &Fingerprint,
) -> Result<(), SyncError> {
    let attribute = uuid_attribute(settings).unwrap_or("entryUUID").to_owned();
    let had_cookie = cookie.is_some();
    let mut spec = user_search(settings, None)?;
    spec.page_size = None;
    spec.sync = Some(SyncRequest { cookie });
    if let Some(lease) = lease {
        lease.set_progress("users", report.pages);
    }
    crate::log::info(
        "refreshing (RFC 4533)",
        &[
            ("base", serde_json::json!(spec.base.to_string())),
            ("from", serde_json::json!(if had_cookie { "the stored cookie" } else { "nothing" })),
        ],
    );
    let timed = Timed::new(store);
    let key = MarkKey::load_or_create(&timed, ctx.random)?;
    let buffer = WriteBuffer::new(&timed, FlushLimits::SYNC);
    let mut first = true;
    let mut seen = Seen::default();
    let mut deleted: Vec<LdapId> = Vec::new();
    let mut present: Vec<LdapId> = Vec::new();
    let requested: Vec<String> = spec.attributes.clone();
    let mut ids = IdCheck::default();
    let end = directory.sync_search(spec, CHUNK, &mut |chunk: SyncChunk| {
        budget.check()?;
        let SyncChunk { mut changed, changed_uuids, deleted: gone, present: there } = chunk;
        for (entry, uuid) in changed.iter_mut().zip(&changed_uuids) {
            // 389-ds sends every user attribute in an incremental refresh:
            // what was not asked for goes, so marks match a full read's.
            entry.retain_attributes(|name| requested.iter().any(|r| r.eq_ignore_ascii_case(name)));
            ids.check(entry, uuid.as_ref(), &attribute, settings);
            // ... and leaves out operational ones such as nsUniqueId, asked
            // for or not. Once the sync UUIDs are known to be the ids, the
            // entry's id is its sync UUID.
            if let Some(uuid) = uuid
                && entry.values(&attribute).is_none()
                && (verified || ids.matched > 0)
                && ids.mismatched == 0
            {
                entry.push_attribute(&attribute, vec![uuid_text_of(&attribute, uuid).into_bytes()]);
            }
        }
        report.pages += 1;
        report.entries += changed.len() as u64;
        deleted.extend(gone.iter().map(|u| ldap_id_of_uuid(&attribute, u)));
        present.extend(there.iter().map(|u| ldap_id_of_uuid(&attribute, u)));
        apply_page(&buffer, &timed, settings, changed, first, &key, ctx, report, &mut seen)?;
        first = false;
        buffer.flush_if_full()?;
        if let Some(lease) = lease {
            lease.set_progress("users", report.pages);
            lease.renew(store, (ctx.clock)())?;
        }
        Ok(())
    });
    let flushed = buffer.flush();
    report.phases.set_ldap(directory.timing());
    let result = end.and_then(|end| {
        flushed?;
        report.deleted_in_directory = deleted.len() as u64;
        let references = end.references;
        let complete = references == 0;
        let ids_verified = (verified || ids.matched > 0) && ids.mismatched == 0;
        if ids.mismatched > 0 {
            report.mode_note = Some(format!(
                "{} of {} changed entries came with a sync UUID that is not their {attribute}: the server's sync ids are another \
                 attribute (on 389-ds, put nsUniqueId first in ldap_unique_identifier_field), so deleted entries cannot be told \
                 apart and nobody was deactivated for missing",
                ids.mismatched,
                ids.matched + ids.mismatched
            ));
        }
        let refresh_deletes = if ids_verified || !had_cookie { end.done.refresh_deletes } else { None };
        // A present phase counts only when present ids came: 389-ds ends a
        // delete phase (its deletions sent as a syncIdSet) with
        // refreshDeletes FALSE, and taking that for a present phase would
        // make every unchanged entry missing.
        match (had_cookie, end.present_phase && ids_verified, refresh_deletes) {
            // The whole content, or a present phase: everything still there
            // was reported, so it is a complete read like a full one.
            (false, _, _) | (true, true, _) => {
                let users = Users::new(&timed);
                if ids_verified {
                    for ids in present.chunks(CHUNK) {
                        seen.users.extend(users.owners_of(ids)?.into_iter().flatten());
                    }
                } else {
                    // Ids that cannot be matched stand for unknown users: no one is missing for sure.
                    seen.unidentified += present.len() as u64;
                }
                report.fully_in_sync = complete;
                offboard(&timed, settings, ctx, lease, SearchEnd { references, ..SearchEnd::default() }, seen, report)?;
            }
            // Deletions sent explicitly (the server's session log), or none.
            (true, false, Some(_)) => {
                report.fully_in_sync = complete;
                let mut due: BTreeSet<UserId> = if complete { seen.disabled.clone() } else { BTreeSet::new() };
                if settings.sync.disable_missing && complete {
                    let users = Users::new(&timed);
                    for ids in deleted.chunks(CHUNK) {
                        due.extend(users.owners_of(ids)?.into_iter().flatten());
                    }
                } else if !deleted.is_empty() && !complete {
                    report.offboarding().missing_users_not_checked =
                        Some(format!("the refresh was not complete ({references} continuation references): nobody was deactivated"));
                }
                // The breaker's percentage is of the directory: the last complete read's size.
                let population = runs::last_members_total(&timed)?.unwrap_or(seen.users.len() as u64).max(seen.users.len() as u64);
                deactivate(&timed, settings, ctx, lease, due, population, report)?;
            }
            // ldap3_proto cannot tell (a Sync Done without a cookie), or the
            // sync ids are not known to be ours: deleted entries were maybe
            // not all reported, or cannot be matched, so nobody is deactivated for it.
            (true, false, None) => {
                report.offboarding().missing_users_not_checked = Some(if ids_verified {
                    "the server's Sync Done carried no cookie, so whether deletions were all reported is unknown: nobody was deactivated"
                        .to_owned()
                } else {
                    format!(
                        "the server's sync ids are not known to be {attribute} values: deletions cannot be matched, nobody was deactivated"
                    )
                });
                deactivate(&timed, settings, ctx, lease, seen.disabled.clone(), seen.users.len() as u64, report)?;
            }
        }
        if let Some(cookie) = end.done.cookie {
            runs::save_sync_cookie(
                &timed,
                &SyncCookie {
                    mode: "syncrepl".to_owned(),
                    cookie: BASE64.encode(cookie),
                    scope: scope.clone(),
                    since: None,
                    full_at: None,
                    ids_verified,
                },
            )?;
        }
        Ok(())
    });
    report.phases.set_store(&timed);
    result
}

/// Whether the sync UUIDs of changed entries are their unique ids.
#[derive(Debug, Default)]
struct IdCheck {
    matched: u64,
    mismatched: u64,
}

impl IdCheck {
    fn check(&mut self, entry: &crate::ldap::DirectoryEntry, uuid: Option<&[u8; 16]>, attribute: &str, settings: &Settings) {
        let Some(uuid) = uuid else { return };
        match super::map::ldap_id(entry, &settings.search) {
            Ok(id) if id == ldap_id_of_uuid(attribute, uuid) => self.matched += 1,
            // An entry without the attribute is matched by another candidate: no evidence either way.
            Ok(id) if !id.attribute.eq_ignore_ascii_case(attribute) => {}
            Ok(_) => self.mismatched += 1,
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_and_ldap_id_match_what_slapd_sends_as_entryuuid() {
        let uuid = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
        assert_eq!(uuid_text(&uuid), "12345678-9abc-def0-0123-456789abcdef");
        let id = ldap_id_of_uuid("entryUUID", &uuid);
        // The entry's own entryUUID value is that text; map::ldap_id hexes its bytes.
        let expected: String = "12345678-9abc-def0-0123-456789abcdef".bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!(id, LdapId::new("entryUUID", expected));
    }

    #[test]
    fn nsuniqueid_is_389_ds_sync_uuid_in_four_groups() {
        // Seen on 389-ds 2.3: nsUniqueId fac48243-eb9611f1-8b68cb6d-65f3d339, sync UUID fac48243-eb96-11f1-8b68-cb6d65f3d339.
        let uuid = [0xfa, 0xc4, 0x82, 0x43, 0xeb, 0x96, 0x11, 0xf1, 0x8b, 0x68, 0xcb, 0x6d, 0x65, 0xf3, 0xd3, 0x39];
        assert_eq!(ns_unique_id_text(&uuid), "fac48243-eb9611f1-8b68cb6d-65f3d339");
        let expected: String = "fac48243-eb9611f1-8b68cb6d-65f3d339".bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!(ldap_id_of_uuid("nsUniqueId", &uuid), LdapId::new("nsUniqueId", expected));
    }
}
