//! An in-memory [`KvStore`] for native unit tests and benchmarks.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::{KvStore, StoreError};

/// A `BTreeMap` behind the store trait; counts batch calls so tests can
/// assert that work is batched.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: RefCell<BTreeMap<String, Vec<u8>>>,
    /// Number of `set_many` calls made so far.
    pub set_calls: RefCell<usize>,
}

impl MemoryStore {
    /// A snapshot of every key and value.
    pub fn dump(&self) -> BTreeMap<String, Vec<u8>> {
        self.map.borrow().clone()
    }
}

impl KvStore for MemoryStore {
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let map = self.map.borrow();
        Ok(keys.iter().map(|k| map.get(k).cloned()).collect())
    }

    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        *self.set_calls.borrow_mut() += 1;
        self.map.borrow_mut().extend(pairs);
        Ok(())
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.map.borrow().keys().cloned().collect())
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let mut map = self.map.borrow_mut();
        let value = super::counter(key, map.get(key).cloned())? + delta;
        map.insert(key.to_owned(), value.to_le_bytes().to_vec());
        Ok(value)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        let mut map = self.map.borrow_mut();
        for key in keys {
            map.remove(key);
        }
        Ok(())
    }
}
