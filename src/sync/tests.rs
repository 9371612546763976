//! The sync against a scripted directory and the in-memory store.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::ldap::{DirectoryEntry, LdapError, SearchSpec};
use crate::settings::{Settings, VariableSource};
use crate::store::memory::MemoryStore;
use crate::store::runs::last_report;
use crate::store::schema::Date;
use crate::store::{KvStore, LdapId, UserId};

/// Where the last run's report is stored (`docs/kv-schema.md`).
const REPORT_KEY: &str = "sync-report:last";

struct Vars(BTreeMap<&'static str, &'static str>);

impl VariableSource for Vars {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(name).map(|v| (*v).to_owned()))
    }
}

fn settings(extra: &[(&'static str, &'static str)]) -> Settings {
    let mut vars: BTreeMap<_, _> =
        [("ldap_server_type", ""), ("ldap_unique_identifier_field", "entryUUID"), ("ldap_basedn", "dc=x")].into_iter().collect();
    vars.extend(extra.iter().copied());
    Settings::load(&Vars(vars)).expect("valid settings")
}

/// Pages of entries, or an error after some pages.
struct Scripted {
    pages: Vec<Vec<DirectoryEntry>>,
    fail_after: Option<usize>,
    seen: Option<SearchSpec>,
}

impl Directory for Scripted {
    fn search(&mut self, spec: SearchSpec, on_page: &mut dyn FnMut(Vec<DirectoryEntry>) -> Result<(), SyncError>) -> Result<(), SyncError> {
        self.seen = Some(spec);
        for (i, page) in self.pages.clone().into_iter().enumerate() {
            if self.fail_after == Some(i) {
                return Err(LdapError::Closed { op: "search" }.into());
            }
            on_page(page)?;
        }
        Ok(())
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
    let mut dir = Scripted { pages, fail_after: None, seen: None };
    let clock = move || Date { millis: t };
    let result = run_with(store, s, &mut dir, &mut RunContext { clock: &clock });
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
    assert_eq!(spec.attributes, vec!["entryUUID", "uid", "mail", "cn"]);

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
    let mut after = store.dump();
    after.remove(REPORT_KEY);
    let mut before = before;
    before.remove(REPORT_KEY);
    assert_eq!(before, after, "an unchanged directory changes nothing");

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
    let mut dir =
        Scripted { pages: vec![vec![person("u1", "a", "a@x.org")], vec![person("u2", "b", "b@x.org")]], fail_after: Some(1), seen: None };
    let clock = || Date { millis: 5 };
    let err = run_with(&store, &s, &mut dir, &mut RunContext { clock: &clock }).expect_err("aborts");
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
    assert_eq!(a.dump(), b.dump());
}

#[test]
fn a_document_whose_index_key_went_missing_is_updated_not_replaced() {
    let store = MemoryStore::default();
    let s = settings(&[]);
    run_pages(&store, &s, vec![vec![person("u1", "a", "a@x.org")]], 1).0.expect("runs");
    let id = id_of("7531");
    store.delete_many(&["ldap-id:entryUUID:7531".to_owned()]).expect("delete");
    let report = run_pages(&store, &s, vec![vec![person("u1", "a", "a@x.org")]], 2).0.expect("runs");
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
    // Ädmin slugifies to "admin"; the other entry names the bootstrap admin.
    let pages = vec![vec![person("u7", "Ädmin", "other@x.org"), person("u8", "x", "root@x.org"), person("u9", "boss", "b2@x.org")]];
    let report = run_pages(&store, &s, pages, 9).0.expect("runs");
    assert_eq!((report.created, report.updated, report.failed), (0, 0, 3), "{:?}", report.problems);
    assert_eq!(json_at(&store, "user:local1"), Some(admin), "the admin stays as it was");
    assert_eq!(json_at(&store, &format!("user:{boot_id}")), Some(boot));
}
