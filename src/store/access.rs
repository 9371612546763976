//! What the gate reads and writes besides users: permission records
//! (`permission:<id>`) and the rate limiter's windows
//! (`rate-limit:<client ip>:<route><method>`), plus the gate's one batched
//! read of everything a token route needs.

use super::ids::UserId;
use super::schema::{Permission, RateWindow, TwoFactorGuard, UserDoc};
use super::{Batch, KvStore, StoreError, decode, get_json, keys};

/// One limiter window: a client address on a route (upstream's key:
/// client IP + route + lower-case method, e.g. `/api/v1/ldap.syncNowpost`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateSlot {
    pub client_ip: String,
    pub route: &'static str,
}

impl RateSlot {
    fn key(&self) -> String {
        keys::rate_limit(&self.client_ip, self.route)
    }
}

/// Everything the gate of a token route reads, from one `get-many`.
#[derive(Debug, Default)]
pub struct GateRecords {
    pub user: Option<UserDoc>,
    /// The user's second-factor state, when asked for (default when none is stored).
    pub two_factor: TwoFactorGuard,
    /// The window of `slot`, when one was asked for.
    pub window: Option<RateWindow>,
    /// The records of the permissions asked for, in order (`None` = not stored).
    pub permissions: Vec<Option<Permission>>,
}

/// Reads the user, their second-factor state (when `two_factor`), the
/// limiter window of `slot` and the `permissions` in one `get-many`.
pub fn read_gate(
    store: &dyn KvStore,
    user: &UserId,
    two_factor: bool,
    slot: Option<&RateSlot>,
    permissions: &[&str],
) -> Result<GateRecords, StoreError> {
    let mut wanted = vec![keys::user(user)];
    wanted.extend(two_factor.then(|| keys::two_factor(user)));
    wanted.extend(slot.map(RateSlot::key));
    wanted.extend(permissions.iter().map(|p| keys::permission(p)));
    let mut values = wanted.iter().zip(store.get_many(&wanted)?);
    let mut next = || values.next().map(|(key, value)| (key.as_str(), value));
    let user = take(next())?;
    let two_factor = if two_factor { take(next())?.unwrap_or_default() } else { TwoFactorGuard::default() };
    let window = match slot {
        Some(_) => take(next())?,
        None => None,
    };
    let permissions = permissions.iter().map(|_| take(next())).collect::<Result<_, _>>()?;
    Ok(GateRecords { user, two_factor, window, permissions })
}

/// The stored record of a permission (`None`: upstream's default roles apply).
pub fn permission(store: &dyn KvStore, id: &str) -> Result<Option<Permission>, StoreError> {
    get_json(store, &keys::permission(id))
}

/// The stored window of a limiter slot.
pub fn rate_window(store: &dyn KvStore, slot: &RateSlot) -> Result<Option<RateWindow>, StoreError> {
    get_json(store, &slot.key())
}

impl Batch {
    /// Stages a limiter window.
    pub fn put_rate_window(&mut self, slot: &RateSlot, window: &RateWindow) -> Result<(), StoreError> {
        self.set(slot.key(), window)
    }
}

fn take<T: serde::de::DeserializeOwned>(found: Option<(&str, Option<Vec<u8>>)>) -> Result<Option<T>, StoreError> {
    match found {
        Some((key, value)) => decode(key, value),
        None => Ok(None),
    }
}
