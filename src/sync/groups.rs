//! Group facts of a run (spec §3.5, §3.9): who is in the group filter's
//! group, and which mapped groups each user is in. Upstream asks the
//! directory once per user and mapped group; here each group is read once
//! per run (its member attribute, or on Active Directory with nested groups
//! its members by the in-chain rule), and users are looked up in memory.

use std::collections::{HashMap, HashSet};

use ldap3_proto::proto::LdapFilter;

use crate::ldap::connection::OID_DIRSYNC;
use crate::ldap::filter::{self, IN_CHAIN_RULE, MemberValue, membership_query};
use crate::ldap::{DirectoryEntry, SearchSpec};
use crate::settings::{GroupFilter, MembershipStrategy, RoleSync, Scope, Settings};
use crate::store::users::Fingerprint;

use super::SyncError;
use super::search::Directory;

/// Mapped groups asked for in one search (`each_group`).
const GROUPS_PER_SEARCH: usize = 200;
/// Values a ranged attribute (`member;range=0-1499`) is read in at most.
const MAX_RANGE_ROUNDS: usize = 10_000;

/// What a run knows of groups; empty when no group setting is on.
#[derive(Debug, Default)]
pub struct GroupFacts {
    roles: Option<RoleFacts>,
    filter: Option<FilterFacts>,
    digest: Option<Fingerprint>,
}

#[derive(Debug)]
struct RoleFacts {
    value: MemberValue,
    /// Group names, in the order found.
    names: Vec<String>,
    /// Member key ([`member_key`]) → indices into `names`.
    members: HashMap<String, Vec<u32>>,
    /// Group name → roles, resolved (cut at the first `.`, known roles only).
    map: HashMap<String, Vec<String>>,
}

#[derive(Debug)]
struct FilterFacts {
    settings: GroupFilter,
    /// The member values of the filter's group, as sent (upstream compares them exactly).
    members: HashSet<String>,
}

/// The roles a user gets from groups, and the roles that sync may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    pub target: Vec<String>,
}

impl GroupFacts {
    /// Reads what the settings need: nothing when no group setting is on.
    pub fn read(directory: &mut dyn Directory, settings: &Settings) -> Result<Self, SyncError> {
        let groups = &settings.groups;
        if groups.roles.is_none() && groups.filter.is_none() {
            return Ok(Self::default());
        }
        let ad = groups.nested && directory.supported_controls()?.iter().any(|c| c == OID_DIRSYNC);
        let mut reader = Reader { directory, settings, ad, all_groups: HashMap::new() };
        let filter = match &groups.filter {
            Some(f) => Some(reader.filter_group(f)?),
            None => None,
        };
        let roles = match &groups.roles {
            Some(r) => Some(reader.roles(r)?),
            None => None,
        };
        let mut facts = Self { roles, filter, digest: None };
        facts.digest = Some(facts.compute_digest());
        Ok(facts)
    }

    /// A digest of every membership: an incremental run whose stored digest
    /// differs reads everything again (a membership change does not change
    /// the user's entry).
    pub fn digest(&self) -> Option<&Fingerprint> {
        self.digest.as_ref()
    }

    fn compute_digest(&self) -> Fingerprint {
        // One buffer, each item length-prefixed: no allocation per member.
        let mut buf: Vec<u8> = b"groups v1".to_vec();
        let mut put = |bytes: &[u8]| {
            buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            buf.extend_from_slice(bytes);
        };
        if let Some(f) = &self.filter {
            let mut members: Vec<&String> = f.members.iter().collect();
            members.sort_unstable();
            put(b"filter");
            members.into_iter().for_each(|m| put(m.as_bytes()));
        }
        if let Some(r) = &self.roles {
            put(b"roles");
            r.names.iter().for_each(|n| put(n.as_bytes()));
            let mut members: Vec<(&String, &Vec<u32>)> = r.members.iter().collect();
            members.sort_unstable();
            for (key, groups) in members {
                put(key.as_bytes());
                let indices: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
                put(&indices);
            }
        }
        Fingerprint::of([buf.as_slice()])
    }

    /// Whether the group filter lets this entry in: its member format, with
    /// `#{username}` the LDAP username before slugify and `#{userdn}` the
    /// DN, is one of the group's member values.
    pub fn admits(&self, dn: &str, ldap_username: Option<&str>) -> bool {
        let Some(f) = &self.filter else { return true };
        let value = f.settings.member_format.replace("#{username}", ldap_username.unwrap_or("#{username}")).replace("#{userdn}", dn);
        f.members.contains(&value)
    }

    /// Whether roles are synced by username (`#{username}`), so the
    /// username is needed to look a user up.
    pub fn roles_by_username(&self) -> bool {
        self.roles.as_ref().is_some_and(|r| r.value == MemberValue::Username)
    }

    /// Whether a group filter is on.
    pub fn filters(&self) -> bool {
        self.filter.is_some()
    }

    /// The roles this user's mapped groups give; `None` when roles are not synced.
    pub fn roles_for(&self, dn: &str, username: &str) -> Option<RoleGrant> {
        let r = self.roles.as_ref()?;
        let key = member_key(r.value, if r.value == MemberValue::UserDn { dn } else { username });
        let mut target: Vec<String> = Vec::new();
        for &i in r.members.get(&key).map(Vec::as_slice).unwrap_or_default() {
            let Some(roles) = r.names.get(i as usize).and_then(|name| r.map.get(name)) else { continue };
            for role in roles {
                if !target.contains(role) {
                    target.push(role.clone());
                }
            }
        }
        Some(RoleGrant { target })
    }
}

/// Upstream's role string cut: `admin.anything` is `admin` (the first `.`
/// followed by at least one character).
pub fn role_id(role: &str) -> &str {
    match role.find('.') {
        Some(at) if at + 1 < role.len() => &role[..at],
        _ => role,
    }
}

/// The roles of the map that exist, cut, in the map's order, once each:
/// upstream's `allowedRoles`.
pub fn allowed_roles(roles: &RoleSync) -> Vec<String> {
    let mut allowed: Vec<String> = Vec::new();
    for role in roles.map.iter().flat_map(|(_, r)| r).map(|r| role_id(r)) {
        if roles.known_roles.iter().any(|k| k == role) && !allowed.iter().any(|a| a == role) {
            allowed.push(role.to_owned());
        }
    }
    allowed
}

/// Roles of the map that do not exist (upstream drops them silently).
pub fn unknown_roles(roles: &RoleSync) -> Vec<String> {
    let mut unknown: Vec<String> = Vec::new();
    for role in roles.map.iter().flat_map(|(_, r)| r).map(|r| role_id(r)) {
        if !roles.known_roles.iter().any(|k| k == role) && !unknown.iter().any(|u| u == role) {
            unknown.push(role.to_owned());
        }
    }
    unknown
}

/// How a member value is compared: a DN without case and without spaces
/// around its separators; a username exactly.
pub fn member_key(value: MemberValue, text: &str) -> String {
    match value {
        MemberValue::Username => text.to_owned(),
        MemberValue::UserDn => normalize_dn(text),
    }
}

fn normalize_dn(dn: &str) -> String {
    // Most DNs are already in this form.
    if dn.bytes().all(|b| b.is_ascii() && b != b' ' && b != b'\\' && !b.is_ascii_uppercase()) {
        return dn.to_owned();
    }
    // Split at unescaped separators, trim each part, join again, lower-cased.
    let mut out = String::with_capacity(dn.len());
    let mut part = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        if escaped {
            part.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                part.push(c);
                escaped = true;
            }
            ',' | '=' | '+' => {
                out.push_str(part.trim());
                out.push(c);
                part.clear();
            }
            _ => part.push(c),
        }
    }
    out.push_str(part.trim());
    out.to_lowercase()
}

struct Reader<'a> {
    directory: &'a mut dyn Directory,
    settings: &'a Settings,
    /// Nested groups by the in-chain rule (an Active Directory with `ldap_nested_groups`).
    ad: bool,
    /// Nested groups elsewhere: every group under a base, by normalized DN → member values; read once per base.
    all_groups: HashMap<(String, String), HashMap<String, Vec<String>>>,
}

impl Reader<'_> {
    fn filter_group(&mut self, f: &GroupFilter) -> Result<FilterFacts, SyncError> {
        let mut parts = Vec::new();
        if !f.object_class.is_empty() {
            parts.push(filter::equality("objectclass", f.object_class.as_str()));
        }
        if !f.id_attribute.is_empty() {
            parts.push(filter::equality(f.id_attribute.as_str(), f.group_name.as_str()));
        }
        let base = self.settings.search.base_dn.clone();
        let spec = self.spec(&base, Scope::Sub, filter::and(parts), vec![f.member_attribute.clone()]);
        let shown = filter::to_string(&spec.filter);
        let found = self.collect(spec, "the group filter's group")?;
        // Upstream takes the first result; none is an error here, not an empty group.
        let Some(group) = found.into_iter().next() else {
            return Err(SyncError::Groups(format!(
                "the group filter's group was not found: no entry under {base:?} matches {shown} (ldap_group_filter_*)"
            )));
        };
        let members = if self.settings.groups.nested && self.ad {
            self.in_chain(&group, &f.member_attribute)?
        } else {
            let direct = self.members(&group, &f.member_attribute)?;
            if self.settings.groups.nested { self.nested(&group, direct, &f.member_attribute, &base, MemberValue::UserDn)? } else { direct }
        };
        Ok(FilterFacts { settings: f.clone(), members: members.into_iter().collect() })
    }

    fn roles(&mut self, r: &RoleSync) -> Result<RoleFacts, SyncError> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (group, roles) in &r.map {
            let resolved = map.entry(group.clone()).or_default();
            for role in roles.iter().map(|role| role_id(role)) {
                if r.known_roles.iter().any(|k| k == role) && !resolved.iter().any(|x| x == role) {
                    resolved.push(role.to_owned());
                }
            }
        }
        let mut facts = RoleFacts { value: MemberValue::Username, names: Vec::new(), members: HashMap::new(), map };
        match r.strategy {
            MembershipStrategy::EachGroup => {
                let template =
                    membership_query(&r.filter, None).map_err(|e| SyncError::Groups(format!("ldap_sync_user_data_roles_filter: {e}")))?;
                facts.value = template.value;
                facts.names = r.map.iter().map(|(group, _)| group.clone()).collect();
                match filter::group_name_attribute(&template.groups) {
                    // Many groups per search, told apart by the attribute that names them.
                    Some(attribute) => {
                        for (chunk_at, chunk) in r.map.chunks(GROUPS_PER_SEARCH).enumerate() {
                            let names: Vec<&str> = chunk.iter().map(|(g, _)| g.as_str()).collect();
                            let groups = filter::with_group_names(&template.groups, &attribute, &names);
                            let spec =
                                self.spec(&r.base_dn, Scope::Sub, groups, vec![template.member_attribute.clone(), attribute.clone()]);
                            for entry in self.collect(spec, &format!("the groups {}", names.join(", ")))? {
                                let named = entry.texts(&attribute);
                                let matched: Vec<u32> = names
                                    .iter()
                                    .enumerate()
                                    .filter(|(_, n)| named.iter().any(|v| v.to_lowercase() == n.to_lowercase()))
                                    .map(|(i, _)| (chunk_at * GROUPS_PER_SEARCH + i) as u32)
                                    .collect();
                                if matched.is_empty() {
                                    continue;
                                }
                                for member in self.resolve_members(&entry, &template, &r.base_dn)? {
                                    let list = facts.members.entry(member_key(template.value, &member)).or_default();
                                    matched.iter().for_each(|&i| push_index(list, i));
                                }
                            }
                        }
                    }
                    // Upstream's way: one search per group.
                    None => {
                        for (index, (group, _)) in r.map.iter().enumerate() {
                            let q = membership_query(&r.filter, Some(group))
                                .map_err(|e| SyncError::Groups(format!("ldap_sync_user_data_roles_filter: {e}")))?;
                            let spec = self.spec(&r.base_dn, Scope::Sub, q.groups.clone(), vec![q.member_attribute.clone()]);
                            for entry in self.collect(spec, &format!("group {group:?}"))? {
                                for member in self.resolve_members(&entry, &q, &r.base_dn)? {
                                    push_index(facts.members.entry(member_key(q.value, &member)).or_default(), index as u32);
                                }
                            }
                        }
                    }
                }
            }
            MembershipStrategy::Once => {
                let q =
                    membership_query(&r.filter, None).map_err(|e| SyncError::Groups(format!("ldap_sync_user_data_roles_filter: {e}")))?;
                facts.value = q.value;
                let spec = self.spec(
                    &r.base_dn,
                    self.settings.search.scope,
                    q.groups.clone(),
                    vec![q.member_attribute.clone(), "ou".into(), "cn".into()],
                );
                for entry in self.collect(spec, "the groups of ldap_sync_user_data_roles_filter")? {
                    let names = match entry.texts("ou") {
                        ou if !ou.is_empty() => ou,
                        _ => entry.texts("cn"),
                    };
                    let members = self.resolve_members(&entry, &q, &r.base_dn)?;
                    for name in names {
                        let index = match facts.names.iter().position(|n| *n == name) {
                            Some(i) => i as u32,
                            None => {
                                facts.names.push(name);
                                (facts.names.len() - 1) as u32
                            }
                        };
                        for member in &members {
                            push_index(facts.members.entry(member_key(q.value, member)).or_default(), index);
                        }
                    }
                }
            }
        }
        Ok(facts)
    }

    /// The members of one group found by a membership query: its member
    /// values, or with nested groups also those of groups within it.
    fn resolve_members(&mut self, group: &DirectoryEntry, q: &filter::MembershipQuery, base: &str) -> Result<Vec<String>, SyncError> {
        let nested = self.settings.groups.nested || q.in_chain;
        if nested && q.value == MemberValue::UserDn && (self.ad || q.in_chain) {
            return self.in_chain(group, &q.member_attribute);
        }
        let direct = self.members(group, &q.member_attribute)?;
        if nested && q.value == MemberValue::UserDn { self.nested(group, direct, &q.member_attribute, base, q.value) } else { Ok(direct) }
    }

    /// Active Directory: the users whose `<attr>` reaches the group through any chain.
    fn in_chain(&mut self, group: &DirectoryEntry, attribute: &str) -> Result<Vec<String>, SyncError> {
        let back_link = if attribute.eq_ignore_ascii_case("member") { "memberOf" } else { attribute };
        let rule = filter::extensible(back_link, IN_CHAIN_RULE, group.dn.as_str());
        let base = self.settings.search.base_dn.clone();
        let spec = self.spec(&base, Scope::Sub, rule, vec!["1.1".to_owned()]);
        Ok(self
            .collect(spec, &format!("the nested members of {:?}", group.dn.as_str()))?
            .into_iter()
            .map(|e| e.dn.as_str().to_owned())
            .collect())
    }

    /// Elsewhere: members of member groups too, each group once (cycles end there).
    fn nested(
        &mut self,
        group: &DirectoryEntry,
        direct: Vec<String>,
        attribute: &str,
        base: &str,
        value: MemberValue,
    ) -> Result<Vec<String>, SyncError> {
        let key = (base.to_owned(), attribute.to_ascii_lowercase());
        if !self.all_groups.contains_key(&key) {
            let spec = self.spec(base, Scope::Sub, filter::present(attribute), vec![attribute.to_owned()]);
            let mut all = HashMap::new();
            for entry in self.collect(spec, &format!("the groups under {base:?} for nested groups"))? {
                let members = self.members(&entry, attribute)?;
                all.insert(normalize_dn(entry.dn.as_str()), members);
            }
            self.all_groups.insert(key.clone(), all);
        }
        let all = self.all_groups.get(&key).map(|a| a as &HashMap<String, Vec<String>>);
        let Some(all) = all else { return Ok(direct) };
        let mut seen_groups: HashSet<String> = HashSet::from([normalize_dn(group.dn.as_str())]);
        let mut out: Vec<String> = Vec::new();
        let mut out_keys: HashSet<String> = HashSet::new();
        let mut queue: Vec<String> = direct;
        while let Some(member) = queue.pop() {
            let norm = normalize_dn(&member);
            match all.get(&norm) {
                Some(inner) => {
                    if seen_groups.insert(norm) {
                        queue.extend(inner.iter().cloned());
                    }
                }
                None => {
                    if out_keys.insert(member_key(value, &member)) {
                        out.push(member);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The values of `attribute`, following Active Directory's ranged
    /// retrieval (`member;range=0-1499`) to the end.
    fn members(&mut self, group: &DirectoryEntry, attribute: &str) -> Result<Vec<String>, SyncError> {
        let mut out = group.texts(attribute);
        let mut next = ranged(group, attribute, &mut out);
        let mut rounds = 0;
        while let Some(from) = next {
            rounds += 1;
            if rounds > MAX_RANGE_ROUNDS {
                return Err(SyncError::Groups(format!("{:?}: {attribute} is ranged past {MAX_RANGE_ROUNDS} rounds", group.dn.as_str())));
            }
            let spec =
                self.spec(group.dn.as_str(), Scope::Base, filter::present("objectClass"), vec![format!("{attribute};range={from}-*")]);
            let Some(part) = self.collect(spec, &format!("the members of {:?}", group.dn.as_str()))?.into_iter().next() else {
                break;
            };
            next = ranged(&part, attribute, &mut out);
        }
        Ok(out)
    }

    fn spec(&self, base: &str, scope: Scope, filter: LdapFilter, attributes: Vec<String>) -> SearchSpec {
        SearchSpec {
            base: base.to_owned(),
            scope,
            filter,
            attributes,
            page_size: self.settings.search.page_size,
            size_limit: self.settings.search.size_limit,
            sync: None,
            dirsync: None,
        }
    }

    /// Every entry of a search that must be complete.
    fn collect(&mut self, spec: SearchSpec, what: &str) -> Result<Vec<DirectoryEntry>, SyncError> {
        let mut found = Vec::new();
        let end = self
            .directory
            .search(spec, &mut |page| {
                found.extend(page);
                Ok(())
            })
            .map_err(|e| SyncError::Groups(format!("reading {what}: {e}")))?;
        if end.references > 0 {
            return Err(SyncError::Groups(format!(
                "reading {what}: the server sent {} continuation references, so the read is incomplete; use a base DN within one server",
                end.references
            )));
        }
        Ok(found)
    }
}

fn push_index(list: &mut Vec<u32>, index: u32) {
    if !list.contains(&index) {
        list.push(index);
    }
}

/// Appends the values of a ranged `attribute;range=lo-hi` of `entry` to
/// `out`; the next range's start, unless this one was the last (`hi` = `*`).
fn ranged(entry: &DirectoryEntry, attribute: &str, out: &mut Vec<String>) -> Option<u64> {
    let prefix = format!("{};range=", attribute.to_ascii_lowercase());
    let (name, values) = entry.attributes().find(|(name, _)| name.to_ascii_lowercase().starts_with(&prefix))?;
    out.extend(values.iter().map(|v| String::from_utf8_lossy(v).into_owned()));
    let (_, high) = name[prefix.len()..].split_once('-')?;
    high.parse::<u64>().ok().map(|h| h + 1)
}

#[cfg(test)]
mod tests;
