use std::cell::Cell;

use super::*;
use crate::store::schema::{Email, LoginToken, Resume};

const SETTINGS: TwoFactor = TwoFactor { enabled: true, totp_enabled: true, max_delta: 1 };

fn user() -> UserDoc {
    let mut u = UserDoc { id: "u1".into(), username: Some("ann lee".into()), ..Default::default() };
    u.emails = vec![Email { address: "a@x.org".into(), verified: true }];
    let mut with_when = serde_json::Map::new();
    with_when.insert("when".into(), json!({"$date": 1}));
    u.services.resume = Some(Resume {
        login_tokens: vec![
            LoginToken { hashed_token: "current".into(), extra: with_when.clone() },
            LoginToken { hashed_token: "other".into(), extra: with_when },
            LoginToken { hashed_token: "pat".into(), extra: serde_json::Map::new() },
        ],
        ..Default::default()
    });
    u
}

fn code_at(secret: &str, unix: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.into()).to_bytes().expect("base32");
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 0, 30, bytes).generate(unix)
}

#[test]
fn enable_validate_check_regenerate_disable() {
    let counter = Cell::new(0u8);
    let random = |buf: &mut [u8]| {
        for b in buf.iter_mut() {
            counter.set(counter.get().wrapping_add(37));
            *b = counter.get();
        }
    };
    let guard = TwoFactorGuard::default();
    let now = Date { millis: 1_800_000_000_000 };
    let u = user();
    let ctx = CallContext { user: &u, guard: &guard, current_token_hash: "current", settings: &SETTINGS, now, random: &random };

    let enabled = call("2fa:enable", &[], &ctx).expect("known");
    let MethodResult::Value(v) = &enabled.result else { unreachable!("a value") };
    let secret = v["secret"].as_str().expect("secret").to_owned();
    assert_eq!(secret.len(), 32);
    assert_eq!(v["url"], json!(format!("otpauth://totp/Rocket.Chat%3Aann%20lee?secret={secret}")));
    let u = enabled.user.expect("temp secret stored");
    assert!(!u.services.totp.as_ref().expect("totp").enabled);

    let ctx = CallContext { user: &u, ..ctx };
    let wrong = call("2fa:validateTempToken", &[json!("000000")], &ctx).expect("known");
    assert_eq!(wrong.result, MethodResult::Error(MeteorError::new("invalid-totp", None, None)));
    assert_eq!(wrong.guard.expect("counted").failed_attempts, 1);

    let code = code_at(&secret, 1_800_000_000);
    let valid = call("2fa:validateTempToken", &[json!(code)], &ctx).expect("known");
    let MethodResult::Value(v) = &valid.result else { unreachable!("a value") };
    let codes: Vec<String> = serde_json::from_value(v["codes"].clone()).expect("codes");
    assert_eq!(codes.len(), 12);
    assert!(codes.iter().all(|c| c.len() == 8));
    let u = valid.user.expect("enabled");
    let t = u.services.totp.clone().expect("totp");
    assert!(t.enabled && t.secret.as_deref() == Some(secret.as_str()) && !t.extra.contains_key("tempSecret"));
    let kept: Vec<&str> = u.services.resume.as_ref().expect("tokens").login_tokens.iter().map(|t| t.hashed_token.as_str()).collect();
    assert_eq!(kept, vec!["current", "pat"]);
    let guard = valid.guard.expect("step recorded");

    let ctx = CallContext { user: &u, guard: &guard, ..ctx };
    assert_eq!(call("2fa:checkCodesRemaining", &[], &ctx).expect("known").result, MethodResult::Value(json!({"remaining": 12})));
    // The same code again is a replay: regenerate answers nothing.
    assert_eq!(call("2fa:regenerateCodes", &[json!(code)], &ctx).expect("known").result, MethodResult::Nothing);
    let disabled = call("2fa:disable", &[json!(codes[0])], &ctx).expect("known");
    assert_eq!(disabled.result, MethodResult::Value(json!(true)));
    assert!(!disabled.user.expect("written").services.totp.expect("totp").enabled);
    assert!(call("2fa:unknown", &[], &ctx).is_none());
}

#[test]
fn enable_needs_verified_emails() {
    let mut u = user();
    u.emails[0].verified = false;
    let guard = TwoFactorGuard::default();
    let random = |buf: &mut [u8]| buf.fill(1);
    let ctx =
        CallContext { user: &u, guard: &guard, current_token_hash: "", settings: &SETTINGS, now: Date { millis: 0 }, random: &random };
    let MethodResult::Error(e) = call("2fa:enable", &[], &ctx).expect("known").result else { unreachable!("an error") };
    assert_eq!(
        e.to_json(),
        json!({"isClientSafe": true, "error": "error-invalid-user", "reason": "You need to verify your emails before setting up 2FA",
               "details": {"method": "2fa:enable"}, "message": "You need to verify your emails before setting up 2FA [error-invalid-user]",
               "errorType": "Meteor.Error"})
    );
}
