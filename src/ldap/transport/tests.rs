//! The session against fake servers on 127.0.0.1: each test scripts what a
//! server thread writes, and checks what the session makes of it.

use std::net::{Ipv4Addr, TcpListener};
use std::thread::{self, JoinHandle};

use bytes::BytesMut;
use ldap3_proto::LdapMsg;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapBindResponse, LdapExtendedResponse, LdapOp, LdapResult, LdapResultCode};

use super::*;
use crate::ldap::filter;
use crate::ldap::framing::Codec;
use crate::settings::{BindCredentials, Scope};

const BIND_DN: &str = "cn=svc,dc=example,dc=org";
const BIND_PASSWORD: &str = "s3cret-bind-pw";

fn settings(port: u16, encryption: Encryption, timeout_ms: u32) -> LdapConnection {
    LdapConnection {
        ip: Some(Ipv4Addr::LOCALHOST.into()),
        host: String::new(),
        port,
        encryption,
        ca_cert: String::new(),
        reject_unauthorized: true,
        timeout_ms,
        connect_timeout_ms: 1_000,
        bind: Some(BindCredentials { dn: BIND_DN.into(), password: BIND_PASSWORD.into() }),
    }
}

/// A server thread on a free port; `script` runs on the one connection it accepts.
fn serve(script: impl FnOnce(TcpStream) + Send + 'static) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port on 127.0.0.1");
    let port = listener.local_addr().expect("bound").port();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("the session connects");
        stream.set_nodelay(true).expect("nodelay");
        script(stream);
    });
    (port, server)
}

/// Reads one whole request off the wire.
fn read_request(stream: &mut TcpStream) -> LdapMsg {
    let mut codec = Codec::default();
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(msg) = codec.decode(&mut buf).expect("a valid request") {
            return msg;
        }
        let n = stream.read(&mut chunk).expect("the request arrives");
        assert!(n > 0, "the session closed before sending a whole request");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn encode(msgid: i32, op: LdapOp, ctrl: Vec<LdapControl>) -> Vec<u8> {
    let mut out = BytesMut::new();
    Codec::default().encode(LdapMsg { msgid, op, ctrl }, &mut out).expect("encodes");
    out.to_vec()
}

fn success() -> LdapResult {
    LdapResult { code: LdapResultCode::Success, matcheddn: String::new(), message: String::new(), referral: vec![] }
}

fn bind_success(msgid: i32) -> Vec<u8> {
    encode(msgid, LdapOp::BindResponse(LdapBindResponse { res: success(), saslcreds: None }), vec![])
}

/// Writes `bytes` one at a time, `gap` apart, until done or the session hangs up.
fn trickle(stream: &mut TcpStream, bytes: &[u8], gap: Duration) {
    for b in bytes {
        thread::sleep(gap);
        if stream.write_all(&[*b]).is_err() {
            return;
        }
    }
}

/// Waits until the session hangs up, so the server never closes first.
fn drain(stream: &mut TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

#[test]
fn a_forged_bind_response_behind_the_start_tls_response_fails_the_session() {
    let (port, server) = serve(|mut stream| {
        let request = read_request(&mut stream);
        let LdapOp::ExtendedRequest(ext) = &request.op else { unreachable!("StartTLS comes first, got {:?}", request.op) };
        assert_eq!(ext.name, "1.3.6.1.4.1.1466.20037");
        // StartTLS accepted, and in the same write a "successful bind" for the
        // bind the client will send next (id + 1), in the clear.
        let mut wire =
            encode(request.msgid, LdapOp::ExtendedResponse(LdapExtendedResponse { res: success(), name: None, value: None }), vec![]);
        wire.extend(bind_success(request.msgid + 1));
        stream.write_all(&wire).expect("written");
        drain(&mut stream);
    });
    let result = Session::open(&settings(port, Encryption::StartTls, 2_000));
    let Err(e) = result else { unreachable!("the session must not open: the forged bind was accepted") };
    assert!(matches!(e, LdapError::StartTlsTrailingData { bytes } if bytes == bind_success(2).len()), "{e:?}");
    server.join().expect("the server thread ends");
}

#[test]
fn a_server_trickling_a_response_hits_the_operation_deadline() {
    let timeout = Duration::from_millis(200);
    let (port, server) = serve(move |mut stream| {
        let request = read_request(&mut stream);
        // Each byte comes just within the read timeout, so no single read times out.
        trickle(&mut stream, &bind_success(request.msgid), timeout * 3 / 4);
    });
    let started = Instant::now();
    let result = Session::open(&settings(port, Encryption::Plain, 200));
    let elapsed = started.elapsed();
    let Err(e) = result else { unreachable!("a trickled bind must not succeed") };
    assert!(matches!(e, LdapError::OperationDeadline { op: "bind", limit_ms: 800, factor: OPERATION_TIMEOUTS }), "{e:?}");
    assert_eq!(e.to_string(), "bind: the LDAP server did not finish within 800 ms (4 × ldap_timeout), although it kept sending");
    assert!(elapsed >= timeout * OPERATION_TIMEOUTS && elapsed < timeout * (OPERATION_TIMEOUTS + 2), "{elapsed:?}");
    server.join().expect("the server thread ends");
}

#[test]
fn the_operation_deadline_is_per_page_not_per_search() {
    let timeout = Duration::from_millis(200);
    const PAGES: u8 = 3;
    let (port, server) = serve(move |mut stream| {
        let bind = read_request(&mut stream);
        stream.write_all(&bind_success(bind.msgid)).expect("written");
        for page in 1..=PAGES {
            let request = read_request(&mut stream);
            let cookie = if page == PAGES { vec![] } else { vec![page] };
            let done =
                encode(request.msgid, LdapOp::SearchResultDone(success()), vec![LdapControl::SimplePagedResults { size: 0, cookie }]);
            // Four parts, each within the read timeout: a page takes 3/4 of the
            // operation deadline, the whole search more than the deadline.
            for part in done.chunks(done.len().div_ceil(4)) {
                thread::sleep(timeout * 3 / 4);
                stream.write_all(part).expect("written");
            }
        }
        drain(&mut stream);
    });
    let Ok(mut session) = Session::open(&settings(port, Encryption::Plain, 200)) else { unreachable!("the bind succeeds") };
    let spec = SearchSpec {
        base: "dc=example,dc=org".into(),
        scope: Scope::Sub,
        filter: filter::present("uid"),
        attributes: vec!["uid".into()],
        page_size: std::num::NonZeroU32::new(10),
        size_limit: 0,
        sync: None,
        dirsync: None,
    };
    let started = Instant::now();
    let mut pages = 0;
    session
        .search(spec, |_| {
            pages += 1;
            Ok::<(), LdapError>(())
        })
        .expect("every page is in time");
    assert_eq!(pages, PAGES);
    assert!(started.elapsed() > timeout * OPERATION_TIMEOUTS, "the search outlasted one operation's deadline");
    session.close();
    server.join().expect("the server thread ends");
}

#[test]
fn the_run_deadline_stops_a_session_however_steadily_it_answers() {
    let (port, server) = serve(|mut stream| {
        let request = read_request(&mut stream);
        trickle(&mut stream, &bind_success(request.msgid), Duration::from_millis(100));
    });
    let started = Instant::now();
    let result = Session::open_until(&settings(port, Encryption::Plain, 10_000), started + Duration::from_millis(500));
    let Err(e) = result else { unreachable!("the run deadline passes before the bind ends") };
    assert!(matches!(e, LdapError::RunDeadline { op: "bind", limit_ms: 495..=500 }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    server.join().expect("the server thread ends");
}

#[test]
fn a_server_trickling_the_tls_handshake_hits_the_operation_deadline() {
    let timeout = Duration::from_millis(200);
    let (port, server) = serve(move |mut stream| {
        let mut hello = [0u8; 4096];
        let _ = stream.read(&mut hello).expect("a ClientHello");
        // A handshake record header announcing 16 KiB, then its body a byte at a time:
        // rustls needs the whole record, and no single read times out.
        let mut wire = vec![0x16, 0x03, 0x03, 0x40, 0x00];
        wire.extend([0u8; 64]);
        trickle(&mut stream, &wire, timeout * 3 / 4);
    });
    let result = Session::open(&settings(port, Encryption::Tls, 200));
    let Err(e) = result else { unreachable!("no TLS session from a trickle") };
    assert!(matches!(e, LdapError::OperationDeadline { op: "TLS handshake", .. }), "{e:?}");
    server.join().expect("the server thread ends");
}

#[test]
fn plaintext_with_a_bind_password_warns_without_naming_it() {
    let plain = settings(389, Encryption::Plain, 1_000);
    let warning = plaintext_warning(&plain).expect("a warning");
    assert_eq!(warning, "the LDAP bind password is sent to the server unencrypted");
    assert!(!warning.contains(BIND_PASSWORD) && !warning.contains(BIND_DN) && !warning.contains("cn=svc"), "{warning}");

    assert_eq!(plaintext_warning(&settings(389, Encryption::StartTls, 1_000)), None);
    assert_eq!(plaintext_warning(&settings(636, Encryption::Tls, 1_000)), None);
    assert_eq!(plaintext_warning(&LdapConnection { bind: None, ..settings(389, Encryption::Plain, 1_000) }), None);
    let empty = BindCredentials { dn: BIND_DN.into(), password: String::new() };
    assert_eq!(plaintext_warning(&LdapConnection { bind: Some(empty), ..settings(389, Encryption::Plain, 1_000) }), None);
}
