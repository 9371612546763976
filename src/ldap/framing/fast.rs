//! A fast path for the one message a sync receives by the hundred
//! thousand: a SearchResultEntry without controls. Measured at 100,000
//! users, ldap3_proto's general decoder (a BER tree, then the LDAP types)
//! cost about as much as the whole `ldapsearch` floor.
//!
//! This reads the frame once and allocates only what the result holds. It
//! is strict: anything it does not fully understand (another operation,
//! controls, the indefinite length form, non-UTF-8 names, trailing bytes)
//! returns `None` and the frame goes to ldap3_proto, so on every input it
//! either agrees with ldap3_proto or steps aside (`fuzz_entry_fast_path`
//! checks exactly that).

use ldap3_proto::LdapMsg;
use ldap3_proto::proto::{LdapOp, LdapPartialAttribute, LdapSearchResultEntry};

/// The message in `frame` (one whole LDAPMessage), if it is a
/// SearchResultEntry without controls.
pub fn search_result_entry(frame: &[u8]) -> Option<LdapMsg> {
    let mut outer = Reader(frame);
    let mut message = outer.element(0x30)?;
    if !outer.0.is_empty() {
        return None;
    }
    let msgid = message.integer()?;
    let mut entry = message.element(0x64)?;
    // Controls (or anything else) after the operation: ldap3_proto's job.
    if !message.0.is_empty() {
        return None;
    }
    let dn = String::from_utf8(entry.element(0x04)?.0.to_vec()).ok()?;
    let mut list = entry.element(0x30)?;
    if !entry.0.is_empty() {
        return None;
    }
    let mut attributes = Vec::new();
    while !list.0.is_empty() {
        let mut attribute = list.element(0x30)?;
        let atype = String::from_utf8(attribute.element(0x04)?.0.to_vec()).ok()?;
        let mut set = attribute.element(0x31)?;
        if !attribute.0.is_empty() {
            return None;
        }
        let mut vals = Vec::new();
        while !set.0.is_empty() {
            vals.push(set.element(0x04)?.0.to_vec());
        }
        attributes.push(LdapPartialAttribute { atype, vals });
    }
    Some(LdapMsg { msgid, op: LdapOp::SearchResultEntry(LdapSearchResultEntry { dn, attributes }), ctrl: Vec::new() })
}

/// The unread rest of a constructed element's contents.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// The next element, which must carry `tag` (one identifier byte): its contents.
    fn element(&mut self, tag: u8) -> Option<Reader<'a>> {
        let (&first, rest) = self.0.split_first()?;
        if first != tag {
            return None;
        }
        let (&len0, rest) = rest.split_first()?;
        let (len, rest) = if len0 < 0x80 {
            (usize::from(len0), rest)
        } else {
            // Definite long form only, up to 4 length bytes.
            let count = usize::from(len0 & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (bytes, rest) = rest.split_at(count);
            (bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
        };
        if rest.len() < len {
            return None;
        }
        let (contents, rest) = rest.split_at(len);
        self.0 = rest;
        Some(Reader(contents))
    }

    /// A message id: an INTEGER of 1 to 4 bytes, positive as RFC 4511 wants.
    fn integer(&mut self) -> Option<i32> {
        let bytes = self.element(0x02)?.0;
        if bytes.is_empty() || bytes.len() > 4 || bytes[0] & 0x80 != 0 {
            return None;
        }
        Some(bytes.iter().fold(0i32, |acc, b| (acc << 8) | i32::from(*b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ldap::framing::Codec;
    use bytes::BytesMut;

    fn encoded(msg: LdapMsg) -> Vec<u8> {
        let mut out = BytesMut::new();
        Codec::default().encode(msg, &mut out).expect("encodes");
        out.to_vec()
    }

    fn entry(msgid: i32, dn: &str, attributes: Vec<(&str, Vec<Vec<u8>>)>) -> LdapMsg {
        LdapMsg {
            msgid,
            op: LdapOp::SearchResultEntry(LdapSearchResultEntry {
                dn: dn.to_owned(),
                attributes: attributes.into_iter().map(|(t, vals)| LdapPartialAttribute { atype: t.to_owned(), vals }).collect(),
            }),
            ctrl: Vec::new(),
        }
    }

    #[test]
    fn agrees_with_ldap3_proto_on_entries() {
        let big = vec![0xab; 70_000];
        for msg in [
            entry(1, "uid=a,dc=x", vec![("uid", vec![b"a".to_vec()]), ("mail", vec![b"a@x".to_vec(), b"b@x".to_vec()])]),
            entry(0x7fff_ffff, "", vec![]),
            entry(300, "cn=empty,dc=x", vec![("description", vec![]), ("x", vec![Vec::new()])]),
            entry(2, "cn=photo,dc=x", vec![("jpegPhoto", vec![big.clone()]), ("cn", vec!["Zoë 李".as_bytes().to_vec()])]),
        ] {
            let wire = encoded(msg.clone());
            assert_eq!(search_result_entry(&wire), Some(msg), "{wire:02x?}");
        }
    }

    #[test]
    fn steps_aside_for_anything_else() {
        let mut with_control = entry(1, "uid=a,dc=x", vec![]);
        with_control.ctrl = vec![ldap3_proto::control::LdapControl::SimplePagedResults { size: 0, cookie: vec![] }];
        let done = LdapMsg {
            msgid: 1,
            op: LdapOp::SearchResultDone(ldap3_proto::proto::LdapResult {
                code: ldap3_proto::proto::LdapResultCode::Success,
                matcheddn: String::new(),
                message: String::new(),
                referral: vec![],
            }),
            ctrl: Vec::new(),
        };
        for msg in [with_control, done] {
            assert_eq!(search_result_entry(&encoded(msg)), None);
        }
        let wire = encoded(entry(1, "uid=a,dc=x", vec![("uid", vec![b"a".to_vec()])]));
        // Truncated, trailing bytes, a negative id, invalid UTF-8 in the DN.
        assert_eq!(search_result_entry(&wire[..wire.len() - 1]), None);
        let mut longer = wire.clone();
        longer.push(0);
        assert_eq!(search_result_entry(&longer), None);
        let mut negative = wire.clone();
        negative[4] = 0x81;
        assert_eq!(search_result_entry(&negative), None);
        let mut bad_utf8 = wire.clone();
        let at = bad_utf8.windows(3).position(|w| w == b"uid").expect("the dn");
        bad_utf8[at] = 0xff;
        assert_eq!(search_result_entry(&bad_utf8), None);
    }
}
