//! The bootstrap admin: Rocket.Chat's `ADMIN_USERNAME`/`ADMIN_PASS`/
//! `ADMIN_EMAIL`, created on the first request when no user has that name.
//!
//! Idempotent without compare-and-swap (Spin's SQLite CAS does not make
//! insert-if-absent atomic, and hosted platforms lack atomics): the `_id` is
//! derived from the username ([`UserId::for_bootstrap_admin`]), so two first
//! requests racing each other write the same document to the same key.

use serde_json::json;

use crate::settings::AdminBootstrap;
use crate::store::schema::{Date, Email, Password, UserDoc};
use crate::store::users::{IndexKey, Users};
use crate::store::{Batch, KvStore, StoreError, UserId};

use super::totp::sha256_hex;

/// Meteor's default bcrypt cost (spec §4.4). The fuzz build (src/fuzz.rs) uses
/// bcrypt's minimum, so a login input costs about a millisecond instead of ~100 ms.
pub const BCRYPT_COST: u32 = if cfg!(feature = "fuzzing") { 4 } else { 10 };

/// Why the bootstrap admin could not be created.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// bcrypt refused to hash the password (it cannot for valid input; a
    /// bug or an exhausted random source).
    #[error("cannot hash the bootstrap admin's password: {0}")]
    Hash(#[from] bcrypt::BcryptError),
}

/// Creates the admin unless its document exists (under any username: a
/// renamed admin is not created again) or another user holds the name.
/// Returns whether it was created. The common case is one read.
pub fn ensure_admin(store: &dyn KvStore, admin: &AdminBootstrap, now: Date) -> Result<bool, BootstrapError> {
    let users = Users::new(store);
    let id = UserId::for_bootstrap_admin(&admin.username);
    if users.by_id(&id)?.is_some() || users.by_index(&IndexKey::username(&admin.username))?.is_some() {
        return Ok(false);
    }
    let hash = bcrypt::hash(sha256_hex(&admin.password), BCRYPT_COST)?;
    let mut doc = UserDoc {
        id,
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
    let mut batch = Batch::new();
    batch.put_new_user(&doc)?;
    batch.commit(store)?;
    crate::log::info("created the bootstrap admin", &[("username", serde_json::json!(admin.username))]);
    Ok(true)
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
        let id = UserId::for_bootstrap_admin("root");
        assert_eq!(id.to_string().len(), 17);
        let dump = store.dump();
        let doc: UserDoc = serde_json::from_slice(&dump[&format!("user:{id}")]).expect("json");
        assert_eq!(doc.roles, vec!["admin", "user"]);
        let hash = doc.services.password.and_then(|p| p.bcrypt).expect("bcrypt");
        assert!(bcrypt::verify(sha256_hex("pw"), &hash).expect("valid hash"));
        assert_eq!(dump["username:root"], format!("\"{id}\"").into_bytes());
        assert_eq!(dump["email:root@x.org"], format!("\"{id}\"").into_bytes());
    }
}
