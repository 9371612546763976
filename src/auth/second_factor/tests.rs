use super::*;
use crate::auth::StoreClaims;
use crate::auth::totp::sha256_hex;
use crate::store::KvStore;
use crate::store::memory::MemoryStore;
use crate::store::schema::{Password, Totp};

const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const SETTINGS: TwoFactor = TwoFactor { enabled: true, totp_enabled: true, max_delta: 1 };
/// Unix time 59 s: the RFC 6238 vector whose 6-digit code is 287082.
const T59: Date = Date { millis: 59_000 };

fn totp_user() -> UserDoc {
    let mut user = UserDoc { id: "u1".into(), username: Some("alice".into()), ..Default::default() };
    user.services.totp =
        Some(Totp { enabled: true, secret: Some(SECRET.into()), hashed_backup: Some(vec![sha256_hex("ABCD2345")]), ..Default::default() });
    user
}

fn password_user() -> UserDoc {
    let mut user = UserDoc { id: "u2".into(), username: Some("bob".into()), ..Default::default() };
    let hash = bcrypt::hash(sha256_hex("pw"), 4).expect("bcrypt");
    user.services.password = Some(Password { bcrypt: Some(hash), ..Default::default() });
    user
}

/// One check against `store`'s counters, the state read as the gate reads it (the document's `services.totp`).
fn run_in(store: &MemoryStore, user: &UserDoc, guard: &TwoFactorGuard, code: Option<&str>, method: Option<&str>, now: Date) -> Checked {
    let state = SecondFactorState { totp: user.services.totp.clone(), guard: guard.clone() };
    let mut claims = StoreClaims::new(store, &user.id);
    check(user, &state, Presented { code, method }, &SETTINGS, now, Requirement::Forced, &mut claims).expect("memory store")
}

/// One check with fresh counters.
fn run(user: &UserDoc, guard: &TwoFactorGuard, code: Option<&str>, method: Option<&str>, now: Date) -> Checked {
    run_in(&MemoryStore::default(), user, guard, code, method, now)
}

fn refusal(o: &Checked) -> Option<(SecondFactorRefusal, Method, Vec<Method>)> {
    o.verdict.as_ref().err().map(|r| (r.kind, r.method, r.available.clone()))
}

#[test]
fn totp_user_matrix() {
    let user = totp_user();
    let g = TwoFactorGuard::default();
    use SecondFactorRefusal::*;
    let t = vec![Method::Totp];
    assert_eq!(refusal(&run(&user, &g, None, None, T59)), Some((Required, Method::Totp, t.clone())));
    assert_eq!(refusal(&run(&user, &g, Some("287082"), None, T59)), None);
    assert_eq!(refusal(&run(&user, &g, Some("000000"), None, T59)), Some((Invalid, Method::Totp, t.clone())));
    // An unknown method header means auto-selection.
    assert_eq!(refusal(&run(&user, &g, Some("287082"), Some("sms"), T59)), None);
    assert_eq!(refusal(&run(&user, &g, None, Some("email"), T59)), Some((Required, Method::Email, t.clone())));
    assert_eq!(refusal(&run(&user, &g, Some("287082"), Some("email"), T59)), Some((Invalid, Method::Email, t.clone())));
    assert_eq!(refusal(&run(&user, &g, Some("287082"), Some("totp"), T59)), None);
}

#[test]
fn password_user_matrix() {
    let user = password_user();
    let g = TwoFactorGuard::default();
    use SecondFactorRefusal::*;
    assert_eq!(refusal(&run(&user, &g, None, None, T59)), Some((Required, Method::Password, vec![])));
    assert_eq!(refusal(&run(&user, &g, Some(&sha256_hex("pw")), None, T59)), None);
    assert_eq!(refusal(&run(&user, &g, Some(&sha256_hex("no")), Some("password"), T59)), Some((Invalid, Method::Password, vec![])));
    assert_eq!(refusal(&run(&user, &g, None, Some("totp"), T59)), Some((Required, Method::Totp, vec![])));
    assert_eq!(refusal(&run(&user, &g, Some("287082"), Some("totp"), T59)), Some((Invalid, Method::Totp, vec![])));
}

#[test]
fn an_empty_code_is_no_code_and_is_not_counted() {
    let store = MemoryStore::default();
    for user in [totp_user(), password_user()] {
        let o = run_in(&store, &user, &TwoFactorGuard::default(), Some(""), None, T59);
        assert_eq!(refusal(&o).map(|r| r.0), Some(SecondFactorRefusal::Required), "upstream: totp-required");
    }
    assert!(store.dump().is_empty(), "no attempt counted");
    // A blank that is not empty is a code, as in upstream (a wrong one).
    let o = run(&password_user(), &TwoFactorGuard::default(), Some(" "), None, T59);
    assert_eq!(refusal(&o).map(|r| r.0), Some(SecondFactorRefusal::Invalid));
}

#[test]
fn user_without_password_can_never_pass() {
    let user = UserDoc { id: "u3".into(), username: Some("carol".into()), ..Default::default() };
    let o = run(&user, &TwoFactorGuard::default(), Some("anything"), None, T59);
    assert_eq!(refusal(&o).map(|r| r.0), Some(SecondFactorRefusal::Invalid));
}

#[test]
fn global_switch_off_passes_without_a_code() {
    let off = TwoFactor { enabled: false, ..SETTINGS };
    let store = MemoryStore::default();
    let user = password_user();
    let mut claims = StoreClaims::new(&store, &user.id);
    let o = check(&user, &SecondFactorState::default(), Presented::default(), &off, T59, Requirement::Forced, &mut claims).expect("store");
    assert!(o.verdict.is_ok() && o.guard.is_none());
    assert!(store.dump().is_empty(), "nothing counted");
}

#[test]
fn an_accepted_step_cannot_be_replayed() {
    let store = MemoryStore::default();
    let user = totp_user();
    let first = run_in(&store, &user, &TwoFactorGuard::default(), Some("287082"), None, T59);
    assert!(first.verdict.is_ok());
    assert_eq!(store.dump()["totp-step:u1"], 1i64.to_le_bytes().to_vec(), "step recorded");
    let again = run_in(&store, &user, &TwoFactorGuard::default(), Some("287082"), None, Date { millis: 61_000 });
    assert_eq!(refusal(&again).map(|r| r.0), Some(SecondFactorRefusal::Invalid));
}

#[test]
fn backup_code_is_single_use() {
    let store = MemoryStore::default();
    let user = totp_user();
    let o = run_in(&store, &user, &TwoFactorGuard::default(), Some("ABCD2345"), None, T59);
    assert!(o.verdict.is_ok());
    let again = run_in(&store, &user, &TwoFactorGuard::default(), Some("ABCD2345"), None, T59);
    assert_eq!(refusal(&again).map(|r| r.0), Some(SecondFactorRefusal::Invalid));
}

#[test]
fn five_wrong_codes_lock_for_five_minutes() {
    let store = MemoryStore::default();
    let user = totp_user();
    let mut guard = TwoFactorGuard::default();
    for attempt in 1..=5 {
        let o = run_in(&store, &user, &guard, Some("000000"), None, T59);
        let kind = refusal(&o).map(|r| r.0);
        let expected = if attempt < 5 { SecondFactorRefusal::Invalid } else { SecondFactorRefusal::MaxAttempts };
        assert_eq!(kind, Some(expected), "attempt {attempt}");
        if let Some(g) = o.guard {
            guard = g;
        }
    }
    assert_eq!(guard.locked_until, Some(Date { millis: 59_000 + LOCK_MILLIS }));
    // Locked: even the right code is refused, and nothing is verified.
    let during = run_in(&store, &user, &guard, Some("287082"), None, T59);
    assert_eq!(refusal(&during).map(|r| r.0), Some(SecondFactorRefusal::MaxAttempts));
    // No code while locked still asks for one.
    assert_eq!(refusal(&run_in(&store, &user, &guard, None, None, T59)).map(|r| r.0), Some(SecondFactorRefusal::Required));
    // After the lock, a fresh code works (step 11 = 330 s, code from totp-rs).
    let later = Date { millis: 59_000 + LOCK_MILLIS };
    let code = code_at(later);
    let after = run_in(&store, &user, &guard, Some(&code), None, later);
    assert!(after.verdict.is_ok(), "{:?}", after.verdict);
    assert_eq!(after.guard.map(|g| g.locked_until), Some(None));
    assert!(!store.dump().contains_key("two-factor-attempts:u1"), "the count starts again");
}

#[test]
fn attempts_past_the_limit_are_refused_unverified() {
    // Five attempts already counted (as parallel requests would have): the right code is not even checked.
    let store = MemoryStore::default();
    store.increment("two-factor-attempts:u1", 5).expect("memory");
    let o = run_in(&store, &totp_user(), &TwoFactorGuard::default(), Some("287082"), None, T59);
    assert_eq!(refusal(&o).map(|r| r.0), Some(SecondFactorRefusal::MaxAttempts));
    assert!(o.guard.is_some_and(|g| g.locked_until.is_some()));
    assert!(!store.dump().contains_key("totp-step:u1"), "the step was not claimed");
}

fn code_at(now: Date) -> String {
    let bytes = totp_rs::Secret::Encoded(SECRET.into()).to_bytes().expect("base32");
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 0, 30, bytes).generate(u64::try_from(now.millis / 1000).expect("positive"))
}
