//! [`SyncReport`]: what one run did, stored at `sync-report:last` and
//! logged as one line.

use serde::Serialize;

use crate::store::schema::Date;

/// Most entry problems kept in a report; the counts stay exact.
pub const MAX_PROBLEMS: usize = 1000;

/// The outcome of a run.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub started_at: Option<Date>,
    pub finished_at: Option<Date>,
    pub duration_ms: i64,
    /// `"success"` or `"failed"`.
    pub outcome: &'static str,
    /// The run-level error, when `outcome` is `"failed"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub pages: u32,
    pub entries: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Entries the settings said not to touch.
    pub skipped: u64,
    /// Entries with a problem of their own (no e-mail, no unique id, taken username or e-mail).
    pub failed: u64,
    /// One per skipped or failed entry, up to [`MAX_PROBLEMS`].
    pub problems: Vec<Problem>,
}

/// One skipped or failed entry.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub dn: String,
    pub reason: String,
}

impl SyncReport {
    /// Counts a skipped entry.
    pub fn skip(&mut self, dn: &str, reason: &str) {
        self.skipped += 1;
        self.note(dn, reason);
    }

    /// Counts a failed entry and logs it with its DN.
    pub fn fail(&mut self, dn: &str, reason: &str) {
        self.failed += 1;
        eprintln!("ldap-sync: entry skipped: dn={dn:?}: {reason}");
        self.note(dn, reason);
    }

    fn note(&mut self, dn: &str, reason: &str) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem { dn: dn.to_owned(), reason: reason.to_owned() });
        }
    }

    /// The one-line log summary.
    pub fn summary(&self) -> String {
        format!(
            "ldap-sync: sync {}: pages={} entries={} created={} updated={} unchanged={} skipped={} failed={} duration_ms={}{}",
            self.outcome,
            self.pages,
            self.entries,
            self.created,
            self.updated,
            self.unchanged,
            self.skipped,
            self.failed,
            self.duration_ms,
            self.error.as_deref().map(|e| format!(" error={e:?}")).unwrap_or_default()
        )
    }
}
