//! Every key format this component reads or writes. `docs/kv-schema.md`
//! documents each one; change both together. Private to `store`: the rest
//! of the crate asks the repositories, and never spells a key.

use super::ids::{LdapId, UserId};

/// Version of the layout in `docs/kv-schema.md`; stored at [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_VALUE: u32 = 1;

/// `schema-version` → JSON number.
pub const SCHEMA_VERSION: &str = "schema-version";

/// `sync-report:last` → the last sync run's report.
pub const SYNC_REPORT: &str = "sync-report:last";

/// `user:<_id>` → the user document (Rocket.Chat's shape).
pub fn user(id: &UserId) -> String {
    format!("user:{id}")
}

/// The prefix of every [`user`] key (listings).
pub const USER_PREFIX: &str = "user:";

/// `username:<lower-case username>` → JSON string `_id`.
pub fn username(name: &str) -> String {
    format!("username:{}", name.to_lowercase())
}

/// `email:<lower-case address>` → JSON string `_id`.
pub fn email(address: &str) -> String {
    format!("email:{}", address.to_lowercase())
}

/// `ldap-id:<idAttribute>:<hex id>` → JSON string `_id`.
pub fn ldap_id(id: &LdapId) -> String {
    format!("ldap-id:{}:{}", id.attribute, id.value)
}

/// `users-changed` → counter (8-byte little-endian `i64`): bumped after every
/// write that creates a user or changes a username, so a listing index can
/// tell whether it is current.
pub const USERS_CHANGED: &str = "users-changed";

/// `user-list:<view>` → the head of one listing index: generation, counter value, total, chunks.
pub fn user_list(view: &str) -> String {
    format!("user-list:{view}")
}

/// `user-list:<view>:<generation>:<chunk>` → JSON array of `_id`s in listing order.
pub fn user_list_chunk(view: &str, generation: &str, chunk: usize) -> String {
    format!("user-list:{view}:{generation}:{chunk}")
}

/// `permission:<permission id>` → `{"_id", "roles"}`.
pub fn permission(id: &str) -> String {
    format!("permission:{id}")
}

/// `two-factor:<_id>` → the second-factor guard (replay and lockout state).
pub fn two_factor(user_id: &UserId) -> String {
    format!("two-factor:{user_id}")
}

/// `rate-limit:<client ip>:<route><method>` → the limiter window, keyed as
/// upstream keys it (client IP + route + method, e.g. `/api/v1/ldap.syncNowpost`).
pub fn rate_limit(client_ip: &str, route_and_method: &str) -> String {
    format!("rate-limit:{client_ip}:{route_and_method}")
}
