//! Identifiers of stored users, each with its own equality rule, so that no
//! caller has to remember which comparisons are exact and which ignore case.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Meteor's `Random.id` alphabet (no look-alike characters).
pub const ID_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";
/// Length of a Meteor `Random.id`.
const ID_LEN: usize = 17;

/// A user's `_id`. Compared exactly: Meteor ids are case-sensitive, and so
/// are MongoDB's `_id` lookups that Rocket.Chat clients rely on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// An id as a client or a document gives it (not checked: any stored
    /// string is someone's `_id`).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The `_id` of a user the directory creates: derived from the LDAP id,
    /// so two syncs (or a sync and a login) running at once create one
    /// user, not two. Upstream uses a random id; nothing reads meaning into it.
    pub fn for_directory_user(ldap_id: &LdapId) -> Self {
        Self::derived(&format!("ldap-sync directory user\0{}\0{}", ldap_id.attribute, ldap_id.value))
    }

    /// The bootstrap admin's `_id`: derived from the username (case-insensitively).
    pub fn for_bootstrap_admin(username: &str) -> Self {
        Self::derived(&format!("ldap-sync bootstrap admin\0{}", username.to_lowercase()))
    }

    /// A Meteor-shaped id that depends only on `seed` (SHA-256 mapped onto
    /// [`ID_ALPHABET`]). Writers that derive ids this way need no
    /// compare-and-swap: two requests creating the same user write the same
    /// document to the same key.
    fn derived(seed: &str) -> Self {
        Self(
            Sha256::digest(seed.as_bytes())
                .iter()
                .take(ID_LEN)
                .map(|b| char::from(ID_ALPHABET[usize::from(*b) % ID_ALPHABET.len()]))
                .collect(),
        )
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for UserId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl PartialEq<str> for UserId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// `len` characters of [`ID_ALPHABET`] (Meteor's `Random.id(len)`).
/// Rejection sampling keeps the 55 characters equally likely.
pub fn random_id(len: usize, random: &dyn Fn(&mut [u8])) -> String {
    let limit = 256 - 256 % ID_ALPHABET.len();
    let mut id = String::with_capacity(len);
    let mut buf = [0u8; 32];
    while id.len() < len {
        random(&mut buf);
        for b in buf.iter().map(|b| usize::from(*b)).filter(|b| *b < limit) {
            if id.len() < len {
                id.push(char::from(ID_ALPHABET[b % ID_ALPHABET.len()]));
            }
        }
    }
    id
}

/// A directory user's identity: `services.ldap` `{idAttribute, id}`.
///
/// The attribute name compares ignoring ASCII case (attribute descriptions
/// are case-insensitive, RFC 4512 §2.5); the value compares exactly (it is
/// lower-case hex of the raw bytes, or upstream's text quirks for `dn` and
/// multi-valued attributes). The attribute keeps the spelling of the
/// setting it came from, because that spelling is part of the stored
/// `ldap-id:` key and of the derived `_id`.
#[derive(Debug, Clone)]
pub struct LdapId {
    pub attribute: String,
    pub value: String,
}

impl LdapId {
    /// An id from its attribute and value.
    pub fn new(attribute: impl Into<String>, value: impl Into<String>) -> Self {
        Self { attribute: attribute.into(), value: value.into() }
    }
}

impl PartialEq for LdapId {
    fn eq(&self, other: &Self) -> bool {
        self.attribute.eq_ignore_ascii_case(&other.attribute) && self.value == other.value
    }
}

impl Eq for LdapId {}

impl Hash for LdapId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.attribute.to_ascii_lowercase().hash(state);
        self.value.hash(state);
    }
}

/// Lower-case hex of `bytes` (the form of `services.ldap.id` and of sync-mark fingerprints).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// The bytes of lower- or upper-case hex text; `None` if it is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldap_ids_ignore_the_case_of_the_attribute_only() {
        assert_eq!(LdapId::new("entryUUID", "ab01"), LdapId::new("entryuuid", "ab01"));
        assert_ne!(LdapId::new("uid", "ab01"), LdapId::new("uid", "AB01"));
    }

    #[test]
    fn derived_ids_are_meteor_shaped_and_stable() {
        let id = UserId::for_bootstrap_admin("Root");
        assert_eq!(id, UserId::for_bootstrap_admin("root"));
        assert_eq!(id.to_string().len(), ID_LEN);
        assert!(id.to_string().bytes().all(|b| ID_ALPHABET.contains(&b)));
        assert_ne!(UserId::for_directory_user(&LdapId::new("uid", "61")), id);
    }
}
