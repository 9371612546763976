//! Stored vs incoming → what to write, for one page of entries. Pure: the
//! caller loads the index keys and documents first and stores the result.
//!
//! Rules are upstream's (spec §3.6–§3.7): match by LDAP id, then (with
//! `ldap_merge_existing_users`) by e-mail, then by case-insensitive
//! username among non-LDAP users; create or update; keep roles, `createdAt`
//! and unknown fields; carry the verified flag of known addresses over.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::settings::{Accounts, SyncSwitches};
use crate::store::keys;
use crate::store::schema::{Date, Email, UserDoc, derived_id};

use super::map::{EntryProblem, RcUser};
use super::report::SyncReport;

/// What the plan needs beyond the entries.
pub struct PlanContext<'a> {
    pub switches: &'a SyncSwitches,
    pub accounts: &'a Accounts,
    pub merge_existing_users: bool,
    pub now: Date,
}

/// The index keys (`username:`, `email:`, `ldap-id:`) the page touches,
/// with their stored `_id`s, and the documents those ids name.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Index key → owner `_id`; `None` = free. Updated as the plan claims keys.
    pub index: HashMap<String, Option<String>>,
    pub docs: HashMap<String, UserDoc>,
}

/// Writes for one page.
#[derive(Debug, Default)]
pub struct PagePlan {
    pub docs: Vec<UserDoc>,
    pub index_changes: HashMap<String, Option<String>>,
}

/// Index keys to read before planning these users.
pub fn keys_to_load(users: &[RcUser]) -> Vec<String> {
    let mut wanted: Vec<String> = Vec::new();
    for u in users {
        wanted.push(keys::ldap_id(&u.id_attribute, &u.id));
        wanted.push(keys::username(&u.username));
        wanted.extend(u.emails.iter().map(|e| keys::email(e)));
    }
    wanted.sort();
    wanted.dedup();
    wanted
}

/// Plans the page; every entry ends up counted in `report`.
pub fn plan_page(users: Vec<RcUser>, loaded: &mut Loaded, ctx: &mut PlanContext<'_>, report: &mut SyncReport) -> PagePlan {
    let mut plan = PagePlan::default();
    for user in users {
        match plan_one(&user, loaded, ctx, &mut plan) {
            Ok(Outcome::Created) => report.created += 1,
            Ok(Outcome::Updated) => report.updated += 1,
            Ok(Outcome::Unchanged) => report.unchanged += 1,
            Ok(Outcome::Skipped(reason)) => report.skip(&user.dn, reason),
            Err(problem) => report.fail(&user.dn, &problem.to_string()),
        }
    }
    plan
}

enum Outcome {
    Created,
    Updated,
    Unchanged,
    Skipped(&'static str),
}

fn plan_one(user: &RcUser, loaded: &mut Loaded, ctx: &mut PlanContext<'_>, plan: &mut PagePlan) -> Result<Outcome, EntryProblem> {
    let existing = find_existing(user, loaded, ctx.merge_existing_users);
    let Some(before) = existing else {
        if !ctx.switches.import_new_users {
            return Ok(Outcome::Skipped("importing new users is disabled (ldap_background_sync_import_new_users)"));
        }
        check_free(loaded, &keys::username(&user.username), None).map_err(|()| EntryProblem::UsernameTaken(user.username.clone()))?;
        for email in &user.emails {
            check_free(loaded, &keys::email(email), None).map_err(|()| EntryProblem::EmailTaken(email.clone()))?;
        }
        let doc = new_doc(user, ctx);
        claim(loaded, plan, &doc, None);
        plan.docs.push(doc);
        return Ok(Outcome::Created);
    };
    if !ctx.switches.keep_existing_updated {
        return Ok(Outcome::Skipped("updating existing users is disabled (ldap_background_sync_keep_existant_users_updated)"));
    }
    for email in &user.emails {
        check_free(loaded, &keys::email(email), Some(&before.id)).map_err(|()| EntryProblem::EmailTaken(email.clone()))?;
    }
    let after = updated_doc(&before, user, loaded, ctx);
    if same_content(&before, &after) {
        // Nothing to write, unless an index key of the user went missing.
        for key in index_keys(&before) {
            if loaded.index.get(&key).is_some_and(Option::is_none) {
                set_index(loaded, plan, key, Some(before.id.clone()));
            }
        }
        return Ok(Outcome::Unchanged);
    }
    claim(loaded, plan, &after, Some(&before));
    plan.docs.push(after);
    Ok(Outcome::Updated)
}

/// The `_id` of a user the directory creates: derived from the LDAP id, so
/// two syncs (or a sync and a login) running at once create one user, not
/// two. Upstream uses a random id; nothing reads meaning into it.
pub fn directory_user_id(user: &RcUser) -> String {
    derived_id(&format!("ldap-sync directory user\0{}\0{}", user.id_attribute, user.id))
}

/// Upstream's `findExistingUser`, by LDAP id through the index, else at the
/// derived `_id` (a document whose index key went missing), then the merges.
fn find_existing(user: &RcUser, loaded: &Loaded, merge: bool) -> Option<UserDoc> {
    let owner = |key: &str| loaded.index.get(key).cloned().flatten().and_then(|id| loaded.docs.get(&id).cloned());
    let same_ldap_id = |doc: &UserDoc| ldap_service(doc) == Some((user.id_attribute.clone(), user.id.clone()));
    let by_id = owner(&keys::ldap_id(&user.id_attribute, &user.id))
        .filter(same_ldap_id)
        .or_else(|| loaded.docs.get(&directory_user_id(user)).filter(|d| same_ldap_id(d)).cloned());
    if by_id.is_some() || !merge {
        return by_id;
    }
    let non_ldap = |doc: &UserDoc| !doc.services.extra.contains_key("ldap");
    user.emails
        .first()
        .and_then(|e| owner(&keys::email(e)))
        .filter(non_ldap)
        .or_else(|| owner(&keys::username(&user.username)).filter(non_ldap))
}

fn ldap_service(doc: &UserDoc) -> Option<(String, String)> {
    let ldap = doc.services.extra.get("ldap")?;
    Some((ldap.get("idAttribute")?.as_str()?.to_owned(), ldap.get("id")?.as_str()?.to_owned()))
}

fn check_free(loaded: &Loaded, key: &str, owner: Option<&str>) -> Result<(), ()> {
    match loaded.index.get(key).cloned().flatten() {
        Some(id) if Some(id.as_str()) != owner => Err(()),
        _ => Ok(()),
    }
}

/// Spec §3.7 "Create".
fn new_doc(user: &RcUser, ctx: &mut PlanContext<'_>) -> UserDoc {
    let mut doc = UserDoc {
        id: directory_user_id(user),
        username: Some(user.username.clone()),
        name: Some(user.name.clone().unwrap_or_else(|| name_from_username(&user.username))),
        emails: user.emails.iter().map(|a| Email { address: a.clone(), verified: ctx.accounts.verify_external_emails }).collect(),
        roles: ctx.accounts.default_roles.clone(),
        active: Some(!ctx.accounts.manually_approve_new_users),
        ..UserDoc::default()
    };
    doc.services.extra.insert("ldap".into(), json!({"id": user.id, "idAttribute": user.id_attribute}));
    let when = json!(ctx.now);
    for (k, v) in [
        ("createdAt", when.clone()),
        ("type", json!("user")),
        ("status", json!("offline")),
        ("ldap", json!(true)),
        ("importIds", json!([user.dn])),
        ("_updatedAt", when),
    ] {
        doc.extra.insert(k.into(), v);
    }
    if let Some(ext) = &user.extension {
        doc.extra.insert("freeSwitchExtension".into(), json!(ext));
    }
    doc
}

/// Spec §3.7 "Update".
fn updated_doc(before: &UserDoc, user: &RcUser, loaded: &Loaded, ctx: &PlanContext<'_>) -> UserDoc {
    let mut doc = before.clone();
    if doc.roles.is_empty() {
        doc.roles = vec!["user".into()];
    }
    doc.extra.entry("type").or_insert_with(|| json!("user"));
    doc.extra.insert("ldap".into(), json!(true));
    doc.services.extra.insert("ldap".into(), json!({"id": user.id, "idAttribute": user.id_attribute}));
    doc.emails = user
        .emails
        .iter()
        .map(|address| {
            let was_verified = before.emails.iter().any(|e| e.address.eq_ignore_ascii_case(address) && e.verified);
            Email { address: address.clone(), verified: ctx.accounts.verify_external_emails || was_verified }
        })
        .collect();
    let import_ids = doc.extra.entry("importIds").or_insert_with(|| json!([]));
    if let Value::Array(ids) = import_ids
        && !ids.iter().any(|v| v.as_str() == Some(user.dn.as_str())) {
            ids.push(json!(user.dn));
        }
    if let Some(name) = &user.name {
        doc.name = Some(name.clone());
    }
    // saveUserIdentity: a rename to a taken username silently keeps the old one.
    if check_free(loaded, &keys::username(&user.username), Some(&before.id)).is_ok() {
        doc.username = Some(user.username.clone());
    }
    doc.extra.insert("_updatedAt".into(), json!(ctx.now));
    doc
}

/// Equal apart from `_updatedAt`.
fn same_content(a: &UserDoc, b: &UserDoc) -> bool {
    let strip = |d: &UserDoc| {
        let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut v {
            map.remove("_updatedAt");
        }
        v
    };
    strip(a) == strip(b)
}

/// Points the document's index keys at it and frees those it no longer holds.
fn claim(loaded: &mut Loaded, plan: &mut PagePlan, doc: &UserDoc, before: Option<&UserDoc>) {
    if let Some(old) = before {
        let keep = index_keys(doc);
        for key in index_keys(old) {
            // Free only keys that still name this user.
            let ours = loaded.index.get(&key).is_some_and(|owner| owner.as_deref() == Some(old.id.as_str()));
            if ours && !keep.contains(&key) {
                set_index(loaded, plan, key, None);
            }
        }
    }
    for key in index_keys(doc) {
        set_index(loaded, plan, key, Some(doc.id.clone()));
    }
    loaded.docs.insert(doc.id.clone(), doc.clone());
}

fn set_index(loaded: &mut Loaded, plan: &mut PagePlan, key: String, owner: Option<String>) {
    loaded.index.insert(key.clone(), owner.clone());
    plan.index_changes.insert(key, owner);
}

/// Every index key that names `doc`.
pub fn index_keys(doc: &UserDoc) -> Vec<String> {
    let mut out: Vec<String> = doc.username.iter().map(|u| keys::username(u)).collect();
    out.extend(doc.emails.iter().map(|e| keys::email(&e.address)));
    out.extend(ldap_service(doc).map(|(attr, id)| keys::ldap_id(&attr, &id)));
    out
}

/// Upstream derives a missing name from the username: `john.smith` → `John Smith`.
fn name_from_username(username: &str) -> String {
    username
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map(|f| f.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

