//! The sync's own records: the schema version and the last run's report
//! (`sync-report:last`). The report's shape is `sync::SyncReport`; this
//! module only knows where it lives.

use serde::Serialize;

use super::{Batch, StoreError, keys};
#[cfg(test)]
use super::{KvStore, get_json};

/// Reads the last run's report. The component itself never reads it back
/// (other components read the key, `docs/kv-schema.md`); the tests do, to
/// prove that what is stored deserialises.
#[cfg(test)]
pub fn last_report<T: serde::de::DeserializeOwned>(store: &dyn KvStore) -> Result<Option<T>, StoreError> {
    get_json(store, keys::SYNC_REPORT)
}

impl Batch {
    /// Stages the schema version (`docs/kv-schema.md`), written with a run's first page.
    pub fn put_schema_version(&mut self) -> Result<(), StoreError> {
        self.set(keys::SCHEMA_VERSION.to_owned(), &keys::SCHEMA_VERSION_VALUE)
    }

    /// Stages a run's report.
    pub fn put_report<T: Serialize>(&mut self, report: &T) -> Result<(), StoreError> {
        self.set(keys::SYNC_REPORT.to_owned(), report)
    }
}
