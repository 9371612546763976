//! Errors that abort a sync run.

use crate::ldap::LdapError;
use crate::ldap::filter::FilterError;
use crate::store::StoreError;

/// A run-level failure. Users written before it stay valid documents.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Connect, TLS, bind, search, or a result code mid-search.
    #[error(transparent)]
    Ldap(#[from] LdapError),
    /// The store refused a read or write.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `ldap_user_search_filter` is not an RFC 4515 filter.
    #[error("invalid value for variable ldap_user_search_filter: {0}")]
    Filter(#[from] FilterError),
    /// No search field to build the username clause from.
    #[error("ldap_user_search_field is empty: set the attribute that holds the username (uid for OpenLDAP)")]
    NoSearchField,
    /// `ldap_sync_time_budget_ms` ran out: the run stopped cleanly between
    /// two pages (not a failure: the next call goes on).
    #[error("stopped at the time budget (ldap_sync_time_budget_ms = {budget_ms}); the next call goes on")]
    BudgetReached { budget_ms: u32 },
    /// A group read that roles or the group filter need failed or was
    /// incomplete: the run stops before any write, so nobody loses a role
    /// or is skipped on a partial read.
    #[error("groups: {0}")]
    Groups(String),
    /// `ldap_sync_mode` asks for a mode this directory or configuration cannot do.
    #[error("ldap_sync_mode: {0}")]
    ModeUnavailable(String),
}
