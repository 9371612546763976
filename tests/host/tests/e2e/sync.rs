//! The sync against a real slapd, through the real component.

use std::time::{Duration, Instant, UNIX_EPOCH};

use ldap_sync_host::demo::{DEMO_PEOPLE_BASE, demo_variables};
use ldap_sync_host::fixture::{LocalAdmin, SYNC_IN_PROGRESS, directory_root_ldif, person_ldif, variables};
use ldap_sync_host::slapd::{Slapd, SlapdOptions};
use ldap_sync_host::{Host, HostOptions};
use serde_json::{Value, json};

use crate::common::*;

const BASE: &str = DEMO_PEOPLE_BASE;
const SUCCESS: &str = SYNC_IN_PROGRESS;
/// The caller of every sync here: `admin`, password "secret", token `tok-admin`.
const ADMIN: LocalAdmin = LocalAdmin { id: "admin", password: "secret", login_token: "tok-admin" };

/// A person whose `sn` is its `cn`.
fn person(rdn: &str, uid: &str, cn: &str, mails: &[&str]) -> String {
    person_ldif(rdn, uid, cn, cn, mails)
}

/// Ten people, more than the size limit of 5, so only a paged search sees
/// everyone; a non-root service account (the root DN ignores limits).
fn directory() -> String {
    let mut ldif = directory_root_ldif();
    ldif += &person("uid=alice", "alice", "Alice Smith", &["alice@example.org"]);
    ldif += &person("uid=bob", "bob", "Bob Jones", &["bob@example.org", "bob.jones@example.org"]);
    ldif += &person("uid=nomail", "nomail", "No Mail", &[]);
    ldif += &person("uid=jurgen", "Jürgen Müller", "Jürgen Müller", &["jurgen@example.org"]);
    ldif += &person("uid=wangwei", "王伟", "王伟", &["wang@example.org"]);
    ldif += &person("cn=Smith\\, John", "jsmith", "Smith, John", &["jsmith@example.org"]);
    ldif += &person("cn=Plus\\+Sign", "plus", "Plus+Sign", &["plus@example.org"]);
    ldif += &person("uid=maryann1", "Mary Ann", "Mary Ann", &["mary1@example.org"]);
    ldif += &person("uid=maryann2", "mary.ann", "Mary Ann Two", &["mary2@example.org"]);
    ldif += &person("uid=carol", "carol", "Carol King", &["carol@example.org"]);
    ldif
}

fn start_slapd(tls: bool) -> Slapd {
    Slapd::start(SlapdOptions { size_limit: Some(5), tls, ldif: directory(), ..SlapdOptions::default() })
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// The demo directory's variables (same layout and service account), with
/// `entryUUID` alone as the id and pages of 3. Later entries win.
fn ldap_vars(port: u16) -> Vec<(&'static str, String)> {
    let mut vars = demo_variables(port);
    vars.extend([("ldap_unique_identifier_field", "entryUUID".into()), ("ldap_search_page_size", "3".into())]);
    vars
}

fn sync_host(vars: &[(&'static str, String)]) -> Host {
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let host = host(&pairs);
    ADMIN.seed(&host).expect("seeding the admin");
    host
}

async fn call(host: &Host) -> ldap_sync_host::Response {
    host.send(ADMIN.sync_now_request().expect("request")).await.expect("host answers")
}

fn user_by(host: &Host, index_key: &str) -> Value {
    let id = get(host, index_key).unwrap_or_else(|| panic!("no index key {index_key}"));
    get(host, &format!("user:{}", id.as_str().expect("id string"))).expect("user document")
}

#[track_caller]
fn assert_sync_failed(res: &ldap_sync_host::Response, starts_with: &str) {
    assert_eq!(res.status, 400, "{}", res.text());
    let body = res.json();
    assert_eq!(body["error"], json!("LDAP_Sync_failed"), "{body}");
    assert_eq!(body["success"], json!(false));
    let message = body["details"]["error"].as_str().expect("message");
    assert!(message.starts_with(starts_with), "{message:?} does not start with {starts_with:?}");
    assert!(!res.text().contains("svcpw"), "the bind password leaked: {}", res.text());
}

#[tokio::test]
async fn full_sync_creates_then_changes_nothing_then_follows_modifications() {
    let slapd = start_slapd(false);
    let host = sync_host(&ldap_vars(slapd.port()));

    let res = call(&host).await;
    assert_eq!((res.status, res.text()), (200, SUCCESS.to_owned()), "{:?}", res.error);

    let report = get(&host, "sync-report:last").expect("report");
    assert_eq!(
        (
            report["outcome"].clone(),
            report["entries"].clone(),
            report["pages"].clone(),
            report["created"].clone(),
            report["failed"].clone()
        ),
        (json!("success"), json!(10), json!(4), json!(8), json!(2))
    );
    let reasons: Vec<Value> = report["problems"].as_array().expect("list").iter().map(|p| json!([p["dn"], p["reason"]])).collect();
    assert_eq!(
        reasons,
        vec![
            json!([format!("uid=nomail,{BASE}"), "no e-mail address: none of mail holds an address and ldap_default_domain is empty"]),
            json!([format!("uid=maryann2,{BASE}"), "username \"mary.ann\" is taken by another user"]),
        ]
    );

    let alice = user_by(&host, "username:alice");
    let id = alice["_id"].as_str().expect("id").to_owned();
    assert_eq!(id.len(), 17);
    let uuid = alice["services"]["ldap"]["id"].as_str().expect("ldap id").to_owned();
    assert_eq!(uuid.len(), 72, "hex of the 36-character entryUUID text");
    let text: String = (0..72).step_by(2).map(|i| u8::from_str_radix(&uuid[i..i + 2], 16).expect("hex") as char).collect();
    assert_eq!(
        alice,
        json!({
            "_id": id, "username": "alice", "name": "Alice Smith",
            "emails": [{"address": "alice@example.org", "verified": true}],
            "roles": ["user"], "active": true,
            "services": {"ldap": {"id": uuid, "idAttribute": "entryUUID", "uuid": text}},
            "createdAt": {"$date": (T0 * 1000)}, "type": "user", "status": "offline", "ldap": true,
            "importIds": [format!("uid=alice,{BASE}")], "_updatedAt": {"$date": (T0 * 1000)}
        })
    );
    assert_eq!(get(&host, &format!("ldap-id:entryUUID:{uuid}")), Some(json!(id)));
    assert_eq!(get(&host, "email:alice@example.org"), Some(json!(id)));

    let bob = user_by(&host, "username:bob");
    assert_eq!(
        bob["emails"],
        json!([{"address": "bob@example.org", "verified": true}, {"address": "bob.jones@example.org", "verified": true}])
    );
    assert_eq!(get(&host, "email:bob.jones@example.org"), Some(bob["_id"].clone()));
    assert_eq!(user_by(&host, "username:juergen.mueller")["name"], json!("Jürgen Müller"));
    assert_eq!(user_by(&host, "username:wang2.wei3")["name"], json!("王伟"));
    // slapd returns DNs with hex escapes, whatever form the LDIF used.
    assert_eq!(user_by(&host, "username:jsmith")["importIds"], json!([format!("cn=Smith\\2C John,{BASE}")]));
    assert_eq!(user_by(&host, "username:plus")["importIds"], json!([format!("cn=Plus\\2BSign,{BASE}")]));
    assert_eq!(user_by(&host, "username:mary.ann")["emails"][0]["address"], json!("mary1@example.org"));
    assert_eq!(get(&host, "email:mary2@example.org"), None);
    assert_eq!(get(&host, "schema-version"), Some(json!(1)));

    // A second run with no directory change writes nothing but its report.
    let before = dump(&host);
    host.advance(std::time::Duration::from_secs(60));
    assert_eq!(call(&host).await.status, 200);
    let after = dump(&host);
    // The reports: the last one, the history (`sync-report:<n>`) and its counter.
    let strip = |m: std::collections::BTreeMap<String, Vec<u8>>| {
        m.into_iter().filter(|(k, _)| !k.starts_with("sync-report")).collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(strip(before), strip(after));
    assert_eq!(get(&host, "sync-report:last").expect("report")["unchanged"], json!(8));

    // Modify and rename: the change shows up, the renamed user keeps id and document.
    let carol_before = user_by(&host, "username:carol");
    slapd
        .modify(&format!(
            "dn: uid=alice,{BASE}\nchangetype: modify\nreplace: cn\ncn: Alice Cooper\n-\nreplace: mail\nmail: alice.cooper@example.org\n\n\
             dn: uid=carol,{BASE}\nchangetype: modrdn\nnewrdn: uid=caroline\ndeleteoldrdn: 1\n"
        ))
        .expect("ldapmodify");
    host.advance(std::time::Duration::from_secs(60));
    assert_eq!(call(&host).await.status, 200);
    let alice = user_by(&host, "username:alice");
    assert_eq!(
        (alice["name"].clone(), alice["emails"].clone()),
        (json!("Alice Cooper"), json!([{"address": "alice.cooper@example.org", "verified": true}]))
    );
    assert_eq!(alice["createdAt"], json!({"$date": (T0 * 1000)}));
    assert_eq!(get(&host, "email:alice@example.org"), None);
    let caroline = user_by(&host, "username:caroline");
    assert_eq!(caroline["_id"], carol_before["_id"]);
    assert_eq!(caroline["importIds"], json!([format!("uid=carol,{BASE}"), format!("uid=caroline,{BASE}")]));
    assert_eq!(get(&host, "username:carol"), None);
    let report = get(&host, "sync-report:last").expect("report");
    assert_eq!((report["updated"].clone(), report["unchanged"].clone()), (json!(2), json!(6)));
}

#[tokio::test]
async fn unpaged_search_over_the_size_limit_fails_without_writing() {
    let slapd = start_slapd(false);
    let mut vars = ldap_vars(slapd.port());
    vars.push(("ldap_search_page_size", "0".into()));
    let host = sync_host(&vars);
    let res = call(&host).await;
    // The message names the setting to change, and the server's limits.
    assert_sync_failed(
        &res,
        "search failed: sizeLimitExceeded (4); a page is larger than the server's size limit for the service account: lower ldap_search_page_size",
    );
    assert_eq!(get(&host, "username:alice"), None);
    assert_eq!(get(&host, "sync-report:last").expect("report")["outcome"], json!("failed"));
}

#[tokio::test]
async fn wrong_bind_password_stopped_server_and_bad_filter_are_clear_400s() {
    let mut slapd = start_slapd(false);
    let mut vars = ldap_vars(slapd.port());
    vars.push(("ldap_authentication_password", "wrong-pw".into()));
    let res = call(&sync_host(&vars)).await;
    assert_sync_failed(&res, "bind failed: invalidCredentials (49)");
    assert!(!res.text().contains("wrong-pw"));

    let mut vars = ldap_vars(slapd.port());
    vars.push(("ldap_user_search_filter", "(&(objectClass=person)(cn=Smith)".into()));
    let res = call(&sync_host(&vars)).await;
    assert_eq!(res.status, 400);
    let error = res.json()["error"].as_str().expect("error").to_owned();
    assert!(error.starts_with("invalid value for variable ldap_user_search_filter: "), "{error}");
    assert!(error.contains("position"), "{error}");

    let port = slapd.port();
    slapd.stop();
    let host = sync_host(&ldap_vars(port));
    let started = Instant::now();
    let res = call(&host).await;
    assert_sync_failed(&res, &format!("cannot connect to 127.0.0.1:{port}: connection refused (nothing listens on that port"));
    // Generous bound: the connect timeout is 1 s; refusing is immediate.
    assert!(started.elapsed().as_secs() < 10, "took {:?}", started.elapsed());
}

#[tokio::test]
async fn tls_ldaps_and_starttls() {
    let slapd = start_slapd(true);
    let ca = slapd.ca_pem().expect("ca");
    let ldaps = slapd.ldaps_port().expect("ldaps port").to_string();

    let mut vars = ldap_vars(slapd.port());
    vars.extend([("ldap_encryption", "tls".into()), ("ldap_ca_cert", ca.clone())]);
    assert_eq!(call(&sync_host(&vars)).await.text(), SUCCESS);

    let mut vars = ldap_vars(0);
    vars.extend([("ldap_port", ldaps.clone()), ("ldap_encryption", "ssl".into()), ("ldap_ca_cert", ca), ("ldap_host", "localhost".into())]);
    let host = sync_host(&vars);
    assert_eq!(call(&host).await.text(), SUCCESS);
    assert!(get(&host, "username:alice").is_some());

    let mut vars = ldap_vars(0);
    vars.extend([
        ("ldap_port", ldaps.clone()),
        ("ldap_encryption", "ssl".into()),
        ("ldap_ca_cert", slapd.other_ca_pem().expect("other ca")),
    ]);
    let res = call(&sync_host(&vars)).await;
    assert_sync_failed(&res, &format!("TLS with 127.0.0.1:{ldaps} failed: invalid peer certificate"));

    let mut vars = ldap_vars(0);
    vars.extend([
        ("ldap_port", ldaps),
        ("ldap_encryption", "ssl".into()),
        ("ldap_ca_cert", slapd.other_ca_pem().expect("other ca")),
        ("ldap_reject_unauthorized", "false".into()),
    ]);
    assert_eq!(call(&sync_host(&vars)).await.text(), SUCCESS);
}

/// A server certificate that names the server only in its subject CN, with
/// no subjectAltName (Samba AD's default one): with the CA pinned and
/// `ldap_host` that CN, the sync runs over LDAPS and says so in one warning;
/// for any other `ldap_host` the handshake is refused, naming the host.
#[tokio::test]
async fn tls_cn_only_certificate() {
    const CN: &str = "ldap.example.test";
    let options =
        SlapdOptions { size_limit: Some(5), tls: true, cn_only_cert: Some(CN.into()), ldif: directory(), ..SlapdOptions::default() };
    let slapd = Slapd::start(options).unwrap_or_else(|e| panic!("{e:#}"));
    let ca = slapd.ca_pem().expect("ca");
    let ldaps = slapd.ldaps_port().expect("ldaps port").to_string();
    let ldaps_vars = |ldap_host: &str| {
        let mut vars = ldap_vars(0);
        vars.extend([
            ("ldap_port", ldaps.clone()),
            ("ldap_encryption", "ssl".into()),
            ("ldap_ca_cert", ca.clone()),
            ("ldap_host", ldap_host.into()),
            ("ldap_ip", "127.0.0.1".into()),
        ]);
        vars
    };

    let host = Host::new(HostOptions { variables: variables(ldaps_vars(CN)), capture_output: true, ..HostOptions::default() })
        .expect("host starts");
    host.set_time(UNIX_EPOCH + Duration::from_secs(T0));
    ADMIN.seed(&host).expect("seeding the admin");
    let res = call(&host).await;
    assert_eq!((res.status, res.text()), (200, SUCCESS.to_owned()), "{:?}", res.error);
    let report = get(&host, "sync-report:last").expect("report");
    assert_eq!((report["outcome"].clone(), report["created"].clone()), (json!("success"), json!(8)), "{report}");
    assert_eq!(user_by(&host, "username:alice")["emails"], json!([{"address": "alice@example.org", "verified": true}]));
    let stderr = String::from_utf8_lossy(&host.output().expect("captured").stderr()).into_owned();
    let warning = format!(
        "{{\"level\":\"warn\",\"msg\":\"the LDAP server's certificate names \\\"{CN}\\\" only in its CN (no subjectAltName); \
         accepted because ldap_ca_cert pins its CA\""
    );
    assert_eq!(stderr.matches(&warning).count(), 1, "one warning for the one connection\n{stderr}");

    let res = call(&sync_host(&ldaps_vars("other.example.test"))).await;
    assert_sync_failed(
        &res,
        &format!("TLS with 127.0.0.1:{ldaps} failed: invalid peer certificate: certificate not valid for name \"other.example.test\""),
    );
}

#[tokio::test]
async fn anonymous_access_when_authentication_is_off() {
    let slapd = start_slapd(false);
    let mut vars = ldap_vars(slapd.port());
    vars.push(("ldap_authentication", "false".into()));
    let host = sync_host(&vars);
    assert_eq!(call(&host).await.text(), SUCCESS);
    assert_eq!(get(&host, "sync-report:last").expect("report")["created"], json!(8));
}
