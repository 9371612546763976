use http::HeaderValue;

use crate::manifest::project_manifest;
use crate::request::{DEFAULT_CLIENT_ADDR, Prepared, is_service_chaining_host, prepare_request};

fn prepare(req: http::Request<()>, client: &str) -> Prepared {
    let (parts, ()) = req.into_parts();
    prepare_request(&project_manifest(), parts, client.parse().expect("addr")).expect("prepares")
}

fn invoked(p: Prepared) -> http::request::Parts {
    match p {
        Prepared::Invoke(parts) => parts,
        Prepared::Respond(r) => unreachable!("expected an invocation, got {r:?}"),
    }
}

fn h<'a>(parts: &'a http::request::Parts, name: &str) -> Vec<&'a str> {
    parts.headers.get_all(name).iter().map(|v| v.to_str().expect("utf-8")).collect()
}

#[test]
fn spin_headers_for_a_routed_request() {
    let req = http::Request::post("/api/v1/ldap.syncNow?x=1")
        .header("host", "127.0.0.1:3000")
        .header("x-user-id", "abc")
        .body(())
        .expect("request");
    let parts = invoked(prepare(req, "127.0.0.1:8777"));
    assert_eq!(parts.uri.to_string(), "http://127.0.0.1:3000/api/v1/ldap.syncNow?x=1");
    assert_eq!(h(&parts, "spin-full-url"), ["http://127.0.0.1:3000/api/v1/ldap.syncNow?x=1"]);
    assert_eq!(h(&parts, "spin-path-info"), ["/ldap.syncNow"]);
    assert_eq!(h(&parts, "spin-matched-route"), ["/api/v1/..."]);
    assert_eq!(h(&parts, "spin-raw-component-route"), ["/api/v1/..."]);
    assert_eq!(h(&parts, "spin-component-route"), ["/api/v1"]);
    assert_eq!(h(&parts, "spin-base-path"), ["/"]);
    assert_eq!(h(&parts, "spin-client-addr"), ["127.0.0.1:8777"]);
    assert_eq!(h(&parts, "x-user-id"), ["abc"]);
    assert_eq!(h(&parts, "host"), ["127.0.0.1:3000"]);
}

#[test]
fn host_header_is_filled_in_like_a_client() {
    let req = http::Request::get("/api/v1/me").body(()).expect("request");
    let parts = invoked(prepare(req, "10.0.0.5:40000"));
    assert_eq!(h(&parts, "host"), ["localhost"]);
    assert_eq!(h(&parts, "spin-full-url"), ["http://localhost/api/v1/me"]);

    let req = http::Request::get("http://example.test:8080/api/v1/me").body(()).expect("request");
    let parts = invoked(prepare(req, "10.0.0.5:40000"));
    assert_eq!(h(&parts, "spin-full-url"), ["http://example.test:8080/api/v1/me"]);
    assert_eq!(h(&parts, "spin-client-addr"), ["10.0.0.5:40000"]);

    let req = http::Request::get("http://a.test/api/v1/me").header("host", "b.test").body(()).expect("request");
    let (parts, ()) = req.into_parts();
    assert!(prepare_request(&project_manifest(), parts, DEFAULT_CLIENT_ADDR).is_err());
}

#[test]
fn client_spin_headers_are_kept_first_as_in_spin() {
    let req = http::Request::get("/api/v1/x").header("spin-client-addr", "6.6.6.6:1").body(()).expect("request");
    let parts = invoked(prepare(req, "127.0.0.1:5"));
    assert_eq!(h(&parts, "spin-client-addr"), ["6.6.6.6:1", "127.0.0.1:5"]);
}

#[test]
fn unrouted_and_well_known_paths() {
    for path in ["/", "/api/v2/x", "/api/v1x", "/.well-known/spin/nope"] {
        let req = http::Request::get(path).body(()).expect("request");
        match prepare(req, "127.0.0.1:1") {
            Prepared::Respond(r) => {
                assert_eq!(r.status, 404, "{path}");
                assert!(r.body.is_empty());
            }
            Prepared::Invoke(_) => unreachable!("{path} should not reach the component"),
        }
    }
    let req = http::Request::get("/.well-known/spin/health").body(()).expect("request");
    match prepare(req, "127.0.0.1:1") {
        Prepared::Respond(r) => assert_eq!((r.status, r.text().as_str()), (200, "OK")),
        Prepared::Invoke(_) => unreachable!("health is answered by the host"),
    }
}

#[test]
fn non_utf8_header_is_an_empty_500_as_in_spin() {
    let req = http::Request::get("/api/v1/x")
        .header("x-auth-token", HeaderValue::from_bytes(b"\xff\xfe").expect("value"))
        .body(())
        .expect("request");
    match prepare(req, "127.0.0.1:1") {
        Prepared::Respond(r) => {
            assert_eq!(r.status, 500);
            assert!(r.body.is_empty());
            assert!(r.error.is_some());
        }
        Prepared::Invoke(_) => unreachable!("Spin refuses non-UTF-8 header values"),
    }
}

#[test]
fn service_chaining_host_is_stripped() {
    assert!(is_service_chaining_host("ldap-sync.spin.internal"));
    assert!(is_service_chaining_host("ldap-sync.spin.internal:80"));
    assert!(!is_service_chaining_host("example.com"));
    let req = http::Request::get("/api/v1/x").header("host", "c.spin.internal").body(()).expect("request");
    let (parts, ()) = req.into_parts();
    // Spin then fails the request for lack of a Host.
    assert!(prepare_request(&project_manifest(), parts, DEFAULT_CLIENT_ADDR).is_err());
}
