//! Real parallel requests (issue 8, "Proof"): many requests fired at once on
//! a multi-threaded runtime, each in its own instance as Spin runs them, and
//! the store-consistency checker after every test.
//!
//! Each burst starts its requests behind a barrier, so that they reach the
//! component together; the guest of each runs on its own task
//! ([`Host::send`]), on any of the runtime's worker threads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use ldap_sync_host::consistency::check_store;
use ldap_sync_host::demo::{DEMO_PEOPLE_BASE, DEMO_USER_PASSWORD, demo_variables, start_demo};
use ldap_sync_host::fixture::SYNC_IN_PROGRESS;
use ldap_sync_host::serve::serve;
use ldap_sync_host::slapd::Slapd;
use ldap_sync_host::{ClientAddr, Host, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;

const ADMIN: [(&str, &str); 3] = [("admin_username", "root"), ("admin_pass", "rootpw"), ("admin_email", "root@example.org")];
const PASSWORD: &str = "rootpw";
/// How many requests each burst fires at once.
const N: usize = 20;

fn unauthorized() -> Value {
    json!({"success": false, "error": "Unauthorized", "status": "error", "message": "Unauthorized"})
}

fn too_many_requests() -> Value {
    json!({"success": false,
    "error": "Error, too many requests. Please slow down. You must wait 60 seconds before trying this endpoint again. [error-too-many-requests]"})
}

fn ldap_disabled() -> Value {
    json!({"success": false, "error": "LDAP_disabled"})
}

/// `ldap.syncNow`'s refusal of a second factor (TOTP enabled).
fn sync_now_refusal(error_type: &str) -> Value {
    let error = match error_type {
        "totp-invalid" => "TOTP Invalid [totp-invalid]",
        _ => "TOTP Maximun Failed Attempts Reached [totp-max-attempts]",
    };
    json!({"success": false, "error": error, "errorType": error_type,
           "details": {"method": "totp", "codeGenerated": false, "availableMethods": ["totp"]}})
}

/// Login's refusal of a second factor (TOTP enabled), upstream's login shape.
fn login_refusal(error: &str) -> Value {
    let message = match error {
        "totp-required" => "TOTP Required",
        "totp-invalid" => "TOTP Invalid",
        _ => "TOTP Maximun Failed Attempts Reached",
    };
    json!({"success": false, "error": error, "status": "error",
           "details": {"method": "totp", "codeGenerated": false, "availableMethods": ["totp"]}, "message": message})
}

/// A host with the bootstrap admin `root` and `extra` variables.
fn admin_host(extra: &[(&str, &str)]) -> Arc<Host> {
    let mut vars: Vec<(&str, &str)> = ADMIN.to_vec();
    vars.extend_from_slice(extra);
    Arc::new(host(&vars))
}

/// Each key-value operation of the bursts takes this long, as on a networked
/// store: a non-atomic read-modify-write then overlaps a parallel one far
/// more often than on an in-memory SQLite store.
const KV_LATENCY: Duration = Duration::from_millis(2);

fn at(t: u64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(t)
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> http::Request<Vec<u8>> {
    let mut req = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default()).expect("request")
}

fn login_request(body: Value) -> http::Request<Vec<u8>> {
    request("POST", "/api/v1/login", &[], Some(body))
}

fn from(addr: &str, mut req: http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    req.extensions_mut().insert(ClientAddr(addr.parse::<SocketAddr>().expect("address")));
    req
}

/// A logged-in session.
#[derive(Clone, Debug)]
struct Session {
    id: String,
    token: String,
}

impl Session {
    fn headers<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut h = vec![("x-user-id", self.id.as_str()), ("x-auth-token", self.token.as_str())];
        h.extend_from_slice(extra);
        h
    }

    fn sync_now(&self, code: &str) -> http::Request<Vec<u8>> {
        request("POST", "/api/v1/ldap.syncNow", &self.headers(&[("x-2fa-code", code)]), None)
    }

    fn me(&self) -> http::Request<Vec<u8>> {
        request("GET", "/api/v1/me", &self.headers(&[]), None)
    }

    fn logout(&self) -> http::Request<Vec<u8>> {
        request("POST", "/api/v1/logout", &self.headers(&[]), Some(json!({})))
    }

    /// `method.call/<name>`, with `x-2fa-code` when given.
    fn method(&self, name: &str, params: Value, code: Option<&str>) -> http::Request<Vec<u8>> {
        let message = json!({"msg": "method", "id": "7", "method": name, "params": params}).to_string();
        let extra: Vec<(&str, &str)> = code.map(|c| ("x-2fa-code", c)).into_iter().collect();
        request("POST", &format!("/api/v1/method.call/{name}"), &self.headers(&extra), Some(json!({"message": message})))
    }
}

async fn send_one(host: &Host, req: http::Request<Vec<u8>>) -> Response {
    host.send(req).await.expect("host answers")
}

fn session_of(res: &Response) -> Session {
    assert_eq!(res.status, 200, "login failed: {}", res.text());
    let body = res.json();
    Session {
        id: body["data"]["userId"].as_str().expect("userId").to_owned(),
        token: body["data"]["authToken"].as_str().expect("authToken").to_owned(),
    }
}

async fn login(host: &Host, user: &str, password: &str) -> Session {
    session_of(&send_one(host, login_request(json!({"user": user, "password": password}))).await)
}

/// The inner message of a `method.call` answer.
#[track_caller]
fn method_result(res: &Response) -> Value {
    assert_eq!((res.status, res.json()["success"].clone()), (200, json!(true)), "{}", res.text());
    serde_json::from_str(res.json()["message"].as_str().expect("message")).expect("inner JSON")
}

fn totp_code(secret: &str, t: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.into()).to_bytes().expect("base32");
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 0, 30, bytes).generate(t)
}

/// Starts enrolment (`2fa:enable`, with the password digest as second
/// factor) and returns the new secret.
async fn enable_totp(host: &Host, session: &Session) -> String {
    let res = send_one(host, session.method("2fa:enable", json!([]), Some(&sha256_hex(PASSWORD)))).await;
    let enabled = method_result(&res);
    enabled["result"]["secret"].as_str().unwrap_or_else(|| panic!("2fa:enable: {enabled}")).to_owned()
}

/// Enrols `session`'s user in TOTP with a code of step `t`; returns the
/// secret and the 12 backup codes.
async fn enrol(host: &Host, session: &Session, t: u64) -> (String, Vec<String>) {
    let secret = enable_totp(host, session).await;
    host.set_time(at(t));
    let res = send_one(host, session.method("2fa:validateTempToken", json!([totp_code(&secret, t)]), None)).await;
    let valid = method_result(&res);
    let codes: Vec<String> = serde_json::from_value(valid["result"]["codes"].clone()).unwrap_or_else(|_| panic!("codes: {valid}"));
    assert_eq!(codes.len(), 12);
    (secret, codes)
}

/// Sends every request at once: one task each, released together by a
/// barrier. Answers in the order of `reqs`.
async fn burst(host: &Arc<Host>, reqs: Vec<http::Request<Vec<u8>>>) -> Vec<Response> {
    host.kv_store().set_latency(KV_LATENCY);
    let answers = burst_now(host, reqs).await;
    host.kv_store().set_latency(Duration::ZERO);
    answers
}

/// How many answers have exactly this status and body.
fn count(answers: &[Response], status: u16, body: &Value) -> usize {
    answers.iter().filter(|r| r.status == status && r.try_json().ok().as_ref() == Some(body)).count()
}

#[track_caller]
fn assert_consistent(host: &Host) {
    if let Err(e) = check_store(host) {
        panic!("{e:#}");
    }
}

/// `(status, body)` of each answer, for failure messages.
fn summary(answers: &[Response]) -> Vec<(u16, String)> {
    answers.iter().map(|r| (r.status, r.text())).collect()
}

// ---------------------------------------------------------------------------
// Counters that hold
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_password_logins_from_one_address_hold_the_rate_limit() {
    let host = admin_host(&[("api_enable_rate_limiter_limit_calls_default", "5")]);
    // The admin exists before the burst (a first login from elsewhere).
    let warm_up = send_one(&host, from("10.9.9.9:4000", login_request(json!({"user": "root", "password": PASSWORD})))).await;
    assert_eq!(warm_up.status, 200, "{}", warm_up.text());

    let wrong = || login_request(json!({"user": "root", "password": "not-the-password"}));
    let answers = burst(&host, (0..N).map(|_| wrong()).collect()).await;
    let passed = count(&answers, 401, &unauthorized());
    let limited = count(&answers, 429, &too_many_requests());
    assert_eq!(passed + limited, N, "every answer is a 401 or the limiter's 429: {:#?}", summary(&answers));
    assert!((1..=5).contains(&passed), "{passed} of {N} parallel logins got past a limit of 5: {:#?}", summary(&answers));
    for res in answers.iter().filter(|r| r.status == 429) {
        assert_eq!(res.header("x-ratelimit-remaining"), Some("0"));
    }
    // The window is used up: even the right password is refused now.
    let after = send_one(&host, login_request(json!({"user": "root", "password": PASSWORD}))).await;
    assert_reply(&after, 429, too_many_requests());
    assert_consistent(&host);
}

/// The admin enrolled in TOTP at `T0 + 30`.
async fn totp_admin() -> (Arc<Host>, Session, String, Vec<String>) {
    let host = admin_host(&[("api_enable_rate_limiter", "false")]);
    let session = login(&host, "root", PASSWORD).await;
    let (secret, codes) = enrol(&host, &session, T0 + 30).await;
    (host, session, secret, codes)
}

/// Replay bursts run in rounds, to give a lost update more chances to show.
const ROUNDS: u64 = 4;

/// The time of replay round `round`: a fresh TOTP step each, and more than
/// the 5-minute lock that the previous round's failures may have started.
fn round_time(round: u64) -> u64 {
    T0 + 60 + round * 330
}

/// Which of `answers` got through, `ok` saying what getting through looks
/// like; every other answer must be a refusal of the code (`refusals`).
#[track_caller]
fn exactly_one_through(answers: &[Response], ok: impl Fn(&Response) -> bool, refusals: &[(u16, Value)], round: u64) -> usize {
    let through: Vec<usize> = (0..answers.len()).filter(|&i| ok(&answers[i])).collect();
    let refused: usize = refusals.iter().map(|(status, body)| count(answers, *status, body)).sum();
    assert_eq!((through.len(), refused), (1, answers.len() - 1), "round {round}: {:#?}", summary(answers));
    through[0]
}

fn sync_now_refusals() -> [(u16, Value); 2] {
    [(400, sync_now_refusal("totp-invalid")), (400, sync_now_refusal("totp-max-attempts"))]
}

fn login_refusals() -> [(u16, Value); 2] {
    [(401, login_refusal("totp-invalid")), (401, login_refusal("totp-max-attempts"))]
}

async fn codes_remaining(host: &Host, session: &Session) -> Value {
    method_result(&send_one(host, session.method("2fa:checkCodesRemaining", json!([]), None)).await)["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_replays_of_one_totp_code_on_sync_now_let_exactly_one_through() {
    let (host, session, secret, _) = totp_admin().await;
    for round in 0..ROUNDS {
        host.set_time(at(round_time(round)));
        let code = totp_code(&secret, round_time(round));
        let answers = burst(&host, (0..N).map(|_| session.sync_now(&code)).collect()).await;
        exactly_one_through(&answers, |r| r.status == 400 && r.json() == ldap_disabled(), &sync_now_refusals(), round);
        assert_consistent(&host);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_replays_of_one_totp_code_on_login_let_exactly_one_through() {
    let (host, _, secret, _) = totp_admin().await;
    for round in 0..ROUNDS {
        host.set_time(at(round_time(round)));
        let body = json!({"user": "root", "password": PASSWORD, "code": totp_code(&secret, round_time(round))});
        let answers = burst(&host, (0..N).map(|_| login_request(body.clone())).collect()).await;
        let winner = exactly_one_through(&answers, |r| r.status == 200, &login_refusals(), round);
        // The one token handed out works.
        assert_eq!(send_one(&host, session_of(&answers[winner]).me()).await.status, 200);
        assert_consistent(&host);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_replays_of_one_backup_code_on_sync_now_let_exactly_one_through() {
    let (host, session, _, codes) = totp_admin().await;
    for (round, code) in (0..ROUNDS).zip(&codes) {
        host.set_time(at(round_time(round)));
        let answers = burst(&host, (0..N).map(|_| session.sync_now(code)).collect()).await;
        exactly_one_through(&answers, |r| r.status == 400 && r.json() == ldap_disabled(), &sync_now_refusals(), round);
        // Exactly one code is gone.
        assert_eq!(codes_remaining(&host, &session).await, json!({"remaining": 11 - round}), "round {round}");
        assert_consistent(&host);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_replays_of_one_backup_code_on_login_let_exactly_one_through() {
    let (host, session, _, codes) = totp_admin().await;
    for (round, code) in (0..ROUNDS).zip(&codes) {
        host.set_time(at(round_time(round)));
        let body = json!({"user": "root", "password": PASSWORD, "code": code});
        let answers = burst(&host, (0..N).map(|_| login_request(body.clone())).collect()).await;
        let winner = exactly_one_through(&answers, |r| r.status == 200, &login_refusals(), round);
        assert_eq!(send_one(&host, session_of(&answers[winner]).me()).await.status, 200);
        assert_eq!(codes_remaining(&host, &session).await, json!({"remaining": 11 - round}), "round {round}");
        assert_consistent(&host);
    }
}

// ---------------------------------------------------------------------------
// No lost updates
// ---------------------------------------------------------------------------

/// A login, a logout of another session and `2fa:validateTempToken` of a
/// third, at once, for one user. Whatever the order, the logout stays done,
/// TOTP stays on with the validated secret, and the enrolling session stays.
///
/// Validating a TOTP secret logs out every other session (upstream's
/// `removeNonPATLoginTokensExcept`), so some outcomes depend on the order:
/// the logout may find its session already ended (401), and the new login
/// token may end logged out if the login came first.
/// What may not happen is that it vanishes while the login came after the
/// validation; `login_racing_logout_keeps_both_changes` checks that a login
/// and a logout alone never lose the new token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_racing_logout_and_validate_temp_token_loses_no_change() {
    let host = admin_host(&[("api_enable_rate_limiter", "false")]);
    let leaving = login(&host, "root", PASSWORD).await;
    let enrolling = login(&host, "root", PASSWORD).await;
    let secret = enable_totp(&host, &enrolling).await;
    host.set_time(at(T0 + 30));
    let code = totp_code(&secret, T0 + 30);

    let answers = burst(
        &host,
        vec![
            login_request(json!({"user": "root", "password": PASSWORD})),
            leaving.logout(),
            enrolling.method("2fa:validateTempToken", json!([code]), None),
        ],
    )
    .await;
    let [new_login, logout, validate] = &answers[..] else { unreachable!("three answers") };
    // Validating first logs the leaving session out too; the logout then finds no session.
    let logged_out = json!({"status": "success", "data": {"message": "You've been logged out!"}});
    let not_logged_in = json!({"success": false, "error": "You must be logged in to do this.", "status": "error",
                               "message": "You must be logged in to do this."});
    assert!(
        (logout.status, logout.json()) == (200, logged_out) || (logout.status, logout.json()) == (401, not_logged_in),
        "{} {}",
        logout.status,
        logout.text()
    );
    let validated = method_result(validate);
    assert_eq!(validated["result"]["codes"].as_array().map(Vec::len), Some(12), "{validated}");
    // The login either came first (no TOTP yet) or after (TOTP now required).
    assert!(
        new_login.status == 200 || (new_login.status == 401 && new_login.json() == login_refusal("totp-required")),
        "{} {}",
        new_login.status,
        new_login.text()
    );

    // The logout was not undone.
    assert_eq!(send_one(&host, leaving.me()).await.status, 401, "the logged-out token works again");
    // The enrolling session survives its own validation.
    assert_eq!(send_one(&host, enrolling.me()).await.status, 200, "the validating session was lost");
    // TOTP is on, with the validated secret.
    let res = send_one(&host, login_request(json!({"user": "root", "password": PASSWORD}))).await;
    assert_reply(&res, 401, login_refusal("totp-required"));
    host.set_time(at(T0 + 60));
    let fresh = session_of(
        &send_one(&host, login_request(json!({"user": "root", "password": PASSWORD, "code": totp_code(&secret, T0 + 60)}))).await,
    );
    assert_eq!(send_one(&host, fresh.me()).await.status, 200);
    let remaining = method_result(&send_one(&host, enrolling.method("2fa:checkCodesRemaining", json!([]), None)).await);
    assert_eq!(remaining["result"], json!({"remaining": 12}), "{remaining}");
    if new_login.status == 200 {
        let racer = session_of(new_login);
        let me = send_one(&host, racer.me()).await.status;
        eprintln!("the racing login's token answers {me} at /me (401 = logged out by 2fa:validateTempToken)");
        assert!(me == 200 || me == 401);
    }
    assert_consistent(&host);
}

/// Logins and logouts of other sessions at once, for one user, in rounds:
/// every new token works and every logged-out one does not.
///
/// Each round has a fresh store: a user holds at most 10 sessions (the
/// oldest ends when an eleventh starts), and a round opens six.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_racing_logout_keeps_both_changes() {
    for round in 0..5 {
        let host = admin_host(&[("api_enable_rate_limiter", "false")]);
        let keeper = login(&host, "root", PASSWORD).await;
        let leaving = [login(&host, "root", PASSWORD).await, login(&host, "root", PASSWORD).await];
        let mut reqs: Vec<_> = (0..3).map(|_| login_request(json!({"user": "root", "password": PASSWORD}))).collect();
        reqs.extend(leaving.iter().map(Session::logout));
        let answers = burst(&host, reqs).await;
        let new: Vec<Session> = answers[..3].iter().map(session_of).collect();
        for res in &answers[3..] {
            assert_reply(res, 200, json!({"status": "success", "data": {"message": "You've been logged out!"}}));
        }
        for s in &new {
            assert_eq!(send_one(&host, s.me()).await.status, 200, "round {round}: a new login token was lost");
        }
        for s in &leaving {
            assert_eq!(send_one(&host, s.me()).await.status, 401, "round {round}: a logged-out token came back");
        }
        assert_eq!(send_one(&host, keeper.me()).await.status, 200, "round {round}: an untouched session was lost");
        assert_consistent(&host);
    }
}

// ---------------------------------------------------------------------------
// Syncs and logins racing a rename
// ---------------------------------------------------------------------------

fn users(host: &Host) -> usize {
    host.kv_keys().expect("keys").iter().filter(|k| k.starts_with("user:")).count()
}

fn index(host: &Host, key: &str) -> Option<String> {
    get(host, key).map(|v| v.as_str().expect("an index key holds a string").to_owned())
}

/// Renames `uid=<old>` to `uid=<new>` (modrdn) and gives it `<new>@example.org` (modify).
fn rename(slapd: &Slapd, old: &str, new: &str) {
    slapd
        .modify(&format!(
            "dn: uid={old},{DEMO_PEOPLE_BASE}\nchangetype: modrdn\nnewrdn: uid={new}\ndeleteoldrdn: 1\n\n\
             dn: uid={new},{DEMO_PEOPLE_BASE}\nchangetype: modify\nreplace: mail\nmail: {new}@example.org\n"
        ))
        .unwrap_or_else(|e| panic!("renaming {old} to {new}: {e:#}"));
}

/// Two syncs, logins under the old and the new name, and the rename itself
/// (modrdn + modify in slapd), all at once, in rounds. After each round every
/// index key points at a document that agrees with it, no login created a
/// second user, and a final sync settles the renamed user under its new
/// name and address with its old `_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn syncs_and_logins_racing_a_rename_keep_the_indexes_consistent() {
    let slapd = Arc::new(start_demo(None).expect("demo directory"));
    let ldap: Vec<(&str, String)> = demo_variables(slapd.port());
    let mut vars: Vec<(&str, &str)> = ldap.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("api_enable_rate_limiter", "false"));
    let host = admin_host(&vars);
    let admin = login(&host, "root", PASSWORD).await;
    let factor = sha256_hex(PASSWORD);
    let res = send_one(&host, admin.sync_now(&factor)).await;
    assert_eq!((res.status, res.text()), (200, SYNC_IN_PROGRESS.to_owned()), "{:?}", res.error);
    assert_consistent(&host);
    let alice = index(&host, "username:alice").expect("alice synced");
    let carol = index(&host, "username:carol").expect("carol synced");
    let population = users(&host);

    let names = ["alice", "alice2", "alice3", "alice4"];
    for pair in names.windows(2) {
        let (old, new) = (pair[0], pair[1]);
        let renamer = {
            let slapd = Arc::clone(&slapd);
            let (old, new) = (old.to_owned(), new.to_owned());
            tokio::task::spawn_blocking(move || rename(&slapd, &old, &new))
        };
        let password = |user: &str| login_request(json!({"user": user, "password": DEMO_USER_PASSWORD}));
        let answers =
            burst(&host, vec![admin.sync_now(&factor), password(old), admin.sync_now(&factor), password(new), password("carol")]).await;
        renamer.await.expect("rename task");
        for (i, res) in [&answers[0], &answers[2]].into_iter().enumerate() {
            assert_eq!((res.status, res.text()), (200, SYNC_IN_PROGRESS.to_owned()), "round {old}->{new}, sync {i}: {:?}", res.error);
        }
        for res in [&answers[1], &answers[3]] {
            match res.status {
                200 => assert_eq!(session_of(res).id, alice, "a login made a second user"),
                _ => assert_reply(res, 401, unauthorized()),
            }
        }
        assert_eq!(session_of(&answers[4]).id, carol);
        assert_consistent(&host);
        assert_eq!(users(&host), population, "round {old}->{new}: a user was created or lost");
    }

    // Settled: one more sync, then the old names are gone and the new ones are alice's.
    let res = send_one(&host, admin.sync_now(&factor)).await;
    assert_eq!((res.status, res.text()), (200, SYNC_IN_PROGRESS.to_owned()), "{:?}", res.error);
    assert_consistent(&host);
    let last = names[names.len() - 1];
    assert_eq!(index(&host, &format!("username:{last}")), Some(alice.clone()));
    assert_eq!(index(&host, &format!("email:{last}@example.org")), Some(alice.clone()));
    for old in &names[..names.len() - 1] {
        assert_eq!(index(&host, &format!("username:{old}")), None, "username:{old} outlived the rename");
    }
    assert_eq!(index(&host, "email:alice@example.org"), None);
    assert_eq!(login(&host, last, DEMO_USER_PASSWORD).await.id, alice);
    assert_eq!(users(&host), population);
}

// ---------------------------------------------------------------------------
// Requests really run in parallel
// ---------------------------------------------------------------------------

/// A TCP server that accepts connections and never answers, until dropped.
struct SilentServer {
    port: u16,
    accepted: tokio::sync::mpsc::UnboundedReceiver<()>,
    task: tokio::task::JoinHandle<()>,
}

impl SilentServer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (tx, accepted) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
                let _ = tx.send(());
            }
        });
        Self { port, accepted, task }
    }

    /// Waits until a client connected.
    async fn connected(&mut self) {
        tokio::time::timeout(Duration::from_secs(60), self.accepted.recv()).await.expect("the component connects").expect("server running");
    }

    /// Closes the listener and every held connection.
    fn stop(self) {
        self.task.abort();
    }
}

/// A host whose directory is a [`SilentServer`]: a directory login hangs
/// until the server goes away.
async fn stalling_host() -> (SilentServer, Arc<Host>) {
    let server = SilentServer::start().await;
    let ldap: Vec<(&str, String)> = demo_variables(server.port);
    let mut vars: Vec<(&str, &str)> = ldap.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.extend([("api_enable_rate_limiter", "false"), ("ldap_timeout", "60000")]);
    (server, admin_host(&vars))
}

/// While one request waits on its directory, other requests complete:
/// nothing serialises whole requests in `Host::send`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_waiting_on_the_directory_does_not_hold_up_others() {
    let (mut server, host) = stalling_host().await;
    let stalled = {
        let host = Arc::clone(&host);
        tokio::spawn(async move { send_one(&host, login_request(json!({"user": "ghost", "password": "pw"}))).await })
    };
    server.connected().await;
    let quick =
        tokio::time::timeout(Duration::from_secs(60), burst_now(&host, (0..8).map(|_| request("GET", "/api/v1/me", &[], None)).collect()))
            .await
            .expect("the other requests finish while one waits");
    for res in &quick {
        assert_eq!(res.status, 401, "{}", res.text());
    }
    assert!(!stalled.is_finished(), "the waiting request finished early");
    server.stop();
    let res = tokio::time::timeout(Duration::from_secs(60), stalled).await.expect("it ends with the server").expect("task");
    assert_ne!(res.status, 200, "{}", res.text());
    assert_consistent(&host);
}

/// Sends one HTTP/1.1 request over a fresh connection; returns the status.
async fn http_status(addr: SocketAddr, method: &str, path: &str, body: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"))
}

/// The same through `ldap-sync-serve`'s server, over real connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ldap_sync_serve_answers_others_while_one_request_waits() {
    let (mut server, host) = stalling_host().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let serving = tokio::spawn(serve(listener, Arc::clone(&host)));
    let stalled = tokio::spawn(http_status(addr, "POST", "/api/v1/login", r#"{"user":"ghost","password":"pw"}"#));
    server.connected().await;
    let quick: Vec<_> = (0..8).map(|_| tokio::spawn(http_status(addr, "GET", "/api/v1/me", ""))).collect();
    for task in quick {
        let status = tokio::time::timeout(Duration::from_secs(60), task).await.expect("answered while one waits").expect("task");
        assert_eq!(status, 401);
    }
    assert_eq!(http_status(addr, "GET", "/.well-known/spin/health", "").await, 200);
    assert!(!stalled.is_finished(), "the waiting request finished early");
    server.stop();
    let status = tokio::time::timeout(Duration::from_secs(60), stalled).await.expect("it ends with the server").expect("task");
    assert_ne!(status, 200);
    serving.abort();
    assert_consistent(&host);
}
