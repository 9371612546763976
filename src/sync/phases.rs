//! Where a run's time went, for the report's `phases` and the benchmark's
//! breakdown: LDAP wait and BER decode (from the session), mapping,
//! key-value reads, JSON decode, planning and key-value writes.
//!
//! [`Timed`] wraps the store and times every call through it; the run
//! times its own steps around it.

use std::cell::Cell;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::ldap::LdapTiming;
use crate::store::{KvStore, StoreError};

/// A run's time by phase, in microseconds, and its store traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Phases {
    /// Waiting for the LDAP server (socket reads and writes, TLS included).
    pub ldap_wait_us: u64,
    /// Framing and decoding LDAP messages (BER, ldap3_proto).
    pub ber_decode_us: u64,
    /// Entry → user (attributes, templates, slugify, fingerprints).
    pub map_us: u64,
    /// Inside the store's read calls.
    pub kv_read_us: u64,
    /// Decoding stored JSON (user documents and index keys).
    pub json_decode_us: u64,
    /// Stored vs incoming: planning and staging writes.
    pub plan_us: u64,
    /// Inside the store's write calls (`set-many`, `delete-many`, `increment`).
    pub kv_write_us: u64,
    /// Keys asked for in reads.
    pub kv_read_keys: u64,
    /// Keys written or deleted, and counters bumped.
    pub kv_write_keys: u64,
    /// Write calls that reached the store (each one transaction on Spin's SQLite store).
    pub kv_write_calls: u64,
    /// Entries found unchanged by their sync mark alone (no document read).
    pub unchanged_by_mark: u64,
    /// Bytes received from the LDAP server.
    pub ldap_bytes: u64,
    /// Reading groups and working out memberships (roles, group filter),
    /// before the users are read; its LDAP wait is also in `ldap_wait_us`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub groups_us: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Phases {
    /// Takes the session's figures.
    pub fn set_ldap(&mut self, timing: LdapTiming) {
        self.ldap_wait_us = micros(timing.wait);
        self.ber_decode_us = micros(timing.decode);
        self.ldap_bytes = timing.bytes;
    }

    /// Takes the store's figures.
    pub fn set_store(&mut self, timed: &Timed<'_>) {
        self.kv_read_us = micros(timed.read.get());
        self.kv_write_us = micros(timed.write.get());
        self.kv_read_keys = timed.read_keys.get();
        self.kv_write_keys = timed.write_keys.get();
        self.kv_write_calls = timed.write_calls.get();
    }
}

/// A stopwatch that adds what it measured to a total.
pub struct Stopwatch(Instant);

impl Stopwatch {
    pub fn start() -> Self {
        Self(Instant::now())
    }

    /// Adds the time since start to `total` (µs).
    pub fn add_to(self, total: &mut u64) {
        *total = total.saturating_add(micros(self.0.elapsed()));
    }

    /// The time since start.
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// Times the calls through a store.
pub struct Timed<'a> {
    inner: &'a dyn KvStore,
    read: Cell<Duration>,
    write: Cell<Duration>,
    read_keys: Cell<u64>,
    write_keys: Cell<u64>,
    write_calls: Cell<u64>,
}

impl<'a> Timed<'a> {
    pub fn new(inner: &'a dyn KvStore) -> Self {
        Self {
            inner,
            read: Cell::default(),
            write: Cell::default(),
            read_keys: Cell::default(),
            write_keys: Cell::default(),
            write_calls: Cell::default(),
        }
    }

    /// Time spent in reads so far.
    pub fn read_time(&self) -> Duration {
        self.read.get()
    }

    fn reading<T>(&self, keys: usize, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        self.read.set(self.read.get() + started.elapsed());
        self.read_keys.set(self.read_keys.get() + keys as u64);
        out
    }

    fn writing<T>(&self, keys: usize, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        self.write.set(self.write.get() + started.elapsed());
        self.write_keys.set(self.write_keys.get() + keys as u64);
        self.write_calls.set(self.write_calls.get() + 1);
        out
    }
}

impl KvStore for Timed<'_> {
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.reading(keys.len(), || self.inner.get_many(keys))
    }

    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        self.writing(pairs.len(), || self.inner.set_many(pairs))
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.writing(keys.len(), || self.inner.delete_many(keys))
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        self.reading(0, || self.inner.keys())
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.writing(1, || self.inner.increment(key, delta))
    }
}
