//! Incremental sync (issue 10) against a real slapd with the `syncprov`
//! overlay, through the real component: an RFC 4533 refresh from the stored
//! cookie applies adds, modifies, renames and deletes, and leaves the store
//! as a fresh full sync of the same directory would, document by document;
//! the cookie persists across calls; a cookie the server does not take
//! falls back to a full refresh; `auto` picks the mode from the root DSE;
//! timestamp mode reads changes and finds deletions at its full reads.

use ldap_sync_host::Host;
use ldap_sync_host::consistency::check_store;
use ldap_sync_host::demo::{DEMO_PEOPLE_BASE, DEMO_SVC_DN};
use ldap_sync_host::slapd::{Slapd, SlapdOptions};
use serde_json::{Value, json};

use crate::common::*;
use crate::offboarding::{assert_synced, call, directory, inactive, sync_host, uids};

/// slapd with syncprov (a session log, so deletions come as ids) and the
/// service account exempt from the size limit (a refresh is not paged).
fn start_syncprov_slapd(ldif: String, syncprov: Option<u32>) -> Slapd {
    Slapd::start(SlapdOptions {
        account_state_schema: true,
        size_limit: Some(1000),
        ldif,
        syncprov,
        unlimited: vec![DEMO_SVC_DN.to_owned()],
        ..SlapdOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e:#}"))
}

#[tokio::test]
async fn an_incremental_run_leaves_the_store_a_fresh_full_sync_would() {
    let slapd = start_syncprov_slapd(directory(&uids(10)), Some(100));
    let port = slapd.port();
    let vars = [
        ("ldap_sync_mode", "syncrepl"),
        ("ldap_unique_identifier_field", "entryUUID"),
        ("ldap_background_sync_disable_missing_users", "true"),
        ("ldap_sync_max_deactivations", "100%"),
    ];
    let host = sync_host(port, &vars);

    // No cookie yet: the whole content, and a cookie stored.
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(
        (report["mode"].clone(), report["modeNote"].clone(), report["created"].clone(), report["fullyInSync"].clone()),
        (json!("syncrepl"), json!("no cookie yet: full refresh"), json!(10), json!(true)),
        "{report}"
    );
    let cookie = get(&host, "sync-cookie").expect("a cookie is stored");
    assert_eq!(cookie["mode"], json!("syncrepl"));
    assert_eq!(cookie["idsVerified"], json!(true), "slapd's sync UUIDs are the entryUUIDs");

    // From the cookie, nothing changed: nothing arrives, nothing is written but the report.
    let before = dump(&host);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["entries"].clone(), report["modeNote"].clone()), (json!(0), Value::Null), "{report}");
    // The report (last, history and its counter) and the cookie change; nothing else.
    let strip = |m: std::collections::BTreeMap<String, Vec<u8>>| {
        m.into_iter().filter(|(k, _)| !k.starts_with("sync-report") && k != "sync-cookie").collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(strip(dump(&host)), strip(before), "an unchanged directory writes nothing");

    // A change round: modify, rename, delete, add.
    slapd
        .modify(&format!(
            "dn: uid=u01,{DEMO_PEOPLE_BASE}\nchangetype: modify\nreplace: cn\ncn: Changed u01\n\n\
             dn: uid=u02,{DEMO_PEOPLE_BASE}\nchangetype: modrdn\nnewrdn: uid=u02r\ndeleteoldrdn: 1\n\n\
             dn: uid=u03,{DEMO_PEOPLE_BASE}\nchangetype: delete\n\n\
             dn: uid=u10,{DEMO_PEOPLE_BASE}\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: ldapSyncTestAccount\n\
             uid: u10\ncn: User u10\nsn: u10\nmail: u10@example.org\nuserAccountControl: 512\n\n"
        ))
        .expect("ldapmodify");
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(
        (
            report["entries"].clone(),
            report["created"].clone(),
            report["updated"].clone(),
            report["deletedInDirectory"].clone(),
            report["deactivated"].clone(),
            report["deactivations"].clone()
        ),
        (json!(3), json!(1), json!(2), json!(1), json!(1), json!(["u03"])),
        "{report}"
    );
    assert_ne!(get(&host, "sync-cookie"), Some(cookie), "the cookie moved on");
    assert_eq!(inactive(&host), vec!["u03".to_owned()]);
    assert_eq!(user_named(&host, "u02r")["name"], json!("User u02"));
    assert_eq!(user_named(&host, "u01")["name"], json!("Changed u01"));
    check_store(&host).expect("consistent store");

    // A fresh full sync of the same directory: the same documents, but for
    // the deleted user, whom the incremental store keeps, deactivated.
    let fresh = sync_host(port, &[("ldap_sync_mode", "full"), ("ldap_unique_identifier_field", "entryUUID")]);
    let report = assert_synced(&fresh, &call(&fresh).await);
    assert_eq!((report["mode"].clone(), report["created"].clone()), (json!("full"), json!(10)), "{report}");
    let mut incremental = documents(&host);
    let gone = incremental.iter().find(|(_, d)| d["username"] == json!("u03")).map(|(k, _)| k.clone()).expect("u03 stays");
    incremental.remove(&gone);
    assert_eq!(incremental, documents(&fresh));
    check_store(&fresh).expect("consistent store");
}

fn user_named(host: &Host, username: &str) -> Value {
    crate::offboarding::user(host, username)
}

#[tokio::test]
async fn a_cookie_the_server_does_not_take_falls_back_to_a_full_refresh() {
    let slapd = start_syncprov_slapd(directory(&uids(4)), Some(100));
    let host = sync_host(slapd.port(), &[("ldap_sync_mode", "syncrepl"), ("ldap_unique_identifier_field", "entryUUID")]);
    assert_synced(&host, &call(&host).await);
    let mut cookie = get(&host, "sync-cookie").expect("a cookie");
    // A cookie from a server that never existed (rid 999, a CSN from 1970).
    cookie["cookie"] = json!("cmlkPTk5OSxjc249MTk3MDAxMDEwMDAwMDAuMDAwMDAwWiMwMDAwMDAjMDAwIzAwMDAwMA==");
    put(&host, "sync-cookie", &cookie);
    let report = assert_synced(&host, &call(&host).await);
    // Either slapd refuses it (and the run starts over without it) or it
    // answers with the whole content: both end complete, with a new cookie.
    assert_eq!((report["fullyInSync"].clone(), report["failed"].clone()), (json!(true), json!(0)), "{report}");
    assert_eq!(report["unchanged"], json!(4), "{report}");
    assert_ne!(get(&host, "sync-cookie").map(|c| c["cookie"].clone()), Some(cookie["cookie"].clone()), "a new cookie");
    check_store(&host).expect("consistent store");
}

#[tokio::test]
async fn auto_reads_incrementally_only_where_the_server_announces_it() {
    let with = start_syncprov_slapd(directory(&uids(2)), Some(100));
    let host = sync_host(with.port(), &[("ldap_sync_mode", "auto"), ("ldap_unique_identifier_field", "entryUUID")]);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["mode"], json!("syncrepl"), "{report}");

    // Without it: timestamp reads, unless missing users are deactivated
    // (a timestamp read cannot see them).
    let without = start_syncprov_slapd(directory(&uids(2)), None);
    let host = sync_host(without.port(), &[("ldap_sync_mode", "auto"), ("ldap_unique_identifier_field", "entryUUID")]);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(
        (report["mode"].clone(), report["modeNote"].clone()),
        (
            json!("timestamp"),
            json!("timestamp: the server does not announce RFC 4533 content synchronisation; full read: no earlier timestamp run")
        ),
        "{report}"
    );
    let vars = [("ldap_sync_mode", "auto"), ("ldap_background_sync_disable_missing_users", "true")];
    let host = sync_host(without.port(), &vars);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["mode"], json!("full"), "{report}");
    // RFC 4533 only with entryUUID as the unique identifier.
    let host = sync_host(with.port(), &[("ldap_sync_mode", "auto"), ("ldap_unique_identifier_field", "uid")]);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["mode"], json!("timestamp"), "{report}");
}

#[tokio::test]
async fn timestamp_mode_reads_changes_and_finds_deletions_at_the_next_full_read() {
    let slapd = start_syncprov_slapd(directory(&uids(10)), None);
    let port = slapd.port();
    let vars =
        [("ldap_sync_mode", "timestamp"), ("ldap_background_sync_disable_missing_users", "true"), ("ldap_sync_max_deactivations", "100%")];
    let host = sync_host(port, &vars);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(
        (report["mode"].clone(), report["modeNote"].clone(), report["created"].clone(), report["fullyInSync"].clone()),
        (json!("timestamp"), json!("full read: no earlier timestamp run"), json!(10), json!(true)),
        "{report}"
    );
    let cookie = get(&host, "sync-cookie").expect("stored");
    assert_eq!(cookie["mode"], json!("timestamp"));
    assert_eq!(cookie["fullAt"], json!({"$date": T0 * 1000}), "this host's time");

    // A change round, then an incremental read: what changed arrives (and
    // what changed in the 10-minute margin: here everything, unchanged by
    // its mark). The deleted user is not seen; the disabled one is.
    slapd
        .modify(&format!(
            "dn: uid=u01,{DEMO_PEOPLE_BASE}\nchangetype: modify\nreplace: cn\ncn: Changed u01\n\n\
             dn: uid=u02,{DEMO_PEOPLE_BASE}\nchangetype: modrdn\nnewrdn: uid=u02r\ndeleteoldrdn: 1\n\n\
             dn: uid=u03,{DEMO_PEOPLE_BASE}\nchangetype: delete\n\n\
             dn: uid=u04,{DEMO_PEOPLE_BASE}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n\n\
             dn: uid=u10,{DEMO_PEOPLE_BASE}\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: ldapSyncTestAccount\n\
             uid: u10\ncn: User u10\nsn: u10\nmail: u10@example.org\nuserAccountControl: 512\n\n"
        ))
        .expect("ldapmodify");
    let report = assert_synced(&host, &call(&host).await);
    let note = report["modeNote"].as_str().unwrap_or_default().to_owned();
    assert!(note.starts_with("entries modified since "), "{report}");
    assert_eq!(
        (
            report["created"].clone(),
            report["updated"].clone(),
            report["deactivations"].clone(),
            report["fullyInSync"].clone(),
            report["unchanged"].clone()
        ),
        (json!(1), json!(2), json!(["u04"]), json!(false), json!(7)),
        "{report}"
    );
    assert_eq!(inactive(&host), vec!["u04".to_owned()], "u03 is not known to be gone yet");
    assert_eq!(user_named(&host, "u02r")["name"], json!("User u02"));
    assert_eq!(user_named(&host, "u01")["name"], json!("Changed u01"));
    let next = get(&host, "sync-cookie").expect("stored");
    assert_eq!(next["fullAt"], cookie["fullAt"], "an incremental read is not a full one");
    check_store(&host).expect("consistent store");

    // A day later (this host's clock): a full read, which finds u03 gone.
    host.advance(std::time::Duration::from_secs(25 * 3600));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(
        (report["modeNote"].clone(), report["deactivations"].clone(), report["fullyInSync"].clone()),
        (json!("full read: the last complete full read is over ldap_full_sync_interval_hours (24) old"), json!(["u03"]), json!(true)),
        "{report}"
    );
    assert_eq!(inactive(&host), vec!["u03".to_owned(), "u04".to_owned()]);
    check_store(&host).expect("consistent store");

    // The same documents as a fresh full sync, but for u03, kept deactivated.
    let fresh = sync_host(port, &[("ldap_sync_mode", "full")]);
    assert_synced(&fresh, &call(&fresh).await);
    let mut incremental = documents(&host);
    let gone = incremental.iter().find(|(_, d)| d["username"] == json!("u03")).map(|(k, _)| k.clone()).expect("u03 stays");
    incremental.remove(&gone);
    assert_eq!(incremental, documents(&fresh));
}

#[tokio::test]
async fn a_tiny_time_budget_finishes_in_several_calls_like_one_full_run() {
    let slapd = start_syncprov_slapd(directory(&uids(18)), None);
    let port = slapd.port();
    let vars = [("ldap_sync_mode", "full"), ("ldap_unique_identifier_field", "entryUUID"), ("ldap_sync_time_budget_ms", "400")];
    let host = sync_host(port, &vars);
    // A slow store (40 ms per operation, as a far-away one): a run's setup
    // (lease, mark key) takes about five operations and a page of 3 new users
    // three or four, so 400 ms covers one or two pages of new users per
    // call, and more of those already written (one operation per page). A
    // call can only finish once a pass over every page fits: the resume
    // point is the sync marks, not a server position.
    // On Redis (LDAP_SYNC_TEST_KV=redis) reads are single gets
    // (kv_batch_reads=false): a page's three marks are three operations,
    // not one, so each costs a third.
    let per_op = if host.kv_store().redis().is_some() { 13 } else { 40 };
    host.kv_store().set_latency(std::time::Duration::from_millis(per_op));
    let mut outcomes = Vec::new();
    for _ in 0..20 {
        let res = call(&host).await;
        assert_eq!(res.status, 200, "{}", res.text());
        let report = get(&host, "sync-report:last").expect("a report");
        let outcome = report["outcome"].as_str().unwrap_or_default().to_owned();
        match outcome.as_str() {
            "stopped" => {
                assert_eq!(report["fullyInSync"], json!(false), "{report}");
                assert_eq!(report.get("deactivated"), None, "{report}");
            }
            "success" => assert_eq!(report["fullyInSync"], json!(true), "{report}"),
            other => panic!("outcome {other}: {report}"),
        }
        outcomes.push(outcome);
        if outcomes.last().map(String::as_str) == Some("success") {
            break;
        }
    }
    host.kv_store().set_latency(std::time::Duration::ZERO);
    assert_eq!(outcomes.last().map(String::as_str), Some("success"), "never finished: {outcomes:?}");
    assert!(outcomes.len() > 1, "the budget never stopped a run: {outcomes:?}");
    check_store(&host).expect("consistent store");

    let fresh = sync_host(port, &[("ldap_sync_mode", "full"), ("ldap_unique_identifier_field", "entryUUID")]);
    assert_synced(&fresh, &call(&fresh).await);
    assert_eq!(documents(&host), documents(&fresh), "the same end state as one full run");
}
