//! The key-value store: SQLite, in Spin's own file format.
//!
//! Spin's default key-value backend (`crates/key-value-spin/src/store.rs` in
//! the Spin repository) keeps every store of type `spin` in one table,
//! `spin_key_value`, keyed by `(store, key)`, in `<state dir>/sqlite_key_value.db`
//! (`spin up` uses `.spin/` next to the manifest unless `--state-dir` says
//! otherwise, and an in-memory database when there is no state directory).
//! This module issues the same statements, so a database written by the
//! tests opens under `spin up --state-dir <dir>` and the other way round.
//!
//! The `store` column holds the store label (`"default"`). Each `set` is its
//! own implicit transaction; `set_many` loops the same upsert inside **one**
//! transaction; `increment` reads and writes in one transaction with the
//! value as an `i64` in little-endian bytes (absent = 0). The
//! compare-and-swap mirrors Spin's too, including its quirk: a swap whose
//! `current` read found no value (or that never read) is a plain upsert.
//!
//! Fault injection, for the tests only: [`KvStore::set_set_many_hook`] runs a
//! hook before every `set-many`; its error fails that call (nothing of the
//! batch is written), as a store that goes away mid-run would. No hook is set
//! by default, and then nothing changes.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context as _, anyhow, ensure};
use rusqlite::{Connection, named_params};

pub mod redis;
pub mod runtime_config;

pub use self::redis::{CasConnection, HostPanic, RedisKv};

/// Spin's default database file name inside the state directory.
pub const DEFAULT_DB_FILE: &str = "sqlite_key_value.db";

/// The only store label backed by a database (Spin's default store).
pub const DEFAULT_STORE: &str = "default";

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS spin_key_value (
                           store TEXT NOT NULL,
                           key   TEXT NOT NULL,
                           value BLOB NOT NULL,

                           PRIMARY KEY (store, key)
                        )";
const GET: &str = "SELECT value FROM spin_key_value WHERE store=$1 AND key=$2";
const SET: &str = "INSERT INTO spin_key_value (store, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT(store, key) DO UPDATE SET value=$3";
const DELETE: &str = "DELETE FROM spin_key_value WHERE store=$1 AND key=$2";
const EXISTS: &str = "SELECT 1 FROM spin_key_value WHERE store=$1 AND key=$2 LIMIT 1";
const KEYS: &str = "SELECT key FROM spin_key_value WHERE store=$1";
const GET_MANY: &str = "SELECT key, value FROM spin_key_value WHERE store=:name AND key IN rarray(:keys)";
const DELETE_MANY: &str = "DELETE FROM spin_key_value WHERE store=:name AND key IN rarray(:keys)";
const CAS_UPDATE: &str = "UPDATE spin_key_value SET value=:new_value WHERE store=:name and key=:key and value=:old_value";

/// A shared SQLite connection holding the `spin_key_value` table.
///
/// Cloning is cheap and shares the connection (one per [`crate::Host`]).
#[derive(Clone)]
pub struct KvStore {
    backend: Backend,
    path: Option<PathBuf>,
    /// Microseconds every operation waits before it starts (0 = none).
    latency_us: Arc<AtomicU64>,
    reads: Arc<ReadCounters>,
    writes: Arc<WriteCounters>,
    set_many_hook: Arc<Mutex<Option<SetManyHook>>>,
}

/// Where the keys live: Spin's SQLite store, or Redis ([`redis`]).
#[derive(Clone)]
enum Backend {
    Sqlite(Arc<Mutex<Connection>>),
    Redis(RedisKv),
}

/// Runs before a `set-many` with its key-value pairs; an error fails the
/// call before anything is written (see [`KvStore::set_set_many_hook`]).
pub type SetManyHook = Arc<dyn Fn(&[(String, Vec<u8>)]) -> anyhow::Result<()> + Send + Sync>;

/// A hook that fails the `n`-th (1-based) `set-many` that writes a key
/// starting with `prefix`, and only that one; the error names the call.
pub fn fail_nth_set_many(prefix: &str, n: u64) -> SetManyHook {
    let prefix = prefix.to_owned();
    let seen = AtomicU64::new(0);
    Arc::new(move |pairs: &[(String, Vec<u8>)]| {
        if !pairs.iter().any(|(k, _)| k.starts_with(&prefix)) {
            return Ok(());
        }
        let nth = seen.fetch_add(1, Ordering::SeqCst) + 1;
        ensure!(nth != n, "injected fault: set-many #{nth} writing {prefix}* keys failed");
        Ok(())
    })
}

/// How much a [`KvStore`] has been read, over its life and all its clones
/// (the guest's calls and the host's alike): see [`KvStore::reads`]. Take
/// two snapshots and subtract ([`Reads::since`]) to count one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    /// `get` and `exists` calls (one key each).
    pub gets: u64,
    /// `get-many` calls.
    pub get_many_calls: u64,
    /// Keys asked for in those `get-many` calls.
    pub get_many_keys: u64,
    /// `get-keys` / `list-keys` calls.
    pub key_listings: u64,
    /// Keys returned by those listings.
    pub keys_listed: u64,
    /// `increment` calls (a read and a write; `increment(key, 0)` is how a
    /// counter is read).
    pub increments: u64,
}

impl Reads {
    /// The reads between `earlier` and `self`.
    pub fn since(&self, earlier: &Reads) -> Reads {
        Reads {
            gets: self.gets - earlier.gets,
            get_many_calls: self.get_many_calls - earlier.get_many_calls,
            get_many_keys: self.get_many_keys - earlier.get_many_keys,
            key_listings: self.key_listings - earlier.key_listings,
            keys_listed: self.keys_listed - earlier.keys_listed,
            increments: self.increments - earlier.increments,
        }
    }

    /// Keys read one way or another: single gets, keys asked for in batches,
    /// keys returned by listings, and increments.
    pub fn keys_touched(&self) -> u64 {
        self.gets + self.get_many_keys + self.keys_listed + self.increments
    }
}

/// How much a [`KvStore`] has been written, like [`Reads`]: see
/// [`KvStore::writes`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Writes {
    /// `set` calls (one key each).
    pub sets: u64,
    /// `set-many` calls (each one transaction).
    pub set_many_calls: u64,
    /// Keys written by those `set-many` calls.
    pub set_many_keys: u64,
    /// `delete` calls (one key each).
    pub deletes: u64,
    /// `delete-many` calls.
    pub delete_many_calls: u64,
    /// Keys named in those `delete-many` calls.
    pub delete_many_keys: u64,
    /// Write transactions that changed at least one row: each is one
    /// journal commit, i.e. one `fsync` on a file-backed store (SQLite's
    /// default `synchronous=FULL`, as Spin leaves it). Includes `increment`s
    /// and compare-and-swaps.
    pub commits: u64,
}

impl Writes {
    /// The writes between `earlier` and `self`.
    pub fn since(&self, earlier: &Writes) -> Writes {
        Writes {
            sets: self.sets - earlier.sets,
            set_many_calls: self.set_many_calls - earlier.set_many_calls,
            set_many_keys: self.set_many_keys - earlier.set_many_keys,
            deletes: self.deletes - earlier.deletes,
            delete_many_calls: self.delete_many_calls - earlier.delete_many_calls,
            delete_many_keys: self.delete_many_keys - earlier.delete_many_keys,
            commits: self.commits - earlier.commits,
        }
    }
}

#[derive(Default)]
struct WriteCounters {
    sets: AtomicU64,
    set_many_calls: AtomicU64,
    set_many_keys: AtomicU64,
    deletes: AtomicU64,
    delete_many_calls: AtomicU64,
    delete_many_keys: AtomicU64,
    commits: AtomicU64,
}

#[derive(Default)]
struct ReadCounters {
    gets: AtomicU64,
    get_many_calls: AtomicU64,
    get_many_keys: AtomicU64,
    key_listings: AtomicU64,
    keys_listed: AtomicU64,
    increments: AtomicU64,
}

fn count(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore").field("path", &self.path).field("redis", &self.redis().map(RedisKv::url)).finish()
    }
}

fn array(keys: Vec<String>) -> Rc<Vec<rusqlite::types::Value>> {
    Rc::new(keys.into_iter().map(rusqlite::types::Value::from).collect())
}

impl KvStore {
    /// A fresh in-memory database (Spin's choice when there is no state dir).
    pub fn open_in_memory() -> anyhow::Result<Self> {
        let conn = Connection::open_in_memory().context("opening in-memory SQLite")?;
        Self::init(conn, None)
    }

    /// `<state_dir>/sqlite_key_value.db`, creating the directory if needed.
    pub fn open_state_dir(state_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(state_dir).with_context(|| format!("creating state directory {}", state_dir.display()))?;
        Self::open_file(&state_dir.join(DEFAULT_DB_FILE))
    }

    /// A database file at an explicit path.
    pub fn open_file(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path).with_context(|| format!("opening SQLite database {}", path.display()))?;
        Self::init(conn, Some(path.to_path_buf()))
    }

    fn init(conn: Connection, path: Option<PathBuf>) -> anyhow::Result<Self> {
        conn.execute(CREATE_TABLE, []).context("creating the spin_key_value table")?;
        // The array module provides `rarray()` for the batch statements.
        rusqlite::vtab::array::load_module(&conn).context("loading SQLite's array module")?;
        Ok(Self::with_backend(Backend::Sqlite(Arc::new(Mutex::new(conn))), path))
    }

    /// The store on Redis at `url`, as Spin's Redis provider uses it.
    pub fn open_redis(url: &str) -> anyhow::Result<Self> {
        Ok(Self::with_backend(Backend::Redis(RedisKv::open(url)?), None))
    }

    fn with_backend(backend: Backend, path: Option<PathBuf>) -> Self {
        Self {
            backend,
            path,
            latency_us: Arc::new(AtomicU64::new(0)),
            reads: Arc::default(),
            writes: Arc::default(),
            set_many_hook: Arc::default(),
        }
    }

    /// The Redis store, when this is one.
    pub fn redis(&self) -> Option<&RedisKv> {
        match &self.backend {
            Backend::Redis(r) => Some(r),
            Backend::Sqlite(_) => None,
        }
    }

    /// The database file, or `None` for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Makes every later operation (on this store and its clones) wait `d`
    /// before it starts, outside the connection's lock, as a networked
    /// store (Redis, a cloud key-value service) takes a round trip per
    /// operation. The concurrency tests use it to widen the window between
    /// a request's read and its write, so that a read-modify-write that is
    /// not atomic loses to a parallel request more often. The wait blocks
    /// the calling thread (the guest's host call is synchronous).
    pub fn set_latency(&self, d: Duration) {
        self.latency_us.store(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Runs `hook` before every later `set-many` (on this store and its
    /// clones: the guest's calls and the host's alike), outside the
    /// connection's lock, so a hook may block or stop a server; its error
    /// fails the call with nothing written. `None` removes it.
    pub fn set_set_many_hook(&self, hook: Option<SetManyHook>) {
        *self.set_many_hook.lock().unwrap_or_else(|e| e.into_inner()) = hook;
    }

    /// How much this store has been read so far (see [`Reads`]).
    pub fn reads(&self) -> Reads {
        let r = &self.reads;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Reads {
            gets: load(&r.gets),
            get_many_calls: load(&r.get_many_calls),
            get_many_keys: load(&r.get_many_keys),
            key_listings: load(&r.key_listings),
            keys_listed: load(&r.keys_listed),
            increments: load(&r.increments),
        }
    }

    /// How much this store has been written so far (see [`Writes`]).
    pub fn writes(&self) -> Writes {
        let w = &self.writes;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Writes {
            sets: load(&w.sets),
            set_many_calls: load(&w.set_many_calls),
            set_many_keys: load(&w.set_many_keys),
            deletes: load(&w.deletes),
            delete_many_calls: load(&w.delete_many_calls),
            delete_many_keys: load(&w.delete_many_keys),
            commits: load(&w.commits),
        }
    }

    fn wait(&self) {
        let wait = self.latency_us.load(Ordering::Relaxed);
        if wait > 0 {
            std::thread::sleep(Duration::from_micros(wait));
        }
    }

    /// The Redis store, after the configured latency; `None` on SQLite.
    fn on_redis(&self) -> Option<&RedisKv> {
        let redis = self.redis()?;
        self.wait();
        Some(redis)
    }

    fn lock(&self) -> anyhow::Result<MutexGuard<'_, Connection>> {
        self.wait();
        let Backend::Sqlite(conn) = &self.backend else { anyhow::bail!("this key-value store is on Redis, not SQLite") };
        conn.lock().map_err(|_| anyhow!("the key-value connection mutex is poisoned"))
    }

    /// Runs `f` with the connection locked (for tests and tools).
    pub fn with_connection<R>(&self, f: impl FnOnce(&mut Connection) -> anyhow::Result<R>) -> anyhow::Result<R> {
        f(&mut *self.lock()?)
    }

    /// `get`: the value, or `None`.
    pub fn get(&self, store: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        count(&self.reads.gets, 1);
        if let Some(redis) = self.on_redis() {
            return redis.get(key);
        }
        let conn = self.lock()?;
        let mut stmt = conn.prepare_cached(GET)?;
        let value = stmt.query_map([store, key], |row| row.get::<_, Vec<u8>>(0))?.next().transpose()?;
        Ok(value)
    }

    /// `set`: an upsert, its own implicit transaction.
    pub fn set(&self, store: &str, key: &str, value: &[u8]) -> anyhow::Result<()> {
        count(&self.writes.sets, 1);
        if let Some(redis) = self.on_redis() {
            redis.set(key, value)?;
            count(&self.writes.commits, 1);
            return Ok(());
        }
        let conn = self.lock()?;
        conn.prepare_cached(SET)?.execute(rusqlite::params![store, key, value])?;
        count(&self.writes.commits, 1);
        Ok(())
    }

    /// `delete`: no error if the key is absent.
    pub fn delete(&self, store: &str, key: &str) -> anyhow::Result<()> {
        count(&self.writes.deletes, 1);
        if let Some(redis) = self.on_redis() {
            count(&self.writes.commits, usize::from(redis.delete(key)?));
            return Ok(());
        }
        let conn = self.lock()?;
        let rows = conn.prepare_cached(DELETE)?.execute([store, key])?;
        count(&self.writes.commits, usize::from(rows > 0));
        Ok(())
    }

    /// `exists`.
    pub fn exists(&self, store: &str, key: &str) -> anyhow::Result<bool> {
        count(&self.reads.gets, 1);
        if let Some(redis) = self.on_redis() {
            return redis.exists(key);
        }
        let conn = self.lock()?;
        let found = conn.prepare_cached(EXISTS)?.exists([store, key])?;
        Ok(found)
    }

    /// `get-keys` / `list-keys`: every key of the store, in no set order.
    pub fn keys(&self, store: &str) -> anyhow::Result<Vec<String>> {
        let keys = match self.on_redis() {
            Some(redis) => redis.keys()?,
            None => {
                let conn = self.lock()?;
                let mut stmt = conn.prepare_cached(KEYS)?;
                stmt.query_map([store], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?
            }
        };
        count(&self.reads.key_listings, 1);
        count(&self.reads.keys_listed, keys.len());
        Ok(keys)
    }

    /// `get-many`: like Spin's, returns only the keys that exist (each with
    /// `Some(value)`), in the database's order, not the request's.
    pub fn get_many(&self, store: &str, keys: Vec<String>) -> anyhow::Result<Vec<(String, Option<Vec<u8>>)>> {
        count(&self.reads.get_many_calls, 1);
        count(&self.reads.get_many_keys, keys.len());
        if let Some(redis) = self.on_redis() {
            return redis.get_many(&keys);
        }
        let conn = self.lock()?;
        let mut stmt = conn.prepare_cached(GET_MANY)?;
        let rows = stmt
            .query_map(named_params! {":name": store, ":keys": array(keys)}, |row| <(String, Option<Vec<u8>>)>::try_from(row))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// `set-many`: one transaction looping the upsert; all or nothing.
    pub fn set_many(&self, store: &str, key_values: Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
        let hook = self.set_many_hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(hook) = hook {
            hook(&key_values)?;
        }
        count(&self.writes.set_many_calls, 1);
        count(&self.writes.set_many_keys, key_values.len());
        let wrote = !key_values.is_empty();
        if let Some(redis) = self.on_redis() {
            redis.set_many(&key_values)?;
            count(&self.writes.commits, usize::from(wrote));
            return Ok(());
        }
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        for (key, value) in key_values {
            tx.prepare_cached(SET)?.execute(rusqlite::params![store, key, value])?;
        }
        tx.commit()?;
        count(&self.writes.commits, usize::from(wrote));
        Ok(())
    }

    /// `delete-many`: one statement.
    pub fn delete_many(&self, store: &str, keys: Vec<String>) -> anyhow::Result<()> {
        count(&self.writes.delete_many_calls, 1);
        count(&self.writes.delete_many_keys, keys.len());
        if let Some(redis) = self.on_redis() {
            count(&self.writes.commits, usize::from(redis.delete_many(&keys)? > 0));
            return Ok(());
        }
        let conn = self.lock()?;
        let rows = conn.prepare_cached(DELETE_MANY)?.execute(named_params! {":name": store, ":keys": array(keys)})?;
        count(&self.writes.commits, usize::from(rows > 0));
        Ok(())
    }

    /// `increment`: in one transaction, reads the value as a little-endian
    /// `i64` (absent = 0), adds `delta`, writes it back, returns it.
    ///
    /// Spin panics (in the host) on a stored value that is not 8 bytes and
    /// wraps on overflow in release builds; this returns an error instead.
    ///
    /// Atomic across parallel requests: they share this connection, and the
    /// read and the write happen under its lock in one transaction. The
    /// transaction is `IMMEDIATE` (Spin's is deferred): it takes SQLite's
    /// write lock before the read, so two processes incrementing the same
    /// database file (e.g. two hosts on one state directory) wait for each
    /// other through the busy timeout instead of one failing with
    /// `SQLITE_BUSY` on the upgrade from read to write.
    pub fn increment(&self, store: &str, key: &str, delta: i64) -> anyhow::Result<i64> {
        count(&self.reads.increments, 1);
        if let Some(redis) = self.on_redis() {
            let value = redis.increment(key, delta)?;
            count(&self.writes.commits, 1);
            return Ok(value);
        }
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let value: Option<Vec<u8>> = tx.prepare_cached(GET)?.query_map([store, key], |row| row.get(0))?.next().transpose()?;
        let current = match value {
            Some(v) => i64::from_le_bytes(
                v.try_into().map_err(|v: Vec<u8>| anyhow!("value of {key:?} is {} bytes, not an 8-byte little-endian i64", v.len()))?,
            ),
            None => 0,
        };
        let new_value = current.checked_add(delta).with_context(|| format!("incrementing {key:?} overflows i64"))?;
        tx.prepare_cached(SET)?.execute(rusqlite::params![store, key, new_value.to_le_bytes()])?;
        tx.commit()?;
        count(&self.writes.commits, 1);
        Ok(new_value)
    }

    /// The compare-and-swap's write, as Spin does it: with a previously read
    /// value, `UPDATE ... WHERE value = old`; without one, a plain upsert.
    /// Returns whether exactly one row changed (`false` = CAS failed).
    pub fn cas_swap(&self, store: &str, key: &str, old: Option<&[u8]>, new: &[u8]) -> anyhow::Result<bool> {
        let mut conn = self.lock()?;
        let rows = match old {
            Some(old) => conn.prepare_cached(CAS_UPDATE)?.execute(named_params! {
                ":name": store,
                ":key": key,
                ":old_value": old,
                ":new_value": new,
            })?,
            None => {
                let tx = conn.transaction()?;
                let rows = tx.prepare_cached(SET)?.execute(rusqlite::params![store, key, new])?;
                tx.commit()?;
                rows
            }
        };
        count(&self.writes.commits, usize::from(rows > 0));
        Ok(rows == 1)
    }

    /// Removes every key of a store (test convenience; Spin has no such call).
    pub fn clear(&self, store: &str) -> anyhow::Result<()> {
        if let Some(redis) = self.on_redis() {
            return redis.clear();
        }
        let conn = self.lock()?;
        conn.execute("DELETE FROM spin_key_value WHERE store=$1", [store])?;
        Ok(())
    }

    /// Checks that the table has Spin's schema (for diagnostics and tests).
    pub fn check_schema(&self) -> anyhow::Result<()> {
        let conn = self.lock()?;
        let cols = conn
            .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info('spin_key_value')")?
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?, row.get::<_, i64>(3)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let want = [("store", "TEXT", 1, 1), ("key", "TEXT", 1, 2), ("value", "BLOB", 1, 0)];
        ensure!(
            cols.len() == want.len() && cols.iter().zip(want).all(|(c, w)| c.0 == w.0 && c.1 == w.1 && c.2 == w.2 && c.3 == w.3),
            "spin_key_value has an unexpected schema: {cols:?}"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// A fresh directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let dir =
                std::env::temp_dir().join(format!("ldap-sync-host-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
            _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            Self(dir)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    #[test]
    fn single_key_operations() -> anyhow::Result<()> {
        let kv = KvStore::open_in_memory()?;
        kv.check_schema()?;
        assert_eq!(kv.get("default", "a")?, None);
        assert!(!kv.exists("default", "a")?);
        kv.set("default", "a", b"1")?;
        kv.set("default", "a", b"2")?;
        kv.set("other", "a", b"x")?;
        assert_eq!(kv.get("default", "a")?.as_deref(), Some(&b"2"[..]));
        assert!(kv.exists("default", "a")?);
        assert_eq!(kv.keys("default")?, ["a"]);
        kv.delete("default", "a")?;
        kv.delete("default", "a")?;
        assert_eq!(kv.get("default", "a")?, None);
        assert_eq!(kv.get("other", "a")?.as_deref(), Some(&b"x"[..]));
        // An empty value is a value.
        kv.set("default", "empty", b"")?;
        assert_eq!(kv.get("default", "empty")?, Some(Vec::new()));
        Ok(())
    }

    #[test]
    fn batch_operations() -> anyhow::Result<()> {
        let kv = KvStore::open_in_memory()?;
        kv.set_many("default", vec![("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec()), ("c".into(), b"3".to_vec())])?;
        let mut got = kv.get_many("default", vec!["c".into(), "a".into(), "zz".into()])?;
        got.sort();
        assert_eq!(got, [("a".to_owned(), Some(b"1".to_vec())), ("c".to_owned(), Some(b"3".to_vec()))]);
        kv.delete_many("default", vec!["a".into(), "c".into(), "zz".into()])?;
        assert_eq!(sorted(kv.keys("default")?), ["b"]);
        assert!(kv.get_many("default", Vec::new())?.is_empty());
        Ok(())
    }

    #[test]
    fn set_many_is_one_transaction() -> anyhow::Result<()> {
        let kv = KvStore::open_in_memory()?;
        // A trigger that fails the third insert: with one transaction,
        // nothing of the batch may remain.
        kv.with_connection(|c| {
            c.execute_batch(
                "CREATE TRIGGER boom BEFORE INSERT ON spin_key_value WHEN NEW.key = 'boom'
                 BEGIN SELECT RAISE(ABORT, 'boom'); END;",
            )?;
            Ok(())
        })?;
        let batch = vec![
            ("a".to_owned(), b"1".to_vec()),
            ("b".to_owned(), b"2".to_vec()),
            ("boom".to_owned(), b"3".to_vec()),
            ("c".to_owned(), b"4".to_vec()),
        ];
        assert!(kv.set_many("default", batch.clone()).is_err());
        assert!(kv.keys("default")?.is_empty(), "a failed set-many left rows");
        kv.with_connection(|c| {
            assert!(c.is_autocommit(), "transaction left open");
            Ok(())
        })?;
        // Per-key sets are separate transactions: the ones before the
        // failure stay.
        for (k, v) in &batch {
            if kv.set("default", k, v).is_err() {
                break;
            }
        }
        assert_eq!(sorted(kv.keys("default")?), ["a", "b"]);
        Ok(())
    }

    #[test]
    fn increment_and_cas() -> anyhow::Result<()> {
        let kv = KvStore::open_in_memory()?;
        assert_eq!(kv.increment("default", "n", 1)?, 1);
        assert_eq!(kv.increment("default", "n", 2)?, 3);
        assert_eq!(kv.increment("default", "n", -10)?, -7);
        assert_eq!(kv.get("default", "n")?, Some((-7i64).to_le_bytes().to_vec()));
        kv.set("default", "bad", b"xyz")?;
        assert!(kv.increment("default", "bad", 1).is_err());
        kv.set("default", "max", &i64::MAX.to_le_bytes())?;
        assert!(kv.increment("default", "max", 1).is_err());

        kv.set("default", "k", b"old")?;
        assert!(kv.cas_swap("default", "k", Some(b"old"), b"new")?);
        assert!(!kv.cas_swap("default", "k", Some(b"old"), b"newer")?);
        assert_eq!(kv.get("default", "k")?.as_deref(), Some(&b"new"[..]));
        // Spin's quirk: no previous value read = plain upsert.
        assert!(kv.cas_swap("default", "k", None, b"forced")?);
        assert!(kv.cas_swap("default", "fresh", None, b"1")?);
        assert_eq!(kv.get("default", "k")?.as_deref(), Some(&b"forced"[..]));
        Ok(())
    }

    /// Parallel increments from many threads on one store (as parallel
    /// requests share the host's store) lose nothing.
    #[test]
    fn increment_is_atomic_across_threads() -> anyhow::Result<()> {
        let kv = KvStore::open_in_memory()?;
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let kv = kv.clone();
                std::thread::spawn(move || -> anyhow::Result<Vec<i64>> { (0..200).map(|_| kv.increment("default", "n", 1)).collect() })
            })
            .collect();
        let mut seen = Vec::new();
        for t in threads {
            seen.extend(t.join().map_err(|_| anyhow!("thread panicked"))??);
        }
        seen.sort_unstable();
        // Every increment saw a distinct value: no two read the same count.
        assert_eq!(seen, (1..=1600).collect::<Vec<i64>>());
        assert_eq!(kv.increment("default", "n", 0)?, 1600);
        Ok(())
    }

    /// Two connections to one database file (two hosts, or a host and
    /// `spin up`, on one state directory) increment the same key in
    /// parallel: every increment counts and none fails.
    #[test]
    fn increment_is_atomic_across_connections_to_one_file() -> anyhow::Result<()> {
        let dir = TempDir::new("kv-increment");
        let stores = [KvStore::open_state_dir(dir.path())?, KvStore::open_state_dir(dir.path())?];
        let threads: Vec<_> = stores
            .iter()
            .flat_map(|kv| [kv.clone(), kv.clone()])
            .map(|kv| {
                std::thread::spawn(move || -> anyhow::Result<()> { (0..100).try_for_each(|_| kv.increment("default", "n", 1).map(drop)) })
            })
            .collect();
        for t in threads {
            t.join().map_err(|_| anyhow!("thread panicked"))??;
        }
        assert_eq!(stores[1].increment("default", "n", 0)?, 400);
        Ok(())
    }

    #[test]
    fn file_reopens_with_spins_name_and_schema() -> anyhow::Result<()> {
        let dir = TempDir::new("kv");
        let state = dir.path().join("state");
        {
            let kv = KvStore::open_state_dir(&state)?;
            assert_eq!(kv.path(), Some(state.join("sqlite_key_value.db").as_path()));
            kv.set("default", "user:alice", b"{\"name\":\"Alice\"}")?;
            kv.set_many("default", vec![("user:bob".into(), b"{}".to_vec())])?;
        }
        assert!(state.join(DEFAULT_DB_FILE).is_file());
        let kv = KvStore::open_state_dir(&state)?;
        kv.check_schema()?;
        assert_eq!(sorted(kv.keys("default")?), ["user:alice", "user:bob"]);
        assert_eq!(kv.get("default", "user:alice")?.as_deref(), Some(&b"{\"name\":\"Alice\"}"[..]));
        // The table definition is Spin's, byte for byte.
        let sql: String = kv.with_connection(|c| {
            Ok(c.query_row("SELECT sql FROM sqlite_master WHERE type='table' AND name='spin_key_value'", [], |r| r.get(0))?)
        })?;
        assert_eq!(sql, CREATE_TABLE.replacen(" IF NOT EXISTS", "", 1));
        Ok(())
    }

    #[test]
    fn opens_a_database_written_elsewhere() -> anyhow::Result<()> {
        // A file created by another program with Spin's schema (as `spin up`
        // would leave it) is read as is.
        let dir = TempDir::new("kv-foreign");
        let path = dir.path().join(DEFAULT_DB_FILE);
        {
            let c = Connection::open(&path)?;
            c.execute_batch(
                "CREATE TABLE spin_key_value (store TEXT NOT NULL, key TEXT NOT NULL,
                 value BLOB NOT NULL, PRIMARY KEY (store, key));
                 INSERT INTO spin_key_value VALUES ('default', 'k', x'0102');",
            )?;
        }
        let kv = KvStore::open_state_dir(dir.path())?;
        assert_eq!(kv.get("default", "k")?, Some(vec![1, 2]));
        Ok(())
    }
}
