//! Faults (issue 9): every one ends in a 400 `LDAP_Sync_failed`, deactivates
//! nobody, and leaves a consistent store.
//!
//! Each test first makes a complete read with
//! `ldap_background_sync_disable_missing_users=true` and the breaker opened
//! wide (`ldap_sync_max_deactivations=100%`), so that the faulty run, which
//! never sees the users after the fault, would deactivate them if it took its
//! partial read for the directory. A real slapd produces what it can (a
//! stopped or killed server, a paged size limit); scripted fake servers
//! ([`ldap_sync_host::fake_ldap`]) the rest.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap_sync_host::fake_ldap::{FakeEntry, FakeLdap, Fault, LdapPeer, Script, code, serve_pages};
use ldap_sync_host::fixture::{SYNC_IN_PROGRESS, variables};
use ldap_sync_host::kv::{SetManyHook, fail_nth_set_many};
use ldap_sync_host::{Host, HostOptions, Response};
use serde_json::json;

use crate::common::*;
use crate::offboarding::{
    ADMIN, USER_PASSWORD, assert_consistent, assert_sync_failed, assert_synced, call, delete, directory, inactive, last_report, person,
    seed_admin, start_slapd, sync_host, uids, user,
};

/// Offboarding on, the breaker out of the way: a wrong deactivation shows.
// `full`: the scripted fake servers answer every search with their pages, a root DSE read too.
const WATCHFUL: [(&str, &str); 3] =
    [("ldap_background_sync_disable_missing_users", "true"), ("ldap_sync_max_deactivations", "100%"), ("ldap_sync_mode", "full")];

fn watchful_host(port: u16, extra: &[(&'static str, &str)]) -> Host {
    let mut vars: Vec<(&'static str, &str)> = WATCHFUL.to_vec();
    vars.extend_from_slice(extra);
    sync_host(port, &vars)
}

/// After a fault: the exact failure body, nobody deactivated, a consistent store.
#[track_caller]
fn assert_fault(host: &Host, res: &Response, starts_with: &str) {
    let message = assert_sync_failed(host, res);
    assert!(message.starts_with(starts_with), "{message:?} does not start with {starts_with:?}");
    assert!(inactive(host).is_empty(), "deactivated after a failed run: {:?}", inactive(host));
    assert_consistent(host);
}

// ---------------------------------------------------------------------------
// Against a real slapd
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_stopped_server_refuses_the_connection() {
    let mut slapd = start_slapd(directory(&uids(6)), None);
    let port = slapd.port();
    let host = watchful_host(port, &[]);
    assert_synced(&host, &call(&host).await);
    slapd.stop();
    host.advance(Duration::from_secs(60));
    assert_fault(&host, &call(&host).await, &format!("cannot connect to 127.0.0.1:{port}"));
    assert_eq!(get(&host, "sync-lease"), None, "the lease is released after a failed connect");
}

/// slapd is killed (SIGKILL) right after the first page of the second run was
/// written: the next page's request meets a dead server.
#[tokio::test]
async fn a_server_killed_between_pages() {
    let slapd = Arc::new(Mutex::new(Some(start_slapd(directory(&uids(12)), None))));
    let port = slapd.lock().expect("lock").as_ref().expect("running").port();
    let host = watchful_host(port, &[]);
    assert_synced(&host, &call(&host).await);
    // Page 1's batch is the one that carries `schema-version`: kill slapd as it lands.
    let killer = Arc::clone(&slapd);
    let hook: SetManyHook = Arc::new(move |pairs: &[(String, Vec<u8>)]| {
        if pairs.iter().any(|(k, _)| k == "schema-version") {
            // Dropping the fixture kills slapd and waits for it.
            killer.lock().map(|mut s| s.take()).ok();
        }
        Ok(())
    });
    host.kv_store().set_set_many_hook(Some(hook));
    // Written with a run's first page only while the store lacks it.
    host.kv_delete("schema-version").expect("delete");
    host.advance(Duration::from_secs(60));
    let res = call(&host).await;
    host.kv_store().set_set_many_hook(None);
    assert!(slapd.lock().expect("lock").is_none(), "slapd was killed");
    assert_fault(&host, &res, "search: ");
    // The second page's request goes out before the first is written, so
    // slapd may have sent it before it died.
    let pages = last_report(&host)["pages"].as_u64();
    assert!(matches!(pages, Some(1 | 2)), "{pages:?}");
}

/// A key-value failure mid-run: the second page's batch is refused. The
/// first page's writes stand, complete; the run fails and deactivates nobody.
#[tokio::test]
async fn a_key_value_failure_mid_run() {
    let slapd = start_slapd(directory(&uids(9)), None);
    let host = watchful_host(slapd.port(), &[]);
    assert_synced(&host, &call(&host).await);
    // Every user changes (so every page writes users), and u08 leaves.
    let ldif: String = uids(8)
        .iter()
        .map(|u| format!("dn: uid={u},ou=people,dc=example,dc=org\nchangetype: modify\nreplace: cn\ncn: New {u}\n\n"))
        .collect();
    slapd.modify(&ldif).expect("ldapmodify");
    delete(&slapd, &["u08"]);
    host.kv_store().set_set_many_hook(Some(fail_nth_set_many("user:", 2)));
    host.advance(Duration::from_secs(60));
    let res = call(&host).await;
    host.kv_store().set_set_many_hook(None);
    assert_fault(&host, &res, "");
    let message = res.json()["details"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("injected fault: set-many #2 writing user:* keys failed"), "{message}");
    let names: Vec<String> = uids(8).iter().map(|u| user(&host, u)["name"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(names[..3], ["New u00", "New u01", "New u02"], "page 1 was written");
    assert_eq!(names[3..6], ["User u03", "User u04", "User u05"], "page 2 was not written at all");
    // The store is back: the next run completes the updates and deactivates u08.
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["updated"].clone(), report["deactivations"].clone()), (json!(5), json!(["u08"])), "{report}");
    assert_consistent(&host);
}

/// Two syncs at once, with a user gone: one runs, the other finds the lease
/// (or runs after it); either way 200, one deactivation, a consistent store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_syncs_at_once() {
    let slapd = start_slapd(directory(&uids(30)), None);
    let host = Arc::new(capturing_host(slapd.port()));
    assert_synced(&host, &call(&host).await);
    delete(&slapd, &["u29"]);
    host.advance(Duration::from_secs(60));
    host.kv_store().set_latency(Duration::from_millis(2));
    let answers = burst_now(&host, vec![ADMIN.sync_now_request().expect("request"), ADMIN.sync_now_request().expect("request")]).await;
    host.kv_store().set_latency(Duration::ZERO);
    for res in &answers {
        assert_eq!((res.status, res.text()), (200, SYNC_IN_PROGRESS.to_owned()), "{:?}", res.error);
    }
    let log = String::from_utf8_lossy(&host.output().expect("captured").stderr()).into_owned();
    let ran = log.matches(r#""msg":"sync finished","runId""#).count() - 1;
    let held = log.matches("a sync is already in progress").count();
    eprintln!("two syncs at once: {ran} ran, {held} found the lease held");
    assert_eq!(ran + held, 2, "{log}");
    assert!(ran >= 1, "{log}");
    assert_eq!(log.matches(r#""deactivated":1,"#).count(), 1, "exactly one run deactivated u29\n{log}");
    assert_eq!(inactive(&host), ["u29"]);
    assert_eq!(get(&host, "sync-lease"), None, "released");
    assert_consistent(&host);
}

/// A sync racing logins: of directory users (one of them disabled in the
/// directory meanwhile) and of the admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sync_racing_logins() {
    let mut ldif = directory(&uids(20));
    ldif += &person("dis", &["userAccountControl: 512"]);
    let slapd = start_slapd(ldif, None);
    let host = Arc::new(capturing_host(slapd.port()));
    assert_synced(&host, &call(&host).await);
    let population = host.kv_keys().expect("keys").iter().filter(|k| k.starts_with("user:")).count();
    slapd
        .modify("dn: uid=dis,ou=people,dc=example,dc=org\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n")
        .expect("ldapmodify");
    delete(&slapd, &["u19"]);
    host.advance(Duration::from_secs(60));
    let login = |user: &str| {
        http::Request::post("/api/v1/login")
            .header("content-type", "application/json")
            .body(json!({"user": user, "password": USER_PASSWORD}).to_string().into_bytes())
            .expect("request")
    };
    let mut reqs = vec![ADMIN.sync_now_request().expect("request")];
    reqs.extend(["u00", "u05", "u10", "dis", "u00", "u18"].map(login));
    host.kv_store().set_latency(Duration::from_millis(2));
    let answers = burst_now(&host, reqs).await;
    host.kv_store().set_latency(Duration::ZERO);
    assert_eq!((answers[0].status, answers[0].text()), (200, SYNC_IN_PROGRESS.to_owned()));
    for (i, res) in answers[1..].iter().enumerate() {
        let want = if i == 3 { 401 } else { 200 };
        assert_eq!(res.status, want, "login {i}: {}", res.text());
    }
    assert_eq!(inactive(&host), ["dis", "u19"]);
    let users = host.kv_keys().expect("keys").iter().filter(|k| k.starts_with("user:")).count();
    assert_eq!(users, population, "a login created or lost a user");
    assert_consistent(&host);
}

/// Like [`sync_host`], keeping the guest's log.
fn capturing_host(port: u16) -> Host {
    let mut vars = ldap_sync_host::demo::demo_variables(port);
    vars.push(("ldap_search_page_size", "3".into()));
    vars.extend(WATCHFUL.iter().map(|(k, v)| (*k, (*v).to_owned())));
    vars.push(("api_enable_rate_limiter", "false".into()));
    let host = Host::new(HostOptions { variables: variables(vars), capture_output: true, ..HostOptions::default() }).expect("host starts");
    host.set_time(std::time::UNIX_EPOCH + Duration::from_secs(T0));
    seed_admin(&host);
    host
}

// ---------------------------------------------------------------------------
// Against scripted fake servers
// ---------------------------------------------------------------------------

/// Ten people in pages of 3 (3, 3, 3, 1).
fn fake_pages() -> Vec<Vec<FakeEntry>> {
    let people: Vec<FakeEntry> = uids(10).iter().map(|u| FakeEntry::person(u)).collect();
    people.chunks(3).map(<[FakeEntry]>::to_vec).collect()
}

/// A complete read, then `fault` on page 2 of the second session.
async fn fault_run(fault: Fault, extra: &[(&'static str, &str)]) -> (Host, Response) {
    let server = FakeLdap::pages(fake_pages(), vec![Fault::None, fault]).expect("fake server");
    let host = watchful_host(server.port(), extra);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["created"], json!(10), "{report}");
    host.advance(Duration::from_secs(60));
    let res = call(&host).await;
    server.join().expect("the fake server ends");
    (host, res)
}

#[tokio::test]
async fn unexpected_result_codes_mid_run() {
    let codes = [
        (code::SIZE_LIMIT_EXCEEDED, "search failed: sizeLimitExceeded (4): administrative limit"),
        (code::TIME_LIMIT_EXCEEDED, "search failed: timeLimitExceeded (3): administrative limit"),
        (code::BUSY, "search failed: busy (51): administrative limit"),
        (code::UNAVAILABLE, "search failed: unavailable (52): administrative limit"),
    ];
    for (code, message) in codes {
        let (host, res) = fault_run(Fault::Result { at: 1, code, diagnostic: "administrative limit".into() }, &[]).await;
        assert_fault(&host, &res, message);
        assert_eq!(last_report(&host)["pages"], json!(1), "{message}");
    }
}

#[tokio::test]
async fn an_invalid_paged_results_cookie() {
    // What slapd answers a cookie it does not know.
    let fault = Fault::Result { at: 1, code: code::UNWILLING_TO_PERFORM, diagnostic: "paged results cookie is invalid".into() };
    let (host, res) = fault_run(fault, &[]).await;
    assert_fault(&host, &res, "search failed: unwillingToPerform (53): paged results cookie is invalid");
    let fault = Fault::Result { at: 2, code: code::PROTOCOL_ERROR, diagnostic: "paged results cookie is invalid".into() };
    let (host, res) = fault_run(fault, &[]).await;
    assert_fault(&host, &res, "search failed: protocolError (2): paged results cookie is invalid");
    // A server that hands back the cookie it was asked with would page forever.
    let (host, res) = fault_run(Fault::RepeatCookie { at: 2 }, &[]).await;
    assert_fault(&host, &res, "search: the LDAP server sent the same paging cookie twice in a row (after page 3)");
}

#[tokio::test]
async fn a_referral_fails_the_run() {
    let (host, res) = fault_run(Fault::Referral { at: 1 }, &[]).await;
    assert_fault(&host, &res, "search failed: referral (10)");
}

/// A continuation reference does not fail the run, but the read is not
/// complete: nobody missing is deactivated, and the report says why.
#[tokio::test]
async fn a_continuation_reference_blocks_missing_user_deactivation() {
    let nine: Vec<Vec<FakeEntry>> = {
        let people: Vec<FakeEntry> = uids(9).iter().map(|u| FakeEntry::person(u)).collect();
        people.chunks(3).map(<[FakeEntry]>::to_vec).collect()
    };
    let session =
        |pages: Vec<Vec<FakeEntry>>, fault: Fault| Box::new(move |mut peer: LdapPeer| serve_pages(&mut peer, &pages, &fault)) as Script;
    let server = FakeLdap::start(vec![
        session(fake_pages(), Fault::None),
        session(nine.clone(), Fault::Reference { at: 1 }),
        session(nine, Fault::None),
    ])
    .expect("fake server");
    let host = watchful_host(server.port(), &[]);
    assert_synced(&host, &call(&host).await);
    host.advance(Duration::from_secs(60));
    // u09 is gone, and part of the directory is on another server.
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["entries"].clone(), report.get("deactivated")), (json!(9), None), "{report}");
    let why = report["offboarding"]["missingUsersNotChecked"].as_str().unwrap_or_default();
    assert!(why.contains("1 continuation references"), "{report}");
    assert!(inactive(&host).is_empty());
    assert_consistent(&host);
    // The same read without the reference is complete: u09 goes.
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["deactivations"], json!(["u09"]), "{report}");
    server.join().expect("the fake server ends");
    assert_consistent(&host);
}

#[tokio::test]
async fn malformed_ber_and_an_oversized_message() {
    // searchResDone (id 3: bind 1, searches 2 and 3) whose LDAPResult is one stray byte.
    let garbage = vec![0x30, 0x06, 0x02, 0x01, 0x03, 0x65, 0x01, 0xff];
    let (host, res) = fault_run(Fault::Raw { at: 1, bytes: garbage }, &[]).await;
    assert_fault(&host, &res, "malformed LDAP message: ");
    let (host, res) = fault_run(Fault::Raw { at: 1, bytes: vec![0x04, 0x00] }, &[]).await;
    assert_fault(&host, &res, "malformed LDAP message: expected a SEQUENCE (0x30), got tag 0x04");
    // A length of 2 GiB: refused from the header, before anything is buffered.
    let (host, res) = fault_run(Fault::Raw { at: 1, bytes: vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01, 0x03] }, &[]).await;
    assert_fault(&host, &res, "malformed LDAP message: message of 2147483647 bytes exceeds the limit of 67108864");
}

#[tokio::test]
async fn a_stalled_connection_hits_the_read_timeout_and_a_trickling_one_the_operation_deadline() {
    let (host, res) = fault_run(Fault::Stall { at: 1 }, &[("ldap_timeout", "300")]).await;
    assert_fault(&host, &res, "search: no answer from the LDAP server within 300 ms");
    let (host, res) = fault_run(Fault::Trickle { at: 1, every: Duration::from_millis(100) }, &[("ldap_timeout", "300")]).await;
    assert_fault(&host, &res, "search: the LDAP server did not finish within 1200 ms (4 × ldap_timeout), although it kept sending");
}

#[tokio::test]
async fn a_connection_closed_mid_search() {
    let (host, res) = fault_run(Fault::Close { at: 2 }, &[]).await;
    assert_fault(&host, &res, "search: the LDAP server closed the connection");
    assert_eq!(last_report(&host)["pages"], json!(2));
}

#[tokio::test]
async fn a_stalled_run_hits_the_run_deadline() {
    // Each read is within ldap_timeout (the stall is shorter than it), but the whole run is not.
    let (host, res) = fault_run(Fault::Stall { at: 1 }, &[("ldap_timeout", "60000"), ("ldap_sync_run_timeout", "1000")]).await;
    assert_fault(&host, &res, "search: stopped at the run deadline");
}
