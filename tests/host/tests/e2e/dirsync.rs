//! DirSync (issue 10) against a real Samba Active Directory domain
//! controller, through the real component: the first run takes a cookie and
//! reads everything; later runs get only what changed (modified, renamed,
//! moved out of the base, deleted, added), read the changed users again
//! whole, and offboard the deleted and departed by objectGUID. The store
//! then holds what a fresh full sync of the same directory gives, document
//! by document.

use std::time::{Duration, UNIX_EPOCH};

use ldap_sync_host::consistency::check_store;
use ldap_sync_host::fixture::variables;
use ldap_sync_host::samba::{self, Samba};
use ldap_sync_host::{Host, HostOptions};
use serde_json::{Value, json};

use crate::common::*;
use crate::offboarding::{assert_synced, call, inactive, seed_admin};

const PEOPLE: &str = "OU=People,DC=example,DC=org";

fn user_ldif(uid: &str) -> String {
    format!(
        "dn: CN={uid},{PEOPLE}\nchangetype: add\nobjectClass: user\ncn: {uid}\nsAMAccountName: {uid}\n\
         mail: {uid}@example.org\ngivenName: User\nsn: {uid}\n\n"
    )
}

fn ad_host(mode: &str) -> Host {
    ad_host_with(mode, &[], false)
}

/// [`ad_host`] with `extra` variables (later ones win), its guest output kept when `capture`.
fn ad_host_with(mode: &str, extra: &[(&str, String)], capture: bool) -> Host {
    let base = [
        ("ldap_enable", "true"),
        ("ldap_server_type", "ad"),
        ("ldap_ip", "127.0.0.1"),
        ("ldap_port", "389"),
        ("ldap_basedn", PEOPLE),
        ("ldap_authentication", "true"),
        ("ldap_authentication_userdn", samba::ADMIN_DN),
        ("ldap_authentication_password", samba::ADMIN_PASSWORD),
        ("ldap_unique_identifier_field", "objectGUID"),
        ("ldap_user_search_field", "sAMAccountName"),
        ("ldap_ad_username_field", "sAMAccountName"),
        ("ldap_ad_email_field", "mail"),
        ("ldap_ad_name_field", "cn"),
        ("ldap_sync_mode", mode),
        ("ldap_background_sync_disable_missing_users", "true"),
        ("ldap_sync_max_deactivations", "100%"),
        // Samba creates accounts without a password disabled (0x222).
        ("ldap_sync_user_active_state", "none"),
    ];
    let mut vars: Vec<(&str, String)> = base.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    vars.extend(extra.iter().cloned());
    let opts =
        HostOptions { variables: variables(vars.iter().map(|(k, v)| (*k, v.as_str()))), capture_output: capture, ..HostOptions::default() };
    let host = Host::new(store_options(opts)).expect("host starts");
    host.set_time(UNIX_EPOCH + Duration::from_secs(T0));
    seed_admin(&host);
    host
}

#[tokio::test]
async fn dirsync_against_samba_reads_changes_and_offboards_deleted_and_departed_users() {
    let samba = Samba::start().unwrap_or_else(|e| panic!("{e:#}"));
    let mut ldif = format!("dn: {PEOPLE}\nchangetype: add\nobjectClass: organizationalUnit\nou: People\n\n");
    ldif.push_str("dn: OU=Elsewhere,DC=example,DC=org\nchangetype: add\nobjectClass: organizationalUnit\nou: Elsewhere\n\n");
    for uid in ["u01", "u02", "u03", "u04", "u05"] {
        ldif.push_str(&user_ldif(uid));
    }
    samba.modify(&ldif).expect("ldapmodify");

    let host = ad_host("auto");
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(
        (report["mode"].clone(), report["modeNote"].clone(), report["created"].clone(), report["fullyInSync"].clone()),
        (json!("dirsync"), json!("no cookie yet: full read"), json!(5), json!(true)),
        "{report}"
    );
    let cookie = get(&host, "sync-cookie").expect("a cookie");
    assert_eq!(cookie["mode"], json!("dirsync"));
    let u01 = crate::offboarding::user(&host, "u01");
    assert_eq!(u01["services"]["ldap"]["idAttribute"], json!("objectGUID"));

    // Nothing changed: nothing arrives, no user is written.
    let before = documents(&host);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!((report["entries"].clone(), report["modeNote"].clone()), (json!(0), Value::Null), "{report}");
    assert_eq!(documents(&host), before);

    // A change round.
    samba
        .modify(&format!(
            "dn: CN=u01,{PEOPLE}\nchangetype: modify\nreplace: mail\nmail: changed01@example.org\n\n\
             dn: CN=u02,{PEOPLE}\nchangetype: modrdn\nnewrdn: CN=u02r\ndeleteoldrdn: 1\n\n\
             dn: CN=u03,{PEOPLE}\nchangetype: delete\n\n\
             dn: CN=u04,{PEOPLE}\nchangetype: modrdn\nnewrdn: CN=u04\ndeleteoldrdn: 1\nnewsuperior: OU=Elsewhere,DC=example,DC=org\n\n\
             {}",
            user_ldif("u06")
        ))
        .expect("ldapmodify");
    let report = assert_synced(&host, &call(&host).await);
    let mut gone: Vec<String> =
        report["deactivations"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default();
    gone.sort();
    assert_eq!(
        (report["created"].clone(), report["updated"].clone(), report["deletedInDirectory"].clone(), report["fullyInSync"].clone()),
        (json!(1), json!(2), json!(1), json!(true)),
        "{report}"
    );
    assert_eq!(gone, vec!["u03".to_owned(), "u04".to_owned()], "{report}");
    assert_eq!(inactive(&host), vec!["u03".to_owned(), "u04".to_owned()]);
    assert_eq!(crate::offboarding::user(&host, "u01")["emails"][0]["address"], json!("changed01@example.org"));
    assert_eq!(
        crate::offboarding::user(&host, "u02")["importIds"].as_array().and_then(|a| a.last()).cloned(),
        Some(json!(format!("CN=u02r,{PEOPLE}")))
    );
    assert_ne!(get(&host, "sync-cookie"), Some(cookie), "the cookie moved on");
    check_store(&host).expect("consistent store");

    // A fresh full sync of the same directory: the same documents, but for
    // u03 and u04, whom the incremental store keeps, deactivated.
    let fresh = ad_host("full");
    let report = assert_synced(&fresh, &call(&fresh).await);
    assert_eq!(report["created"], json!(4), "{report}");
    let mut incremental = documents(&host);
    incremental.retain(|_, d| d["username"] != json!("u03") && d["username"] != json!("u04"));
    assert_eq!(incremental, documents(&fresh));
    drop(samba);
}

/// The subject and extensions of a PEM certificate, as `openssl x509` prints them.
fn describe_certificate(pem: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-ext", "subjectAltName"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl (apt-get install openssl)");
    child.stdin.take().expect("stdin").write_all(pem.as_bytes()).expect("write the certificate");
    let out = child.wait_with_output().expect("openssl x509");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Issue 11: Samba AD's own certificate (what `tls enabled = yes` generates on
/// a fresh DC) names the DC only in its CN. With its CA pinned in
/// `ldap_ca_cert` and `ldap_host` set to that CN, LDAPS works, with a warning;
/// with the public roots it is refused.
#[tokio::test]
async fn samba_s_own_cn_only_certificate_is_accepted_when_its_ca_is_pinned() {
    let samba = Samba::start_with_tls().unwrap_or_else(|e| panic!("{e:#}"));
    let mut ldif = format!("dn: {PEOPLE}\nchangetype: add\nobjectClass: organizationalUnit\nou: People\n\n");
    ldif.push_str(&user_ldif("u01"));
    samba.modify(&ldif).expect("ldapmodify");
    let cert = samba.cert_pem().unwrap_or_else(|e| panic!("{e:#}"));
    let described = describe_certificate(&cert);
    assert!(!described.contains("DNS:"), "Samba's certificate has a subjectAltName now: {described}");
    let cn = described
        .lines()
        .find_map(|l| {
            l.strip_prefix("subject=")
                .and_then(|s| s.split(", ").find_map(|part| part.strip_prefix("CN = ").or_else(|| part.strip_prefix("CN="))))
        })
        .unwrap_or_else(|| panic!("no CN in {described}"))
        .trim()
        .to_owned();

    let ca = samba.ca_pem().unwrap_or_else(|e| panic!("{e:#}"));
    let tls =
        [("ldap_port", "636".to_owned()), ("ldap_encryption", "ssl".to_owned()), ("ldap_host", cn.to_lowercase()), ("ldap_ca_cert", ca)];
    let host = ad_host_with("full", &tls, true);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["created"], json!(1), "{report}");
    let stderr = String::from_utf8_lossy(&host.output().expect("captured").stderr()).into_owned();
    assert!(stderr.contains("only in its CN (no subjectAltName); accepted because ldap_ca_cert pins its CA"), "{stderr}");

    // The public roots do not vouch for it.
    let host = ad_host_with("full", &tls[..3], false);
    let res = call(&host).await;
    assert_eq!(res.status, 400, "{}", res.text());
    let error = res.json()["details"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.starts_with("TLS with 127.0.0.1:636 failed: invalid peer certificate"), "{error}");
}
