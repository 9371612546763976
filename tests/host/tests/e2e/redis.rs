//! The store on Redis (issue 12): hosts whose `runtime-config.toml` puts the
//! `default` store on a real `redis-server`, which behaves as Spin's Redis
//! provider does (`kv::redis`): `get-many` kills the request, `set-many` is
//! one `MSET`, `increment` is `INCRBY`. Two hosts share one server, as two
//! Spin instances would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use ldap_sync_host::ClientAddr;
use ldap_sync_host::consistency::check_store;
use ldap_sync_host::demo::demo_variables;
use ldap_sync_host::fixture::variables;
use ldap_sync_host::redis_server::RedisServer;
use ldap_sync_host::{Host, HostOptions, Response};
use serde_json::{Value, json};

use crate::common::*;
use crate::offboarding::{ADMIN, USER_PASSWORD, assert_synced, directory, seed_admin, start_slapd, uids};

fn redis() -> Arc<RedisServer> {
    Arc::new(RedisServer::start().unwrap_or_else(|e| panic!("{e:#}")))
}

/// A host on `server` for the slapd at `port` (pages of 3), with `extra`.
fn redis_host(server: &Arc<RedisServer>, port: u16, extra: &[(&str, &str)]) -> Arc<Host> {
    let mut vars = demo_variables(port);
    vars.push(("ldap_search_page_size", "3".into()));
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let opts = HostOptions { variables: variables(vars.iter().map(|(k, v)| (*k, v.as_str()))), ..HostOptions::default() };
    let host = Host::new(server.host_options(opts).unwrap_or_else(|e| panic!("{e:#}"))).expect("host starts");
    host.set_time(UNIX_EPOCH + Duration::from_secs(T0));
    Arc::new(host)
}

/// Two hosts on one Redis, as two Spin instances: the admin seeded, and a
/// millisecond per store call, which widens every window a race could use.
fn two_hosts(server: &Arc<RedisServer>, port: u16) -> (Arc<Host>, Arc<Host>) {
    let (a, b) = (redis_host(server, port, &[]), redis_host(server, port, &[]));
    seed_admin(&a);
    for host in [&a, &b] {
        host.kv_store().set_latency(Duration::from_millis(1));
    }
    (a, b)
}

async fn sync(host: &Host) -> Response {
    host.send(ADMIN.sync_now_request().expect("request")).await.expect("host answers")
}

fn consistent(host: &Host) {
    if let Err(e) = check_store(host) {
        panic!("{e:#}");
    }
}

/// Every stored report of the history, by its number.
fn history(host: &Host) -> Vec<Value> {
    let newest = counter(host, "sync-report-seq").unwrap_or(0);
    (1..=newest).filter_map(|n| get(host, &format!("sync-report:{n}"))).collect()
}

#[tokio::test]
async fn a_batch_read_dies_as_on_spin_and_kv_batch_reads_false_avoids_it() {
    let slapd = start_slapd(directory(&uids(4)), None);
    let server = redis();

    // Spin's Redis get-many: an empty 500 the component cannot catch.
    let batch = redis_host(&server, slapd.port(), &[("kv_batch_reads", "true")]);
    seed_admin(&batch);
    let res = sync(&batch).await;
    assert_eq!((res.status, res.text()), (500, String::new()));
    let error = format!("{:?}", res.error);
    assert!(error.contains("get-many sent KEYS"), "{error}");

    // Single gets: the sync runs, and the counters are Redis's decimal text.
    let host = redis_host(&server, slapd.port(), &[]);
    let report = assert_synced(&host, &sync(&host).await);
    assert_eq!(report["created"], json!(4), "{report}");
    assert_eq!(host.kv_get("sync-report-seq").expect("get"), Some(b"1".to_vec()));
    let report = assert_synced(&host, &sync(&host).await);
    assert_eq!((report["created"].clone(), report["unchanged"].clone()), (json!(0), json!(4)), "{report}");
    assert_eq!(host.kv_get("sync-report-seq").expect("get"), Some(b"2".to_vec()));
    // Login, me and users.list read through the same single gets.
    let login = send(&host, "POST", "/api/v1/login", &[], json!({"user": "u00", "password": USER_PASSWORD}).to_string().into_bytes()).await;
    assert_eq!(login.status, 200, "{}", login.text());
    consistent(&host);
}

#[tokio::test]
async fn two_hosts_on_one_redis_run_one_sync_at_a_time() {
    let slapd = start_slapd(directory(&uids(30)), None);
    let server = redis();
    let (a, b) = two_hosts(&server, slapd.port());
    for round in 0..3 {
        let mut tasks = Vec::new();
        for i in 0..6 {
            let host = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move { sync(&host).await }));
        }
        for task in tasks {
            let res = task.await.expect("task");
            assert_eq!((res.status, res.text()), (200, r#"{"message":"Sync_in_progress","success":true}"#.to_owned()), "round {round}");
        }
    }
    let reports = history(&a);
    assert!(!reports.is_empty());
    // Had two runs overlapped, both would have created the same users.
    let created: u64 = reports.iter().map(|r| r["created"].as_u64().unwrap_or(0)).sum();
    assert_eq!(created, 30, "{reports:?}");
    assert!(reports.iter().all(|r| r["outcome"] == json!("success")), "{reports:?}");
    assert_eq!(a.kv_keys().expect("keys").iter().filter(|k| k.starts_with("user:")).count(), 31, "30 users and the admin");
    assert_eq!(a.kv_get("sync-lease").expect("get"), None, "every run released the lease");
    consistent(&a);
}

#[tokio::test]
async fn logins_racing_syncs_across_two_hosts_keep_the_store_consistent() {
    let slapd = start_slapd(directory(&uids(12)), None);
    let server = redis();
    let (a, b) = two_hosts(&server, slapd.port());
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (login_host, sync_host) = if i % 2 == 0 { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) };
        tasks.push(tokio::spawn(async move {
            let body = json!({"user": format!("u{i:02}"), "password": USER_PASSWORD}).to_string().into_bytes();
            let mut req = http::Request::post("/api/v1/login").body(body).expect("request");
            let addr: SocketAddr = format!("10.0.{i}.1:4000").parse().expect("address");
            req.extensions_mut().insert(ClientAddr(addr));
            let res = login_host.send(req).await.expect("host answers");
            assert_eq!(res.status, 200, "login u{i:02}: {}", res.text());
        }));
        if i % 3 == 0 {
            tasks.push(tokio::spawn(async move {
                let res = sync(&sync_host).await;
                assert_eq!(res.status, 200, "{}", res.text());
            }));
        }
    }
    for task in tasks {
        task.await.expect("task");
    }
    // A last sync with nobody racing it: every user once, every index right.
    let report = assert_synced(&a, &sync(&a).await);
    assert_eq!(report["failed"], json!(0), "{report}");
    assert_eq!(a.kv_keys().expect("keys").iter().filter(|k| k.starts_with("user:")).count(), 13, "12 users and the admin");
    consistent(&a);
}
