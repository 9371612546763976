//! Permissions: a role list stored per permission id (spec §1.8).

use crate::store::schema::Permission;

/// The permission `ldap.syncNow` checks inside its action.
pub const SYNC_AUTH_SERVICES_USERS: &str = "sync-auth-services-users";
/// Callers with this permission skip the rate limiter.
pub const API_BYPASS_RATE_LIMIT: &str = "api-bypass-rate-limit";

/// `users.info`: see every field of other users.
pub const VIEW_FULL_OTHER_USER_INFO: &str = "view-full-other-user-info";
/// `users.list` requires it.
pub const VIEW_D_ROOM: &str = "view-d-room";
/// `ldap.testConnection` / `ldap.testSearch` require it.
pub const TEST_ADMIN_OPTIONS: &str = "test-admin-options";

/// The roles upstream seeds for a permission that has no stored record
/// (`apps/meteor/app/authorization/server/constant/permissions.ts`).
pub fn default_roles(permission: &str) -> &'static [&'static str] {
    match permission {
        SYNC_AUTH_SERVICES_USERS | VIEW_FULL_OTHER_USER_INFO | TEST_ADMIN_OPTIONS => &["admin"],
        API_BYPASS_RATE_LIMIT => &["admin", "bot", "app"],
        VIEW_D_ROOM => &["admin", "user", "bot", "app", "guest"],
        _ => &[],
    }
}

/// Whether any of `roles` is granted `permission` (stored record, else the default).
pub fn grants(permission: &str, stored: Option<&Permission>, roles: &[String]) -> bool {
    match stored {
        Some(record) => roles.iter().any(|r| record.roles.contains(r)),
        None => roles.iter().any(|r| default_roles(permission).contains(&r.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_admin_only() {
        assert!(grants(SYNC_AUTH_SERVICES_USERS, None, &["user".into(), "admin".into()]));
        assert!(!grants(SYNC_AUTH_SERVICES_USERS, None, &["user".into()]));
    }

    #[test]
    fn stored_record_replaces_default() {
        let record = Permission { id: SYNC_AUTH_SERVICES_USERS.into(), roles: vec!["ops".into()], extra: Default::default() };
        assert!(grants(SYNC_AUTH_SERVICES_USERS, Some(&record), &["ops".into()]));
        assert!(!grants(SYNC_AUTH_SERVICES_USERS, Some(&record), &["admin".into()]));
    }
}
