//! BER framing: find where one LDAPMessage ends, and hand ldap3_proto's
//! codec exactly one whole frame at a time.
//!
//! Why not feed the socket buffer straight to `LdapCodec::decode`: it checks
//! the *whole* buffer against its limit before parsing, and re-parses an
//! incomplete frame from the start on every call, which is quadratic for
//! large entries (`shared/notes/ldap3_proto.md` §2).

use bytes::BytesMut;
use ldap3_proto::{LdapCodec, LdapMsg};
use tokio_util::codec::{Decoder, Encoder};

use super::error::LdapError;

/// Largest LDAPMessage accepted. Entries with photos or groups with 100,000
/// members run to several MB; 64 MiB leaves room while bounding memory.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// Deepest BER nesting accepted; filters and controls in responses are shallow.
const MAX_BER_DEPTH: usize = 64;

/// The length of the first complete frame in `buf`, `Ok(None)` when more
/// bytes are needed.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, LdapError> {
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    // RFC 4511 §4.1.1: an LDAPMessage is a universal constructed SEQUENCE.
    if tag != 0x30 {
        return Err(LdapError::Protocol(format!("expected a SEQUENCE (0x30), got tag 0x{tag:02x}")));
    }
    let Some(&first_len) = buf.get(1) else {
        return Ok(None);
    };
    let (header, content) = if first_len < 0x80 {
        (2, usize::from(first_len))
    } else {
        let count = usize::from(first_len & 0x7f);
        // RFC 4511 §5.1: only the definite form is allowed; 4 length bytes cover 4 GiB.
        if count == 0 || count > 4 {
            return Err(LdapError::Protocol(format!("unsupported BER length form 0x{first_len:02x}")));
        }
        let Some(bytes) = buf.get(2..2 + count) else {
            return Ok(None);
        };
        (2 + count, bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)))
    };
    if content > MAX_MESSAGE_BYTES {
        return Err(LdapError::Protocol(format!("message of {content} bytes exceeds the limit of {MAX_MESSAGE_BYTES}")));
    }
    let total = header + content;
    Ok((buf.len() >= total).then_some(total))
}

/// Encodes and decodes single frames.
pub struct Codec {
    inner: LdapCodec,
}

impl Default for Codec {
    fn default() -> Self {
        Self { inner: LdapCodec::new(Some(MAX_MESSAGE_BYTES), Some(MAX_BER_DEPTH)) }
    }
}

impl Codec {
    /// Appends the encoding of `msg` to `out`.
    pub fn encode(&mut self, msg: LdapMsg, out: &mut BytesMut) -> Result<(), LdapError> {
        self.inner.encode(msg, out).map_err(|e| LdapError::Protocol(e.to_string()))
    }

    /// Takes one whole message off the front of `buf`, if one is complete.
    /// Plain search result entries take the [`fast`] path.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<LdapMsg>, LdapError> {
        let Some(len) = frame_len(buf)? else {
            return Ok(None);
        };
        let mut frame = buf.split_to(len);
        if let Some(msg) = fast::search_result_entry(&frame) {
            return Ok(Some(msg));
        }
        self.decode_frame(&mut frame)
    }

    /// One whole frame through ldap3_proto's decoder alone.
    pub fn decode_frame(&mut self, frame: &mut BytesMut) -> Result<Option<LdapMsg>, LdapError> {
        match self.inner.decode(frame) {
            Ok(Some(msg)) => Ok(Some(msg)),
            Ok(None) => Err(LdapError::Protocol("a complete frame did not decode".to_owned())),
            Err(e) => Err(LdapError::Protocol(e.to_string())),
        }
    }
}

pub mod fast;
#[cfg(test)]
mod tests;
