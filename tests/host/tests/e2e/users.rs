//! `users.info` and `users.list` through the real component: what each
//! caller sees, the parameter and search errors, 401/403, `sort` and
//! `query` validation, a regex query, pagination, and that no secret
//! (bcrypt hash, login token hash, TOTP secret, backup code) ever leaves.

use ldap_sync_host::{Host, Response};
use serde_json::{Value, json};

use crate::common::*;

const NOT_LOGGED_IN: &str = "You must be logged in to do this.";
const ANN_DN: &str = "uid=ann,ou=people,dc=example,dc=org";

/// Seeds `admin1` (admin), `ann1` (user with password, TOTP and a backup
/// code, imported from LDAP; stored as raw text so its field order is
/// known) and `bob1` (user "Bob"), each with login token `tok-<id>` and its
/// `username:` index key.
fn seeded() -> Host {
    let host = host(&[]);
    let mut admin = user("admin1", Some("admin"), &["admin"], json!({"password": {"bcrypt": bcrypt_of_password("adminpw")}}));
    admin["name"] = json!("Admin");
    admin["emails"] = json!([{"address": "admin@example.org", "verified": true}]);
    put(&host, "user:admin1", &admin);
    let mut bob = user("bob1", Some("Bob"), &["user"], json!({}));
    bob["name"] = json!("bob jones");
    bob["status"] = json!("away");
    put(&host, "user:bob1", &bob);
    let ann = format!(
        concat!(
            r#"{{"_id":"ann1","createdAt":{{"$date":1764324000000}},"username":"ann","name":"Ann Smith","#,
            r#""emails":[{{"address":"ann@example.org","verified":true}}],"status":"offline","active":true,"roles":["user"],"#,
            r#""type":"user","ldap":true,"importIds":["{dn}"],"services":{{"password":{{"bcrypt":"{bcrypt}"}},"#,
            r#""resume":{{"loginTokens":[{{"when":{{"$date":{issued}}},"hashedToken":"{token}"}}]}},"#,
            r#""totp":{{"enabled":true,"secret":"{secret}","hashedBackup":["{backup}"]}}}},"lastLogin":{{"$date":1764324060000}}}}"#
        ),
        dn = ANN_DN,
        bcrypt = bcrypt_of_password("annpw"),
        issued = ldap_sync_host::fixture::ISSUED_AT_MS,
        token = hash_token("tok-ann1"),
        secret = TOTP_SECRET,
        backup = sha256_hex("ABCD2345"),
    );
    host.kv_set("user:ann1", ann.as_bytes()).expect("kv set");
    for (name, id) in [("admin", "admin1"), ("ann", "ann1"), ("bob", "bob1")] {
        put(&host, &format!("username:{name}"), &json!(id));
    }
    // The index the sync writes with every user that has importIds.
    put(&host, &format!("import-id:{ANN_DN}"), &json!("ann1"));
    host
}

/// Percent-encodes everything but letters and digits.
fn enc(text: &str) -> String {
    text.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

async fn get_as(host: &Host, caller: Option<&str>, path: &str) -> Response {
    let creds = caller.map(login).unwrap_or_default();
    send(host, "GET", path, &with(&creds, &[]), Vec::new()).await
}

async fn info(host: &Host, caller: &str, query: &str) -> Response {
    get_as(host, Some(caller), &format!("/api/v1/users.info?{query}")).await
}

async fn list(host: &Host, caller: &str, query: &str) -> Response {
    get_as(host, Some(caller), &format!("/api/v1/users.list?{query}")).await
}

fn usernames(res: &Response) -> Vec<String> {
    res.json()["users"].as_array().into_iter().flatten().map(|u| u["username"].as_str().unwrap_or_default().to_owned()).collect()
}

/// Every secret of the seeded users, and the words that would surround one.
fn assert_no_secrets(res: &Response) {
    let text = res.text();
    let backup = sha256_hex("ABCD2345");
    for needle in ["bcrypt", "$2b$", "hashedToken", "loginTokens", "resume", TOTP_SECRET, "hashedBackup", backup.as_str(), "\"secret\""] {
        assert!(!text.contains(needle), "{needle} leaked: {text}");
    }
    for token in ["tok-admin1", "tok-ann1", "tok-bob1"] {
        assert!(!text.contains(&hash_token(token)), "a token hash leaked: {text}");
    }
}

fn not_found() -> Value {
    json!({"success": false, "error": "User not found."})
}

fn invalid_query(error: &str) -> Value {
    json!({"success": false, "error": format!("{error} [error-invalid-query]"), "errorType": "error-invalid-query"})
}

#[tokio::test]
async fn info_shows_each_caller_what_upstream_shows() {
    let host = seeded();
    // Another user: the default fields, in document order.
    let res = info(&host, "bob1", "userId=ann1").await;
    assert_eq!(
        res.text(),
        r#"{"user":{"_id":"ann1","username":"ann","name":"Ann Smith","status":"offline","active":true,"type":"user","canViewAllInfo":false},"success":true}"#
    );
    assert_reply(&res, 200, res.json());
    // An admin (view-full-other-user-info): the full fields, dates as ISO strings, no services.
    let res = info(&host, "admin1", "username=ann").await;
    assert_eq!(
        res.text(),
        concat!(
            r#"{"user":{"_id":"ann1","createdAt":"2025-11-28T10:00:00.000Z","username":"ann","name":"Ann Smith","#,
            r#""emails":[{"address":"ann@example.org","verified":true}],"status":"offline","active":true,"roles":["user"],"#,
            r#""type":"user","importIds":["uid=ann,ou=people,dc=example,dc=org"],"lastLogin":"2025-11-28T10:01:00.000Z","#,
            r#""canViewAllInfo":true},"success":true}"#
        )
    );
    // Myself: services as flags only (upstream 7.x would show the secrets).
    let res = info(&host, "ann1", "username=ann").await;
    assert_eq!(
        res.text(),
        concat!(
            r#"{"user":{"_id":"ann1","createdAt":"2025-11-28T10:00:00.000Z","username":"ann","name":"Ann Smith","#,
            r#""emails":[{"address":"ann@example.org","verified":true}],"status":"offline","active":true,"roles":["user"],"#,
            r#""type":"user","importIds":["uid=ann,ou=people,dc=example,dc=org"],"#,
            r#""services":{"totp":{"enabled":true},"password":{"exists":true}},"lastLogin":"2025-11-28T10:01:00.000Z","#,
            r#""canViewAllInfo":true},"success":true}"#
        )
    );
    assert_no_secrets(&res);
    // An importId search needs view-full-other-user-info (or being the user).
    let by_import = format!("importId={}", enc(ANN_DN));
    assert_eq!(info(&host, "admin1", &by_import).await.json()["user"]["_id"], json!("ann1"));
    assert_eq!(info(&host, "ann1", &by_import).await.json()["user"]["canViewAllInfo"], json!(true));
    assert_reply(&info(&host, "bob1", &by_import).await, 400, not_found());
}

#[tokio::test]
async fn info_errors() {
    let host = seeded();
    let not_logged_in = json!({"success": false, "error": NOT_LOGGED_IN, "status": "error", "message": NOT_LOGGED_IN});
    assert_reply(&get_as(&host, None, "/api/v1/users.info?userId=ann1").await, 401, not_logged_in.clone());
    let wrong = [("x-user-id", &b"ann1"[..]), ("x-auth-token", &b"tok-bob1"[..])];
    assert_reply(&send(&host, "GET", "/api/v1/users.info?userId=ann1", &wrong, Vec::new()).await, 401, not_logged_in);

    assert_reply(&info(&host, "bob1", "userId=ghost").await, 400, not_found());
    // Usernames match exactly; the index is only lower-case.
    assert_reply(&info(&host, "ann1", "username=bob").await, 400, not_found());
    assert_eq!(info(&host, "ann1", "username=Bob").await.json()["user"]["_id"], json!("bob1"));
    assert_reply(&info(&host, "bob1", "userId=").await, 400, json!({"success": false, "error": "Invalid search query."}));
    let missing = "must have required property 'userId'\n must have required property 'username'\n must have required property 'importId'\n must match a schema in anyOf";
    let params = json!({"success": false, "error": format!("{missing} [invalid-params]"), "errorType": "invalid-params"});
    assert_reply(&info(&host, "bob1", "id=ann1").await, 400, params.clone());
    assert_reply(&info(&host, "bob1", "").await, 400, params);
    let res = info(&host, "bob1", "userId=ann1&username=ann").await;
    assert_eq!((res.status, res.json()["errorType"].clone()), (400, json!("invalid-params")));
    // Accepted and ignored.
    assert_eq!(info(&host, "bob1", "userId=ann1&includeUserRooms=true&fields=%7B%7D").await.status, 200);
}

#[tokio::test]
async fn list_pages_and_projects() {
    let host = seeded();
    // Default order is {"username": 1}, binary: "Bob" first.
    let res = list(&host, "bob1", "count=2").await;
    assert_eq!(
        res.text(),
        concat!(
            r#"{"users":[{"_id":"bob1","type":"user","active":true,"username":"Bob","name":"bob jones","status":"away","nameInsensitive":"bob jones"},"#,
            r#"{"_id":"admin1","type":"user","active":true,"username":"admin","name":"Admin","nameInsensitive":"admin"}],"#,
            r#""count":2,"offset":0,"total":3,"success":true}"#
        )
    );
    assert_reply(&res, 200, res.json());
    let res = list(&host, "bob1", "count=2&offset=2").await;
    let ann = json!({"_id": "ann1", "username": "ann", "name": "Ann Smith", "status": "offline", "active": true, "type": "user",
                     "nameInsensitive": "ann smith"});
    assert_reply(&res, 200, json!({"users": [ann], "count": 1, "offset": 2, "total": 3, "success": true}));
    // view-full-other-user-info adds emails, roles and lastLogin.
    let res = list(&host, "admin1", "count=1&offset=2").await;
    let ann = json!({"_id": "ann1", "username": "ann", "name": "Ann Smith", "emails": [{"address": "ann@example.org", "verified": true}],
                     "status": "offline", "active": true, "roles": ["user"], "type": "user", "lastLogin": "2025-11-28T10:01:00.000Z",
                     "nameInsensitive": "ann smith"});
    assert_reply(&res, 200, json!({"users": [ann], "count": 1, "offset": 2, "total": 3, "success": true}));
    // count is capped at 100, 0 means the default; a bad number is a 400.
    assert_eq!(usernames(&list(&host, "bob1", "count=0").await).len(), 3);
    assert_eq!(list(&host, "bob1", "count=1000").await.json()["count"], json!(3));
    let res = list(&host, "bob1", "offset=-1").await;
    assert_reply(
        &res,
        400,
        json!({"success": false, "error": "invalid value \"-1\" for parameter offset: expected a non-negative integer"}),
    );
    // Sort: name case-insensitively, descending.
    assert_eq!(usernames(&list(&host, "bob1", &format!("sort={}", enc(r#"{"name":-1}"#))).await), ["Bob", "ann", "admin"]);
}

#[tokio::test]
async fn list_needs_a_login_and_view_d_room() {
    let host = seeded();
    let not_logged_in = json!({"success": false, "error": NOT_LOGGED_IN, "status": "error", "message": NOT_LOGGED_IN});
    assert_reply(&get_as(&host, None, "/api/v1/users.list").await, 401, not_logged_in);
    put(&host, "permission:view-d-room", &json!({"_id": "view-d-room", "roles": ["nobody"]}));
    let forbidden = json!({"success": false, "error": "User does not have the permissions required for this action [error-unauthorized]"});
    assert_reply(&list(&host, "bob1", "").await, 403, forbidden.clone());
    assert_reply(&list(&host, "admin1", "").await, 403, forbidden);
}

#[tokio::test]
async fn list_sort_and_query_are_validated() {
    let host = seeded();
    let sort = r#"{"username":"up"}"#;
    let res = list(&host, "bob1", &format!("sort={}", enc(sort))).await;
    assert_reply(
        &res,
        400,
        json!({"success": false, "error": format!("Invalid sort parameter provided: \"{sort}\" [error-invalid-sort]"),
               "errorType": "error-invalid-sort", "details": {"helperMethod": "parseJsonQuery"}}),
    );
    let res = list(&host, "bob1", &format!("query={}", enc(r#"{"active":{"$ne":false}}"#))).await;
    assert_reply(&res, 400, invalid_query("Invalid attribute: active.$ne"));
    let res = list(&host, "bob1", &format!("query={}", enc(r#"{"$or":[{"services.password.bcrypt":{"$regex":"^x"}}]}"#))).await;
    assert_reply(&res, 400, invalid_query("Invalid attribute: services.password.bcrypt"));
    let res = list(&host, "bob1", &format!("query={}", enc(r#"{"username":{"$regex":"a.+"}}"#))).await;
    assert_reply(&res, 400, invalid_query("Unsupported regular expression for username: a.+"));
    let res = list(&host, "bob1", "query=%7Bnope").await;
    assert_reply(
        &res,
        400,
        json!({"success": false, "error": "Invalid query parameter provided: \"{nope\" [error-invalid-query]",
               "errorType": "error-invalid-query", "details": {"helperMethod": "parseJsonQuery"}}),
    );
    // A condition on a hidden field is dropped, not evaluated: no oracle.
    let res = list(&host, "bob1", &format!("query={}", enc(r#"{"services.totp.secret":"nope"}"#))).await;
    assert_eq!(res.json()["total"], json!(3));
}

#[tokio::test]
async fn list_evaluates_a_regex_query() {
    let host = seeded();
    let query = enc(r#"{"username":{"$regex":"^A","$options":"i"}}"#);
    let res = list(&host, "bob1", &format!("query={query}")).await;
    assert_eq!((res.status, usernames(&res), res.json()["total"].clone()), (200, vec!["admin".to_owned(), "ann".to_owned()], json!(2)));
    let query = enc(r#"{"$or":[{"name":{"$regex":"JONES$","$options":"i"}},{"username":"ann"}]}"#);
    assert_eq!(usernames(&list(&host, "bob1", &format!("query={query}")).await), ["Bob", "ann"]);
    let query = enc(r#"{"emails.address":{"$regex":"@example\\.org$"}}"#);
    assert_eq!(usernames(&list(&host, "admin1", &format!("query={query}")).await), ["admin", "ann"]);
}

#[tokio::test]
async fn no_secret_ever_leaves() {
    let host = seeded();
    for caller in ["admin1", "ann1", "bob1"] {
        for query in ["userId=ann1", "username=ann", "userId=admin1", "userId=bob1", &format!("importId={}", enc(ANN_DN))] {
            assert_no_secrets(&info(&host, caller, query).await);
        }
        assert_no_secrets(&list(&host, caller, "count=100").await);
        assert_no_secrets(&list(&host, caller, &format!("query={}", enc(r#"{"username":"ann"}"#))).await);
    }
}
