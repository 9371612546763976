use std::cell::RefCell;

use serde_json::json;

use super::query::{Pattern, values_at};
use super::*;
use crate::auth::token::hash_token;
use crate::settings::VariableSource;
use crate::store::memory::MemoryStore;
use crate::store::schema::Date;

struct NoVariables;

impl VariableSource for NoVariables {
    fn get(&self, _name: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// A [`MemoryStore`] that records the size of every `get_many` and counts `keys` calls.
#[derive(Default)]
struct CountingStore {
    inner: MemoryStore,
    reads: RefCell<Vec<usize>>,
    listings: RefCell<usize>,
}

impl KvStore for CountingStore {
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.reads.borrow_mut().push(keys.len());
        self.inner.get_many(keys)
    }
    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        self.inner.set_many(pairs)
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.inner.delete_many(keys)
    }
    fn keys(&self) -> Result<Vec<String>, StoreError> {
        *self.listings.borrow_mut() += 1;
        self.inner.keys()
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.inner.increment(key, delta)
    }
}

const BCRYPT: &str = "$2b$10$abcdefghijklmnopqrstuv";
const TOTP_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// `admin` (admin), `ann` (user, TOTP, importId), `Bob` (user), `cy` (user,
/// no name), `noname` (no username, no name: outside the default query).
fn seeded() -> CountingStore {
    let store = CountingStore::default();
    // Issued a day before the clock: login tokens expire after 90 days.
    let resume =
        |id: &str| json!({"loginTokens": [{"when": {"$date": 1_699_913_600_000i64}, "hashedToken": hash_token(&format!("tok-{id}"))}]});
    let docs = [
        json!({"_id": "admin1", "createdAt": {"$date": 0}, "username": "admin", "name": "Admin",
               "emails": [{"address": "admin@example.org", "verified": true}], "status": "online", "active": true,
               "roles": ["admin"], "type": "user", "lastLogin": {"$date": 1_000},
               "services": {"password": {"bcrypt": BCRYPT}, "resume": resume("admin1")}}),
        json!({"_id": "ann1", "createdAt": {"$date": 0}, "username": "ann", "name": "Ann Smith",
               "emails": [{"address": "ann@example.org", "verified": false}], "status": "offline", "active": true,
               "roles": ["user"], "type": "user", "ldap": true, "importIds": ["uid=ann,dc=example"],
               "services": {"password": {"bcrypt": BCRYPT}, "resume": resume("ann1"),
                            "totp": {"enabled": true, "secret": TOTP_SECRET, "hashedBackup": ["b4ck"]}},
               "bio": "hi", "nickname": "annie"}),
        json!({"_id": "bob1", "username": "Bob", "name": "bob jones", "emails": [{"address": "bob@example.org", "verified": true}],
               "status": "away", "active": false, "roles": ["user"], "type": "bot", "services": {"resume": resume("bob1")}}),
        json!({"_id": "cy1", "username": "cy", "active": true, "roles": ["user"], "type": "user", "services": {"resume": resume("cy1")}}),
        json!({"_id": "noname1", "active": true, "roles": ["user"], "services": {}}),
    ];
    let mut pairs = Vec::new();
    for doc in docs {
        let id = doc["_id"].as_str().expect("fixture ids are strings").to_owned();
        if let Some(username) = doc["username"].as_str() {
            pairs.push((format!("username:{}", username.to_lowercase()), json!(id).to_string().into_bytes()));
        }
        // The index the sync writes with every user that has importIds.
        for import_id in doc["importIds"].as_array().into_iter().flatten().filter_map(|v| v.as_str()) {
            pairs.push((format!("import-id:{import_id}"), json!(id).to_string().into_bytes()));
        }
        pairs.push((format!("user:{id}"), doc.to_string().into_bytes()));
    }
    store.set_many(pairs).expect("memory store");
    store
}

fn put(store: &CountingStore, key: &str, value: serde_json::Value) {
    store.set_many(vec![(key.to_owned(), value.to_string().into_bytes())]).expect("memory store");
}

fn call(store: &CountingStore, handler: fn(&Request, &Env<'_>) -> Response, path: &str, caller: Option<&str>) -> Response {
    let clock = || Date { millis: 1_700_000_000_000 };
    let random = |buf: &mut [u8]| buf.fill(7);
    // The limiter has its own test; here it would refuse the tenth call of a test.
    let env = Env { store, variables: &NoLimiter, clock: &clock, random: &random };
    let headers: Vec<(String, Vec<u8>)> = match caller {
        Some(id) => vec![("x-user-id".into(), id.as_bytes().to_vec()), ("x-auth-token".into(), format!("tok-{id}").into_bytes())],
        None => Vec::new(),
    };
    handler(&Request::new("GET", path, headers), &env)
}

/// Defaults, but no rate limiter.
struct NoLimiter;

impl VariableSource for NoLimiter {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok((name == "api_enable_rate_limiter").then(|| "false".to_owned()))
    }
}

#[test]
fn both_routes_are_rate_limited() {
    let store = seeded();
    let clock = || Date { millis: 1_700_000_000_000 };
    let random = |buf: &mut [u8]| buf.fill(7);
    let env = Env { store: &store, variables: &NoVariables, clock: &clock, random: &random };
    let headers = || vec![("x-user-id".to_owned(), b"ann1".to_vec()), ("x-auth-token".to_owned(), b"tok-ann1".to_vec())];
    for n in 1..=10 {
        let r = list(&Request::new("GET", "/api/v1/users.list", headers()), &env);
        assert_eq!((r.status, r.headers[1].clone()), (200, ("X-RateLimit-Remaining", (10 - n).to_string())));
    }
    let r = list(&Request::new("GET", "/api/v1/users.list", headers()), &env);
    assert_eq!(r.status, 429);
    let r = info(&Request::new("GET", "/api/v1/users.info?userId=ann1", headers()), &env);
    assert_eq!((r.status, r.headers[0].clone()), (200, ("X-RateLimit-Limit", "10".to_owned())), "a limit per route");
}

fn info_of(store: &CountingStore, query: &str, caller: &str) -> Response {
    call(store, info, &format!("/api/v1/users.info?{query}"), Some(caller))
}

fn list_of(store: &CountingStore, query: &str, caller: &str) -> Response {
    call(store, list, &format!("/api/v1/users.list?{query}"), Some(caller))
}

fn usernames(r: &Response) -> Vec<String> {
    r.body["users"].as_array().into_iter().flatten().map(|u| u["username"].as_str().unwrap_or("-").to_owned()).collect()
}

fn assert_no_secrets(r: &Response) {
    let text = r.body.to_string();
    for secret in [BCRYPT, TOTP_SECRET, "hashedToken", "loginTokens", "hashedBackup", "b4ck", "bcrypt", "resume"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

fn invalid_query(error: &str) -> serde_json::Value {
    json!({"success": false, "error": format!("{error} [error-invalid-query]"), "errorType": "error-invalid-query"})
}

#[test]
fn info_of_another_user_shows_the_default_fields() {
    let store = seeded();
    let r = info_of(&store, "userId=ann1", "cy1");
    let user = json!({"_id": "ann1", "username": "ann", "name": "Ann Smith", "status": "offline", "active": true,
                      "type": "user", "bio": "hi", "nickname": "annie", "canViewAllInfo": false});
    assert_eq!((r.status, r.body), (200, json!({"user": user, "success": true})));
}

#[test]
fn info_for_an_admin_adds_the_full_fields_but_never_services() {
    let store = seeded();
    let r = info_of(&store, "username=ann", "admin1");
    let user = json!({"_id": "ann1", "createdAt": "1970-01-01T00:00:00.000Z", "username": "ann", "name": "Ann Smith",
                      "emails": [{"address": "ann@example.org", "verified": false}], "status": "offline", "active": true,
                      "roles": ["user"], "type": "user", "importIds": ["uid=ann,dc=example"], "bio": "hi", "nickname": "annie",
                      "canViewAllInfo": true});
    assert_eq!((r.status, r.body.clone()), (200, json!({"user": user, "success": true})));
    assert_no_secrets(&r);
}

#[test]
fn info_about_myself_shows_services_as_flags_only() {
    let store = seeded();
    let r = info_of(&store, "userId=ann1", "ann1");
    assert_eq!(r.status, 200);
    assert_eq!(r.body["user"]["services"], json!({"totp": {"enabled": true}, "password": {"exists": true}}));
    assert_eq!(r.body["user"]["canViewAllInfo"], json!(true));
    assert_eq!(r.body["user"]["roles"], json!(["user"]));
    assert_no_secrets(&r);
    // Services keep their place in the document; canViewAllInfo comes last.
    let keys: Vec<&str> = r.body["user"].as_object().map(|u| u.keys().map(String::as_str).collect()).unwrap_or_default();
    assert_eq!(
        keys,
        [
            "_id",
            "createdAt",
            "username",
            "name",
            "emails",
            "status",
            "active",
            "roles",
            "type",
            "importIds",
            "services",
            "bio",
            "nickname",
            "canViewAllInfo"
        ]
    );
}

#[test]
fn info_matches_ids_and_usernames_exactly_as_find_one_by_id_or_username() {
    let store = seeded();
    let not_found = json!({"success": false, "error": "User not found."});
    // The index is lower-case, the match is not.
    let r = info_of(&store, "username=bob", "ann1");
    assert_eq!((r.status, r.body), (400, not_found.clone()));
    let r = info_of(&store, "username=Bob", "ann1");
    assert_eq!(r.body["user"]["_id"], json!("bob1"));
    // Either key finds by _id or by username.
    let r = info_of(&store, "userId=Bob", "ann1");
    assert_eq!(r.body["user"]["_id"], json!("bob1"));
    let r = info_of(&store, "username=bob1", "ann1");
    assert_eq!(r.body["user"]["_id"], json!("bob1"));
    let r = info_of(&store, "userId=ghost", "ann1");
    assert_eq!((r.status, r.body), (400, not_found));
    // "myself" follows the search value: my own username counts, my id given as username does not.
    let r = info_of(&store, "username=ann", "ann1");
    assert_eq!(r.body["user"]["canViewAllInfo"], json!(true));
    let r = info_of(&store, "username=ann1", "ann1");
    assert_eq!(r.body["user"]["canViewAllInfo"], json!(false));
    assert!(r.body["user"].get("services").is_none());
}

#[test]
fn import_id_searches_need_view_all_info() {
    let store = seeded();
    let r = info_of(&store, "importId=uid%3Dann%2Cdc%3Dexample", "admin1");
    assert_eq!(r.body["user"]["_id"], json!("ann1"));
    let r = info_of(&store, "importId=uid%3Dann%2Cdc%3Dexample", "cy1");
    assert_eq!((r.status, r.body), (400, json!({"success": false, "error": "User not found."})));
    // Ann's own importId makes her "myself".
    let r = info_of(&store, "importId=uid%3Dann%2Cdc%3Dexample", "ann1");
    assert_eq!(r.body["user"]["services"], json!({"totp": {"enabled": true}, "password": {"exists": true}}));
    // The import-id index answers without a scan: one read finds nobody.
    *store.listings.borrow_mut() = 0;
    store.reads.borrow_mut().clear();
    info_of(&store, "importId=nothing", "admin1");
    assert_eq!(*store.listings.borrow(), 0);
    assert_eq!(store.reads.borrow().last(), Some(&1));
}

#[test]
fn info_parameters_follow_the_schema() {
    let store = seeded();
    let params = |message: &str| json!({"success": false, "error": format!("{message} [invalid-params]"), "errorType": "invalid-params"});
    let missing = "must have required property 'userId'\n must have required property 'username'\n must have required property 'importId'\n must match a schema in anyOf";
    let r = info_of(&store, "", "ann1");
    assert_eq!((r.status, r.body), (400, params(missing)));
    let r = info_of(&store, "email=a%40b.c", "ann1");
    assert_eq!((r.status, r.body), (400, params(missing)));
    let r = info_of(&store, "userId=ann1&username=ann", "ann1");
    let two = "must NOT have additional properties\n must NOT have additional properties\n must have required property 'importId'\n must match a schema in anyOf";
    assert_eq!((r.status, r.body), (400, params(two)));
    let r = info_of(&store, "userId=ann1&userId=bob1", "ann1");
    let repeated =
        "must be string\n must have required property 'username'\n must have required property 'importId'\n must match a schema in anyOf";
    assert_eq!((r.status, r.body), (400, params(repeated)));
    // The optional keys are accepted and ignored.
    let r = info_of(&store, "userId=ann1&includeUserRooms=true&fields=%7B%22services%22%3A1%7D", "cy1");
    assert_eq!((r.status, r.body["user"]["canViewAllInfo"].clone()), (200, json!(false)));
    // An empty value passes the schema and fails the search.
    let r = info_of(&store, "userId=", "ann1");
    assert_eq!((r.status, r.body), (400, json!({"success": false, "error": "Invalid search query."})));
}

#[test]
fn both_routes_need_a_login_and_a_username() {
    let store = seeded();
    let not_logged_in = json!({"success": false, "error": "You must be logged in to do this.", "status": "error", "message": "You must be logged in to do this."});
    for handler in [info as fn(&Request, &Env<'_>) -> Response, list] {
        let r = call(&store, handler, "/api/v1/users.list?userId=ann1", None);
        assert_eq!((r.status, r.body), (401, not_logged_in.clone()));
        let r = call(&store, handler, "/api/v1/users.list?userId=ann1", Some("noname1"));
        assert_eq!(r.status, 401);
    }
    put(
        &store,
        "user:nameless",
        json!({"_id": "nameless", "roles": ["admin"],
        "services": {"resume": {"loginTokens": [{"hashedToken": hash_token("tok-nameless")}]}}}),
    );
    let r = info_of(&store, "userId=ann1", "nameless");
    assert_eq!(r.body["errorType"], json!("error-unauthorized"));
}

#[test]
fn list_shows_the_limited_projection_sorted_by_username() {
    let store = seeded();
    let r = list_of(&store, "", "ann1");
    let users = json!([
        {"_id": "bob1", "username": "Bob", "name": "bob jones", "status": "away", "active": false, "type": "bot", "nameInsensitive": "bob jones"},
        {"_id": "admin1", "username": "admin", "name": "Admin", "status": "online", "active": true, "type": "user", "nameInsensitive": "admin"},
        {"_id": "ann1", "username": "ann", "name": "Ann Smith", "status": "offline", "active": true, "type": "user", "nameInsensitive": "ann smith"},
        {"_id": "cy1", "username": "cy", "active": true, "type": "user", "nameInsensitive": ""},
    ]);
    assert_eq!((r.status, r.body), (200, json!({"users": users, "count": 4, "offset": 0, "total": 4, "success": true})));
}

#[test]
fn list_for_an_admin_adds_emails_roles_and_last_login() {
    let store = seeded();
    let r = list_of(&store, "count=1&offset=1", "admin1");
    let admin = json!({"_id": "admin1", "username": "admin", "name": "Admin", "emails": [{"address": "admin@example.org", "verified": true}],
                       "status": "online", "active": true, "roles": ["admin"], "type": "user", "lastLogin": "1970-01-01T00:00:01.000Z",
                       "nameInsensitive": "admin"});
    assert_eq!((r.status, r.body.clone()), (200, json!({"users": [admin], "count": 1, "offset": 1, "total": 4, "success": true})));
    assert_no_secrets(&list_of(&store, "count=100", "admin1"));
}

#[test]
fn list_reads_keys_once_and_users_in_one_batch() {
    let store = seeded();
    list_of(&store, "", "ann1");
    assert_eq!(*store.listings.borrow(), 1);
    // The user with the session and the limiter's bypass permission, two
    // permissions, the listing index (missing), then every user document at once.
    assert_eq!(*store.reads.borrow(), vec![3, 1, 1, 2, 5]);
    // The scan built the listing index: the next page reads about a page of keys, and lists nothing.
    store.reads.borrow_mut().clear();
    let again = list_of(&store, "count=2&offset=1", "ann1");
    assert_eq!(*store.listings.borrow(), 1);
    assert_eq!(*store.reads.borrow(), vec![3, 1, 1, 2, 1, 2]);
    assert_eq!((usernames(&again), again.body["total"].clone()), (vec!["admin".to_owned(), "ann".to_owned()], json!(4)));
    // A user was created: the index is stale. While another request holds the
    // rebuild lease of this change and minute, this one is answered from the
    // stale index instead of scanning too.
    let changes = store.increment("users-changed", 1).expect("memory");
    store.increment(&format!("user-list-rebuild:limited:{changes}:{}", 1_700_000_000_000i64 / 60_000), 1).expect("memory");
    let stale = list_of(&store, "count=2&offset=1", "ann1");
    assert_eq!((*store.listings.borrow(), usernames(&stale)), (1, vec!["admin".to_owned(), "ann".to_owned()]));
    // Without a lease held, the first request takes it, scans, rebuilds and frees it.
    store.inner.delete_many(&[format!("user-list-rebuild:limited:{changes}:{}", 1_700_000_000_000i64 / 60_000)]).expect("memory");
    list_of(&store, "", "ann1");
    assert_eq!(*store.listings.borrow(), 2, "one more scan");
    assert!(!store.inner.dump().keys().any(|k| k.starts_with("user-list-rebuild:")), "the lease is freed");
}

#[test]
fn list_needs_view_d_room() {
    let store = seeded();
    put(&store, "permission:view-d-room", json!({"_id": "view-d-room", "roles": ["nobody"]}));
    let r = list_of(&store, "", "admin1");
    assert_eq!(
        (r.status, r.body),
        (403, json!({"success": false, "error": "User does not have the permissions required for this action [error-unauthorized]"}))
    );
}

#[test]
fn pagination_parses_like_get_pagination_items() {
    let store = seeded();
    let page = |q: &str| {
        let r = list_of(&store, q, "ann1");
        (r.status, usernames(&r), r.body["offset"].clone(), r.body["total"].clone())
    };
    assert_eq!(page("count=2"), (200, vec!["Bob".into(), "admin".into()], json!(0), json!(4)));
    assert_eq!(page("count=2&offset=2"), (200, vec!["ann".into(), "cy".into()], json!(2), json!(4)));
    assert_eq!(page("count=2abc&offset=+3"), (200, vec!["cy".into()], json!(3), json!(4)));
    assert_eq!(page("offset=9").1, Vec::<String>::new());
    assert_eq!(page("count=0").1.len(), 4);
    assert_eq!(page("count=").1.len(), 4);
    assert_eq!(page("offset=").2, json!(0));
    let r = list_of(&store, "count=-1", "ann1");
    let body = json!({"success": false, "error": "invalid value \"-1\" for parameter count: expected a non-negative integer"});
    assert_eq!((r.status, r.body), (400, body));
    assert_eq!(list_of(&store, "offset=x", "ann1").status, 400);

    let req = Request::new("GET", "/api/v1/users.list?count=500", Vec::new());
    assert_eq!(Page::parse(&req).ok(), Some(Page { offset: 0, count: MAX_COUNT }));
    let req = Request::new("GET", "/api/v1/users.list", Vec::new());
    assert_eq!(Page::parse(&req).ok(), Some(Page { offset: 0, count: DEFAULT_COUNT }));
}

#[test]
fn js_parse_int() {
    assert_eq!(parse_int("12"), Some(12));
    assert_eq!(parse_int("  12abc"), Some(12));
    assert_eq!(parse_int("-3"), Some(-3));
    assert_eq!(parse_int("+4"), Some(4));
    assert_eq!(parse_int("1e3"), Some(1));
    assert_eq!(parse_int("abc"), None);
    assert_eq!(parse_int(""), None);
    assert_eq!(parse_int("-"), None);
    assert_eq!(parse_int("99999999999999999999999"), Some(i64::MAX));
}

#[test]
fn sort_values_must_be_one_or_minus_one() {
    let store = seeded();
    for raw in ["%7B%22username%22%3A2%7D", "nope", "%5B1%5D", "null", "1", "%7B%22%24x%22%3A1%7D"] {
        let r = list_of(&store, &format!("sort={raw}"), "ann1");
        let decoded = percent_decode(raw);
        let body = json!({"success": false, "error": format!("Invalid sort parameter provided: \"{decoded}\" [error-invalid-sort]"),
                          "errorType": "error-invalid-sort", "details": {"helperMethod": "parseJsonQuery"}});
        assert_eq!((r.status, r.body), (400, body), "{decoded}");
    }
}

#[test]
fn sort_orders_rows() {
    let store = seeded();
    let sorted = |sort: &str| usernames(&list_of(&store, &format!("sort={sort}"), "ann1"));
    // Binary order for username (upper case first), as MongoDB.
    assert_eq!(sorted("%7B%22username%22%3A-1%7D"), ["cy", "ann", "admin", "Bob"]);
    // `name` ignores case; no name is "" and sorts first.
    assert_eq!(sorted("%7B%22name%22%3A1%7D"), ["cy", "admin", "ann", "Bob"]);
    assert_eq!(sorted("%7B%22name%22%3A-1%7D"), ["Bob", "ann", "admin", "cy"]);
    // Ties end in _id order.
    assert_eq!(sorted("%7B%22type%22%3A-1%7D"), ["admin", "ann", "cy", "Bob"]);
    // `status` overrides `active` in place: active ascending, then status (missing first).
    assert_eq!(sorted("%7B%22active%22%3A-1%2C%22status%22%3A1%7D"), ["Bob", "cy", "ann", "admin"]);
    // A field that is not projected sorts nothing.
    assert_eq!(sorted("%7B%22createdAt%22%3A-1%7D"), ["admin", "ann", "Bob", "cy"]);
    assert_eq!(sorted("%7B%7D"), sorted(""));
}

#[test]
fn sort_adds_upstreams_keys() {
    let spec = Sort::parse(Some(r#"{"active": 1, "status": -1, "name": 1}"#)).ok();
    let expected = Sort::parse(Some(r#"{"active": -1, "status": -1, "name": 1, "nameInsensitive": 1}"#)).ok();
    assert_eq!(spec, expected);
    assert_eq!(Sort::parse(None).ok(), Sort::parse(Some(r#"{"username": 1}"#)).ok());
    assert!(Sort::parse(Some(r#"{"username": 1.0}"#)).is_ok());
}

#[test]
fn query_attributes_are_checked_like_is_valid_query() {
    let store = seeded();
    let refused = |q: &str, caller: &str| {
        let r = list_of(&store, &format!("query={q}"), caller);
        (r.status, r.body)
    };
    let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    assert_eq!(refused(&enc(r#"{"active":{"$ne":false}}"#), "ann1"), (400, invalid_query("Invalid attribute: active.$ne")));
    assert_eq!(refused(&enc(r#"{"_id":"ann1"}"#), "ann1"), (400, invalid_query("Invalid attribute: _id")));
    assert_eq!(refused(&enc(r#"{"$regex":"a"}"#), "ann1"), (400, invalid_query("Invalid operation: $regex")));
    assert_eq!(
        refused(&enc(r#"{"$or":{"username":"ann"}}"#), "ann1"),
        (400, invalid_query("Invalid parameter for operation: $or : [object Object]"))
    );
    assert_eq!(
        refused(&enc(r#"{"$or":[{"services.password.bcrypt":"x"}]}"#), "admin1"),
        (400, invalid_query("Invalid attribute: services.password.bcrypt"))
    );
    assert_eq!(
        refused(&enc(r#"{"$or":[{"emails.address":"ann@example.org"}]}"#), "ann1"),
        (400, invalid_query("Invalid attribute: emails.address"))
    );
    assert_eq!(refused(&enc(r#"{"$and":["x"]}"#), "ann1"), (400, invalid_query("Invalid attribute: 0")));
    assert_eq!(refused(&enc(r#"[1]"#), "ann1"), (400, invalid_query("Invalid attribute: 0")));
    let unparsable = json!({"success": false, "error": "Invalid query parameter provided: \"{x\" [error-invalid-query]",
                            "errorType": "error-invalid-query", "details": {"helperMethod": "parseJsonQuery"}});
    assert_eq!(refused("%7Bx", "ann1"), (400, unparsable));
}

#[test]
fn hidden_fields_are_dropped_from_queries_silently() {
    let store = seeded();
    let found = |q: &str, caller: &str| {
        let enc: String = q.bytes().map(|b| format!("%{b:02X}")).collect();
        usernames(&list_of(&store, &format!("query={enc}"), caller))
    };
    // Not an oracle: a condition on a secret or a hidden field is removed, not evaluated.
    assert_eq!(found(r#"{"services.password.bcrypt":"nope"}"#, "admin1").len(), 4);
    assert_eq!(found(r#"{"emails.address":"nope"}"#, "ann1").len(), 4);
    assert_eq!(found(r#"{"roles":"admin"}"#, "ann1").len(), 4);
    assert_eq!(found(r#"{"importIds":"uid=ann,dc=example"}"#, "admin1").len(), 4);
    // Callers who may see them can query them.
    assert_eq!(found(r#"{"roles":"admin"}"#, "admin1"), ["admin"]);
    assert_eq!(found(r#"{"emails.address":"bob@example.org"}"#, "admin1"), ["Bob"]);
    // $where and other top-level operators vanish in clean().
    assert_eq!(found(r#"{"$where":"1","$nor":[{"username":"ann"}]}"#, "ann1").len(), 4);
}

#[test]
fn queries_are_evaluated() {
    let store = seeded();
    let found = |q: &str| {
        let enc: String = q.bytes().map(|b| format!("%{b:02X}")).collect();
        let r = list_of(&store, &format!("query={enc}"), "ann1");
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        usernames(&r)
    };
    assert_eq!(found(r#"{"username":"ann"}"#), ["ann"]);
    assert_eq!(found(r#"{"active":false}"#), ["Bob"]);
    assert_eq!(found(r#"{"type":"user","active":true}"#), ["admin", "ann", "cy"]);
    assert_eq!(found(r#"{"username":{"$regex":"^A","$options":"i"}}"#), ["admin", "ann"]);
    assert_eq!(found(r#"{"username":{"$regex":"^A"}}"#), Vec::<String>::new());
    assert_eq!(found(r#"{"name":{"$regex":"jones$"}}"#), ["Bob"]);
    assert_eq!(found(r#"{"name":{"$regex":"SMITH","$options":"i"}}"#), ["ann"]);
    assert_eq!(found(r#"{"username":{"$regex":"^ann$"}}"#), ["ann"]);
    assert_eq!(found(r#"{"$or":[{"username":"cy"},{"name":"Admin"}]}"#), ["admin", "cy"]);
    assert_eq!(found(r#"{"$and":[{"type":"user"},{"username":{"$in":["cy","Bob","ann"]}}]}"#), ["ann", "cy"]);
    assert_eq!(found(r#"{"username":{"$ne":"ann"},"name":{"$exists":true}}"#), ["Bob", "admin"]);
    assert_eq!(found(r#"{"name":{"$exists":false}}"#), ["cy"]);
    assert_eq!(found(r#"{"name":null}"#), ["cy"]);
    assert_eq!(found(r#"{"type":{"$nin":["user"]}}"#), ["Bob"]);
    // A `$or` of the caller replaces the default one, which hides users without username and name.
    assert_eq!(found(r#"{"$or":[{"active":true}]}"#), ["-", "admin", "ann", "cy"]);
    assert_eq!(found(r#"{"active":true}"#), ["admin", "ann", "cy"]);
}

#[test]
fn unsupported_filters_are_refused() {
    let store = seeded();
    let refused = |q: &str| {
        let enc: String = q.bytes().map(|b| format!("%{b:02X}")).collect();
        let r = list_of(&store, &format!("query={enc}"), "ann1");
        (r.status, r.body)
    };
    assert_eq!(refused(r#"{"username":{"$regex":"a.*n"}}"#), (400, invalid_query("Unsupported regular expression for username: a.*n")));
    assert_eq!(refused(r#"{"username":{"$regex":"\\d"}}"#), (400, invalid_query("Unsupported regular expression for username: \\d")));
    assert_eq!(refused(r#"{"username":{"$regex":"a","$options":"m"}}"#), (400, invalid_query("Unsupported $options for username: m")));
    assert_eq!(refused(r#"{"username":{"$gt":"a"}}"#), (400, invalid_query("Unsupported query operator: username.$gt")));
    assert_eq!(refused(r#"{"username":{"$options":"i"}}"#), (400, json!({"success": false, "error": "$options needs a $regex"})));
    assert_eq!(refused(r#"{"$or":[]}"#), (400, json!({"success": false, "error": "$and/$or/$nor must be a nonempty array"})));
    assert_eq!(refused(r#"{"$or":[null]}"#), (400, json!({"success": false, "error": "$or/$and/$nor entries need to be full objects"})));
}

#[test]
fn patterns_are_literals_with_anchors() {
    let p = |pattern: &str, options: &str| Pattern::parse("f", pattern, options).ok();
    let matches = |pattern: &str, options: &str, text: &str| p(pattern, options).is_some_and(|p| p.matches(text));
    assert!(matches("", "", "anything"));
    assert!(matches("nn", "", "ann"));
    assert!(matches("^an", "", "ann"));
    assert!(!matches("^nn", "", "ann"));
    assert!(matches("nn$", "", "ann"));
    assert!(matches("^ann$", "", "ann"));
    assert!(!matches("^an$", "", "ann"));
    assert!(matches("ANN", "i", "ann"));
    assert!(matches(r"a\.b", "", "xa.by"));
    assert!(!matches(r"a\.b", "", "axb"));
    assert!(matches(r"\$5", "", "costs $5"));
    for bad in ["a.b", "a*", "a+", "a?", "(a)", "[a]", "a{2}", "a|b", "a^b", "a$b", r"\w", "a\\"] {
        assert_eq!(p(bad, ""), None, "{bad}");
    }
}

#[test]
fn dotted_paths_reach_into_arrays() {
    let doc: Map<String, Value> =
        serde_json::from_value(json!({"emails": [{"address": "a@x"}, {"address": "b@x"}], "roles": ["user", "bot"]})).expect("object");
    assert_eq!(values_at(&doc, "emails.address"), [&json!("a@x"), &json!("b@x")]);
    assert_eq!(values_at(&doc, "emails.1.address"), [&json!("b@x")]);
    assert_eq!(values_at(&doc, "roles").len(), 3);
    assert!(values_at(&doc, "name").is_empty());
}
