//! The key-value store: key formats, stored value types, the repositories
//! that own them, and the one seam ([`KvStore`]) through which they read
//! and write.
//!
//! Only this module spells a key or shapes a stored value: the rest of the
//! crate asks [`users::Users`] for users and their index keys,
//! [`access`] for permissions and limiter windows, [`runs`] for the sync's
//! own records, and stages writes in a [`Batch`].
//!
//! Everything goes through batch calls (`get-many` / `set-many` /
//! `delete-many`): on Spin's SQLite store a single `set` is its own
//! transaction with an fsync, about 90× slower than one `set-many`
//! (`shared/notes/spin-platform.md` §10). This module never speaks LDAP or
//! HTTP. `docs/kv-schema.md` is the contract for every key written here.

pub mod access;
pub mod error;
pub mod ids;
mod keys;
#[cfg(test)]
pub mod memory;
pub mod runs;
pub mod schema;
#[cfg(target_arch = "wasm32")]
pub mod spin;
pub mod users;

pub use error::StoreError;
pub use ids::{LdapId, UserId};

/// The narrow store interface the rest of the crate depends on.
///
/// Implemented by the Spin store (`wasi:keyvalue` batch calls) in the
/// component and by [`memory::MemoryStore`] in native unit tests.
pub trait KvStore {
    /// Reads many keys at once; the result has one entry per key, in order.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// Writes many pairs in one call (one transaction on Spin's SQLite store).
    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), StoreError>;
    /// Deletes many keys in one call.
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError>;
    /// Every key in the store (for listings; the sync never scans).
    fn keys(&self) -> Result<Vec<String>, StoreError>;
}

/// Writes staged by the repositories and committed together: one
/// `set-many` (one transaction on Spin's SQLite store), then one
/// `delete-many` for keys that no longer name anything.
#[derive(Debug, Default)]
pub struct Batch {
    sets: Vec<(String, Vec<u8>)>,
    deletes: Vec<String>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes everything staged.
    pub fn commit(self, store: &dyn KvStore) -> Result<(), StoreError> {
        store.set_many(self.sets)?;
        store.delete_many(&self.deletes)
    }

    fn set<T: serde::Serialize>(&mut self, key: String, value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt { key: key.clone(), reason: e.to_string() })?;
        self.sets.push((key, bytes));
        Ok(())
    }

    fn delete(&mut self, key: String) {
        self.deletes.push(key);
    }
}

/// Reads one JSON document, if present (one `get-many` of one key: for
/// lookups whose key depends on a previous read; batch everything else).
fn get_json<T: serde::de::DeserializeOwned>(store: &dyn KvStore, key: &str) -> Result<Option<T>, StoreError> {
    let value = store.get_many(&[key.to_owned()])?.pop().flatten();
    decode(key, value)
}

/// Decodes a stored JSON value; a value that does not parse is an error
/// naming the key, never a silent default (it would be overwritten later).
fn decode<T: serde::de::DeserializeOwned>(key: &str, value: Option<Vec<u8>>) -> Result<Option<T>, StoreError> {
    let Some(bytes) = value else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| StoreError::Corrupt { key: key.to_owned(), reason: e.to_string() })
}
