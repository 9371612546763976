//! Scripted fake LDAP servers on 127.0.0.1 for the end-to-end tests: what a
//! real slapd never does (malformed BER, referrals, continuation references,
//! result codes mid-search, stalls), in real BER over real TCP.
//!
//! [`FakeLdap::start`] listens on a free port and serves one accepted
//! connection per script, in order, each on the server's one thread; after
//! the last script the listener closes, so a further connection is refused.
//! A script gets an [`LdapPeer`]: read the client's requests, answer with the
//! encoders below ([`bind_response`], [`search_entry`], [`search_done`],
//! [`search_reference`]) or raw bytes. [`serve_pages`] is the usual session:
//! bind, then one page of a paged search per request, ending in a [`Fault`].
//!
//! The encoders write the definite-length BER of RFC 4511 §5.1 by hand (the
//! host does not link `ldap3_proto`), just what these tests send.

// The fake server's side of the socket; the component's side stays in src/ldap/transport.rs.
#![allow(clippy::disallowed_types)]

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context as _, anyhow};

/// RFC 2696's control OID (simple paged results).
const PAGED_RESULTS_OID: &str = "1.2.840.113556.1.4.319";

/// LDAP result codes the scripts send (RFC 4511 §4.1.9).
pub mod code {
    pub const SUCCESS: u8 = 0;
    pub const PROTOCOL_ERROR: u8 = 2;
    pub const TIME_LIMIT_EXCEEDED: u8 = 3;
    pub const SIZE_LIMIT_EXCEEDED: u8 = 4;
    pub const REFERRAL: u8 = 10;
    pub const BUSY: u8 = 51;
    pub const UNAVAILABLE: u8 = 52;
    pub const UNWILLING_TO_PERFORM: u8 = 53;
}

/// A TLV with a definite length (short form below 128 bytes).
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// An INTEGER (tag `0x02`) or ENUMERATED (`0x0a`): minimal two's complement.
fn integer(tag: u8, n: i64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    tlv(tag, &bytes[start..])
}

fn octets(bytes: &[u8]) -> Vec<u8> {
    tlv(0x04, bytes)
}

/// `LDAPMessage { messageID, protocolOp, controls [0] OPTIONAL }`.
pub fn message(id: i64, op: &[u8], controls: Option<&[u8]>) -> Vec<u8> {
    let mut content = integer(0x02, id);
    content.extend_from_slice(op);
    if let Some(controls) = controls {
        content.extend(tlv(0xa0, controls));
    }
    tlv(0x30, &content)
}

/// `LDAPResult` content: code, empty matchedDN, diagnostic message, and the
/// referral URIs (`[3]`) when given.
fn result(code: u8, diagnostic: &str, referral: &[&str]) -> Vec<u8> {
    let mut content = integer(0x0a, i64::from(code));
    content.extend(octets(b""));
    content.extend(octets(diagnostic.as_bytes()));
    if !referral.is_empty() {
        let uris: Vec<u8> = referral.iter().flat_map(|u| octets(u.as_bytes())).collect();
        content.extend(tlv(0xa3, &uris));
    }
    content
}

/// `bindResponse` (`[APPLICATION 1]`).
pub fn bind_response(id: i64, code: u8) -> Vec<u8> {
    message(id, &tlv(0x61, &result(code, "", &[])), None)
}

/// One directory entry as the fake server sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeEntry {
    pub dn: String,
    pub attributes: Vec<(String, Vec<String>)>,
}

impl FakeEntry {
    /// A person under `ou=people,dc=example,dc=org` as the demo variables
    /// map it: `entryUUID` (`uuid-<uid>`: stable, unique), `uid`, `mail`, `cn`.
    pub fn person(uid: &str) -> FakeEntry {
        FakeEntry {
            dn: format!("uid={uid},ou=people,dc=example,dc=org"),
            attributes: vec![
                ("entryUUID".to_owned(), vec![format!("uuid-{uid}")]),
                ("uid".to_owned(), vec![uid.to_owned()]),
                ("mail".to_owned(), vec![format!("{uid}@example.org")]),
                ("cn".to_owned(), vec![format!("User {uid}")]),
            ],
        }
    }
}

/// `searchResEntry` (`[APPLICATION 4]`).
pub fn search_entry(id: i64, entry: &FakeEntry) -> Vec<u8> {
    let mut attributes = Vec::new();
    for (name, values) in &entry.attributes {
        let vals: Vec<u8> = values.iter().flat_map(|v| octets(v.as_bytes())).collect();
        let mut attribute = octets(name.as_bytes());
        attribute.extend(tlv(0x31, &vals));
        attributes.extend(tlv(0x30, &attribute));
    }
    let mut content = octets(entry.dn.as_bytes());
    content.extend(tlv(0x30, &attributes));
    message(id, &tlv(0x64, &content), None)
}

/// `searchResRef` (`[APPLICATION 19]`): a continuation reference.
pub fn search_reference(id: i64, uris: &[&str]) -> Vec<u8> {
    let content: Vec<u8> = uris.iter().flat_map(|u| octets(u.as_bytes())).collect();
    message(id, &tlv(0x73, &content), None)
}

/// `searchResDone` (`[APPLICATION 5]`) with `code` and `diagnostic`; with
/// `cookie`, the paged-results response control carrying it (empty = the
/// last page).
pub fn search_done(id: i64, code: u8, diagnostic: &str, cookie: Option<&[u8]>) -> Vec<u8> {
    search_done_with(id, &result(code, diagnostic, &[]), cookie)
}

/// `searchResDone` with resultCode referral (10) and the referral URIs.
pub fn search_done_referral(id: i64, uris: &[&str]) -> Vec<u8> {
    search_done_with(id, &result(code::REFERRAL, "", uris), None)
}

fn search_done_with(id: i64, result: &[u8], cookie: Option<&[u8]>) -> Vec<u8> {
    let controls = cookie.map(|cookie| {
        let mut value = integer(0x02, 0);
        value.extend(octets(cookie));
        let mut control = octets(PAGED_RESULTS_OID.as_bytes());
        control.extend(octets(&tlv(0x30, &value)));
        tlv(0x30, &control)
    });
    message(id, &tlv(0x65, result), controls.as_deref())
}

/// One request the client sent.
#[derive(Clone, Debug)]
pub struct Request {
    pub id: i64,
    /// The protocolOp's tag: `0x60` bind, `0x63` search, `0x42` unbind, `0x77` extended.
    pub op: u8,
    pub bytes: Vec<u8>,
}

/// The tag of a bind request.
pub const BIND_REQUEST: u8 = 0x60;
/// The tag of a search request.
pub const SEARCH_REQUEST: u8 = 0x63;

/// The server's side of one connection.
pub struct LdapPeer {
    stream: TcpStream,
}

impl LdapPeer {
    /// The next whole request, or `None` once the client closed or sent
    /// something that is not an `LDAPMessage`.
    pub fn read(&mut self) -> Option<Request> {
        let bytes = read_message(&mut self.stream).ok()?;
        parse_request(&bytes)
    }

    /// Writes `bytes`; `false` once the client is gone.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).and_then(|()| self.stream.flush()).is_ok()
    }

    /// Reads the bind and answers success; `None` when none came.
    pub fn accept_bind(&mut self) -> Option<i64> {
        let request = self.read().filter(|r| r.op == BIND_REQUEST)?;
        self.send(&bind_response(request.id, code::SUCCESS)).then_some(request.id)
    }

    /// The id of the next search request; `None` when the client closed or
    /// sent something else (its unbind, at the end).
    pub fn next_search(&mut self) -> Option<i64> {
        self.read().filter(|r| r.op == SEARCH_REQUEST).map(|r| r.id)
    }

    /// Waits until the client closes the connection, reading and dropping
    /// whatever it sends.
    pub fn drain(&mut self) {
        let mut sink = [0u8; 4096];
        while matches!(self.stream.read(&mut sink), Ok(n) if n > 0) {}
    }

    /// The socket, for scripts that need more.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

/// What ends the search of [`serve_pages`], after the entries of page `at`
/// (0-based; pages after it are never sent).
#[derive(Clone, Debug)]
pub enum Fault {
    /// No fault: every page, the last one ending the search with success.
    None,
    /// `searchResDone` with this code and diagnostic instead of the page's end.
    Result { at: usize, code: u8, diagnostic: String },
    /// `searchResDone` with resultCode referral and a URI.
    Referral { at: usize },
    /// A continuation reference among the entries of page `at`; the search
    /// then goes on and ends with success.
    Reference { at: usize },
    /// These bytes instead of the page's end (malformed BER, a huge length).
    Raw { at: usize, bytes: Vec<u8> },
    /// Nothing more: the connection stays open and silent until the client closes it.
    Stall { at: usize },
    /// The page's end one byte at a time, `every` apart.
    Trickle { at: usize, every: Duration },
    /// The connection closes instead of the page's end.
    Close { at: usize },
    /// The page ends with the paged-results cookie of the page before, as
    /// a server that lost its place does.
    RepeatCookie { at: usize },
}

impl Fault {
    fn page(&self) -> Option<usize> {
        match self {
            Fault::None => None,
            Fault::Result { at, .. }
            | Fault::Referral { at }
            | Fault::Reference { at }
            | Fault::Raw { at, .. }
            | Fault::Stall { at }
            | Fault::Trickle { at, .. }
            | Fault::Close { at }
            | Fault::RepeatCookie { at } => Some(*at),
        }
    }
}

/// The usual session: accept the bind, then answer one search request per
/// page with its entries and a paged-results cookie (`page-<n>`; none after
/// the last page), with `fault` at its page. Waits for the client to close.
pub fn serve_pages(peer: &mut LdapPeer, pages: &[Vec<FakeEntry>], fault: &Fault) {
    if peer.accept_bind().is_none() {
        return;
    }
    for (i, page) in pages.iter().enumerate() {
        let Some(id) = peer.next_search() else { return };
        for entry in page {
            if !peer.send(&search_entry(id, entry)) {
                return;
            }
        }
        let last = i + 1 == pages.len();
        let cookie = format!("page-{}", i + 1);
        let normal_end = search_done(id, code::SUCCESS, "", Some(if last { b"" } else { cookie.as_bytes() }));
        if fault.page() != Some(i) {
            if !peer.send(&normal_end) {
                return;
            }
            continue;
        }
        match fault {
            Fault::None => {}
            Fault::Result { code, diagnostic, .. } => {
                peer.send(&search_done(id, *code, diagnostic, None));
            }
            Fault::Referral { .. } => {
                peer.send(&search_done_referral(id, &["ldap://other.example.org/ou=people,dc=example,dc=org"]));
            }
            Fault::Reference { .. } => {
                let reference = search_reference(id, &["ldap://other.example.org/ou=branch,dc=example,dc=org??sub"]);
                if !peer.send(&reference) || !peer.send(&normal_end) {
                    return;
                }
                continue;
            }
            Fault::Raw { bytes, .. } => {
                peer.send(bytes);
            }
            Fault::Stall { .. } => {}
            Fault::Trickle { every, .. } => {
                for b in &normal_end {
                    thread::sleep(*every);
                    if !peer.send(std::slice::from_ref(b)) {
                        return;
                    }
                }
            }
            Fault::Close { .. } => return,
            Fault::RepeatCookie { .. } => {
                let previous = format!("page-{i}");
                peer.send(&search_done(id, code::SUCCESS, "", Some(previous.as_bytes())));
            }
        }
        break;
    }
    peer.drain();
}

/// A script for one connection.
pub type Script = Box<dyn FnOnce(LdapPeer) + Send>;

/// A fake LDAP server on 127.0.0.1; see the module docs.
pub struct FakeLdap {
    port: u16,
    thread: JoinHandle<anyhow::Result<()>>,
}

impl FakeLdap {
    /// Listens on a free port; serves one connection per script, in order.
    pub fn start(scripts: Vec<Script>) -> anyhow::Result<FakeLdap> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
        let port = listener.local_addr().context("reading the fake server's port")?.port();
        let thread = thread::spawn(move || {
            for script in scripts {
                let (stream, _) = listener.accept().context("accepting the component's connection")?;
                stream.set_nodelay(true).context("nodelay")?;
                // Never hang a test: a client that says nothing for a minute is gone.
                stream.set_read_timeout(Some(Duration::from_secs(60))).context("read timeout")?;
                script(LdapPeer { stream });
            }
            Ok(())
        });
        Ok(FakeLdap { port, thread })
    }

    /// The same session for each of `count` connections: [`serve_pages`]
    /// with `pages` and, per connection, its fault.
    pub fn pages(pages: Vec<Vec<FakeEntry>>, faults: Vec<Fault>) -> anyhow::Result<FakeLdap> {
        let scripts = faults
            .into_iter()
            .map(|fault| {
                let pages = pages.clone();
                Box::new(move |mut peer: LdapPeer| serve_pages(&mut peer, &pages, &fault)) as Script
            })
            .collect();
        FakeLdap::start(scripts)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for every script to finish.
    pub fn join(self) -> anyhow::Result<()> {
        self.thread.join().map_err(|_| anyhow!("a fake LDAP script panicked"))?
    }
}

/// Reads one whole `LDAPMessage` (short or long length form).
fn read_message(stream: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if buf.len() >= 2 {
            let (header, content) = match buf[1] {
                n if n < 0x80 => (2, usize::from(n)),
                n => {
                    let count = usize::from(n & 0x7f);
                    match buf.get(2..2 + count) {
                        Some(b) => (2 + count, b.iter().fold(0usize, |acc, x| (acc << 8) | usize::from(*x))),
                        None => (usize::MAX / 2, 0),
                    }
                }
            };
            if buf.len() >= header.saturating_add(content) {
                return Ok(buf);
            }
            if header < usize::MAX / 2 {
                let mut rest = vec![0u8; header + content - buf.len()];
                stream.read_exact(&mut rest).context("reading the rest of a request")?;
                buf.extend(rest);
                continue;
            }
        }
        let n = stream.read(&mut byte).context("reading a request")?;
        anyhow::ensure!(n > 0, "the client closed the connection");
        buf.push(byte[0]);
    }
}

/// The message id and operation tag of a request.
fn parse_request(bytes: &[u8]) -> Option<Request> {
    if bytes.first() != Some(&0x30) {
        return None;
    }
    let at = if bytes[1] < 0x80 { 2 } else { 2 + usize::from(bytes[1] & 0x7f) };
    if bytes.get(at) != Some(&0x02) {
        return None;
    }
    let len = usize::from(*bytes.get(at + 1)?);
    let id = bytes.get(at + 2..at + 2 + len)?.iter().fold(0i64, |acc, b| (acc << 8) | i64::from(*b));
    let op = *bytes.get(at + 2 + len)?;
    Some(Request { id, op, bytes: bytes.to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_rfc_4511_shapes() {
        assert_eq!(bind_response(1, 0), [0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]);
        assert_eq!(integer(0x02, 128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(0x02, -1), [0x02, 0x01, 0xff]);
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        let request = parse_request(&[0x30, 0x05, 0x02, 0x01, 0x07, 0x42, 0x00]).expect("parses");
        assert_eq!((request.id, request.op), (7, 0x42));
    }
}
