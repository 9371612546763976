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
    assert_eq!(conn.poll().expect_err("fails").to_string(), "search failed: sizeLimitExceeded (4): diag");
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
