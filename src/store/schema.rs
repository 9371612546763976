//! The JSON shapes stored in the key-value store (spec §4). Unknown fields
//! are kept (`extra`) so that rewriting a document never drops what another
//! component wrote.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ids::UserId;

/// A point in time, stored as Meteor's EJSON date: `{"$date": <ms since epoch>}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Date {
    #[serde(rename = "$date")]
    pub millis: i64,
}

impl Date {
    /// ISO 8601 in UTC with milliseconds, as JavaScript's `Date.toJSON`
    /// (what Rocket.Chat's REST responses show).
    pub fn iso(self) -> String {
        let secs = self.millis.div_euclid(1000);
        let ms = self.millis.rem_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
    }
}

/// A user document (`users` collection shape, spec §4.1).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserDoc {
    #[serde(rename = "_id")]
    pub id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<Email>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default)]
    pub services: Services,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One e-mail address of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub address: String,
    pub verified: bool,
}

/// `services`: login methods and secrets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Services {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Password>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<Totp>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `services.resume`: login tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Resume {
    #[serde(rename = "loginTokens", default)]
    pub login_tokens: Vec<LoginToken>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One login token; only its hash is stored (spec §4.2).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct LoginToken {
    /// base64(SHA-256(token)).
    #[serde(rename = "hashedToken")]
    pub hashed_token: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for LoginToken {
    // Hand-written: a hashed token is still a credential for anyone with store access.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginToken").field("hashed_token", &"<redacted>").finish_non_exhaustive()
    }
}

/// `services.password`: bcrypt of the lower-case SHA-256 hex of the password (spec §4.4).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Password {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bcrypt: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// `services.totp` (spec §4.3).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Totp {
    #[serde(default)]
    pub enabled: bool,
    /// Base32 secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// SHA-256 lower-case hex of each unused backup code.
    #[serde(rename = "hashedBackup", default, skip_serializing_if = "Option::is_none")]
    pub hashed_backup: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Totp").field("enabled", &self.enabled).finish_non_exhaustive()
    }
}

/// A permission record (`rocketchat_permissions`, spec §4.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Permission {
    #[serde(rename = "_id")]
    pub id: String,
    pub roles: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Per-user second-factor lock (`two-factor:<_id>`): what upstream does not
/// keep. The counts that must hold under parallel requests are counters of
/// their own (`two-factor-attempts:`, `totp-step:`, `backup-code-used:`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoFactorGuard {
    /// While in the future, every code is refused with `totp-max-attempts`.
    #[serde(rename = "lockedUntil", default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<Date>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One login session (`login-token:<hashedToken>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginSession {
    #[serde(rename = "userId")]
    pub user_id: UserId,
    /// When the token was issued; it expires `accounts_loginexpiration` days later.
    pub when: Date,
}
