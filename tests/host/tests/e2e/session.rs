//! Bootstrap admin, login (local and LDAP), logout, me, TOTP enrolment
//! through method.call, and the LDAP test routes, through the real component.

use std::time::Duration;

use ldap_sync_host::demo::{DEMO_USER_PASSWORD, demo_variables, start_demo};
use ldap_sync_host::{Host, Response};
use serde_json::{Value, json};

use crate::common::*;

const ADMIN: [(&str, &str); 3] = [("admin_username", "root"), ("admin_pass", "rootpw"), ("admin_email", "root@example.org")];

fn unauthorized() -> Value {
    json!({"success": false, "error": "Unauthorized", "status": "error", "message": "Unauthorized"})
}

fn admin_host(extra: &[(&str, &str)]) -> Host {
    let mut vars: Vec<(&str, &str)> = ADMIN.to_vec();
    vars.push(("api_enable_rate_limiter", "false"));
    vars.extend_from_slice(extra);
    host(&vars)
}

async fn post_json(host: &Host, path: &str, headers: &[(&str, &[u8])], body: Value) -> Response {
    send(host, "POST", path, headers, body.to_string().into_bytes()).await
}

/// Logs in and returns (userId, authToken).
async fn login_ok(host: &Host, body: Value) -> (String, String) {
    let res = post_json(host, "/api/v1/login", &[], body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let json = res.json();
    (json["data"]["userId"].as_str().expect("id").to_owned(), json["data"]["authToken"].as_str().expect("token").to_owned())
}

fn auth_headers(id: &str, token: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![("x-user-id", id.as_bytes().to_vec()), ("x-auth-token", token.as_bytes().to_vec())]
}

/// Calls a Meteor method through method.call and returns the parsed inner message.
async fn method(host: &Host, creds: &[(&'static str, Vec<u8>)], name: &str, params: Value) -> Value {
    let message = json!({"msg": "method", "id": "7", "method": name, "params": params}).to_string();
    let res = post_json(host, &format!("/api/v1/method.call/{name}"), &with(creds, &[]), json!({"message": message})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["success"], json!(true));
    serde_json::from_str(res.json()["message"].as_str().expect("message")).expect("inner JSON")
}

fn secrets_absent(res: &Response) {
    let text = res.text();
    for needle in ["bcrypt", "hashedToken", "hashedBackup", "tempSecret", "\"secret\""] {
        assert!(!text.contains(needle), "{needle} leaked: {text}");
    }
}

#[tokio::test]
async fn bootstrap_admin_logs_in_and_calls_sync_now() {
    let host = admin_host(&[]);
    let (id, token) = login_ok(&host, json!({"user": "root", "password": "rootpw"})).await;
    assert_eq!(token.len(), 43);
    let res = post_json(&host, "/api/v1/login", &[], json!({"username": "root", "password": "rootpw"})).await;
    let body = res.json();
    assert_eq!(body["status"], json!("success"));
    assert_eq!(body["success"], json!(true));
    assert_eq!(
        body["data"]["me"],
        json!({
            "_id": id, "name": "Administrator", "username": "root",
            "emails": [{"address": "root@example.org", "verified": true}], "roles": ["admin", "user"], "active": true,
            "status": "offline", "_updatedAt": "2027-01-15T08:00:00.000Z", "email": "root@example.org",
            "settings": {"profile": {}, "preferences": {}}, "avatarUrl": "http://localhost/avatar/root",
            "isOAuthUser": false, "services": {"password": {"exists": true}}
        })
    );
    secrets_absent(&res);
    // Only hashes of tokens are stored, each session under its own key; the user document is not rewritten.
    let stored = get(&host, &format!("user:{id}")).expect("admin");
    assert_eq!(stored["services"].get("resume"), None);
    let session = get(&host, &format!("login-token:{}", hash_token(&token))).expect("session");
    assert_eq!(session, json!({"userId": id, "when": {"$date": (T0 as i64) * 1000}}));
    assert_eq!(counter(&host, &format!("login-token-seq:{id}")), Some(2));
    assert!(!dump(&host).values().any(|v| String::from_utf8_lossy(v).contains(&token)));
    // A digest password works too; the gate accepts the real token.
    login_ok(&host, json!({"user": {"username": "root"}, "password": {"digest": sha256_hex("rootpw"), "algorithm": "sha-256"}})).await;
    let creds = auth_headers(&id, &token);
    let res = sync_now(&host, &with(&creds, &[("x-2fa-code", &sha256_hex("rootpw"))])).await;
    assert_reply(&res, 400, json!({"success": false, "error": "LDAP_disabled"}));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let host = admin_host(&[]);
    for body in [
        json!({"user": "root", "password": "nope"}),
        json!({"user": "ghost", "password": "rootpw"}),
        json!({"user": "root@example.org", "password": "nope"}),
        json!({"user": "root", "password": {"digest": sha256_hex("nope"), "algorithm": "sha-256"}}),
    ] {
        assert_reply(&post_json(&host, "/api/v1/login", &[], body).await, 401, unauthorized());
    }
    login_ok(&host, json!({"user": "root@example.org", "password": "rootpw"})).await;
}

#[tokio::test]
async fn malformed_login_bodies_are_clean_400s() {
    let host = admin_host(&[]);
    let res = send(&host, "POST", "/api/v1/login", &[], b"{not json".to_vec()).await;
    assert_eq!(res.status, 400);
    assert!(res.json()["error"].as_str().expect("error").starts_with("request body is not valid JSON"), "{}", res.text());
    assert_reply(
        &post_json(&host, "/api/v1/login", &[], json!(["root"])).await,
        400,
        json!({"success": false, "error": "request body must be a JSON object"}),
    );
    assert_reply(
        &post_json(&host, "/api/v1/login", &[], json!({"user": "root"})).await,
        400,
        json!({"success": false, "error": "must have required property 'password' [invalid-params]", "errorType": "invalid-params"}),
    );
    assert_reply(
        &post_json(&host, "/api/v1/login", &[], json!({"password": "x"})).await,
        400,
        json!({"success": false, "error": "must have required property 'user' [invalid-params]", "errorType": "invalid-params"}),
    );
    assert_reply(
        &post_json(&host, "/api/v1/login", &[], json!({"user": "root", "password": "x".repeat(300)})).await,
        400,
        json!({"success": false, "error": "password is longer than 256 characters"}),
    );
    let huge = json!({"user": "root", "password": "rootpw", "pad": "x".repeat(100_000)});
    assert_reply(
        &post_json(&host, "/api/v1/login", &[], huge).await,
        400,
        json!({"success": false, "error": "request body is larger than 65536 bytes"}),
    );
}

#[tokio::test]
async fn logout_removes_only_the_presented_token_and_me_hides_secrets() {
    let host = admin_host(&[]);
    let (id, first) = login_ok(&host, json!({"user": "root", "password": "rootpw"})).await;
    let (_, second) = login_ok(&host, json!({"user": "root", "password": "rootpw"})).await;
    let creds = auth_headers(&id, &first);
    let me = send(&host, "GET", "/api/v1/me", &with(&creds, &[]), Vec::new()).await;
    assert_eq!((me.status, me.json()["username"].clone(), me.json()["success"].clone()), (200, json!("root"), json!(true)));
    secrets_absent(&me);
    let res = post_json(&host, "/api/v1/logout", &with(&creds, &[]), json!({})).await;
    assert_reply(&res, 200, json!({"status": "success", "data": {"message": "You've been logged out!"}}));
    let after = send(&host, "GET", "/api/v1/me", &with(&creds, &[]), Vec::new()).await;
    assert_eq!(after.status, 401);
    let other = auth_headers(&id, &second);
    assert_eq!(send(&host, "GET", "/api/v1/me", &with(&other, &[]), Vec::new()).await.status, 200);
    assert_eq!(post_json(&host, "/api/v1/logout", &[], json!({})).await.status, 401);
}

#[tokio::test]
async fn concurrent_first_requests_create_one_admin() {
    let host = admin_host(&[]);
    let body = json!({"user": "root", "password": "rootpw"});
    let (a, b) = tokio::join!(post_json(&host, "/api/v1/login", &[], body.clone()), post_json(&host, "/api/v1/login", &[], body));
    assert_eq!((a.status, b.status), (200, 200));
    let users: Vec<String> = host.kv_keys().expect("keys").into_iter().filter(|k| k.starts_with("user:")).collect();
    assert_eq!(users.len(), 1, "{users:?}");
}

#[tokio::test]
async fn totp_enrolment_then_sync_now_with_a_real_code_and_backup_codes() {
    let (_slapd, host) = demo_host(&[]);
    let (id, token) = login_ok(&host, json!({"user": "root", "password": "rootpw"})).await;
    let (_, other_token) = login_ok(&host, json!({"user": "root", "password": "rootpw"})).await;
    let creds = auth_headers(&id, &token);

    // A token alone does not enrol a factor: 2fa:enable wants the second
    // factor the user has now (the password's digest, without TOTP).
    let required = method(&host, &creds, "2fa:enable", json!([])).await;
    assert_eq!(
        required,
        json!({"msg": "result", "id": "7", "error": {"isClientSafe": true, "error": "totp-required", "reason": "TOTP Required",
        "details": {"method": "password", "codeGenerated": false, "availableMethods": []},
        "message": "TOTP Required [totp-required]", "errorType": "Meteor.Error"}})
    );
    let mut with_password = creds.clone();
    with_password.push(("x-2fa-code", sha256_hex("rootpw").into_bytes()));
    let enabled = method(&host, &with_password, "2fa:enable", json!([])).await;
    let secret = enabled["result"]["secret"].as_str().expect("secret").to_owned();
    assert_eq!(enabled["result"]["url"], json!(format!("otpauth://totp/Rocket.Chat%3Aroot?secret={secret}")));
    let wrong = method(&host, &creds, "2fa:validateTempToken", json!(["000000"])).await;
    assert_eq!(
        wrong,
        json!({"msg": "result", "id": "7", "error": {"isClientSafe": true, "error": "invalid-totp",
        "message": "[invalid-totp]", "errorType": "Meteor.Error"}})
    );
    let t = T0 + 30;
    host.set_time(std::time::UNIX_EPOCH + Duration::from_secs(t));
    let valid = method(&host, &creds, "2fa:validateTempToken", json!([totp_at_secret(&secret, t)])).await;
    let codes: Vec<String> = serde_json::from_value(valid["result"]["codes"].clone()).expect("codes");
    assert_eq!(codes.len(), 12);
    // Other sessions were logged out; this one stays.
    let other = auth_headers(&id, &other_token);
    assert_eq!(send(&host, "GET", "/api/v1/me", &with(&other, &[]), Vec::new()).await.status, 401);
    assert_eq!(method(&host, &creds, "2fa:checkCodesRemaining", json!([])).await["result"], json!({"remaining": 12}));
    // Enabled: enabling again is refused, whatever the proof.
    let again = method(&host, &with_password, "2fa:enable", json!([])).await;
    assert_eq!(again["error"]["error"], json!("totp-invalid"), "the password no longer proves anything");

    // ldap.syncNow now wants the TOTP code, not the password.
    let res = sync_now(&host, &with(&creds, &[("x-2fa-code", &sha256_hex("rootpw"))])).await;
    assert_reply(
        &res,
        400,
        json!({"success": false, "error": "TOTP Invalid [totp-invalid]", "errorType": "totp-invalid",
        "details": {"method": "totp", "codeGenerated": false, "availableMethods": ["totp"]}}),
    );
    host.advance(Duration::from_secs(30));
    let code = totp_at_secret(&secret, t + 30);
    let res = sync_now(&host, &with(&creds, &[("x-2fa-code", &code)])).await;
    assert_eq!((res.status, res.text()), (200, r#"{"message":"Sync_in_progress","success":true}"#.to_owned()));
    assert!(get(&host, "username:alice").is_some(), "the sync ran");

    // Login now needs the code; a backup code works once.
    assert_reply(
        &post_json(&host, "/api/v1/login", &[], json!({"user": "root", "password": "rootpw"})).await,
        401,
        json!({"success": false, "error": "totp-required", "status": "error",
               "details": {"method": "totp", "codeGenerated": false, "availableMethods": ["totp"]}, "message": "TOTP Required"}),
    );
    login_ok(&host, json!({"user": "root", "password": "rootpw", "code": codes[0]})).await;
    assert_reply(
        &post_json(&host, "/api/v1/login", &[], json!({"user": "root", "password": "rootpw", "code": codes[0]})).await,
        401,
        json!({"success": false, "error": "totp-invalid", "status": "error",
               "details": {"method": "totp", "codeGenerated": false, "availableMethods": ["totp"]}, "message": "TOTP Invalid"}),
    );
    assert_eq!(method(&host, &creds, "2fa:checkCodesRemaining", json!([])).await["result"], json!({"remaining": 11}));
    let res = sync_now(&host, &with(&creds, &[("x-2fa-code", &codes[1])])).await;
    assert_eq!(res.status, 200);
    let res = sync_now(&host, &with(&creds, &[("x-2fa-code", &codes[1])])).await;
    assert_eq!(res.json()["errorType"], json!("totp-invalid"));

    // Disable with a fresh code.
    host.advance(Duration::from_secs(30));
    let off = method(&host, &creds, "2fa:disable", json!([totp_at_secret(&secret, t + 60)])).await;
    assert_eq!(off, json!({"msg": "result", "id": "7", "result": true}));
    let unknown = method(&host, &creds, "nope:method", json!([])).await;
    assert_eq!(unknown["error"]["error"], json!(404));
}

#[tokio::test]
async fn method_call_envelope_errors() {
    let host = admin_host(&[]);
    let (id, token) = login_ok(&host, json!({"user": "root", "password": "rootpw"})).await;
    let creds = auth_headers(&id, &token);
    let h = with(&creds, &[]);
    let path = "/api/v1/method.call/2fa:enable";
    assert_eq!(post_json(&host, path, &[], json!({"message": "{}"})).await.status, 401);
    assert_reply(
        &post_json(&host, path, &h, json!({})).await,
        400,
        json!({"success": false, "error": "must have required property 'message' [invalid-params]", "errorType": "invalid-params"}),
    );
    assert_reply(
        &post_json(&host, path, &h, json!({"message": "{}", "x": 1})).await,
        400,
        json!({"success": false, "error": "must NOT have additional properties [invalid-params]", "errorType": "invalid-params"}),
    );
    assert_reply(
        &post_json(&host, path, &h, json!({"message": "{\"msg\":\"method\"}"})).await,
        400,
        json!({"success": false, "error": "Invalid method call"}),
    );
    let res = post_json(&host, path, &h, json!({"message": "not json"})).await;
    assert_eq!((res.status, res.json()["success"].clone()), (400, json!(false)));
    let res = send(&host, "POST", path, &h, vec![b'{'; 70_000]).await;
    assert_reply(&res, 400, json!({"success": false, "error": "request body is larger than 65536 bytes"}));
}

/// The demo directory and a host pointed at it, with the bootstrap admin
/// and the rate limiter off (these tests log in many times).
fn demo_host(extra: &[(&str, &str)]) -> (ldap_sync_host::slapd::Slapd, Host) {
    let slapd = start_demo(None).expect("demo directory");
    let host = demo_host_for(slapd.port(), extra);
    (slapd, host)
}

fn demo_host_for(port: u16, extra: &[(&str, &str)]) -> Host {
    let vars: Vec<(&str, String)> = demo_variables(port);
    let mut pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.extend(ADMIN);
    pairs.push(("api_enable_rate_limiter", "false"));
    pairs.extend_from_slice(extra);
    host(&pairs)
}

fn totp_at_secret(secret: &str, t: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.into()).to_bytes().expect("base32");
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 0, 30, bytes).generate(t)
}

#[tokio::test]
async fn ldap_users_log_in_with_their_directory_password() {
    let (slapd, host) = demo_host(&[]);
    let (id, _) = login_ok(&host, json!({"user": "alice", "password": DEMO_USER_PASSWORD})).await;
    let doc = get(&host, &format!("user:{id}")).expect("created from the directory");
    assert_eq!((doc["username"].clone(), doc["ldap"].clone()), (json!("alice"), json!(true)));
    assert_eq!(doc["importIds"], json!(["uid=alice,ou=people,dc=example,dc=org"]));
    assert!(doc["services"].get("password").is_none(), "no local password for a directory user");
    // The LDAP form logs in the same user.
    let (same, _) = login_ok(&host, json!({"ldap": true, "username": "alice", "ldapPass": DEMO_USER_PASSWORD, "ldapOptions": {}})).await;
    assert_eq!(same, id);
    assert_reply(&post_json(&host, "/api/v1/login", &[], json!({"user": "alice", "password": "wrong"})).await, 401, unauthorized());
    assert_reply(&post_json(&host, "/api/v1/login", &[], json!({"user": "nobody", "password": "wrong"})).await, 401, unauthorized());
    // A changed directory password: the old one stops working, the new one works.
    slapd
        .modify("dn: uid=alice,ou=people,dc=example,dc=org\nchangetype: modify\nreplace: userPassword\nuserPassword: n3w-secret\n")
        .expect("ldapmodify");
    assert_reply(
        &post_json(&host, "/api/v1/login", &[], json!({"user": "alice", "password": DEMO_USER_PASSWORD})).await,
        401,
        unauthorized(),
    );
    let (again, _) = login_ok(&host, json!({"user": "alice", "password": "n3w-secret"})).await;
    assert_eq!(again, id);
}

#[tokio::test]
async fn a_directory_entry_with_the_local_admins_name_does_not_lock_the_admin_out() {
    let (slapd, host) = demo_host(&[]);
    slapd
        .modify(
            "dn: uid=root,ou=people,dc=example,dc=org\nchangetype: add\nobjectClass: inetOrgPerson\nuid: root\ncn: Root\nsn: Root\n\
             mail: root@directory.example\nuserPassword: dir-pw\n\n",
        )
        .expect("ldapmodify");
    // The directory refuses the local password; the local admin's own password still opens the local account.
    let (id, _) = login_ok(&host, json!({"user": "root", "password": "rootpw"})).await;
    let doc = get(&host, &format!("user:{id}")).expect("the admin");
    assert_eq!((doc["username"].clone(), doc.get("ldap").cloned()), (json!("root"), None), "the local admin, not the directory's root");
    // The directory's password is the directory user's, whose username is taken here: refused.
    assert_reply(&post_json(&host, "/api/v1/login", &[], json!({"user": "root", "password": "dir-pw"})).await, 401, unauthorized());
    // A directory user without a local namesake still gets nothing from a wrong password.
    assert_reply(&post_json(&host, "/api/v1/login", &[], json!({"user": "alice", "password": "rootpw"})).await, 401, unauthorized());
}

#[tokio::test]
async fn ldap_test_routes() {
    let (slapd, host) = demo_host(&[]);
    let (id, token) = login_ok(&host, json!({"user": "root", "password": "rootpw"})).await;
    let admin = auth_headers(&id, &token);
    let h = with(&admin, &[]);
    assert_reply(
        &post_json(&host, "/api/v1/ldap.testConnection", &h, json!({})).await,
        200,
        json!({"message": "LDAP_Connection_successful", "success": true}),
    );
    assert_reply(
        &post_json(&host, "/api/v1/ldap.testSearch", &h, json!({"username": "carol"})).await,
        200,
        json!({"message": "LDAP_User_Found", "success": true}),
    );
    assert_reply(
        &post_json(&host, "/api/v1/ldap.testSearch", &h, json!({"username": "zed"})).await,
        400,
        json!({"success": false, "error": "User not found"}),
    );
    assert_reply(
        &post_json(&host, "/api/v1/ldap.testSearch", &h, json!({})).await,
        400,
        json!({"success": false, "error": "must have required property 'username' [invalid-params]", "errorType": "invalid-params"}),
    );
    assert_eq!(post_json(&host, "/api/v1/ldap.testConnection", &[], json!({})).await.status, 401);

    // A directory user is not an admin: 403.
    let (uid, utoken) = login_ok(&host, json!({"user": "bob", "password": DEMO_USER_PASSWORD})).await;
    let user = auth_headers(&uid, &utoken);
    assert_reply(
        &post_json(&host, "/api/v1/ldap.testConnection", &with(&user, &[]), json!({})).await,
        403,
        json!({"success": false, "error": "User does not have the permissions required for this action [error-unauthorized]"}),
    );

    // A wrong service password is a clear error without the password.
    let host = demo_host_for(slapd.port(), &[("ldap_authentication_password", "not-the-pw")]);
    let (id, token) = login_ok(&host, json!({"user": "root", "password": "rootpw"})).await;
    let admin = auth_headers(&id, &token);
    let res = post_json(&host, "/api/v1/ldap.testConnection", &with(&admin, &[]), json!({})).await;
    assert_reply(
        &res,
        400,
        json!({"error": "LDAP_Connection_failed_reason", "errorType": "error-ldap-connection-failed",
        "details": {"reason": "bind failed: invalidCredentials (49)"}, "success": false}),
    );
    assert!(!res.text().contains("not-the-pw"));
}
