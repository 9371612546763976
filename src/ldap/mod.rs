//! The LDAP client: protocol (sans-IO), framing, transport and TLS.
//!
//! ```text
//!   sync ──SearchSpec──▶ Session (transport.rs: the only socket owner)
//!                          │  bytes out ▲ bytes in
//!                          ▼            │
//!                        Connection (connection.rs: ids, bind, StartTLS, paging)
//!                          │  frames    ▲
//!                          ▼            │
//!                        framing.rs (BER length, one frame per decode) ─ ldap3_proto codec
//! ```
//!
//! Wire types stop here: `sync` sees [`DirectoryEntry`], and `filter.rs` is
//! the only code that builds an `LdapFilter`. This module never touches the
//! key-value store.

pub mod connection;
pub mod entry;
pub mod error;
pub mod filter;
pub mod framing;
pub mod tls;
pub mod transport;

pub use connection::{DirSyncRequest, SearchSpec, SyncRequest};
pub use entry::{DirectoryEntry, Dn};
pub use error::LdapError;
pub use transport::{LdapTiming, PasswordCheck, SearchEnd, Session, SyncChunk, SyncEnd};
