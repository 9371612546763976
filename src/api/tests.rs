use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::auth::token::hash_token;
use crate::store::memory::MemoryStore;
use crate::store::schema::Date;

struct Vars(BTreeMap<&'static str, &'static str>);

impl VariableSource for Vars {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(name).map(|v| (*v).to_owned()))
    }
}

fn store_with_admin() -> MemoryStore {
    let store = MemoryStore::default();
    let user = json!({
        "_id": "admin1", "username": "admin", "roles": ["admin"],
        "services": {"resume": {"loginTokens": [{"hashedToken": hash_token("tok")}]}}
    });
    store.set_many(vec![("user:admin1".into(), user.to_string().into_bytes())]).expect("memory store");
    store
}

fn call(store: &MemoryStore, vars: &[(&'static str, &'static str)], method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let vars = Vars(vars.iter().copied().collect());
    let clock = || Date { millis: 1_700_000_000_000 };
    let random = |buf: &mut [u8]| buf.fill(7);
    let env = Env { store, variables: &vars, clock: &clock, random: &random };
    let req = Request::new(method, path, headers.iter().map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec())));
    route(&req, &env)
}

#[test]
fn unknown_paths_and_methods_get_json() {
    let store = MemoryStore::default();
    let r = call(&store, &[], "GET", "/api/v1/nothing", &[]);
    assert_eq!((r.status, r.body), (404, json!({"success": false, "error": "API endpoint not found"})));
    let r = call(&store, &[], "GET", "/api/v1/ldap.syncNow?x=1", &[]);
    assert_eq!((r.status, r.body), (405, json!({"success": false, "error": "Method not allowed"})));
    assert_eq!(r.headers, vec![("Allow", "POST".to_owned())]);
    // A prefix route needs something after its `/`.
    for (method, path) in [("GET", "/avatar/"), ("POST", "/api/v1/method.call/")] {
        let r = call(&store, &[], method, path, &[]);
        assert_eq!((r.status, r.body), (404, json!({"success": false, "error": "API endpoint not found"})), "{method} {path}");
    }
}

#[test]
fn gate_order_reaches_ldap_disabled_with_the_password_fallback_off() {
    let store = store_with_admin();
    let headers = [("X-User-Id", "admin1"), ("X-Auth-Token", "tok")];
    let off = [("accounts_twofactorauthentication_enabled", "false")];
    let r = call(&store, &off, "POST", "/api/v1/ldap.syncNow", &headers);
    assert_eq!((r.status, r.body), (400, json!({"success": false, "error": "LDAP_disabled"})));
    let on = [("accounts_twofactorauthentication_enabled", "false"), ("ldap_enable", "true"), ("ldap_background_sync", "false")];
    let r = call(&store, &on, "POST", "/api/v1/ldap.syncNow", &headers);
    assert_eq!((r.status, r.body), (400, json!({"success": false, "error": "LDAP_Background_Sync_disabled"})));
}

#[test]
fn settings_errors_come_after_authentication() {
    let store = store_with_admin();
    let bad = [("ldap_port", "x")];
    let r = call(&store, &bad, "POST", "/api/v1/ldap.syncNow", &[]);
    assert_eq!(r.status, 401);
}

#[test]
fn non_utf8_header_values_are_wrong_credentials_not_panics() {
    let store = store_with_admin();
    let r = call(&store, &[], "POST", "/api/v1/ldap.syncNow", &[("x-user-id", "admin1")]);
    assert_eq!(r.status, 401);
    let vars = Vars(BTreeMap::new());
    let clock = || Date { millis: 1 };
    let random = |buf: &mut [u8]| buf.fill(7);
    let env = Env { store: &store, variables: &vars, clock: &clock, random: &random };
    let headers = vec![("X-User-Id".to_owned(), b"admin1".to_vec()), ("X-Auth-Token".to_owned(), b"to\xffk".to_vec())];
    let r = route(&Request::new("POST", "/api/v1/ldap.syncNow", headers), &env);
    assert_eq!(r.status, 401);
    let headers = vec![
        ("x-user-id".to_owned(), b"admin1".to_vec()),
        ("x-auth-token".to_owned(), b"tok".to_vec()),
        ("x-2fa-code".to_owned(), b"\xff\xfe".to_vec()),
    ];
    let r = route(&Request::new("POST", "/api/v1/ldap.syncNow", headers), &env);
    assert_eq!(r.body["errorType"], json!("totp-invalid"));
}

#[test]
fn a_spoofed_client_address_does_not_escape_the_rate_limiter() {
    let req = Request::new(
        "POST",
        "/api/v1/ldap.syncNow",
        [("spin-client-addr".to_owned(), b"6.6.6.6:1".to_vec()), ("spin-client-addr".to_owned(), b"10.0.0.7:5000".to_vec())],
    );
    assert_eq!(credentials(&req).client_ip, "10.0.0.7");
}

#[test]
fn the_gate_runs_on_its_own_settings_and_ldap_disabled_wins_over_bad_sync_settings() {
    let store = store_with_admin();
    // A bad sync setting reaches nobody the gate refuses: no second factor, no permission...
    let bad = [("ldap_enable", "true"), ("ldap_port", "x")];
    let r = call(&store, &bad, "POST", "/api/v1/ldap.syncNow", &[("x-user-id", "admin1"), ("x-auth-token", "tok")]);
    assert_eq!(r.body["error"], json!("TOTP Required [totp-required]"), "{:?}", r.body);
    // ...and LDAP_disabled comes first, as upstream checks LDAP_Enable before anything else of the sync.
    let off = [("accounts_twofactorauthentication_enabled", "false"), ("ldap_port", "x"), ("ldap_user_search_filter", "(((")];
    let r = call(&store, &off, "POST", "/api/v1/ldap.syncNow", &[("x-user-id", "admin1"), ("x-auth-token", "tok")]);
    assert_eq!(r.body["error"], json!("LDAP_disabled"), "{:?}", r.body);
    // Admitted, LDAP on: now the bad setting is named.
    let on = [("accounts_twofactorauthentication_enabled", "false"), ("ldap_enable", "true"), ("ldap_port", "x")];
    let r = call(&store, &on, "POST", "/api/v1/ldap.syncNow", &[("x-user-id", "admin1"), ("x-auth-token", "tok")]);
    assert_eq!(
        (r.status, r.body),
        (400, json!({"success": false, "error": "invalid value \"x\" for variable ldap_port: expected an integer from 1 to 65535"}))
    );
}
