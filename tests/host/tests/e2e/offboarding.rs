//! Offboarding (issue 9) against a real slapd, through the real component:
//! accounts disabled in the directory are deactivated (and with `both`
//! reactivated), users missing from a complete read are deactivated only with
//! the switch on and never after a failed read, the circuit breaker holds
//! until forced once, the last active admin stays, and one sync runs at a
//! time. Every test ends with the store-consistency checker.
//!
//! OpenLDAP has no account-state attributes; the directory here loads the
//! fixture's test schema ([`SlapdOptions::account_state_schema`]) and gives
//! every person the auxiliary class `ldapSyncTestAccount`.

use std::time::Duration;

use ldap_sync_host::consistency::check_store;
use ldap_sync_host::demo::{DEMO_PEOPLE_BASE, DEMO_SVC_DN, DEMO_SVC_PASSWORD, demo_variables};
use ldap_sync_host::fixture::{LocalAdmin, SYNC_IN_PROGRESS, directory_root_ldif};
use ldap_sync_host::slapd::{Slapd, SlapdOptions};
use ldap_sync_host::{Host, Response};
use serde_json::{Value, json};

use crate::common::*;

/// The caller of the syncs: a local admin (never a directory user, so never deactivated).
pub(crate) const ADMIN: LocalAdmin = LocalAdmin { id: "admin", password: "secret", login_token: "tok-admin" };
/// Every directory user's password.
pub(crate) const USER_PASSWORD: &str = "password";
/// slapd's rootdn, which no limit applies to.
pub(crate) const ROOT_DN: (&str, &str) = ("cn=admin,dc=example,dc=org", "secret");

/// A person with a password, the test class, and `state` lines (e.g.
/// `userAccountControl: 512`).
pub(crate) fn person(uid: &str, state: &[&str]) -> String {
    let mut l = format!(
        "dn: uid={uid},{DEMO_PEOPLE_BASE}\nobjectClass: inetOrgPerson\nobjectClass: ldapSyncTestAccount\nuid: {uid}\ncn: User {uid}\n\
         sn: {uid}\nmail: {uid}@example.org\nuserPassword: {USER_PASSWORD}\n"
    );
    for line in state {
        l.push_str(line);
        l.push('\n');
    }
    l.push('\n');
    l
}

/// `u00`..: `n` plain users.
pub(crate) fn uids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("u{i:02}")).collect()
}

/// The directory: the demo layout with `people`.
pub(crate) fn directory(people: &[String]) -> String {
    let mut ldif = directory_root_ldif();
    for uid in people {
        ldif += &person(uid, &["userAccountControl: 512"]);
    }
    ldif
}

/// slapd with the account-state schema and `ldif`; a size limit of 1,000
/// (paged searches unlimited unless `paged_total` says otherwise).
pub(crate) fn start_slapd(ldif: String, paged_total: Option<u32>) -> Slapd {
    Slapd::start(SlapdOptions {
        account_state_schema: true,
        size_limit: Some(1000),
        paged_total_limit: paged_total,
        ldif,
        ..SlapdOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e:#}"))
}

/// The demo variables with pages of 3 and `extra` (later entries win).
pub(crate) fn sync_host(port: u16, extra: &[(&'static str, &str)]) -> Host {
    let mut vars = demo_variables(port);
    vars.push(("ldap_search_page_size", "3".into()));
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let host = host(&pairs);
    seed_admin(&host);
    host
}

/// Seeds [`ADMIN`] with its username index key, as the consistency checker wants.
pub(crate) fn seed_admin(host: &Host) {
    ADMIN.seed(host).expect("seeding the admin");
    put(host, &format!("username:{}", ADMIN.id), &json!(ADMIN.id));
}

pub(crate) async fn call(host: &Host) -> Response {
    host.send(ADMIN.sync_now_request().expect("request")).await.expect("host answers")
}

/// A sync that must succeed; returns its report.
#[track_caller]
pub(crate) fn assert_synced(host: &Host, res: &Response) -> Value {
    assert_eq!((res.status, res.text()), (200, SYNC_IN_PROGRESS.to_owned()), "{:?}", res.error);
    let report = last_report(host);
    assert_eq!(report["outcome"], json!("success"), "{report}");
    report
}

pub(crate) fn last_report(host: &Host) -> Value {
    get(host, "sync-report:last").expect("sync-report:last")
}

/// A sync that must fail with `LDAP_Sync_failed`; returns the message.
#[track_caller]
pub(crate) fn assert_sync_failed(host: &Host, res: &Response) -> String {
    assert_eq!(res.status, 400, "{}", res.text());
    let body = res.json();
    let message = body["details"]["error"].as_str().unwrap_or_else(|| panic!("no details.error: {body}")).to_owned();
    assert_eq!(body, json!({"error": "LDAP_Sync_failed", "details": {"error": message}, "success": false}));
    let report = last_report(host);
    assert_eq!((report["outcome"].clone(), report["error"].clone()), (json!("failed"), json!(message)), "{report}");
    assert_eq!(report.get("deactivated"), None, "a failed run deactivated users: {report}");
    message
}

/// The user document of `username`.
pub(crate) fn user(host: &Host, username: &str) -> Value {
    let id = get(host, &format!("username:{username}")).unwrap_or_else(|| panic!("no user {username}"));
    get(host, &format!("user:{}", id.as_str().expect("an id"))).expect("the user document")
}

pub(crate) fn active(host: &Host, username: &str) -> Value {
    user(host, username)["active"].clone()
}

/// Every user document with `active: false`, by username (sorted).
pub(crate) fn inactive(host: &Host) -> Vec<String> {
    let mut names: Vec<String> = host
        .kv_keys()
        .expect("keys")
        .into_iter()
        .filter(|k| k.starts_with("user:"))
        .filter_map(|k| get(host, &k))
        .filter(|d| d["active"] == json!(false))
        .map(|d| d["username"].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

#[track_caller]
pub(crate) fn assert_consistent(host: &Host) {
    if let Err(e) = check_store(host) {
        panic!("{e:#}");
    }
}

fn sorted(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default();
    names.sort();
    names
}

fn modify_state(slapd: &Slapd, uid: &str, attribute: &str, value: &str) {
    slapd
        .modify(&format!("dn: uid={uid},{DEMO_PEOPLE_BASE}\nchangetype: modify\nreplace: {attribute}\n{attribute}: {value}\n"))
        .unwrap_or_else(|e| panic!("ldapmodify {uid}: {e:#}"));
}

pub(crate) fn delete(slapd: &Slapd, uids: &[&str]) {
    let ldif: String = uids.iter().map(|u| format!("dn: uid={u},{DEMO_PEOPLE_BASE}\nchangetype: delete\n\n")).collect();
    slapd.modify(&ldif).unwrap_or_else(|e| panic!("deleting {uids:?}: {e:#}"));
}

/// Binds later runs as `dn` with `password`.
pub(crate) fn bind_as(host: &mut Host, (dn, password): (&str, &str)) {
    host.set_variable("ldap_authentication_userdn", dn).expect("variable");
    host.set_variable("ldap_authentication_password", password).expect("variable");
}

/// The gate's refusal of a token that logs nobody in (every token route).
fn not_logged_in() -> Value {
    json!({"success": false, "error": "You must be logged in to do this.", "status": "error", "message": "You must be logged in to do this."})
}

/// `POST /api/v1/login` as a directory user; the session's headers.
async fn login(host: &Host, uid: &str) -> Vec<(&'static str, Vec<u8>)> {
    let body = json!({"user": uid, "password": USER_PASSWORD}).to_string().into_bytes();
    let res = send(host, "POST", "/api/v1/login", &[("content-type", b"application/json")], body).await;
    assert_eq!(res.status, 200, "login {uid}: {}", res.text());
    let data = &res.json()["data"];
    vec![
        ("x-user-id", data["userId"].as_str().expect("userId").as_bytes().to_vec()),
        ("x-auth-token", data["authToken"].as_str().expect("authToken").as_bytes().to_vec()),
    ]
}

#[tokio::test]
async fn accounts_disabled_in_the_directory_are_deactivated_refused_and_with_both_reactivated() {
    let mut ldif = directory(&uids(3));
    ldif += &person("alice", &["userAccountControl: 512"]);
    ldif += &person("bob", &["loginDisabled: FALSE"]);
    ldif += &person("olga", &["orclIsEnabled: ENABLED"]);
    let slapd = start_slapd(ldif, None);
    let mut host = sync_host(slapd.port(), &[]);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["created"].clone(), report.get("deactivated")), (json!(6), None), "{report}");
    let alice = login(&host, "alice").await;
    let bob = login(&host, "bob").await;
    let res = send(&host, "GET", "/api/v1/me", &with(&alice, &[]), Vec::new()).await;
    assert_eq!((res.status, res.json()["username"].clone()), (200, json!("alice")), "{}", res.text());

    // Disabled in the directory, three ways: AD's flag (514 = NORMAL_ACCOUNT | ACCOUNTDISABLE),
    // eDirectory's loginDisabled, Oracle's orclIsEnabled.
    modify_state(&slapd, "alice", "userAccountControl", "514");
    modify_state(&slapd, "bob", "loginDisabled", "TRUE");
    modify_state(&slapd, "olga", "orclIsEnabled", "DISABLED");
    host.advance(Duration::from_secs(60));
    // 3 of 6 is more than 10%: the breaker would hold them; this test is about the flags.
    host.set_variable("ldap_sync_max_deactivations", "100%").expect("variable");
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(
        (report["deactivated"].clone(), json!(sorted(&report["deactivations"]))),
        (json!(3), json!(["alice", "bob", "olga"])),
        "{report}"
    );
    assert_eq!(inactive(&host), ["alice", "bob", "olga"]);
    let doc = user(&host, "alice");
    assert_eq!((doc["username"].clone(), doc["ldap"].clone()), (json!("alice"), json!(true)), "never deleted");

    // Their tokens stop working at once: every route, ldap.syncNow too.
    for session in [&alice, &bob] {
        let res = send(&host, "GET", "/api/v1/me", &with(session, &[]), Vec::new()).await;
        assert_reply(&res, 401, not_logged_in());
        let code = sha256_hex(USER_PASSWORD);
        let res = sync_now(&host, &with(session, &[("x-2fa-code", &code)])).await;
        assert_reply(&res, 401, not_logged_in());
    }
    // And a disabled account does not log in again.
    let body = json!({"user": "alice", "password": USER_PASSWORD}).to_string().into_bytes();
    let res = send(&host, "POST", "/api/v1/login", &[("content-type", b"application/json")], body).await;
    assert_eq!(res.status, 401, "{}", res.text());

    // `disable` never reactivates.
    modify_state(&slapd, "alice", "userAccountControl", "512");
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report.get("reactivated"), active(&host, "alice")), (None, json!(false)), "{report}");
    // `both` does: alice is enabled again, bob and olga are still disabled.
    host.set_variable("ldap_sync_user_active_state", "both").expect("variable");
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["reactivated"].clone(), report["reactivations"].clone()), (json!(1), json!(["alice"])), "{report}");
    assert_eq!(report.get("deactivated"), None, "{report}");
    assert_eq!(active(&host, "alice"), json!(true));
    assert_eq!(inactive(&host), ["bob", "olga"]);
    let res = send(&host, "GET", "/api/v1/me", &with(&login(&host, "alice").await, &[]), Vec::new()).await;
    assert_eq!(res.status, 200, "{}", res.text());
    // `none` ignores the directory's state: nothing changes either way.
    host.set_variable("ldap_sync_user_active_state", "none").expect("variable");
    modify_state(&slapd, "u00", "userAccountControl", "514");
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report.get("deactivated"), report.get("reactivated")), (None, None), "{report}");
    assert_eq!(inactive(&host), ["bob", "olga"]);
    assert_consistent(&host);
}

/// Upstream ends a deactivated user's sessions for good
/// (`setUserActiveStatus(userId, false)` calls `Users.unsetLoginTokens`), so a
/// reactivated user logs in again. Here the gate only refuses an inactive
/// user: every token issued before the deactivation (a stolen one included)
/// works again the moment the directory re-enables the account.
#[tokio::test]
async fn a_reactivated_user_logs_in_again() {
    let slapd = start_slapd(directory(&uids(9)) + &person("alice", &["userAccountControl: 512"]), None);
    let host = sync_host(slapd.port(), &[("ldap_sync_user_active_state", "both")]);
    assert_synced(&host, &call(&host).await);
    let before = login(&host, "alice").await;
    modify_state(&slapd, "alice", "userAccountControl", "514");
    host.advance(Duration::from_secs(60));
    assert_eq!(assert_synced(&host, &call(&host).await)["deactivations"], json!(["alice"]));
    modify_state(&slapd, "alice", "userAccountControl", "512");
    host.advance(Duration::from_secs(60));
    assert_eq!(assert_synced(&host, &call(&host).await)["reactivations"], json!(["alice"]));
    let res = send(&host, "GET", "/api/v1/me", &with(&before, &[]), Vec::new()).await;
    assert_reply(&res, 401, not_logged_in());
    assert_consistent(&host);
}

/// 20 people in pages of 2 (10 pages); the service account may read 5 in
/// one paged search (`size.prtotal`), the rootdn everything.
#[tokio::test]
async fn missing_users_are_deactivated_only_with_the_switch_on_and_never_after_a_failed_read() {
    let people = uids(20);
    let slapd = start_slapd(directory(&people), Some(5));
    let mut host = sync_host(slapd.port(), &[("ldap_search_page_size", "2"), ("ldap_background_sync_disable_missing_users", "true")]);
    bind_as(&mut host, ROOT_DN);

    // The first complete read is the baseline.
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["created"].clone(), report["pages"].clone()), (json!(20), json!(10)), "{report}");
    assert_eq!(
        report["offboarding"]["missingUsersNotChecked"],
        json!("no complete read to compare with yet: the next run compares with this one")
    );
    assert!(get(&host, "sync-members").is_some(), "the baseline is stored");

    // u19 leaves; a read that fails at page 3 of 10 (sizeLimitExceeded for the
    // service account) deactivates nobody.
    delete(&slapd, &["u19"]);
    bind_as(&mut host, (DEMO_SVC_DN, DEMO_SVC_PASSWORD));
    host.advance(Duration::from_secs(60));
    let message = assert_sync_failed(&host, &call(&host).await);
    assert!(message.starts_with("search failed: sizeLimitExceeded (4)"), "{message}");
    assert_eq!(last_report(&host)["pages"], json!(2), "{}", last_report(&host));
    assert!(inactive(&host).is_empty());
    assert_consistent(&host);

    // A complete read with the switch off deactivates nobody either.
    bind_as(&mut host, ROOT_DN);
    host.set_variable("ldap_background_sync_disable_missing_users", "false").expect("variable");
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report.get("deactivated"), report.get("offboarding")), (None, None), "{report}");
    assert!(inactive(&host).is_empty());

    // Switch on, u18 leaves: a complete read deactivates it, and u19, which left
    // while the switch was off (2 of 18 seen is within 10%, rounded up).
    host.set_variable("ldap_background_sync_disable_missing_users", "true").expect("variable");
    delete(&slapd, &["u18"]);
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["deactivated"].clone(), json!(sorted(&report["deactivations"]))), (json!(2), json!(["u18", "u19"])), "{report}");
    assert_eq!(inactive(&host), ["u18", "u19"]);
    let doc = user(&host, "u18");
    assert_eq!((doc["ldap"].clone(), doc["importIds"].clone()), (json!(true), json!([format!("uid=u18,{DEMO_PEOPLE_BASE}")])));
    // Nothing more to do: an unchanged directory deactivates nobody again.
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report.get("deactivated"), None, "{report}");
    assert_consistent(&host);
}

/// The issue says the switch deactivates "`ldap: true` users that the run did
/// not see". A user removed while the switch was off is one; but runs with
/// the switch off replace the baseline of the last complete read, so turning
/// the switch on later never deactivates them.
#[tokio::test]
async fn a_user_removed_while_the_switch_was_off_is_deactivated_once_it_is_on() {
    let slapd = start_slapd(directory(&uids(12)), None);
    let mut host = sync_host(slapd.port(), &[]);
    assert_synced(&host, &call(&host).await);
    delete(&slapd, &["u11"]);
    host.advance(Duration::from_secs(60));
    assert_synced(&host, &call(&host).await);
    assert!(inactive(&host).is_empty(), "the switch is off");
    host.set_variable("ldap_background_sync_disable_missing_users", "true").expect("variable");
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(inactive(&host), ["u11"], "u11 is an ldap: true user the complete read did not see: {report}");
    assert_consistent(&host);
}

#[tokio::test]
async fn removing_half_the_directory_trips_the_breaker_and_a_forced_run_passes_once() {
    let slapd = start_slapd(directory(&uids(10)), None);
    let mut host = sync_host(slapd.port(), &[("ldap_background_sync_disable_missing_users", "true")]);
    assert_synced(&host, &call(&host).await);

    // Half the directory gone (a wrong base DN, a broken filter, a sync of
    // the wrong branch look the same): 5 due, the limit is 10% of 5 seen, rounded up: 1.
    delete(&slapd, &["u05", "u06", "u07", "u08", "u09"]);
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report.get("deactivated"), None, "{report}");
    let breaker = &report["offboarding"]["breaker"];
    assert_eq!((breaker["wouldDeactivate"].clone(), breaker["limit"].clone()), (json!(5), json!(1)), "{report}");
    assert_eq!(sorted(&breaker["sample"]), ["u05", "u06", "u07", "u08", "u09"]);
    assert!(inactive(&host).is_empty());

    // ldap_sync_force_deactivations=true lets one run pass: 2 more leave, and the
    // 5 the breaker held back are still due: 7, over 10% of 3.
    host.set_variable("ldap_sync_force_deactivations", "true").expect("variable");
    delete(&slapd, &["u03", "u04"]);
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    let seven = ["u03", "u04", "u05", "u06", "u07", "u08", "u09"];
    assert_eq!((report["deactivated"].clone(), json!(sorted(&report["deactivations"]))), (json!(7), json!(seven)), "{report}");
    assert_eq!(get(&host, "sync-force-used"), Some(json!(true)));
    // A second forced run does not pass: 2 more of 3 is over 10% of 1.
    delete(&slapd, &["u01", "u02"]);
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report.get("deactivated"), None, "the override passed once: {report}");
    assert_eq!(report["offboarding"]["breaker"]["wouldDeactivate"], json!(2), "{report}");
    assert_eq!(inactive(&host), seven);
    // Setting it back to false re-arms it.
    host.set_variable("ldap_sync_force_deactivations", "false").expect("variable");
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report.get("deactivated"), get(&host, "sync-force-used")), (None, None), "{report}");
    assert_consistent(&host);
}

/// The operator's path the issue describes: the breaker trips, the operator
/// checks the sample and sets `ldap_sync_force_deactivations=true`, and the
/// following run deactivates them. The users the breaker held back stay in
/// the baseline (`sync-members`) until then, so the breaker keeps holding on
/// every run instead of forgetting them after the first.
#[tokio::test]
async fn a_tripped_breaker_holds_until_a_forced_run_deactivates_them() {
    let slapd = start_slapd(directory(&uids(10)), None);
    let mut host = sync_host(slapd.port(), &[("ldap_background_sync_disable_missing_users", "true")]);
    assert_synced(&host, &call(&host).await);
    delete(&slapd, &["u05", "u06", "u07", "u08", "u09"]);
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["offboarding"]["breaker"]["wouldDeactivate"], json!(5), "{report}");
    // It must hold on every run until an operator decides.
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["offboarding"]["breaker"]["wouldDeactivate"], json!(5), "the breaker forgot the 5 held back: {report}");
    host.set_variable("ldap_sync_force_deactivations", "true").expect("variable");
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["deactivated"], json!(5), "the forced run deactivates those the breaker held back: {report}");
    assert_consistent(&host);
}

#[tokio::test]
async fn the_last_active_admin_is_never_deactivated() {
    let slapd = start_slapd(directory(&uids(2)) + &person("boss", &["userAccountControl: 512"]), None);
    // The caller holds the sync permission through a role of its own, so the
    // only admins are the directory's (no bootstrap admin either).
    let host = sync_host(slapd.port(), &[("ldap_sync_max_deactivations", "100%")]);
    let mut caller = get(&host, "user:admin").expect("caller");
    caller["roles"] = json!(["syncer"]);
    put(&host, "user:admin", &caller);
    put(&host, "permission:sync-auth-services-users", &json!({"_id": "sync-auth-services-users", "roles": ["syncer"]}));
    assert_synced(&host, &call(&host).await);
    let boss_key = format!("user:{}", user(&host, "boss")["_id"].as_str().expect("id"));
    let mut boss = get(&host, &boss_key).expect("boss");
    boss["roles"] = json!(["admin", "user"]);
    put(&host, &boss_key, &boss);

    // The only active admin is disabled in the directory: kept.
    modify_state(&slapd, "boss", "userAccountControl", "514");
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report.get("deactivated"), report["offboarding"]["kept"].clone()), (None, json!(["boss"])), "{report}");
    assert_eq!(active(&host, "boss"), json!(true));

    // With a second active admin (u00), the disabled one goes.
    let u00_key = format!("user:{}", user(&host, "u00")["_id"].as_str().expect("id"));
    let mut u00 = get(&host, &u00_key).expect("u00");
    u00["roles"] = json!(["admin"]);
    put(&host, &u00_key, &u00);
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["deactivations"].clone(), report.get("offboarding")), (json!(["boss"]), None), "{report}");
    // Then u00, now the last active admin, is disabled too: kept.
    modify_state(&slapd, "u00", "userAccountControl", "514");
    host.advance(Duration::from_secs(60));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report.get("deactivated"), report["offboarding"]["kept"].clone()), (None, json!(["u00"])), "{report}");
    assert_eq!(inactive(&host), ["boss"]);
    assert_consistent(&host);
}

#[tokio::test]
async fn a_live_lease_starts_nothing_and_an_expired_one_is_taken_over() {
    let slapd = start_slapd(directory(&uids(4)), None);
    let host = sync_host(slapd.port(), &[]);
    let now_ms = i64::try_from(T0).expect("T0") * 1000;
    put(&host, "sync-lease", &json!({"runId": "other", "expiresAt": {"$date": now_ms + 60_000}}));
    let before = dump(&host);
    let res = call(&host).await;
    assert_reply(&res, 200, json!({"message": "Sync_in_progress", "success": true}));
    assert_eq!(get(&host, "sync-report:last"), None, "no run started");
    assert_eq!(get(&host, "username:u00"), None);
    // The gate counted the call (rate limiter, second factor): nothing else changed.
    let after = dump(&host);
    let changed: Vec<&String> =
        after.keys().chain(before.keys()).filter(|k| before.get(*k) != after.get(*k)).filter(|k| !k.starts_with("rate-limit:")).collect();
    assert!(changed.is_empty(), "a held lease changed {changed:?}");

    // The owner died: once its lease expired, the next call takes over.
    host.advance(Duration::from_secs(61));
    let taken = assert_synced(&host, &call(&host).await);
    assert_eq!(taken["created"], json!(4), "{taken}");
    assert_eq!(get(&host, "sync-lease"), None, "released at the end");
    // And a run in progress holds it for the next call too.
    put(&host, "sync-lease", &json!({"runId": "other", "expiresAt": {"$date": now_ms + 120_000}}));
    let res = call(&host).await;
    assert_reply(&res, 200, json!({"message": "Sync_in_progress", "success": true}));
    assert_eq!(last_report(&host), taken, "sync-report:last unchanged");
    assert_consistent(&host);
}

/// What a run that died leaves behind: its lease, and the lease slots it
/// claimed (`store/runs.rs`: the slot it took and the next one). With
/// `ldap_timeout=1000` a lease lasts 4 × 1 s + 60 s = 64 s, and `T0` starts a
/// slot. Calls in a claimed slot start nothing, even once the lease expired;
/// the first call in the slot after takes over: at most two lease lengths after the owner's last renewal.
#[tokio::test]
async fn a_dead_owners_lease_is_taken_over_within_two_lease_lengths() {
    let slapd = start_slapd(directory(&uids(4)), None);
    let host = sync_host(slapd.port(), &[("ldap_timeout", "1000")]);
    let (now_ms, ttl_ms) = (i64::try_from(T0).expect("T0") * 1000, 64_000);
    let slot = now_ms / ttl_ms;
    assert_eq!(now_ms % ttl_ms, 0);
    put(&host, "sync-lease", &json!({"runId": "dead", "expiresAt": {"$date": now_ms + ttl_ms}}));
    for s in [slot, slot + 1] {
        host.kv_set(&format!("sync-lease-slot:{s}"), &1i64.to_le_bytes()).expect("kv set");
    }
    // Expired, but its slot is still claimed.
    host.advance(Duration::from_millis(65_000));
    assert_reply(&call(&host).await, 200, json!({"message": "Sync_in_progress", "success": true}));
    assert_eq!(get(&host, "sync-report:last"), None, "no run started");
    // The next slot: taken over.
    host.advance(Duration::from_millis(64_000));
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["created"], json!(4), "{report}");
    assert_eq!(get(&host, "sync-lease"), None, "released");
    assert_consistent(&host);
}
