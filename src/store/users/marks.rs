//! Sync marks (`sync-mark:<idAttribute>:<hex id>`): the cheap test for "this
//! directory entry changed nothing". A mark holds the `_id` of the user an
//! entry stands for and a [`Fingerprint`] of everything the sync derived
//! from the entry (and the settings that shape the update) when it last
//! wrote or checked that user. An entry whose fingerprint equals its mark's
//! costs one small read and no JSON parse of the document.
//!
//! A mark is only as good as the document it vouches for, so every write of
//! a user document drops its mark in the same batch ([`Batch::put_user`]),
//! and the sync sets one only for a user whose document fully reflects the
//! entry (active, same username and addresses).

use std::hash::Hasher as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use siphasher::sip128::{Hasher128 as _, SipHasher24};

use super::super::ids::{LdapId, UserId, hex};
use super::super::{Batch, StoreError, decode, keys};
use super::Users;

/// 128 bits as 32 hex digits: of SHA-256 for settings digests
/// ([`Fingerprint::of`]), of keyed SipHash-2-4 for entries ([`EntryHasher`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The hex digits, as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The fingerprint of `fields`, each length-prefixed so that no two
    /// different lists hash the same input.
    pub fn of<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut hasher = FingerprintHasher::default();
        fields.into_iter().for_each(|f| hasher.field(f));
        hasher.finish()
    }
}

/// Builds a [`Fingerprint`] field by field.
#[derive(Default)]
pub struct FingerprintHasher(Sha256);

impl FingerprintHasher {
    /// Adds one field (length-prefixed).
    pub fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    pub fn finish(self) -> Fingerprint {
        let digest = self.0.finalize();
        Fingerprint(hex(digest.get(..16).unwrap_or_default()))
    }
}

/// The secret key of entry fingerprints (`sync-mark-key`). Entry
/// fingerprints decide whether a changed entry is looked at, and part of an
/// entry is written by its user (a name, a phone number): with a public
/// hash, a user could choose values whose fingerprint equals that of a
/// change to come (an administrator disabling the account) and so hide it.
/// A keyed PRF leaves no such choice. SipHash-2-4 (128 bits) is also several
/// times faster than SHA-256 in WebAssembly, and this runs for every entry
/// of every run.
#[derive(Clone, PartialEq, Eq)]
pub struct MarkKey([u8; 16]);

impl std::fmt::Debug for MarkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MarkKey(..)")
    }
}

impl MarkKey {
    /// The stored key, or a new one from `random`, stored (one write).
    pub fn load_or_create(store: &dyn super::super::KvStore, random: &dyn Fn(&mut [u8])) -> Result<Self, StoreError> {
        let key = keys::SYNC_MARK_KEY;
        let stored: Option<String> = decode(key, store.get_many(&[key.to_owned()])?.pop().flatten())?;
        if let Some(text) = stored {
            let bytes = super::super::ids::unhex(&text).filter(|b| b.len() == 16);
            let bytes = bytes.ok_or_else(|| StoreError::Corrupt { key: key.to_owned(), reason: "not 32 hex digits".to_owned() })?;
            let mut k = [0u8; 16];
            k.copy_from_slice(&bytes);
            return Ok(Self(k));
        }
        let mut k = [0u8; 16];
        random(&mut k);
        let mut batch = Batch::new();
        batch.set(key.to_owned(), &hex(&k))?;
        batch.commit(store)?;
        Ok(Self(k))
    }

    #[cfg(test)]
    pub fn for_tests() -> Self {
        Self([7; 16])
    }
}

/// Builds an entry's [`Fingerprint`] field by field, keyed by a [`MarkKey`].
pub struct EntryHasher(SipHasher24);

impl EntryHasher {
    pub fn new(key: &MarkKey) -> Self {
        Self(SipHasher24::new_with_key(&key.0))
    }

    /// Adds one field (length-prefixed).
    pub fn field(&mut self, bytes: &[u8]) {
        self.0.write(&(bytes.len() as u64).to_le_bytes());
        self.0.write(bytes);
    }

    pub fn finish(self) -> Fingerprint {
        Fingerprint(hex(&self.0.finish128().as_bytes()))
    }
}

/// What `sync-mark:` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncMark {
    pub id: UserId,
    pub fp: Fingerprint,
}

impl Users<'_> {
    /// The marks of these LDAP ids, in order, in one `get-many`.
    pub fn sync_marks<'i>(&self, ids: impl IntoIterator<Item = &'i LdapId>) -> Result<Vec<Option<SyncMark>>, StoreError> {
        let wanted: Vec<String> = ids.into_iter().map(keys::sync_mark).collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let values = self.store.get_many(&wanted)?;
        wanted.iter().zip(values).map(|(key, value)| decode(key, value)).collect()
    }
}

impl Batch {
    /// Stages the mark of the directory entry `ldap_id` (after the document
    /// write it vouches for, which would otherwise drop it).
    pub fn put_sync_mark(&mut self, ldap_id: &LdapId, mark: &SyncMark) -> Result<(), StoreError> {
        let key = keys::sync_mark(ldap_id);
        let bytes = serde_json::to_vec(mark).map_err(|e| StoreError::Corrupt { key: key.clone(), reason: e.to_string() })?;
        self.last_wins.push((key, Some(bytes)));
        Ok(())
    }
}

/// Reads through a store without the repository (for the sync's unit tests).
#[cfg(test)]
pub fn mark_of(store: &dyn super::super::KvStore, id: &LdapId) -> Result<Option<SyncMark>, StoreError> {
    decode(&keys::sync_mark(id), store.get_many(&[keys::sync_mark(id)])?.pop().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_key_is_made_once_and_keys_entry_fingerprints() {
        use crate::store::KvStore as _;
        let store = crate::store::memory::MemoryStore::default();
        let first = MarkKey::load_or_create(&store, &|b: &mut [u8]| b.fill(1)).expect("made");
        let again = MarkKey::load_or_create(&store, &|b: &mut [u8]| b.fill(2)).expect("read");
        assert_eq!(first, again, "stored, not made again");
        assert_eq!(format!("{first:?}"), "MarkKey(..)", "never printed");
        let fp = |key: &MarkKey| {
            let mut h = EntryHasher::new(key);
            h.field(b"uid=a");
            h.finish()
        };
        assert_eq!(fp(&first), fp(&again));
        assert_ne!(fp(&first), fp(&MarkKey::for_tests()), "another key, another fingerprint");
        assert_eq!(fp(&first).0.len(), 32);
        store.set_many(vec![(keys::SYNC_MARK_KEY.to_owned(), b"\"xyz\"".to_vec())]).expect("memory");
        let e = MarkKey::load_or_create(&store, &|b: &mut [u8]| b.fill(1)).expect_err("corrupt");
        assert!(e.to_string().contains("sync-mark-key"), "{e}");
    }
    use crate::store::memory::MemoryStore;
    use crate::store::schema::UserDoc;
    use serde_json::json;

    fn directory_doc(id: &str, ldap: &LdapId) -> Result<UserDoc, serde_json::Error> {
        serde_json::from_value(json!({"_id": id, "services": {"ldap": {"idAttribute": ldap.attribute, "id": ldap.value}}}))
    }

    #[test]
    fn fingerprints_separate_fields() {
        assert_ne!(Fingerprint::of([&b"ab"[..], b"c"]), Fingerprint::of([&b"a"[..], b"bc"]));
        assert_eq!(Fingerprint::of([&b"a"[..]]), Fingerprint::of([&b"a"[..]]));
        assert_eq!(Fingerprint::of([&b"a"[..]]).0.len(), 32);
    }

    #[test]
    fn a_document_write_drops_the_mark_unless_a_mark_follows() -> Result<(), Box<dyn std::error::Error>> {
        let store = MemoryStore::default();
        let ldap = LdapId::new("entryUUID", "0a");
        let mark = SyncMark { id: UserId::new("u1"), fp: Fingerprint::of([&b"x"[..]]) };
        let doc = directory_doc("u1", &ldap)?;
        let mut batch = Batch::new();
        batch.put_user(&doc)?;
        batch.put_sync_mark(&ldap, &mark)?;
        batch.commit(&store)?;
        assert_eq!(Users::new(&store).sync_marks([&ldap])?, vec![Some(mark.clone())]);
        let mut batch = Batch::new();
        batch.put_user(&doc)?;
        batch.commit(&store)?;
        assert_eq!(mark_of(&store, &ldap)?, None);
        Ok(())
    }
}
