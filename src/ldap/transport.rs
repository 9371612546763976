//! The only owner of a socket: TCP (wasi:sockets on wasip2), optionally
//! wrapped in rustls, and a short loop that moves bytes between it and the
//! sans-IO [`Connection`].

// The one place allowed to hold a socket (clippy.toml disallows it elsewhere).
#![allow(clippy::disallowed_types)]

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use rustls::{ClientConnection, StreamOwned};

use crate::settings::{Encryption, LdapConnection};

use super::connection::{Connection, Event, SearchSpec};
use super::entry::DirectoryEntry;
use super::error::{LdapError, code_name};
use super::tls;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(bytes).and_then(|()| s.flush()),
            Stream::Tls(s) => s.write_all(bytes).and_then(|()| s.flush()),
        }
    }
}

/// An open, bound LDAP session.
pub struct Session {
    stream: Stream,
    conn: Connection,
    timeout_ms: u32,
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
    /// we never fall back to anonymous as upstream does.
    pub fn open(settings: &LdapConnection) -> Result<Session, LdapError> {
        let ip = settings.ip.ok_or(LdapError::NoAddress)?;
        let addr = SocketAddr::new(ip, settings.port);
        let tcp = connect(addr, settings.connect_timeout_ms)?;
        let timeout = Some(Duration::from_millis(u64::from(settings.timeout_ms)));
        tcp.set_read_timeout(timeout).and_then(|()| tcp.set_write_timeout(timeout)).map_err(|e| io_error("connect", &e))?;
        let mut session = Session { stream: Stream::Plain(tcp), conn: Connection::default(), timeout_ms: settings.timeout_ms };
        match settings.encryption {
            Encryption::Plain => {}
            Encryption::Tls => session.stream = upgrade(session.stream, settings, ip, addr)?,
            Encryption::StartTls => {
                session.conn.start_tls()?;
                session.expect("StartTLS", Event::StartTlsAccepted)?;
                session.stream = upgrade(session.stream, settings, ip, addr)?;
            }
        }
        if let Some(bind) = &settings.bind {
            session.conn.bind(&bind.dn, &bind.password)?;
            session.expect("bind", Event::Bound)?;
        }
        Ok(session)
    }

    /// Runs a search and hands its entries to `on_page` one page at a time.
    /// An error from `on_page` stops the search and is returned.
    pub fn search<E: From<LdapError>>(
        &mut self,
        spec: SearchSpec,
        mut on_page: impl FnMut(Vec<DirectoryEntry>) -> Result<(), E>,
    ) -> Result<(), E> {
        let page_hint = spec.page_size.map_or(1, |n| usize::try_from(n.get()).unwrap_or(1000).min(1000));
        self.conn.search(spec)?;
        let mut page = Vec::with_capacity(page_hint);
        loop {
            match self.next_event("search")? {
                Event::Entry(entry) => page.push(entry),
                Event::PageDone => on_page(std::mem::take(&mut page))?,
                Event::SearchDone => {
                    on_page(page)?;
                    return Ok(());
                }
                other => return Err(LdapError::UnexpectedResponse { op: "search", what: format!("{other:?}") }.into()),
            }
        }
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
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }

    fn expect(&mut self, op: &'static str, wanted: Event) -> Result<(), LdapError> {
        match self.next_event(op)? {
            event if event == wanted => Ok(()),
            other => Err(LdapError::UnexpectedResponse { op, what: format!("{other:?}") }),
        }
    }

    fn next_event(&mut self, op: &'static str) -> Result<Event, LdapError> {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let out = self.conn.take_outgoing();
            if !out.is_empty() {
                self.stream.write_all(&out).map_err(|e| classify(op, &e, self.timeout_ms))?;
            }
            if let Some(event) = self.conn.poll()? {
                return Ok(event);
            }
            let n = self.stream.read(&mut buf).map_err(|e| classify(op, &e, self.timeout_ms))?;
            if n == 0 {
                return Err(LdapError::Closed { op });
            }
            self.conn.receive(&buf[..n]);
        }
    }
}

/// Wraps the TCP stream in TLS and completes the handshake here, so that
/// certificate problems surface as [`LdapError::Tls`].
fn upgrade(stream: Stream, settings: &LdapConnection, ip: IpAddr, addr: SocketAddr) -> Result<Stream, LdapError> {
    let Stream::Plain(mut tcp) = stream else {
        return Err(LdapError::TlsConfig("TLS is already active".to_owned()));
    };
    let config = tls::client_config(settings)?;
    let name = tls::server_name(settings, ip)?;
    let tls_error = |reason: String| LdapError::Tls { addr: addr.to_string(), reason };
    let mut tls = ClientConnection::new(config, name).map_err(|e| tls_error(e.to_string()))?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).map_err(|e| tls_error(tls_reason(&e)))?;
    }
    Ok(Stream::Tls(Box::new(StreamOwned::new(tls, tcp))))
}

fn classify(op: &'static str, e: &std::io::Error, timeout_ms: u32) -> LdapError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => LdapError::Timeout { op, timeout_ms },
        _ => io_error(op, e),
    }
}

fn connect(addr: SocketAddr, timeout_ms: u32) -> Result<TcpStream, LdapError> {
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    let failed = |e: std::io::Error| LdapError::Connect {
        addr: addr.to_string(),
        reason: match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => format!("no answer within {timeout_ms} ms (ldap_connect_timeout)"),
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

/// rustls reports certificate failures as `InvalidData` wrapping its error.
fn tls_reason(e: &std::io::Error) -> String {
    e.get_ref().map_or_else(|| e.to_string(), ToString::to_string)
}
