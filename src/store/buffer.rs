//! [`WriteBuffer`]: writes held back across pages and committed together,
//! so that a run pays one transaction (one `fsync` on Spin's SQLite store)
//! per few thousand keys instead of one per page.
//!
//! Reads through the buffer see its pending writes first, so a page
//! planned after an unflushed one sees the keys that page claimed. Counter
//! bumps wait too and land after the writes they count, as in a [`Batch`]
//! commit. A flush is one `set-many`, then one `delete-many`, then the
//! increments; each key carries only its last pending state, so the order
//! of sets and deletes within a flush does not matter.
//!
//! [`Batch`]: super::Batch

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::{KvStore, StoreError, counter};

/// When a [`WriteBuffer`] asks to be flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushLimits {
    /// Pending keys (sets and deletes).
    pub keys: usize,
    /// Pending bytes of keys and values: what the buffer holds in memory.
    pub bytes: usize,
}

impl FlushLimits {
    /// The sync's limits: 4,096 keys or 1 MiB, whichever comes first. With
    /// about 7 keys and 1 KiB per created user that is one transaction per
    /// ~600 users; guest memory stays flat (`README.md`, Benchmark).
    pub const SYNC: FlushLimits = FlushLimits { keys: 4096, bytes: 1 << 20 };
}

/// A write-back buffer over a store. Not shared: one run owns it.
pub struct WriteBuffer<'a> {
    inner: &'a dyn KvStore,
    limits: FlushLimits,
    /// Key → its last pending state: `Some` = set, `None` = delete.
    pending: RefCell<HashMap<String, Option<Vec<u8>>>>,
    /// Counter bumps in the order they were asked for, merged per key.
    increments: RefCell<Vec<(String, i64)>>,
    bytes: Cell<usize>,
}

impl<'a> WriteBuffer<'a> {
    /// An empty buffer over `inner`.
    pub fn new(inner: &'a dyn KvStore, limits: FlushLimits) -> Self {
        Self { inner, limits, pending: RefCell::default(), increments: RefCell::default(), bytes: Cell::new(0) }
    }

    /// Whether the pending writes reached a limit.
    pub fn is_full(&self) -> bool {
        self.pending.borrow().len() >= self.limits.keys || self.bytes.get() >= self.limits.bytes
    }

    /// Flushes when a limit is reached.
    pub fn flush_if_full(&self) -> Result<(), StoreError> {
        if self.is_full() { self.flush() } else { Ok(()) }
    }

    /// Writes everything pending: one `set-many`, one `delete-many`, then the
    /// counter bumps. On an error the pending writes are dropped (a later
    /// run writes them again: they are derived from the directory).
    pub fn flush(&self) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        let increments = std::mem::take(&mut *self.increments.borrow_mut());
        self.bytes.set(0);
        let mut sets = Vec::with_capacity(pending.len());
        let mut deletes = Vec::new();
        for (key, value) in pending {
            match value {
                Some(value) => sets.push((key, value)),
                None => deletes.push(key),
            }
        }
        if !sets.is_empty() {
            self.inner.set_many(sets)?;
        }
        if !deletes.is_empty() {
            self.inner.delete_many(&deletes)?;
        }
        for (key, delta) in increments {
            self.inner.increment(&key, delta)?;
        }
        Ok(())
    }

    fn stage(&self, key: String, value: Option<Vec<u8>>) {
        let size = key.len() + value.as_ref().map_or(0, Vec::len);
        self.bytes.set(self.bytes.get() + size);
        self.pending.borrow_mut().insert(key, value);
    }
}

impl KvStore for WriteBuffer<'_> {
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let pending = self.pending.borrow();
        let missing: Vec<String> = keys.iter().filter(|k| !pending.contains_key(*k)).cloned().collect();
        let mut fetched = if missing.is_empty() { Vec::new() } else { self.inner.get_many(&missing)? }.into_iter();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(match pending.get(key) {
                Some(value) => value.clone(),
                None => fetched.next().flatten(),
            });
        }
        Ok(out)
    }

    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        for (key, value) in pairs {
            self.stage(key, Some(value));
        }
        Ok(())
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            self.stage(key.clone(), None);
        }
        Ok(())
    }

    /// Flushes first: a listing must see what is pending.
    fn keys(&self) -> Result<Vec<String>, StoreError> {
        self.flush()?;
        self.inner.keys()
    }

    /// Deferred to the flush; returns the value the counter will have then
    /// (if nobody else bumps it meanwhile).
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let stored = counter(key, self.inner.get_many(&[key.to_owned()])?.pop().flatten())?;
        let mut increments = self.increments.borrow_mut();
        let queued: i64 = increments.iter().filter(|(k, _)| k == key).map(|(_, d)| *d).sum();
        match increments.iter_mut().find(|(k, _)| k == key) {
            Some((_, d)) => *d += delta,
            None => increments.push((key.to_owned(), delta)),
        }
        Ok(stored + queued + delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn kv(key: &str, value: &str) -> (String, Vec<u8>) {
        (key.to_owned(), value.as_bytes().to_vec())
    }

    #[test]
    fn reads_see_pending_writes_and_nothing_lands_before_the_flush() -> Result<(), StoreError> {
        let store = MemoryStore::default();
        store.set_many(vec![kv("a", "1"), kv("b", "2")])?;
        let buffer = WriteBuffer::new(&store, FlushLimits::SYNC);
        buffer.set_many(vec![kv("a", "10"), kv("c", "30")])?;
        buffer.delete_many(&["b".to_owned()])?;
        let keys = ["a", "b", "c", "d"].map(String::from);
        assert_eq!(buffer.get_many(&keys)?, vec![Some(b"10".to_vec()), None, Some(b"30".to_vec()), None]);
        assert_eq!(store.get_many(&keys)?, vec![Some(b"1".to_vec()), Some(b"2".to_vec()), None, None]);
        assert_eq!(buffer.increment("n", 2)?, 2);
        assert_eq!(buffer.increment("n", 3)?, 5);
        assert_eq!(store.get_many(&["n".to_owned()])?, vec![None]);
        let calls = *store.set_calls.borrow();
        buffer.flush()?;
        assert_eq!(*store.set_calls.borrow(), calls + 1, "one set-many");
        assert_eq!(store.get_many(&keys)?, vec![Some(b"10".to_vec()), None, Some(b"30".to_vec()), None]);
        assert_eq!(store.increment("n", 0)?, 5);
        Ok(())
    }

    #[test]
    fn the_last_write_of_a_key_wins() -> Result<(), StoreError> {
        let store = MemoryStore::default();
        let buffer = WriteBuffer::new(&store, FlushLimits::SYNC);
        buffer.set_many(vec![kv("a", "1")])?;
        buffer.delete_many(&["a".to_owned()])?;
        buffer.delete_many(&["b".to_owned()])?;
        buffer.set_many(vec![kv("b", "2")])?;
        buffer.flush()?;
        assert_eq!(store.dump().into_iter().collect::<Vec<_>>(), vec![kv("b", "2")]);
        Ok(())
    }

    #[test]
    fn is_full_at_either_limit() -> Result<(), StoreError> {
        let store = MemoryStore::default();
        let buffer = WriteBuffer::new(&store, FlushLimits { keys: 2, bytes: 100 });
        buffer.set_many(vec![kv("a", "1")])?;
        assert!(!buffer.is_full());
        buffer.set_many(vec![kv("b", "1")])?;
        assert!(buffer.is_full());
        buffer.flush_if_full()?;
        assert!(!buffer.is_full());
        buffer.set_many(vec![kv("c", &"x".repeat(100))])?;
        assert!(buffer.is_full());
        Ok(())
    }
}
