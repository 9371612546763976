//! Login tokens: `X-User-Id` + `X-Auth-Token` → the caller's user document.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::schema::{Date, LoginToken, UserDoc};

/// Meteor's `Accounts._hashLoginToken`: base64(SHA-256(UTF-8 token)).
pub fn hash_token(token: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` is one of the user's login tokens. Every stored hash is
/// compared in constant time, so timing reveals neither which one matched
/// nor how much of a guess was right.
pub fn holds_token(user: &UserDoc, token: &str) -> bool {
    let presented = hash_token(token);
    let Some(resume) = &user.services.resume else {
        return false;
    };
    resume
        .login_tokens
        .iter()
        .fold(subtle::Choice::from(0), |found, stored| found | stored.hashed_token.as_bytes().ct_eq(presented.as_bytes()))
        .into()
}

/// A new login token: 32 random bytes as 43 URL-safe base64 characters
/// (the shape of Meteor's `Random.secret()`), and the entry to store.
pub fn new_login_token(random: &dyn Fn(&mut [u8]), now: Date) -> (String, LoginToken) {
    let mut bytes = [0u8; 32];
    random(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut entry = LoginToken { hashed_token: hash_token(&token), ..LoginToken::default() };
    let mut extra = serde_json::Map::new();
    extra.insert("when".to_owned(), serde_json::json!(now));
    entry.extra = extra;
    (token, entry)
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
        assert!(holds_token(&user, "two"));
        assert!(!holds_token(&user, "three"));
        assert!(!holds_token(&UserDoc::default(), "two"));
    }
}
