//! Code checks of the second factor, with time passed in: RFC 6238 TOTP
//! (what `speakeasy` does upstream), backup codes, and the password fallback.
//! Every comparison of a secret-derived value is constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};

/// RFC 6238 step used by Rocket.Chat (speakeasy's default).
const STEP_SECONDS: u64 = 30;
/// Digits of a TOTP code.
const DIGITS: usize = 6;
/// Length that marks a submitted code as a backup code (spec §1.6).
pub const BACKUP_CODE_LEN: usize = 8;

/// The time step (`unix seconds / 30`) containing `unix_seconds`.
pub fn step_of(unix_seconds: u64) -> u64 {
    unix_seconds / STEP_SECONDS
}

/// The step within `now ± window` whose code equals `code`, if any.
///
/// `secret` is upstream's base32 secret (any case, padding allowed). A
/// secret that does not decode never matches.
pub fn matching_step(secret: &str, code: &str, unix_seconds: u64, window: u8) -> Option<u64> {
    let cleaned: String = secret.trim().trim_end_matches('=').to_uppercase();
    let bytes = Secret::Encoded(cleaned).to_bytes().ok()?;
    // new_unchecked: speakeasy secrets may be shorter than the 128 bits `new` insists on.
    let totp = TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 0, STEP_SECONDS, bytes);
    let now = step_of(unix_seconds);
    let window = u64::from(window);
    let mut found = None;
    // Check every step, not just until the first match, so timing does not tell which one matched.
    for step in now.saturating_sub(window)..=now + window {
        let expected = totp.generate(step * STEP_SECONDS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = found.or(Some(step));
        }
    }
    found
}

/// SHA-256 lower-case hex, as upstream stores backup codes.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The index of the backup code `code` in `hashed` (stored SHA-256 hex list).
pub fn backup_code_index(hashed: &[String], code: &str) -> Option<usize> {
    let presented = sha256_hex(code);
    let mut found = None;
    for (i, stored) in hashed.iter().enumerate() {
        if bool::from(stored.as_bytes().ct_eq(presented.as_bytes())) {
            found = found.or(Some(i));
        }
    }
    found
}

/// The password fallback: `code` is the SHA-256 hex of the password, which
/// upstream lower-cases and compares with bcrypt against `services.password.bcrypt`.
pub fn password_matches(code: &str, bcrypt_hash: &str) -> bool {
    bcrypt::verify(code.to_lowercase(), bcrypt_hash).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B uses the ASCII secret "12345678901234567890".
    const RFC_SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn rfc6238_vectors_sha1_six_digits() {
        // Appendix B values (8 digits) truncated to 6 are the low 6 digits.
        for (time, code) in [(59, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924"), (2_000_000_000, "279037")] {
            assert_eq!(matching_step(RFC_SECRET_B32, code, time, 0), Some(step_of(time)), "time {time}");
        }
    }

    #[test]
    fn window_accepts_neighbours_only() {
        let code_at_59 = "287082";
        assert_eq!(matching_step(RFC_SECRET_B32, code_at_59, 59 + 30, 1), Some(1));
        assert_eq!(matching_step(RFC_SECRET_B32, code_at_59, 59 + 30, 0), None);
        assert_eq!(matching_step(RFC_SECRET_B32, code_at_59, 59 + 60, 1), None);
    }

    #[test]
    fn lower_case_and_padded_secrets_decode() {
        assert_eq!(matching_step("gezdgnbvgy3tqojqgezdgnbvgy3tqojq====", "287082", 59, 0), Some(1));
        assert_eq!(matching_step("not base32 !", "287082", 59, 0), None);
    }

    #[test]
    fn backup_codes_by_hash() {
        let hashed = vec![sha256_hex("abcdefgh"), sha256_hex("ABCDEFGH")];
        assert_eq!(backup_code_index(&hashed, "ABCDEFGH"), Some(1));
        assert_eq!(backup_code_index(&hashed, "abcdefgx"), None);
    }

    #[test]
    fn password_fallback_lower_cases_the_digest() {
        let digest = sha256_hex("secret");
        let hash = bcrypt::hash(&digest, 4).expect("bcrypt hashes a short input");
        assert!(password_matches(&digest.to_uppercase(), &hash));
        assert!(!password_matches(&sha256_hex("other"), &hash));
        assert!(!password_matches(&digest, "not a bcrypt hash"));
    }
}
