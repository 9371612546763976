//! The key-value store on Redis, as Spin's Redis provider runs it
//! (`crates/key-value-redis/src/store.rs`, Spin 3.0 to 4.0.2), selected by
//! `runtime-config.toml`'s `[key_value_store.default] type = "redis"`.
//!
//! Command for command:
//! * `get` is `GET`, `set` is `SET`, `delete` is `DEL`, `exists` is `EXISTS`;
//! * `get-keys` / `list-keys` is `KEYS *`;
//! * `set-many` is one `MSET` (atomic in Redis), `delete-many` one `DEL`;
//! * `increment` is `INCRBY`: the counter is stored as decimal text, not as
//!   SQLite's 8-byte little-endian `i64`, and a value that is not an
//!   integer fails the call;
//! * compare-and-swap: `current` opens its own connection, `WATCH`es the key
//!   and `GET`s it; `swap` runs `MULTI` / `SET` / `EXEC`, then `UNWATCH`.
//!   Spin reads `EXEC`'s reply into `()`, so a transaction Redis aborted
//!   (the key changed after `WATCH`) is reported as a successful swap that
//!   wrote nothing. Mirrored: [`RedisKv::cas_swap`] answers `Ok` then too.
//! * `get-many` is broken: Spin sends `KEYS <keys>` instead of `MGET`, and
//!   the `redis` crate panics in the host on the reply, so the request dies
//!   with an empty 500 that the component cannot catch. Mirrored: a guest's
//!   call traps the request ([`RedisKv::guest_get_many_panic`], in the
//!   bindings); the host's own reads use `MGET`.
//!
//! No transaction spans calls. Spin ignores the store's label: every label
//! on one Redis URL shares one keyspace.

use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context as _, anyhow};
use redis::{Client, Connection};

/// A failure that is a panic inside Spin's host, not an error the guest
/// sees: the bindings trap the request (Spin answers an empty 500).
#[derive(Debug)]
pub struct HostPanic(pub String);

impl std::fmt::Display for HostPanic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the host panicked: {}", self.0)
    }
}

impl std::error::Error for HostPanic {}

/// One Redis database, shared by every clone (one connection per
/// [`crate::kv::KvStore`]; each compare-and-swap opens its own, as Spin's).
#[derive(Clone)]
pub struct RedisKv {
    client: Client,
    conn: Arc<Mutex<Connection>>,
    url: String,
}

/// A compare-and-swap's own connection, with its `WATCH` in place.
pub struct CasConnection(Connection);

impl std::fmt::Debug for CasConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CasConnection")
    }
}

impl RedisKv {
    /// Connects to `url` (`redis://host:port[/db]`) and checks it with `PING`.
    pub fn open(url: &str) -> anyhow::Result<Self> {
        let client = Client::open(url).with_context(|| format!("invalid Redis URL {url:?}"))?;
        let mut conn = client.get_connection().with_context(|| format!("connecting to Redis at {url}"))?;
        redis::cmd("PING").query::<String>(&mut conn).with_context(|| format!("PING to Redis at {url}"))?;
        Ok(Self { client, conn: Arc::new(Mutex::new(conn)), url: url.to_owned() })
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn conn(&self) -> anyhow::Result<MutexGuard<'_, Connection>> {
        self.conn.lock().map_err(|_| anyhow!("the Redis connection mutex is poisoned"))
    }

    pub fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(redis::cmd("GET").arg(key).query(&mut *self.conn()?)?)
    }

    pub fn set(&self, key: &str, value: &[u8]) -> anyhow::Result<()> {
        Ok(redis::cmd("SET").arg(key).arg(value).query(&mut *self.conn()?)?)
    }

    /// `DEL`; returns whether a key was removed.
    pub fn delete(&self, key: &str) -> anyhow::Result<bool> {
        Ok(redis::cmd("DEL").arg(key).query::<u64>(&mut *self.conn()?)? > 0)
    }

    pub fn exists(&self, key: &str) -> anyhow::Result<bool> {
        Ok(redis::cmd("EXISTS").arg(key).query(&mut *self.conn()?)?)
    }

    /// `KEYS *`.
    pub fn keys(&self) -> anyhow::Result<Vec<String>> {
        Ok(redis::cmd("KEYS").arg("*").query(&mut *self.conn()?)?)
    }

    /// `MGET`, for the host's own reads (tests, the consistency checker).
    /// A guest's `get-many` never gets here: on Redis the bindings trap it
    /// with [`HostPanic`], as Spin's provider panics.
    pub fn get_many(&self, keys: &[String]) -> anyhow::Result<Vec<(String, Option<Vec<u8>>)>> {
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(keys).query(&mut *self.conn()?)?;
        Ok(keys.iter().cloned().zip(values).filter(|(_, v)| v.is_some()).collect())
    }

    /// What Spin's provider does with a guest's `get-many`.
    pub fn guest_get_many_panic(keys: usize) -> HostPanic {
        HostPanic(format!(
            "Spin's Redis get-many sent KEYS for {keys} key(s) instead of MGET, and the redis crate panicked on the reply \
             (set kv_batch_reads=false on Redis; docs/deploy.md)"
        ))
    }

    /// One `MSET`.
    pub fn set_many(&self, key_values: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
        let mut cmd = redis::cmd("MSET");
        for (key, value) in key_values {
            cmd.arg(key).arg(value.as_slice());
        }
        Ok(cmd.query(&mut *self.conn()?)?)
    }

    /// One `DEL` of every key; returns how many were removed.
    pub fn delete_many(&self, keys: &[String]) -> anyhow::Result<u64> {
        Ok(redis::cmd("DEL").arg(keys).query(&mut *self.conn()?)?)
    }

    /// `INCRBY`.
    pub fn increment(&self, key: &str, delta: i64) -> anyhow::Result<i64> {
        Ok(redis::cmd("INCRBY").arg(key).arg(delta).query(&mut *self.conn()?)?)
    }

    /// A compare-and-swap's `current`: a new connection, `WATCH`, `GET`.
    pub fn cas_current(&self, key: &str) -> anyhow::Result<(Option<Vec<u8>>, CasConnection)> {
        let mut conn = self.client.get_connection().with_context(|| format!("connecting to Redis at {}", self.url))?;
        redis::cmd("WATCH").arg(key).query::<()>(&mut conn)?;
        let value = redis::cmd("GET").arg(key).query(&mut conn)?;
        Ok((value, CasConnection(conn)))
    }

    /// A compare-and-swap's `swap`: `MULTI` / `SET` / `EXEC`, then `UNWATCH`,
    /// on the connection `current` watched with (a fresh one without it, as
    /// a Spin `swap` before `current` has nothing watched). `Ok` even when
    /// Redis aborted the transaction: like Spin's provider, it reads `EXEC`'s
    /// reply into nothing (module docs).
    pub fn cas_swap(&self, conn: Option<CasConnection>, key: &str, value: &[u8]) -> anyhow::Result<()> {
        let mut conn = match conn {
            Some(CasConnection(c)) => c,
            None => self.client.get_connection().with_context(|| format!("connecting to Redis at {}", self.url))?,
        };
        redis::pipe().atomic().cmd("SET").arg(key).arg(value).query::<()>(&mut conn)?;
        redis::cmd("UNWATCH").query::<()>(&mut conn)?;
        Ok(())
    }

    /// `FLUSHDB` (test convenience; Spin has no such call).
    pub fn clear(&self) -> anyhow::Result<()> {
        Ok(redis::cmd("FLUSHDB").query(&mut *self.conn()?)?)
    }
}
