//! User avatars (`avatar:<_id>`): the image a directory entry carries
//! (`ldap_avatar_field`, `thumbnailPhoto`, `jpegPhoto`), its content type
//! and upstream's ETag. The user document holds `avatarOrigin` and
//! `avatarETag`; this key holds the bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::ids::UserId;
use super::schema::Date;
use super::{Batch, KvStore, StoreError, get_json, keys};

/// Largest image stored, in bytes; a larger one is skipped with a reason.
pub const MAX_AVATAR_BYTES: usize = 1024 * 1024;

/// An avatar as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Avatar {
    /// Detected from the bytes (upstream assumes `image/jpeg`).
    pub content_type: String,
    /// Upstream's `avatarETag` (see [`etag`]).
    pub etag: String,
    pub uploaded_at: Date,
    pub size: u64,
    /// The image, base64.
    pub data: String,
}

impl Avatar {
    /// The avatar of `bytes`, taken at `now`.
    pub fn new(bytes: &[u8], now: Date) -> Self {
        Self {
            content_type: content_type(bytes).to_owned(),
            etag: etag(bytes),
            uploaded_at: now,
            size: bytes.len() as u64,
            data: BASE64.encode(bytes),
        }
    }

    /// The image's bytes; `None` when the stored base64 is damaged.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        BASE64.decode(&self.data).ok()
    }
}

/// Upstream's `avatarETag`: SHA-256, in hex, of the bytes read as UTF-8
/// text (invalid sequences become U+FFFD, as Node's `buffer.toString()`).
pub fn etag(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let text = String::from_utf8_lossy(bytes);
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The image type by its magic bytes; JPEG (upstream's assumption) otherwise.
pub fn content_type(bytes: &[u8]) -> &'static str {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => "image/png",
        [b'G', b'I', b'F', b'8', ..] => "image/gif",
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => "image/webp",
        [b'B', b'M', ..] => "image/bmp",
        _ => "image/jpeg",
    }
}

/// The stored avatar of `id`, if any.
pub fn avatar(store: &dyn KvStore, id: &UserId) -> Result<Option<Avatar>, StoreError> {
    get_json(store, &keys::avatar(id))
}

impl Batch {
    /// Stages `avatar` as `id`'s.
    pub fn put_avatar(&mut self, id: &UserId, avatar: &Avatar) -> Result<(), StoreError> {
        self.set(keys::avatar(id), avatar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_etag_hashes_the_bytes_as_lossy_utf8_text() {
        // "abc": plain SHA-256.
        assert_eq!(etag(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        // 0xff is invalid UTF-8: hashed as U+FFFD (ef bf bd), so two different invalid bytes hash alike, as upstream's do.
        assert_eq!(etag(&[0xff]), etag(&[0xfe]));
        assert_eq!(etag(&[0xff]), etag("\u{fffd}".as_bytes()));
    }

    #[test]
    fn types_are_detected_from_the_bytes() {
        assert_eq!(content_type(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(content_type(b"GIF89a"), "image/gif");
        assert_eq!(content_type(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(content_type(b"\xff\xd8\xff\xe0"), "image/jpeg");
        assert_eq!(content_type(b"??"), "image/jpeg");
        let a = Avatar::new(b"\x89PNG", Date { millis: 5 });
        assert_eq!((a.size, a.bytes().as_deref()), (4, Some(&b"\x89PNG"[..])));
    }
}
