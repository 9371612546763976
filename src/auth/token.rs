//! Login tokens: hashing, issuing, and the tokens Rocket.Chat itself keeps
//! in the user document (`services.resume.loginTokens`), which the gate
//! still accepts. Tokens this component issues live in sessions of their
//! own (`store::users::Sessions`).

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::schema::{Date, LoginToken, UserDoc};

/// Meteor's `Accounts._hashLoginToken`: base64(SHA-256(UTF-8 token)).
pub fn hash_token(token: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` is one of the login tokens in the user document that
/// `live` accepts (given the token's `when`; personal access tokens have
/// none). Every stored hash is compared in constant time, so timing reveals
/// neither which one matched nor how much of a guess was right.
pub fn holds_token(user: &UserDoc, token: &str, live: &dyn Fn(Option<Date>) -> bool) -> bool {
    let presented = hash_token(token);
    let Some(resume) = &user.services.resume else {
        return false;
    };
    resume
        .login_tokens
        .iter()
        .fold(subtle::Choice::from(0), |found, stored| {
            let matches = stored.hashed_token.as_bytes().ct_eq(presented.as_bytes());
            found | (matches & subtle::Choice::from(u8::from(live(issued_at(stored)))))
        })
        .into()
}

/// The `when` of a stored token.
pub fn issued_at(stored: &LoginToken) -> Option<Date> {
    stored.extra.get("when").and_then(|w| serde_json::from_value(w.clone()).ok())
}

/// A new login token: 32 random bytes as 43 URL-safe base64 characters
/// (the shape of Meteor's `Random.secret()`), and its hash to store.
pub fn new_login_token(random: &dyn Fn(&mut [u8])) -> (String, String) {
    let mut bytes = [0u8; 32];
    random(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hashed = hash_token(&token);
    (token, hashed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::{LoginToken, Resume};

    #[test]
    fn hashes_like_meteor() {
        // base64(sha256("abc")).
        assert_eq!(hash_token("abc"), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
    }

    #[test]
    fn finds_any_of_several_tokens() {
        let mut user = UserDoc::default();
        user.services.resume = Some(Resume {
            login_tokens: vec![
                LoginToken { hashed_token: hash_token("one"), ..Default::default() },
                LoginToken { hashed_token: hash_token("two"), ..Default::default() },
            ],
            ..Default::default()
        });
        let always = |_: Option<Date>| true;
        assert!(holds_token(&user, "two", &always));
        assert!(!holds_token(&user, "three", &always));
        assert!(!holds_token(&UserDoc::default(), "two", &always));
        assert!(!holds_token(&user, "two", &|_| false), "an expired token is no token");
    }
}
