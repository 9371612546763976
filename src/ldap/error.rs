//! Errors of the LDAP client. Messages name what failed and why, never a
//! password or the service account's DN (upstream marks it secret).

use ldap3_proto::LdapResultCode;

/// A run-level LDAP failure: the sync cannot continue on this connection.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// Neither `ldap_ip` nor `ldap_host` gives an IP address to connect to.
    #[error("no LDAP server address: set ldap_ip to the server's IP address (Spin does not resolve host names)")]
    NoAddress,
    /// TCP connect failed or timed out: server down, wrong port, or firewall.
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// The TLS handshake failed: wrong CA, name mismatch, or a plain-text server.
    #[error("TLS with {addr} failed: {reason}")]
    Tls { addr: String, reason: String },
    /// `ldap_ca_cert` or `ldap_host` cannot be used for TLS.
    #[error("TLS configuration: {0}")]
    TlsConfig(String),
    /// A read or write timed out (`ldap_timeout`).
    #[error("{op}: no answer from the LDAP server within {timeout_ms} ms")]
    Timeout { op: &'static str, timeout_ms: u32 },
    /// The socket failed mid-operation.
    #[error("{op}: connection error: {reason}")]
    Io { op: &'static str, reason: String },
    /// The server closed the connection mid-operation.
    #[error("{op}: the LDAP server closed the connection")]
    Closed { op: &'static str },
    /// The server answered an operation with a non-success result code.
    #[error("{op} failed: {} ({}){}{}", code_name(code), code.clone() as i64, diagnostic(message), limit_hint(code))]
    Result { op: &'static str, code: LdapResultCode, message: String },
    /// A frame that is not valid BER/LDAP, or one over [`super::framing::MAX_MESSAGE_BYTES`].
    #[error("malformed LDAP message: {0}")]
    Protocol(String),
    /// The server sent a response that does not fit the pending operation.
    #[error("{op}: unexpected response from the LDAP server: {what}")]
    UnexpectedResponse { op: &'static str, what: String },
    /// The server announced it is disconnecting (RFC 4511 §4.4.1).
    #[error("the LDAP server ended the session: {0}")]
    Disconnected(String),
    /// Bytes followed the StartTLS response before the TLS handshake. They
    /// came in the clear, so they are refused rather than decoded as if they
    /// had come over TLS: a forged bind response injected by someone on the
    /// path, or a broken server.
    #[error(
        "StartTLS: the LDAP server sent {bytes} unexpected bytes after the StartTLS response, before the TLS handshake \
         (refused: they could be injected by someone on the network path)"
    )]
    StartTlsTrailingData { bytes: usize },
    /// One operation (a bind, StartTLS, the TLS handshake, or one page of a
    /// search) took longer than its deadline, a small multiple of
    /// `ldap_timeout`, although each read on its own was in time: a server
    /// that trickles bytes.
    #[error("{op}: the LDAP server did not finish within {limit_ms} ms ({factor} × ldap_timeout), although it kept sending")]
    OperationDeadline { op: &'static str, limit_ms: u64, factor: u32 },
    /// The whole session (connect, bind and every page) ran past the run's
    /// deadline (`Session::open_until`, by default
    /// [`super::transport::DEFAULT_RUN_DEADLINE`] after it opened).
    #[error("{op}: stopped at the run deadline, {limit_ms} ms after the LDAP session opened")]
    RunDeadline { op: &'static str, limit_ms: u64 },
    /// A page (or an unpaged search) held more results than its bound; see
    /// [`super::connection::PAGE_RESULTS_FACTOR`] and
    /// [`super::connection::MAX_UNPAGED_RESULTS`].
    #[error("search: the LDAP server sent more than {limit} results {bound}")]
    TooManyResults { limit: u64, bound: String },
    /// A paged search ended a page with the cookie that page was requested
    /// with: the server is not moving, and the search would never end.
    #[error(
        "search: the LDAP server sent the same paging cookie twice in a row (after page {page}); stopping a search that would never end"
    )]
    RepeatedCookie { page: u64 },
    /// A paged search ran past [`super::connection::MAX_PAGES`] pages.
    #[error("search: the LDAP server kept sending paging cookies for more than {limit} pages; stopping a search that would never end")]
    TooManyPages { limit: u64 },
}

/// The RFC 4511 name of a result code, e.g. `sizeLimitExceeded`.
pub fn code_name(code: &LdapResultCode) -> String {
    let debug = match code {
        // ldap3_proto's variant names carry typos; RFC 4511 §A.2 spellings.
        LdapResultCode::InsufficentAccessRights => "InsufficientAccessRights".to_owned(),
        LdapResultCode::NotALlowedOnRDN => "NotAllowedOnRDN".to_owned(),
        other => format!("{other:?}"),
    };
    let mut chars = debug.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => debug,
    }
}

/// What to change when a server limit stopped the search: the setting to
/// lower here, and the server's limits to raise for the service account
/// (`docs/directories.md`).
fn limit_hint(code: &LdapResultCode) -> &'static str {
    match code {
        LdapResultCode::SizeLimitExceeded => {
            "; a page is larger than the server's size limit for the service account: lower ldap_search_page_size, or raise \
             the limit (OpenLDAP: olcLimits size for the service DN; 389-ds: nsSizeLimit on the service account, which \
             applies per page; docs/directories.md)"
        }
        LdapResultCode::AdminLimitExceeded => {
            "; the server's administrative limit for the service account was reached (389-ds: nsLookThroughLimit and \
             nsPagedLookThroughLimit on the service account entry, -1 for none; AD: MaxPageSize caps ldap_search_page_size at \
             1000; docs/directories.md)"
        }
        _ => "",
    }
}

fn diagnostic(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(": {message}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_are_named_and_numbered() {
        let e = LdapError::Result { op: "search", code: LdapResultCode::SizeLimitExceeded, message: String::new() };
        assert!(e.to_string().starts_with("search failed: sizeLimitExceeded (4); a page is larger than"), "{e}");
        assert!(e.to_string().contains("lower ldap_search_page_size"), "{e}");
        let e = LdapError::Result { op: "search", code: LdapResultCode::AdminLimitExceeded, message: "lookthrough".into() };
        assert!(e.to_string().starts_with("search failed: adminLimitExceeded (11): lookthrough; the server's administrative limit"), "{e}");
        assert!(e.to_string().contains("nsPagedLookThroughLimit"), "{e}");
        let e = LdapError::Result { op: "bind", code: LdapResultCode::InvalidCredentials, message: "bad".into() };
        assert_eq!(e.to_string(), "bind failed: invalidCredentials (49): bad");
        assert_eq!(code_name(&LdapResultCode::InsufficentAccessRights), "insufficientAccessRights");
    }
}
