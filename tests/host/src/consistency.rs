//! A store-consistency checker for the user keys of `docs/kv-schema.md`.
//!
//! The concurrency tests run it after their parallel requests complete: a
//! lost update (a stale document written back over a rename, an index key
//! deleted after another request re-created it) leaves the store in a state
//! no single request would. It checks:
//!
//! * every `user:<_id>` value parses as a JSON object whose `_id` is the key's;
//! * every index key (`username:<lower>`, `email:<lower>`,
//!   `ldap-id:<idAttribute>:<id>`) holds a JSON string `_id` whose document
//!   exists and agrees with the key: its `username` lower-cased is the key's,
//!   one of its `emails[].address` lower-cased is the key's, its
//!   `services.ldap` `idAttribute` (ASCII case-insensitive, as the component
//!   compares it) and `id` are the key's;
//! * the reverse: every document's username, each of its addresses and its
//!   LDAP id have an index key, and that key points back at the document.
//!
//! Every violation is reported, not just the first. Other keys (counters,
//! sessions, second-factor state, reports) are not looked at.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::Value;

use crate::Host;
use crate::kv::{DEFAULT_STORE, KvStore};

const USER: &str = "user:";
const USERNAME: &str = "username:";
const EMAIL: &str = "email:";
const LDAP_ID: &str = "ldap-id:";

/// One broken rule: the key it was found at and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The key that breaks the rule (a `user:` key for a missing index key).
    pub key: String,
    /// What is wrong, in words.
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

/// Checks the default store of `host`; the error lists every violation.
pub fn check_store(host: &Host) -> anyhow::Result<()> {
    check_kv(host.kv_store(), DEFAULT_STORE)
}

/// Checks the store labelled `store` in `kv`; the error lists every violation.
pub fn check_kv(kv: &KvStore, store: &str) -> anyhow::Result<()> {
    let found = violations(&snapshot(kv, store)?);
    if found.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = found.iter().map(|v| format!("  {v}")).collect();
    anyhow::bail!("the key-value store is inconsistent ({} violations):\n{}", found.len(), list.join("\n"))
}

/// Every user, username, e-mail and LDAP-id key of `store` with its value,
/// read in one statement (one consistent view of the database). On Redis:
/// the keys (`KEYS`), then their values (`MGET`), so check a quiet store.
pub fn snapshot(kv: &KvStore, store: &str) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    if let Some(redis) = kv.redis() {
        let prefixes = ["user:", "username:", "email:", "ldap-id:"];
        let keys: Vec<String> = redis.keys()?.into_iter().filter(|k| prefixes.iter().any(|p| k.starts_with(p))).collect();
        let mut out = BTreeMap::new();
        for chunk in keys.chunks(1000) {
            out.extend(redis.get_many(chunk)?.into_iter().filter_map(|(k, v)| Some((k, v?))));
        }
        return Ok(out);
    }
    kv.with_connection(|conn| {
        let mut stmt = conn.prepare(
            "SELECT key, value FROM spin_key_value WHERE store = ?1 AND \
             (key LIKE 'user:%' OR key LIKE 'username:%' OR key LIKE 'email:%' OR key LIKE 'ldap-id:%')",
        )?;
        let rows = stmt.query_map([store], |row| Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?)))?;
        Ok(rows.collect::<Result<BTreeMap<_, _>, _>>()?)
    })
}

/// What a document claims, for the index checks.
struct Doc<'a> {
    username: Option<&'a str>,
    emails: Vec<&'a str>,
    ldap: Option<(&'a str, &'a str)>,
}

/// The violations in `entries` (key → value; keys other than the user and
/// index keys are ignored), sorted by key.
pub fn violations(entries: &BTreeMap<String, Vec<u8>>) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut bad = |key: &str, problem: String| out.push(Violation { key: key.to_owned(), problem });

    // Parse the documents; `docs` holds those good enough to check indexes against.
    let mut parsed: BTreeMap<&str, Value> = BTreeMap::new();
    for (key, value) in entries {
        let Some(id) = key.strip_prefix(USER) else { continue };
        match serde_json::from_slice::<Value>(value) {
            Ok(Value::Object(map)) => match map.get("_id") {
                Some(Value::String(doc_id)) if doc_id == id => {
                    parsed.insert(id, Value::Object(map));
                }
                Some(other) => bad(key, format!("_id is {other}, not the key's {id:?}")),
                None => bad(key, "the document has no _id".to_owned()),
            },
            Ok(other) => bad(key, format!("the value is not a JSON object: {}", kind(&other))),
            Err(e) => bad(key, format!("the value is not JSON: {e}")),
        }
    }
    let mut docs: BTreeMap<&str, Doc<'_>> = BTreeMap::new();
    for (&id, doc) in &parsed {
        let key = format!("{USER}{id}");
        let username = match doc.get("username") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name.as_str()),
            Some(other) => {
                bad(&key, format!("username is not a string: {other}"));
                None
            }
        };
        let mut emails = Vec::new();
        match doc.get("emails") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for (i, entry) in list.iter().enumerate() {
                    match entry.get("address") {
                        Some(Value::String(address)) => emails.push(address.as_str()),
                        _ => bad(&key, format!("emails[{i}] has no string address: {entry}")),
                    }
                }
            }
            Some(other) => bad(&key, format!("emails is not an array: {other}")),
        }
        let ldap = match doc.pointer("/services/ldap") {
            None | Some(Value::Null) => None,
            Some(ldap) => match (ldap.get("idAttribute"), ldap.get("id")) {
                (Some(Value::String(attribute)), Some(Value::String(id))) => Some((attribute.as_str(), id.as_str())),
                _ => {
                    bad(&key, format!("services.ldap lacks a string idAttribute and id: {ldap}"));
                    None
                }
            },
        };
        docs.insert(id, Doc { username, emails, ldap });
    }

    // Index keys → documents. `ldap_keys` maps (lower-case attribute, id) to
    // the keys spelling it, for the reverse check.
    let mut ldap_keys: HashMap<(String, &str), Vec<&str>> = HashMap::new();
    let mut targets: HashMap<&str, String> = HashMap::new();
    for (key, value) in entries {
        let kind = if let Some(name) = key.strip_prefix(USERNAME) {
            Index::Username(name)
        } else if let Some(address) = key.strip_prefix(EMAIL) {
            Index::Email(address)
        } else if let Some(rest) = key.strip_prefix(LDAP_ID) {
            let Some((attribute, id)) = rest.split_once(':') else {
                bad(key, "an ldap-id key without <idAttribute>:<id>".to_owned());
                continue;
            };
            ldap_keys.entry((attribute.to_ascii_lowercase(), id)).or_default().push(key);
            Index::Ldap(attribute, id)
        } else {
            continue;
        };
        let target = match serde_json::from_slice::<Value>(value) {
            Ok(Value::String(target)) => target,
            Ok(other) => {
                bad(key, format!("the value is not a JSON string _id: {other}"));
                continue;
            }
            Err(e) => {
                bad(key, format!("the value is not JSON: {e}"));
                continue;
            }
        };
        let Some(doc) = docs.get(target.as_str()) else {
            let why = if entries.contains_key(&format!("{USER}{target}")) { "is not a valid document" } else { "does not exist" };
            bad(key, format!("points at user:{target}, which {why}"));
            continue;
        };
        match kind {
            Index::Username(name) => match doc.username {
                Some(u) if u.to_lowercase() == name => {}
                Some(u) => bad(key, format!("points at user:{target}, whose username is {u:?}")),
                None => bad(key, format!("points at user:{target}, which has no username")),
            },
            Index::Email(address) => {
                if !doc.emails.iter().any(|a| a.to_lowercase() == address) {
                    bad(key, format!("points at user:{target}, whose addresses are {:?}", doc.emails));
                }
            }
            Index::Ldap(attribute, id) => match doc.ldap {
                Some((a, i)) if a.eq_ignore_ascii_case(attribute) && i == id => {}
                Some((a, i)) => bad(key, format!("points at user:{target}, whose LDAP id is {a}:{i}")),
                None => bad(key, format!("points at user:{target}, which has no services.ldap")),
            },
        }
        targets.insert(key, target);
    }

    // Documents → index keys.
    for (&id, doc) in &docs {
        let key = format!("{USER}{id}");
        let mut expect = |index: String, what: String| match targets.get(index.as_str()) {
            Some(target) if target == id => {}
            Some(target) => bad(&key, format!("{what}, but {index} points at user:{target}")),
            None if entries.contains_key(&index) => {} // reported above as a malformed index key
            None => bad(&key, format!("{what}, but {index} is missing")),
        };
        if let Some(name) = doc.username {
            expect(format!("{USERNAME}{}", name.to_lowercase()), format!("username {name:?}"));
        }
        for address in &doc.emails {
            expect(format!("{EMAIL}{}", address.to_lowercase()), format!("address {address:?}"));
        }
        if let Some((attribute, ldap_id)) = doc.ldap {
            let what = format!("LDAP id {attribute}:{ldap_id}");
            // The key spells the attribute as the writer did; any ASCII case matches.
            let spelled = ldap_keys.get(&(attribute.to_ascii_lowercase(), ldap_id)).map(Vec::as_slice).unwrap_or_default();
            match spelled.iter().find(|k| targets.get(**k).is_some_and(|t| t == id)) {
                Some(_) => {}
                None => match spelled.first() {
                    Some(index) => expect((*index).to_owned(), what),
                    None => expect(format!("{LDAP_ID}{attribute}:{ldap_id}"), what),
                },
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.problem.cmp(&b.problem)));
    out
}

enum Index<'a> {
    Username(&'a str),
    Email(&'a str),
    Ldap(&'a str, &'a str),
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store(entries: &[(&str, Value)]) -> BTreeMap<String, Vec<u8>> {
        entries.iter().map(|(k, v)| ((*k).to_owned(), v.to_string().into_bytes())).collect()
    }

    fn alice() -> Value {
        json!({"_id": "A1", "username": "Alice", "emails": [{"address": "Alice@Example.org", "verified": true}, {"address": "a2@example.org"}],
               "services": {"ldap": {"idAttribute": "entryUUID", "id": "6162"}}})
    }

    /// A consistent store: alice (directory user, two addresses), a local
    /// admin, a user without username or addresses, and unrelated keys.
    fn consistent() -> BTreeMap<String, Vec<u8>> {
        let mut s = store(&[
            ("user:A1", alice()),
            ("username:alice", json!("A1")),
            ("email:alice@example.org", json!("A1")),
            ("email:a2@example.org", json!("A1")),
            ("ldap-id:entryUUID:6162", json!("A1")),
            ("user:R", json!({"_id": "R", "username": "root", "emails": [{"address": "root@example.org"}], "services": {"password": {}}})),
            ("username:root", json!("R")),
            ("email:root@example.org", json!("R")),
            ("user:N", json!({"_id": "N", "roles": []})),
            ("sync-report:last", json!({"outcome": "success"})),
            ("user-list:full", json!({"generation": "g"})),
        ]);
        s.insert("users-changed".into(), 3i64.to_le_bytes().to_vec());
        s
    }

    fn problems(s: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
        violations(s).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_consistent_store_passes() {
        assert_eq!(problems(&consistent()), Vec::<String>::new());
        assert!(violations(&BTreeMap::new()).is_empty());
        // The attribute's case in the key does not matter.
        let mut s = consistent();
        s.remove("ldap-id:entryUUID:6162");
        s.insert("ldap-id:entryuuid:6162".into(), b"\"A1\"".to_vec());
        assert_eq!(problems(&s), Vec::<String>::new());
    }

    #[test]
    fn broken_documents_are_reported() {
        let mut s = consistent();
        s.insert("user:X".into(), b"{not json".to_vec());
        s.insert("user:Y".into(), b"[1]".to_vec());
        s.insert("user:Z".into(), br#"{"_id":"other"}"#.to_vec());
        s.insert("user:W".into(), br#"{"name":"no id"}"#.to_vec());
        let got = problems(&s);
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(got[0].starts_with("user:W: the document has no _id"), "{got:#?}");
        assert!(got[1].starts_with("user:X: the value is not JSON"), "{got:#?}");
        assert_eq!(got[2], "user:Y: the value is not a JSON object: an array");
        assert_eq!(got[3], r#"user:Z: _id is "other", not the key's "Z""#);
    }

    #[test]
    fn malformed_fields_of_a_document_are_reported() {
        let mut s = consistent();
        s.insert(
            "user:B".into(),
            json!({"_id": "B", "username": 7, "emails": [{"verified": true}], "services": {"ldap": {"id": "x"}}}).to_string().into_bytes(),
        );
        s.insert("user:C".into(), json!({"_id": "C", "emails": "c@example.org"}).to_string().into_bytes());
        assert_eq!(
            problems(&s),
            [
                "user:B: emails[0] has no string address: {\"verified\":true}",
                "user:B: services.ldap lacks a string idAttribute and id: {\"id\":\"x\"}",
                "user:B: username is not a string: 7",
                "user:C: emails is not an array: \"c@example.org\"",
            ]
        );
    }

    #[test]
    fn index_keys_pointing_nowhere_or_at_the_wrong_document_are_reported() {
        let mut s = consistent();
        s.extend(store(&[
            ("username:ghost", json!("G")),
            ("email:gone@example.org", json!("G")),
            ("ldap-id:uid:676f6e65", json!("G")),
            ("username:bad", json!(42)),
        ]));
        s.insert("email:junk@example.org".into(), b"not json".to_vec());
        s.insert("ldap-id:nocolon".into(), b"\"A1\"".to_vec());
        // An index key pointing at a document that does not parse.
        s.insert("user:X".into(), b"{".to_vec());
        s.insert("username:x".into(), b"\"X\"".to_vec());
        let got = problems(&s);
        assert!(got.contains(&"username:ghost: points at user:G, which does not exist".to_owned()), "{got:#?}");
        assert!(got.contains(&"email:gone@example.org: points at user:G, which does not exist".to_owned()), "{got:#?}");
        assert!(got.contains(&"ldap-id:uid:676f6e65: points at user:G, which does not exist".to_owned()), "{got:#?}");
        assert!(got.contains(&"username:bad: the value is not a JSON string _id: 42".to_owned()), "{got:#?}");
        assert!(got.iter().any(|p| p.starts_with("email:junk@example.org: the value is not JSON")), "{got:#?}");
        assert!(got.contains(&"ldap-id:nocolon: an ldap-id key without <idAttribute>:<id>".to_owned()), "{got:#?}");
        assert!(got.contains(&"username:x: points at user:X, which is not a valid document".to_owned()), "{got:#?}");
        assert_eq!(got.len(), 8, "{got:#?}");
    }

    #[test]
    fn index_keys_that_disagree_with_their_document_are_reported() {
        let mut s = consistent();
        // A stale username key after a rename, an address the document
        // dropped, an LDAP id of another entry, and a user without username.
        s.extend(store(&[
            ("username:alice-old", json!("A1")),
            ("email:old@example.org", json!("A1")),
            ("ldap-id:entryUUID:ffff", json!("A1")),
            ("ldap-id:uid:726f6f74", json!("R")),
            ("username:nobody", json!("N")),
        ]));
        assert_eq!(
            problems(&s),
            [
                r#"email:old@example.org: points at user:A1, whose addresses are ["Alice@Example.org", "a2@example.org"]"#,
                "ldap-id:entryUUID:ffff: points at user:A1, whose LDAP id is entryUUID:6162",
                "ldap-id:uid:726f6f74: points at user:R, which has no services.ldap",
                r#"username:alice-old: points at user:A1, whose username is "Alice""#,
                "username:nobody: points at user:N, which has no username",
            ]
        );
    }

    #[test]
    fn documents_missing_their_index_keys_are_reported() {
        let mut s = consistent();
        s.remove("username:alice");
        s.remove("email:a2@example.org");
        s.remove("ldap-id:entryUUID:6162");
        assert_eq!(
            problems(&s),
            [
                r#"user:A1: LDAP id entryUUID:6162, but ldap-id:entryUUID:6162 is missing"#,
                r#"user:A1: address "a2@example.org", but email:a2@example.org is missing"#,
                r#"user:A1: username "Alice", but username:alice is missing"#,
            ]
        );
    }

    #[test]
    fn two_documents_claiming_one_index_key_are_reported() {
        let mut s = consistent();
        // A second document with alice's username, address and LDAP id: the
        // keys point at A1, so A2 is the one reported.
        let mut twin = alice();
        twin["_id"] = json!("A2");
        s.insert("user:A2".into(), twin.to_string().into_bytes());
        assert_eq!(
            problems(&s),
            [
                r#"user:A2: LDAP id entryUUID:6162, but ldap-id:entryUUID:6162 points at user:A1"#,
                r#"user:A2: address "Alice@Example.org", but email:alice@example.org points at user:A1"#,
                r#"user:A2: address "a2@example.org", but email:a2@example.org points at user:A1"#,
                r#"user:A2: username "Alice", but username:alice points at user:A1"#,
            ]
        );
    }

    #[test]
    fn check_kv_reads_the_store_and_lists_every_violation() -> anyhow::Result<()> {
        let kv = KvStore::open_in_memory()?;
        for (k, v) in consistent() {
            kv.set(DEFAULT_STORE, &k, &v)?;
        }
        // Another label is not looked at.
        kv.set("other", "username:zed", b"\"nobody\"")?;
        check_kv(&kv, DEFAULT_STORE)?;
        kv.delete(DEFAULT_STORE, "username:root")?;
        kv.set(DEFAULT_STORE, "email:stale@example.org", b"\"R\"")?;
        let err = check_kv(&kv, DEFAULT_STORE).expect_err("two violations").to_string();
        assert_eq!(
            err,
            "the key-value store is inconsistent (2 violations):\n  \
             email:stale@example.org: points at user:R, whose addresses are [\"root@example.org\"]\n  \
             user:R: username \"root\", but username:root is missing"
        );
        Ok(())
    }
}
