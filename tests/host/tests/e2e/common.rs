//! Shared fixture: a host with seeded users, and request helpers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use ldap_sync_host::fixture::{self, user_doc, variables};
use ldap_sync_host::redis_server::RedisServer;
use ldap_sync_host::{Host, HostOptions, Response};
use serde_json::{Value, json};
use tokio::sync::Barrier;

// The digests every test module uses; defined in the host library so that
// `ldap-sync-bench` seeds with the very same code.
pub use ldap_sync_host::fixture::{hash_token, sha256_hex};

/// A base32 TOTP secret (RFC 6238's test key).
pub const TOTP_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/// The fixed time tests start at (a step boundary: 1_800_000_000 / 30).
pub const T0: u64 = 1_800_000_000;

/// The TOTP code for unix time `t`.
pub fn totp_at(t: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(TOTP_SECRET.into()).to_bytes().expect("base32");
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 0, 30, bytes).generate(t)
}

/// A user document with one login token `tok-<id>`.
pub fn user(id: &str, username: Option<&str>, roles: &[&str], services: Value) -> Value {
    user_doc(id, username, roles, services, &format!("tok-{id}"))
}

pub fn bcrypt_of_password(password: &str) -> String {
    fixture::bcrypt_of_password(password).expect("bcrypt")
}

/// The environment variable that puts the hosts of [`host`] on Redis:
/// `LDAP_SYNC_TEST_KV=redis` (README, "Run the tests").
pub const STORE_ENV: &str = "LDAP_SYNC_TEST_KV";

/// Options for a host on the store [`STORE_ENV`] asks for: Spin's SQLite in
/// memory by default; with `redis`, a `redis-server` of its own, through
/// `runtime-config.toml`, with `kv_batch_reads=false`.
pub fn store_options(opts: HostOptions) -> HostOptions {
    match std::env::var(STORE_ENV).as_deref() {
        Ok("redis") => {
            let server = Arc::new(RedisServer::start().unwrap_or_else(|e| panic!("{e:#}")));
            server.host_options(opts).unwrap_or_else(|e| panic!("{e:#}"))
        }
        Ok("" | "sqlite") | Err(_) => opts,
        Ok(other) => panic!("{STORE_ENV}={other:?}: expected sqlite or redis"),
    }
}

/// A host with an in-memory store (or Redis: [`STORE_ENV`]), the guest clock at [`T0`], and `vars`.
pub fn host(vars: &[(&str, &str)]) -> Host {
    let opts = store_options(HostOptions { variables: variables(vars.iter().copied()), ..HostOptions::default() });
    let host = Host::new(opts).expect("host starts");
    host.set_time(UNIX_EPOCH + Duration::from_secs(T0));
    host
}

pub fn put(host: &Host, key: &str, value: &Value) {
    host.kv_set(key, value.to_string().as_bytes()).expect("kv set");
}

pub fn get(host: &Host, key: &str) -> Option<Value> {
    host.kv_get(key).expect("kv get").map(|v| serde_json::from_slice(&v).expect("stored JSON"))
}

/// A counter (`docs/kv-schema.md`: 8-byte little-endian `i64`), if stored.
pub fn counter(host: &Host, key: &str) -> Option<i64> {
    // SQLite keeps 8 little-endian bytes, Redis (INCRBY) decimal text.
    host.kv_get(key).expect("kv get").map(|v| match std::str::from_utf8(&v).ok().and_then(|t| t.parse::<i64>().ok()) {
        Some(n) if v.len() != 8 || v.iter().all(|b| b.is_ascii_digit() || *b == b'-') => n,
        _ => i64::from_le_bytes(v.try_into().expect("an 8-byte counter")),
    })
}

/// POST /api/v1/ldap.syncNow with these headers.
pub async fn sync_now(host: &Host, headers: &[(&str, &[u8])]) -> Response {
    send(host, "POST", "/api/v1/ldap.syncNow", headers, Vec::new()).await
}

pub async fn send(host: &Host, method: &str, path: &str, headers: &[(&str, &[u8])], body: Vec<u8>) -> Response {
    let mut req = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        req = req.header(*name, http::HeaderValue::from_bytes(value).expect("header value"));
    }
    host.send(req.body(body).expect("request")).await.expect("host answers")
}

/// `X-User-Id` / `X-Auth-Token` of a seeded user.
pub fn login(id: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![("x-user-id", id.as_bytes().to_vec()), ("x-auth-token", format!("tok-{id}").into_bytes())]
}

pub fn with<'a>(base: &'a [(&'static str, Vec<u8>)], extra: &'a [(&'static str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
    base.iter().map(|(n, v)| (*n, v.as_slice())).chain(extra.iter().map(|(n, v)| (*n, v.as_bytes()))).collect()
}

/// Asserts status and exact JSON body.
#[track_caller]
pub fn assert_reply(res: &Response, status: u16, body: Value) {
    assert_eq!((res.status, res.json()), (status, body), "error: {:?}", res.error);
    assert_eq!(res.header("content-type"), Some("application/json"));
}

/// Every key and value of the default store.
pub fn dump(host: &Host) -> BTreeMap<String, Vec<u8>> {
    host.kv_keys()
        .expect("keys")
        .into_iter()
        .map(|k| {
            let v = host.kv_get(&k).expect("get").expect("listed key exists");
            (k, v)
        })
        .collect()
}

/// Every request at once, released together by a barrier (real parallel
/// requests, one task each); the answers in request order.
pub async fn burst_now(host: &Arc<Host>, reqs: Vec<http::Request<Vec<u8>>>) -> Vec<Response> {
    let barrier = Arc::new(Barrier::new(reqs.len()));
    let tasks: Vec<_> = reqs
        .into_iter()
        .map(|req| {
            let (host, barrier) = (Arc::clone(host), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                host.send(req).await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.expect("request task").expect("host answers"));
    }
    out
}

/// Every user document by `_id`, with what differs between two stores that
/// hold the same directory by construction taken out: the times (`createdAt`,
/// `_updatedAt`) and the DNs a user had before (`importIds` keeps the last).
pub fn documents(host: &Host) -> BTreeMap<String, Value> {
    host.kv_keys()
        .expect("keys")
        .into_iter()
        .filter(|k| k.starts_with("user:") && k != "user:admin")
        .map(|k| {
            let mut doc = get(host, &k).expect("document");
            let map = doc.as_object_mut().expect("an object");
            map.remove("createdAt");
            map.remove("_updatedAt");
            let last = map.get("importIds").and_then(|ids| ids.as_array()).and_then(|ids| ids.last()).cloned();
            map.insert("importIds".into(), json!([last]));
            (k, doc)
        })
        .collect()
}
