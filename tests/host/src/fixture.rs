//! What the end-to-end tests (`tests/e2e`) and `ldap-sync-bench` both need to
//! drive the component: secrets hashed the way the component stores them,
//! user documents seeded straight into the store, the local admin that calls
//! `ldap.syncNow`, variable overrides, and LDIF for a generated directory laid
//! out like the [demo directory](crate::demo). One copy, so that the bench
//! measures the same setup the tests check.
//!
//! Nothing here asserts or panics: errors are returned, the bench reports
//! them and the tests `expect` them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::Host;
use crate::demo::{DEMO_PEOPLE_BASE, DEMO_SUFFIX, DEMO_SVC_DN, DEMO_SVC_PASSWORD};

/// The route that runs a sync (`POST`).
pub const SYNC_NOW_PATH: &str = "/api/v1/ldap.syncNow";

/// The exact body of `ldap.syncNow` when the sync ran.
pub const SYNC_IN_PROGRESS: &str = r#"{"message":"Sync_in_progress","success":true}"#;

/// Lower-case hex SHA-256 of `text`: the `password` second factor a client
/// sends as `x-2fa-code`, and what Meteor's bcrypt hash is taken of.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().fold(String::with_capacity(64), |mut s, b| {
        // Writing into a String cannot fail.
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A login token as the component stores it (Meteor's `hashedToken`):
/// standard base64 of its SHA-256.
pub fn hash_token(token: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(token.as_bytes()))
}

/// `services.password.bcrypt` for `password`: bcrypt of its SHA-256 hex, as
/// Meteor stores it. Cost 4, bcrypt's lowest, keeps seeding fast; the
/// component checks whatever cost the hash names.
pub fn bcrypt_of_password(password: &str) -> anyhow::Result<String> {
    bcrypt::hash(sha256_hex(password), 4).context("bcrypt")
}

/// When the seeded login tokens were issued: 2027-01-03, twelve days before
/// the e2e tests' clock (`T0`, 2027-01-15) and after any real clock that runs
/// the bench, so they are inside `accounts_loginexpiration`'s 90 days for both.
pub const ISSUED_AT_MS: i64 = 1_799_000_000_000;

/// A local user document (`user:<id>`) with `services` plus one login token,
/// `login_token`, stored hashed (`services.resume.loginTokens`).
pub fn user_doc(id: &str, username: Option<&str>, roles: &[&str], services: Value, login_token: &str) -> Value {
    let mut services = services;
    services["resume"] = json!({"loginTokens": [{"when": {"$date": ISSUED_AT_MS}, "hashedToken": hash_token(login_token)}]});
    let mut doc = json!({"_id": id, "roles": roles, "services": services, "type": "user", "active": true});
    if let Some(name) = username {
        doc["username"] = json!(name);
    }
    doc
}

/// A local admin with a password (its second factor is the password's
/// SHA-256) and one login token, seeded straight into the store: the caller
/// of `ldap.syncNow` in the sync tests and the bench.
#[derive(Clone, Copy)]
pub struct LocalAdmin {
    /// `_id`, also the username.
    pub id: &'static str,
    /// The password.
    pub password: &'static str,
    /// The login token (`X-Auth-Token`).
    pub login_token: &'static str,
}

impl LocalAdmin {
    /// Writes the admin's document (`user:<id>`, roles `admin`) to the store.
    pub fn seed(&self, host: &Host) -> anyhow::Result<()> {
        let services = json!({"password": {"bcrypt": bcrypt_of_password(self.password)?}});
        let doc = user_doc(self.id, Some(self.id), &["admin"], services, self.login_token);
        host.kv_set(&format!("user:{}", self.id), doc.to_string().as_bytes())
    }

    /// `POST /api/v1/ldap.syncNow` as this admin, with the password second
    /// factor.
    pub fn sync_now_request(&self) -> anyhow::Result<http::Request<Vec<u8>>> {
        http::Request::post(SYNC_NOW_PATH)
            .header("x-user-id", self.id)
            .header("x-auth-token", self.login_token)
            .header("x-2fa-code", sha256_hex(self.password))
            .body(Vec::new())
            .context("building the ldap.syncNow request")
    }
}

/// Variable overrides as [`crate::HostOptions::variables`] takes them; a
/// name given twice keeps its last value.
pub fn variables<'a, V: AsRef<str>>(pairs: impl IntoIterator<Item = (&'a str, V)>) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(name, value)| (name.to_owned(), value.as_ref().to_owned())).collect()
}

/// The top of a generated directory laid out like the demo one, without
/// users: the suffix, the service account ([`DEMO_SVC_DN`], so that
/// [`crate::demo::demo_variables`] bind with it) and `ou=people`.
pub fn directory_root_ldif() -> String {
    format!(
        "dn: {DEMO_SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
         dn: {DEMO_SVC_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: svc\n\
         userPassword: {DEMO_SVC_PASSWORD}\n\n\
         dn: {DEMO_PEOPLE_BASE}\nobjectClass: organizationalUnit\nou: people\n\n"
    )
}

/// An `inetOrgPerson` entry `<rdn>,ou=people,...` with one `mail` per
/// address. Values go in as they are: no RFC 2849 base64 (slapadd takes
/// UTF-8 as it is; `demo_ldif` encodes for the tools that do not).
pub fn person_ldif(rdn: &str, uid: &str, cn: &str, sn: &str, mails: &[&str]) -> String {
    let mut out = format!("dn: {rdn},{DEMO_PEOPLE_BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\nsn: {sn}\n");
    for m in mails {
        let _ = writeln!(out, "mail: {m}");
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_the_stored_forms() {
        assert_eq!(sha256_hex("secret"), "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b");
        assert_eq!(hash_token("secret"), "K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=");
        let hash = bcrypt_of_password("secret").expect("bcrypt");
        assert!(hash.starts_with("$2b$04$"), "{hash}");
        assert!(bcrypt::verify(sha256_hex("secret"), &hash).expect("verify"));
    }

    #[test]
    fn user_doc_keeps_services_and_adds_the_hashed_token() {
        let doc = user_doc("u1", Some("ann"), &["user"], json!({"x": 1}), "tok");
        assert_eq!(
            doc,
            json!({"_id": "u1", "roles": ["user"], "type": "user", "active": true, "username": "ann",
                   "services": {"x": 1, "resume": {"loginTokens": [{"when": {"$date": ISSUED_AT_MS}, "hashedToken": hash_token("tok")}]}}})
        );
        assert!(user_doc("u2", None, &[], json!({}), "t").get("username").is_none());
    }

    #[test]
    fn sync_now_request_carries_the_admins_credentials() {
        let admin = LocalAdmin { id: "admin", password: "secret", login_token: "tok-admin" };
        let req = admin.sync_now_request().expect("request");
        assert_eq!((req.method().as_str(), req.uri().path()), ("POST", SYNC_NOW_PATH));
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header("x-user-id"), Some("admin"));
        assert_eq!(header("x-auth-token"), Some("tok-admin"));
        assert_eq!(header("x-2fa-code"), Some(sha256_hex("secret").as_str()));
    }

    #[test]
    fn variables_keep_the_last_value() {
        let vars = variables([("a", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(vars, BTreeMap::from([("a".into(), "3".into()), ("b".into(), "2".into())]));
    }

    #[test]
    fn person_ldif_has_one_mail_line_per_address() {
        assert_eq!(
            person_ldif("uid=x", "x", "X Y", "Y", &["a@e.org", "b@e.org"]),
            "dn: uid=x,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: x\ncn: X Y\n\
             sn: Y\nmail: a@e.org\nmail: b@e.org\n\n"
        );
        assert!(directory_root_ldif().ends_with("ou: people\n\n"));
    }
}
