//! The directory-scan sync (spec §3, "directory scan" mode) as a stream:
//! LDAP pages → mapped users → one batched read and one batched write per
//! page. Nothing is held beyond one page, so memory does not grow with the
//! directory.
//!
//! By job: [`run`] (the scan and its report), `search` (the user search,
//! shared by the scan, login and `ldap.testSearch`), `map` (entry → user),
//! `plan` (stored vs incoming → writes), `login` (a directory login,
//! creating or updating the user with the same map and plan).
//!
//! Never names a `spin_sdk` or `ldap3_proto` type: it sees [`Directory`],
//! `DirectoryEntry` and the store's repositories.

mod dirsync;
pub mod error;
pub mod groups;
pub mod login;
pub mod map;
pub mod phases;
pub mod plan;
pub mod preview;
mod refresh;
pub mod report;
mod run;
pub mod search;
mod timestamp;

pub use error::SyncError;
pub use report::SyncReport;
pub use run::{RunContext, run};
pub use search::{Directory, find_entry};

#[cfg(test)]
use run::run_with;

#[cfg(test)]
mod tests;
