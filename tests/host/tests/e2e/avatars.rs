//! Avatars (issue 11) against a real slapd, through the real component:
//! taken from the same search as the users, stored with upstream's ETag,
//! never rewritten while unchanged, too large ones skipped with a reason,
//! served at `/avatar/<username>` with `ETag` and `If-None-Match`, and
//! taken at login too.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ldap_sync_host::demo::DEMO_PEOPLE_BASE;
use ldap_sync_host::fixture::directory_root_ldif;
use ldap_sync_host::{Host, Response};
use serde_json::json;
use sha2::Digest as _;

use crate::common::*;
use crate::offboarding::{USER_PASSWORD, assert_consistent, assert_synced, call, start_slapd, sync_host, user};

/// A JPEG-looking image with bytes that are not UTF-8.
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\xfe\xfd ann";
/// A PNG signature and a little more.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR bob";

fn person(uid: &str, photo: Option<&[u8]>) -> String {
    let mut l = format!(
        "dn: uid={uid},{DEMO_PEOPLE_BASE}\nobjectClass: inetOrgPerson\nobjectClass: ldapSyncTestAccount\nuid: {uid}\ncn: {uid}\nsn: x\n\
         mail: {uid}@example.org\nuserPassword: {USER_PASSWORD}\n"
    );
    if let Some(bytes) = photo {
        l.push_str(&format!("jpegPhoto:: {}\n", BASE64.encode(bytes)));
    }
    l + "\n"
}

/// Upstream's ETag: SHA-256 of the bytes read as (lossy) UTF-8 text.
fn upstream_etag(bytes: &[u8]) -> String {
    sha2::Sha256::digest(String::from_utf8_lossy(bytes).as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

async fn get_avatar(host: &Host, path: &str, headers: &[(&str, &[u8])]) -> Response {
    send(host, "GET", path, headers, Vec::new()).await
}

#[tokio::test]
async fn avatars_come_with_the_users_and_are_served_with_their_etag() {
    let big = vec![b'x'; 1024 * 1024 + 1];
    let mut ldif = directory_root_ldif();
    ldif += &person("ann", Some(JPEG));
    ldif += &person("bob", Some(PNG));
    ldif += &person("carl", Some(&big));
    ldif += &person("dave", None);
    let slapd = start_slapd(ldif, None);
    let host = sync_host(slapd.port(), &[("ldap_background_sync_avatars", "true"), ("ldap_sync_mode", "full")]);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(
        report["avatars"],
        json!({"written": 2, "tooLarge": 1, "problems": [
            {"dn": format!("uid=carl,{DEMO_PEOPLE_BASE}"), "reason": "avatar of 1048577 bytes not stored: over 1 MiB"}]}),
        "{report}"
    );
    let ann = user(&host, "ann");
    assert_eq!((ann["avatarOrigin"].clone(), ann["avatarETag"].clone()), (json!("rest"), json!(upstream_etag(JPEG))));
    assert_eq!(user(&host, "carl").get("avatarETag"), None);
    assert_eq!(user(&host, "dave").get("avatarETag"), None);

    let res = get_avatar(&host, "/avatar/ann", &[]).await;
    assert_eq!((res.status, res.body.as_slice()), (200, JPEG));
    let etag = format!("\"{}\"", upstream_etag(JPEG));
    assert_eq!(res.header("etag"), Some(etag.as_str()));
    assert_eq!(res.header("content-type"), Some("image/jpeg"));
    assert_eq!(res.header("cache-control"), Some("public, max-age=0"));
    assert_eq!(res.header("content-security-policy"), Some("default-src 'none'"));
    let last_modified = res.header("last-modified").expect("Last-Modified").to_owned();
    let res = get_avatar(&host, "/avatar/ANN", &[("if-none-match", etag.as_bytes())]).await;
    assert_eq!((res.status, res.body.len(), res.header("content-type")), (304, 0, None));
    assert_eq!(res.header("etag"), Some(etag.as_str()));
    let res = get_avatar(&host, "/avatar/ann", &[("if-modified-since", last_modified.as_bytes())]).await;
    assert_eq!(res.status, 304);
    let res = get_avatar(&host, "/avatar/ann", &[("if-none-match", b"\"other\"")]).await;
    assert_eq!((res.status, res.body.as_slice()), (200, JPEG));
    let res = get_avatar(&host, "/avatar/bob", &[]).await;
    assert_eq!((res.status, res.header("content-type"), res.body.as_slice()), (200, Some("image/png"), PNG));
    // No image: upstream's letters.
    for path in ["/avatar/dave", "/avatar/nobody%20here", "/avatar/@dave"] {
        let res = get_avatar(&host, path, &[]).await;
        assert_eq!((res.status, res.header("content-type")), (200, Some("image/svg+xml")), "{path}");
        assert_eq!(res.header("last-modified"), Some("Thu, 01 Jan 2015 00:00:00 GMT"));
        assert!(res.text().starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 200 200\">"), "{}", res.text());
    }
    assert!(get_avatar(&host, "/avatar/dave", &[]).await.text().contains("fill=\"#10529E\"/>"));
    assert!(get_avatar(&host, "/avatar/dave", &[]).await.text().contains(">\nD\n</text>"));
    let res = get_avatar(&host, "/avatar/dave", &[("if-modified-since", b"Thu, 01 Jan 2015 00:00:00 GMT")]).await;
    assert_eq!(res.status, 304);

    // Unchanged: nothing is written, the avatar included.
    let before = dump(&host);
    let report = assert_synced(&host, &call(&host).await);
    // The entries' marks vouch for them: not even the oversized one is looked at again.
    assert_eq!((report.get("avatars"), report["unchanged"].clone()), (None, json!(4)), "{report}");
    let after = dump(&host);
    let changed: Vec<&String> = after.iter().filter(|(k, v)| before.get(*k) != Some(*v)).map(|(k, _)| k).collect();
    assert!(changed.iter().all(|k| k.starts_with("sync-")), "an unchanged run wrote {changed:?}");

    // A new photo: a new ETag.
    let new_photo = b"\xff\xd8\xff\xe1 new";
    slapd
        .modify(&format!(
            "dn: uid=ann,{DEMO_PEOPLE_BASE}\nchangetype: modify\nreplace: jpegPhoto\njpegPhoto:: {}\n\n",
            BASE64.encode(new_photo)
        ))
        .expect("ldapmodify");
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report["avatars"]["written"], json!(1), "{report}");
    assert_eq!(user(&host, "ann")["avatarETag"], json!(upstream_etag(new_photo)));
    assert_eq!(get_avatar(&host, "/avatar/ann", &[]).await.body.as_slice(), new_photo);
    assert_consistent(&host);
}

#[tokio::test]
async fn a_login_takes_the_avatar_too() {
    let mut ldif = directory_root_ldif();
    ldif += &person("ann", Some(JPEG));
    let slapd = start_slapd(ldif, None);
    let host = sync_host(slapd.port(), &[]);
    let body = json!({"user": "ann", "password": USER_PASSWORD}).to_string().into_bytes();
    let res = send(&host, "POST", "/api/v1/login", &[("content-type", b"application/json")], body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(user(&host, "ann")["avatarETag"], json!(upstream_etag(JPEG)));
    assert_eq!(get_avatar(&host, "/avatar/ann", &[]).await.body.as_slice(), JPEG);
    // With ldap_sync_user_avatar off, nothing is taken.
    let host = sync_host(slapd.port(), &[("ldap_sync_user_avatar", "false"), ("ldap_background_sync_avatars", "true")]);
    let report = assert_synced(&host, &call(&host).await);
    assert_eq!(report.get("avatars"), None, "{report}");
    assert_eq!(user(&host, "ann").get("avatarETag"), None);
}
