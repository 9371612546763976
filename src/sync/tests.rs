//! The sync against a scripted directory and the in-memory store.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::ldap::{DirectoryEntry, LdapError, SearchEnd, SearchSpec};
use crate::settings::{Settings, VariableSource};
use crate::store::memory::MemoryStore;
use crate::store::runs::last_report;
use crate::store::schema::Date;
use crate::store::{KvStore, LdapId, UserId};

/// Where the last run's report is stored (`docs/kv-schema.md`).
const REPORT_KEY: &str = "sync-report:last";

/// A store's keys and values without the reports (the last one and the
/// history, `sync-report:<n>` and its counter): what a run writes even
/// when nothing changed.
fn without_reports(dump: std::collections::BTreeMap<String, Vec<u8>>) -> std::collections::BTreeMap<String, Vec<u8>> {
    dump.into_iter().filter(|(k, _)| !k.starts_with("sync-report")).collect()
}

struct Vars(BTreeMap<&'static str, &'static str>);

impl VariableSource for Vars {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(name).map(|v| (*v).to_owned()))
    }
}

fn settings(extra: &[(&'static str, &'static str)]) -> Settings {
    // Full reads unless a test says otherwise: `auto` against a scripted
    // directory (no root DSE) would be timestamp mode.
    let mut vars: BTreeMap<_, _> =
        [("ldap_server_type", ""), ("ldap_unique_identifier_field", "entryUUID"), ("ldap_basedn", "dc=x"), ("ldap_sync_mode", "full")]
            .into_iter()
            .collect();
    vars.extend(extra.iter().copied());
    Settings::load(&Vars(vars)).expect("valid settings")
}

/// Pages of entries, or an error after some pages.
struct Scripted {
    pages: Vec<Vec<DirectoryEntry>>,
    fail_after: Option<usize>,
    seen: Option<SearchSpec>,
    /// Continuation references the search reports at its end.
    references: u64,
}

impl Directory for Scripted {
    fn search(
        &mut self,
        spec: SearchSpec,
        on_page: &mut dyn FnMut(Vec<DirectoryEntry>) -> Result<(), SyncError>,
    ) -> Result<SearchEnd, SyncError> {
        self.seen = Some(spec);
        for (i, page) in self.pages.clone().into_iter().enumerate() {
            if self.fail_after == Some(i) {
                return Err(LdapError::Closed { op: "search" }.into());
            }
            on_page(page)?;
        }
        Ok(SearchEnd { references: self.references, ..SearchEnd::default() })
    }
}

fn person(uuid: &str, uid: &str, mail: &str) -> DirectoryEntry {
    DirectoryEntry::new(
        format!("uid={uid},dc=x"),
        vec![
            ("entryUUID".into(), vec![uuid.as_bytes().to_vec()]),
            ("uid".into(), vec![uid.as_bytes().to_vec()]),
            ("mail".into(), vec![mail.as_bytes().to_vec()]),
            ("cn".into(), vec![format!("{uid} person").into_bytes()]),
        ],
    )
}

fn run_pages(store: &MemoryStore, s: &Settings, pages: Vec<Vec<DirectoryEntry>>, t: i64) -> (Result<SyncReport, SyncError>, Scripted) {
    let mut dir = Scripted { pages, fail_after: None, seen: None, references: 0 };
    let clock = move || Date { millis: t };
    let random = |buf: &mut [u8]| buf.fill(3);
    let result = run_with(store, s, &mut dir, None, &mut RunContext::new(&clock, &random));
    (result, dir)
}

/// The `_id` the sync derives for an entry whose entryUUID is `hex`.
fn id_of(hex: &str) -> UserId {
    UserId::for_directory_user(&LdapId::new("entryUUID", hex))
}

fn json_at(store: &MemoryStore, key: &str) -> Option<Value> {
    store.dump().get(key).map(|v| serde_json::from_slice(v).expect("json"))
}

#[test]
fn creates_then_leaves_unchanged_then_updates() {
    let store = MemoryStore::default();
    let s = settings(&[]);
    let pages = vec![vec![person("u1", "alice", "alice@x.org"), person("u2", "bob", "bob@x.org")], vec![person("u3", "carol", "c@x.org")]];
    let (report, dir) = run_pages(&store, &s, pages.clone(), 1000);
    let report = report.expect("runs");
    assert_eq!((report.created, report.updated, report.unchanged, report.pages, report.entries), (3, 0, 0, 2, 3));
    assert_eq!(last_report::<SyncReport>(&store).expect("store"), Some(report), "the stored report reads back");
    let spec = dir.seen.expect("searched");
    assert_eq!(crate::ldap::filter::to_string(&spec.filter), "(&(objectclass=*)(uid=*))");
    // The account state too: ldap_sync_user_active_state is `disable` by default.
    assert_eq!(spec.attributes, vec!["entryUUID", "uid", "mail", "cn", "userAccountControl", "loginDisabled", "orclIsEnabled"]);

    let alice_id = id_of("7531");
    assert_eq!(json_at(&store, "ldap-id:entryUUID:7531"), Some(json!(alice_id)));
    let doc = json_at(&store, &format!("user:{alice_id}")).expect("doc");
    assert_eq!(
        doc,
        json!({
            "_id": alice_id, "username": "alice", "name": "alice person",
            "emails": [{"address": "alice@x.org", "verified": true}], "roles": ["user"], "active": true,
            "services": {"ldap": {"id": "7531", "idAttribute": "entryUUID"}},
            "createdAt": {"$date": 1000}, "type": "user", "status": "offline", "ldap": true,
            "importIds": ["uid=alice,dc=x"], "_updatedAt": {"$date": 1000}
        })
    );
    assert_eq!(json_at(&store, "username:alice"), Some(json!(alice_id)));
    assert_eq!(json_at(&store, "email:alice@x.org"), Some(json!(alice_id)));
    assert_eq!(json_at(&store, "schema-version"), Some(json!(1)));

    let before = store.dump();
    let (report, _) = run_pages(&store, &s, pages, 2000);
    assert_eq!(report.expect("runs").unchanged, 3);
    assert_eq!(without_reports(before), without_reports(store.dump()), "an unchanged directory changes nothing");

    let renamed = vec![vec![person("u1", "alicia", "alicia@x.org")]];
    let report = run_pages(&store, &s, renamed, 3000).0.expect("runs");
    assert_eq!(report.updated, 1);
    assert_eq!(json_at(&store, "username:alicia"), Some(json!(alice_id)));
    assert_eq!(json_at(&store, "username:alice"), None);
    assert_eq!(json_at(&store, "email:alice@x.org"), None);
    let doc = json_at(&store, &format!("user:{alice_id}")).expect("doc");
    assert_eq!(doc["createdAt"], json!({"$date": 1000}));
    assert_eq!(doc["_updatedAt"], json!({"$date": 3000}));
    assert_eq!(doc["importIds"], json!(["uid=alice,dc=x", "uid=alicia,dc=x"]));
}

#[test]
fn entry_problems_skip_only_that_entry() {
    let store = MemoryStore::default();
    let s = settings(&[]);
    let no_mail =
        DirectoryEntry::new("uid=nomail,dc=x", vec![("entryUUID".into(), vec![b"u9".to_vec()]), ("uid".into(), vec![b"nomail".to_vec()])]);
    let clash = person("u4", "alice", "other@x.org");
    let report = run_pages(&store, &s, vec![vec![person("u1", "alice", "alice@x.org"), no_mail, clash]], 1).0.expect("runs");
    assert_eq!((report.created, report.failed), (1, 2));
    assert_eq!(report.problems[0].dn, "uid=nomail,dc=x");
    assert_eq!(report.problems[1].reason, "username \"alice\" is taken by another user");
}

#[test]
fn a_failed_read_aborts_but_keeps_written_pages_valid() {
    let store = MemoryStore::default();
    let s = settings(&[]);
    let mut dir = Scripted {
        pages: vec![vec![person("u1", "a", "a@x.org")], vec![person("u2", "b", "b@x.org")]],
        fail_after: Some(1),
        seen: None,
        references: 0,
    };
    let clock = || Date { millis: 5 };
    let random = |buf: &mut [u8]| buf.fill(3);
    let err = run_with(&store, &s, &mut dir, None, &mut RunContext::new(&clock, &random)).expect_err("aborts");
    assert_eq!(err.to_string(), "search: the LDAP server closed the connection");
    assert!(json_at(&store, &format!("user:{}", id_of("7531"))).is_some());
    let report = json_at(&store, REPORT_KEY).expect("report stored");
    assert_eq!(
        (report["outcome"].clone(), report["created"].clone(), report["pages"].clone(), report["entries"].clone()),
        (json!("failed"), json!(1), json!(1), json!(1))
    );
}

#[test]
fn switches_gate_creation_and_updates() {
    let store = MemoryStore::default();
    let off = settings(&[("ldap_background_sync_import_new_users", "false")]);
    let report = run_pages(&store, &off, vec![vec![person("u1", "a", "a@x.org")]], 1).0.expect("runs");
    assert_eq!((report.created, report.skipped), (0, 1));
    let on = settings(&[]);
    run_pages(&store, &on, vec![vec![person("u1", "a", "a@x.org")]], 2).0.expect("runs");
    let frozen = settings(&[("ldap_background_sync_keep_existant_users_updated", "false")]);
    let report = run_pages(&store, &frozen, vec![vec![person("u1", "a", "new@x.org")]], 3).0.expect("runs");
    assert_eq!((report.updated, report.skipped), (0, 1));
}

#[test]
fn merge_adopts_a_local_user_by_email() {
    let store = MemoryStore::default();
    let local = json!({"_id": "local1", "username": "Ann", "roles": ["moderator"], "emails": [{"address": "ann@x.org", "verified": false}],
        "services": {"password": {"bcrypt": "h"}}});
    store
        .set_many(vec![
            ("user:local1".into(), local.to_string().into_bytes()),
            ("email:ann@x.org".into(), b"\"local1\"".to_vec()),
            ("username:ann".into(), b"\"local1\"".to_vec()),
        ])
        .expect("seed");
    let s = settings(&[("ldap_merge_existing_users", "true"), ("accounts_verify_email_for_external_accounts", "false")]);
    let report = run_pages(&store, &s, vec![vec![person("u7", "ann", "ann@x.org")]], 9).0.expect("runs");
    assert_eq!((report.created, report.updated), (0, 1));
    let doc = json_at(&store, "user:local1").expect("doc");
    assert_eq!(doc["roles"], json!(["moderator"]));
    assert_eq!(doc["services"]["password"], json!({"bcrypt": "h"}));
    assert_eq!(doc["services"]["ldap"], json!({"id": "7537", "idAttribute": "entryUUID"}));
    assert_eq!(doc["username"], json!("ann"));
    assert_eq!(json_at(&store, "ldap-id:entryUUID:7537"), Some(json!("local1")));
}

#[test]
fn concurrent_runs_create_one_user_per_directory_entry() {
    // Two runs that both find no user (as two overlapping syncNow calls would)
    // write the same document to the same key.
    let a = MemoryStore::default();
    let b = MemoryStore::default();
    let s = settings(&[]);
    run_pages(&a, &s, vec![vec![person("u1", "a", "a@x.org")]], 1).0.expect("runs");
    run_pages(&b, &s, vec![vec![person("u1", "a", "a@x.org")]], 1).0.expect("runs");
    // The reports differ only in their timings.
    let without_timings = |store: &MemoryStore| {
        let dump = store.dump();
        let mut report: Value = dump.get("sync-report:last").and_then(|v| serde_json::from_slice(v).ok()).expect("a report");
        report.as_object_mut().and_then(|r| r.remove("phases")).expect("phases");
        (without_reports(dump), report)
    };
    assert_eq!(without_timings(&a), without_timings(&b));
}

#[test]
fn a_document_whose_index_key_went_missing_is_updated_not_replaced() {
    let store = MemoryStore::default();
    let s = settings(&[]);
    run_pages(&store, &s, vec![vec![person("u1", "a", "a@x.org")]], 1).0.expect("runs");
    let id = id_of("7531");
    // While the sync mark vouches for the user, the run trusts it and reads
    // nothing else; without it the user is checked in full and repaired.
    store.delete_many(&["ldap-id:entryUUID:7531".to_owned()]).expect("delete");
    let report = run_pages(&store, &s, vec![vec![person("u1", "a", "a@x.org")]], 2).0.expect("runs");
    assert_eq!((report.unchanged, report.phases.unchanged_by_mark), (1, 1));
    assert_eq!(json_at(&store, "ldap-id:entryUUID:7531"), None);
    store.delete_many(&["sync-mark:entryUUID:7531".to_owned()]).expect("delete");
    let report = run_pages(&store, &s, vec![vec![person("u1", "a", "a@x.org")]], 2).0.expect("runs");
    assert_eq!(report.phases.unchanged_by_mark, 0);
    assert_eq!((report.created, report.updated, report.unchanged), (0, 0, 1));
    assert_eq!(json_at(&store, &format!("user:{id}")).expect("doc")["createdAt"], json!({"$date": 1}));
    assert_eq!(json_at(&store, "ldap-id:entryUUID:7531"), Some(json!(id)), "the index key is written again");
}

#[test]
fn merge_never_takes_over_an_admin_or_the_bootstrap_admin() {
    let store = MemoryStore::default();
    let admin = json!({"_id": "local1", "username": "ADMIN", "roles": ["admin"], "emails": [{"address": "root@x.org", "verified": true}]});
    let boot_id = UserId::for_bootstrap_admin("boss");
    let boot = json!({"_id": boot_id, "username": "boss", "roles": ["user"], "emails": [{"address": "boss@x.org", "verified": true}]});
    store
        .set_many(vec![
            ("user:local1".into(), admin.to_string().into_bytes()),
            ("email:root@x.org".into(), b"\"local1\"".to_vec()),
            ("username:admin".into(), b"\"local1\"".to_vec()),
            (format!("user:{boot_id}"), boot.to_string().into_bytes()),
            ("username:boss".into(), serde_json::to_vec(&boot_id).expect("json")),
        ])
        .expect("seed");
    let s = settings(&[("ldap_merge_existing_users", "true"), ("admin_username", "boss")]);
    // Àdmin slugifies to "admin" (limax: `Ä` would be "ae"); the other entry names the bootstrap admin.
    let pages = vec![vec![person("u7", "Àdmin", "other@x.org"), person("u8", "x", "root@x.org"), person("u9", "boss", "b2@x.org")]];
    let report = run_pages(&store, &s, pages, 9).0.expect("runs");
    assert_eq!((report.created, report.updated, report.failed), (0, 0, 3), "{:?}", report.problems);
    assert_eq!(json_at(&store, "user:local1"), Some(admin), "the admin stays as it was");
    assert_eq!(json_at(&store, &format!("user:{boot_id}")), Some(boot));
}

fn person_with(uuid: &str, uid: &str, extra: &[(&str, &str)]) -> DirectoryEntry {
    let mut attrs = vec![
        ("entryUUID".to_owned(), vec![uuid.as_bytes().to_vec()]),
        ("uid".to_owned(), vec![uid.as_bytes().to_vec()]),
        ("mail".to_owned(), vec![format!("{uid}@x.org").into_bytes()]),
    ];
    attrs.extend(extra.iter().map(|(n, v)| ((*n).to_owned(), vec![v.as_bytes().to_vec()])));
    DirectoryEntry::new(format!("uid={uid},dc=x"), attrs)
}

fn active(store: &MemoryStore, uuid: &str) -> Option<Value> {
    json_at(store, &format!("user:{}", id_of(&hex(uuid)))).map(|d| d["active"].clone())
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn directory_disabled_accounts_are_deactivated_and_with_both_reactivated() {
    let store = MemoryStore::default();
    let s = settings(&[]);
    let pages = |uac: &str| {
        vec![vec![person_with("u1", "ann", &[("userAccountControl", uac)]), person_with("u2", "bob", &[("loginDisabled", "FALSE")])]]
    };
    run_pages(&store, &s, pages("512"), 1).0.expect("runs");
    assert_eq!(active(&store, "u1"), Some(json!(true)));
    // 514 = NORMAL_ACCOUNT | ACCOUNTDISABLE.
    let report = run_pages(&store, &s, pages("514"), 2).0.expect("runs");
    assert_eq!((report.deactivated, report.deactivations.clone()), (1, vec!["ann".to_owned()]));
    assert_eq!((active(&store, "u1"), active(&store, "u2")), (Some(json!(false)), Some(json!(true))));
    // `disable` never reactivates; `both` does.
    let report = run_pages(&store, &s, pages("512"), 3).0.expect("runs");
    assert_eq!((report.reactivated, active(&store, "u1")), (0, Some(json!(false))));
    let both = settings(&[("ldap_sync_user_active_state", "both")]);
    let report = run_pages(&store, &both, pages("512"), 4).0.expect("runs");
    assert_eq!((report.reactivated, report.reactivations.clone(), active(&store, "u1")), (1, vec!["ann".to_owned()], Some(json!(true))));
    // `none` ignores the directory's state, and does not even ask for it.
    let none = settings(&[("ldap_sync_user_active_state", "none")]);
    let (report, dir) = run_pages(&store, &none, pages("514"), 5);
    assert_eq!((report.expect("runs").deactivated, active(&store, "u1")), (0, Some(json!(true))));
    assert!(!dir.seen.expect("searched").attributes.iter().any(|a| a == "userAccountControl"));
    // Other directories' flags.
    let report = run_pages(&store, &s, vec![vec![person_with("u2", "bob", &[("loginDisabled", "TRUE")])]], 6).0.expect("runs");
    assert_eq!(report.deactivations, ["bob"]);
    run_pages(&store, &s, vec![vec![person_with("u3", "cy", &[("orclIsEnabled", "ENABLED")])]], 7).0.expect("runs");
    let report = run_pages(&store, &s, vec![vec![person_with("u3", "cy", &[("orclIsEnabled", "DISABLED")])]], 8).0.expect("runs");
    assert_eq!(report.deactivations, ["cy"]);
}

#[test]
fn missing_users_are_deactivated_only_after_a_complete_read_with_the_switch_on() {
    let store = MemoryStore::default();
    let ten: Vec<DirectoryEntry> = (0..10).map(|i| person_with(&format!("m{i}"), &format!("user{i}"), &[])).collect();
    let nine = ten[..9].to_vec();
    let off = settings(&[]);
    let on = settings(&[("ldap_background_sync_disable_missing_users", "true")]);
    // The first complete read is the baseline: nothing to compare with yet.
    let report = run_pages(&store, &on, vec![ten.clone()], 1).0.expect("runs");
    assert_eq!(
        report.offboarding.and_then(|o| o.missing_users_not_checked).as_deref(),
        Some("no complete read to compare with yet: the next run compares with this one")
    );
    // Switch off: a missing user stays active.
    assert_eq!(run_pages(&store, &off, vec![nine.clone()], 2).0.expect("runs").deactivated, 0);
    assert_eq!(active(&store, "m9"), Some(json!(true)));
    run_pages(&store, &on, vec![ten.clone()], 3).0.expect("runs");
    // A read that fails after a page deactivates nobody.
    let mut dir = Scripted { pages: vec![nine[..3].to_vec(), nine[3..].to_vec()], fail_after: Some(1), seen: None, references: 0 };
    let clock = || Date { millis: 4 };
    let random = |buf: &mut [u8]| buf.fill(3);
    run_with(&store, &on, &mut dir, None, &mut RunContext::new(&clock, &random)).expect_err("fails");
    assert!((0..10).all(|i| active(&store, &format!("m{i}")) == Some(json!(true))));
    // A read with a continuation reference is not complete either.
    let mut dir = Scripted { pages: vec![nine.clone()], fail_after: None, seen: None, references: 1 };
    let report = run_with(&store, &on, &mut dir, None, &mut RunContext::new(&clock, &random)).expect("runs");
    assert_eq!(report.deactivated, 0);
    assert!(report.offboarding.and_then(|o| o.missing_users_not_checked).is_some_and(|r| r.contains("1 continuation references")));
    // A complete read without user9: deactivated (1 of 10 is within the 10% breaker).
    let report = run_pages(&store, &on, vec![nine.clone()], 5).0.expect("runs");
    assert_eq!((report.deactivated, report.deactivations.clone()), (1, vec!["user9".to_owned()]));
    assert_eq!(active(&store, "m9"), Some(json!(false)));
    let doc = json_at(&store, &format!("user:{}", id_of(&hex("m9")))).expect("never deleted");
    assert_eq!(doc["username"], json!("user9"));
}

#[test]
fn the_breaker_stops_mass_deactivation_until_forced_once() {
    let store = MemoryStore::default();
    let ten: Vec<DirectoryEntry> = (0..10).map(|i| person_with(&format!("b{i}"), &format!("user{i}"), &[])).collect();
    let on = settings(&[("ldap_background_sync_disable_missing_users", "true")]);
    run_pages(&store, &on, vec![ten.clone()], 1).0.expect("runs");
    // Half the directory gone: 5 > 10% of 5 seen (rounded up: 1). Nobody is deactivated.
    let report = run_pages(&store, &on, vec![ten[..5].to_vec()], 2).0.expect("runs");
    assert_eq!(report.deactivated, 0);
    let breaker = report.offboarding.and_then(|o| o.breaker).expect("tripped");
    assert_eq!((breaker.would_deactivate, breaker.limit, breaker.sample.len()), (5, 1, 5));
    assert!((5..10).all(|i| active(&store, &format!("b{i}")) == Some(json!(true))));
    // Forced: one run passes, the next (still forced) does not.
    let forced = settings(&[("ldap_background_sync_disable_missing_users", "true"), ("ldap_sync_force_deactivations", "true")]);
    run_pages(&store, &on, vec![ten.clone()], 3).0.expect("runs");
    let report = run_pages(&store, &forced, vec![ten[..5].to_vec()], 4).0.expect("runs");
    assert_eq!(report.deactivated, 5);
    let more: Vec<DirectoryEntry> = (0..5).map(|i| person_with(&format!("b{i}"), &format!("user{i}"), &[])).take(2).collect();
    let report = run_pages(&store, &forced, vec![more], 5).0.expect("runs");
    assert_eq!(report.deactivated, 0, "the override passed once");
    // Setting it back to false re-arms it.
    run_pages(&store, &on, vec![ten[..5].to_vec()], 6).0.expect("runs");
    assert_eq!(json_at(&store, "sync-force-used"), None);
    // A count works too.
    let counted = settings(&[("ldap_background_sync_disable_missing_users", "true"), ("ldap_sync_max_deactivations", "3")]);
    let report = run_pages(&store, &counted, vec![ten[..2].to_vec()], 7).0.expect("runs");
    assert_eq!(report.deactivated, 3);
}

#[test]
fn the_last_active_admin_is_never_deactivated() {
    let store = MemoryStore::default();
    let s = settings(&[("ldap_sync_max_deactivations", "100%")]);
    run_pages(&store, &s, vec![vec![person_with("a1", "boss", &[]), person_with("a2", "deputy", &[])]], 1).0.expect("runs");
    for uuid in ["a1", "a2"] {
        let key = format!("user:{}", id_of(&hex(uuid)));
        let mut doc = json_at(&store, &key).expect("doc");
        doc["roles"] = json!(["admin"]);
        store.set_many(vec![(key, doc.to_string().into_bytes())]).expect("memory");
    }
    let disabled = |uuid, uid| person_with(uuid, uid, &[("userAccountControl", "514")]);
    let report = run_pages(&store, &s, vec![vec![disabled("a1", "boss"), disabled("a2", "deputy")]], 2).0.expect("runs");
    assert_eq!(report.deactivated, 1);
    assert_eq!(report.offboarding.expect("noted").kept.len(), 1);
    let actives: Vec<Value> = ["a1", "a2"].iter().filter_map(|u| active(&store, u)).collect();
    assert_eq!(actives.iter().filter(|a| **a == json!(true)).count(), 1, "one admin stays active");
}

#[test]
fn an_unchanged_entry_costs_its_sync_mark_alone_and_writes_nothing() {
    let store = MemoryStore::default();
    let s = settings(&[]);
    let pages = || vec![vec![person("u1", "alice", "alice@x.org"), person("u2", "bob", "bob@x.org")]];
    run_pages(&store, &s, pages(), 1).0.expect("runs");
    let before = store.dump();
    let report = run_pages(&store, &s, pages(), 2).0.expect("runs");
    assert_eq!((report.unchanged, report.phases.unchanged_by_mark), (2, 2));
    // Read: the mark key, two marks, the schema version, the members
    // baseline (head and one chunk) and the breaker's override flag.
    // Written: nothing but the report (stored after the phases are counted).
    assert_eq!((report.phases.kv_read_keys, report.phases.kv_write_calls), (1 + 2 + 1 + 2 + 1, 0));
    assert_eq!(without_reports(store.dump()), without_reports(before));
}

#[test]
fn a_changed_entry_or_changed_settings_are_checked_in_full() {
    let store = MemoryStore::default();
    let s = settings(&[]);
    run_pages(&store, &s, vec![vec![person("u1", "alice", "alice@x.org"), person("u2", "bob", "bob@x.org")]], 1).0.expect("runs");
    let report =
        run_pages(&store, &s, vec![vec![person("u1", "alice", "alice@y.org"), person("u2", "bob", "bob@x.org")]], 2).0.expect("runs");
    assert_eq!((report.updated, report.unchanged, report.phases.unchanged_by_mark), (1, 1, 1));
    assert_eq!(json_at(&store, &format!("user:{}", id_of("7531"))).expect("doc")["emails"][0]["address"], json!("alice@y.org"));
    // The updated user is marked again, so the next run needs nothing else.
    let report =
        run_pages(&store, &s, vec![vec![person("u1", "alice", "alice@y.org"), person("u2", "bob", "bob@x.org")]], 3).0.expect("runs");
    assert_eq!(report.phases.unchanged_by_mark, 2);
    // A setting that shapes an update is part of the fingerprint.
    let s = settings(&[("ldap_background_sync_keep_existant_users_updated", "false")]);
    let report = run_pages(&store, &s, vec![vec![person("u2", "bob", "bob@x.org")]], 4).0.expect("runs");
    assert_eq!((report.skipped, report.phases.unchanged_by_mark), (1, 0));
}

#[test]
fn a_document_write_drops_the_mark_and_a_refused_rename_is_never_marked() {
    let store = MemoryStore::default();
    let s = settings(&[("ldap_sync_user_active_state", "both")]);
    run_pages(&store, &s, vec![vec![person("u1", "alice", "alice@x.org"), person("u2", "bob", "bob@x.org")]], 1).0.expect("runs");
    // Someone deactivates alice: her document changes, and her mark goes with it.
    let id = id_of("7531");
    let mut doc: crate::store::schema::UserDoc =
        serde_json::from_value(json_at(&store, &format!("user:{id}")).expect("doc")).expect("a user document");
    doc.active = Some(false);
    let mut batch = crate::store::Batch::new();
    batch.put_user(&doc).expect("stage");
    batch.commit(&store).expect("commit");
    assert_eq!(json_at(&store, "sync-mark:entryUUID:7531"), None);
    let report = run_pages(&store, &s, vec![vec![person("u1", "alice", "alice@x.org")]], 2).0.expect("runs");
    assert_eq!((report.reactivated, report.phases.unchanged_by_mark), (1, 0), "checked in full, and reactivated");
    // bob wants alice's username: refused, so bob is never marked and is tried again.
    for t in 3..5 {
        let report = run_pages(&store, &s, vec![vec![person("u2", "alice", "bob@x.org")]], t).0.expect("runs");
        assert_eq!(report.phases.unchanged_by_mark, 0);
    }
    assert_eq!(json_at(&store, "sync-mark:entryUUID:7532"), None);
}

#[test]
fn a_refused_rename_changes_neither_username_nor_name_and_services_ldap_keeps_its_other_keys() {
    let store = MemoryStore::default();
    let s = settings(&[]);
    run_pages(&store, &s, vec![vec![person("u1", "alice", "alice@x.org"), person("u2", "bob", "bob@x.org")]], 1).0.expect("runs");
    // Another component keeps something of its own under services.ldap.
    let bob_key = format!("user:{}", id_of("7532"));
    let mut bob = json_at(&store, &bob_key).expect("bob");
    bob["services"]["ldap"]["lastLoginDn"] = json!("uid=bob,dc=x");
    store.set_many(vec![(bob_key.clone(), bob.to_string().into_bytes())]).expect("memory");
    // bob asks for alice's username and a new cn: saveUserIdentity refuses both; the e-mail still changes.
    let mut wants = person("u2", "alice", "bob2@x.org");
    wants = DirectoryEntry::new(
        wants.dn.as_str().to_owned(),
        wants.attributes().map(|(n, v)| (n.to_owned(), if n == "cn" { vec![b"Robert".to_vec()] } else { v.to_vec() })).collect(),
    );
    run_pages(&store, &s, vec![vec![wants]], 2).0.expect("runs");
    let bob = json_at(&store, &bob_key).expect("bob");
    assert_eq!((bob["username"].clone(), bob["name"].clone()), (json!("bob"), json!("bob person")));
    assert_eq!(bob["emails"], json!([{"address": "bob2@x.org", "verified": true}]));
    assert_eq!(bob["services"]["ldap"], json!({"id": "7532", "idAttribute": "entryUUID", "lastLoginDn": "uid=bob,dc=x"}));
    // Once the username is free, both change.
    let free = person("u2", "robert", "bob2@x.org");
    run_pages(&store, &s, vec![vec![free]], 3).0.expect("runs");
    let bob = json_at(&store, &bob_key).expect("bob");
    assert_eq!((bob["username"].clone(), bob["name"].clone()), (json!("robert"), json!("robert person")));
}

const HOUR: i64 = 3_600_000;

#[test]
fn timestamp_mode_reads_changes_only_and_finds_deletions_at_the_interval() {
    let store = MemoryStore::default();
    let s = settings(&[
        ("ldap_sync_mode", "timestamp"),
        ("ldap_background_sync_disable_missing_users", "true"),
        ("ldap_sync_max_deactivations", "10"),
    ]);
    let t1 = 1_795_915_425_678; // 2026-11-29T01:23:45.678Z
    // No start stored: a full read, which stores since = fullAt = t1.
    let (report, dir) = run_pages(&store, &s, vec![vec![person("u1", "alice", "a@x.org"), person("u2", "bob", "b@x.org")]], t1);
    let report = report.expect("runs");
    assert_eq!((report.mode.as_str(), report.created, report.fully_in_sync), ("timestamp", 2, true));
    assert_eq!(report.mode_note.as_deref(), Some("full read: no earlier timestamp run"));
    let filter = crate::ldap::filter::to_string(&dir.seen.expect("searched").filter);
    assert!(!filter.contains("modifyTimestamp"), "{filter}");
    let cookie = json_at(&store, "sync-cookie").expect("stored");
    assert_eq!(
        (cookie["mode"].clone(), cookie["since"].clone(), cookie["fullAt"].clone()),
        (json!("timestamp"), json!({"$date": t1}), json!({"$date": t1}))
    );

    // An hour later: only what changed since t1 less 10 minutes. Bob is not
    // in the answer (unchanged, or deleted: this read cannot tell), so
    // nobody is deactivated; carol is new and joins the members baseline.
    let t2 = t1 + HOUR;
    // The directory's clock says carol changed at 02:20:00 (this host's is at 02:23:45).
    let carol = person_with("u3", "carol", &[("modifyTimestamp", "20261129022000Z")]);
    let (report, dir) = run_pages(&store, &s, vec![vec![carol]], t2);
    let report = report.expect("runs");
    assert_eq!((report.created, report.deactivated, report.fully_in_sync), (1, 0, false));
    let filter = crate::ldap::filter::to_string(&dir.seen.expect("searched").filter);
    assert!(filter.ends_with("(modifyTimestamp>=20261129011345Z))"), "{filter}");
    assert!(report.mode_note.as_deref().is_some_and(|n| n.contains("2026-11-29T01:13:45.678Z") && n.contains("2026-11-30T01:23:45.678Z")));
    assert_eq!(active(&store, "u2"), Some(json!(true)));
    let cookie = json_at(&store, "sync-cookie").expect("stored");
    // The next start is the directory's newest change (this run took no time).
    assert_eq!((cookie["since"].clone(), cookie["fullAt"].clone()), (json!({"$date": 1_795_918_800_000i64}), json!({"$date": t1})));
    let carol = json_at(&store, &format!("user:{}", id_of(&hex("u3")))).expect("created");
    assert_eq!(carol["username"], json!("carol"));

    // 24 hours after the full read: a full read again. Bob and carol are gone.
    let (report, dir) = run_pages(&store, &s, vec![vec![person("u1", "alice", "a@x.org")]], t1 + 24 * HOUR);
    let report = report.expect("runs");
    assert!(!crate::ldap::filter::to_string(&dir.seen.expect("searched").filter).contains("modifyTimestamp"));
    assert!(report.mode_note.as_deref().is_some_and(|n| n.starts_with("full read: the last complete full read is over")));
    assert_eq!((report.deactivated, report.fully_in_sync), (2, true));
    assert_eq!((active(&store, "u2"), active(&store, "u3")), (Some(json!(false)), Some(json!(false))));
}

#[test]
fn timestamp_mode_deactivates_disabled_accounts_and_keeps_the_start_of_a_failed_run() {
    let store = MemoryStore::default();
    let s = settings(&[("ldap_sync_mode", "timestamp")]);
    run_pages(&store, &s, vec![vec![person("u1", "alice", "a@x.org")]], 10 * HOUR).0.expect("runs");
    let disabled = person_with("u1", "alice", &[("userAccountControl", "514")]);
    let report = run_pages(&store, &s, vec![vec![disabled]], 11 * HOUR).0.expect("runs");
    assert_eq!(report.deactivated, 1);
    assert!(report.fully_in_sync, "missing users are not looked for: nothing is pending");
    let before = json_at(&store, "sync-cookie").expect("stored");
    // A failed read stores no new start: the next run reads the same changes again.
    let mut dir = Scripted { pages: vec![vec![person("u9", "zed", "z@x.org")]], fail_after: Some(0), seen: None, references: 0 };
    let clock = || Date { millis: 12 * HOUR };
    let random = |buf: &mut [u8]| buf.fill(3);
    assert!(run_with(&store, &s, &mut dir, None, &mut RunContext::new(&clock, &random)).is_err());
    assert_eq!(json_at(&store, "sync-cookie"), Some(before));
}

#[test]
fn auto_without_rfc_4533_reads_timestamps_unless_missing_users_are_deactivated() {
    let store = MemoryStore::default();
    let report = run_pages(&store, &settings(&[("ldap_sync_mode", "auto")]), vec![vec![]], 1).0.expect("runs");
    assert_eq!(report.mode, "timestamp");
    assert_eq!(
        report.mode_note.as_deref(),
        Some("timestamp: the server does not announce RFC 4533 content synchronisation; full read: no earlier timestamp run")
    );
    let s = settings(&[("ldap_sync_mode", "auto"), ("ldap_background_sync_disable_missing_users", "true")]);
    let report = run_pages(&MemoryStore::default(), &s, vec![vec![]], 1).0.expect("runs");
    assert_eq!(report.mode, "full");
    assert!(report.mode_note.as_deref().is_some_and(|n| n.contains("cannot see deleted users")));
}

/// A small Active Directory: DirSync answers from an update counter (the
/// cookie), with only the changed attributes and tombstones for deletions;
/// ordinary searches return the live objects under `ou=people,dc=x`
/// (restricted to the `distinguishedName`s a filter names, if any).
mod fake_ad {
    use super::*;
    use ldap3_proto::proto::{LdapFilter, LdapResultCode};

    pub struct Obj {
        pub dn: String,
        pub guid: &'static str,
        pub uid: &'static str,
        pub mail: String,
        pub deleted: bool,
        pub usn: u64,
    }

    #[derive(Default)]
    pub struct FakeAd {
        pub objects: Vec<Obj>,
        pub usn: u64,
        pub refuse_cookies: bool,
        /// (base, was it DirSync, the cookie sent)
        pub searches: Vec<(String, bool, Vec<u8>)>,
    }

    impl FakeAd {
        pub fn add(&mut self, guid: &'static str, uid: &'static str) {
            self.usn += 1;
            let dn = format!("CN={uid},OU=People,DC=x");
            self.objects.push(Obj { dn, guid, uid, mail: format!("{uid}@x.org"), deleted: false, usn: self.usn });
        }
        fn touch(&mut self, guid: &str) -> &mut Obj {
            self.usn += 1;
            let usn = self.usn;
            let obj = self.objects.iter_mut().find(|o| o.guid == guid).expect("known");
            obj.usn = usn;
            obj
        }
        pub fn set_mail(&mut self, guid: &str, mail: &str) {
            self.touch(guid).mail = mail.to_owned();
        }
        pub fn delete(&mut self, guid: &str) {
            let obj = self.touch(guid);
            obj.deleted = true;
            obj.dn = format!("CN={}\\0ADEL:{},CN=Deleted Objects,DC=x", obj.uid, obj.guid);
        }
        pub fn move_to(&mut self, guid: &str, dn: &str) {
            self.touch(guid).dn = dn.to_owned();
        }
    }

    fn dns_named(filter: &LdapFilter, out: &mut Vec<String>) {
        match filter {
            LdapFilter::And(parts) | LdapFilter::Or(parts) => parts.iter().for_each(|p| dns_named(p, out)),
            LdapFilter::Equality(attr, value) if attr == "distinguishedName" => out.push(value.clone()),
            _ => {}
        }
    }

    impl Directory for FakeAd {
        fn search(
            &mut self,
            spec: SearchSpec,
            on_page: &mut dyn FnMut(Vec<DirectoryEntry>) -> Result<(), SyncError>,
        ) -> Result<SearchEnd, SyncError> {
            let attr = |n: &str, v: &[u8]| (n.to_owned(), vec![v.to_vec()]);
            if let Some(dirsync) = &spec.dirsync {
                self.searches.push((spec.base.clone(), true, dirsync.cookie.clone()));
                assert!(spec.attributes.iter().any(|a| a == "isDeleted"), "tombstones are asked for");
                if self.refuse_cookies && !dirsync.cookie.is_empty() {
                    return Err(LdapError::Result {
                        op: "search",
                        code: LdapResultCode::UnavailableCriticalExtension,
                        message: "Unable to unmarshall cookie".into(),
                    }
                    .into());
                }
                let since = dirsync.cookie.first().copied().map_or(0, u64::from);
                let entries = self
                    .objects
                    .iter()
                    .filter(|o| o.usn > since)
                    .map(|o| {
                        let mut attrs = vec![attr("objectGUID", o.guid.as_bytes())];
                        if o.deleted {
                            attrs.push(attr("isDeleted", b"TRUE"));
                        } else if since > 0 {
                            // Only what changed: never enough to map a user.
                            attrs.push(attr("mail", o.mail.as_bytes()));
                        } else {
                            attrs.extend([attr("uid", o.uid.as_bytes()), attr("mail", o.mail.as_bytes())]);
                        }
                        DirectoryEntry::new(o.dn.clone(), attrs)
                    })
                    .collect();
                on_page(entries)?;
                return Ok(SearchEnd { references: 0, dirsync_cookie: Some(vec![u8::try_from(self.usn).expect("small")]) });
            }
            self.searches.push((spec.base.clone(), false, Vec::new()));
            let mut named = Vec::new();
            dns_named(&spec.filter, &mut named);
            let entries = self
                .objects
                .iter()
                .filter(|o| !o.deleted && o.dn.to_ascii_lowercase().ends_with(",ou=people,dc=x"))
                .filter(|o| named.is_empty() || named.contains(&o.dn))
                .map(|o| {
                    let attrs = vec![attr("objectGUID", o.guid.as_bytes()), attr("uid", o.uid.as_bytes()), attr("mail", o.mail.as_bytes())];
                    DirectoryEntry::new(o.dn.clone(), attrs)
                })
                .collect();
            on_page(entries)?;
            Ok(SearchEnd::default())
        }

        fn supported_controls(&mut self) -> Result<Vec<String>, SyncError> {
            Ok(vec!["1.2.840.113556.1.4.841".to_owned()])
        }

        fn naming_contexts(&mut self) -> Result<Vec<String>, SyncError> {
            Ok(vec!["CN=Configuration,DC=x".to_owned(), "DC=x".to_owned()])
        }
    }
}

fn ad_settings(extra: &[(&'static str, &'static str)]) -> Settings {
    let mut vars = vec![
        ("ldap_unique_identifier_field", "objectGUID"),
        ("ldap_basedn", "ou=people,dc=x"),
        ("ldap_sync_mode", "dirsync"),
        ("ldap_background_sync_disable_missing_users", "true"),
        ("ldap_sync_max_deactivations", "100"),
    ];
    vars.extend(extra.iter().copied());
    settings(&vars)
}

fn run_ad(store: &MemoryStore, s: &Settings, ad: &mut fake_ad::FakeAd) -> SyncReport {
    let clock = || Date { millis: 1 };
    let random = |buf: &mut [u8]| buf.fill(3);
    run_with(store, s, ad, None, &mut RunContext::new(&clock, &random)).expect("runs")
}

fn ad_active(store: &MemoryStore, guid: &str) -> Option<Value> {
    let id = UserId::for_directory_user(&LdapId::new("objectGUID", hex(guid)));
    json_at(store, &format!("user:{id}")).map(|d| d["active"].clone())
}

#[test]
fn dirsync_reads_changes_again_whole_and_offboards_tombstones_and_departures() {
    let store = MemoryStore::default();
    let s = ad_settings(&[]);
    let mut ad = fake_ad::FakeAd::default();
    for (guid, uid) in [("g-ann", "ann"), ("g-bob", "bob"), ("g-cat", "cat"), ("g-dan", "dan")] {
        ad.add(guid, uid);
    }
    // No cookie: a DirSync on the partition for the cookie alone, then a full read.
    let report = run_ad(&store, &s, &mut ad);
    assert_eq!((report.mode.as_str(), report.created, report.fully_in_sync), ("dirsync", 4, true), "{report:?}");
    assert_eq!(report.mode_note.as_deref(), Some("no cookie yet: full read"));
    assert_eq!(ad.searches, vec![("DC=x".to_owned(), true, vec![]), ("ou=people,dc=x".to_owned(), false, vec![])]);
    let cookie = json_at(&store, "sync-cookie").expect("stored");
    assert_eq!((cookie["mode"].clone(), cookie["cookie"].clone()), (json!("dirsync"), json!("BA==")), "usn 4");

    // bob's mail changes, cat is deleted, dan moves out of the base, eve arrives.
    ad.set_mail("g-bob", "robert@x.org");
    ad.delete("g-cat");
    ad.move_to("g-dan", "CN=dan,OU=Gone,DC=x");
    ad.add("g-eve", "eve");
    ad.searches.clear();
    let report = run_ad(&store, &s, &mut ad);
    assert_eq!(
        (report.created, report.updated, report.deleted_in_directory, report.fully_in_sync, report.mode_note.clone()),
        (1, 1, 1, true, None),
        "{report:?}"
    );
    let mut gone = report.deactivations.clone();
    gone.sort();
    assert_eq!(gone, vec!["cat".to_owned(), "dan".to_owned()]);
    // One DirSync from the cookie, one search reading the three live changes again.
    assert_eq!(ad.searches, vec![("DC=x".to_owned(), true, vec![4]), ("ou=people,dc=x".to_owned(), false, vec![])]);
    let bob = json_at(&store, &format!("user:{}", UserId::for_directory_user(&LdapId::new("objectGUID", hex("g-bob"))))).expect("bob");
    assert_eq!((bob["username"].clone(), bob["emails"][0]["address"].clone()), (json!("bob"), json!("robert@x.org")));
    assert_eq!(
        (ad_active(&store, "g-cat"), ad_active(&store, "g-dan"), ad_active(&store, "g-ann")),
        (Some(json!(false)), Some(json!(false)), Some(json!(true)))
    );
    assert_eq!(json_at(&store, "sync-cookie").expect("stored")["cookie"], json!("CA=="), "usn 8");

    // Nothing changed: one DirSync, nothing read again, nothing written but the report.
    ad.searches.clear();
    let before = store.dump();
    let report = run_ad(&store, &s, &mut ad);
    assert_eq!((report.entries, report.deactivated), (0, 0));
    assert_eq!(ad.searches.len(), 1);
    assert_eq!(without_reports(store.dump()), without_reports(before));
}

#[test]
fn dirsync_starts_over_when_the_server_refuses_the_cookie_and_auto_picks_it_from_the_root_dse() {
    let store = MemoryStore::default();
    let mut ad = fake_ad::FakeAd::default();
    ad.add("g-ann", "ann");
    let report = run_ad(&store, &ad_settings(&[("ldap_sync_mode", "auto")]), &mut ad);
    assert_eq!(report.mode, "dirsync");
    ad.refuse_cookies = true;
    ad.searches.clear();
    let report = run_ad(&store, &ad_settings(&[]), &mut ad);
    assert_eq!(
        report.mode_note.as_deref(),
        Some("the server refused the stored cookie (unavailableCriticalExtension: Unable to unmarshall cookie): full read")
    );
    assert_eq!((report.unchanged, report.fully_in_sync), (1, true));
    assert_eq!(ad.searches.iter().map(|(_, d, c)| (*d, c.len())).collect::<Vec<_>>(), vec![(true, 1), (true, 0), (false, 0)]);
    // dirsync without objectGUID first is a settings error.
    let s = ad_settings(&[("ldap_unique_identifier_field", "entryUUID")]);
    let clock = || Date { millis: 1 };
    let random = |buf: &mut [u8]| buf.fill(3);
    let err = run_with(&store, &s, &mut ad, None, &mut RunContext::new(&clock, &random)).expect_err("refused");
    assert!(err.to_string().contains("dirsync needs objectGUID"), "{err}");
}
