//! [`SyncReport`]: what one run did, stored at `sync-report:last` (see
//! `store::runs`) and logged as one line. It deserialises too, so readers of
//! the store (a status route, an operator's tool) share this shape.

use serde::{Deserialize, Serialize};

use crate::store::schema::Date;

use super::phases::Phases;
use super::plan::{AvatarChange, Change};

/// Most entry problems kept in a report; the counts stay exact.
pub const MAX_PROBLEMS: usize = 1000;

/// The outcome of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    /// The run's id (its lease's); empty for a run without a lease.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    pub started_at: Option<Date>,
    pub finished_at: Option<Date>,
    pub duration_ms: i64,
    pub outcome: RunOutcome,
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
    /// Users made active again (enabled in the directory again).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reactivated: u64,
    /// Users deactivated (disabled in the directory, or missing from a complete read).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deactivated: u64,
    /// Usernames of the reactivated users, up to [`MAX_PROBLEMS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactivations: Vec<String>,
    /// Usernames of the deactivated users, up to [`MAX_PROBLEMS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deactivations: Vec<String>,
    /// Why deactivations that were due did not happen, when they did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offboarding: Option<Offboarding>,
    /// How the directory was read: `"full"` (every entry, paged) or
    /// `"syncrepl"` (RFC 4533 refresh from the stored cookie).
    #[serde(default)]
    pub mode: String,
    /// Why the mode is not the one asked for, or why a refresh started over
    /// (no cookie yet, a cookie the server refused, changed search settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode_note: Option<String>,
    /// Whether the store now reflects the whole directory: the read (or
    /// refresh) ended in success, complete. `false` after a failure.
    #[serde(default)]
    pub fully_in_sync: bool,
    /// Entries the directory reported deleted (an incremental run).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deleted_in_directory: u64,
    /// Roles given and taken by group membership (`ldap_sync_user_data_roles`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<RolesReport>,
    /// Avatars stored, and those over 1 MiB that were not
    /// (`ldap_background_sync_avatars`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatars: Option<AvatarsReport>,
    /// Where the run's time went (`README.md`, Benchmark).
    #[serde(default)]
    pub phases: Phases,
}

/// What group membership did to roles in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolesReport {
    /// Roles added to users (one per user and role).
    pub added: u64,
    /// Roles removed from users (`ldap_sync_user_data_roles_autoremove`).
    pub removed: u64,
    /// Roles of the map that do not exist here (ignored, as upstream does;
    /// declare custom roles in `rocketchat_custom_roles`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
}

/// What a run did with avatars.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AvatarsReport {
    pub written: u64,
    /// Images over 1 MiB, not stored.
    pub too_large: u64,
    /// One per image not stored, up to [`MAX_PROBLEMS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// What kept a run from deactivating users it would otherwise have deactivated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Offboarding {
    /// Missing users were not looked for, and why (an incomplete read, no baseline yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_users_not_checked: Option<String>,
    /// The circuit breaker tripped: how many would have been deactivated, the limit, and some of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<Breaker>,
    /// Users kept active although due: the last active admin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
}

/// A tripped circuit breaker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Breaker {
    pub would_deactivate: u64,
    pub limit: u64,
    /// Up to 20 usernames of those it would have deactivated.
    pub sample: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How a run ended (`"success"` / `"failed"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    Success,
    /// The run stopped with an error; pages written before it stay written.
    /// A report read before a run ends does not exist: the report is written last.
    #[default]
    Failed,
    /// The time budget ran out (`ldap_sync_time_budget_ms`): the pages read
    /// were written and nobody was deactivated; the next call goes on.
    Stopped,
}

impl RunOutcome {
    fn name(self) -> &'static str {
        match self {
            RunOutcome::Success => "success",
            RunOutcome::Failed => "failed",
            RunOutcome::Stopped => "stopped",
        }
    }
}

/// One skipped or failed entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub dn: String,
    pub reason: String,
}

impl SyncReport {
    /// Counts a planned entry.
    pub fn count(&mut self, change: Change, dn: &str, username: &str) {
        match change {
            Change::Created => self.created += 1,
            Change::Updated => self.updated += 1,
            Change::Reactivated => {
                self.reactivated += 1;
                if self.reactivations.len() < MAX_PROBLEMS {
                    self.reactivations.push(username.to_owned());
                }
            }
            Change::Unchanged => self.unchanged += 1,
            Change::Skipped(reason) => self.skip(dn, reason),
        }
    }

    /// Counts what planning did with an entry's avatar.
    pub fn avatar(&mut self, change: AvatarChange, dn: &str) {
        match change {
            AvatarChange::Untouched => {}
            AvatarChange::Written => self.avatars.get_or_insert_with(AvatarsReport::default).written += 1,
            AvatarChange::TooLarge(size) => {
                let avatars = self.avatars.get_or_insert_with(AvatarsReport::default);
                avatars.too_large += 1;
                if avatars.problems.len() < MAX_PROBLEMS {
                    avatars.problems.push(Problem { dn: dn.to_owned(), reason: format!("avatar of {size} bytes not stored: over 1 MiB") });
                }
            }
        }
    }

    /// Counts a deactivated user.
    pub fn deactivate(&mut self, username: &str) {
        self.deactivated += 1;
        if self.deactivations.len() < MAX_PROBLEMS {
            self.deactivations.push(username.to_owned());
        }
    }

    /// The offboarding note, created when first needed.
    pub fn offboarding(&mut self) -> &mut Offboarding {
        self.offboarding.get_or_insert_with(Offboarding::default)
    }

    /// Counts a skipped entry.
    pub fn skip(&mut self, dn: &str, reason: &str) {
        self.skipped += 1;
        self.note(dn, reason);
    }

    /// Counts a failed entry and logs it with its DN.
    pub fn fail(&mut self, dn: &str, reason: &str) {
        self.failed += 1;
        crate::log::warn("entry failed", &[("dn", serde_json::json!(dn)), ("reason", serde_json::json!(reason))]);
        self.note(dn, reason);
    }

    fn note(&mut self, dn: &str, reason: &str) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem { dn: dn.to_owned(), reason: reason.to_owned() });
        }
    }

    /// Logs the run's outcome as one event: `info` on success, `warn` when
    /// stopped at the time budget, `error` on failure (with the error).
    pub fn log(&self) {
        use serde_json::json;
        let level = match self.outcome {
            RunOutcome::Success => crate::log::Level::Info,
            RunOutcome::Stopped => crate::log::Level::Warn,
            RunOutcome::Failed => crate::log::Level::Error,
        };
        let mut fields = vec![
            ("outcome", json!(self.outcome.name())),
            ("mode", json!(self.mode)),
            ("pages", json!(self.pages)),
            ("entries", json!(self.entries)),
            ("created", json!(self.created)),
            ("updated", json!(self.updated)),
            ("unchanged", json!(self.unchanged)),
            ("skipped", json!(self.skipped)),
            ("failed", json!(self.failed)),
            ("reactivated", json!(self.reactivated)),
            ("deactivated", json!(self.deactivated)),
            ("fullyInSync", json!(self.fully_in_sync)),
            ("durationMs", json!(self.duration_ms)),
        ];
        if let Some(error) = &self.error {
            fields.push(("error", json!(error)));
        }
        crate::log::event(level, "sync finished", &fields);
    }
}
