//! The only owner of a socket: TCP (wasi:sockets on wasip2), optionally
//! wrapped in rustls, and a short loop that moves bytes between it and the
//! sans-IO [`Connection`].

// The one place allowed to hold a socket (clippy.toml disallows it elsewhere).
#![allow(clippy::disallowed_types)]

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rustls::ClientConnection;

use crate::settings::{Encryption, LdapConnection};

use super::connection::{Connection, Event, SearchSpec, SyncDone, SyncItem};
use super::entry::DirectoryEntry;
use super::error::{LdapError, code_name};
use super::tls;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;
/// The deadline of one operation (a bind, StartTLS, the TLS handshake, one
/// page of a search), in multiples of `ldap_timeout`, the limit on each wait
/// for bytes. An honest operation waits once for the server to start
/// answering and then streams; three more waits' worth covers a slow page on
/// a slow link. A server that trickles one byte per just-under-timeout
/// interval is cut off after four intervals instead of never.
pub const OPERATION_TIMEOUTS: u32 = 4;
/// How long a session may run in all (connect, bind, every page) unless the
/// caller sets its own deadline: 30 minutes covers 10 million users at the
/// benchmarked ~8,000 users/s (about 21 minutes). Past it a run is stopped,
/// however steadily the server answers.
pub const DEFAULT_RUN_DEADLINE: Duration = Duration::from_secs(30 * 60);

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

/// rustls driven by hand rather than through `rustls::StreamOwned`, whose
/// `read` keeps reading until a whole TLS record (up to 16 KiB) has arrived:
/// a server trickling one byte at a time would hold it past every deadline.
/// Here one call reads the socket at most once.
struct TlsStream {
    tls: ClientConnection,
    tcp: TcpStream,
}

/// What one read from the socket gave.
enum Received {
    /// Bytes for the connection.
    Bytes(usize),
    /// Progress, but no bytes yet (part of a TLS record): read again.
    Partial,
    /// The server closed the connection.
    Closed,
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.tcp,
        }
    }

    /// Reads the socket at most once.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<Received> {
        let s = match self {
            Stream::Plain(s) => {
                return s.read(buf).map(|n| if n == 0 { Received::Closed } else { Received::Bytes(n) });
            }
            Stream::Tls(s) => s,
        };
        if let Some(received) = plaintext(&mut s.tls, buf)? {
            return Ok(received);
        }
        s.tls.read_tls(&mut s.tcp)?;
        if let Err(e) = s.tls.process_new_packets() {
            // Send the alert that describes the error, if we can; the error stays the one to report.
            let _ = s.tls.write_tls(&mut s.tcp);
            return Err(std::io::Error::new(ErrorKind::InvalidData, e));
        }
        // Answers the server's key updates, if any.
        while s.tls.wants_write() {
            s.tls.write_tls(&mut s.tcp)?;
        }
        Ok(plaintext(&mut s.tls, buf)?.unwrap_or(Received::Partial))
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let s = match self {
            Stream::Plain(s) => return s.write_all(bytes).and_then(|()| s.flush()),
            Stream::Tls(s) => s,
        };
        let mut rest = bytes;
        loop {
            // rustls buffers a bounded amount of plaintext: write, drain, repeat.
            let n = s.tls.writer().write(rest)?;
            rest = rest.get(n..).unwrap_or_default();
            if n == 0 && !s.tls.wants_write() && !rest.is_empty() {
                return Err(ErrorKind::WriteZero.into());
            }
            while s.tls.wants_write() {
                s.tls.write_tls(&mut s.tcp)?;
            }
            if rest.is_empty() {
                return s.tcp.flush();
            }
        }
    }
}

/// Decrypted bytes already held by rustls, `None` when it needs more.
fn plaintext(tls: &mut ClientConnection, buf: &mut [u8]) -> std::io::Result<Option<Received>> {
    match tls.reader().read(buf) {
        // Ok(0): close_notify. UnexpectedEof: TCP closed without it.
        Ok(0) => Ok(Some(Received::Closed)),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(Some(Received::Closed)),
        Ok(n) => Ok(Some(Received::Bytes(n))),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// The per-read timeout and the two deadlines above it.
struct Deadlines {
    /// `ldap_timeout`: the longest wait for the next bytes.
    timeout: Duration,
    opened: Instant,
    run: Instant,
    /// Set by [`Deadlines::begin`] at the start of each operation.
    operation: Instant,
    /// The read timeout currently set on the socket.
    applied: Duration,
}

impl Deadlines {
    fn new(timeout: Duration, opened: Instant, run: Instant) -> Self {
        Self { timeout, opened, run, operation: opened + Self::budget(timeout), applied: timeout }
    }

    fn budget(timeout: Duration) -> Duration {
        timeout.saturating_mul(OPERATION_TIMEOUTS)
    }

    /// Starts the clock of one operation.
    fn begin(&mut self) {
        self.operation = Instant::now() + Self::budget(self.timeout);
    }

    /// Sets the socket's read timeout to what is left of the next wait, so
    /// that no read outlives a deadline; the deadline's error once none is left.
    fn arm(&mut self, op: &'static str, tcp: &TcpStream) -> Result<(), LdapError> {
        let now = Instant::now();
        let left = self.operation.min(self.run).saturating_duration_since(now);
        if left.is_zero() {
            return Err(self.passed(op, now).unwrap_or(LdapError::Timeout { op, timeout_ms: self.timeout_ms() }));
        }
        let wait = self.timeout.min(left);
        if wait != self.applied {
            tcp.set_read_timeout(Some(wait)).map_err(|e| io_error(op, &e))?;
            self.applied = wait;
        }
        Ok(())
    }

    /// The error for a failed read or write: a passed deadline wins over the
    /// read timeout that cut the wait short.
    fn classify(&self, op: &'static str, e: &std::io::Error) -> LdapError {
        match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                self.passed(op, Instant::now()).unwrap_or(LdapError::Timeout { op, timeout_ms: self.timeout_ms() })
            }
            _ => io_error(op, e),
        }
    }

    fn passed(&self, op: &'static str, now: Instant) -> Option<LdapError> {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if now >= self.run {
            return Some(LdapError::RunDeadline { op, limit_ms: millis(self.run.saturating_duration_since(self.opened)) });
        }
        (now >= self.operation).then(|| LdapError::OperationDeadline {
            op,
            limit_ms: millis(Self::budget(self.timeout)),
            factor: OPERATION_TIMEOUTS,
        })
    }

    fn timeout_ms(&self) -> u32 {
        u32::try_from(self.timeout.as_millis()).unwrap_or(u32::MAX)
    }
}

/// An open, bound LDAP session.
pub struct Session {
    stream: Stream,
    conn: Connection,
    deadlines: Deadlines,
    /// The read buffer, allocated once per session (not once per message).
    buf: Vec<u8>,
    timing: LdapTiming,
}

/// How a search that succeeded ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchEnd {
    /// Continuation references received: results on other servers, not read.
    pub references: u64,
    /// A DirSync search: the cookie to resume from next time.
    pub dirsync_cookie: Option<Vec<u8>>,
}

/// What an RFC 4533 refresh reported, a chunk at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncChunk {
    /// Added or modified entries, whole.
    pub changed: Vec<DirectoryEntry>,
    /// The sync UUID of each of `changed`, in order (`None`: none was sent).
    pub changed_uuids: Vec<Option<[u8; 16]>>,
    /// entryUUIDs of deleted entries.
    pub deleted: Vec<[u8; 16]>,
    /// entryUUIDs of unchanged entries still there (present phase).
    pub present: Vec<[u8; 16]>,
}

impl SyncChunk {
    /// Items in the chunk.
    pub fn items(&self) -> usize {
        self.changed.len() + self.deleted.len() + self.present.len()
    }
}

/// How an RFC 4533 refresh that succeeded ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncEnd {
    pub done: SyncDone,
    /// The server used a present phase (present ids, or a refreshPresent).
    pub present_phase: bool,
    /// Continuation references received: results on other servers, not read.
    pub references: u64,
}

/// Where a session's time went, for the benchmark's phase breakdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LdapTiming {
    /// Waiting for the server: inside socket reads and writes (TLS included).
    pub wait: Duration,
    /// Framing and decoding messages into entries (BER, ldap3_proto).
    pub decode: Duration,
    /// Bytes received.
    pub bytes: u64,
}

/// What the directory said of a user's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCheck {
    Accepted,
    /// Refused, with the result code's name (never the password).
    Refused(String),
}

impl Session {
    /// Connects, sets up TLS as `ldap_encryption` says, and binds (service
    /// account, or anonymous when `bind` is `None`). A failed bind is an error:
    /// we never fall back to anonymous as upstream does. The session must end
    /// within [`DEFAULT_RUN_DEADLINE`]; [`Session::open_until`] sets another.
    pub fn open(settings: &LdapConnection) -> Result<Session, LdapError> {
        Self::open_until(settings, Instant::now() + DEFAULT_RUN_DEADLINE)
    }

    /// [`Session::open`] with the run's own deadline: every read after it
    /// fails with [`LdapError::RunDeadline`]. It bounds StartTLS, the TLS
    /// handshake and the bind as well as the searches.
    pub fn open_until(settings: &LdapConnection, run_deadline: Instant) -> Result<Session, LdapError> {
        let opened = Instant::now();
        let ip = settings.ip.ok_or(LdapError::NoAddress)?;
        let addr = SocketAddr::new(ip, settings.port);
        let tcp = connect(addr, settings.connect_timeout_ms)?;
        let timeout = Duration::from_millis(u64::from(settings.timeout_ms));
        tcp.set_read_timeout(Some(timeout)).and_then(|()| tcp.set_write_timeout(Some(timeout))).map_err(|e| io_error("connect", &e))?;
        let deadlines = Deadlines::new(timeout, opened, run_deadline);
        let mut session = Session {
            stream: Stream::Plain(tcp),
            conn: Connection::default(),
            deadlines,
            buf: vec![0u8; READ_CHUNK],
            timing: LdapTiming::default(),
        };
        match settings.encryption {
            Encryption::Plain => warn_if_plaintext_password(settings),
            Encryption::Tls => session = session.upgrade(settings, ip, addr)?,
            Encryption::StartTls => {
                session.conn.start_tls()?;
                session.expect("StartTLS", Event::StartTlsAccepted)?;
                session = session.upgrade(settings, ip, addr)?;
            }
        }
        if let Some(bind) = &settings.bind {
            session.conn.bind(&bind.dn, &bind.password)?;
            session.expect("bind", Event::Bound)?;
        }
        Ok(session)
    }

    /// Runs a search and hands its entries to `on_page` one page at a time.
    /// An error from `on_page` stops the search and is returned. Each page
    /// is one operation with its own deadline; the time `on_page` takes
    /// counts against the run's deadline only.
    pub fn search<E: From<LdapError>>(
        &mut self,
        spec: SearchSpec,
        mut on_page: impl FnMut(Vec<DirectoryEntry>) -> Result<(), E>,
    ) -> Result<SearchEnd, E> {
        let page_hint = spec.page_size.map_or(1, |n| usize::try_from(n.get()).unwrap_or(1000).min(1000));
        self.conn.search(spec)?;
        self.deadlines.begin();
        let mut page = Vec::with_capacity(page_hint);
        let mut end = SearchEnd::default();
        loop {
            match self.next_event("search")? {
                Event::Entry(entry) => page.push(entry),
                Event::Reference => end.references += 1,
                Event::PageDone => {
                    // The next page's request goes out before this page is
                    // handled, so the server reads it while we plan and write.
                    self.flush("search")?;
                    on_page(std::mem::take(&mut page))?;
                    self.deadlines.begin();
                }
                Event::SearchDone => {
                    on_page(page)?;
                    return Ok(end);
                }
                Event::DirSyncDone { cookie } => {
                    on_page(page)?;
                    end.dirsync_cookie = Some(cookie);
                    return Ok(end);
                }
                other => return Err(LdapError::UnexpectedResponse { op: "search", what: format!("{other:?}") }.into()),
            }
        }
    }

    /// Runs an RFC 4533 refreshOnly search (`spec.sync` set) and hands what
    /// it reports to `on_chunk` about `chunk` items at a time: changed
    /// entries, deleted and present entryUUIDs. Each chunk is one
    /// operation's worth of deadline, as a page is.
    pub fn sync_search<E: From<LdapError>>(
        &mut self,
        spec: SearchSpec,
        chunk: usize,
        mut on_chunk: impl FnMut(SyncChunk) -> Result<(), E>,
    ) -> Result<SyncEnd, E> {
        let chunk = chunk.max(1);
        self.conn.search(spec)?;
        self.deadlines.begin();
        let mut current = SyncChunk::default();
        let mut end = SyncEnd::default();
        loop {
            let item = match self.next_event("sync search")? {
                Event::Sync(item) => item,
                Event::Reference => {
                    end.references += 1;
                    continue;
                }
                Event::SyncDone(done) => {
                    on_chunk(current)?;
                    end.done = done;
                    return Ok(end);
                }
                other => return Err(LdapError::UnexpectedResponse { op: "sync search", what: format!("{other:?}") }.into()),
            };
            match item {
                SyncItem::Changed(entry, uuid) => {
                    current.changed.push(entry);
                    current.changed_uuids.push(uuid);
                }
                SyncItem::Deleted(uuid) => current.deleted.push(uuid),
                SyncItem::Present(uuid) => {
                    end.present_phase = true;
                    current.present.push(uuid);
                }
                SyncItem::IdSet { uuids, deletes: true } => current.deleted.extend(uuids),
                SyncItem::IdSet { uuids, deletes: false } => {
                    end.present_phase = true;
                    current.present.extend(uuids);
                }
                SyncItem::Info { present_phase } => end.present_phase |= present_phase,
            }
            if current.items() >= chunk {
                on_chunk(std::mem::take(&mut current))?;
                self.deadlines.begin();
            }
        }
    }

    /// The root DSE's `supportedControl` OIDs (RFC 4512 §5.1): what the
    /// server says it can do.
    pub fn supported_controls(&mut self) -> Result<Vec<String>, LdapError> {
        self.root_dse("supportedControl")
    }

    /// The values of one attribute of the root DSE (RFC 4512 §5.1), e.g.
    /// `supportedControl` or `namingContexts`.
    pub fn root_dse(&mut self, attribute: &str) -> Result<Vec<String>, LdapError> {
        let spec = SearchSpec {
            base: String::new(),
            scope: crate::settings::Scope::Base,
            filter: super::filter::present("objectClass"),
            attributes: vec![attribute.to_owned()],
            page_size: None,
            size_limit: 1,
            sync: None,
            dirsync: None,
        };
        let mut values = Vec::new();
        self.search(spec, |page| {
            values.extend(page.iter().flat_map(|e| e.texts(attribute)));
            Ok::<(), LdapError>(())
        })?;
        Ok(values)
    }

    /// Binds as `dn` (a user proving their password at login). A result
    /// code (`invalidCredentials`, a locked account, ...) is a refusal, not
    /// an error: the session is fine and the password is not.
    pub fn check_password(&mut self, dn: &str, password: &str) -> Result<PasswordCheck, LdapError> {
        self.conn.bind(dn, password)?;
        match self.expect("bind", Event::Bound) {
            Ok(()) => Ok(PasswordCheck::Accepted),
            Err(LdapError::Result { code, .. }) => Ok(PasswordCheck::Refused(format!("bind as the user failed: {}", code_name(&code)))),
            Err(other) => Err(other),
        }
    }

    /// Unbinds and closes; errors are irrelevant once the work is done.
    pub fn close(mut self) {
        if self.conn.unbind().is_ok() {
            let bytes = self.conn.take_outgoing();
            let _ = self.stream.write_all(&bytes);
        }
        if let Stream::Tls(s) = &mut self.stream {
            s.tls.send_close_notify();
            let _ = s.tls.write_tls(&mut s.tcp);
            let _ = s.tcp.flush();
        }
    }

    /// Runs one request/response operation under its own deadline.
    fn expect(&mut self, op: &'static str, wanted: Event) -> Result<(), LdapError> {
        self.deadlines.begin();
        match self.next_event(op)? {
            event if event == wanted => Ok(()),
            other => Err(LdapError::UnexpectedResponse { op, what: format!("{other:?}") }),
        }
    }

    /// Where this session's time went so far.
    pub fn timing(&self) -> LdapTiming {
        self.timing
    }

    /// Writes out whatever the connection has queued.
    fn flush(&mut self, op: &'static str) -> Result<(), LdapError> {
        let out = self.conn.take_outgoing();
        if !out.is_empty() {
            let started = Instant::now();
            self.stream.write_all(&out).map_err(|e| self.deadlines.classify(op, &e))?;
            self.timing.wait += started.elapsed();
        }
        Ok(())
    }

    fn next_event(&mut self, op: &'static str) -> Result<Event, LdapError> {
        loop {
            self.flush(op)?;
            let started = Instant::now();
            let event = self.conn.poll()?;
            self.timing.decode += started.elapsed();
            if let Some(event) = event {
                return Ok(event);
            }
            self.deadlines.arm(op, self.stream.tcp())?;
            let started = Instant::now();
            let received = self.stream.read(&mut self.buf).map_err(|e| self.deadlines.classify(op, &e))?;
            self.timing.wait += started.elapsed();
            match received {
                Received::Bytes(n) => {
                    self.timing.bytes += n as u64;
                    self.conn.receive(self.buf.get(..n).unwrap_or_default());
                }
                Received::Partial => {}
                Received::Closed => return Err(LdapError::Closed { op }),
            }
        }
    }

    /// Wraps the TCP stream in TLS and completes the handshake here, so that
    /// certificate problems surface as [`LdapError::Tls`]. The handshake is
    /// one operation, under the same deadlines as any other.
    fn upgrade(self, settings: &LdapConnection, ip: IpAddr, addr: SocketAddr) -> Result<Session, LdapError> {
        const OP: &str = "TLS handshake";
        let Session { stream, mut conn, mut deadlines, buf, timing } = self;
        let Stream::Plain(mut tcp) = stream else {
            return Err(LdapError::TlsConfig("TLS is already active".to_owned()));
        };
        let config = tls::client_config(settings)?;
        let name = tls::server_name(settings, ip)?;
        let tls_error = |reason: String| LdapError::Tls { addr: addr.to_string(), reason };
        let mut tls = ClientConnection::new(config, name).map_err(|e| tls_error(e.to_string()))?;
        deadlines.begin();
        loop {
            while tls.wants_write() {
                tls.write_tls(&mut tcp).map_err(|e| deadlines.classify(OP, &e))?;
            }
            if !tls.is_handshaking() {
                break;
            }
            deadlines.arm(OP, &tcp)?;
            let n = tls.read_tls(&mut tcp).map_err(|e| deadlines.classify(OP, &e))?;
            if n == 0 {
                return Err(tls_error("the server closed the connection during the handshake".to_owned()));
            }
            if let Err(e) = tls.process_new_packets() {
                // Send the alert that describes the error, if we can; the error stays the one to report.
                let _ = tls.write_tls(&mut tcp);
                return Err(tls_error(e.to_string()));
            }
        }
        tcp.flush().map_err(|e| deadlines.classify(OP, &e))?;
        conn.tls_established()?;
        Ok(Session { stream: Stream::Tls(Box::new(TlsStream { tls, tcp })), conn, deadlines, buf, timing })
    }
}

/// `ldap_encryption=plain` with a bind password: said on every connection,
/// as `ldap_reject_unauthorized=false` is (src/ldap/tls.rs).
fn warn_if_plaintext_password(settings: &LdapConnection) {
    if let Some(warning) = plaintext_warning(settings) {
        crate::log::warn(warning, &[("setting", serde_json::json!("ldap_encryption=plain"))]);
    }
}

/// The warning for a bind password sent in the clear, if one is; a fixed
/// text, so it can never carry the password or the DN.
fn plaintext_warning(settings: &LdapConnection) -> Option<&'static str> {
    let sends_password = settings.bind.as_ref().is_some_and(|bind| !bind.password.is_empty());
    (settings.encryption == Encryption::Plain && sends_password).then_some("the LDAP bind password is sent to the server unencrypted")
}

fn connect(addr: SocketAddr, timeout_ms: u32) -> Result<TcpStream, LdapError> {
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    let failed = |e: std::io::Error| LdapError::Connect {
        addr: addr.to_string(),
        reason: match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => format!("no answer within {timeout_ms} ms (ldap_connect_timeout)"),
            // WASI's errno numbers are not Linux's: say it in words.
            ErrorKind::ConnectionRefused => "connection refused (nothing listens on that port, or a firewall rejects it)".to_owned(),
            ErrorKind::PermissionDenied => {
                "not allowed by the host (spin.toml's allowed_outbound_hosts must list tcp://<ldap_ip>:<ldap_port>)".to_owned()
            }
            _ => e.to_string(),
        },
    };
    let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(failed)?;
    // On wasip2 a refused non-blocking connect can come back as success;
    // the socket's pending error (or a missing peer) tells the truth.
    if let Ok(Some(e)) = tcp.take_error() {
        return Err(failed(e));
    }
    tcp.peer_addr().map_err(failed)?;
    Ok(tcp)
}

fn io_error(op: &'static str, e: &std::io::Error) -> LdapError {
    LdapError::Io { op, reason: e.to_string() }
}

#[cfg(test)]
mod tests;
