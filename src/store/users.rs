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

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ids::{LdapId, UserId};
use super::schema::{TwoFactorGuard, UserDoc};
use super::{Batch, KvStore, StoreError, counter, decode, get_json, keys};

/// `_id`s per chunk of the listing index: a page of up to 100 rows touches
/// at most two chunks, and 100,000 users fit in 100 values of ~20 KB.
const LISTING_CHUNK: usize = 1000;

/// An index key of the users collection, as a value. Usernames and e-mail
/// addresses are indexed lower-case, so lookups ignore case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IndexKey {
    Username(String),
    Email(String),
    LdapId(LdapId),
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
        }
    }
}

/// Every index key that names `doc`.
pub fn index_keys(doc: &UserDoc) -> Vec<IndexKey> {
    let mut out: Vec<IndexKey> = doc.username.iter().map(|u| IndexKey::username(u)).collect();
    out.extend(doc.emails.iter().map(|e| IndexKey::email(&e.address)));
    out.extend(ldap_id_of(doc).map(IndexKey::LdapId));
    out
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

    /// The second-factor state of a user (default when none is stored).
    pub fn two_factor(&self, id: &UserId) -> Result<TwoFactorGuard, StoreError> {
        Ok(get_json(self.store, &keys::two_factor(id))?.unwrap_or_default())
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

/// The head of the listing index (`user-list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListingHead {
    /// Names this build's chunks; a new build writes new ones, then the head.
    generation: String,
    /// The `users-changed` counter read before the build's scan: the index is
    /// current while the counter still holds it.
    changes: i64,
    total: usize,
    chunks: usize,
}

/// What the listing index gave for a page.
#[derive(Debug)]
pub enum Listing {
    /// The documents of the page, in listing order, and how many users the index holds.
    Current { documents: Vec<Map<String, Value>>, total: usize },
    /// The index is missing or stale: scan, then [`Users::save_listing`] with this.
    Stale(StaleListing),
}

/// What a rebuild of a stale listing index needs to know from the read that found it stale.
#[derive(Debug)]
pub struct StaleListing {
    view: String,
    /// The counter as it was before the caller's scan.
    changes: i64,
    previous: Option<ListingHead>,
}

impl Users<'_> {
    /// Rows `offset..offset + count` of the listing index, when it is current
    /// (no user created or renamed since it was built) and every document
    /// it names is still there: three `get-many`s of about `count` keys in
    /// all. Otherwise [`Listing::Stale`]: scan, and rebuild it.
    ///
    /// `view` names the listing (who sees which users: `users.list` shows
    /// privileged callers users that only have an e-mail address).
    pub fn listing_page(&self, view: &str, offset: usize, count: usize) -> Result<Listing, StoreError> {
        let wanted = [keys::user_list(view), keys::USERS_CHANGED.to_owned()];
        let mut found = self.store.get_many(&wanted)?.into_iter();
        let head: Option<ListingHead> = decode(&wanted[0], found.next().flatten())?;
        let changes = counter(keys::USERS_CHANGED, found.next().flatten())?;
        let stale = |previous: Option<ListingHead>| Ok(Listing::Stale(StaleListing { view: view.to_owned(), changes, previous }));
        let head = match head {
            Some(head) if head.changes == changes => head,
            previous => return stale(previous),
        };
        let end = offset.saturating_add(count).min(head.total);
        if offset >= end {
            return Ok(Listing::Current { documents: Vec::new(), total: head.total });
        }
        let chunk_keys: Vec<String> =
            (offset / LISTING_CHUNK..=(end - 1) / LISTING_CHUNK).map(|c| keys::user_list_chunk(view, &head.generation, c)).collect();
        let mut ids: Vec<UserId> = Vec::with_capacity(end - offset);
        let first = offset / LISTING_CHUNK * LISTING_CHUNK;
        for (key, value) in chunk_keys.iter().zip(self.store.get_many(&chunk_keys)?) {
            let Some(chunk) = decode::<Vec<UserId>>(key, value)? else {
                return stale(Some(head));
            };
            ids.extend(chunk);
        }
        let Some(page_ids) = ids.get(offset - first..end - first) else {
            return stale(Some(head));
        };
        let user_keys: Vec<String> = page_ids.iter().map(keys::user).collect();
        let mut documents = Vec::with_capacity(user_keys.len());
        for (key, value) in user_keys.iter().zip(self.store.get_many(&user_keys)?) {
            match decode::<Map<String, Value>>(key, value)? {
                Some(doc) => documents.push(doc),
                None => return stale(Some(head)),
            }
        }
        Ok(Listing::Current { documents, total: head.total })
    }

    /// Stores a listing index of `ids` (every user of the view, in listing
    /// order), from a scan made after `stale` was read. Writes the chunks,
    /// then the head, then deletes the previous build's chunks. Two rebuilds
    /// racing each other each write a complete index; the later head wins,
    /// and a reader that loses a chunk under it scans once more.
    pub fn save_listing(&self, stale: StaleListing, ids: &[UserId], generation: &str) -> Result<(), StoreError> {
        let StaleListing { view, changes, previous } = stale;
        let view = view.as_str();
        let head = ListingHead { generation: generation.to_owned(), changes, total: ids.len(), chunks: ids.len().div_ceil(LISTING_CHUNK) };
        let mut chunks = Batch::new();
        for (i, chunk) in ids.chunks(LISTING_CHUNK).enumerate() {
            chunks.set(keys::user_list_chunk(view, generation, i), &chunk)?;
        }
        chunks.commit(self.store)?;
        let mut swap = Batch::new();
        swap.set(keys::user_list(view), &head)?;
        for old in previous.iter().filter(|p| p.generation != generation) {
            (0..old.chunks).for_each(|i| swap.delete(keys::user_list_chunk(view, &old.generation, i)));
        }
        swap.commit(self.store)
    }
}

impl Batch {
    /// Stages a user document (the whole document: callers carry over every
    /// field they did not change).
    pub fn put_user(&mut self, doc: &UserDoc) -> Result<(), StoreError> {
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

    /// Stages a user's second-factor state.
    pub fn put_two_factor(&mut self, id: &UserId, guard: &TwoFactorGuard) -> Result<(), StoreError> {
        self.set(keys::two_factor(id), guard)
    }
}
