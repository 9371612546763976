//! Fuzz entry points: one `fuzz_*` function per parser that reads bytes an
//! attacker or a misconfiguration controls. The cargo-fuzz targets in
//! `fuzz/fuzz_targets/` are one-liners that call these, so the harnesses
//! are compiled, linted and kept in step with the code by the crate itself
//! (rustls does the same with `fuzz_deframer`).
//!
//! Who needs it: only `fuzz/`, through the `fuzzing` feature; the component
//! and the tests never compile this module. The entry points live here, not
//! beside each parser, so that they reach the parsers through the crate's
//! existing paths without touching the parsers' files.
//!
//! What counts as a finding: a panic, an overflow, a hang or unbounded memory.
//! Errors are expected answers. Where a parser documents a property (the
//! filter round trip, escaping, the slug's alphabet), the entry point asserts
//! it, so a broken promise is a finding too. Nothing here opens a socket:
//! `ldap_enable` stays off, so the routes stop before any LDAP I/O.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::BytesMut;

use crate::api::{Env, Request, route};
use crate::auth::enrolment::url_encode;
use crate::ldap::connection::{Connection, Event, SearchSpec};
use crate::ldap::filter;
use crate::ldap::framing::{Codec, frame_len};
use crate::settings::{Scope, Template, VariableSource};
use crate::store::KvStore;
use crate::store::memory::MemoryStore;
use crate::store::schema::Date;
use crate::sync::map::slugify;

/// BER framing and LDAPMessage decoding ([`Codec::decode`]) of a byte
/// stream, the way `Connection` drains its inbound buffer.
pub fn fuzz_ber_frames(data: &[u8]) {
    let mut codec = Codec::default();
    let mut buf = BytesMut::from(data);
    // Each `Ok(Some(_))` takes at least the two header bytes off `buf`, so this ends.
    while let Ok(Some(msg)) = codec.decode(&mut buf) {
        // The encoder must take whatever the decoder gave (requests echo back in tests).
        let _ = codec.encode(msg, &mut BytesMut::new());
    }
    // The fast path for search result entries agrees with ldap3_proto
    // whenever it answers (else it steps aside).
    if let Ok(Some(len)) = frame_len(data)
        && let Some(fast) = crate::ldap::framing::fast::search_result_entry(&data[..len])
    {
        let general = Codec::default().decode_frame(&mut BytesMut::from(&data[..len]));
        assert!(matches!(&general, Ok(Some(m)) if *m == fast), "fast path {fast:?} but ldap3_proto {general:?}");
    }
    // A prefix of a valid frame needs more bytes; it is never an error of its own.
    if let Ok(Some(len)) = frame_len(data) {
        for cut in [0, 1, 2, len / 2, len - 1].into_iter().filter(|cut| *cut < len) {
            assert!(matches!(frame_len(&data[..cut]), Ok(None)), "a {cut}-byte prefix of a {len}-byte frame is not \"need more\"");
        }
    }
}

/// Server bytes fed to a [`Connection`] that waits for a bind, StartTLS, or
/// a paged or unpaged search response, in two reads split at any point.
///
/// Layout: byte 0 picks the operation, byte 1 where the stream splits; the
/// rest is what the server sends (the request's message id is 1).
pub fn fuzz_connection(data: &[u8]) {
    let [op, split, stream @ ..] = data else {
        return;
    };
    let mut conn = Connection::default();
    let queued = match op % 4 {
        0 => conn.bind("cn=svc,dc=example,dc=org", "svcpw"),
        1 => conn.start_tls(),
        2 => conn.search(search_spec(10)),
        _ => conn.search(search_spec(0)),
    };
    if queued.is_err() {
        return;
    }
    let _ = conn.take_outgoing();
    let split = usize::from(*split).min(stream.len());
    for chunk in [&stream[..split], &stream[split..]] {
        conn.receive(chunk);
        // Every event consumes at least one frame, so this ends with the input.
        while let Ok(Some(event)) = conn.poll() {
            if event == Event::PageDone {
                let _ = conn.take_outgoing();
            }
        }
    }
}

/// The RFC 4515 parser behind `ldap_user_search_filter` and its renderer:
/// every parsed filter renders to text that parses back to it (the promise
/// in `render.rs`), and an escaped value stays one literal value.
pub fn fuzz_filter(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(Some(parsed)) = filter::parse_user_filter(&text) {
        let rendered = filter::to_string(&parsed);
        assert_eq!(filter::parse_user_filter(&rendered), Ok(Some(parsed)), "render → parse round trip of {rendered:?}");
    }
    // How login and testSearch put a username into a filter: no injection.
    let clause = format!("(uid={})", filter::escape_value(&text));
    assert_eq!(filter::parse_user_filter(&clause), Ok(Some(filter::equality("uid", text.clone()))), "escaped value {text:?}");
}

/// The `#{attr}` template of `ldap_username_field` / `ldap_name_field`,
/// rendered against made-up values, and the username slug.
///
/// Layout: the first line is the setting; the other lines are values, and
/// an attribute's values are the lines that start with its name.
pub fn fuzz_template(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (source, values) = text.split_once('\n').unwrap_or((&text, ""));
    let template = Template::parse(source);
    // Names are trimmed (`#{ uid }`) or stripped of all white space (lists), never invented.
    let squeezed: String = source.chars().filter(|c| !c.is_whitespace()).collect();
    for name in template.attributes() {
        let name: String = name.chars().filter(|c| !c.is_whitespace()).collect();
        assert!(!name.is_empty() && squeezed.contains(&name), "attribute {name:?} is not in {source:?}");
    }
    let lookup = |attr: &str| values.lines().filter(|line| !attr.is_empty() && line.starts_with(attr)).map(str::to_owned).collect();
    let rendered = template.render(lookup).unwrap_or_default();
    for input in [source, rendered.as_str()] {
        // What limax 4.2.3 keeps (checked with node on 68,000 random strings):
        // `[a-z0-9_.-]`, hyphens anywhere and in runs (only the separator, `.`,
        // is collapsed and trimmed), and a slug is its own slug.
        let slug = slugify(input);
        assert!(slug.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-')), "slug {slug:?} of {input:?}");
        assert!(!slug.starts_with('.') && !slug.ends_with('.') && !slug.contains(".."), "slug {slug:?} of {input:?}");
        assert_eq!(slugify(&slug), slug, "slugify is not idempotent on {input:?}");
    }
}

/// One HTTP request through the route table, as Spin hands it over, against
/// a store that holds the bootstrap admin and one login token for it. Covers
/// every route's parsing: headers, query parameters, JSON bodies.
///
/// Layout, HTTP/1-like: `METHOD /path?query`, then `name: value` header
/// lines, an empty line, and the body. In header values, `$USER_ID`,
/// `$TOKEN` and `$CODE` stand for the admin's id, token and password
/// digest (the second factor), so seeds survive changes to the token format.
pub fn fuzz_request(data: &[u8]) {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|b| *b == b'\n');
    let start = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let (method, target) = start.split_once(' ').unwrap_or((&start, ""));
    let admin = admin_session();
    let headers: Vec<(String, Vec<u8>)> = lines
        .map(|line| {
            let (name, value) = split_header(line);
            let value = String::from_utf8(value.to_vec()).map_or_else(
                |_| value.to_vec(),
                |v| v.replace("$USER_ID", &admin.user_id).replace("$TOKEN", &admin.token).replace("$CODE", ADMIN_CODE).into_bytes(),
            );
            (String::from_utf8_lossy(name).into_owned(), value)
        })
        .collect();
    let req = Request::new(method, target, headers).with_body(body.to_vec());
    call(&req, &admin.store);
}

/// `users.list`'s `sort` and `query` parameters (MongoDB-style JSON),
/// compiled and run over the stored users by the admin, who may query every
/// listed field.
///
/// Layout: the first line is `sort`, the rest is `query`; both are sent
/// percent-encoded, as a client would.
pub fn fuzz_users_list(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (sort, query) = text.split_once('\n').unwrap_or((&text, ""));
    let admin = admin_session();
    let target = format!("/api/v1/users.list?count=100&sort={}&query={}", url_encode(sort), url_encode(query));
    let headers = [("x-user-id", admin.user_id.as_str()), ("x-auth-token", admin.token.as_str())];
    let req = Request::new("GET", &target, headers.map(|(n, v)| (n.to_owned(), v.as_bytes().to_vec())));
    let res = call(&req, &admin.store);
    // Only the query can be wrong: the caller is the admin.
    assert!(matches!(res.status, 200 | 400), "users.list answered {} {}", res.status, res.body);
}

/// The bootstrap admin's password and its second factor (`printf %s admin-pw | sha256sum`).
const ADMIN_PASS: &str = "admin-pw";
const ADMIN_CODE: &str = "f6302296b934fd23629ef2252a746c1f2b57a7d0446f069232a007fe0a1f046e";
/// Fixed time and randomness, so a crash replays.
const NOW: Date = Date { millis: 1_700_000_000_000 };

/// A store with the bootstrap admin logged in once, built on first use.
struct AdminSession {
    store: BTreeMap<String, Vec<u8>>,
    user_id: String,
    token: String,
}

fn admin_session() -> &'static AdminSession {
    static SESSION: OnceLock<AdminSession> = OnceLock::new();
    SESSION.get_or_init(|| {
        let store = MemoryStore::default();
        let body = format!(r#"{{"user":"admin","password":"{ADMIN_PASS}"}}"#).into_bytes();
        let req = Request::new("POST", "/api/v1/login", [("content-type".to_owned(), b"application/json".to_vec())]).with_body(body);
        let res = with_env(&store, |env| route(&req, env));
        let field = |name: &str| res.body["data"][name].as_str().unwrap_or_default().to_owned();
        let (user_id, token) = (field("userId"), field("authToken"));
        // Without a session every input stops at the gate: fail loudly rather than fuzz nothing.
        assert!(!user_id.is_empty() && !token.is_empty(), "the bootstrap admin could not log in: {} {}", res.status, res.body);
        AdminSession { user_id, token, store: store.dump() }
    })
}

/// Runs `req` against a fresh copy of `snapshot`, so that no input depends on an earlier one.
fn call(req: &Request, snapshot: &BTreeMap<String, Vec<u8>>) -> crate::api::Response {
    let store = MemoryStore::default();
    if store.set_many(snapshot.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).is_err() {
        return crate::api::Response { status: 500, headers: Vec::new(), body: serde_json::Value::Null, raw: None };
    }
    with_env(&store, |env| route(req, env))
}

fn with_env<T>(store: &MemoryStore, f: impl FnOnce(&Env<'_>) -> T) -> T {
    let clock = || NOW;
    let random = |buf: &mut [u8]| buf.fill(7);
    f(&Env { store, variables: &Variables, clock: &clock, random: &random })
}

/// Upstream's defaults (so `ldap_enable` is off) plus the bootstrap admin.
struct Variables;

impl VariableSource for Variables {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok(match name {
            "admin_username" => Some("admin".to_owned()),
            "admin_pass" => Some(ADMIN_PASS.to_owned()),
            "admin_email" => Some("admin@example.org".to_owned()),
            _ => None,
        })
    }
}

fn search_spec(page_size: u32) -> SearchSpec {
    SearchSpec {
        base: "ou=people,dc=example,dc=org".to_owned(),
        scope: Scope::Sub,
        filter: filter::present("uid"),
        attributes: vec!["entryUUID".to_owned(), "uid".to_owned(), "mail".to_owned(), "cn".to_owned()],
        page_size: std::num::NonZeroU32::new(page_size),
        size_limit: 1000,
        sync: None,
        dirsync: None,
    }
}

/// `name: value` (the space after the colon optional); a line without a colon is a name alone.
fn split_header(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|b| *b == b':') {
        Some(at) => (&line[..at], line[at + 1..].strip_prefix(b" ").unwrap_or(&line[at + 1..])),
        None => (line, &[]),
    }
}
