//! No secret in any output: one host with the guest's stdout and stderr
//! captured ([`HostOptions::capture_output`]) goes through every route and
//! the failures around them (login local and LDAP, wrong passwords, TOTP
//! required and invalid, logout, me, every `2fa:*` method, users.info,
//! users.list, the LDAP test routes, syncs that succeed and fail, settings
//! errors, rate limits). Every response (status, headers, body, the guest's
//! error) and every line the guest logged are then searched for every secret
//! that existed during the run: the LDAP bind password (right and wrong), the
//! bootstrap admin's and a directory user's passwords and their SHA-256 digests,
//! every login token issued and its stored hash, the TOTP secret, the backup
//! codes and their stored hashes, and every bcrypt hash, token hash, TOTP
//! secret and backup-code hash found in the store after each step.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use ldap_sync_host::demo::{DEMO_SVC_DN, demo_options, demo_variables};
use ldap_sync_host::fixture::variables;
use ldap_sync_host::slapd::{Slapd, SlapdOptions};
use ldap_sync_host::{Host, HostOptions, Response};
use serde_json::{Value, json};

use crate::common::*;

const ADMIN_NAME: &str = "root";
const ADMIN_PW: &str = "boot-admin-pw-R4t8zW1c";
const BIND_PW: &str = "bind-pw-Q7v2xK9mZ";
const WRONG_BIND_PW: &str = "wrong-bind-pw-L8k1sD4f";
const ALICE_PW: &str = "alice-dir-pw-M3n6bH5j";
const WRONG_PW: &str = "wrong-login-pw-T2y7uP0q";
const ALICE_DN: &str = "uid=alice,ou=people,dc=example,dc=org";
/// Where the rate-limit part comes from, so the limits it fills up touch nothing else.
const LIMITED_CLIENT: &str = "192.0.2.77:40000";

/// Everything that came out of the component, and every secret to look for in it.
struct Transcript {
    host: Host,
    /// `(what, text)`: one entry per response, with the parts that may carry a secret legitimately taken out.
    responses: Vec<(String, String)>,
    secrets: BTreeSet<String>,
}

impl Transcript {
    fn new(host: Host) -> Self {
        let secrets =
            [ADMIN_PW, BIND_PW, WRONG_BIND_PW, ALICE_PW, WRONG_PW].iter().flat_map(|pw| [pw.to_string(), sha256_hex(pw)]).collect();
        Self { host, responses: Vec::new(), secrets }
    }

    async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &[u8])], body: Vec<u8>, from: Option<&str>) -> Response {
        let mut req = http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            req = req.header(*name, http::HeaderValue::from_bytes(value).expect("header value"));
        }
        let req = req.body(body).expect("request");
        let res = match from {
            Some(addr) => self.host.send_from(addr.parse::<SocketAddr>().expect("address"), req).await,
            None => self.host.send(req).await,
        };
        let res = res.expect("host answers");
        self.harvest_store();
        res
    }

    /// Records a response whole.
    fn record(&mut self, what: &str, res: &Response) {
        self.record_except(what, res, &[]);
    }

    /// Records a response with the secrets it hands out legitimately, each
    /// `(secret, times)`, taken out of its body: the body must hold each
    /// exactly that many times, and nothing else of it is exempt.
    fn record_except(&mut self, what: &str, res: &Response, handed_out: &[(&str, usize)]) {
        let mut body = res.text();
        for (secret, times) in handed_out {
            assert_eq!(body.matches(secret).count(), *times, "{what}: {secret:?} in {body}");
            body = body.replace(secret, "<handed out>");
        }
        let headers: String = res.headers.iter().map(|(n, v)| format!("{n}: {}\n", String::from_utf8_lossy(v.as_bytes()))).collect();
        let text = format!("{}\n{headers}\n{body}\n{}", res.status, res.error.as_deref().unwrap_or(""));
        self.responses.push((what.to_owned(), text));
    }

    async fn post(&mut self, what: &str, path: &str, headers: &[(&str, &[u8])], body: Value) -> Response {
        let res = self.send("POST", path, headers, body.to_string().into_bytes(), None).await;
        self.record(what, &res);
        res
    }

    async fn get(&mut self, what: &str, path: &str, headers: &[(&str, &[u8])]) -> Response {
        let res = self.send("GET", path, headers, Vec::new(), None).await;
        self.record(what, &res);
        res
    }

    /// A login that must succeed; its token is a secret from now on (and so is its hash).
    async fn login(&mut self, what: &str, body: Value) -> Creds {
        let res = self.send("POST", "/api/v1/login", &[], body.to_string().into_bytes(), None).await;
        assert_eq!(res.status, 200, "{what}: {}", res.text());
        let data = &res.json()["data"];
        let creds =
            Creds { id: data["userId"].as_str().expect("userId").to_owned(), token: data["authToken"].as_str().expect("token").to_owned() };
        // The token is handed out once, in this body.
        self.record_except(what, &res, &[(&creds.token, 1)]);
        self.secrets.insert(creds.token.clone());
        self.secrets.insert(hash_token(&creds.token));
        creds
    }

    /// `method.call/<name>`; returns the response and the inner message.
    async fn method(&mut self, what: &str, creds: &Creds, extra: &[(&'static str, &str)], name: &str, params: Value) -> (Response, Value) {
        let message = json!({"msg": "method", "id": "1", "method": name, "params": params}).to_string();
        let headers = creds.headers(extra);
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let res = self
            .send("POST", &format!("/api/v1/method.call/{name}"), &headers, json!({"message": message}).to_string().into_bytes(), None)
            .await;
        assert_eq!(res.status, 200, "{what}: {}", res.text());
        let inner: Value = serde_json::from_str(res.json()["message"].as_str().expect("message")).expect("inner JSON");
        (res, inner)
    }

    /// Every secret the store holds right now, by field name wherever it
    /// sits, and the token and backup-code hashes that key names carry.
    fn harvest_store(&mut self) {
        for (key, value) in dump(&self.host) {
            for prefix in ["login-token:", "backup-code-used:"] {
                if let Some(rest) = key.strip_prefix(prefix) {
                    // backup-code-used:<user id>:<hash>
                    self.secrets.insert(rest.rsplit(':').next().unwrap_or(rest).to_owned());
                }
            }
            if let Ok(json) = serde_json::from_slice::<Value>(&value) {
                collect_secret_fields(&json, &mut self.secrets);
            }
        }
    }

    /// Asserts that no secret appears in any response or in the guest's output.
    fn assert_clean(&self) {
        let output = self.host.output().expect("output is captured");
        let stdout = String::from_utf8_lossy(&output.stdout()).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr()).into_owned();
        let texts = self
            .responses
            .iter()
            .map(|(what, text)| (what.as_str(), text.as_str()))
            .chain([("stdout", stdout.as_str()), ("stderr", stderr.as_str())]);
        let mut leaks = Vec::new();
        for (what, text) in texts {
            for secret in &self.secrets {
                if text.contains(secret.as_str()) || text.contains(&secret.to_lowercase()) && secret.len() >= 16 {
                    leaks.push(format!("{what}: {secret:?} in {text}"));
                }
            }
            for bcrypt in ["$2a$", "$2b$", "$2y$"] {
                if text.contains(bcrypt) {
                    leaks.push(format!("{what}: a bcrypt hash in {text}"));
                }
            }
        }
        assert!(leaks.is_empty(), "{} leak(s):\n{}", leaks.len(), leaks.join("\n\n"));
    }
}

/// Values of the fields that hold secrets in stored documents (`docs/kv-schema.md`).
fn collect_secret_fields(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (name, v) in map {
                if matches!(name.as_str(), "bcrypt" | "hashedToken" | "secret" | "tempSecret" | "hashedBackup") {
                    match v {
                        Value::String(s) => {
                            out.insert(s.clone());
                        }
                        Value::Array(items) => out.extend(items.iter().filter_map(Value::as_str).map(str::to_owned)),
                        _ => {}
                    }
                }
                collect_secret_fields(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secret_fields(v, out)),
        _ => {}
    }
}

#[derive(Clone)]
struct Creds {
    id: String,
    token: String,
}

impl Creds {
    fn headers(&self, extra: &[(&'static str, &str)]) -> Vec<(&'static str, Vec<u8>)> {
        let mut h = vec![("x-user-id", self.id.clone().into_bytes()), ("x-auth-token", self.token.clone().into_bytes())];
        h.extend(extra.iter().map(|(n, v)| (*n, v.as_bytes().to_vec())));
        h
    }
}

fn refs<'a>(headers: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'a str, &'a [u8])> {
    headers.iter().map(|(n, v)| (*n, v.as_slice())).collect()
}

/// Moves the guest's clock to the next TOTP step, so a fresh code is not a replay.
fn next_step(host: &Host, now: &mut u64) {
    *now += 30;
    host.set_time(UNIX_EPOCH + Duration::from_secs(*now));
}

fn totp(secret: &str, t: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.into()).to_bytes().expect("base32");
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 0, 30, bytes).generate(t)
}

/// Percent-encodes everything but letters and digits.
fn enc(text: &str) -> String {
    text.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

fn codes_of(inner: &Value) -> Vec<String> {
    serde_json::from_value(inner["result"]["codes"].clone()).unwrap_or_else(|e| panic!("no codes in {inner}: {e}"))
}

#[tokio::test]
async fn no_secret_in_any_response_or_log_line() {
    // The demo directory over StartTLS too, with passwords no other text contains.
    let mut slapd = Slapd::start(SlapdOptions { tls: true, ..demo_options(None) }).unwrap_or_else(|e| panic!("{e:#}"));
    slapd
        .modify(&format!(
            "dn: {DEMO_SVC_DN}\nchangetype: modify\nreplace: userPassword\nuserPassword: {BIND_PW}\n\n\
             dn: {ALICE_DN}\nchangetype: modify\nreplace: userPassword\nuserPassword: {ALICE_PW}\n"
        ))
        .expect("ldapmodify");
    let mut vars: Vec<(&str, String)> = demo_variables(slapd.port());
    vars.extend([
        ("ldap_authentication_password", BIND_PW.into()),
        ("admin_username", ADMIN_NAME.into()),
        ("admin_pass", ADMIN_PW.into()),
        ("admin_email", "root@example.org".into()),
        ("api_enable_rate_limiter", "false".into()),
    ]);
    let host =
        Host::new(HostOptions { variables: variables(vars.iter().map(|(k, v)| (*k, v))), capture_output: true, ..HostOptions::default() })
            .expect("host starts");
    let mut now = T0;
    host.set_time(UNIX_EPOCH + Duration::from_secs(now));
    let mut x = Transcript::new(host);
    let admin_2fa = sha256_hex(ADMIN_PW);

    // Login: local (plain and digest), LDAP (both forms), and the failures.
    let admin = x.login("login local", json!({"user": ADMIN_NAME, "password": ADMIN_PW})).await;
    let spare = x.login("login digest", json!({"user": ADMIN_NAME, "password": {"digest": admin_2fa, "algorithm": "sha-256"}})).await;
    let alice = x.login("login ldap", json!({"user": "alice", "password": ALICE_PW})).await;
    x.login("login ldap form", json!({"ldap": true, "username": "alice", "ldapPass": ALICE_PW, "ldapOptions": {}})).await;
    for (what, body) in [
        ("login wrong password", json!({"user": ADMIN_NAME, "password": WRONG_PW})),
        ("login wrong digest", json!({"user": ADMIN_NAME, "password": {"digest": sha256_hex(WRONG_PW), "algorithm": "sha-256"}})),
        ("login ldap wrong password", json!({"user": "alice", "password": WRONG_PW})),
        ("login ldap form wrong password", json!({"ldap": true, "username": "alice", "ldapPass": WRONG_PW, "ldapOptions": {}})),
        ("login unknown user", json!({"user": "ghost", "password": WRONG_PW})),
        ("login password as user name", json!({"user": WRONG_PW, "password": WRONG_PW})),
    ] {
        assert_eq!(x.post(what, "/api/v1/login", &[], body).await.status, 401, "{what}");
    }
    assert_eq!(x.post("login missing password", "/api/v1/login", &[], json!({"user": ADMIN_NAME})).await.status, 400);
    let long = format!("{WRONG_PW}{}", "x".repeat(300));
    assert_eq!(x.post("login long password", "/api/v1/login", &[], json!({"user": ADMIN_NAME, "password": long})).await.status, 400);
    let bad = format!("{{\"user\":\"{ADMIN_NAME}\",\"password\":\"{WRONG_PW}\"");
    let res = x.send("POST", "/api/v1/login", &[], bad.into_bytes(), None).await;
    x.record("login malformed JSON", &res);

    // me, logout, users.*, the LDAP test routes.
    let a = admin.headers(&[]);
    let al = alice.headers(&[]);
    assert_eq!(x.get("me admin", "/api/v1/me", &refs(&a)).await.status, 200);
    assert_eq!(x.get("me alice", "/api/v1/me", &refs(&al)).await.status, 200);
    let forged = [("x-user-id", admin.id.as_bytes()), ("x-auth-token", WRONG_PW.as_bytes())];
    assert_eq!(x.get("me wrong token", "/api/v1/me", &forged).await.status, 401);
    let s = spare.headers(&[]);
    assert_eq!(x.post("logout", "/api/v1/logout", &refs(&s), json!({})).await.status, 200);
    assert_eq!(x.post("logout again", "/api/v1/logout", &refs(&s), json!({})).await.status, 401);
    let by_dn = format!("importId={}", enc(ALICE_DN));
    for (who, h) in [("admin", &a), ("alice", &al)] {
        for query in
            [format!("userId={}", admin.id), format!("userId={}", alice.id), "username=alice".to_owned(), by_dn.clone(), String::new()]
        {
            x.get(&format!("users.info?{query} as {who}"), &format!("/api/v1/users.info?{query}"), &refs(h)).await;
        }
        for query in ["", "count=50", "count=100&offset=1", &format!("query={}", enc(r#"{"username":{"$regex":"^a","$options":"i"}}"#))] {
            let res = x.get(&format!("users.list?{query} as {who}"), &format!("/api/v1/users.list?{query}"), &refs(h)).await;
            assert_eq!(res.status, 200, "{}", res.text());
        }
        let query = format!("query={}", enc(r#"{"services.password.bcrypt":{"$regex":"^x"}}"#));
        x.get(&format!("users.list bad query as {who}"), &format!("/api/v1/users.list?{query}"), &refs(h)).await;
        x.post(&format!("ldap.testConnection as {who}"), "/api/v1/ldap.testConnection", &refs(h), json!({})).await;
        for user in ["alice", "zed", "*)(uid=*"] {
            x.post(&format!("ldap.testSearch {user} as {who}"), "/api/v1/ldap.testSearch", &refs(h), json!({"username": user})).await;
        }
    }

    // ldap.syncNow with the password second factor, and its 2FA failures.
    let with_pw = admin.headers(&[("x-2fa-code", &admin_2fa)]);
    let res = x.post("syncNow", "/api/v1/ldap.syncNow", &refs(&with_pw), json!({})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(x.post("syncNow no code", "/api/v1/ldap.syncNow", &refs(&a), json!({})).await.status, 400);
    let wrong_code = admin.headers(&[("x-2fa-code", &sha256_hex(WRONG_PW))]);
    assert_eq!(x.post("syncNow wrong code", "/api/v1/ldap.syncNow", &refs(&wrong_code), json!({})).await.status, 400);
    let by_alice = alice.headers(&[("x-2fa-code", &sha256_hex(ALICE_PW))]);
    x.post("syncNow as alice", "/api/v1/ldap.syncNow", &refs(&by_alice), json!({})).await;
    // users.list again, on the synced directory (scan, then the listing index).
    for n in 0..2 {
        assert_eq!(x.get(&format!("users.list after sync {n}"), "/api/v1/users.list?count=50", &refs(&a)).await.status, 200);
    }

    // Every 2fa:* method: enrolment, codes, disable, and their failures.
    let (res, inner) = x.method("2fa:enable without code", &admin, &[], "2fa:enable", json!([])).await;
    assert_eq!(inner["error"]["error"], json!("totp-required"), "{inner}");
    x.record("2fa:enable without code", &res);
    let (res, inner) = x.method("2fa:enable", &admin, &[("x-2fa-code", &admin_2fa)], "2fa:enable", json!([])).await;
    let secret = inner["result"]["secret"].as_str().unwrap_or_else(|| panic!("no secret: {inner}")).to_owned();
    x.secrets.insert(secret.clone());
    // The one response that hands the TOTP secret out (in `secret` and in the
    // otpauth URL); the rest of it is searched like every other response.
    x.record_except("2fa:enable", &res, &[(&secret, 2)]);
    let (res, _) = x.method("2fa:validateTempToken wrong", &admin, &[], "2fa:validateTempToken", json!(["000000"])).await;
    x.record("2fa:validateTempToken wrong", &res);
    next_step(&x.host, &mut now);
    let (res, inner) = x.method("2fa:validateTempToken", &admin, &[], "2fa:validateTempToken", json!([totp(&secret, now)])).await;
    let first_codes = codes_of(&inner);
    x.secrets.extend(first_codes.iter().flat_map(|c| [c.clone(), sha256_hex(c)]));
    // The one response that hands the backup codes out, once each.
    let handed: Vec<(&str, usize)> = first_codes.iter().map(|c| (c.as_str(), 1)).collect();
    x.record_except("2fa:validateTempToken", &res, &handed);
    let (res, _) = x.method("2fa:checkCodesRemaining", &admin, &[], "2fa:checkCodesRemaining", json!([])).await;
    x.record("2fa:checkCodesRemaining", &res);
    let (res, inner) = x.method("2fa:enable when enabled", &admin, &[("x-2fa-code", &admin_2fa)], "2fa:enable", json!([])).await;
    assert!(inner.get("error").is_some(), "{inner}");
    x.record("2fa:enable when enabled", &res);
    let (res, _) = x.method("2fa:regenerateCodes wrong", &admin, &[], "2fa:regenerateCodes", json!(["000000"])).await;
    x.record("2fa:regenerateCodes wrong", &res);
    next_step(&x.host, &mut now);
    let (res, inner) = x.method("2fa:regenerateCodes", &admin, &[], "2fa:regenerateCodes", json!([totp(&secret, now)])).await;
    let codes = codes_of(&inner);
    x.secrets.extend(codes.iter().flat_map(|c| [c.clone(), sha256_hex(c)]));
    // Regenerated codes are handed out once too, in this response.
    let handed: Vec<(&str, usize)> = codes.iter().map(|c| (c.as_str(), 1)).collect();
    x.record_except("2fa:regenerateCodes", &res, &handed);
    let (res, _) = x.method("2fa:disable wrong", &admin, &[], "2fa:disable", json!(["000000"])).await;
    x.record("2fa:disable wrong", &res);
    let (res, _) = x.method("2fa:checkCodesRemaining as alice", &alice, &[], "2fa:checkCodesRemaining", json!([])).await;
    x.record("2fa:checkCodesRemaining as alice", &res);

    // TOTP at login and at the gate: required, invalid, a replayed and a used backup code.
    assert_eq!(x.post("login totp required", "/api/v1/login", &[], json!({"user": ADMIN_NAME, "password": ADMIN_PW})).await.status, 401);
    let wrong = json!({"user": ADMIN_NAME, "password": ADMIN_PW, "code": "000000"});
    assert_eq!(x.post("login totp invalid", "/api/v1/login", &[], wrong).await.status, 401);
    let old = json!({"user": ADMIN_NAME, "password": ADMIN_PW, "code": first_codes[0]});
    assert_eq!(x.post("login replaced backup code", "/api/v1/login", &[], old).await.status, 401);
    x.login("login backup code", json!({"user": ADMIN_NAME, "password": ADMIN_PW, "code": codes[0]})).await;
    let used = json!({"user": ADMIN_NAME, "password": ADMIN_PW, "code": codes[0]});
    assert_eq!(x.post("login used backup code", "/api/v1/login", &[], used).await.status, 401);
    next_step(&x.host, &mut now);
    let admin = x.login("login totp", json!({"user": ADMIN_NAME, "password": ADMIN_PW, "code": totp(&secret, now)})).await;
    let a = admin.headers(&[]);
    next_step(&x.host, &mut now);
    let with_totp = admin.headers(&[("x-2fa-code", &totp(&secret, now))]);
    assert_eq!(x.post("syncNow totp", "/api/v1/ldap.syncNow", &refs(&with_totp), json!({})).await.status, 200);
    assert_eq!(x.post("syncNow totp replay", "/api/v1/ldap.syncNow", &refs(&with_totp), json!({})).await.status, 400);
    let with_backup = admin.headers(&[("x-2fa-code", &codes[1])]);
    assert_eq!(x.post("syncNow backup code", "/api/v1/ldap.syncNow", &refs(&with_backup), json!({})).await.status, 200);
    assert_eq!(x.post("syncNow used backup code", "/api/v1/ldap.syncNow", &refs(&with_backup), json!({})).await.status, 400);
    assert_eq!(x.post("syncNow password under totp", "/api/v1/ldap.syncNow", &refs(&with_pw), json!({})).await.status, 400);

    // Sync failures and settings errors, each paid for with a backup code.
    let mut spare_codes = codes[2..].iter();
    let mut failing_sync = async |x: &mut Transcript, what: &str, settings: &[(&str, &str)]| {
        for (name, value) in settings {
            x.host.set_variable(*name, *value).expect("variable");
        }
        let code = spare_codes.next().expect("a backup code left");
        let h = admin.headers(&[("x-2fa-code", code)]);
        let res = x.post(&format!("syncNow {what}"), "/api/v1/ldap.syncNow", &refs(&h), json!({})).await;
        x.post(&format!("ldap.testConnection {what}"), "/api/v1/ldap.testConnection", &refs(&a), json!({})).await;
        x.post(&format!("ldap.testSearch {what}"), "/api/v1/ldap.testSearch", &refs(&a), json!({"username": "alice"})).await;
        x.post(&format!("login ldap {what}"), "/api/v1/login", &[], json!({"user": "alice", "password": ALICE_PW})).await;
        res
    };
    let ca = slapd.ca_pem().expect("ca");
    let other_ca = slapd.other_ca_pem().expect("other ca");
    let res = failing_sync(&mut x, "wrong bind password", &[("ldap_authentication_password", WRONG_BIND_PW)]).await;
    assert_eq!(res.status, 400, "{}", res.text());
    let res =
        failing_sync(&mut x, "bad filter", &[("ldap_authentication_password", BIND_PW), ("ldap_user_search_filter", "(&(cn=x)")]).await;
    assert_eq!(res.status, 400, "{}", res.text());
    let res = failing_sync(
        &mut x,
        "unsupported setting",
        &[("ldap_user_search_filter", "(objectclass=*)"), ("ldap_sync_user_data_channels", "true")],
    )
    .await;
    assert_eq!(res.status, 400, "{}", res.text());
    let res = failing_sync(&mut x, "bad encryption", &[("ldap_sync_user_data_channels", "false"), ("ldap_encryption", "bogus")]).await;
    assert_eq!(res.status, 400, "{}", res.text());
    let res = failing_sync(&mut x, "bad page size", &[("ldap_encryption", "plain"), ("ldap_search_page_size", "many")]).await;
    assert_eq!(res.status, 400, "{}", res.text());
    let res = failing_sync(
        &mut x,
        "StartTLS wrong CA",
        &[("ldap_search_page_size", "250"), ("ldap_encryption", "tls"), ("ldap_ca_cert", &other_ca)],
    )
    .await;
    assert_eq!(res.status, 400, "{}", res.text());
    let res = failing_sync(&mut x, "StartTLS unverified", &[("ldap_reject_unauthorized", "false")]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let res = failing_sync(&mut x, "StartTLS", &[("ldap_reject_unauthorized", "true"), ("ldap_ca_cert", &ca)]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let port = slapd.port();
    slapd.stop();
    let res = failing_sync(&mut x, "stopped server", &[("ldap_encryption", "plain")]).await;
    assert_eq!(res.status, 400, "{}", res.text());
    assert!(res.text().contains(&format!("127.0.0.1:{port}")), "{}", res.text());

    // 2fa:disable with a fresh code; then the rate limits.
    next_step(&x.host, &mut now);
    let (res, inner) = x.method("2fa:disable", &admin, &[], "2fa:disable", json!([totp(&secret, now)])).await;
    assert_eq!(inner["result"], json!(true), "{inner}");
    x.record("2fa:disable", &res);
    x.host.set_variable("api_enable_rate_limiter", "true").expect("variable");
    let mut limited = false;
    for i in 0..15 {
        let body = json!({"user": ADMIN_NAME, "password": WRONG_PW}).to_string().into_bytes();
        let res = x.send("POST", "/api/v1/login", &[], body, Some(LIMITED_CLIENT)).await;
        x.record(&format!("login rate limit {i}"), &res);
        limited |= res.status == 429;
    }
    assert!(limited, "the login limit never answered 429");
    let mut limited = false;
    for i in 0..15 {
        let res = x.send("GET", "/api/v1/users.list", &refs(&al), Vec::new(), Some(LIMITED_CLIENT)).await;
        x.record(&format!("users.list rate limit {i}"), &res);
        limited |= res.status == 429;
    }
    assert!(limited, "the users.list limit never answered 429");

    // The capture works: the guest's own log lines are there.
    let stderr = String::from_utf8_lossy(&x.host.output().expect("captured").stderr()).into_owned();
    assert!(stderr.contains(r#""msg":"sync finished""#) && stderr.contains(r#""outcome":"success""#), "{stderr}");
    assert!(stderr.contains(r#"{"level":"info","msg":"created the bootstrap admin","username":"#), "{stderr}");
    // Every line is one JSON object with a level and a message.
    for line in stderr.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(event["level"].is_string() && event["msg"].is_string(), "{line}");
    }
    assert!(x.secrets.len() > 40, "{} secrets", x.secrets.len());
    x.assert_clean();
}
