//! `scripts/scheduled-sync.sh` end to end, as cron runs it: a real slapd, the
//! real component served over HTTP on 127.0.0.1 (`ldap_sync_host::serve`, as
//! `ldap-sync-serve` runs it) on the REAL clock (the script computes its TOTP
//! codes from the wall clock), and the bootstrap admin as the sync user,
//! enrolled in TOTP through the real routes as `docs/deploy.md` says.
//!
//! Three runs of the script, each from a blocking thread while the server
//! keeps serving: a good one (exit 0, the directory in the store), one with
//! slapd gone (exit 1, "the sync failed") and one with a wrong password
//! (exit 2). After each: nothing on stdout, no password, TOTP secret or login
//! token on stderr, no session left behind, and its temporary directory gone.
//!
//! The script waits for a fresh 30-second TOTP step before each request (a
//! used step is refused as a replay), so this test takes two to three minutes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ldap_sync_host::demo::demo_variables;
use ldap_sync_host::fixture::variables;
use ldap_sync_host::serve::serve;
use ldap_sync_host::{Host, HostOptions, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::common::*;
use crate::offboarding::{directory, start_slapd, uids};

/// The sync user: the bootstrap admin (`admin_username`, `admin_pass`, `admin_email`).
const SYNC_USER: &str = "sync-bot";
const PASSWORD: &str = "Sync-bot-pw-7f3e";
const EMAIL: &str = "sync-bot@example.org";
/// Directory users (`u00`..).
const PEOPLE: usize = 7;
/// A TOTP step, in seconds.
const STEP: u64 = 30;
/// Longest a run of the script may take: three requests, each up to a step
/// away, and a retried login.
const RUN_LIMIT: Duration = Duration::from_secs(240);

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

fn totp_code(secret: &str, t: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.into()).to_bytes().expect("base32");
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 0, STEP, bytes).generate(t)
}

/// `method.call/<name>` as Rocket.Chat's web client sends it, with `extra` headers.
async fn method_call(host: &Host, session: &[(&'static str, Vec<u8>)], name: &str, params: Value, extra: &[(&'static str, &str)]) -> Value {
    let message = json!({"msg": "method", "id": "1", "method": name, "params": params}).to_string();
    let body = json!({"message": message}).to_string().into_bytes();
    let mut headers = with(session, extra);
    headers.push(("content-type", b"application/json"));
    let res = send(host, "POST", &format!("/api/v1/method.call/{name}"), &headers, body).await;
    assert_eq!((res.status, res.json()["success"].clone()), (200, json!(true)), "{name}: {}", res.text());
    let inner: Value = serde_json::from_str(res.json()["message"].as_str().expect("message")).expect("inner JSON");
    assert!(inner.get("error").is_none(), "{name}: {inner}");
    inner
}

fn logged_in(res: &Response) -> (String, Vec<(&'static str, Vec<u8>)>) {
    assert_eq!(res.status, 200, "login: {}", res.text());
    let data = res.json()["data"].clone();
    let id = data["userId"].as_str().expect("userId").to_owned();
    let token = data["authToken"].as_str().expect("authToken").to_owned();
    (id.clone(), vec![("x-user-id", id.into_bytes()), ("x-auth-token", token.into_bytes())])
}

/// Enrols the sync user in TOTP as `docs/deploy.md` does: login with the
/// password, `2fa:enable` behind the password's SHA-256, then
/// `2fa:validateTempToken` with a code of the current step. Returns the
/// user's `_id` and the secret.
///
/// The code is sent with at least 10 s left in its step, so that the first
/// run of the script, started right after, begins in the step enrolment used.
async fn enrol(host: &Host) -> (String, String) {
    let body = json!({"user": SYNC_USER, "password": PASSWORD}).to_string().into_bytes();
    let res = send(host, "POST", "/api/v1/login", &[("content-type", b"application/json")], body).await;
    let (id, session) = logged_in(&res);
    assert_eq!(res.json()["data"]["me"]["username"], json!(SYNC_USER), "the bootstrap admin logged in");
    let digest = sha256_hex(PASSWORD);
    let enabled = method_call(host, &session, "2fa:enable", json!([]), &[("x-2fa-method", "password"), ("x-2fa-code", &digest)]).await;
    let secret = enabled["result"]["secret"].as_str().unwrap_or_else(|| panic!("2fa:enable: {enabled}")).to_owned();
    let left = STEP - unix_now() % STEP;
    if left < 10 {
        tokio::time::sleep(Duration::from_secs(left + 1)).await;
    }
    let code = totp_code(&secret, unix_now());
    let valid = method_call(host, &session, "2fa:validateTempToken", json!([code]), &[]).await;
    assert_eq!(valid["result"]["codes"].as_array().map(Vec::len), Some(12), "2fa:validateTempToken: {valid}");
    (id, secret)
}

/// The sessions (`login-token:` keys) of user `id`.
fn sessions(host: &Host, id: &str) -> usize {
    host.kv_keys()
        .expect("keys")
        .iter()
        .filter(|k| k.starts_with("login-token:"))
        .filter(|k| get(host, k).is_some_and(|s| s["userId"] == json!(id)))
        .count()
}

/// The hashed tokens of every login of user `id` that still holds a slot
/// (`login-token-slot:<_id>:<n>`; a logout deletes the session, not the slot).
fn slot_hashes(host: &Host, id: &str) -> BTreeSet<String> {
    let prefix = format!("login-token-slot:{id}:");
    host.kv_keys()
        .expect("keys")
        .iter()
        .filter(|k| k.starts_with(&prefix))
        .filter_map(|k| get(host, k))
        .map(|v| v.as_str().expect("a slot holds the hashed token").to_owned())
        .collect()
}

/// The usernames of every user document, sorted.
fn usernames(host: &Host) -> Vec<String> {
    let mut names: Vec<String> = host
        .kv_keys()
        .expect("keys")
        .iter()
        .filter(|k| k.starts_with("user:"))
        .filter_map(|k| get(host, k))
        .map(|d| d["username"].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

/// One run of the script, as cron starts it: `bash scripts/scheduled-sync.sh`
/// with the four variables, from a blocking thread (the server keeps
/// serving), `TMPDIR` a fresh directory of its own.
struct Run {
    status: i32,
    stderr: String,
    took: Duration,
}

async fn run_script(url: &str, password: &str, secret: &str, tmp: &Path) -> Run {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/scheduled-sync.sh");
    std::fs::create_dir_all(tmp).expect("TMPDIR");
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .env("LDAP_SYNC_URL", url)
        .env("LDAP_SYNC_USER", SYNC_USER)
        .env("LDAP_SYNC_PASSWORD", password)
        .env("LDAP_SYNC_TOTP_SECRET", secret)
        .env("LDAP_SYNC_TIMEOUT", "120")
        .env("TMPDIR", tmp);
    let started = Instant::now();
    let task = tokio::task::spawn_blocking(move || cmd.output());
    let output: Output = tokio::time::timeout(RUN_LIMIT, task)
        .await
        .unwrap_or_else(|_| panic!("the script ran longer than {RUN_LIMIT:?}"))
        .expect("script thread")
        .expect("bash runs");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    eprintln!("--- scheduled-sync.sh ({took:.0?}, {}):\n{stderr}", output.status);
    assert!(output.stdout.is_empty(), "the script wrote to stdout (cron mails it): {:?}", String::from_utf8_lossy(&output.stdout));
    let status = output.status.code().unwrap_or_else(|| panic!("the script was killed: {}", output.status));
    assert!(stderr.lines().all(|l| l.starts_with("scheduled-sync: ")), "a stderr line not from the script's log():\n{stderr}");
    let left: Vec<_> = std::fs::read_dir(tmp).expect("TMPDIR").map(|e| e.expect("entry").path()).collect();
    assert!(left.is_empty(), "the script left {left:?} behind in TMPDIR");
    Run { status, stderr, took }
}

/// No secret on stderr: not the password (nor its SHA-256), not the TOTP
/// secret, not any login token the user's logins handed out. A token is 43
/// URL-safe base64 characters: every such stretch of stderr is hashed and
/// looked up among the hashed tokens of the user's login slots.
#[track_caller]
fn assert_no_secrets(run: &Run, secrets: &[&str], hashed_tokens: &BTreeSet<String>) {
    for secret in secrets {
        assert!(!run.stderr.contains(secret), "stderr holds a secret ({} characters):\n{}", secret.len(), run.stderr);
        assert!(!run.stderr.to_lowercase().contains(&secret.to_lowercase()), "stderr holds a secret in another case");
    }
    for hashed in hashed_tokens {
        assert!(!run.stderr.contains(hashed.as_str()), "stderr holds a hashed login token");
    }
    let token_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    for stretch in run.stderr.split(|c: char| !token_char(c)).filter(|s| s.len() >= 43) {
        for start in 0..=stretch.len() - 43 {
            let candidate = &stretch[start..start + 43];
            assert!(!hashed_tokens.contains(&hash_token(candidate)), "stderr holds a login token:\n{}", run.stderr);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_sync_script_syncs_reports_failures_and_logs_out() {
    let mut slapd = start_slapd(directory(&uids(PEOPLE)), None);
    let ldap = demo_variables(slapd.port());
    let mut vars: Vec<(&str, &str)> = ldap.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.extend([("admin_username", SYNC_USER), ("admin_pass", PASSWORD), ("admin_email", EMAIL)]);
    // No `set_time`: the guest's wall clock is the real one, as the script's.
    let opts = store_options(HostOptions { variables: variables(vars), ..HostOptions::default() });
    let host = Arc::new(Host::new(opts).expect("host starts"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let serving = tokio::spawn(serve(listener, Arc::clone(&host)));
    let tmp = std::env::temp_dir().join(format!("ldap-sync-scheduled-{}", std::process::id()));
    let started = Instant::now();

    let (id, secret) = enrol(&host).await;
    let digest = sha256_hex(PASSWORD);
    let secrets = [PASSWORD, digest.as_str(), secret.as_str()];
    let before = sessions(&host, &id);
    assert_eq!(before, 1, "the enrolling session");
    assert_eq!(usernames(&host), vec![SYNC_USER.to_owned()], "nothing synced yet");

    // 1. A good run, started in the TOTP step that enrolment used.
    let good = run_script(&url, PASSWORD, &secret, &tmp).await;
    assert_eq!(good.status, 0, "a good run exits 0:\n{}", good.stderr);
    let mut expected = uids(PEOPLE);
    expected.push(SYNC_USER.to_owned());
    expected.sort();
    assert_eq!(usernames(&host), expected, "the store holds the directory's users");
    let report = get(&host, "sync-report:last").expect("sync-report:last");
    assert_eq!((report["outcome"].clone(), report["fullyInSync"].clone()), (json!("success"), json!(true)), "{report}");
    assert_eq!(report["created"], json!(PEOPLE), "{report}");
    for step in ["logged in", "Sync_in_progress", "fully in sync: yes", "logged out"] {
        assert!(good.stderr.contains(step), "no {step:?} in stderr:\n{}", good.stderr);
    }
    assert!(
        good.stderr.contains("trying again with the next step's code"),
        "the first login, in enrolment's step, is a replay the script retries:\n{}",
        good.stderr
    );
    assert_no_secrets(&good, &secrets, &slot_hashes(&host, &id));
    assert_eq!(sessions(&host, &id), before, "the good run left a session");
    assert_eq!(slot_hashes(&host, &id).len(), 2, "one login by enrolment, one by the script (the refused one opened none)");

    // 2. The directory is gone: the sync fails.
    slapd.stop();
    let failed = run_script(&url, PASSWORD, &secret, &tmp).await;
    assert_eq!(failed.status, 1, "a failed sync exits 1:\n{}", failed.stderr);
    assert!(failed.stderr.contains("the sync failed: "), "stderr says the run failed:\n{}", failed.stderr);
    assert!(failed.stderr.contains("logged out"), "{}", failed.stderr);
    let report = get(&host, "sync-report:last").expect("sync-report:last");
    assert_eq!(report["outcome"], json!("failed"), "{report}");
    assert_no_secrets(&failed, &secrets, &slot_hashes(&host, &id));
    assert_eq!(sessions(&host, &id), before, "the failed run left a session");
    assert_eq!(usernames(&host), expected, "a failed run changes no user");

    // 3. A wrong password: a login error.
    let wrong_password = "Not-the-sync-bot-pw-2b91";
    let refused = run_script(&url, wrong_password, &secret, &tmp).await;
    assert_eq!(refused.status, 2, "a refused login exits 2:\n{}", refused.stderr);
    assert!(refused.stderr.contains("login failed (HTTP 401): Unauthorized"), "{}", refused.stderr);
    assert!(!refused.stderr.contains("logged out"), "no session, no logout:\n{}", refused.stderr);
    assert_no_secrets(&refused, &[wrong_password, &sha256_hex(wrong_password), &secret], &slot_hashes(&host, &id));
    assert_eq!(sessions(&host, &id), before, "the refused run left a session");

    eprintln!(
        "three runs of scheduled-sync.sh: {:.0?}, {:.0?}, {:.0?}; the whole test {:.0?}",
        good.took,
        failed.took,
        refused.took,
        started.elapsed()
    );
    serving.abort();
    let _ = std::fs::remove_dir_all(&tmp);
}
