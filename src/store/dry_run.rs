//! [`DryRun`]: a store that keeps every write to itself, over a real one
//! that it only reads. `ldap.syncPreview` runs the real sync on it: the
//! plan is what the sync would write, computed by the very code that would
//! write it, and the real store is left as it was.
//!
//! Reads see the writes made so far (an overlay); `increment` counts in the
//! overlay too, so the preview's lease and counters never reach the store.
//! The overlay grows with the writes: an unchanged directory costs nothing,
//! a first sync holds every new document until the preview ends.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::Value;

use super::{KvStore, StoreError, counter, keys};

/// The overlay over `inner` (see the module docs).
pub struct DryRun<'a> {
    inner: &'a dyn KvStore,
    /// Key → `Some(value)` set, `None` deleted.
    overlay: RefCell<HashMap<String, Option<Vec<u8>>>>,
}

/// A user document the dry run wrote: as stored before (`None`: a new user)
/// and as the run left it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserChange {
    pub before: Option<Value>,
    pub after: Value,
}

impl<'a> DryRun<'a> {
    /// An empty overlay over `inner`.
    pub fn new(inner: &'a dyn KvStore) -> Self {
        Self { inner, overlay: RefCell::default() }
    }

    /// The user documents the run wrote, each with its stored version.
    /// Documents that did not change (a write of the same JSON) are left out.
    pub fn user_changes(&self) -> Result<Vec<UserChange>, StoreError> {
        let written: Vec<(String, Vec<u8>)> = self
            .overlay
            .borrow()
            .iter()
            .filter(|(k, _)| k.starts_with(keys::USER_PREFIX))
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        let names: Vec<String> = written.iter().map(|(k, _)| k.clone()).collect();
        let mut changes = Vec::new();
        for ((key, after), before) in written.into_iter().zip(self.inner.get_many(&names)?) {
            let after: Value = super::decode(&key, Some(after))?.unwrap_or(Value::Null);
            let before: Option<Value> = super::decode(&key, before)?;
            if before.as_ref() != Some(&after) {
                changes.push(UserChange { before, after });
            }
        }
        Ok(changes)
    }

    /// The value the run left at the last report's key.
    pub fn last_report<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>, StoreError> {
        let value = self.overlay.borrow().get(keys::SYNC_REPORT).cloned().flatten();
        super::decode(keys::SYNC_REPORT, value)
    }
}

impl KvStore for DryRun<'_> {
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let overlay = self.overlay.borrow();
        let missing: Vec<String> = keys.iter().filter(|k| !overlay.contains_key(*k)).cloned().collect();
        let mut from_inner = if missing.is_empty() { Vec::new() } else { self.inner.get_many(&missing)? }.into_iter();
        Ok(keys
            .iter()
            .map(|k| match overlay.get(k) {
                Some(value) => value.clone(),
                None => from_inner.next().flatten(),
            })
            .collect())
    }

    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        self.overlay.borrow_mut().extend(pairs.into_iter().map(|(k, v)| (k, Some(v))));
        Ok(())
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.overlay.borrow_mut().extend(keys.iter().map(|k| (k.clone(), None)));
        Ok(())
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        let overlay = self.overlay.borrow();
        let mut all: Vec<String> = self.inner.keys()?.into_iter().filter(|k| !overlay.contains_key(k)).collect();
        all.extend(overlay.iter().filter(|(_, v)| v.is_some()).map(|(k, _)| k.clone()));
        Ok(all)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let current = counter(key, self.get_many(&[key.to_owned()])?.pop().flatten())?;
        let value = current.saturating_add(delta);
        self.overlay.borrow_mut().insert(key.to_owned(), Some(value.to_le_bytes().to_vec()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    #[test]
    fn writes_stay_in_the_overlay_and_reads_see_them() {
        let inner = MemoryStore::default();
        inner.set_many(vec![("a".into(), b"1".to_vec()), ("user:x".into(), br#"{"n":1}"#.to_vec())]).expect("seed");
        let dry = DryRun::new(&inner);
        dry.set_many(vec![("b".into(), b"2".to_vec()), ("user:x".into(), br#"{"n":2}"#.to_vec())]).expect("set");
        dry.delete_many(&["a".into()]).expect("delete");
        assert_eq!(dry.increment("c", 5).expect("inc"), 5);
        assert_eq!(
            dry.get_many(&["a".into(), "b".into(), "user:x".into()]).expect("get"),
            vec![None, Some(b"2".to_vec()), Some(br#"{"n":2}"#.to_vec())]
        );
        let mut keys = dry.keys().expect("keys");
        keys.sort();
        assert_eq!(keys, ["b", "c", "user:x"]);
        // The real store is untouched.
        assert_eq!(inner.dump().into_keys().collect::<Vec<_>>(), ["a", "user:x"]);
        assert_eq!(*inner.set_calls.borrow(), 1);
        let changes = dry.user_changes().expect("changes");
        assert_eq!(changes, [UserChange { before: Some(serde_json::json!({"n": 1})), after: serde_json::json!({"n": 2}) }]);
    }
}
