//! What REST responses show of a user document: upstream's projections,
//! with dates as ISO strings and never a secret (no bcrypt hash, login
//! token, TOTP secret or backup code).

use serde_json::{Map, Value, json};

use crate::store::schema::{Date, UserDoc};

/// `getBaseUserFields()` (7.x): the fields `me` and login's `me` may show.
const BASE_USER_FIELDS: &[&str] = &[
    "_id",
    "name",
    "username",
    "nickname",
    "emails",
    "status",
    "statusDefault",
    "statusText",
    "statusConnection",
    "bio",
    "avatarOrigin",
    "utcOffset",
    "language",
    "settings",
    "enableAutoAway",
    "idleTimeLimit",
    "roles",
    "active",
    "defaultRoom",
    "customFields",
    "requirePasswordChange",
    "requirePasswordChangeReason",
    "statusLivechat",
    "banners",
    "_updatedAt",
    "avatarETag",
];

/// The document as JSON in its stored field order.
pub fn document(user: &UserDoc) -> Map<String, Value> {
    match serde_json::to_value(user) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// Keeps `fields` of `doc` (in document order) and turns EJSON dates into ISO strings.
pub fn project(doc: &Map<String, Value>, fields: &[&str]) -> Map<String, Value> {
    doc.iter().filter(|(k, _)| fields.contains(&k.as_str())).map(|(k, v)| (k.clone(), rest_dates(v.clone()))).collect()
}

/// `{"$date": ms}` → `"2026-11-28T10:00:00.000Z"`, recursively.
pub fn rest_dates(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            if let (1, Some(ms)) = (map.len(), map.get("$date").and_then(Value::as_i64)) {
                return Value::String(Date { millis: ms }.iso());
            }
            Value::Object(map.into_iter().map(|(k, v)| (k, rest_dates(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(rest_dates).collect()),
        other => other,
    }
}

/// `getUserInfo(user)`: the base fields plus `email` (first verified
/// address), `settings`, `avatarUrl`, `isOAuthUser`, and `services` cut
/// down to flags. `totp_enabled` is the user's TOTP state (kept apart from
/// the document). `origin` is the site URL (`scheme://host`).
pub fn me(user: &UserDoc, totp_enabled: bool, origin: &str) -> Map<String, Value> {
    let mut out = project(&document(user), BASE_USER_FIELDS);
    if let Some(email) = user.emails.iter().find(|e| e.verified) {
        out.insert("email".to_owned(), json!(email.address));
    }
    let preferences = user.extra.get("settings").and_then(|s| s.get("preferences")).cloned().unwrap_or_else(|| json!({}));
    out.insert("settings".to_owned(), json!({"profile": {}, "preferences": preferences}));
    out.insert("avatarUrl".to_owned(), json!(format!("{origin}/avatar/{}", user.username.as_deref().unwrap_or_default())));
    out.insert("isOAuthUser".to_owned(), json!(false));
    let mut services = Map::new();
    if totp_enabled {
        services.insert("totp".to_owned(), json!({"enabled": true}));
    }
    let has_password = user.services.password.as_ref().is_some_and(|p| p.bcrypt.is_some());
    services.insert("password".to_owned(), json!({"exists": has_password}));
    out.insert("services".to_owned(), Value::Object(services));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_become_iso_strings() {
        assert_eq!(Date { millis: 0 }.iso(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Date { millis: 1_764_324_000_123 }.iso(), "2025-11-28T10:00:00.123Z");
        assert_eq!(Date { millis: 951_782_400_000 }.iso(), "2000-02-29T00:00:00.000Z");
        assert_eq!(rest_dates(json!({"a": [{"$date": 0}]})), json!({"a": ["1970-01-01T00:00:00.000Z"]}));
    }

    #[test]
    fn me_never_shows_secrets() {
        let doc: UserDoc = serde_json::from_value(json!({
            "_id": "u1", "username": "ann", "name": "Ann", "roles": ["user"], "active": true,
            "emails": [{"address": "a@x.org", "verified": false}, {"address": "b@x.org", "verified": true}],
            "services": {"password": {"bcrypt": "$2b$10$secret"}, "resume": {"loginTokens": [{"hashedToken": "h"}]},
                         "totp": {"enabled": true, "secret": "S3CR3T", "hashedBackup": ["x"]}, "ldap": {"id": "1"}},
            "createdAt": {"$date": 0}, "_updatedAt": {"$date": 0}
        }))
        .expect("valid");
        let view = Value::Object(me(&doc, true, "http://h"));
        let text = view.to_string();
        for secret in ["secret", "S3CR3T", "hashedToken", "hashedBackup", "createdAt"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(view["email"], json!("b@x.org"));
        assert_eq!(view["services"], json!({"totp": {"enabled": true}, "password": {"exists": true}}));
        assert_eq!(view["_updatedAt"], json!("1970-01-01T00:00:00.000Z"));
        assert_eq!(view["avatarUrl"], json!("http://h/avatar/ann"));
    }
}
