//! Errors of the store layer.

/// A failure reading or writing the key-value store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The host refused to open the store: the label is not granted in
    /// `spin.toml` (`key_value_stores`) or not defined in the runtime config.
    #[error("key-value store {label:?} cannot be opened: {reason}")]
    Open { label: String, reason: String },
    /// The host failed a read or write (disk full, database locked, ...).
    #[error("key-value {op} failed: {reason}")]
    Backend { op: &'static str, reason: String },
    /// A stored value is not the JSON shape `docs/kv-schema.md` promises,
    /// usually because another writer broke the contract.
    #[error("stored value at {key:?} is not valid: {reason}")]
    Corrupt { key: String, reason: String },
}
