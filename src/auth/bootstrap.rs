//! The bootstrap admin: Rocket.Chat's `ADMIN_USERNAME`/`ADMIN_PASS`/
//! `ADMIN_EMAIL`, created on the first request when no user has that name.
//!
//! Idempotent without compare-and-swap (Spin's SQLite CAS does not make
//! insert-if-absent atomic, and hosted platforms lack atomics): the `_id` is
//! derived from the username, so two first requests racing each other write
//! the same document to the same key.

use serde_json::json;

use crate::settings::AdminBootstrap;
use crate::store::schema::{Date, Email, Password, UserDoc, derived_id};
use crate::store::{KvStore, StoreError, encode, get_json, keys};

use super::totp::sha256_hex;

/// Meteor's default bcrypt cost (spec §4.4).
pub const BCRYPT_COST: u32 = 10;

/// Creates the admin unless a user with that username exists. Returns
/// whether it was created.
pub fn ensure_admin(store: &dyn KvStore, admin: &AdminBootstrap, now: Date) -> Result<bool, StoreError> {
    let index_key = keys::username(&admin.username);
    if get_json::<String>(store, &index_key)?.is_some() {
        return Ok(false);
    }
    let hash = bcrypt::hash(sha256_hex(&admin.password), BCRYPT_COST)
        .map_err(|e| StoreError::Backend { op: "bcrypt", reason: e.to_string() })?;
    let mut doc = UserDoc {
        id: admin_id(&admin.username),
        username: Some(admin.username.clone()),
        name: Some("Administrator".to_owned()),
        roles: vec!["admin".to_owned(), "user".to_owned()],
        active: Some(true),
        ..UserDoc::default()
    };
    if !admin.email.is_empty() {
        doc.emails = vec![Email { address: admin.email.clone(), verified: true }];
    }
    doc.services.password = Some(Password { bcrypt: Some(hash), ..Password::default() });
    for (k, v) in [("createdAt", json!(now)), ("type", json!("user")), ("status", json!("offline")), ("_updatedAt", json!(now))] {
        doc.extra.insert(k.to_owned(), v);
    }
    let mut writes = vec![encode(keys::user(&doc.id), &doc)?, encode(index_key, &doc.id)?];
    if !admin.email.is_empty() {
        writes.push(encode(keys::email(&admin.email), &doc.id)?);
    }
    store.set_many(writes)?;
    eprintln!("ldap-sync: created the bootstrap admin {:?}", admin.username);
    Ok(true)
}

/// The admin's `_id`: derived from the username.
pub fn admin_id(username: &str) -> String {
    derived_id(&format!("ldap-sync bootstrap admin\0{}", username.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    #[test]
    fn creates_once_with_a_stable_id() {
        let store = MemoryStore::default();
        let admin = AdminBootstrap { username: "root".into(), password: "pw".into(), email: "root@x.org".into() };
        assert!(ensure_admin(&store, &admin, Date { millis: 1 }).expect("store"));
        assert!(!ensure_admin(&store, &admin, Date { millis: 2 }).expect("store"));
        let id = admin_id("root");
        assert_eq!(id.len(), 17);
        let dump = store.dump();
        let doc: UserDoc = serde_json::from_slice(&dump[&format!("user:{id}")]).expect("json");
        assert_eq!(doc.roles, vec!["admin", "user"]);
        let hash = doc.services.password.and_then(|p| p.bcrypt).expect("bcrypt");
        assert!(bcrypt::verify(sha256_hex("pw"), &hash).expect("valid hash"));
        assert_eq!(dump["username:root"], format!("\"{id}\"").into_bytes());
        assert_eq!(dump["email:root@x.org"], format!("\"{id}\"").into_bytes());
    }
}
