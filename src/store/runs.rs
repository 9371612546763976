//! The sync's own records: the schema version, the last run's report
//! (`sync-report:last`; its shape is `sync::SyncReport`, this module only
//! knows where it lives), the members of the last complete read (what
//! missing users are found against), the breaker's override marker, and
//! the lease that lets one run at a time proceed.

use std::cell::{Cell, RefCell};

use serde::{Deserialize, Serialize};

use super::users::Fingerprint;

use super::ids::UserId;
use super::schema::Date;
use super::{Batch, KvStore, StoreError, decode, get_json, keys, write_generation};

/// `_id`s per members chunk: 100,000 users are 100 values of ~20 KB.
const MEMBERS_CHUNK: usize = 1000;

/// The head of the members of the last complete read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MembersHead {
    generation: String,
    chunks: usize,
    total: usize,
}

/// The `_id`s the last complete read saw (`None`: no complete read yet).
/// Two `get-many`s: the head, then every chunk.
pub fn last_members(store: &dyn KvStore) -> Result<Option<Vec<UserId>>, StoreError> {
    let Some(head) = get_json::<MembersHead>(store, keys::SYNC_MEMBERS)? else {
        return Ok(None);
    };
    let chunk_keys: Vec<String> = (0..head.chunks).map(|i| keys::sync_members_chunk(&head.generation, i)).collect();
    let mut ids = Vec::with_capacity(head.total);
    for (key, value) in chunk_keys.iter().zip(store.get_many(&chunk_keys)?) {
        match decode::<Vec<UserId>>(key, value)? {
            Some(chunk) => ids.extend(chunk),
            // A chunk gone missing: no baseline, rather than a wrong one.
            None => return Ok(None),
        }
    }
    Ok(Some(ids))
}

/// Chunks of the baseline read per `get-many` when streaming it.
const MEMBERS_CHUNKS_PER_READ: usize = 8;

/// Hands the `_id`s the last complete read saw to `each`, a chunk (up to
/// 1,000) at a time, so they are never all in memory. `Ok(false)`: there is
/// no baseline, or a chunk of it is gone (what `each` saw must then be
/// thrown away: no baseline rather than a wrong one).
pub fn scan_members(store: &dyn KvStore, each: &mut dyn FnMut(Vec<UserId>)) -> Result<bool, StoreError> {
    let Some(head) = get_json::<MembersHead>(store, keys::SYNC_MEMBERS)? else {
        return Ok(false);
    };
    let chunk_keys: Vec<String> = (0..head.chunks).map(|i| keys::sync_members_chunk(&head.generation, i)).collect();
    for keys in chunk_keys.chunks(MEMBERS_CHUNKS_PER_READ) {
        for (key, value) in keys.iter().zip(store.get_many(keys)?) {
            match decode::<Vec<UserId>>(key, value)? {
                Some(chunk) => each(chunk),
                None => return Ok(false),
            }
        }
    }
    Ok(true)
}

/// Stores the members of a complete read: the chunks, then the head, then
/// the previous generation's chunks are deleted.
pub fn save_members(store: &dyn KvStore, ids: &[UserId], generation: &str) -> Result<(), StoreError> {
    let previous: Option<MembersHead> = get_json(store, keys::SYNC_MEMBERS)?;
    let head = MembersHead { generation: generation.to_owned(), chunks: ids.len().div_ceil(MEMBERS_CHUNK), total: ids.len() };
    let stale = previous
        .into_iter()
        .filter(|p| p.generation != generation)
        .flat_map(|old| (0..old.chunks).map(move |i| keys::sync_members_chunk(&old.generation, i)));
    let chunk_key = |i| keys::sync_members_chunk(generation, i);
    write_generation(store, ids, MEMBERS_CHUNK, chunk_key, (keys::SYNC_MEMBERS.to_owned(), &head), stale, Batch::new())
}

/// Users the last complete read saw, from the baseline's head alone (one read).
pub fn last_members_total(store: &dyn KvStore) -> Result<Option<u64>, StoreError> {
    Ok(get_json::<MembersHead>(store, keys::SYNC_MEMBERS)?.map(|h| h.total as u64))
}

/// Where an incremental run resumes: the server's cookie, for the search
/// whose fingerprint is `scope` (another search must not use it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCookie {
    /// `"syncrepl"` or `"timestamp"`.
    pub mode: String,
    /// syncrepl: the cookie's bytes, base64 (standard alphabet, padded).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cookie: String,
    pub scope: Fingerprint,
    /// timestamp: the start of the last successful run; the next one reads
    /// the entries modified since (less a margin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Date>,
    /// timestamp: the start of the last complete full read.
    #[serde(rename = "fullAt", default, skip_serializing_if = "Option::is_none")]
    pub full_at: Option<Date>,
    /// syncrepl: the server's sync UUIDs were seen to be the entries' unique
    /// ids, so deleted and present ids can be matched to users.
    #[serde(rename = "idsVerified", default, skip_serializing_if = "std::ops::Not::not")]
    pub ids_verified: bool,
}

/// The stored cookie, if any.
pub fn sync_cookie(store: &dyn KvStore) -> Result<Option<SyncCookie>, StoreError> {
    get_json(store, keys::SYNC_COOKIE)
}

/// Stores the cookie (one write, after the run's writes have landed).
pub fn save_sync_cookie(store: &dyn KvStore, cookie: &SyncCookie) -> Result<(), StoreError> {
    let mut batch = Batch::new();
    batch.set(keys::SYNC_COOKIE.to_owned(), cookie)?;
    batch.commit(store)
}

/// Forgets the cookie: the next incremental run starts with a full refresh.
pub fn clear_sync_cookie(store: &dyn KvStore) -> Result<(), StoreError> {
    store.delete_many(&[keys::SYNC_COOKIE.to_owned()])
}

/// Whether a forced run already passed the breaker since the override was set.
pub fn force_used(store: &dyn KvStore) -> Result<bool, StoreError> {
    Ok(get_json::<bool>(store, keys::SYNC_FORCE_USED)?.unwrap_or(false))
}

/// Records that a forced run passed (`true`), or forgets it once the override is off (`false`).
pub fn set_force_used(store: &dyn KvStore, used: bool) -> Result<(), StoreError> {
    if used {
        let mut batch = Batch::new();
        batch.set(keys::SYNC_FORCE_USED.to_owned(), &true)?;
        batch.commit(store)
    } else {
        store.delete_many(&[keys::SYNC_FORCE_USED.to_owned()])
    }
}

/// The lease record of the run in progress, with how far it got (written
/// when the lease is renewed: at least every [`PROGRESS_EVERY_MS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeaseRecord {
    run_id: String,
    expires_at: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started_at: Option<Date>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    phase: String,
    #[serde(default)]
    pages: u32,
}

/// The most time between two writes of a live run's progress.
pub const PROGRESS_EVERY_MS: i64 = 10_000;

/// A run in progress, as its lease record shows it (`ldap.syncStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInProgress {
    pub run_id: String,
    pub started_at: Option<Date>,
    /// `"starting"`, `"groups"`, `"users"` or `"offboarding"`.
    pub phase: String,
    /// Pages of entries done when the progress was last written.
    pub pages: u32,
    /// When the lease runs out unless renewed.
    pub expires_at: Date,
}

/// The run holding a live lease at `now`, if any.
pub fn run_in_progress(store: &dyn KvStore, now: Date) -> Result<Option<RunInProgress>, StoreError> {
    let record: Option<LeaseRecord> = get_json(store, keys::SYNC_LEASE)?;
    Ok(record.filter(|l| l.expires_at > now).map(|l| RunInProgress {
        run_id: l.run_id,
        started_at: l.started_at,
        phase: if l.phase.is_empty() { "starting".to_owned() } else { l.phase },
        pages: l.pages,
        expires_at: l.expires_at,
    }))
}

/// What asking for the lease gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAnswer {
    /// This run holds it.
    Taken(Lease),
    /// Another run does (its id, when known).
    Held(Option<String>),
}

/// A held lease: renewed while the run proceeds, released at its end.
///
/// Taking it is atomic where the host has atomics: time is cut in slots of
/// one lease length, and in each slot only the request whose `increment` of
/// `sync-lease-slot:<slot>` returns 1 may take a lease that is not live. The
/// holder also claims the next slot, so at a slot's edge nobody overtakes a
/// live run; a holder that died is taken over at most two lengths later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    run_id: String,
    ttl_ms: i64,
    slot: i64,
    started_at: Date,
    /// The phase and pages done, written with the next renewal.
    progress: RefCell<(&'static str, u32)>,
    /// When it was last renewed: a quarter of its length passes before the next
    /// renewal is written, so a run of many pages writes a handful, not one a page.
    renewed_at: Cell<i64>,
}

/// Asks for the lease at `now` for `run_id`, for `ttl_ms` at a time.
pub fn take_lease(store: &dyn KvStore, run_id: &str, now: Date, ttl_ms: i64) -> Result<LeaseAnswer, StoreError> {
    let ttl_ms = ttl_ms.max(1);
    let current: Option<LeaseRecord> = get_json(store, keys::SYNC_LEASE)?;
    if let Some(live) = current.as_ref().filter(|l| l.expires_at > now) {
        return Ok(LeaseAnswer::Held(Some(live.run_id.clone())));
    }
    let slot = now.millis.div_euclid(ttl_ms);
    if store.increment(&keys::sync_lease_slot(slot), 1)? != 1 {
        return Ok(LeaseAnswer::Held(current.map(|l| l.run_id)));
    }
    let lease = Lease {
        run_id: run_id.to_owned(),
        ttl_ms,
        slot,
        started_at: now,
        progress: RefCell::new(("starting", 0)),
        renewed_at: Cell::new(i64::MIN),
    };
    lease.renew(store, now)?;
    store.delete_many(&[keys::sync_lease_slot(slot - 1)])?;
    Ok(LeaseAnswer::Taken(lease))
}

impl Lease {
    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Notes how far the run got; the next renewal writes it.
    pub fn set_progress(&self, phase: &'static str, pages: u32) {
        crate::log::set_phase(phase);
        *self.progress.borrow_mut() = (phase, pages);
    }

    /// Extends the lease by its length from `now`, claims the slots up to
    /// then, and records the progress. Written at most every quarter of the
    /// lease's length or [`PROGRESS_EVERY_MS`], whichever is shorter.
    pub fn renew(&self, store: &dyn KvStore, now: Date) -> Result<(), StoreError> {
        if now.millis.saturating_sub(self.renewed_at.get()) < (self.ttl_ms / 4).min(PROGRESS_EVERY_MS) {
            return Ok(());
        }
        self.renewed_at.set(now.millis);
        let expires_at = Date { millis: now.millis + self.ttl_ms };
        let through = expires_at.millis.div_euclid(self.ttl_ms);
        for slot in (now.millis.div_euclid(self.ttl_ms) + 1)..=through {
            store.increment(&keys::sync_lease_slot(slot), 1)?;
        }
        let mut batch = Batch::new();
        let (phase, pages) = *self.progress.borrow();
        let record =
            LeaseRecord { run_id: self.run_id.clone(), expires_at, started_at: Some(self.started_at), phase: phase.to_owned(), pages };
        batch.set(keys::SYNC_LEASE.to_owned(), &record)?;
        batch.commit(store)
    }

    /// Whether this run still holds the lease (nobody took it over).
    pub fn still_held(&self, store: &dyn KvStore) -> Result<bool, StoreError> {
        Ok(get_json::<LeaseRecord>(store, keys::SYNC_LEASE)?.is_some_and(|l| l.run_id == self.run_id))
    }

    /// Ends the lease, so the next call may start at once.
    pub fn release(self, store: &dyn KvStore, now: Date) -> Result<(), StoreError> {
        if !self.still_held(store)? {
            return Ok(());
        }
        let last = now.millis.div_euclid(self.ttl_ms) + 1;
        let mut slots: Vec<String> = (self.slot..=last).map(keys::sync_lease_slot).collect();
        slots.push(keys::SYNC_LEASE.to_owned());
        store.delete_many(&slots)
    }
}

/// Reads the last run's report. The component itself never reads it back
/// (other components read the key, `docs/kv-schema.md`); the tests do, to
/// prove that what is stored deserialises.
#[cfg(test)]
pub fn last_report<T: serde::de::DeserializeOwned>(store: &dyn KvStore) -> Result<Option<T>, StoreError> {
    get_json(store, keys::SYNC_REPORT)
}

/// Stages the schema version (`docs/kv-schema.md`) in `batch` unless the
/// store already holds it: written with a run's first page, and only once.
pub fn stage_schema_version(store: &dyn KvStore, batch: &mut Batch) -> Result<(), StoreError> {
    let stored: Option<u32> = get_json(store, keys::SCHEMA_VERSION)?;
    if stored != Some(keys::SCHEMA_VERSION_VALUE) {
        batch.set(keys::SCHEMA_VERSION.to_owned(), &keys::SCHEMA_VERSION_VALUE)?;
    }
    Ok(())
}

/// Reports kept in the history (`sync-report:<n>`); older ones are deleted
/// as new ones are written.
pub const REPORT_HISTORY: i64 = 20;

impl Batch {
    /// Stages a run's report as the last one, and as number `seq` of the
    /// history ([`next_report_seq`]), deleting the ones that fall out of it.
    pub fn put_report<T: Serialize>(&mut self, report: &T, seq: i64) -> Result<(), StoreError> {
        self.set(keys::SYNC_REPORT.to_owned(), report)?;
        self.set(keys::sync_report(seq), report)?;
        // A few more than one, in case an earlier delete was lost.
        for old in (seq - REPORT_HISTORY - 4).max(1)..=(seq - REPORT_HISTORY) {
            self.delete(keys::sync_report(old));
        }
        Ok(())
    }
}

/// Stores the plan of a preview (one write; the previous plan goes).
pub fn save_preview<T: Serialize>(store: &dyn KvStore, plan: &T) -> Result<(), StoreError> {
    let mut batch = Batch::new();
    batch.set(keys::SYNC_PREVIEW.to_owned(), plan)?;
    batch.commit(store)
}

/// The number of the next report (an atomic `increment`: two runs never
/// share one, whatever the lease).
pub fn next_report_seq(store: &dyn KvStore) -> Result<i64, StoreError> {
    store.increment(keys::SYNC_REPORT_SEQ, 1)
}

/// The newest `count` reports of the history, newest first, and how many
/// the history holds. A report that does not parse is skipped, not an error
/// (one bad record must not hide the others).
pub fn recent_reports<T: serde::de::DeserializeOwned>(store: &dyn KvStore, count: usize) -> Result<(Vec<T>, u64), StoreError> {
    let newest = super::counter(keys::SYNC_REPORT_SEQ, store.get_many(&[keys::SYNC_REPORT_SEQ.to_owned()])?.pop().flatten())?;
    let oldest = (newest - REPORT_HISTORY + 1).max(1);
    let wanted: Vec<String> = (oldest..=newest).rev().take(count).map(keys::sync_report).collect();
    let mut reports = Vec::new();
    for (key, value) in wanted.iter().zip(store.get_many(&wanted)?) {
        match decode::<T>(key, value) {
            Ok(Some(report)) => reports.push(report),
            Ok(None) => {}
            Err(e) => crate::log::warn("skipping a stored report that does not parse", &[("error", serde_json::json!(e.to_string()))]),
        }
    }
    let total = u64::try_from(newest - oldest + 1).unwrap_or(0);
    Ok((reports, total))
}
