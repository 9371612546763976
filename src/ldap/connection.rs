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
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapExtendedRequest, LdapFilter, LdapOp, LdapResult, LdapResultCode,
    LdapSearchRequest, LdapSearchScope,
};

use crate::settings::Scope;

use super::entry::DirectoryEntry;
use super::error::LdapError;
use super::framing::Codec;

/// RFC 4511 §4.14.1: the StartTLS extended operation.
const OID_START_TLS: &str = "1.3.6.1.4.1.1466.20037";

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
    /// A page ended and the next page's request is already queued.
    PageDone,
    /// The search is complete.
    SearchDone,
}

#[derive(Debug)]
enum Pending {
    Nothing,
    Bind { id: i32 },
    StartTls { id: i32 },
    Search { id: i32, spec: SearchSpec },
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
        self.send_search(spec, Vec::new())
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
                LdapOp::ExtendedResponse(r) => check("StartTLS", r.res).map(|()| Some(Event::StartTlsAccepted)),
                other => Err(unexpected("StartTLS", &other)),
            },
            Pending::Search { id, spec } if id == msgid => self.on_search(op, ctrl, id, spec),
            Pending::Nothing => Err(LdapError::UnexpectedResponse { op: "idle", what: op_name(&op).to_owned() }),
            other => {
                self.pending = other;
                Err(LdapError::UnexpectedResponse { op: "read", what: format!("{} for unknown message id {msgid}", op_name(&op)) })
            }
        }
    }

    fn on_search(&mut self, op: LdapOp, ctrl: Vec<LdapControl>, id: i32, spec: SearchSpec) -> Result<Option<Event>, LdapError> {
        match op {
            LdapOp::SearchResultEntry(entry) => {
                self.pending = Pending::Search { id, spec };
                let attributes = entry.attributes.into_iter().map(|a| (a.atype, a.vals)).collect();
                Ok(Some(Event::Entry(DirectoryEntry::new(entry.dn, attributes))))
            }
            // Continuation references point at other servers; we read one server only.
            LdapOp::SearchResultReference(_) => {
                self.pending = Pending::Search { id, spec };
                Ok(None)
            }
            LdapOp::SearchResultDone(result) => {
                check("search", result)?;
                if spec.page_size.is_none() {
                    return Ok(Some(Event::SearchDone));
                }
                // Find the control by variant; the server may send others alongside.
                let cookie = ctrl.into_iter().find_map(|c| match c {
                    LdapControl::SimplePagedResults { cookie, .. } => Some(cookie),
                    _ => None,
                });
                match cookie {
                    Some(cookie) if !cookie.is_empty() => {
                        self.send_search(spec, cookie)?;
                        Ok(Some(Event::PageDone))
                    }
                    // RFC 2696 §3: an empty cookie ends the paged search. A server
                    // that ignores the (non-critical) control sends none: one page.
                    _ => Ok(Some(Event::SearchDone)),
                }
            }
            other => Err(unexpected("search", &other)),
        }
    }

    fn send_search(&mut self, spec: SearchSpec, cookie: Vec<u8>) -> Result<(), LdapError> {
        let request = LdapSearchRequest {
            base: spec.base.clone(),
            scope: match spec.scope {
                Scope::Base => LdapSearchScope::Base,
                Scope::One => LdapSearchScope::OneLevel,
                Scope::Sub => LdapSearchScope::Subtree,
            },
            aliases: LdapDerefAliases::Never,
            sizelimit: match spec.page_size {
                Some(_) => 0,
                None => i32::try_from(spec.size_limit).unwrap_or(i32::MAX),
            },
            timelimit: 0,
            typesonly: false,
            filter: spec.filter.clone(),
            attrs: spec.attributes.clone(),
        };
        let controls = match spec.page_size {
            Some(size) => vec![LdapControl::SimplePagedResults { size: i64::from(size.get()), cookie }],
            None => Vec::new(),
        };
        let id = self.send(LdapOp::SearchRequest(request), controls)?;
        self.pending = Pending::Search { id, spec };
        Ok(())
    }

    fn send(&mut self, op: LdapOp, ctrl: Vec<LdapControl>) -> Result<i32, LdapError> {
        // RFC 4511 §4.1.1.1: ids are positive and unique within the session.
        self.last_id = if self.last_id == i32::MAX { 1 } else { self.last_id + 1 };
        self.codec.encode(LdapMsg { msgid: self.last_id, op, ctrl }, &mut self.outbound)?;
        Ok(self.last_id)
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
