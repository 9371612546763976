//! The listing index of `users.list`: every user of a view, in listing
//! order, in chunks; current while the `users-changed` counter holds the
//! value it was built at (`docs/kv-schema.md`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Users;
use crate::store::ids::UserId;
use crate::store::schema::Date;
use crate::store::{Batch, StoreError, counter, decode, keys, write_generation};

/// `_id`s per chunk of the listing index: a page of up to 100 rows touches
/// at most two chunks, and 100,000 users fit in 100 values of ~20 KB.
const LISTING_CHUNK: usize = 1000;

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
    /// The rebuild lease this caller took, if any.
    lease: Option<String>,
}

impl Users<'_> {
    /// Rows `offset..offset + count` of the listing index, when it is current
    /// (no user created or renamed since it was built) and every document
    /// it names is still there: three `get-many`s of about `count` keys in
    /// all. Otherwise [`Listing::Stale`]: scan, and rebuild it.
    ///
    /// When the index is stale, one request per change and minute takes the
    /// rebuild (an atomic `increment` decides which) and the others are
    /// answered from the stale index meanwhile: a burst of listings after a
    /// new user costs one scan, not one each. A rebuilder that dies leaves
    /// its lease behind for at most the rest of that minute.
    ///
    /// `view` names the listing (who sees which users: `users.list` shows
    /// privileged callers users that only have an e-mail address).
    pub fn listing_page(&self, view: &str, offset: usize, count: usize, now: Date) -> Result<Listing, StoreError> {
        let wanted = [keys::user_list(view), keys::USERS_CHANGED.to_owned()];
        let mut found = self.store.get_many(&wanted)?.into_iter();
        let head: Option<ListingHead> = decode(&wanted[0], found.next().flatten())?;
        let changes = counter(keys::USERS_CHANGED, found.next().flatten())?;
        let stale = |previous: Option<ListingHead>, lease: Option<String>| {
            Ok(Listing::Stale(StaleListing { view: view.to_owned(), changes, previous, lease }))
        };
        let head = match head {
            Some(head) if head.changes == changes => head,
            Some(head) => {
                let lease = keys::user_list_rebuild(view, changes, now.millis.div_euclid(60_000));
                if self.store.increment(&lease, 1)? == 1 {
                    return stale(Some(head), Some(lease));
                }
                head
            }
            None => return stale(None, None),
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
                return stale(Some(head), None);
            };
            ids.extend(chunk);
        }
        let Some(page_ids) = ids.get(offset - first..end - first) else {
            return stale(Some(head), None);
        };
        let user_keys: Vec<String> = page_ids.iter().map(keys::user).collect();
        let mut documents = Vec::with_capacity(user_keys.len());
        for (key, value) in user_keys.iter().zip(self.store.get_many(&user_keys)?) {
            match decode::<Map<String, Value>>(key, value)? {
                Some(doc) => documents.push(doc),
                None => return stale(Some(head), None),
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
        let StaleListing { view, changes, previous, lease } = stale;
        let view = view.as_str();
        let head = ListingHead { generation: generation.to_owned(), changes, total: ids.len(), chunks: ids.len().div_ceil(LISTING_CHUNK) };
        let stale = previous
            .into_iter()
            .filter(|p| p.generation != generation)
            .flat_map(|old| (0..old.chunks).map(move |i| keys::user_list_chunk(view, &old.generation, i)));
        let mut swap = Batch::new();
        if let Some(lease) = lease {
            swap.delete(lease);
        }
        write_generation(
            self.store,
            ids,
            LISTING_CHUNK,
            |i| keys::user_list_chunk(view, generation, i),
            (keys::user_list(view), &head),
            stale,
            swap,
        )
    }
}
