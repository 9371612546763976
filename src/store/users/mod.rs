//! The users repository: the user document (`user:<_id>`), every index key
//! that names one (`username:`, `email:`, `ldap-id:`), and the per-user
//! second-factor state (`two-factor:<_id>`), and the listing index that
//! `users.list` pages through (`user-list`, `users-changed`). Every read and
//! write of those keys is here; callers speak in [`UserId`], [`IndexKey`]
//! and [`UserDoc`].
//!
//! Index keys hold the owner's `_id`. A document and the index keys that
//! name it are written in one [`Batch`], so a reader never sees a key for a
//! document that is not there yet. Ids of directory users are derived from
//! their LDAP id ([`UserId::for_directory_user`]), so two writers creating
//! the same user write the same keys.

use std::collections::HashMap;

mod listing;
mod marks;
mod sessions;
mod two_factor;

use serde_json::{Map, Value};

pub use listing::Listing;
pub use marks::{EntryHasher, Fingerprint, MarkKey, SyncMark};
pub use sessions::Sessions;
pub use two_factor::SecondFactorState;

use super::ids::{LdapId, UserId};
use super::schema::UserDoc;
use super::{Batch, KvStore, StoreError, decode, get_json, keys};

/// An index key of the users collection, as a value. Usernames and e-mail
/// addresses are indexed lower-case, so lookups ignore case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IndexKey {
    Username(String),
    Email(String),
    LdapId(LdapId),
    /// One of `importIds` (compared exactly, as MongoDB does).
    ImportId(String),
}

impl IndexKey {
    /// The key of a username (any case).
    pub fn username(name: &str) -> Self {
        Self::Username(name.to_lowercase())
    }

    /// The key of an e-mail address (any case).
    pub fn email(address: &str) -> Self {
        Self::Email(address.to_lowercase())
    }

    fn key(&self) -> String {
        match self {
            Self::Username(name) => keys::username(name),
            Self::Email(address) => keys::email(address),
            Self::LdapId(id) => keys::ldap_id(id),
            Self::ImportId(id) => keys::import_id(id),
        }
    }
}

/// Every index key that names `doc`.
pub fn index_keys(doc: &UserDoc) -> Vec<IndexKey> {
    let mut out: Vec<IndexKey> = doc.username.iter().map(|u| IndexKey::username(u)).collect();
    out.extend(doc.emails.iter().map(|e| IndexKey::email(&e.address)));
    out.extend(ldap_id_of(doc).map(IndexKey::LdapId));
    out.extend(import_ids(doc).map(|id| IndexKey::ImportId(id.to_owned())));
    out
}

/// Whether `importIds` holds `import_id` (MongoDB's `{importIds: v}` also matches a scalar).
pub fn holds_import_id(import_ids: Option<&Value>, import_id: &str) -> bool {
    match import_ids {
        Some(Value::Array(ids)) => ids.iter().any(|id| id.as_str() == Some(import_id)),
        Some(Value::String(id)) => id == import_id,
        _ => false,
    }
}

/// `importIds` of a document (MongoDB's `{importIds: v}` also matches a scalar).
fn import_ids(doc: &UserDoc) -> impl Iterator<Item = &str> {
    let ids: Vec<&str> = match doc.extra.get("importIds") {
        Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(id)) => vec![id.as_str()],
        _ => Vec::new(),
    };
    ids.into_iter()
}

/// `services.ldap` `{idAttribute, id}` of a directory user.
pub fn ldap_id_of(doc: &UserDoc) -> Option<LdapId> {
    let ldap = doc.services.extra.get("ldap")?;
    Some(LdapId::new(ldap.get("idAttribute")?.as_str()?, ldap.get("id")?.as_str()?))
}

/// Whether the directory owns this user (`services.ldap` is set).
pub fn is_directory_user(doc: &UserDoc) -> bool {
    doc.services.extra.contains_key("ldap")
}

/// What [`Users::load`] found for a page of users: the index keys asked
/// for (and those the found documents hold), with their owners, and the
/// documents those owners name.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Index key → owner; `None` = free. The planner updates it as it claims keys.
    pub index: HashMap<IndexKey, Option<UserId>>,
    pub docs: HashMap<UserId, UserDoc>,
}

/// Documents to write and index keys to point (`Some`) or free (`None`).
#[derive(Debug, Default)]
pub struct UserWrites {
    pub docs: Vec<UserDoc>,
    pub index_changes: HashMap<IndexKey, Option<UserId>>,
    /// Avatars to store (with their document, which names their ETag).
    pub avatars: Vec<(UserId, super::avatars::Avatar)>,
}

/// The users repository over a store.
#[derive(Clone, Copy)]
pub struct Users<'a> {
    store: &'a dyn KvStore,
}

impl<'a> Users<'a> {
    /// The repository over `store`.
    pub fn new(store: &'a dyn KvStore) -> Self {
        Self { store }
    }

    /// The user with this `_id`.
    pub fn by_id(&self, id: &UserId) -> Result<Option<UserDoc>, StoreError> {
        get_json(self.store, &keys::user(id))
    }

    /// The users with these `_id`s that exist, in one `get-many`.
    pub fn by_ids(&self, ids: &[UserId]) -> Result<Vec<UserDoc>, StoreError> {
        let wanted: Vec<String> = ids.iter().map(keys::user).collect();
        let values = self.store.get_many(&wanted)?;
        wanted.iter().zip(values).filter_map(|(key, value)| decode(key, value).transpose()).collect()
    }

    /// The user an index key names (two reads: the key, then the document).
    pub fn by_index(&self, key: &IndexKey) -> Result<Option<UserDoc>, StoreError> {
        let index_key = key.key();
        let Some(id) = get_json::<UserId>(self.store, &index_key)? else {
            return Ok(None);
        };
        self.by_id(&id)
    }

    /// The user a login names: an e-mail address when it holds `@`, else a username.
    pub fn by_login_name(&self, user: &str) -> Result<Option<UserDoc>, StoreError> {
        let key = if user.contains('@') { IndexKey::email(user) } else { IndexKey::username(user) };
        self.by_index(&key)
    }

    /// `Users.findOneByIdOrUsername` as raw documents (field order kept):
    /// the document at `_id == value`, else the one whose username is
    /// exactly `value`. The lower-case `username:` index only finds the
    /// candidate: a username that differs in case is no match, as in MongoDB.
    pub fn document_by_id_or_username(&self, value: &str) -> Result<Option<Map<String, Value>>, StoreError> {
        let wanted = [keys::user(&UserId::new(value)), keys::username(value)];
        let mut found = self.store.get_many(&wanted)?.into_iter();
        let by_id: Option<Map<String, Value>> = decode(&wanted[0], found.next().flatten())?;
        if by_id.is_some() {
            return Ok(by_id);
        }
        let Some(id) = decode::<UserId>(&wanted[1], found.next().flatten())? else {
            return Ok(None);
        };
        let doc: Option<Map<String, Value>> = get_json(self.store, &keys::user(&id))?;
        Ok(doc.filter(|doc| doc.get("username").and_then(Value::as_str) == Some(value)))
    }

    /// The document whose `importIds` holds `import_id`, raw (field order
    /// kept): two reads through the `import-id:` index, which the sync writes
    /// with the user (and the next run repairs when it is missing).
    pub fn document_by_import_id(&self, import_id: &str) -> Result<Option<Map<String, Value>>, StoreError> {
        let Some(id) = get_json::<UserId>(self.store, &keys::import_id(import_id))? else {
            return Ok(None);
        };
        let doc: Option<Map<String, Value>> = get_json(self.store, &keys::user(&id))?;
        Ok(doc.filter(|doc| holds_import_id(doc.get("importIds"), import_id)))
    }

    /// Every user document, raw (field order kept): the key listing once,
    /// then one `get-many`.
    pub fn all_documents(&self) -> Result<Vec<Map<String, Value>>, StoreError> {
        let user_keys: Vec<String> = self.store.keys()?.into_iter().filter(|key| key.starts_with(keys::USER_PREFIX)).collect();
        if user_keys.is_empty() {
            return Ok(Vec::new());
        }
        let values = self.store.get_many(&user_keys)?;
        user_keys.iter().zip(values).filter_map(|(key, value)| decode(key, value).transpose()).collect()
    }

    /// Loads what planning a page of users needs, in three `get-many`s: the
    /// index keys `wanted`; the documents their owners name and those at
    /// `candidates` (ids the users would be created with); then the index
    /// keys those documents hold now, so a rename frees only what is theirs.
    pub fn load(&self, wanted: Vec<IndexKey>, candidates: Vec<UserId>) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded::default();
        self.load_index(&mut loaded, wanted)?;
        let mut ids: Vec<UserId> = loaded.index.values().flatten().cloned().chain(candidates).collect();
        ids.sort();
        ids.dedup();
        let user_keys: Vec<String> = ids.iter().map(keys::user).collect();
        for (key, value) in user_keys.iter().zip(self.store.get_many(&user_keys)?) {
            if let Some(doc) = decode::<UserDoc>(key, value)? {
                loaded.docs.insert(doc.id.clone(), doc);
            }
        }
        let held: Vec<IndexKey> = loaded.docs.values().flat_map(index_keys).filter(|k| !loaded.index.contains_key(k)).collect();
        self.load_index(&mut loaded, held)?;
        Ok(loaded)
    }

    /// The users these LDAP ids name (through `ldap-id:`), in order, in one `get-many`.
    pub fn owners_of(&self, ids: &[LdapId]) -> Result<Vec<Option<UserId>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<String> = ids.iter().map(keys::ldap_id).collect();
        let values = self.store.get_many(&wanted)?;
        wanted.iter().zip(values).map(|(key, value)| decode(key, value)).collect()
    }

    fn load_index(&self, loaded: &mut Loaded, mut wanted: Vec<IndexKey>) -> Result<(), StoreError> {
        let mut seen = std::collections::HashSet::new();
        wanted.retain(|k| seen.insert(k.clone()));
        let store_keys: Vec<String> = wanted.iter().map(IndexKey::key).collect();
        let values = self.store.get_many(&store_keys)?;
        for ((index_key, store_key), value) in wanted.into_iter().zip(&store_keys).zip(values) {
            loaded.index.insert(index_key, decode(store_key, value)?);
        }
        Ok(())
    }
}

impl Batch {
    /// Stages a user document (the whole document: callers carry over every
    /// field they did not change).
    /// Drops the user's sync mark ([`SyncMark`]) unless a later
    /// [`Batch::put_sync_mark`] sets it again: whoever changes a document
    /// makes the next sync look at it in full.
    pub fn put_user(&mut self, doc: &UserDoc) -> Result<(), StoreError> {
        if let Some(id) = ldap_id_of(doc) {
            self.last_wins.push((keys::sync_mark(&id), None));
        }
        self.set(keys::user(&doc.id), doc)
    }

    /// Stages a new user and every index key that names it.
    pub fn put_new_user(&mut self, doc: &UserDoc) -> Result<(), StoreError> {
        self.put_user(doc)?;
        for key in index_keys(doc) {
            self.set(key.key(), &doc.id)?;
        }
        self.bump(keys::USERS_CHANGED);
        Ok(())
    }

    /// Stages planned documents and index changes (documents and the keys
    /// that name them land in the same `set-many`; freed keys are deleted after).
    pub fn put_users(&mut self, writes: &UserWrites) -> Result<(), StoreError> {
        for doc in &writes.docs {
            self.put_user(doc)?;
        }
        for (id, avatar) in &writes.avatars {
            self.put_avatar(id, avatar)?;
        }
        for (key, owner) in &writes.index_changes {
            match owner {
                Some(id) => self.set(key.key(), id)?,
                None => self.delete(key.key()),
            }
        }
        // A username or e-mail key that moves means a user was created,
        // renamed or got other addresses: the listings' order or members changed.
        if writes.index_changes.keys().any(|k| matches!(k, IndexKey::Username(_) | IndexKey::Email(_))) {
            self.bump(keys::USERS_CHANGED);
        }
        Ok(())
    }
}
