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
pub mod avatars;
pub mod buffer;
pub mod dry_run;
pub mod error;
pub mod ids;
mod keys;
#[cfg(any(test, feature = "fuzzing"))]
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
    /// Adds `delta` to the counter at `key` (absent = 0) and returns the new
    /// value, atomically where the host can (`wasi:keyvalue/atomics`: Spin's
    /// SQLite and Redis stores). Spin stores counters as an 8-byte
    /// little-endian `i64` on SQLite and as decimal text on Redis
    /// (`INCRBY`); [`counter`] reads both. They are not JSON.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
}

/// Decodes a counter value (see [`KvStore::increment`]); absent = 0.
/// Spin's SQLite store keeps an 8-byte little-endian `i64`; its Redis store
/// (`INCRBY`) keeps decimal text. Text is recognised by its bytes: all ASCII
/// digits (after an optional `-`). An 8-byte little-endian counter made of
/// such bytes would be over 3·10¹⁸, which no counter here reaches.
fn counter(key: &str, value: Option<Vec<u8>>) -> Result<i64, StoreError> {
    let Some(bytes) = value else { return Ok(0) };
    let digits = bytes.strip_prefix(b"-").unwrap_or(&bytes);
    if !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && let Some(n) = std::str::from_utf8(&bytes).ok().and_then(|t| t.parse::<i64>().ok())
    {
        return Ok(n);
    }
    <[u8; 8]>::try_from(bytes.as_slice()).map(i64::from_le_bytes).map_err(|_| StoreError::Corrupt {
        key: key.to_owned(),
        reason: format!("a counter is 8 bytes (little-endian) or decimal text, not {} bytes", bytes.len()),
    })
}

/// Writes staged by the repositories and committed together: one
/// `set-many` (one transaction on Spin's SQLite store), then one
/// `delete-many` for keys that no longer name anything.
#[derive(Debug, Default)]
pub struct Batch {
    sets: Vec<(String, Vec<u8>)>,
    deletes: Vec<String>,
    /// Counters to bump after the writes land (see [`KvStore::increment`]).
    increments: Vec<(String, i64)>,
    /// Keys whose last staged state wins, set or delete, whatever was
    /// staged before (sync marks: a document write drops its mark, a later
    /// mark for the same user sets it again).
    last_wins: Vec<(String, Option<Vec<u8>>)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes everything staged, then bumps the counters: a reader that
    /// sees a counter's new value also sees the writes it counts.
    pub fn commit(mut self, store: &dyn KvStore) -> Result<(), StoreError> {
        let mut last: std::collections::HashMap<String, Option<Vec<u8>>> = std::collections::HashMap::new();
        last.extend(self.last_wins);
        for (key, value) in last {
            match value {
                Some(value) => self.sets.push((key, value)),
                None => self.deletes.push(key),
            }
        }
        if !self.sets.is_empty() {
            store.set_many(self.sets)?;
        }
        if !self.deletes.is_empty() {
            store.delete_many(&self.deletes)?;
        }
        for (key, delta) in self.increments {
            store.increment(&key, delta)?;
        }
        Ok(())
    }

    fn bump(&mut self, key: &str) {
        if !self.increments.iter().any(|(k, _)| k == key) {
            self.increments.push((key.to_owned(), 1));
        }
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

/// Writes `ids` as chunks of `per_chunk` under a new generation (one
/// `set-many`), then, in a second batch, the `head` that names it, and
/// deletes the previous generation's `stale` chunk keys with anything else
/// in `swap`. A reader that follows the head never sees half a generation.
fn write_generation<H: serde::Serialize>(
    store: &dyn KvStore,
    ids: &[UserId],
    per_chunk: usize,
    chunk_key: impl Fn(usize) -> String,
    head: (String, &H),
    stale: impl Iterator<Item = String>,
    mut swap: Batch,
) -> Result<(), StoreError> {
    let mut chunks = Batch::new();
    for (i, chunk) in ids.chunks(per_chunk).enumerate() {
        chunks.set(chunk_key(i), &chunk)?;
    }
    chunks.commit(store)?;
    swap.set(head.0, head.1)?;
    stale.for_each(|key| swap.delete(key));
    swap.commit(store)
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

#[cfg(test)]
mod counter_tests {
    use super::counter;

    #[test]
    fn counters_read_as_sqlite_and_redis_store_them() {
        assert_eq!(counter("k", None).expect("absent"), 0);
        assert_eq!(counter("k", Some(7i64.to_le_bytes().to_vec())).expect("le"), 7);
        assert_eq!(counter("k", Some(59_123_456i64.to_le_bytes().to_vec())).expect("le"), 59_123_456);
        assert_eq!(counter("k", Some(b"7".to_vec())).expect("text"), 7);
        assert_eq!(counter("k", Some(b"-3".to_vec())).expect("text"), -3);
        // Eight digits: Redis's text of a TOTP step, not little-endian bytes.
        assert_eq!(counter("k", Some(b"59123456".to_vec())).expect("text"), 59_123_456);
        assert!(counter("k", Some(b"x".to_vec())).is_err());
        assert!(counter("k", Some(vec![1, 2, 3])).is_err());
    }
}
