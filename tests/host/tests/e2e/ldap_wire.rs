//! The sync against fake LDAP servers on 127.0.0.1 that misbehave on the
//! wire, through the real component: what slapd never does.

// The fake server's side of the socket; the component's side stays in src/ldap/transport.rs.
#![allow(clippy::disallowed_types)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ldap_sync_host::Host;
use ldap_sync_host::demo::demo_variables;
use ldap_sync_host::fixture::LocalAdmin;
use serde_json::json;

use crate::common::*;

/// The caller of every sync here.
const ADMIN: LocalAdmin = LocalAdmin { id: "admin", password: "secret", login_token: "tok-admin" };

/// `LDAPMessage { messageID id, extendedResp { success, "", "" } }`: StartTLS accepted.
fn start_tls_success(id: u8) -> [u8; 14] {
    [0x30, 0x0c, 0x02, 0x01, id, 0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]
}

/// `LDAPMessage { messageID id, bindResponse { success, "", "" } }`.
fn bind_success(id: u8) -> [u8; 14] {
    [0x30, 0x0c, 0x02, 0x01, id, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]
}

/// A server thread on a free port; `script` runs on the one connection it accepts.
fn serve(script: impl FnOnce(TcpStream) + Send + 'static) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port on 127.0.0.1");
    let port = listener.local_addr().expect("bound").port();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("the component connects");
        stream.set_nodelay(true).expect("nodelay");
        script(stream);
    });
    (port, server)
}

/// Reads one whole request (short or long BER length form) and returns it.
fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if buf.len() >= 2 {
            let (header, content) = match buf[1] {
                n if n < 0x80 => (2, usize::from(n)),
                n => {
                    let count = usize::from(n & 0x7f);
                    let len = buf.get(2..2 + count).map(|b| b.iter().fold(0usize, |acc, x| (acc << 8) | usize::from(*x)));
                    (2 + count, len.unwrap_or(usize::MAX - 2 - count))
                }
            };
            if buf.len() >= header + content {
                buf.truncate(header + content);
                return buf;
            }
        }
        let n = stream.read(&mut chunk).expect("the request arrives");
        assert!(n > 0, "the component closed before sending a whole request");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The message id of a request whose id fits one byte.
fn message_id(request: &[u8]) -> u8 {
    let at = if request[1] < 0x80 { 2 } else { 2 + usize::from(request[1] & 0x7f) };
    assert_eq!(request[at..at + 2], [0x02, 0x01], "a one-byte message id");
    request[at + 2]
}

fn sync_host(port: u16, extra: &[(&'static str, &str)]) -> Host {
    let mut vars = demo_variables(port);
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let host = host(&pairs);
    ADMIN.seed(&host).expect("seeding the admin");
    host
}

#[track_caller]
fn assert_sync_failed(res: &ldap_sync_host::Response, starts_with: &str) {
    assert_eq!(res.status, 400, "{}", res.text());
    let body = res.json();
    assert_eq!(body["error"], json!("LDAP_Sync_failed"), "{body}");
    let message = body["details"]["error"].as_str().expect("message");
    assert!(message.starts_with(starts_with), "{message:?} does not start with {starts_with:?}");
}

#[tokio::test]
async fn a_bind_response_injected_behind_the_start_tls_response_fails_the_sync() {
    let (port, server) = serve(|mut stream| {
        let request = read_request(&mut stream);
        let id = message_id(&request);
        // StartTLS accepted and, in the same write and in the clear, a "successful
        // bind" for the bind that would follow the handshake.
        let mut wire = start_tls_success(id).to_vec();
        wire.extend(bind_success(id + 1));
        stream.write_all(&wire).expect("written");
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    });
    let host = sync_host(port, &[("ldap_encryption", "tls")]);
    let res = host.send(ADMIN.sync_now_request().expect("request")).await.expect("host answers");
    assert_sync_failed(&res, "StartTLS: the LDAP server sent 14 unexpected bytes after the StartTLS response");
    server.join().expect("the server thread ends");
}

#[tokio::test]
async fn a_server_trickling_its_bind_response_fails_the_sync_at_the_operation_deadline() {
    let (port, server) = serve(|mut stream| {
        let request = read_request(&mut stream);
        // One byte every 150 ms: each read is within ldap_timeout (200 ms).
        for b in bind_success(message_id(&request)) {
            thread::sleep(Duration::from_millis(150));
            if stream.write_all(&[b]).is_err() {
                return;
            }
        }
    });
    let host = sync_host(port, &[("ldap_timeout", "200")]);
    let started = Instant::now();
    let res = host.send(ADMIN.sync_now_request().expect("request")).await.expect("host answers");
    assert_sync_failed(&res, "bind: the LDAP server did not finish within 800 ms (4 × ldap_timeout)");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    server.join().expect("the server thread ends");
}
