//! Second-factor state, apart from the user document: the TOTP enrolment
//! (`totp:<_id>`), the lock (`two-factor:<_id>`), and the counters that
//! must hold when requests run in parallel, each decided by one atomic
//! `increment`:
//!
//! * `two-factor-attempts:<_id>`: codes tried since the last success or lock;
//! * `totp-step:<_id>`: the last accepted TOTP step (a replay of it or an
//!   earlier step loses);
//! * `backup-code-used:<_id>:<hash>`: the first request to use a backup code wins.
//!
//! A user document that still carries `services.totp` (written by
//! Rocket.Chat or an older ldap-sync) is read as the enrolment until this
//! module writes `totp:<_id>`.

use crate::store::ids::UserId;
use crate::store::schema::{Totp, TwoFactorGuard, UserDoc};
use crate::store::{Batch, StoreError, counter, decode, keys};

use super::Users;

/// A user's second-factor state.
#[derive(Debug, Clone, Default)]
pub struct SecondFactorState {
    /// The TOTP enrolment, if any.
    pub totp: Option<Totp>,
    pub guard: TwoFactorGuard,
}

impl SecondFactorState {
    /// The state from its two stored values, falling back to the document's `services.totp`.
    pub(crate) fn from_stored(user: &UserDoc, totp: Option<Totp>, guard: Option<TwoFactorGuard>) -> Self {
        Self { totp: totp.or_else(|| user.services.totp.clone()), guard: guard.unwrap_or_default() }
    }
}

impl Users<'_> {
    /// The second-factor state of `user` (one `get-many`).
    pub fn second_factor(&self, user: &UserDoc) -> Result<SecondFactorState, StoreError> {
        let wanted = [keys::totp(&user.id), keys::two_factor(&user.id)];
        let mut values = self.store.get_many(&wanted)?.into_iter();
        let totp = decode(&wanted[0], values.next().flatten())?;
        let guard = decode(&wanted[1], values.next().flatten())?;
        Ok(SecondFactorState::from_stored(user, totp, guard))
    }

    /// Counts one more code tried; returns how many since the last reset.
    pub fn count_attempt(&self, user: &UserId) -> Result<i64, StoreError> {
        self.store.increment(&keys::two_factor_attempts(user), 1)
    }

    /// Starts the count of tried codes again (a success, or a lock that ended).
    pub fn reset_attempts(&self, user: &UserId) -> Result<(), StoreError> {
        self.store.delete_many(&[keys::two_factor_attempts(user)])
    }

    /// Claims TOTP step `step` for `user`: `true` for exactly one of any
    /// number of parallel claims of a step later than the last accepted one.
    ///
    /// One counter holds the last accepted step. A claim reads it (an
    /// increment of 0); a step at or before it is a replay. Otherwise it
    /// adds the difference: the one claim whose result is exactly `step`
    /// won, because after it the counter never falls below `step` again.
    /// A loser takes its difference back.
    pub fn claim_totp_step(&self, user: &UserId, step: u64) -> Result<bool, StoreError> {
        let key = keys::totp_step(user);
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        let last = self.store.increment(&key, 0)?;
        if step <= last {
            return Ok(false);
        }
        let delta = step - last;
        if self.store.increment(&key, delta)? == step {
            return Ok(true);
        }
        self.store.increment(&key, -delta)?;
        Ok(false)
    }

    /// Claims a backup code (by its SHA-256 hex): `true` for the first use only.
    pub fn claim_backup_code(&self, user: &UserId, hashed_code: &str) -> Result<bool, StoreError> {
        Ok(self.store.increment(&keys::backup_code_used(user, hashed_code), 1)? == 1)
    }

    /// Which of `hashed_codes` were used (one `get-many`).
    pub fn used_backup_codes(&self, user: &UserId, hashed_codes: &[String]) -> Result<Vec<bool>, StoreError> {
        let wanted: Vec<String> = hashed_codes.iter().map(|h| keys::backup_code_used(user, h)).collect();
        let values = self.store.get_many(&wanted)?;
        wanted.iter().zip(values).map(|(key, value)| counter(key, value).map(|n| n > 0)).collect()
    }
}

impl Batch {
    /// Stages a user's TOTP enrolment; the markers of `retired_codes` (backup
    /// codes of an enrolment this one replaces) are deleted with it.
    pub fn put_totp(&mut self, user: &UserId, totp: &Totp, retired_codes: &[String]) -> Result<(), StoreError> {
        for hashed in retired_codes {
            self.delete(keys::backup_code_used(user, hashed));
        }
        self.set(keys::totp(user), totp)
    }

    /// Stages a user's second-factor lock.
    pub fn put_two_factor(&mut self, user: &UserId, guard: &TwoFactorGuard) -> Result<(), StoreError> {
        self.set(keys::two_factor(user), guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KvStore;
    use crate::store::memory::MemoryStore;

    #[test]
    fn a_step_is_claimed_once_and_never_after_a_later_one() {
        let store = MemoryStore::default();
        let users = Users::new(&store);
        let u = UserId::from("u1");
        assert!(users.claim_totp_step(&u, 100).expect("memory"));
        assert!(!users.claim_totp_step(&u, 100).expect("memory"), "a replay");
        assert!(!users.claim_totp_step(&u, 99).expect("memory"), "an older step");
        assert!(users.claim_totp_step(&u, 101).expect("memory"));
    }

    #[test]
    fn a_claim_that_loses_a_race_takes_its_difference_back() {
        // Another request claimed step 100 between this one's read (0) and its add:
        // this add lands on 200, not 100, so it loses and restores the counter.
        let store = MemoryStore::default();
        let key = "totp-step:u1";
        assert_eq!(store.increment(key, 100).expect("memory"), 100, "the winner");
        let lost = store.increment(key, 100).expect("memory");
        assert_ne!(lost, 100);
        store.increment(key, -100).expect("memory");
        assert!(!Users::new(&store).claim_totp_step(&UserId::from("u1"), 100).expect("memory"), "still a replay");
    }

    #[test]
    fn backup_codes_are_claimed_once() {
        let store = MemoryStore::default();
        let users = Users::new(&store);
        let u = UserId::from("u1");
        assert!(users.claim_backup_code(&u, "h1").expect("memory"));
        assert!(!users.claim_backup_code(&u, "h1").expect("memory"));
        assert_eq!(users.used_backup_codes(&u, &["h1".into(), "h2".into()]).expect("memory"), [true, false]);
    }
}
