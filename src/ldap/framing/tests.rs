use bytes::BytesMut;
use ldap3_proto::LdapMsg;
use ldap3_proto::proto::{LdapOp, LdapResult, LdapResultCode};

use super::*;

fn encoded(msg: LdapMsg) -> Vec<u8> {
    let mut out = BytesMut::new();
    Codec::default().encode(msg, &mut out).expect("encodes");
    out.to_vec()
}

fn done(id: i32) -> LdapMsg {
    LdapMsg {
        msgid: id,
        op: LdapOp::SearchResultDone(LdapResult {
            code: LdapResultCode::Success,
            matcheddn: String::new(),
            message: String::new(),
            referral: vec![],
        }),
        ctrl: vec![],
    }
}

#[test]
fn partial_frames_need_more_and_whole_ones_decode_one_at_a_time() {
    let mut wire = encoded(done(1));
    wire.extend(encoded(done(2)));
    let mut codec = Codec::default();
    let mut buf = BytesMut::from(&wire[..3]);
    assert_eq!(codec.decode(&mut buf).expect("fine"), None);
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(codec.decode(&mut buf).expect("fine").map(|m| m.msgid), Some(1));
    assert_eq!(codec.decode(&mut buf).expect("fine").map(|m| m.msgid), Some(2));
    assert!(buf.is_empty());
}

#[test]
fn long_form_lengths_and_limits() {
    assert_eq!(frame_len(&[0x30, 0x82, 0x01, 0x00]).expect("ok"), None);
    let mut big = vec![0x30, 0x82, 0x01, 0x00];
    big.extend(vec![0u8; 256]);
    assert_eq!(frame_len(&big).expect("ok"), Some(260));
    let e = frame_len(&[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]).expect_err("too big");
    assert!(e.to_string().contains("exceeds the limit"), "{e}");
    assert!(frame_len(&[0x30, 0x80]).is_err(), "indefinite length is refused");
    assert!(frame_len(&[0x04, 0x00]).is_err(), "not a SEQUENCE");
}

#[test]
fn garbage_inside_a_frame_is_a_protocol_error() {
    let mut buf = BytesMut::from(&[0x30, 0x03, 0x02, 0x01, 0xff][..]);
    assert!(matches!(Codec::default().decode(&mut buf), Err(LdapError::Protocol(_))));
}
