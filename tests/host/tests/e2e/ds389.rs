//! RFC 4533 against a real 389 Directory Server (its Content
//! Synchronization plugin), through the real component: with nsUniqueId as
//! the unique identifier (389-ds's sync UUID), a change round (modify,
//! rename, delete, add) leaves the store a fresh full sync gives, document
//! by document; with entryUUID first (on 389-ds another, unrelated value),
//! the sync ids are found not to match and nobody is deactivated on them.

use ldap_sync_host::Host;
use ldap_sync_host::consistency::check_store;
use ldap_sync_host::ds389::{self, Ds389};
use serde_json::json;

use crate::common::*;
use crate::offboarding::{assert_synced, call, inactive, seed_admin, user};

const PEOPLE: &str = "ou=people,dc=example,dc=org";

fn user_ldif(uid: &str) -> String {
    format!(
        "dn: uid={uid},{PEOPLE}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: User {uid}\nsn: {uid}\n\
         mail: {uid}@example.org\n\n"
    )
}

fn ds_host(port: u16, extra: &[(&str, &str)]) -> Host {
    let port = port.to_string();
    let mut vars = vec![
        ("ldap_enable", "true"),
        ("ldap_server_type", ""),
        ("ldap_ip", "127.0.0.1"),
        ("ldap_port", port.as_str()),
        ("ldap_basedn", PEOPLE),
        ("ldap_authentication", "true"),
        ("ldap_authentication_userdn", ds389::ROOT_DN),
        ("ldap_authentication_password", ds389::ROOT_PASSWORD),
        ("ldap_unique_identifier_field", "nsUniqueId"),
        ("ldap_user_search_field", "uid"),
        ("ldap_username_field", "uid"),
        ("ldap_email_field", "mail"),
        ("ldap_name_field", "cn"),
        ("ldap_sync_mode", "auto"),
        ("ldap_background_sync_disable_missing_users", "true"),
        ("ldap_sync_max_deactivations", "100%"),
    ];
    vars.extend(extra.iter().copied());
    let host = host(&vars);
    seed_admin(&host);
    host
}

#[tokio::test]
async fn syncrepl_against_389_ds_by_nsuniqueid_leaves_the_store_a_full_sync_would() {
    let ds = Ds389::start().unwrap_or_else(|e| panic!("{e:#}"));
    let mut ldif = format!("dn: {PEOPLE}\nchangetype: add\nobjectClass: organizationalUnit\nou: people\n\n");
    for uid in ["u01", "u02", "u03", "u04", "u05"] {
        ldif.push_str(&user_ldif(uid));
    }
    ds.modify(&ldif).expect("ldapmodify");

    let mut host = ds_host(ds.port(), &[]);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(
        (report["mode"].clone(), report["modeNote"].clone(), report["created"].clone(), report["fullyInSync"].clone()),
        (json!("syncrepl"), json!("no cookie yet: full refresh"), json!(5), json!(true)),
        "{report}"
    );
    let cookie = get(&host, "sync-cookie").expect("a cookie");
    assert_eq!(cookie["idsVerified"], json!(true), "389-ds's sync UUIDs are the nsUniqueIds");
    assert_eq!(user(&host, "u01")["services"]["ldap"]["idAttribute"], json!("nsUniqueId"));

    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["entries"], json!(0), "{report}");

    ds.modify(&format!(
        "dn: uid=u01,{PEOPLE}\nchangetype: modify\nreplace: cn\ncn: Changed u01\n\n\
         dn: uid=u02,{PEOPLE}\nchangetype: modrdn\nnewrdn: uid=u02r\ndeleteoldrdn: 1\n\n\
         dn: uid=u03,{PEOPLE}\nchangetype: delete\n\n{}",
        user_ldif("u06")
    ))
    .expect("ldapmodify");
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(
        (
            report["created"].clone(),
            report["updated"].clone(),
            report["deletedInDirectory"].clone(),
            report["deactivations"].clone(),
            report["fullyInSync"].clone()
        ),
        (json!(1), json!(2), json!(1), json!(["u03"]), json!(true)),
        "{report}"
    );
    assert_eq!(user(&host, "u01")["name"], json!("Changed u01"));
    assert_eq!(user(&host, "u02r")["name"], json!("User u02"));
    check_store(&host).expect("consistent store");

    // After a full read, every entry is unchanged by its mark: the refresh
    // kept only the attributes asked for (389-ds sends them all).
    let fresh = ds_host(ds.port(), &[("ldap_sync_mode", "full")]);
    assert_synced(&fresh, &call(&fresh).await);
    let mut incremental = documents(&host);
    incremental.retain(|_, d| d["username"] != json!("u03"));
    assert_eq!(incremental, documents(&fresh));
    host.set_variable("ldap_sync_mode", "full").expect("a variable");
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["unchanged"].clone(), report["updated"].clone()), (json!(5), json!(0)), "{report}");

    // entryUUID first: on 389-ds not the sync UUID. Found out on the first
    // refresh; a deletion is then not acted on.
    let wrong = ds_host(ds.port(), &[("ldap_unique_identifier_field", "entryUUID"), ("ldap_sync_mode", "syncrepl")]);
    let report = assert_synced(&wrong, &call(&wrong).await);
    assert!(report["modeNote"].as_str().is_some_and(|n| n.contains("put nsUniqueId first")), "{report}");
    assert_eq!(get(&wrong, "sync-cookie").expect("a cookie").get("idsVerified"), None);
    ds.modify(&format!("dn: uid=u04,{PEOPLE}\nchangetype: delete\n\n")).expect("ldapmodify");
    let report = assert_synced(&wrong, &call(&wrong).await);
    assert_eq!(report.get("deactivated"), None, "{report}");
    assert!(inactive(&wrong).is_empty());
}
