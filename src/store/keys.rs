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

/// `sync-report-seq` → counter: the number of the newest report in the history.
pub const SYNC_REPORT_SEQ: &str = "sync-report-seq";

/// `sync-report:<n>` → the report of run number `n` (the last
/// [`super::runs::REPORT_HISTORY`] are kept).
pub fn sync_report(seq: i64) -> String {
    format!("sync-report:{seq}")
}

/// `sync-preview` → the plan of the last `ldap.syncPreview` (`sync::preview::Preview`).
pub const SYNC_PREVIEW: &str = "sync-preview";

/// `sync-members` → the head of the last complete read's members: generation, chunks, total.
pub const SYNC_MEMBERS: &str = "sync-members";

/// `sync-members:<generation>:<n>` → JSON array of up to 1,000 `_id`s the read saw.
pub fn sync_members_chunk(generation: &str, chunk: usize) -> String {
    format!("sync-members:{generation}:{chunk}")
}

/// `sync-cookie` → `{"mode", "cookie", "scope"}`: where the next incremental
/// run resumes (RFC 4533 cookie, base64), and a fingerprint of the search it
/// belongs to.
pub const SYNC_COOKIE: &str = "sync-cookie";

/// `sync-mark-key` → 32 hex digits: the secret key of the entries' sync-mark
/// fingerprints (SipHash-2-4-128), made by the first sync that needs it.
pub const SYNC_MARK_KEY: &str = "sync-mark-key";

/// `sync-force-used` → JSON `true` once a forced run passed the breaker,
/// until `ldap_sync_force_deactivations` is seen `false` again.
pub const SYNC_FORCE_USED: &str = "sync-force-used";

/// `sync-lease` → `{"runId", "expiresAt", "startedAt", "phase", "pages"}`: the run in progress.
pub const SYNC_LEASE: &str = "sync-lease";

/// `sync-lease-slot:<slot>` → counter: who may take the lease in this slot of time.
pub fn sync_lease_slot(slot: i64) -> String {
    format!("sync-lease-slot:{slot}")
}

/// `user:<_id>` → the user document (Rocket.Chat's shape).
pub fn user(id: &UserId) -> String {
    format!("user:{id}")
}

/// `avatar:<_id>` → the user's avatar image, its type and ETag (`store/avatars.rs`).
pub fn avatar(id: &UserId) -> String {
    format!("avatar:{id}")
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

/// `user-list-rebuild:<view>:<changes>:<minute>` → counter: the first
/// request to bump it rebuilds a stale listing; the others serve the stale one.
pub fn user_list_rebuild(view: &str, changes: i64, minute: i64) -> String {
    format!("user-list-rebuild:{view}:{changes}:{minute}")
}

/// `user-list:<view>:<generation>:<chunk>` → JSON array of `_id`s in listing order.
pub fn user_list_chunk(view: &str, generation: &str, chunk: usize) -> String {
    format!("user-list:{view}:{generation}:{chunk}")
}

/// `sync-mark:<idAttribute>:<hex id>` → `{"id", "fp"}`: the user a directory
/// entry stood for when the sync last wrote or checked it, and a fingerprint
/// of what the sync derived from the entry then. Dropped by every write of
/// the user's document.
pub fn sync_mark(id: &LdapId) -> String {
    format!("sync-mark:{}:{}", id.attribute, id.value)
}

/// `import-id:<import id>` → JSON string `_id`: the user whose `importIds`
/// holds it (a directory user's DNs), exactly as stored.
pub fn import_id(import_id: &str) -> String {
    format!("import-id:{import_id}")
}

/// `permission:<permission id>` → `{"_id", "roles"}`.
pub fn permission(id: &str) -> String {
    format!("permission:{id}")
}

/// `two-factor:<_id>` → the second-factor guard (lockout).
pub fn two_factor(user_id: &UserId) -> String {
    format!("two-factor:{user_id}")
}

/// `totp:<_id>` → the user's TOTP state (`services.totp`'s shape), kept out
/// of the user document so that enrolment and the sync never overwrite each other.
pub fn totp(user_id: &UserId) -> String {
    format!("totp:{user_id}")
}

/// `two-factor-attempts:<_id>` → counter: codes tried since the last success or lock.
pub fn two_factor_attempts(user_id: &UserId) -> String {
    format!("two-factor-attempts:{user_id}")
}

/// `totp-step:<_id>` → counter: the last TOTP time step accepted.
pub fn totp_step(user_id: &UserId) -> String {
    format!("totp-step:{user_id}")
}

/// `backup-code-used:<_id>:<SHA-256 hex>` → counter: 1 once the code was used.
pub fn backup_code_used(user_id: &UserId, hashed_code: &str) -> String {
    format!("backup-code-used:{user_id}:{hashed_code}")
}

/// `login-token:<hashedToken>` → `{"userId", "when"}`: one login session.
pub fn login_token(hashed_token: &str) -> String {
    format!("login-token:{hashed_token}")
}

/// `login-token-seq:<_id>` → counter: logins so far (picks the next slot).
pub fn login_token_seq(user_id: &UserId) -> String {
    format!("login-token-seq:{user_id}")
}

/// `login-token-slot:<_id>:<n>` → JSON string hashedToken: the session in slot `n`.
pub fn login_token_slot(user_id: &UserId, slot: u64) -> String {
    format!("login-token-slot:{user_id}:{slot}")
}

/// `rate-limit:<client>:<route><method>:<window>` → counter: calls in one
/// fixed window. `client` is the client's address (an IPv6 address as its
/// /64) or `account:<lower-case login name>`; the route and method as
/// upstream keys them (`/api/v1/ldap.syncNowpost`); `window` = ms since the
/// epoch / window length.
pub fn rate_limit(client: &str, route_and_method: &str, window: i64) -> String {
    format!("rate-limit:{client}:{route_and_method}:{window}")
}
