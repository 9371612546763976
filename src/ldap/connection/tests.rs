//! Scripted server frames in, events out; no socket.

use bytes::BytesMut;
use ldap3_proto::proto::{LdapBindResponse, LdapPartialAttribute, LdapResult, LdapSearchResultEntry};

use super::*;
use crate::ldap::filter;

fn result(code: LdapResultCode) -> LdapResult {
    LdapResult { code, matcheddn: String::new(), message: "diag".into(), referral: vec![] }
}

fn frame(msgid: i32, op: LdapOp, ctrl: Vec<LdapControl>) -> Vec<u8> {
    let mut out = BytesMut::new();
    Codec::default().encode(LdapMsg { msgid, op, ctrl }, &mut out).expect("encodes");
    out.to_vec()
}

fn sent(conn: &mut Connection) -> LdapMsg {
    let mut out = conn.take_outgoing();
    Codec::default().decode(&mut out).expect("decodes").expect("one message")
}

fn spec(page_size: u32) -> SearchSpec {
    SearchSpec {
        base: "dc=x".into(),
        scope: crate::settings::Scope::Sub,
        filter: filter::present("uid"),
        attributes: vec!["uid".into()],
        page_size: std::num::NonZeroU32::new(page_size),
        size_limit: 7,
        sync: None,
        dirsync: None,
    }
}

fn entry(dn: &str) -> LdapOp {
    LdapOp::SearchResultEntry(LdapSearchResultEntry {
        dn: dn.into(),
        attributes: vec![LdapPartialAttribute { atype: "uid".into(), vals: vec![b"a".to_vec()] }],
    })
}

#[test]
fn bind_success_and_failure() {
    let mut conn = Connection::default();
    conn.bind("cn=svc", "pw").expect("queues");
    let msg = sent(&mut conn);
    assert!(matches!(msg.op, LdapOp::BindRequest(_)));
    conn.receive(&frame(
        msg.msgid,
        LdapOp::BindResponse(LdapBindResponse { res: result(LdapResultCode::Success), saslcreds: None }),
        vec![],
    ));
    assert_eq!(conn.poll().expect("ok"), Some(Event::Bound));

    conn.bind("cn=svc", "bad").expect("queues");
    let msg = sent(&mut conn);
    conn.receive(&frame(
        msg.msgid,
        LdapOp::BindResponse(LdapBindResponse { res: result(LdapResultCode::InvalidCredentials), saslcreds: None }),
        vec![],
    ));
    let e = conn.poll().expect_err("fails");
    assert_eq!(e.to_string(), "bind failed: invalidCredentials (49): diag");
}

#[test]
fn paged_search_queues_the_next_page_and_sends_no_size_limit() {
    let mut conn = Connection::default();
    conn.search(spec(2)).expect("queues");
    let first = sent(&mut conn);
    let LdapMsg { msgid, op: LdapOp::SearchRequest(req), ctrl } = first else { unreachable!("a search request") };
    assert_eq!(req.sizelimit, 0, "the size limit is not sent with a paged search");
    assert_eq!(ctrl, vec![LdapControl::SimplePagedResults { size: 2, cookie: vec![] }]);

    let mut wire = frame(msgid, entry("uid=a,dc=x"), vec![]);
    wire.extend(frame(
        msgid,
        LdapOp::SearchResultDone(result(LdapResultCode::Success)),
        vec![LdapControl::SimplePagedResults { size: 0, cookie: b"c1".to_vec() }],
    ));
    // Byte by byte: partial frames must yield "need more".
    let mut events = Vec::new();
    for b in wire {
        conn.receive(&[b]);
        while let Some(ev) = conn.poll().expect("ok") {
            events.push(ev);
        }
    }
    assert!(matches!(events.as_slice(), [Event::Entry(e), Event::PageDone] if e.dn == "uid=a,dc=x"));
    let next = sent(&mut conn);
    assert_eq!(next.ctrl, vec![LdapControl::SimplePagedResults { size: 2, cookie: b"c1".to_vec() }]);
    conn.receive(&frame(
        next.msgid,
        LdapOp::SearchResultDone(result(LdapResultCode::Success)),
        vec![LdapControl::SimplePagedResults { size: 0, cookie: vec![] }],
    ));
    assert_eq!(conn.poll().expect("ok"), Some(Event::SearchDone));
}

#[test]
fn unpaged_search_sends_the_size_limit_and_maps_errors() {
    let mut conn = Connection::default();
    conn.search(spec(0)).expect("queues");
    let msg = sent(&mut conn);
    let LdapOp::SearchRequest(req) = &msg.op else { unreachable!("a search request") };
    assert_eq!(req.sizelimit, 7);
    assert!(msg.ctrl.is_empty());
    conn.receive(&frame(msg.msgid, LdapOp::SearchResultDone(result(LdapResultCode::SizeLimitExceeded)), vec![]));
    assert!(conn.poll().expect_err("fails").to_string().starts_with("search failed: sizeLimitExceeded (4): diag; a page is larger"));
}

#[test]
fn notice_of_disconnection_and_stray_ids_are_errors() {
    let mut conn = Connection::default();
    conn.search(spec(0)).expect("queues");
    let msg = sent(&mut conn);
    conn.receive(&frame(msg.msgid + 5, entry("uid=z"), vec![]));
    assert!(matches!(conn.poll(), Err(LdapError::UnexpectedResponse { .. })));
    conn.receive(&frame(
        0,
        LdapOp::ExtendedResponse(ldap3_proto::proto::LdapExtendedResponse {
            res: result(LdapResultCode::Unavailable),
            name: None,
            value: None,
        }),
        vec![],
    ));
    assert!(matches!(conn.poll(), Err(LdapError::Disconnected(_))));
}

fn start_tls_response(msgid: i32) -> Vec<u8> {
    frame(
        msgid,
        LdapOp::ExtendedResponse(ldap3_proto::proto::LdapExtendedResponse {
            res: result(LdapResultCode::Success),
            name: None,
            value: None,
        }),
        vec![],
    )
}

fn bind_success(msgid: i32) -> Vec<u8> {
    frame(msgid, LdapOp::BindResponse(LdapBindResponse { res: result(LdapResultCode::Success), saslcreds: None }), vec![])
}

fn page_done(msgid: i32, cookie: &[u8]) -> Vec<u8> {
    frame(
        msgid,
        LdapOp::SearchResultDone(result(LdapResultCode::Success)),
        vec![LdapControl::SimplePagedResults { size: 0, cookie: cookie.to_vec() }],
    )
}

#[test]
fn bytes_behind_the_start_tls_response_are_refused() {
    let mut conn = Connection::default();
    conn.start_tls().expect("queues");
    let msg = sent(&mut conn);
    // A forged bind success for the bind that will follow (id 2), in the same read.
    let mut wire = start_tls_response(msg.msgid);
    wire.extend(bind_success(msg.msgid + 1));
    conn.receive(&wire);
    let e = conn.poll().expect_err("refused");
    assert!(matches!(e, LdapError::StartTlsTrailingData { bytes } if bytes == bind_success(2).len()), "{e:?}");
    assert!(e.to_string().starts_with("StartTLS: the LDAP server sent"), "{e}");
}

#[test]
fn even_a_partial_frame_behind_the_start_tls_response_is_refused() {
    let mut conn = Connection::default();
    conn.start_tls().expect("queues");
    let msg = sent(&mut conn);
    let mut wire = start_tls_response(msg.msgid);
    wire.push(0x30);
    conn.receive(&wire);
    assert!(matches!(conn.poll(), Err(LdapError::StartTlsTrailingData { bytes: 1 })));
}

#[test]
fn tls_starts_with_a_fresh_inbound_state_and_ids_go_on() {
    let mut conn = Connection::default();
    conn.start_tls().expect("queues");
    let msg = sent(&mut conn);
    conn.receive(&start_tls_response(msg.msgid));
    assert_eq!(conn.poll().expect("ok"), Some(Event::StartTlsAccepted));
    conn.tls_established().expect("nothing left over");
    conn.bind("cn=svc", "pw").expect("queues");
    let bind = sent(&mut conn);
    assert_eq!(bind.msgid, msg.msgid + 1);
    conn.receive(&bind_success(bind.msgid));
    assert_eq!(conn.poll().expect("ok"), Some(Event::Bound));

    // Bytes fed in after the response but before the handshake ended are refused too.
    let mut conn = Connection::default();
    conn.start_tls().expect("queues");
    let msg = sent(&mut conn);
    conn.receive(&start_tls_response(msg.msgid));
    assert_eq!(conn.poll().expect("ok"), Some(Event::StartTlsAccepted));
    conn.receive(&bind_success(msg.msgid + 1)[..3]);
    assert!(matches!(conn.tls_established(), Err(LdapError::StartTlsTrailingData { bytes: 3 })));
}

#[test]
fn a_page_holds_at_most_four_times_the_page_size() {
    let mut conn = Connection::default();
    conn.search(spec(2)).expect("queues");
    let msg = sent(&mut conn);
    let limit = PAGE_RESULTS_FACTOR * 2;
    for i in 0..limit {
        conn.receive(&frame(msg.msgid, entry(&format!("uid={i},dc=x")), vec![]));
        assert!(matches!(conn.poll(), Ok(Some(Event::Entry(_)))));
    }
    conn.receive(&frame(msg.msgid, entry("uid=over,dc=x"), vec![]));
    let e = conn.poll().expect_err("over the cap");
    assert!(matches!(e, LdapError::TooManyResults { limit: 8, .. }), "{e:?}");
    assert!(e.to_string().starts_with("search: the LDAP server sent more than 8 results in one page"), "{e}");
}

#[test]
fn the_page_cap_counts_each_page_afresh_and_counts_references() {
    let mut conn = Connection::default();
    conn.search(spec(1)).expect("queues");
    let mut msg = sent(&mut conn);
    for page in 0..3u8 {
        for _ in 0..PAGE_RESULTS_FACTOR {
            conn.receive(&frame(msg.msgid, entry("uid=a,dc=x"), vec![]));
            assert!(matches!(conn.poll(), Ok(Some(Event::Entry(_)))));
        }
        conn.receive(&page_done(msg.msgid, &[b'c', page]));
        assert_eq!(conn.poll().expect("ok"), Some(Event::PageDone));
        msg = sent(&mut conn);
    }
    for _ in 0..PAGE_RESULTS_FACTOR {
        conn.receive(&frame(
            msg.msgid,
            LdapOp::SearchResultReference(ldap3_proto::proto::LdapSearchResultReference { uris: vec!["ldap://other/".into()] }),
            vec![],
        ));
        assert_eq!(conn.poll().expect("reported"), Some(Event::Reference), "a reference makes the result incomplete");
    }
    conn.receive(&frame(msg.msgid, entry("uid=over,dc=x"), vec![]));
    assert!(matches!(conn.poll(), Err(LdapError::TooManyResults { limit: 4, .. })));
}

#[test]
fn an_unpaged_search_holds_at_most_the_size_limit() {
    let mut conn = Connection::default();
    conn.search(spec(0)).expect("queues");
    let msg = sent(&mut conn);
    for _ in 0..7 {
        conn.receive(&frame(msg.msgid, entry("uid=a,dc=x"), vec![]));
        assert!(matches!(conn.poll(), Ok(Some(Event::Entry(_)))));
    }
    conn.receive(&frame(msg.msgid, entry("uid=over,dc=x"), vec![]));
    let e = conn.poll().expect_err("over the size limit");
    assert_eq!(e.to_string(), "search: the LDAP server sent more than 7 results in an unpaged search (ldap_search_size_limit)");

    let unlimited = SearchSpec { size_limit: 0, ..spec(0) };
    assert_eq!(result_limit(&unlimited), MAX_UNPAGED_RESULTS);
}

#[test]
fn the_same_cookie_twice_in_a_row_ends_the_search() {
    let mut conn = Connection::default();
    conn.search(spec(2)).expect("queues");
    let first = sent(&mut conn);
    conn.receive(&page_done(first.msgid, b"c1"));
    assert_eq!(conn.poll().expect("ok"), Some(Event::PageDone));
    let second = sent(&mut conn);
    conn.receive(&page_done(second.msgid, b"c1"));
    let e = conn.poll().expect_err("repeated");
    assert!(matches!(e, LdapError::RepeatedCookie { page: 2 }), "{e:?}");
    assert!(e.to_string().contains("same paging cookie twice in a row"), "{e}");
}

#[test]
fn cookies_that_never_end_stop_at_the_page_cap() {
    let mut conn = Connection::default();
    conn.search(spec(2)).expect("queues");
    // Two cookies in turn: never the same twice in a row, never the end.
    let cookies: [&[u8]; 2] = [b"a", b"b"];
    let mut outcome = None;
    for page in 0..=MAX_PAGES {
        let msg = sent(&mut conn);
        conn.receive(&page_done(msg.msgid, cookies[usize::from(page % 2 == 1)]));
        match conn.poll() {
            Ok(Some(Event::PageDone)) => {}
            other => {
                outcome = Some((page, other));
                break;
            }
        }
    }
    let Some((page, Err(e))) = outcome else { unreachable!("the cap must stop the search: {outcome:?}") };
    assert_eq!(page + 1, MAX_PAGES, "pages accepted before the cap");
    assert!(matches!(e, LdapError::TooManyPages { limit: MAX_PAGES }), "{e:?}");
}

#[test]
fn dirsync_rounds_follow_more_results_and_end_with_the_cookie() {
    let mut conn = Connection::default();
    let dirsync = DirSyncRequest { flags: 0x8000_0000, max_bytes: 0x10_0000, cookie: b"c0".to_vec() };
    conn.search(SearchSpec { dirsync: Some(dirsync), ..spec(0) }).expect("queues");
    let mut wire = conn.take_outgoing();
    // The flags go out as a 4-byte two's complement INTEGER (02 04 80 00 00 00), as AD wants.
    let bytes = wire.to_vec();
    assert!(bytes.windows(6).any(|w| w == [0x02, 0x04, 0x80, 0x00, 0x00, 0x00]), "{bytes:02x?}");
    let first = Codec::default().decode(&mut wire).expect("decodes").expect("one message");
    let LdapMsg { msgid, op: LdapOp::SearchRequest(req), ctrl } = first else { unreachable!("a search request") };
    assert_eq!(req.sizelimit, 0);
    // ldap3_proto decodes INTEGERs without sign extension: 80 00 00 00 reads back as 0x80000000.
    assert_eq!(ctrl, vec![LdapControl::AdDirsync { flags: 0x8000_0000, max_bytes: 0x10_0000, cookie: Some(b"c0".to_vec()) }]);

    // MoreResults set: the next round goes out with the new cookie.
    let more = |msgid, flags, cookie: &[u8]| {
        frame(
            msgid,
            LdapOp::SearchResultDone(result(LdapResultCode::Success)),
            vec![LdapControl::AdDirsync { flags, max_bytes: 0, cookie: Some(cookie.to_vec()) }],
        )
    };
    conn.receive(&frame(msgid, entry("CN=a,DC=x"), vec![]));
    conn.receive(&more(msgid, 1, b"c1"));
    assert!(matches!(conn.poll(), Ok(Some(Event::Entry(_)))));
    assert_eq!(conn.poll().expect("ok"), Some(Event::PageDone));
    let next = sent(&mut conn);
    assert_eq!(next.ctrl, vec![LdapControl::AdDirsync { flags: 0x8000_0000, max_bytes: 0x10_0000, cookie: Some(b"c1".to_vec()) }]);
    // The same cookie again with MoreResults would never end.
    let mut stuck = Connection::default();
    stuck
        .search(SearchSpec { dirsync: Some(DirSyncRequest { flags: 0, max_bytes: 0, cookie: b"c0".to_vec() }), ..spec(0) })
        .expect("queues");
    let m = sent(&mut stuck);
    stuck.receive(&more(m.msgid, 1, b"c0"));
    assert!(matches!(stuck.poll(), Err(LdapError::RepeatedCookie { page: 1 })));

    // MoreResults clear: done, with the cookie for next time.
    conn.receive(&more(next.msgid, 0, b"c2"));
    assert_eq!(conn.poll().expect("ok"), Some(Event::DirSyncDone { cookie: b"c2".to_vec() }));

    // A server that sends no DirSync response control is an error, not an empty answer.
    let mut bare = Connection::default();
    bare.search(SearchSpec { dirsync: Some(DirSyncRequest { flags: 0, max_bytes: 0, cookie: vec![] }), ..spec(0) }).expect("queues");
    let m = sent(&mut bare);
    bare.receive(&frame(m.msgid, LdapOp::SearchResultDone(result(LdapResultCode::Success)), vec![]));
    let e = bare.poll().expect_err("no control");
    assert!(e.to_string().contains("without the DirSync response control"), "{e}");
}
