use std::cell::Cell;

use super::*;
use crate::auth::StoreClaims;
use crate::store::memory::MemoryStore;
use crate::store::schema::Email;

const SETTINGS: TwoFactor = TwoFactor { enabled: true, totp_enabled: true, max_delta: 1 };

fn user() -> UserDoc {
    let mut u = UserDoc { id: "u1".into(), username: Some("ann lee".into()), ..Default::default() };
    u.emails = vec![Email { address: "a@x.org".into(), verified: true }];
    u
}

fn code_at(secret: &str, unix: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.into()).to_bytes().expect("base32");
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 0, 30, bytes).generate(unix)
}

#[test]
fn enable_validate_check_regenerate_disable() {
    // A generator that does not repeat within a test (backup codes must differ).
    let state = Cell::new(0x9E37_79B9_7F4A_7C15u64);
    let random = |buf: &mut [u8]| {
        for b in buf.iter_mut() {
            state.set(state.get().wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407));
            *b = (state.get() >> 56) as u8;
        }
    };
    let store = MemoryStore::default();
    let u = user();
    let mut claims = StoreClaims::new(&store, &u.id);
    let guard = TwoFactorGuard::default();
    let none = Totp::default();
    let now = Date { millis: 1_800_000_000_000 };
    let ctx = CallContext { user: &u, totp: &none, guard: &guard, settings: &SETTINGS, now, random: &random };

    let enabled = call("2fa:enable", &[], &ctx, &mut claims).expect("store").expect("known");
    let MethodResult::Value(v) = &enabled.result else { unreachable!("a value") };
    let secret = v["secret"].as_str().expect("secret").to_owned();
    assert_eq!(secret.len(), 32);
    assert_eq!(v["url"], json!(format!("otpauth://totp/Rocket.Chat%3Aann%20lee?secret={secret}")));
    let (pending, _) = enabled.totp.expect("temp secret stored");
    assert!(!pending.enabled);

    let ctx = CallContext { totp: &pending, ..ctx };
    let wrong = call("2fa:validateTempToken", &[json!("000000")], &ctx, &mut claims).expect("store").expect("known");
    assert_eq!(wrong.result, MethodResult::Error(MeteorError::new("invalid-totp", None, None)));
    assert_eq!(store.dump()["two-factor-attempts:u1"], 1i64.to_le_bytes().to_vec(), "the wrong code counted");

    let code = code_at(&secret, 1_800_000_000);
    let valid = call("2fa:validateTempToken", &[json!(code)], &ctx, &mut claims).expect("store").expect("known");
    let MethodResult::Value(v) = &valid.result else { unreachable!("a value") };
    let codes: Vec<String> = serde_json::from_value(v["codes"].clone()).expect("codes");
    assert_eq!(codes.len(), 12);
    assert!(codes.iter().all(|c| c.len() == 8));
    let (t, _) = valid.totp.expect("enabled");
    assert!(t.enabled && t.secret.as_deref() == Some(secret.as_str()) && !t.extra.contains_key("tempSecret"));
    assert!(valid.end_other_sessions, "other sessions end");
    assert!(!store.dump().contains_key("two-factor-attempts:u1"), "a success starts the count again");

    let ctx = CallContext { totp: &t, ..ctx };
    // Already enabled: a token alone cannot replace the factor.
    let again = call("2fa:enable", &[], &ctx, &mut claims).expect("store").expect("known");
    assert_eq!(again.result, MethodResult::Error(MeteorError::new("error-2fa-already-enabled", None, None)));
    assert!(again.totp.is_none());
    assert_eq!(
        call("2fa:checkCodesRemaining", &[], &ctx, &mut claims).expect("store").expect("known").result,
        MethodResult::Value(json!({"remaining": 12}))
    );
    // The same code again is a replay: regenerate answers nothing.
    assert_eq!(
        call("2fa:regenerateCodes", &[json!(code)], &ctx, &mut claims).expect("store").expect("known").result,
        MethodResult::Nothing
    );
    // A backup code disables, once.
    let disabled = call("2fa:disable", &[json!(codes[0])], &ctx, &mut claims).expect("store").expect("known");
    assert_eq!(disabled.result, MethodResult::Value(json!(true)));
    let (off, retired) = disabled.totp.expect("written");
    assert!(!off.enabled);
    assert_eq!(retired.len(), 12, "the old codes' markers are deleted with it");
    assert_eq!(
        call("2fa:checkCodesRemaining", &[], &ctx, &mut claims).expect("store").expect("known").result,
        MethodResult::Value(json!({"remaining": 11}))
    );
    let reused = call("2fa:disable", &[json!(codes[0])], &ctx, &mut claims).expect("store").expect("known");
    assert_eq!(reused.result, MethodResult::Value(json!(false)));
    assert!(call("2fa:unknown", &[], &ctx, &mut claims).expect("store").is_none());
}

#[test]
fn enable_needs_verified_emails() {
    let mut u = user();
    u.emails[0].verified = false;
    let store = MemoryStore::default();
    let mut claims = StoreClaims::new(&store, &u.id);
    let guard = TwoFactorGuard::default();
    let none = Totp::default();
    let random = |buf: &mut [u8]| buf.fill(1);
    let ctx = CallContext { user: &u, totp: &none, guard: &guard, settings: &SETTINGS, now: Date { millis: 0 }, random: &random };
    let MethodResult::Error(e) = call("2fa:enable", &[], &ctx, &mut claims).expect("store").expect("known").result else {
        unreachable!("an error")
    };
    assert_eq!(
        e.to_json(),
        json!({"isClientSafe": true, "error": "error-invalid-user", "reason": "You need to verify your emails before setting up 2FA",
               "details": {"method": "2fa:enable"}, "message": "You need to verify your emails before setting up 2FA [error-invalid-user]",
               "errorType": "Meteor.Error"})
    );
}
