//! The gate of `POST /api/v1/ldap.syncNow` (spec §1.2–§1.8), through the
//! real component: every row up to `LDAP_disabled`, the §1.7 matrix,
//! replay, lockout, permissions, settings errors and malformed input.

use std::time::Duration;

use ldap_sync_host::Host;
use serde_json::{Value, json};

use crate::common::*;

const NOT_LOGGED_IN: &str = "You must be logged in to do this.";

fn not_logged_in() -> Value {
    json!({"success": false, "error": NOT_LOGGED_IN, "status": "error", "message": NOT_LOGGED_IN})
}

fn ldap_disabled() -> Value {
    json!({"success": false, "error": "LDAP_disabled"})
}

fn two_factor(error_type: &str, method: &str, available: &[&str]) -> Value {
    let error = match error_type {
        "totp-required" => "TOTP Required [totp-required]",
        "totp-invalid" => "TOTP Invalid [totp-invalid]",
        _ => "TOTP Maximun Failed Attempts Reached [totp-max-attempts]",
    };
    json!({"success": false, "error": error, "errorType": error_type,
           "details": {"method": method, "codeGenerated": false, "availableMethods": available}})
}

/// Seeds: `totp` (admin, TOTP + backup code ABCD2345), `pw` (admin, password
/// "secret"), `bare` (admin, no second factor), `member` (non-admin, password),
/// `nameless` (admin, no username).
fn seeded(vars: &[(&str, &str)]) -> Host {
    let host = host(vars);
    let pw = json!({"password": {"bcrypt": bcrypt_of_password("secret")}});
    put(
        &host,
        "user:totp",
        &user(
            "totp",
            Some("tina"),
            &["admin"],
            json!({
                "totp": {"enabled": true, "secret": TOTP_SECRET, "hashedBackup": [sha256_hex("ABCD2345"), sha256_hex("WXYZ6789")]}
            }),
        ),
    );
    put(&host, "user:pw", &user("pw", Some("paul"), &["admin", "user"], pw.clone()));
    put(&host, "user:bare", &user("bare", Some("bea"), &["admin"], json!({})));
    put(&host, "user:member", &user("member", Some("mia"), &["user"], pw.clone()));
    put(&host, "user:nameless", &user("nameless", None, &["admin"], pw));
    host
}

fn password_code() -> String {
    sha256_hex("secret")
}

#[tokio::test]
async fn authentication_failures_are_401() {
    let host = seeded(&[]);
    assert_reply(&sync_now(&host, &[]).await, 401, not_logged_in());
    assert_reply(&sync_now(&host, &[("x-user-id", b"pw")]).await, 401, not_logged_in());
    assert_reply(&sync_now(&host, &[("x-auth-token", b"tok-pw")]).await, 401, not_logged_in());
    assert_reply(&sync_now(&host, &[("x-user-id", b"pw"), ("x-auth-token", b"tok-totp")]).await, 401, not_logged_in());
    assert_reply(&sync_now(&host, &[("x-user-id", b"ghost"), ("x-auth-token", b"tok-ghost")]).await, 401, not_logged_in());
}

#[tokio::test]
async fn user_without_username_is_refused() {
    let host = seeded(&[]);
    let res = sync_now(&host, &with(&login("nameless"), &[("x-2fa-code", &password_code())])).await;
    assert_reply(
        &res,
        400,
        json!({"success": false, "error": "Users must have a username [error-unauthorized]", "errorType": "error-unauthorized"}),
    );
}

#[tokio::test]
async fn totp_user_matrix() {
    let host = seeded(&[]);
    let me = login("totp");
    let t = &["totp"][..];
    // A: no headers.
    assert_reply(&sync_now(&host, &with(&me, &[])).await, 400, two_factor("totp-required", "totp", t));
    // B: code only (and with a method that is not totp/email: auto-selection).
    assert_reply(&sync_now(&host, &with(&me, &[("x-2fa-code", "000000")])).await, 400, two_factor("totp-invalid", "totp", t));
    assert_reply(&sync_now(&host, &with(&me, &[("x-2fa-code", &totp_at(T0))])).await, 400, ldap_disabled());
    host.advance(Duration::from_secs(30));
    let code = totp_at(T0 + 30);
    assert_reply(&sync_now(&host, &with(&me, &[("x-2fa-code", &code), ("x-2fa-method", "password")])).await, 400, ldap_disabled());
    // C: named method without a code.
    assert_reply(&sync_now(&host, &with(&me, &[("x-2fa-method", "totp")])).await, 400, two_factor("totp-required", "totp", t));
    assert_reply(&sync_now(&host, &with(&me, &[("x-2fa-method", "email")])).await, 400, two_factor("totp-required", "email", t));
    // D: named method with a code.
    host.advance(Duration::from_secs(30));
    let code = totp_at(T0 + 60);
    assert_reply(
        &sync_now(&host, &with(&me, &[("x-2fa-method", "email"), ("x-2fa-code", &code)])).await,
        400,
        two_factor("totp-invalid", "email", t),
    );
    assert_reply(&sync_now(&host, &with(&me, &[("x-2fa-method", "totp"), ("x-2fa-code", &code)])).await, 400, ldap_disabled());
}

#[tokio::test]
async fn password_user_matrix() {
    let host = seeded(&[]);
    let me = login("pw");
    let none: &[&str] = &[];
    assert_reply(&sync_now(&host, &with(&me, &[])).await, 400, two_factor("totp-required", "password", none));
    // An empty code is no code (upstream's `if (!code)`), and is not counted towards the lock.
    for _ in 0..6 {
        assert_reply(&sync_now(&host, &with(&me, &[("x-2fa-code", "")])).await, 400, two_factor("totp-required", "password", none));
    }
    assert_reply(&sync_now(&host, &with(&me, &[("x-2fa-code", &password_code())])).await, 400, ldap_disabled());
    // Upstream lower-cases the digest.
    assert_reply(&sync_now(&host, &with(&me, &[("x-2fa-code", &password_code().to_uppercase())])).await, 400, ldap_disabled());
    assert_reply(
        &sync_now(&host, &with(&me, &[("x-2fa-code", &sha256_hex("wrong"))])).await,
        400,
        two_factor("totp-invalid", "password", none),
    );
    assert_reply(&sync_now(&host, &with(&me, &[("x-2fa-code", &password_code()), ("x-2fa-method", "sms")])).await, 400, ldap_disabled());
    assert_reply(&sync_now(&host, &with(&me, &[("x-2fa-method", "totp")])).await, 400, two_factor("totp-required", "totp", none));
    assert_reply(&sync_now(&host, &with(&me, &[("x-2fa-method", "email")])).await, 400, two_factor("totp-required", "email", none));
    assert_reply(
        &sync_now(&host, &with(&me, &[("x-2fa-method", "totp"), ("x-2fa-code", &totp_at(T0))])).await,
        400,
        two_factor("totp-invalid", "totp", none),
    );
    assert_reply(
        &sync_now(&host, &with(&me, &[("x-2fa-method", "email"), ("x-2fa-code", "123456")])).await,
        400,
        two_factor("totp-invalid", "email", none),
    );
}

#[tokio::test]
async fn user_without_any_second_factor_can_never_pass() {
    let host = seeded(&[]);
    let me = login("bare");
    let none: &[&str] = &[];
    assert_reply(&sync_now(&host, &with(&me, &[])).await, 400, two_factor("totp-required", "password", none));
    assert_reply(
        &sync_now(&host, &with(&me, &[("x-2fa-code", &password_code())])).await,
        400,
        two_factor("totp-invalid", "password", none),
    );
    assert_reply(&sync_now(&host, &with(&me, &[("x-2fa-method", "totp")])).await, 400, two_factor("totp-required", "totp", none));
    assert_reply(
        &sync_now(&host, &with(&me, &[("x-2fa-method", "totp"), ("x-2fa-code", "123456")])).await,
        400,
        two_factor("totp-invalid", "totp", none),
    );
}

#[tokio::test]
async fn global_two_factor_switch_off_skips_the_second_factor() {
    let host = seeded(&[("accounts_twofactorauthentication_enabled", "false")]);
    assert_reply(&sync_now(&host, &with(&login("bare"), &[])).await, 400, ldap_disabled());
}

#[tokio::test]
async fn permission_is_checked_after_the_second_factor() {
    let host = seeded(&[]);
    let member = login("member");
    // Without 2FA headers the second factor comes first.
    assert_reply(&sync_now(&host, &with(&member, &[])).await, 400, two_factor("totp-required", "password", &[]));
    let res = sync_now(&host, &with(&member, &[("x-2fa-code", &password_code())])).await;
    assert_reply(&res, 400, json!({"success": false, "error": "error-not-authorized"}));
    // An operator-edited permission record replaces the default.
    put(&host, "permission:sync-auth-services-users", &json!({"_id": "sync-auth-services-users", "roles": ["user"]}));
    assert_reply(&sync_now(&host, &with(&member, &[("x-2fa-code", &password_code())])).await, 400, ldap_disabled());
    put(&host, "permission:sync-auth-services-users", &json!({"_id": "sync-auth-services-users", "roles": ["ops"]}));
    let res = sync_now(&host, &with(&login("pw"), &[("x-2fa-code", &password_code())])).await;
    assert_reply(&res, 400, json!({"success": false, "error": "error-not-authorized"}));
}

#[tokio::test]
async fn rate_limiter_counts_callers_without_the_bypass_permission() {
    let host = seeded(&[("api_enable_rate_limiter_limit_calls_default", "2")]);
    let creds = login("member");
    let member = with(&creds, &[]);
    let first = sync_now(&host, &member).await;
    assert_eq!(first.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(first.header("x-ratelimit-remaining"), Some("1"));
    let reset: i64 = first.header("x-ratelimit-reset").expect("reset header").parse().expect("epoch ms");
    assert_eq!(reset, (T0 as i64) * 1000 + 60_000);
    sync_now(&host, &member).await;
    let third = sync_now(&host, &member).await;
    assert_reply(
        &third,
        429,
        json!({"success": false,
        "error": "Error, too many requests. Please slow down. You must wait 60 seconds before trying this endpoint again. [error-too-many-requests]"}),
    );
    assert_eq!(third.header("x-ratelimit-remaining"), Some("0"));
    // One atomic counter per client, route and fixed window.
    assert_eq!(counter(&host, &format!("rate-limit:127.0.0.1:/api/v1/ldap.syncNowpost:{}", T0 / 60)), Some(3));
    // Admins hold api-bypass-rate-limit: no headers, no limit.
    for _ in 0..3 {
        let res = sync_now(&host, &with(&login("pw"), &[("x-2fa-code", &password_code())])).await;
        assert_reply(&res, 400, ldap_disabled());
        assert_eq!(res.header("x-ratelimit-limit"), None);
    }
    // The window ends.
    host.advance(Duration::from_secs(60));
    assert_eq!(sync_now(&host, &member).await.status, 400);
}

#[tokio::test]
async fn accepted_totp_codes_cannot_be_replayed() {
    let host = seeded(&[]);
    let code = totp_at(T0);
    let creds = login("totp");
    let extra = [("x-2fa-code", code.as_str())];
    let me = with(&creds, &extra);
    assert_reply(&sync_now(&host, &me).await, 400, ldap_disabled());
    assert_eq!(counter(&host, "totp-step:totp"), Some((T0 / 30) as i64), "the accepted step");
    assert_eq!(counter(&host, "two-factor-attempts:totp"), None, "a success starts the count again");
    assert_reply(&sync_now(&host, &me).await, 400, two_factor("totp-invalid", "totp", &["totp"]));
    // The previous step's code is inside the window but older than the accepted one.
    let old = totp_at(T0 - 30);
    assert_reply(
        &sync_now(&host, &with(&login("totp"), &[("x-2fa-code", &old)])).await,
        400,
        two_factor("totp-invalid", "totp", &["totp"]),
    );
}

#[tokio::test]
async fn five_wrong_codes_lock_the_second_factor_for_five_minutes() {
    let host = seeded(&[]);
    let creds = login("totp");
    let wrong = with(&creds, &[("x-2fa-code", "000000")]);
    for _ in 0..4 {
        assert_reply(&sync_now(&host, &wrong).await, 400, two_factor("totp-invalid", "totp", &["totp"]));
    }
    assert_reply(&sync_now(&host, &wrong).await, 400, two_factor("totp-max-attempts", "totp", &["totp"]));
    let locked_until = (T0 as i64) * 1000 + 300_000;
    assert_eq!(get(&host, "two-factor:totp"), Some(json!({"lockedUntil": {"$date": locked_until}})));
    // During the lock even the right code is refused.
    let right = totp_at(T0);
    assert_reply(
        &sync_now(&host, &with(&login("totp"), &[("x-2fa-code", &right)])).await,
        400,
        two_factor("totp-max-attempts", "totp", &["totp"]),
    );
    host.advance(Duration::from_secs(299));
    let right = totp_at(T0 + 299);
    assert_reply(
        &sync_now(&host, &with(&login("totp"), &[("x-2fa-code", &right)])).await,
        400,
        two_factor("totp-max-attempts", "totp", &["totp"]),
    );
    // Unlocked after five minutes.
    host.advance(Duration::from_secs(1));
    let right = totp_at(T0 + 300);
    assert_reply(&sync_now(&host, &with(&login("totp"), &[("x-2fa-code", &right)])).await, 400, ldap_disabled());
    assert_eq!(get(&host, "two-factor:totp"), Some(json!({})), "the lock ended");
    assert_eq!(counter(&host, "totp-step:totp"), Some(((T0 + 300) / 30) as i64));
}

#[tokio::test]
async fn backup_codes_work_once() {
    let host = seeded(&[]);
    let creds = login("totp");
    let me = with(&creds, &[("x-2fa-code", "ABCD2345")]);
    assert_reply(&sync_now(&host, &me).await, 400, ldap_disabled());
    // The use is marked by its own counter; the user document is not rewritten.
    assert_eq!(counter(&host, &format!("backup-code-used:totp:{}", sha256_hex("ABCD2345"))), Some(1));
    let doc = get(&host, "user:totp").expect("user");
    assert_eq!(doc["services"]["totp"]["hashedBackup"], json!([sha256_hex("ABCD2345"), sha256_hex("WXYZ6789")]));
    assert_eq!(doc["services"]["resume"]["loginTokens"][0]["hashedToken"], json!(hash_token("tok-totp")), "other fields kept");
    assert_reply(&sync_now(&host, &me).await, 400, two_factor("totp-invalid", "totp", &["totp"]));
}

#[tokio::test]
async fn ldap_switches_and_settings_errors() {
    let host = seeded(&[("ldap_search_page_size", "-1")]);
    let creds = login("pw");
    let code = password_code();
    let extra = [("x-2fa-code", code.as_str())];
    let me = with(&creds, &extra);
    assert_reply(&sync_now(&host, &[]).await, 401, not_logged_in());
    // Upstream's order: LDAP_Enable is checked before the sync's settings are read.
    assert_reply(&sync_now(&host, &me).await, 400, json!({"success": false, "error": "LDAP_disabled"}));
    let host = seeded(&[("ldap_search_page_size", "-1"), ("ldap_enable", "true")]);
    // Without the second factor, nothing is said of the configuration.
    assert_eq!(sync_now(&host, &with(&creds, &[])).await.json()["error"], json!("TOTP Required [totp-required]"));
    assert_reply(
        &sync_now(&host, &me).await,
        400,
        json!({"success": false,
        "error": "invalid value \"-1\" for variable ldap_search_page_size: expected an integer from 0 to 1000000"}),
    );
    let host = seeded(&[("ldap_enable", "true"), ("ldap_background_sync", "false")]);
    assert_reply(&sync_now(&host, &me).await, 400, json!({"success": false, "error": "LDAP_Background_Sync_disabled"}));
    let host = seeded(&[
        ("ldap_enable", "true"),
        ("ldap_authentication", "true"),
        ("ldap_authentication_password", "hunter2"),
        ("ldap_timeout", "soon"),
    ]);
    let res = sync_now(&host, &me).await;
    assert_reply(
        &res,
        400,
        json!({"success": false, "error": "invalid value \"soon\" for variable ldap_timeout: expected an integer from 1 to 3600000"}),
    );
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let host = seeded(&[]);
    let res = send(&host, "GET", "/api/v1/ldap.syncNow", &[], Vec::new()).await;
    assert_reply(&res, 405, json!({"success": false, "error": "Method not allowed"}));
    assert_eq!(res.header("allow"), Some("POST"));
    let res = send(&host, "POST", "/api/v1/ldap.syncLater", &[], Vec::new()).await;
    assert_reply(&res, 404, json!({"success": false, "error": "API endpoint not found"}));
    // A 10 MB body is ignored, as upstream ignores the body.
    let big = vec![b'x'; 10 << 20];
    let res = send(&host, "POST", "/api/v1/ldap.syncNow", &[], big.clone()).await;
    assert_reply(&res, 401, not_logged_in());
    let creds = login("pw");
    let code = password_code();
    let extra = [("x-2fa-code", code.as_str())];
    let me = with(&creds, &extra);
    let res = send(&host, "POST", "/api/v1/ldap.syncNow", &me, big).await;
    assert_reply(&res, 400, ldap_disabled());
    // A corrupt user document is a clean 500, not a trap.
    host.kv_set("user:broken", b"{not json").expect("kv");
    let res = sync_now(&host, &[("x-user-id", b"broken"), ("x-auth-token", b"x")]).await;
    assert_eq!(res.status, 500);
    assert_eq!(res.json()["success"], json!(false));
}

/// Spin 4 refuses a request whose header values are not UTF-8 before any
/// component runs (`prepare_request_headers` in spin-trigger-http): a 500
/// with an empty body. The host does the same, so the component never sees
/// such bytes; its own lossy handling is unit-tested in `src/api/tests.rs`.
#[tokio::test]
async fn non_utf8_header_values_are_refused_by_the_platform() {
    let host = seeded(&[]);
    let before = dump(&host);
    for headers in [
        &[("x-user-id", &b"pw"[..]), ("x-auth-token", &b"tok-\xff\xfe"[..])][..],
        &[("x-user-id", &b"pw"[..]), ("x-auth-token", &b"tok-pw"[..]), ("x-2fa-code", &b"\xff"[..])][..],
    ] {
        let res = sync_now(&host, headers).await;
        assert_eq!((res.status, res.body.len()), (500, 0));
    }
    assert_eq!(dump(&host), before, "nothing was written");
}
