//! The Spin implementation of [`KvStore`], over `wasi:keyvalue` batch calls
//! (Spin 3.x/4.x serve `wasi:keyvalue/*@0.2.0-draft2` for every granted store).

use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store};

use super::{KvStore, StoreError};

/// Spin's store named `label` (granted in `spin.toml` `key_value_stores`).
pub struct SpinStore {
    bucket: store::Bucket,
    /// `kv_batch_reads`: `false` reads with single `get`s, because Spin's
    /// Redis store implements `get-many` with `KEYS` and panics in the host
    /// (docs/deploy.md). The binding is synchronous, so the `get`s go one
    /// after the other: no pipelining is possible from here.
    batch_reads: bool,
}

impl SpinStore {
    /// Opens a store by label.
    pub fn open(label: &str, batch_reads: bool) -> Result<Self, StoreError> {
        store::open(label)
            .map(|bucket| Self { bucket, batch_reads })
            .map_err(|e| StoreError::Open { label: label.to_owned(), reason: describe(&e) })
    }
}

impl KvStore for SpinStore {
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if !self.batch_reads {
            return keys.iter().map(|k| self.bucket.get(k).map_err(|e| StoreError::Backend { op: "get", reason: describe(&e) })).collect();
        }
        // get-many answers only the keys it found, in no promised order.
        let found = batch::get_many(&self.bucket, keys).map_err(|e| StoreError::Backend { op: "get-many", reason: describe(&e) })?;
        let mut by_key: std::collections::HashMap<String, Option<Vec<u8>>> = found.into_iter().collect();
        Ok(keys.iter().map(|k| by_key.remove(k).flatten()).collect())
    }

    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        if pairs.is_empty() {
            return Ok(());
        }
        batch::set_many(&self.bucket, &pairs).map_err(|e| StoreError::Backend { op: "set-many", reason: describe(&e) })
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        self.list()
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        match atomics::increment(&self.bucket, key, delta) {
            Ok(value) => Ok(value),
            // A host without atomics (Fermyon Wasm Functions) refuses the call:
            // fall back to a read and a write, which two requests can interleave
            // (README, "Concurrency": what is then best-effort).
            Err(e) => {
                crate::log::warn("atomic increment unavailable; counting without atomicity", &[("error", serde_json::json!(describe(&e)))]);
                let current = super::counter(key, self.get_many(&[key.to_owned()])?.pop().flatten())?;
                let value = current.saturating_add(delta);
                self.set_many(vec![(key.to_owned(), value.to_le_bytes().to_vec())])?;
                Ok(value)
            }
        }
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        batch::delete_many(&self.bucket, keys).map_err(|e| StoreError::Backend { op: "delete-many", reason: describe(&e) })
    }
}

impl SpinStore {
    fn list(&self) -> Result<Vec<String>, StoreError> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page =
                self.bucket.list_keys(cursor.as_deref()).map_err(|e| StoreError::Backend { op: "list-keys", reason: describe(&e) })?;
            all.extend(page.keys);
            match page.cursor {
                Some(next) if !next.is_empty() => cursor = Some(next),
                _ => return Ok(all),
            }
        }
    }
}

fn describe(e: &store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "no such store".to_owned(),
        store::Error::AccessDenied => "access denied".to_owned(),
        store::Error::Other(text) => text.clone(),
    }
}
