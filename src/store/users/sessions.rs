//! Login sessions, one key per token (`login-token:<hashedToken>`), so that
//! login and logout never rewrite the user document. A user holds at most
//! [`MAX_SESSIONS`]: each login takes the next of that many slots
//! (`login-token-seq:` counts logins atomically, so two logins never take
//! the same slot) and ends the session that held it.

use crate::store::ids::UserId;
use crate::store::schema::{Date, LoginSession};
use crate::store::{Batch, KvStore, StoreError, decode, keys};

/// Sessions one user may hold; the oldest ends when a login needs its slot.
/// Enough for a phone, a desktop and several browsers, few enough that the
/// slots are one small read.
pub const MAX_SESSIONS: u64 = 10;

/// The sessions of the users in a store.
#[derive(Clone, Copy)]
pub struct Sessions<'a> {
    store: &'a dyn KvStore,
}

impl<'a> Sessions<'a> {
    /// Sessions over `store`.
    pub fn new(store: &'a dyn KvStore) -> Self {
        Self { store }
    }

    /// Starts a session for `hashed_token`: takes the next slot, ends the
    /// session it held and every expired one (`expired` says which).
    pub fn open(&self, user: &UserId, hashed_token: &str, now: Date, expired: impl Fn(&LoginSession) -> bool) -> Result<(), StoreError> {
        let seq = self.store.increment(&keys::login_token_seq(user), 1)?;
        let slot = u64::try_from(seq).unwrap_or(0) % MAX_SESSIONS;
        let (slot_keys, held) = self.slots(user)?;
        let token_keys: Vec<(u64, String)> =
            (0..MAX_SESSIONS).zip(held).filter_map(|(n, hashed)| hashed.map(|h| (n, keys::login_token(&h)))).collect();
        let wanted: Vec<String> = token_keys.iter().map(|(_, key)| key.clone()).collect();
        let mut batch = Batch::new();
        for ((n, key), value) in token_keys.into_iter().zip(self.store.get_many(&wanted)?) {
            let session: Option<LoginSession> = decode(&key, value)?;
            if n == slot || session.as_ref().is_none_or(&expired) {
                batch.delete(key);
            }
        }
        batch.set(keys::login_token(hashed_token), &LoginSession { user_id: user.clone(), when: now })?;
        batch.set(slot_keys[usize::try_from(slot).unwrap_or(0)].clone(), &hashed_token)?;
        batch.commit(self.store)
    }

    /// Ends the session of `hashed_token` (logout).
    pub fn close(&self, hashed_token: &str) -> Result<(), StoreError> {
        self.store.delete_many(&[keys::login_token(hashed_token)])
    }

    /// Ends every session of `user` but `keep` (after a new second factor).
    pub fn close_others(&self, user: &UserId, keep: &str) -> Result<(), StoreError> {
        let (_, held) = self.slots(user)?;
        let ended: Vec<String> = held.into_iter().flatten().filter(|h| h != keep).map(|h| keys::login_token(&h)).collect();
        self.store.delete_many(&ended)
    }

    /// Ends every session of these users (deactivation), in one read of
    /// their slots and one delete.
    pub fn close_all<'u>(&self, users: impl Iterator<Item = &'u UserId>) -> Result<(), StoreError> {
        let slot_keys: Vec<String> = users.flat_map(|u| (0..MAX_SESSIONS).map(move |n| keys::login_token_slot(u, n))).collect();
        if slot_keys.is_empty() {
            return Ok(());
        }
        let values = self.store.get_many(&slot_keys)?;
        let mut ended = Vec::new();
        for (key, value) in slot_keys.iter().zip(values) {
            if let Some(hashed) = decode::<String>(key, value)? {
                ended.push(keys::login_token(&hashed));
            }
        }
        self.store.delete_many(&ended)
    }

    fn slots(&self, user: &UserId) -> Result<(Vec<String>, Vec<Option<String>>), StoreError> {
        let slot_keys: Vec<String> = (0..MAX_SESSIONS).map(|n| keys::login_token_slot(user, n)).collect();
        let values = self.store.get_many(&slot_keys)?;
        let held = slot_keys.iter().zip(values).map(|(key, value)| decode::<String>(key, value)).collect::<Result<_, _>>()?;
        Ok((slot_keys, held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn sessions_of(store: &MemoryStore) -> Vec<String> {
        store.dump().into_keys().filter(|k| k.starts_with("login-token:")).collect()
    }

    #[test]
    fn a_user_holds_at_most_max_sessions_and_the_oldest_ends_first() {
        let store = MemoryStore::default();
        let user = UserId::from("u1");
        let never = |_: &LoginSession| false;
        for n in 0..MAX_SESSIONS + 2 {
            Sessions::new(&store).open(&user, &format!("h{n}"), Date { millis: 1 }, never).expect("memory");
        }
        let held = sessions_of(&store);
        assert_eq!(held.len() as u64, MAX_SESSIONS);
        assert!(!held.contains(&"login-token:h0".to_owned()) && !held.contains(&"login-token:h1".to_owned()), "{held:?}");
        assert!(held.contains(&format!("login-token:h{}", MAX_SESSIONS + 1)));
    }

    #[test]
    fn a_login_prunes_expired_sessions_and_logouts_end_one_or_all_others() {
        let store = MemoryStore::default();
        let user = UserId::from("u1");
        let sessions = Sessions::new(&store);
        sessions.open(&user, "old", Date { millis: 1 }, |_| false).expect("memory");
        sessions.open(&user, "mid", Date { millis: 5 }, |_| false).expect("memory");
        sessions.open(&user, "new", Date { millis: 9 }, |s| s.when.millis < 5).expect("memory");
        assert_eq!(sessions_of(&store), ["login-token:mid", "login-token:new"]);
        sessions.close("mid").expect("memory");
        assert_eq!(sessions_of(&store), ["login-token:new"]);
        sessions.open(&user, "other", Date { millis: 10 }, |_| false).expect("memory");
        sessions.close_others(&user, "other").expect("memory");
        assert_eq!(sessions_of(&store), ["login-token:other"]);
    }
}
