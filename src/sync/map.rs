//! Entry → [`RcUser`]: upstream's `mapUserData` (spec §3.4). Pure.

mod limax;
// Public for settings, which parses `ldap_datasync_variablemap` into `variables::Variables`.
pub mod variables;

use std::borrow::Cow;

use crate::ldap::{DirectoryEntry, Dn};
use crate::settings::{Accounts, LdapSearch, Template};
use crate::store::LdapId;
use crate::store::ids::hex;
use crate::store::users::{EntryHasher, Fingerprint, MarkKey};

use super::groups::{GroupFacts, RoleGrant};

/// A directory user, mapped to what Rocket.Chat stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcUser {
    pub dn: Dn,
    /// `services.ldap`: the attribute, and the lower-case hex of its raw bytes.
    pub ldap_id: LdapId,
    /// Slugified when `utf8_names_slugify` is on.
    pub username: String,
    pub emails: Vec<String>,
    pub name: Option<String>,
    pub extension: Option<String>,
    /// The account is disabled in the directory (see [`ACCOUNT_STATE_ATTRIBUTES`]);
    /// `false` when those attributes were not requested.
    pub disabled: bool,
    /// `services.ldap.uuid`: the RFC 4122 text of an `entryUUID` or
    /// `objectGUID` id (AD's GUID in its mixed-endian text form).
    pub uuid: Option<String>,
    /// The avatar image, when the search asked for one and the entry has it
    /// (the first of `ldap_avatar_field`, `thumbnailPhoto`, `jpegPhoto`).
    pub avatar: Option<Vec<u8>>,
    /// `customFields.<path>` values (`ldap_sync_custom_fields`).
    pub custom_fields: Vec<(String, serde_json::Value)>,
    /// The roles its groups give (`ldap_sync_user_data_roles`); `None`
    /// when roles are not synced. Set by the caller from the run's groups.
    pub roles: Option<RoleGrant>,
}

/// What says an account is disabled, by newest upstream's rules: AD's
/// `userAccountControl` with ACCOUNTDISABLE (0x2) set, eDirectory's
/// `loginDisabled` true, Oracle's `orclIsEnabled` present and not
/// `ENABLED`. A temporary lockout (AD's LOCKOUT bit, `lockoutTime`) is not
/// a disabled account and is not read.
pub const ACCOUNT_STATE_ATTRIBUTES: [&str; 3] = ["userAccountControl", "loginDisabled", "orclIsEnabled"];

/// AD's `userAccountControl` ACCOUNTDISABLE flag.
const UF_ACCOUNTDISABLE: i64 = 0x2;

/// Whether the entry's account is disabled (see [`ACCOUNT_STATE_ATTRIBUTES`]).
pub fn account_disabled(entry: &DirectoryEntry) -> bool {
    let first = |attr: &str| entry.texts(attr).into_iter().next();
    let uac = first("userAccountControl").and_then(|v| v.trim().parse::<i64>().ok()).is_some_and(|v| v & UF_ACCOUNTDISABLE != 0);
    let login_disabled = first("loginDisabled").is_some_and(|v| v.trim().eq_ignore_ascii_case("TRUE"));
    let orcl = first("orclIsEnabled").is_some_and(|v| v.trim() != "ENABLED");
    uac || login_disabled || orcl
}

/// Why one entry cannot become a user; the run goes on without it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("no unique identifier: none of {0} has a value")]
    NoUniqueId(String),
    #[error("no e-mail address: none of {0} holds an address and ldap_default_domain is empty")]
    NoEmail(String),
    #[error("no username: {0} yields an empty username and no free username could be suggested")]
    NoUsername(String),
    #[error("username {0:?} is taken by another user")]
    UsernameTaken(String),
    #[error("e-mail {0:?} belongs to another user")]
    EmailTaken(String),
}

/// The attributes a search must request for this mapping: unique-id
/// candidates, search fields, those named by the username, e-mail, name
/// and extension settings, the account state when `with_account_state`,
/// and those the variables read. A variable's name is no directory
/// attribute and is not asked for (the unique id, which upstream reads from
/// the raw entry, always is). Never `*` or `+`.
pub fn attributes_to_request(search: &LdapSearch, with_account_state: bool) -> Vec<String> {
    let mut wanted: Vec<String> = Vec::new();
    let push = |wanted: &mut Vec<String>, name: &str| {
        let name = name.trim();
        if !name.is_empty() && !name.eq_ignore_ascii_case("dn") && !wanted.iter().any(|w| w.eq_ignore_ascii_case(name)) {
            wanted.push(name.to_owned());
        }
    };
    id_candidates(search).iter().for_each(|a| push(&mut wanted, a));
    let derived = |name: &str| search.variables.as_ref().is_some_and(|v| v.defines(name.trim()));
    let mut add = |name: &str| {
        if !derived(name) {
            push(&mut wanted, name);
        }
    };
    search.email_fields.iter().for_each(|a| add(a));
    add(FALLBACK_EMAIL_ATTRIBUTE);
    for template in [&search.username_field, &search.name_field] {
        template.attributes().into_iter().for_each(&mut add);
    }
    add(&search.extension_field);
    for field in &search.custom_fields {
        if field.source.contains("#{") {
            Template::parse(&field.source).attributes().into_iter().for_each(&mut add);
        } else {
            add(&field.source);
        }
    }
    if with_account_state {
        ACCOUNT_STATE_ATTRIBUTES.iter().for_each(|a| add(a));
    }
    if let Some(variables) = &search.variables {
        variables.directory_attributes().into_iter().for_each(|a| push(&mut wanted, a));
    }
    wanted
}

/// Where upstream looks for an address when the e-mail fields and the
/// default domain give none.
const FALLBACK_EMAIL_ATTRIBUTE: &str = "mail";

/// The entry's LDAP id: the first candidate attribute with a value.
pub fn ldap_id(entry: &DirectoryEntry, search: &LdapSearch) -> Result<LdapId, EntryProblem> {
    let candidates = id_candidates(search);
    candidates
        .iter()
        .find_map(|attr| unique_id(entry, attr).map(|id| LdapId::new(attr.clone(), id)))
        .ok_or_else(|| EntryProblem::NoUniqueId(candidates.join(",")))
}

/// Maps one entry.
/// The avatar is the first of `avatar_attributes` with a value.
/// The variables' attributes are added first; the unique id, its UUID and
/// the avatar come from the entry as received (upstream reads them from
/// `_raw`, which variables do not touch).
pub fn map_entry(
    received: &DirectoryEntry,
    search: &LdapSearch,
    accounts: &Accounts,
    avatar_attributes: &[&str],
) -> Result<RcUser, EntryProblem> {
    let LdapId { attribute: id_attribute, value: id } = ldap_id(received, search)?;
    let entry = &*with_variables(received, search);

    // An empty username (nothing left after slugify) is allowed here: an
    // existing user keeps theirs, a new one gets a suggestion (plan).
    let username = slug_or_id(rendered_username(entry, search), accounts, &id);

    let mut emails: Vec<String> = search
        .email_fields
        .iter()
        .map(|attr| entry.texts(attr))
        .find(|values| !values.is_empty())
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.trim().to_owned())
        .filter(|v| v.contains('@'))
        .collect();
    emails.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    if emails.is_empty() && !search.default_domain.is_empty() {
        emails.push(format!("{username}@{}", search.default_domain));
    }
    // Upstream's last resort: a single-valued `mail` that holds an `@`
    // (ldapjs gives a lone value as a string, which `includes('@')` tests;
    // several values are an array, which never includes "@").
    if emails.is_empty()
        && let Some([only]) = entry.values(FALLBACK_EMAIL_ATTRIBUTE).as_deref()
    {
        let only = String::from_utf8_lossy(only);
        if only.contains('@') {
            emails.push(only.into_owned());
        }
    }
    if emails.is_empty() {
        return Err(EntryProblem::NoEmail(search.email_fields.join(",")));
    }

    let name = search.name_field.render(|attr| entry.texts(attr)).filter(|n| !n.trim().is_empty());
    let extension = Some(search.extension_field.as_str()).filter(|f| !f.is_empty()).and_then(|f| entry.texts(f).into_iter().next());
    let disabled = account_disabled(entry);
    let uuid = uuid_text(received, &id_attribute);
    let custom_fields = search.custom_fields.iter().filter_map(|f| custom_value(entry, &f.source).map(|v| (f.path.clone(), v))).collect();
    Ok(RcUser {
        dn: entry.dn.clone(),
        ldap_id: LdapId::new(id_attribute, id),
        username,
        emails,
        name,
        extension,
        disabled,
        uuid,
        avatar: avatar_attributes.iter().find_map(|a| received.values(a)?.into_iter().find(|v| !v.is_empty()).map(<[u8]>::to_vec)),
        custom_fields,
        roles: None,
    })
}

/// The LDAP username as the username setting renders it, before slugify
/// (upstream's `getLdapUsername`, which the group filter's `#{username}` is),
/// variables included.
pub fn ldap_username(entry: &DirectoryEntry, search: &LdapSearch) -> Option<String> {
    rendered_username(&with_variables(entry, search), search)
}

/// The Rocket.Chat username: the LDAP username, else the hex id, slugified
/// when `utf8_names_slugify` is on.
pub fn username(entry: &DirectoryEntry, search: &LdapSearch, accounts: &Accounts, id: &str) -> String {
    slug_or_id(ldap_username(entry, search), accounts, id)
}

/// The entry as the mapping reads it: with the variables' attributes
/// (upstream's `processLdapVariables` runs on every entry before mapping).
/// Borrowed, not copied, when there are none.
fn with_variables<'e>(entry: &'e DirectoryEntry, search: &LdapSearch) -> Cow<'e, DirectoryEntry> {
    let Some(vars) = &search.variables else { return Cow::Borrowed(entry) };
    let mut derived = entry.clone();
    variables::apply(&mut derived, vars);
    Cow::Owned(derived)
}

/// [`ldap_username`] of an entry that already has its variables.
fn rendered_username(entry: &DirectoryEntry, search: &LdapSearch) -> Option<String> {
    search.username_field.render_first(|attr| entry.texts(attr))
}

fn slug_or_id(ldap_username: Option<String>, accounts: &Accounts, id: &str) -> String {
    let username = ldap_username.unwrap_or_else(|| id.to_owned());
    if accounts.slugify_names { slugify(&username) } else { username }
}

/// What the run's groups say of this entry, for its fingerprint: the
/// roles its groups give, when roles are synced (a membership change does
/// not change the entry, but must change its fingerprint).
pub fn group_facts(entry: &DirectoryEntry, id: &LdapId, search: &LdapSearch, accounts: &Accounts, groups: &GroupFacts) -> Vec<u8> {
    let name = if groups.roles_by_username() { username(entry, search, accounts, &id.value) } else { String::new() };
    match groups.roles_for(entry.dn.as_str(), &name) {
        Some(grant) => grant.target.join(",").into_bytes(),
        None => Vec::new(),
    }
}

/// The RFC 4122 text of the id when it is an `entryUUID` (sent as that
/// text) or an `objectGUID` (16 bytes, whose first three fields AD stores
/// little-endian: bytes 3,2,1,0 - 5,4 - 7,6 - 8,9 - 10..16).
fn uuid_text(entry: &DirectoryEntry, id_attribute: &str) -> Option<String> {
    let value = entry.values(id_attribute)?.into_iter().next()?;
    if id_attribute.eq_ignore_ascii_case("entryUUID") {
        let text = std::str::from_utf8(value).ok()?.to_ascii_lowercase();
        let shape = text.len() == 36
            && text.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() });
        return shape.then_some(text);
    }
    if id_attribute.eq_ignore_ascii_case("objectGUID") {
        let b: &[u8; 16] = value.try_into().ok()?;
        let order = [[3, 2, 1, 0].as_slice(), &[5, 4], &[7, 6], &[8, 9], &[10, 11, 12, 13, 14, 15]];
        return Some(
            order.iter().map(|group| group.iter().map(|&i| format!("{:02x}", b[i])).collect::<String>()).collect::<Vec<_>>().join("-"),
        );
    }
    None
}

/// Upstream's `templateVarHandler` for a custom field: a bare attribute
/// gives its value (a list when it has several); a template `#{a}-#{b}`
/// gives text, and nothing when one of its attributes is missing. An empty
/// result is nothing.
fn custom_value(entry: &DirectoryEntry, source: &str) -> Option<serde_json::Value> {
    let template = Template::parse(source);
    if !source.contains("#{") {
        let values = entry.texts(source);
        return match values.as_slice() {
            [] => None,
            [one] if one.is_empty() => None,
            [one] => Some(serde_json::Value::String(one.clone())),
            _ => Some(serde_json::Value::Array(values.into_iter().map(serde_json::Value::String).collect())),
        };
    }
    if template.attributes().iter().any(|a| entry.values(a).is_none()) {
        return None;
    }
    template.render(|attr| entry.texts(attr)).map(serde_json::Value::String)
}

/// Upstream's candidate list: `ldap_unique_identifier_field`, then the
/// search fields; `dn` when both are empty.
fn id_candidates(search: &LdapSearch) -> Vec<String> {
    let list: Vec<String> = search.unique_id_fields.iter().chain(&search.search_fields).cloned().collect();
    if list.is_empty() { vec!["dn".to_owned()] } else { list }
}

/// Lower-case hex of the raw bytes (`objectGUID`, `entryUUID` as text, ...).
/// Upstream quirks kept for compatibility with existing data: `dn` is the
/// plain DN string, and a multi-valued attribute is its UTF-8 values joined
/// with commas.
fn unique_id(entry: &DirectoryEntry, attr: &str) -> Option<String> {
    let values: Vec<&[u8]> = entry.values(attr)?.into_iter().filter(|v| !v.is_empty()).collect();
    match values.as_slice() {
        [] => None,
        [_] if attr.eq_ignore_ascii_case("dn") => Some(entry.dn.to_string()),
        [one] => Some(hex(one)),
        many => Some(many.iter().map(|v| String::from_utf8_lossy(v)).collect::<Vec<_>>().join(",")),
    }
}

/// The fingerprint of an entry as received (DN, every attribute and value,
/// in the server's order) and what the run's groups say of it
/// ([`group_facts`]) under `settings`, a digest of the settings that
/// shape mapping and planning ([`super::plan::settings_digest`]): equal
/// fingerprints map and plan to the same document, so a sync mark can
/// vouch for an entry before it is even mapped.
pub fn entry_fingerprint(entry: &DirectoryEntry, settings: &Fingerprint, group_facts: &[u8], key: &MarkKey) -> Fingerprint {
    let mut hasher = EntryHasher::new(key);
    hasher.field(settings.as_bytes());
    hasher.field(group_facts);
    hasher.field(entry.dn.as_str().as_bytes());
    for (name, values) in entry.attributes() {
        hasher.field(name.as_bytes());
        hasher.field(&(values.len() as u64).to_le_bytes());
        values.iter().for_each(|v| hasher.field(v));
    }
    hasher.finish()
}

/// Upstream's username slug (apps/meteor/server/lib/ldap/Manager.ts,
/// `slugify`): `limax(text, { replacement: '.' })`, then only
/// `[0-9a-z-_.]`. Empty where limax throws (`limax::LimaxError`), which the
/// caller treats as no username, as upstream fails that user.
pub fn slugify(text: &str) -> String {
    let Ok(slug) = limax::limax(text) else { return String::new() };
    slug.chars().filter(|c| matches!(c, '0'..='9' | 'a'..='z' | '-' | '_' | '.')).collect()
}

#[cfg(test)]
mod tests;
