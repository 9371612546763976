//! Stored vs incoming → what to write, for one page of entries. Pure: the
//! caller loads the index keys and documents first and stores the result.
//!
//! Rules are upstream's (spec §3.6–§3.7): match by LDAP id, then (with
//! `ldap_merge_existing_users`) by e-mail, then by case-insensitive
//! username among non-LDAP users; create or update; keep roles, `createdAt`
//! and unknown fields; carry the verified flag of known addresses over.

use serde_json::{Value, json};

use crate::settings::{Accounts, ActiveState, LdapSearch, SyncSwitches};
use crate::store::UserId;
use crate::store::avatars::{Avatar, MAX_AVATAR_BYTES};
use crate::store::schema::{Date, Email, UserDoc};
use crate::store::users::{Fingerprint, IndexKey, Loaded, UserWrites, index_keys, is_directory_user, ldap_id_of};

use super::groups::{self, RoleGrant};
use super::map::{EntryProblem, RcUser};

/// What the plan needs beyond the entries.
pub struct PlanContext<'a> {
    pub switches: SyncSwitches,
    pub accounts: &'a Accounts,
    pub merge_existing_users: bool,
    pub now: Date,
    /// What group membership may do to roles; `None` when roles are not synced.
    pub roles: Option<RolePolicy>,
}

/// The roles group membership may give and take (upstream's
/// `allowedRoles`: every existing role the map names), and whether it
/// takes them (`ldap_sync_user_data_roles_autoremove`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePolicy {
    pub allowed: Vec<String>,
    pub autoremove: bool,
}

impl<'a> PlanContext<'a> {
    /// The context of planning under `settings` at `now`.
    pub fn new(settings: &'a crate::settings::Settings, now: Date) -> Self {
        Self {
            switches: settings.sync,
            accounts: &settings.accounts,
            merge_existing_users: settings.search.merge_existing_users,
            now,
            roles: role_policy(settings),
        }
    }
}

/// The role policy of `settings`.
pub fn role_policy(settings: &crate::settings::Settings) -> Option<RolePolicy> {
    settings.groups.roles.as_ref().map(|r| RolePolicy { allowed: groups::allowed_roles(r), autoremove: r.autoremove })
}

/// Upstream's `syncUserRoles`: add the granted roles the user lacks; with
/// autoremove, remove the allowed roles the grant no longer gives. Roles
/// outside the map are never touched.
fn apply_roles(roles: &mut Vec<String>, grant: &RoleGrant, policy: &RolePolicy) {
    for role in &grant.target {
        if policy.allowed.contains(role) && !roles.contains(role) {
            roles.push(role.clone());
        }
    }
    if policy.autoremove {
        roles.retain(|r| !policy.allowed.contains(r) || grant.target.contains(r));
    }
}

/// Whether `roles` already are what [`apply_roles`] makes of them.
fn roles_applied(roles: &[String], user: &RcUser, ctx: &PlanContext<'_>) -> bool {
    let (Some(grant), Some(policy)) = (&user.roles, &ctx.roles) else { return true };
    let mut applied = roles.to_vec();
    apply_roles(&mut applied, grant, policy);
    applied == roles
}

/// Bumped when mapping or planning changes what they make of the same
/// entry and settings: every sync mark then stops matching.
const FINGERPRINT_VERSION: &[u8] = b"ldap-sync marks v2";

/// A digest of every setting that shapes mapping and planning (the search
/// and mapping settings, the account settings, the update switches), for
/// [`super::map::entry_fingerprint`]: changing any of them makes the next
/// run check every entry in full. Computed once per run.
pub fn settings_digest(search: &LdapSearch, ctx: &PlanContext<'_>) -> Fingerprint {
    let switches = &ctx.switches;
    let shaping = format!(
        "{search:?}|{:?}|keep_existing_updated={}|active_state={:?}|merge={}|roles={:?}",
        ctx.accounts, switches.keep_existing_updated, switches.active_state, ctx.merge_existing_users, ctx.roles
    );
    Fingerprint::of([FINGERPRINT_VERSION, shaping.as_bytes()])
}

/// Whether `doc` is what planning `user` makes of it, in full: active, and
/// with the entry's username, addresses and name. Only then may a sync mark
/// vouch for it (a refused rename, for one, must be tried again next run).
pub fn reflects(doc: &UserDoc, user: &RcUser, ctx: &PlanContext<'_>) -> bool {
    let disabled = ctx.switches.active_state != ActiveState::Ignore && user.disabled;
    !disabled
        && doc.active != Some(false)
        && (user.username.is_empty() || doc.username.as_deref() == Some(user.username.as_str()))
        && doc.emails.iter().map(|e| e.address.as_str()).eq(user.emails.iter().map(String::as_str))
        && (user.name.is_none() || doc.name == user.name)
        && ldap_id_of(doc).as_ref() == Some(&user.ldap_id)
        && roles_applied(&doc.roles, user, ctx)
        && user.avatar.as_deref().is_none_or(|bytes| {
            bytes.len() > MAX_AVATAR_BYTES
                || doc.extra.get("avatarETag").and_then(Value::as_str) == Some(crate::store::avatars::etag(bytes).as_str())
        })
}

/// Index keys to read before planning these users.
pub fn keys_to_load<'a>(users: impl IntoIterator<Item = &'a RcUser>) -> Vec<IndexKey> {
    let mut wanted: Vec<IndexKey> = Vec::new();
    for u in users {
        wanted.push(IndexKey::LdapId(u.ldap_id.clone()));
        if u.username.is_empty() {
            wanted.extend(username_suggestions(u).iter().map(|name| IndexKey::username(name)));
        } else {
            wanted.push(IndexKey::username(&u.username));
        }
        wanted.extend(u.emails.iter().map(|e| IndexKey::email(e)));
    }
    wanted
}

/// The ids these users would be created with (a document there whose
/// index key went missing is still theirs).
pub fn candidate_ids<'a>(users: impl IntoIterator<Item = &'a RcUser>) -> Vec<UserId> {
    users.into_iter().map(|u| UserId::for_directory_user(&u.ldap_id)).collect()
}

/// What planning did with one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    /// Enabled in the directory again (`ldap_sync_user_active_state=both`): active again.
    Reactivated,
    Unchanged,
    /// The settings said not to touch it.
    Skipped(&'static str),
}

/// A planned user: the change, the `_id` of its document (in
/// `Loaded::docs`; `None` for a new user that was not created), and whether
/// it should be deactivated. Deactivations are never written here: the run
/// collects them and decides at its end, after a complete read and the
/// circuit breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub change: Change,
    pub id: Option<UserId>,
    /// Disabled in the directory while active here.
    pub deactivate: bool,
    /// Roles group membership added and removed (`ldap_sync_user_data_roles`).
    pub roles_added: u64,
    pub roles_removed: u64,
    /// What happened to the entry's avatar.
    pub avatar: AvatarChange,
}

/// What planning did with an entry's avatar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AvatarChange {
    /// None in the entry, or the one the user has (same ETag).
    #[default]
    Untouched,
    Written,
    /// Over [`MAX_AVATAR_BYTES`]: not stored (its size).
    TooLarge(usize),
}

/// Upstream's `syncUserAvatar`: the image is stored with `avatarOrigin`
/// `rest` and its `avatarETag`, unless the user has that ETag already.
fn stage_avatar(doc: &mut UserDoc, user: &RcUser, now: Date, plan: &mut UserWrites) -> AvatarChange {
    let Some(bytes) = &user.avatar else { return AvatarChange::Untouched };
    if bytes.len() > MAX_AVATAR_BYTES {
        return AvatarChange::TooLarge(bytes.len());
    }
    let avatar = Avatar::new(bytes, now);
    if doc.extra.get("avatarETag").and_then(Value::as_str) == Some(avatar.etag.as_str()) {
        return AvatarChange::Untouched;
    }
    doc.extra.insert("avatarOrigin".into(), json!("rest"));
    doc.extra.insert("avatarETag".into(), json!(avatar.etag));
    plan.avatars.push((doc.id.clone(), avatar));
    AvatarChange::Written
}

/// Plans one user against what is loaded, staging its writes in `writes`
/// and updating `loaded` as if they were written (so the next user of the
/// same page sees them).
pub fn plan_one(user: &RcUser, loaded: &mut Loaded, ctx: &PlanContext<'_>, plan: &mut UserWrites) -> Result<Planned, EntryProblem> {
    let disabled = ctx.switches.active_state != ActiveState::Ignore && user.disabled;
    let existing = find_existing(user, loaded, ctx);
    let deactivate = disabled && existing.as_ref().is_some_and(|d| d.active != Some(false));
    let skipped = |reason, id: Option<UserId>| {
        Ok(Planned { change: Change::Skipped(reason), id, deactivate, roles_added: 0, roles_removed: 0, avatar: AvatarChange::Untouched })
    };
    let Some(before) = existing else {
        if !ctx.switches.import_new_users {
            return skipped("importing new users is disabled (ldap_background_sync_import_new_users)", None);
        }
        let username = if user.username.is_empty() {
            username_suggestions(user)
                .into_iter()
                .find(|name| check_free(loaded, &IndexKey::username(name), None).is_ok())
                .ok_or_else(|| EntryProblem::NoUsername("ldap_username_field".to_owned()))?
        } else {
            check_free(loaded, &IndexKey::username(&user.username), None)
                .map_err(|()| EntryProblem::UsernameTaken(user.username.clone()))?;
            user.username.clone()
        };
        for email in &user.emails {
            check_free(loaded, &IndexKey::email(email), None).map_err(|()| EntryProblem::EmailTaken(email.clone()))?;
        }
        let mut doc = new_doc(user, username, ctx);
        if disabled {
            doc.active = Some(false);
        }
        let id = doc.id.clone();
        let roles_added = doc.roles.iter().filter(|r| !ctx.accounts.default_roles.contains(r)).count() as u64;
        let avatar = stage_avatar(&mut doc, user, ctx.now, plan);
        claim(loaded, plan, &doc, None);
        plan.docs.push(doc);
        return Ok(Planned { change: Change::Created, id: Some(id), deactivate: false, roles_added, roles_removed: 0, avatar });
    };
    if !ctx.switches.keep_existing_updated {
        return skipped("updating existing users is disabled (ldap_background_sync_keep_existant_users_updated)", Some(before.id.clone()));
    }
    for email in &user.emails {
        check_free(loaded, &IndexKey::email(email), Some(&before.id)).map_err(|()| EntryProblem::EmailTaken(email.clone()))?;
    }
    let mut after = updated_doc(&before, user, loaded, ctx);
    let reactivate = ctx.switches.active_state == ActiveState::Both && !user.disabled && before.active == Some(false);
    if reactivate {
        after.active = Some(true);
    }
    let avatar = stage_avatar(&mut after, user, ctx.now, plan);
    let id = Some(before.id.clone());
    let roles_added = after.roles.iter().filter(|r| !before.roles.contains(r)).count() as u64;
    let roles_removed = before.roles.iter().filter(|r| !after.roles.contains(r)).count() as u64;
    if same_content(&before, &after) {
        // Nothing to write, unless an index key of the user went missing.
        for key in index_keys(&before) {
            if loaded.index.get(&key).is_some_and(Option::is_none) {
                set_index(loaded, plan, key, Some(before.id.clone()));
            }
        }
        return Ok(Planned { change: Change::Unchanged, id, deactivate, roles_added: 0, roles_removed: 0, avatar });
    }
    claim(loaded, plan, &after, Some(&before));
    plan.docs.push(after);
    let change = if reactivate { Change::Reactivated } else { Change::Updated };
    Ok(Planned { change, id, deactivate, roles_added, roles_removed, avatar })
}

/// Upstream's `findExistingUser`, by LDAP id through the index, else at the
/// derived `_id` (a document whose index key went missing), then the merges.
/// A merge never takes over a privileged account: a directory entry whose
/// e-mail or username matches a local admin (`ADMIN`, `Ädmin`) is refused
/// as a clash instead.
fn find_existing(user: &RcUser, loaded: &Loaded, ctx: &PlanContext<'_>) -> Option<UserDoc> {
    let merge = ctx.merge_existing_users;
    let owner = |key: &IndexKey| loaded.index.get(key).cloned().flatten().and_then(|id| loaded.docs.get(&id).cloned());
    let same_ldap_id = |doc: &UserDoc| ldap_id_of(doc).as_ref() == Some(&user.ldap_id);
    let by_id = owner(&IndexKey::LdapId(user.ldap_id.clone()))
        .filter(same_ldap_id)
        .or_else(|| loaded.docs.get(&UserId::for_directory_user(&user.ldap_id)).filter(|d| same_ldap_id(d)).cloned());
    if by_id.is_some() || !merge {
        return by_id;
    }
    let bootstrap_admin = ctx.accounts.bootstrap_admin.as_deref().map(UserId::for_bootstrap_admin);
    let mergeable =
        |doc: &UserDoc| !is_directory_user(doc) && !doc.roles.iter().any(|r| r == "admin") && Some(&doc.id) != bootstrap_admin.as_ref();
    user.emails
        .first()
        .and_then(|e| owner(&IndexKey::email(e)))
        .filter(mergeable)
        .or_else(|| owner(&IndexKey::username(&user.username)).filter(mergeable))
}

fn check_free(loaded: &Loaded, key: &IndexKey, owner: Option<&UserId>) -> Result<(), ()> {
    match loaded.index.get(key).cloned().flatten() {
        Some(id) if Some(&id) != owner => Err(()),
        _ => Ok(()),
    }
}

/// Upstream's `generateUsernameSuggestion` for an entry whose username is
/// empty, in its order: the name, first initial + last name, first name +
/// last initial, then `<first>-0` .. `<first>-9` (`user-0` .. without a
/// name). Upstream counts the existing `<first>-N` users to start; a key
/// value store cannot, so this probes from 0. E-mails give nothing:
/// upstream passes them without their verified flag, so it skips them.
pub fn username_suggestions(user: &RcUser) -> Vec<String> {
    let slug = |text: &str| super::map::slugify(text);
    let mut names: Vec<String> = Vec::new();
    if let Some(name) = user.name.as_deref().filter(|n| !n.is_empty()) {
        names.push(slug(name));
        let parts: Vec<&str> = name.split(' ').collect();
        if let (Some(first), Some(last), true) = (parts.first(), parts.last(), parts.len() > 1) {
            let initial = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
            names.push(slug(&format!("{}{last}", initial(first))));
            names.push(slug(&format!("{first}{}", initial(last))));
        }
    }
    names.retain(|n| !n.is_empty() && n != "all");
    let base = names.first().cloned().unwrap_or_else(|| "user".to_owned());
    names.extend((0..10).map(|i| format!("{base}-{i}")));
    names.dedup();
    names
}

/// Spec §3.7 "Create".
fn new_doc(user: &RcUser, username: String, ctx: &PlanContext<'_>) -> UserDoc {
    let mut doc = UserDoc {
        id: UserId::for_directory_user(&user.ldap_id),
        name: Some(user.name.clone().unwrap_or_else(|| name_from_username(&username))),
        username: Some(username),
        emails: user.emails.iter().map(|a| Email { address: a.clone(), verified: ctx.accounts.verify_external_emails }).collect(),
        roles: ctx.accounts.default_roles.clone(),
        active: Some(!ctx.accounts.manually_approve_new_users),
        ..UserDoc::default()
    };
    if let (Some(grant), Some(policy)) = (&user.roles, &ctx.roles) {
        apply_roles(&mut doc.roles, grant, policy);
    }
    doc.services.extra.insert("ldap".into(), ldap_service(user));
    let when = json!(ctx.now);
    for (k, v) in [
        ("createdAt", when.clone()),
        ("type", json!("user")),
        ("status", json!("offline")),
        ("ldap", json!(true)),
        ("importIds", json!([user.dn.as_str()])),
        ("_updatedAt", when),
    ] {
        doc.extra.insert(k.into(), v);
    }
    if let Some(ext) = &user.extension {
        doc.extra.insert("freeSwitchExtension".into(), json!(ext));
    }
    set_custom_fields(&mut doc, user);
    doc
}

/// `customFields.<path>` for each mapped value, keeping the other fields
/// (upstream `$set`s each leaf). A path that runs into a value that is not
/// an object, or that ends on an object, is left alone (upstream throws).
fn set_custom_fields(doc: &mut UserDoc, user: &RcUser) {
    if user.custom_fields.is_empty() {
        return;
    }
    let root = doc.extra.entry("customFields").or_insert_with(|| json!({}));
    if !root.is_object() {
        return;
    }
    for (path, value) in &user.custom_fields {
        set_path(root, path, value.clone());
    }
}

fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut node = root;
    let mut keys = path.split('.').peekable();
    while let Some(key) = keys.next() {
        let Value::Object(map) = node else { return };
        if keys.peek().is_none() {
            if !map.get(key).is_some_and(Value::is_object) {
                map.insert(key.to_owned(), value);
            }
            return;
        }
        node = map.entry(key).or_insert_with(|| json!({}));
    }
}

/// Spec §3.7 "Update".
fn updated_doc(before: &UserDoc, user: &RcUser, loaded: &Loaded, ctx: &PlanContext<'_>) -> UserDoc {
    let mut doc = before.clone();
    if doc.roles.is_empty() {
        doc.roles = vec!["user".into()];
    }
    if let (Some(grant), Some(policy)) = (&user.roles, &ctx.roles) {
        apply_roles(&mut doc.roles, grant, policy);
    }
    doc.extra.entry("type").or_insert_with(|| json!("user"));
    doc.extra.insert("ldap".into(), json!(true));
    // `$set` of `services.ldap.id` and `services.ldap.idAttribute` (non-empty
    // values only): other sub-keys of `services.ldap` stay.
    merge_ldap_service(&mut doc, user);
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
        && !ids.iter().any(|v| v.as_str() == Some(user.dn.as_str()))
    {
        ids.push(json!(user.dn.as_str()));
    }
    // saveUserIdentity: a rename to a taken username silently keeps the old
    // one, and returns before the name is looked at: neither changes.
    set_custom_fields(&mut doc, user);
    let renamed = !user.username.is_empty() && before.username.as_deref() != Some(user.username.as_str());
    if renamed && check_free(loaded, &IndexKey::username(&user.username), Some(&before.id)).is_err() {
        doc.extra.insert("_updatedAt".into(), json!(ctx.now));
        return doc;
    }
    if !user.username.is_empty() || doc.username.is_none() {
        doc.username = Some(user.username.clone()).filter(|u| !u.is_empty()).or(doc.username);
    }
    if let Some(name) = &user.name {
        doc.name = Some(name.clone());
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

/// Sets `services.ldap.id` and `services.ldap.idAttribute` (when non-empty),
/// keeping the object's other keys.
fn merge_ldap_service(doc: &mut UserDoc, user: &RcUser) {
    let service = doc.services.extra.entry("ldap").or_insert_with(|| json!({}));
    if !service.is_object() {
        *service = json!({});
    }
    if let Value::Object(map) = service {
        for (key, value) in [("id", &user.ldap_id.value), ("idAttribute", &user.ldap_id.attribute)] {
            if !value.is_empty() {
                map.insert(key.to_owned(), json!(value));
            }
        }
        if let Some(uuid) = &user.uuid {
            map.insert("uuid".to_owned(), json!(uuid));
        }
    }
}

/// `services.ldap` of a directory user.
fn ldap_service(user: &RcUser) -> Value {
    let mut service = json!({"id": user.ldap_id.value, "idAttribute": user.ldap_id.attribute});
    if let Some(uuid) = &user.uuid {
        service["uuid"] = json!(uuid);
    }
    service
}

/// Points the document's index keys at it and frees those it no longer holds.
fn claim(loaded: &mut Loaded, plan: &mut UserWrites, doc: &UserDoc, before: Option<&UserDoc>) {
    if let Some(old) = before {
        let keep = index_keys(doc);
        for key in index_keys(old) {
            // Free only keys that still name this user.
            let ours = loaded.index.get(&key).is_some_and(|owner| owner.as_ref() == Some(&old.id));
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

fn set_index(loaded: &mut Loaded, plan: &mut UserWrites, key: IndexKey, owner: Option<UserId>) {
    loaded.index.insert(key.clone(), owner.clone());
    plan.index_changes.insert(key, owner);
}

/// Upstream's `guessNameFromUsername` for a new user without a name
/// (`john.smith` → `John Smith`), step by step: `replace(/\W/g, ' ')` (per
/// UTF-16 unit: `_` and ASCII letters and digits stay), then
/// `replace(/\s(.)/g, toUpperCase)` (a space and the character after it;
/// matches do not overlap, so after two spaces nothing is capitalised), then
/// the first character lower-cased and, if a word character, upper-cased.
/// Spaces are neither trimmed nor collapsed, as upstream.
fn name_from_username(username: &str) -> String {
    let mut chars: Vec<char> = Vec::with_capacity(username.len());
    for c in username.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            chars.push(c);
        } else {
            chars.extend(std::iter::repeat_n(' ', c.len_utf16()));
        }
    }
    let mut i = 0;
    while i + 1 < chars.len() {
        if chars[i] == ' ' {
            chars[i + 1] = chars[i + 1].to_ascii_uppercase();
            i += 2;
        } else {
            i += 1;
        }
    }
    if let Some(first) = chars.first_mut() {
        *first = first.to_ascii_uppercase();
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod name_tests {
    use super::name_from_username;

    #[test]
    fn a_name_from_the_username_is_upstreams_guess_name_from_username() {
        // Worked through upstream's regular expressions by hand.
        for (username, name) in [
            ("john.smith", "John Smith"),
            ("jean-luc.picard", "Jean Luc Picard"),
            ("first_last", "First_last"),
            ("a..b", "A  b"),
            (".hidden", " Hidden"),
            ("x.", "X "),
            ("42.answer", "42 Answer"),
            ("_svc.bot", "_svc Bot"),
            ("björn", "Bj Rn"),
            ("a😀b", "A  b"),
            ("", ""),
        ] {
            assert_eq!(name_from_username(username), name, "{username:?}");
        }
    }
}
