//! Timestamp mode (`ldap_sync_mode=timestamp`, or `auto` against a server
//! without RFC 4533 while missing users are not deactivated): a run reads
//! only the entries with `modifyTimestamp >=` the start of the last
//! successful run, less [`MARGIN_MS`].
//!
//! * Deletions are invisible to such a read, so it never looks for missing
//!   users: a **full read** (the ordinary scan, with offboarding) runs when
//!   there is no stored start yet, when the search or mapping settings
//!   changed, and when the last complete full read is
//!   `ldap_full_sync_interval_hours` old.
//! * Disabled accounts are seen (disabling an account modifies its entry)
//!   and deactivated as in a full read; users the incremental reads create
//!   join the members baseline, so the next full read finds them missing.
//! * The start is stored (in `sync-cookie`) only after a successful run's
//!   writes landed: a run that fails or is stopped is read again.
//! * An entry that failed to map is read again when it changes, or at the
//!   next full read.

use crate::ldap::filter;
use crate::settings::Settings;
use crate::store::KvStore;
use crate::store::runs::{self, Lease, SyncCookie};
use crate::store::schema::Date;
use ldap3_proto::proto::LdapFilter;

use super::SyncError;
use super::phases::Timed;
use super::plan::PlanContext;
use super::refresh::cookie_scope;
use super::report::SyncReport;
use super::run::{Budget, RunContext, deactivate, join_baseline, read_pages, scan_spec};
use super::search::user_search;

/// How far before the last run's start an incremental read reaches back:
/// covers clock skew between this host and the directory, and changes made
/// while the last run's search was being answered.
pub const MARGIN_MS: i64 = 10 * 60 * 1000;
/// The attribute every LDAP server maintains on a modified entry (RFC 4512).
pub const ATTRIBUTE: &str = "modifyTimestamp";

/// A run in timestamp mode: full or incremental, as described above.
pub fn run(
    store: &dyn KvStore,
    settings: &Settings,
    directory: &mut dyn super::search::Directory,
    lease: Option<&Lease>,
    ctx: &mut RunContext<'_>,
    budget: &Budget,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let started = (ctx.clock)();
    let plan_ctx = PlanContext::new(settings, started);
    let scope = cookie_scope(settings, &plan_ctx, &ctx.groups)?;
    let interval_ms = i64::from(settings.sync.full_interval_hours) * 3_600_000;
    let stored = runs::sync_cookie(store)?;
    let state = match &stored {
        Some(c) if c.mode == "timestamp" && c.scope == scope => c.since.zip(c.full_at),
        Some(c) if c.mode == "timestamp" => {
            set_note(report, "full read: the search settings or group memberships changed since the last run".to_owned());
            None
        }
        _ => {
            set_note(report, "full read: no earlier timestamp run".to_owned());
            None
        }
    };
    // The next start is the directory's own clock: the newest
    // modifyTimestamp read, less this run's duration (an entry modified
    // after its page was sent is no older than that). Skew between this
    // host and the directory does not matter.
    let mut newest = Newest::default();
    let mut spec = user_search(settings, None)?;
    let strip = !spec.attributes.iter().any(|a| a.eq_ignore_ascii_case(ATTRIBUTE));
    if strip {
        spec.attributes.push(ATTRIBUTE.to_owned());
    }
    let mut inspect = |entries: &mut [crate::ldap::DirectoryEntry]| newest.see(entries, strip);
    let next = |newest: &Newest, fallback: Date, now: Date| match newest.0 {
        Some(millis) => Date { millis: millis - now.millis.saturating_sub(started.millis).max(0) },
        None => fallback,
    };
    match state {
        Some((since, full_at)) if started.millis.saturating_sub(full_at.millis) < interval_ms => {
            let next_full = Date { millis: full_at.millis + interval_ms };
            set_note(
                report,
                format!(
                    "entries modified since {} (the last run's newest change less its duration and {} minutes); deletions are found by the \
                 next full read, due after {}",
                    Date { millis: since.millis - MARGIN_MS }.iso(),
                    MARGIN_MS / 60_000,
                    next_full.iso()
                ),
            );
            spec.filter = filter::and(vec![spec.filter, modified_since(Date { millis: since.millis - MARGIN_MS })]);
            incremental(store, settings, directory, spec, &mut inspect, lease, ctx, budget, report)?;
            save(store, scope, next(&newest, since, (ctx.clock)()), full_at)
        }
        other => {
            if other.is_some() {
                set_note(
                    report,
                    format!(
                        "full read: the last complete full read is over ldap_full_sync_interval_hours ({}) old",
                        settings.sync.full_interval_hours
                    ),
                );
            }
            scan_spec(store, settings, directory, spec, &mut inspect, lease, ctx, budget, report)?;
            let since = next(&newest, other.map_or(started, |(since, _)| since), (ctx.clock)());
            // Only a complete read resets the clock of the full reads.
            match (report.fully_in_sync, other) {
                (true, _) => save(store, scope, since, started),
                (false, Some((_, full_at))) => save(store, scope, since, full_at),
                (false, None) => Ok(()),
            }
        }
    }
}

/// The newest `modifyTimestamp` of a read, in ms.
#[derive(Debug, Default)]
struct Newest(Option<i64>);

impl Newest {
    /// Notes the entries' timestamps; with `strip`, removes the attribute
    /// (requested for this alone), so that sync marks stay those of a full read.
    fn see(&mut self, entries: &mut [crate::ldap::DirectoryEntry], strip: bool) {
        for entry in entries {
            let values = if strip {
                entry.take(ATTRIBUTE).unwrap_or_default()
            } else {
                entry.values(ATTRIBUTE).unwrap_or_default().into_iter().map(<[u8]>::to_vec).collect()
            };
            for value in values {
                if let Some(at) = std::str::from_utf8(&value).ok().and_then(parse_generalized_time) {
                    self.0 = Some(self.0.map_or(at, |m| m.max(at)));
                }
            }
        }
    }
}

/// Adds to the note `auto` may have left (why not RFC 4533).
fn set_note(report: &mut SyncReport, text: String) {
    report.mode_note = Some(match report.mode_note.take() {
        Some(earlier) => format!("{earlier}; {text}"),
        None => text,
    });
}

fn save(store: &dyn KvStore, scope: crate::store::users::Fingerprint, since: Date, full_at: Date) -> Result<(), SyncError> {
    let cookie = SyncCookie {
        mode: "timestamp".to_owned(),
        cookie: String::new(),
        scope,
        since: Some(since),
        full_at: Some(full_at),
        ids_verified: false,
    };
    Ok(runs::save_sync_cookie(store, &cookie)?)
}

/// The entries modified since the stored start: applied as pages of a full
/// read; then the disabled ones are deactivated, and users new to the
/// members baseline are added to it.
#[allow(clippy::too_many_arguments)]
fn incremental(
    store: &dyn KvStore,
    settings: &Settings,
    directory: &mut dyn super::search::Directory,
    spec: crate::ldap::SearchSpec,
    inspect: &mut dyn FnMut(&mut [crate::ldap::DirectoryEntry]),
    lease: Option<&Lease>,
    ctx: &mut RunContext<'_>,
    budget: &Budget,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let timed = Timed::new(store);
    let result = read_pages(&timed, settings, directory, spec, inspect, lease, ctx, budget, report).and_then(|(end, seen)| {
        let complete = end.references == 0;
        report.fully_in_sync = complete && !settings.sync.disable_missing;
        if !complete {
            report.offboarding().missing_users_not_checked = Some(format!(
                "the read was not complete ({} continuation references to other servers): nobody was deactivated",
                end.references
            ));
            return Ok(());
        }
        let population = runs::last_members_total(&timed)?.unwrap_or(0).max(seen.users.len() as u64);
        deactivate(&timed, settings, ctx, lease, seen.disabled.clone(), population, report)?;
        // New users join the baseline: the next full read must find them missing.
        join_baseline(&timed, &seen.users, ctx)?;
        Ok(())
    });
    report.phases.set_store(&timed);
    result
}

/// RFC 4517 GeneralizedTime as servers send `modifyTimestamp`:
/// `YYYYMMDDHHMMSS[.fraction]Z` (UTC). Other forms give `None`.
fn parse_generalized_time(text: &str) -> Option<i64> {
    let body = text.strip_suffix('Z')?;
    let (whole, fraction) = body.split_once(['.', ',']).unwrap_or((body, ""));
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| whole[r].parse::<i64>().ok();
    let (y, mo, d, h, mi, s) = (n(0..4)?, n(4..6)?, n(6..8)?, n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = fraction.get(..3).map_or_else(|| format!("{fraction:0<3}"), str::to_owned).parse::<i64>().ok()?;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms)
}

/// `(modifyTimestamp>=<generalized time>)`, in UTC to the second.
pub fn modified_since(at: Date) -> LdapFilter {
    filter::greater_or_equal(ATTRIBUTE, generalized_time(at))
}

/// RFC 4517 GeneralizedTime in UTC, whole seconds (rounded down):
/// `20261129012345Z`.
pub fn generalized_time(at: Date) -> String {
    // `Date::iso` is `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    let iso = at.iso();
    let digits: String = iso.split('.').next().unwrap_or_default().chars().filter(char::is_ascii_digit).collect();
    format!("{digits}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_time_is_utc_to_the_second() {
        // 2026-11-29T01:23:45.678Z
        let at = Date { millis: 1_795_915_425_678 };
        assert_eq!(at.iso(), "2026-11-29T01:23:45.678Z");
        assert_eq!(generalized_time(at), "20261129012345Z");
        assert_eq!(filter::to_string(&modified_since(at)), "(modifyTimestamp>=20261129012345Z)");
    }

    #[test]
    fn modify_timestamps_parse_as_servers_send_them() {
        assert_eq!(parse_generalized_time("20261129012345Z"), Some(1_795_915_425_000));
        assert_eq!(parse_generalized_time("20261129012345.678Z"), Some(1_795_915_425_678));
        assert_eq!(parse_generalized_time("20261129012345.6Z"), Some(1_795_915_425_600));
        assert_eq!(parse_generalized_time("19700101000000Z"), Some(0));
        assert_eq!(parse_generalized_time("20240229235959Z"), Some(1_709_251_199_000));
        for bad in ["20261129012345", "2026112901234Z", "20261329012345Z", "20261129012345+0100", "2026112901234xZ", ""] {
            assert_eq!(parse_generalized_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_newest_timestamp_is_noted_and_the_attribute_stripped_when_only_asked_for_that() {
        let entry =
            |ts: &str| crate::ldap::DirectoryEntry::new("uid=a,dc=x", vec![("modifyTimestamp".to_owned(), vec![ts.as_bytes().to_vec()])]);
        let mut entries = vec![entry("20261129012345Z"), entry("20261129012346Z"), entry("garbage")];
        let mut newest = Newest::default();
        newest.see(&mut entries, true);
        assert_eq!(newest.0, Some(1_795_915_426_000));
        assert!(entries.iter().all(|e| e.values("modifyTimestamp").is_none()));
        let mut kept = vec![entry("20261129012347Z")];
        newest.see(&mut kept, false);
        assert_eq!(newest.0, Some(1_795_915_427_000));
        assert!(kept[0].values("modifyTimestamp").is_some());
    }
}
