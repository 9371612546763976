//! What the gate reads and writes besides the user itself: permission
//! records (`permission:<id>`), the rate limiter's counters
//! (`rate-limit:<client>:<route><method>:<window>`), and the gate's one
//! batched read of everything a token route needs.

use super::ids::UserId;
use super::schema::{Date, LoginSession, Permission, Totp, TwoFactorGuard, UserDoc};
use super::users::SecondFactorState;
use super::{KvStore, StoreError, decode, get_json, keys};

/// One limiter: a client (address or account) on a route, upstream's key
/// of route + lower-case method, e.g. `/api/v1/ldap.syncNowpost`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateSlot {
    pub client: String,
    pub route: &'static str,
}

/// A call counted in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateCount {
    /// Calls in this window, this one included.
    pub count: i64,
    /// When the window ends.
    pub reset_at: Date,
}

/// Counts one call of `slot` in the fixed window of `window_ms` holding
/// `now`, atomically (`increment`): parallel calls each get their own
/// count, so the limit holds. The first call of a window deletes the
/// previous window's counter, so counters do not pile up.
pub fn count_call(store: &dyn KvStore, slot: &RateSlot, now: Date, window_ms: u32) -> Result<RateCount, StoreError> {
    let length = i64::from(window_ms.max(1));
    let window = now.millis.div_euclid(length);
    let count = store.increment(&keys::rate_limit(&slot.client, slot.route, window), 1)?;
    if count == 1 {
        store.delete_many(&[keys::rate_limit(&slot.client, slot.route, window - 1)])?;
    }
    Ok(RateCount { count, reset_at: Date { millis: (window + 1) * length } })
}

/// Everything the gate of a token route reads, from one `get-many`.
#[derive(Debug, Default)]
pub struct GateRecords {
    pub user: Option<UserDoc>,
    /// The session of the presented token, when it has one of its own.
    pub session: Option<LoginSession>,
    /// The user's second-factor state, when asked for.
    pub second_factor: Option<SecondFactorState>,
    /// The records of the permissions asked for, in order (`None` = not stored).
    pub permissions: Vec<Option<Permission>>,
}

/// Reads the user, the session of `hashed_token`, their second-factor
/// state (when `second_factor`) and the `permissions` in one `get-many`.
pub fn read_gate(
    store: &dyn KvStore,
    user: &UserId,
    hashed_token: &str,
    second_factor: bool,
    permissions: &[&str],
) -> Result<GateRecords, StoreError> {
    let mut wanted = vec![keys::user(user), keys::login_token(hashed_token)];
    if second_factor {
        wanted.extend([keys::totp(user), keys::two_factor(user)]);
    }
    wanted.extend(permissions.iter().map(|p| keys::permission(p)));
    let mut values = wanted.iter().zip(store.get_many(&wanted)?);
    let mut next = || values.next().map(|(key, value)| (key.as_str(), value));
    let doc: Option<UserDoc> = take(next())?;
    let session = take(next())?;
    let mut state = None;
    if second_factor {
        let totp: Option<Totp> = take(next())?;
        let guard: Option<TwoFactorGuard> = take(next())?;
        state = doc.as_ref().map(|doc| SecondFactorState::from_stored(doc, totp, guard));
    }
    let permissions = permissions.iter().map(|_| take(next())).collect::<Result<_, _>>()?;
    Ok(GateRecords { user: doc, session, second_factor: state, permissions })
}

/// The stored record of a permission (`None`: upstream's default roles apply).
pub fn permission_record(store: &dyn KvStore, id: &str) -> Result<Option<Permission>, StoreError> {
    get_json(store, &keys::permission(id))
}

fn take<T: serde::de::DeserializeOwned>(found: Option<(&str, Option<Vec<u8>>)>) -> Result<Option<T>, StoreError> {
    match found {
        Some((key, value)) => decode(key, value),
        None => Ok(None),
    }
}
