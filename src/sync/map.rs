//! Entry → [`RcUser`]: upstream's `mapUserData` (spec §3.4). Pure.

mod limax;

use crate::ldap::{DirectoryEntry, Dn};
use crate::settings::{Accounts, LdapSearch};
use crate::store::LdapId;
use crate::store::ids::hex;
use crate::store::users::{EntryHasher, Fingerprint, MarkKey};

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
    #[error("no username: {0} yields an empty username")]
    NoUsername(String),
    #[error("username {0:?} is taken by another user")]
    UsernameTaken(String),
    #[error("e-mail {0:?} belongs to another user")]
    EmailTaken(String),
}

/// The attributes a search must request for this mapping: unique-id
/// candidates, search fields, those named by the username, e-mail, name
/// and extension settings, and the account state when `with_account_state`.
/// Never `*` or `+`.
pub fn attributes_to_request(search: &LdapSearch, with_account_state: bool) -> Vec<String> {
    let mut wanted: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        let name = name.trim();
        if !name.is_empty() && !name.eq_ignore_ascii_case("dn") && !wanted.iter().any(|w| w.eq_ignore_ascii_case(name)) {
            wanted.push(name.to_owned());
        }
    };
    id_candidates(search).iter().for_each(|a| add(a));
    search.email_fields.iter().for_each(|a| add(a));
    add(FALLBACK_EMAIL_ATTRIBUTE);
    for template in [&search.username_field, &search.name_field] {
        template.attributes().into_iter().for_each(&mut add);
    }
    add(&search.extension_field);
    if with_account_state {
        ACCOUNT_STATE_ATTRIBUTES.iter().for_each(|a| add(a));
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
pub fn map_entry(entry: &DirectoryEntry, search: &LdapSearch, accounts: &Accounts) -> Result<RcUser, EntryProblem> {
    let LdapId { attribute: id_attribute, value: id } = ldap_id(entry, search)?;

    let raw_username = search.username_field.render(|attr| entry.texts(attr));
    let username = raw_username.unwrap_or_else(|| id.clone());
    let username = if accounts.slugify_names { slugify(&username) } else { username };
    if username.is_empty() {
        return Err(EntryProblem::NoUsername(search.username_field.source.clone()));
    }

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
    Ok(RcUser { dn: entry.dn.clone(), ldap_id: LdapId::new(id_attribute, id), username, emails, name, extension, disabled })
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
/// in the server's order) under `settings`, a digest of the settings that
/// shape mapping and planning ([`super::plan::settings_digest`]): equal
/// fingerprints map and plan to the same document, so a sync mark can
/// vouch for an entry before it is even mapped.
pub fn entry_fingerprint(entry: &DirectoryEntry, settings: &Fingerprint, key: &MarkKey) -> Fingerprint {
    let mut hasher = EntryHasher::new(key);
    hasher.field(settings.as_bytes());
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
