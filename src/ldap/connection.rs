//! The LDAP protocol as a sans-IO state machine: message ids, bind,
//! StartTLS, RFC 2696 paged search, unbind. It never touches a socket: the
//! caller starts an operation, writes out [`Connection::take_outgoing`],
//! feeds received bytes to [`Connection::receive`], and polls for the next
//! [`Event`] (`Ok(None)` = "give me more bytes").

use std::num::NonZeroU32;

use bytes::BytesMut;
use ldap3_proto::LdapMsg;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapExtendedRequest, LdapFilter, LdapIntermediateResponse, LdapOp, LdapResult,
    LdapResultCode, LdapSearchRequest, LdapSearchScope, SyncRequestMode, SyncStateValue,
};

use crate::settings::Scope;

use super::entry::DirectoryEntry;
use super::error::LdapError;
use super::framing::Codec;

/// RFC 4511 §4.14.1: the StartTLS extended operation.
const OID_START_TLS: &str = "1.3.6.1.4.1.1466.20037";

/// Results (entries and references) accepted in one page, as a multiple of
/// the page size. RFC 2696 servers send at most the page size, so honest
/// ones stay at 1×; the slack covers one that rounds up. A page is held in memory until the sync has written it, so this bounds
/// memory per page; a server that ignores the paged control and sends the
/// whole directory as one page is refused here (search unpaged instead).
pub const PAGE_RESULTS_FACTOR: u64 = 4;
/// Results accepted from an unpaged search when `ldap_search_size_limit` is 0
/// (no limit sent). The whole result is held in memory: 100,000 entries of
/// about 1 KiB are about 100 MiB. Larger directories need paging.
pub const MAX_UNPAGED_RESULTS: u64 = 100_000;
/// Results accepted from one RFC 4533 refresh (entries, present and
/// deleted ids): they are handed over in chunks, so this only stops a
/// server that never ends.
pub const MAX_SYNC_RESULTS: u64 = 100_000_000;
/// Pages accepted in one paged search. With any page size of 100 or more this
/// covers 10 million entries (25 million at the default page size 250, and
/// 100 million when AD's MaxPageSize of 1,000 caps a larger one); a server
/// that hands out fresh cookies forever stops here.
pub const MAX_PAGES: u64 = 100_000;

/// What to search for.
#[derive(Debug, Clone)]
pub struct SearchSpec {
    pub base: String,
    pub scope: Scope,
    pub filter: LdapFilter,
    pub attributes: Vec<String>,
    /// RFC 2696 page size; `None` = one unpaged search.
    pub page_size: Option<NonZeroU32>,
    /// Sent only with unpaged searches: servers count a size limit across
    /// all pages of a paged search, which is why upstream stops at 1,000
    /// users (upstream issues #4542, #7087, #17896).
    pub size_limit: u32,
    /// An RFC 4533 refreshOnly search instead of a paged one (`page_size`
    /// is then ignored: slapd answers a paged sync search with one page and
    /// success, `shared/notes/ldap3_proto.md` §6).
    pub sync: Option<SyncRequest>,
    /// An Active Directory DirSync search instead of a paged one: rounds
    /// are repeated with the server's cookie while it says there is more.
    pub dirsync: Option<DirSyncRequest>,
}

/// Active Directory's DirSync control (MS-ADTS 3.1.1.3.4.1.3): the changes
/// since `cookie` (empty: everything), always critical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSyncRequest {
    /// `LDAP_DIRSYNC_*` flags, e.g. 0x1 (OBJECT_SECURITY: no replication right needed).
    pub flags: u32,
    /// The most bytes of attribute data per round (0: the server's default).
    pub max_bytes: u32,
    pub cookie: Vec<u8>,
}

/// The OID of [`DirSyncRequest`]'s control.
pub const OID_DIRSYNC: &str = "1.2.840.113556.1.4.841";

/// RFC 4533 §2.2: a refreshOnly content synchronisation from `cookie`
/// (`None`: the whole content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    pub cookie: Option<Vec<u8>>,
}

/// An entry's RFC 4533 state (the Sync State control), or a Sync Info message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncItem {
    /// Added or modified (state `add` or `modify`): the whole entry, and
    /// the sync UUID the server gave it (none from a server that ignored
    /// the control).
    Changed(DirectoryEntry, Option<[u8; 16]>),
    /// Deleted: only its entryUUID.
    Deleted([u8; 16]),
    /// Unchanged and still there (present phase): only its entryUUID.
    Present([u8; 16]),
    /// A syncIdSet: entryUUIDs deleted (`deletes`) or present.
    IdSet { uuids: Vec<[u8; 16]>, deletes: bool },
    /// A Sync Info message that carries no ids (newcookie, refreshDelete,
    /// refreshPresent): `present_phase` when it ends a present phase.
    Info { present_phase: bool },
}

/// How an RFC 4533 refresh ended (the Sync Done control).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncDone {
    /// The cookie to resume from next time.
    pub cookie: Option<Vec<u8>>,
    /// `Some(true)`: deletions were sent explicitly. `Some(false)`: a
    /// present phase was used, so whatever was not reported is gone.
    /// `None`: not known. ldap3_proto 0.9 decodes `{refreshDeletes TRUE}`
    /// without a cookie as FALSE (`shared/notes/ldap3_proto.md` §3), so a
    /// FALSE that comes without a cookie is never trusted.
    pub refresh_deletes: Option<bool>,
}

/// What the server told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The bind succeeded.
    Bound,
    /// StartTLS was accepted: the caller must now run the TLS handshake.
    StartTlsAccepted,
    /// One search result entry.
    Entry(DirectoryEntry),
    /// A continuation reference (RFC 4511 §4.5.3): part of the result lives
    /// on another server, which we do not read, so the result is incomplete.
    Reference,
    /// A page ended and the next page's request is already queued.
    PageDone,
    /// The search is complete.
    SearchDone,
    /// One RFC 4533 item of a sync search.
    Sync(SyncItem),
    /// A sync search is complete.
    SyncDone(SyncDone),
    /// A DirSync search is complete: the cookie to resume from next time.
    DirSyncDone { cookie: Vec<u8> },
}

#[derive(Debug)]
enum Pending {
    Nothing,
    Bind { id: i32 },
    StartTls { id: i32 },
    Search { id: i32, spec: Box<SearchSpec>, progress: Progress },
}

/// How far a search has come: what the limits are checked against.
#[derive(Debug, Default)]
struct Progress {
    /// Entries and references received in the current page.
    results: u64,
    /// Pages finished with a non-empty cookie.
    pages: u64,
    /// The cookie the current page was requested with (empty for the first).
    cookie: Vec<u8>,
}

/// One LDAP session's protocol state.
pub struct Connection {
    codec: Codec,
    last_id: i32,
    inbound: BytesMut,
    outbound: BytesMut,
    pending: Pending,
}

impl Default for Connection {
    fn default() -> Self {
        Self { codec: Codec::default(), last_id: 0, inbound: BytesMut::new(), outbound: BytesMut::new(), pending: Pending::Nothing }
    }
}

impl Connection {
    /// Queues a simple bind (RFC 4511 §4.2).
    pub fn bind(&mut self, dn: &str, password: &str) -> Result<(), LdapError> {
        let id = self.send(
            LdapOp::BindRequest(LdapBindRequest { version: 3, dn: dn.to_owned(), cred: LdapBindCred::Simple(password.to_owned()) }),
            Vec::new(),
        )?;
        self.pending = Pending::Bind { id };
        Ok(())
    }

    /// Queues the StartTLS extended request.
    pub fn start_tls(&mut self) -> Result<(), LdapError> {
        let id = self.send(LdapOp::ExtendedRequest(LdapExtendedRequest { name: OID_START_TLS.to_owned(), value: None }), Vec::new())?;
        self.pending = Pending::StartTls { id };
        Ok(())
    }

    /// Queues the first request of a search.
    pub fn search(&mut self, spec: SearchSpec) -> Result<(), LdapError> {
        self.send_search(Box::new(spec), Progress::default())
    }

    /// Call once the TLS handshake that followed [`Event::StartTlsAccepted`]
    /// is complete: everything from here on comes over TLS, so nothing
    /// decoded before it may carry over. Starts a fresh codec and inbound
    /// buffer; message ids go on (RFC 4511 §4.1.1.1: unique per session).
    pub fn tls_established(&mut self) -> Result<(), LdapError> {
        // `poll` already refuses bytes behind the StartTLS response; this is
        // the same rule for a caller that fed bytes in after it.
        if !self.inbound.is_empty() {
            return Err(LdapError::StartTlsTrailingData { bytes: self.inbound.len() });
        }
        self.codec = Codec::default();
        self.inbound = BytesMut::new();
        Ok(())
    }

    /// Queues an unbind (RFC 4511 §4.3: no response follows).
    pub fn unbind(&mut self) -> Result<(), LdapError> {
        self.send(LdapOp::UnbindRequest, Vec::new())?;
        self.pending = Pending::Nothing;
        Ok(())
    }

    /// Bytes to write to the server.
    pub fn take_outgoing(&mut self) -> BytesMut {
        self.outbound.split()
    }

    /// Bytes read from the server.
    pub fn receive(&mut self, bytes: &[u8]) {
        self.inbound.extend_from_slice(bytes);
    }

    /// The next event, `Ok(None)` when more bytes are needed.
    pub fn poll(&mut self) -> Result<Option<Event>, LdapError> {
        loop {
            let Some(msg) = self.codec.decode(&mut self.inbound)? else {
                return Ok(None);
            };
            if let Some(event) = self.dispatch(msg)? {
                return Ok(Some(event));
            }
        }
    }

    /// Handles one message; `Ok(None)` when it produced no event.
    fn dispatch(&mut self, msg: LdapMsg) -> Result<Option<Event>, LdapError> {
        let LdapMsg { msgid, op, ctrl } = msg;
        if msgid == 0 {
            // RFC 4511 §4.4: unsolicited notification, e.g. Notice of Disconnection.
            return Err(LdapError::Disconnected(match op {
                LdapOp::ExtendedResponse(r) => describe_result(&r.res),
                other => op_name(&other).to_owned(),
            }));
        }
        match std::mem::replace(&mut self.pending, Pending::Nothing) {
            Pending::Bind { id } if id == msgid => match op {
                LdapOp::BindResponse(r) => check("bind", r.res).map(|()| Some(Event::Bound)),
                other => Err(unexpected("bind", &other)),
            },
            Pending::StartTls { id } if id == msgid => match op {
                LdapOp::ExtendedResponse(r) => {
                    check("StartTLS", r.res)?;
                    // RFC 4511 §4.14.2: the server sends nothing more until the
                    // handshake. Bytes read with the response came in the clear
                    // and would otherwise be decoded as if they had come over TLS.
                    if !self.inbound.is_empty() {
                        return Err(LdapError::StartTlsTrailingData { bytes: self.inbound.len() });
                    }
                    Ok(Some(Event::StartTlsAccepted))
                }
                other => Err(unexpected("StartTLS", &other)),
            },
            Pending::Search { id, spec, progress } if id == msgid => self.on_search(op, ctrl, id, spec, progress),
            Pending::Nothing => Err(LdapError::UnexpectedResponse { op: "idle", what: op_name(&op).to_owned() }),
            other => {
                self.pending = other;
                Err(LdapError::UnexpectedResponse { op: "read", what: format!("{} for unknown message id {msgid}", op_name(&op)) })
            }
        }
    }

    fn on_search(
        &mut self,
        op: LdapOp,
        ctrl: Vec<LdapControl>,
        id: i32,
        spec: Box<SearchSpec>,
        mut progress: Progress,
    ) -> Result<Option<Event>, LdapError> {
        let event = match op {
            LdapOp::SearchResultEntry(entry) => {
                let attributes = entry.attributes.into_iter().map(|a| (a.atype, a.vals)).collect();
                let found = DirectoryEntry::new(entry.dn, attributes);
                match (&spec.sync, sync_state(ctrl)) {
                    (None, _) => Some(Event::Entry(found)),
                    (Some(_), Some((SyncStateValue::Delete, uuid))) => Some(Event::Sync(SyncItem::Deleted(uuid))),
                    (Some(_), Some((SyncStateValue::Present, uuid))) => Some(Event::Sync(SyncItem::Present(uuid))),
                    // add, modify, or no state at all (a server that ignored the control).
                    (Some(_), state) => Some(Event::Sync(SyncItem::Changed(found, state.map(|(_, uuid)| uuid)))),
                }
            }
            LdapOp::IntermediateResponse(info) if spec.sync.is_some() => Some(Event::Sync(match info {
                LdapIntermediateResponse::SyncInfoIdSet { refresh_deletes, syncuuids, .. } => {
                    SyncItem::IdSet { uuids: syncuuids.iter().map(|u| *u.as_bytes()).collect(), deletes: refresh_deletes }
                }
                LdapIntermediateResponse::SyncInfoRefreshPresent { .. } => SyncItem::Info { present_phase: true },
                _ => SyncItem::Info { present_phase: false },
            })),
            // Continuation references point at other servers; we read one
            // server only, and say so: the caller must not take the result as complete.
            LdapOp::SearchResultReference(_) => Some(Event::Reference),
            LdapOp::SearchResultDone(result) => return self.on_search_done(result, ctrl, spec, progress),
            other => return Err(unexpected("search", &other)),
        };
        // References count too: each one is work, and a server could send them forever.
        progress.results += 1;
        let limit = result_limit(&spec);
        if progress.results > limit {
            return Err(LdapError::TooManyResults { limit, bound: describe_limit(&spec) });
        }
        self.pending = Pending::Search { id, spec, progress };
        Ok(event)
    }

    fn on_search_done(
        &mut self,
        result: LdapResult,
        ctrl: Vec<LdapControl>,
        spec: Box<SearchSpec>,
        progress: Progress,
    ) -> Result<Option<Event>, LdapError> {
        check("search", result)?;
        if spec.sync.is_some() {
            let done = ctrl.into_iter().find_map(|c| match c {
                LdapControl::SyncDone { cookie, refresh_deletes } => {
                    let trusted = refresh_deletes || cookie.is_some();
                    Some(SyncDone { cookie, refresh_deletes: trusted.then_some(refresh_deletes) })
                }
                _ => None,
            });
            return Ok(Some(Event::SyncDone(done.unwrap_or_default())));
        }
        if spec.dirsync.is_some() {
            return self.on_dirsync_round(ctrl, spec, progress);
        }
        if spec.page_size.is_none() {
            return Ok(Some(Event::SearchDone));
        }
        // Find the control by variant; the server may send others alongside.
        let cookie = ctrl.into_iter().find_map(|c| match c {
            LdapControl::SimplePagedResults { cookie, .. } => Some(cookie),
            _ => None,
        });
        let cookie = match cookie {
            Some(cookie) if !cookie.is_empty() => cookie,
            // RFC 2696 §3: an empty cookie ends the paged search. A server
            // that ignores the (non-critical) control sends none: one page.
            _ => return Ok(Some(Event::SearchDone)),
        };
        let sent = progress.cookie.clone();
        self.next_page(spec, progress, &sent, cookie)
    }

    /// Asks for the next page (or DirSync round) with `cookie`. A cookie
    /// names the position after this page; the one just `sent` again means
    /// the server is not moving, and the search would never end.
    fn next_page(&mut self, spec: Box<SearchSpec>, progress: Progress, sent: &[u8], cookie: Vec<u8>) -> Result<Option<Event>, LdapError> {
        if cookie == sent {
            return Err(LdapError::RepeatedCookie { page: progress.pages + 1 });
        }
        let pages = progress.pages + 1;
        if pages >= MAX_PAGES {
            return Err(LdapError::TooManyPages { limit: MAX_PAGES });
        }
        self.send_search(spec, Progress { results: 0, pages, cookie })?;
        Ok(Some(Event::PageDone))
    }

    /// The end of a DirSync round: another round with the new cookie while
    /// the server has more (MS-ADTS: MoreResults non-zero), else done.
    fn on_dirsync_round(&mut self, ctrl: Vec<LdapControl>, spec: Box<SearchSpec>, progress: Progress) -> Result<Option<Event>, LdapError> {
        let answer = ctrl.into_iter().find_map(|c| match c {
            // The response reuses the request's shape: flags = MoreResults.
            LdapControl::AdDirsync { flags, cookie, .. } => Some((flags != 0, cookie.unwrap_or_default())),
            _ => None,
        });
        let Some((more, cookie)) = answer else {
            return Err(LdapError::UnexpectedResponse {
                op: "search",
                what: "a DirSync search ended without the DirSync response control".to_owned(),
            });
        };
        if !more {
            return Ok(Some(Event::DirSyncDone { cookie }));
        }
        let sent =
            if progress.pages == 0 { spec.dirsync.as_ref().map(|d| d.cookie.clone()).unwrap_or_default() } else { progress.cookie.clone() };
        self.next_page(spec, progress, &sent, cookie)
    }

    fn send_search(&mut self, spec: Box<SearchSpec>, progress: Progress) -> Result<(), LdapError> {
        let request = LdapSearchRequest {
            base: spec.base.clone(),
            scope: match spec.scope {
                Scope::Base => LdapSearchScope::Base,
                Scope::One => LdapSearchScope::OneLevel,
                Scope::Sub => LdapSearchScope::Subtree,
            },
            aliases: LdapDerefAliases::Never,
            sizelimit: match (spec.page_size, &spec.sync, &spec.dirsync) {
                (None, None, None) => i32::try_from(spec.size_limit).unwrap_or(i32::MAX),
                _ => 0,
            },
            timelimit: 0,
            typesonly: false,
            filter: spec.filter.clone(),
            attrs: spec.attributes.clone(),
        };
        let controls = match (&spec.sync, spec.page_size) {
            _ if spec.dirsync.is_some() => {
                let dirsync = spec.dirsync.as_ref().map(|d| (d.flags, d.max_bytes, d.cookie.clone())).unwrap_or_default();
                let cookie = if progress.pages == 0 { dirsync.2 } else { progress.cookie.clone() };
                vec![LdapControl::AdDirsync {
                    // AD wants a 32-bit two's complement INTEGER: 0x80000000
                    // as 80 00 00 00, not 00 80 00 00 00 (go-ldap #570), and
                    // ldap3_proto writes the i64 minimally, so the sign is
                    // made explicit here.
                    flags: i64::from(dirsync.0 as i32),
                    max_bytes: i64::from(dirsync.1.min(i32::MAX as u32)),
                    cookie: Some(cookie),
                }]
            }
            (Some(sync), _) => vec![LdapControl::SyncRequest {
                criticality: true,
                mode: SyncRequestMode::RefreshOnly,
                cookie: sync.cookie.clone(),
                reload_hint: false,
            }],
            (None, Some(size)) => vec![LdapControl::SimplePagedResults { size: i64::from(size.get()), cookie: progress.cookie.clone() }],
            (None, None) => Vec::new(),
        };
        let id = self.send(LdapOp::SearchRequest(request), controls)?;
        self.pending = Pending::Search { id, spec, progress };
        Ok(())
    }

    fn send(&mut self, op: LdapOp, ctrl: Vec<LdapControl>) -> Result<i32, LdapError> {
        // RFC 4511 §4.1.1.1: ids are positive and unique within the session.
        self.last_id = if self.last_id == i32::MAX { 1 } else { self.last_id + 1 };
        self.codec.encode(LdapMsg { msgid: self.last_id, op, ctrl }, &mut self.outbound)?;
        Ok(self.last_id)
    }
}

/// The state and entryUUID of a Sync State control, if one came.
fn sync_state(ctrl: Vec<LdapControl>) -> Option<(SyncStateValue, [u8; 16])> {
    ctrl.into_iter().find_map(|c| match c {
        LdapControl::SyncState { state, entry_uuid, .. } => Some((state, *entry_uuid.as_bytes())),
        _ => None,
    })
}

/// The most results one page (or an unpaged search) may hold.
fn result_limit(spec: &SearchSpec) -> u64 {
    if spec.dirsync.is_some() {
        // A round is held whole until handed over: AD sends a round of at
        // most MaxPageSize (1,000) objects; Samba sends everything at once.
        return MAX_UNPAGED_RESULTS;
    }
    if spec.sync.is_some() {
        // Streamed and handed over in chunks by the transport, never held whole.
        return MAX_SYNC_RESULTS;
    }
    match spec.page_size {
        Some(size) => PAGE_RESULTS_FACTOR * u64::from(size.get()),
        None if spec.size_limit > 0 => u64::from(spec.size_limit),
        None => MAX_UNPAGED_RESULTS,
    }
}

/// Where [`result_limit`] comes from, for the error.
fn describe_limit(spec: &SearchSpec) -> String {
    match spec.page_size {
        Some(size) => format!(
            "in one page ({PAGE_RESULTS_FACTOR} × ldap_search_page_size {size}; a server that ignores paging sends everything at once: \
             set ldap_search_page_size=0 to search unpaged)"
        ),
        None if spec.size_limit > 0 => "in an unpaged search (ldap_search_size_limit)".to_owned(),
        None => format!("in an unpaged search without a size limit (at most {MAX_UNPAGED_RESULTS}: use paging)"),
    }
}

fn check(op: &'static str, result: LdapResult) -> Result<(), LdapError> {
    let LdapResult { code, matcheddn: _, message, referral: _ } = result;
    match code {
        LdapResultCode::Success => Ok(()),
        code => Err(LdapError::Result { op, code, message }),
    }
}

fn describe_result(result: &LdapResult) -> String {
    format!("{} ({}) {}", super::error::code_name(&result.code), result.code.clone() as i64, result.message).trim_end().to_owned()
}

fn unexpected(op: &'static str, got: &LdapOp) -> LdapError {
    LdapError::UnexpectedResponse { op, what: op_name(got).to_owned() }
}

fn op_name(op: &LdapOp) -> &'static str {
    match op {
        LdapOp::BindRequest(_) => "BindRequest",
        LdapOp::BindResponse(_) => "BindResponse",
        LdapOp::UnbindRequest => "UnbindRequest",
        LdapOp::SearchRequest(_) => "SearchRequest",
        LdapOp::SearchResultEntry(_) => "SearchResultEntry",
        LdapOp::SearchResultDone(_) => "SearchResultDone",
        LdapOp::SearchResultReference(_) => "SearchResultReference",
        LdapOp::ModifyRequest(_) => "ModifyRequest",
        LdapOp::ModifyResponse(_) => "ModifyResponse",
        LdapOp::AddRequest(_) => "AddRequest",
        LdapOp::AddResponse(_) => "AddResponse",
        LdapOp::DelRequest(_) => "DelRequest",
        LdapOp::DelResponse(_) => "DelResponse",
        LdapOp::ModifyDNRequest(_) => "ModifyDNRequest",
        LdapOp::ModifyDNResponse(_) => "ModifyDNResponse",
        LdapOp::CompareRequest(_) => "CompareRequest",
        LdapOp::CompareResult(_) => "CompareResult",
        LdapOp::AbandonRequest(_) => "AbandonRequest",
        LdapOp::ExtendedRequest(_) => "ExtendedRequest",
        LdapOp::ExtendedResponse(_) => "ExtendedResponse",
        LdapOp::IntermediateResponse(_) => "IntermediateResponse",
    }
}

#[cfg(test)]
mod tests;
