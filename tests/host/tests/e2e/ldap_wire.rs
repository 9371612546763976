//! The sync against fake LDAP servers on 127.0.0.1 that misbehave on the
//! wire, through the real component: what slapd never does.

use std::thread;
use std::time::{Duration, Instant};

use ldap_sync_host::Host;
use ldap_sync_host::demo::demo_variables;
use ldap_sync_host::fake_ldap::{FakeLdap, LdapPeer, Script, bind_response, code, message, tlv};
use ldap_sync_host::fixture::LocalAdmin;
use serde_json::json;

use crate::common::*;

/// The caller of every sync here.
const ADMIN: LocalAdmin = LocalAdmin { id: "admin", password: "secret", login_token: "tok-admin" };

/// `LDAPMessage { messageID id, extendedResp { success, "", "" } }`: StartTLS accepted.
fn start_tls_success(id: i64) -> Vec<u8> {
    message(id, &tlv(0x78, &[0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]), None)
}

/// A fake server that runs `script` on the one connection it accepts.
fn serve(script: impl FnOnce(LdapPeer) + Send + 'static) -> FakeLdap {
    FakeLdap::start(vec![Box::new(script) as Script]).expect("a fake LDAP server")
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
    let server = serve(|mut peer| {
        let id = peer.read().expect("the StartTLS request").id;
        // StartTLS accepted and, in the same write and in the clear, a "successful
        // bind" for the bind that would follow the handshake.
        let mut wire = start_tls_success(id);
        wire.extend(bind_response(id + 1, code::SUCCESS));
        peer.send(&wire);
        peer.drain();
    });
    let host = sync_host(server.port(), &[("ldap_encryption", "tls")]);
    let res = host.send(ADMIN.sync_now_request().expect("request")).await.expect("host answers");
    assert_sync_failed(&res, "StartTLS: the LDAP server sent 14 unexpected bytes after the StartTLS response");
    server.join().expect("the server thread ends");
}

#[tokio::test]
async fn a_server_trickling_its_bind_response_fails_the_sync_at_the_operation_deadline() {
    let server = serve(|mut peer| {
        let id = peer.read().expect("the bind request").id;
        // One byte every 150 ms: each read is within ldap_timeout (200 ms).
        for b in bind_response(id, code::SUCCESS) {
            thread::sleep(Duration::from_millis(150));
            if !peer.send(&[b]) {
                return;
            }
        }
    });
    let host = sync_host(server.port(), &[("ldap_timeout", "200")]);
    let started = Instant::now();
    let res = host.send(ADMIN.sync_now_request().expect("request")).await.expect("host answers");
    assert_sync_failed(&res, "bind: the LDAP server did not finish within 800 ms (4 × ldap_timeout)");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    server.join().expect("the server thread ends");
}
