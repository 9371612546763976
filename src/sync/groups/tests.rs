//! Group facts against a directory that answers by filter.

use std::collections::BTreeMap;

use super::*;
use crate::ldap::{LdapError, SearchEnd};
use crate::settings::VariableSource;

struct Vars(BTreeMap<&'static str, &'static str>);

impl VariableSource for Vars {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(name).map(|v| (*v).to_owned()))
    }
}

fn settings(extra: &[(&'static str, &'static str)]) -> Settings {
    let mut vars: BTreeMap<_, _> = [("ldap_server_type", ""), ("ldap_basedn", "dc=x")].into_iter().collect();
    vars.extend(extra.iter().copied());
    Settings::load(&Vars(vars)).expect("valid settings")
}

/// Answers each search by its filter's text (and base, for base searches).
#[derive(Default)]
struct ByFilter {
    answers: BTreeMap<String, Vec<DirectoryEntry>>,
    asked: Vec<String>,
    controls: Vec<String>,
}

impl ByFilter {
    fn answer(mut self, filter: &str, entries: Vec<DirectoryEntry>) -> Self {
        self.answers.insert(filter.to_owned(), entries);
        self
    }
}

impl Directory for ByFilter {
    fn search(
        &mut self,
        spec: SearchSpec,
        on_page: &mut dyn FnMut(Vec<DirectoryEntry>) -> Result<(), SyncError>,
    ) -> Result<SearchEnd, SyncError> {
        let key = filter::to_string(&spec.filter);
        let key = if spec.scope == Scope::Base { format!("{}|{key}|{}", spec.base, spec.attributes.join(",")) } else { key };
        self.asked.push(key.clone());
        match self.answers.get(&key) {
            Some(entries) => on_page(entries.clone())?,
            None if key.contains("missing") => return Err(LdapError::Closed { op: "search" }.into()),
            None => {}
        }
        Ok(SearchEnd::default())
    }

    fn supported_controls(&mut self) -> Result<Vec<String>, SyncError> {
        Ok(self.controls.clone())
    }
}

/// A group entry: its `cn` (from the DN) and `attr` listing `members`.
fn group(dn: &str, attr: &str, members: &[&str]) -> DirectoryEntry {
    let cn = dn.split(',').next().and_then(|rdn| rdn.strip_prefix("cn=")).unwrap_or_default();
    DirectoryEntry::new(
        dn,
        vec![("cn".to_owned(), vec![cn.as_bytes().to_vec()]), (attr.to_owned(), members.iter().map(|m| m.as_bytes().to_vec()).collect())],
    )
}

#[test]
fn each_group_reads_every_mapped_group_once_and_maps_roles_upstreams_way() {
    let s = settings(&[
        ("ldap_sync_user_data_roles", "true"),
        ("ldap_sync_user_data_roles_basedn", "ou=groups,dc=x"),
        ("ldap_sync_user_data_rolesmap", r#"{"admins":["admin.extra","nonexistent"],"mods":"moderator","both":["moderator","bot"]}"#),
    ]);
    let groups = vec![
        group("cn=admins,ou=groups,dc=x", "memberUid", &["ann", "Bob"]),
        group("cn=MODS,ou=groups,dc=x", "memberUid", &["bob", "ann"]),
        group("cn=both,ou=groups,dc=x", "memberUid", &["bob"]),
    ];
    let mut dir = ByFilter::default().answer("(&(|(cn=admins)(cn=mods)(cn=both))(memberUid=*))", groups.clone());
    let facts = GroupFacts::read(&mut dir, &s).expect("reads");
    assert_eq!(dir.asked.len(), 1, "one search for every mapped group: {:?}", dir.asked);
    let roles = |dn: &str, u: &str| facts.roles_for(dn, u).expect("roles on").target;
    assert_eq!(roles("uid=ann,dc=x", "ann"), ["admin", "moderator"]);
    assert_eq!(roles("uid=bob,dc=x", "bob"), ["moderator", "bot"]);
    assert!(roles("uid=carl,dc=x", "carl").is_empty());
    let r = s.groups.roles.as_ref().expect("on");
    assert_eq!(allowed_roles(r), ["admin", "moderator", "bot"]);
    assert_eq!(unknown_roles(r), ["nonexistent"]);
    assert!(facts.digest().is_some());

    // A group name inside a longer value: upstream's way, one search per group.
    let s = settings(&[
        ("ldap_sync_user_data_roles", "true"),
        ("ldap_sync_user_data_roles_basedn", "ou=groups,dc=x"),
        ("ldap_sync_user_data_roles_filter", "(&(cn=rc-#{groupName})(memberUid=#{username}))"),
        ("ldap_sync_user_data_rolesmap", r#"{"admins":"admin","mods":"moderator"}"#),
    ]);
    let mut dir = ByFilter::default()
        .answer("(&(cn=rc-admins)(memberUid=*))", vec![groups[0].clone()])
        .answer("(&(cn=rc-mods)(memberUid=*))", vec![groups[1].clone()]);
    let facts = GroupFacts::read(&mut dir, &s).expect("reads");
    assert_eq!(dir.asked.len(), 2, "{:?}", dir.asked);
    assert_eq!(facts.roles_for("uid=ann,dc=x", "ann").expect("on").target, ["admin", "moderator"]);
}

#[test]
fn once_names_groups_by_ou_then_cn_and_compares_dns_without_case_or_spaces() {
    let s = settings(&[
        ("ldap_sync_user_data_roles", "true"),
        ("ldap_sync_user_data_roles_groupmembershipvalidationstrategy", "once"),
        ("ldap_sync_user_data_roles_basedn", "ou=groups,dc=x"),
        ("ldap_sync_user_data_roles_filter", "(&(objectClass=groupOfNames)(member=#{userdn}))"),
        ("ldap_sync_user_data_rolesmap", r#"{"Admins":"admin","support-ou":"livechat-agent"}"#),
    ]);
    let mut with_ou = group("cn=helpdesk,ou=groups,dc=x", "member", &["UID=Ann, DC=X"]);
    with_ou.push_attribute("ou", vec![b"support-ou".to_vec()]);
    with_ou.push_attribute("cn", vec![b"helpdesk".to_vec()]);
    let mut admins = group("cn=Admins,ou=groups,dc=x", "member", &["uid=ann,dc=x", "uid=bob,dc=x"]);
    admins.push_attribute("cn", vec![b"Admins".to_vec()]);
    let mut dir = ByFilter::default().answer("(&(objectClass=groupOfNames)(member=*))", vec![with_ou, admins]);
    let facts = GroupFacts::read(&mut dir, &s).expect("reads");
    assert_eq!(dir.asked.len(), 1);
    assert_eq!(facts.roles_for("uid=ann,dc=x", "ann").expect("on").target, ["livechat-agent", "admin"]);
    assert_eq!(facts.roles_for("uid=bob,dc=x", "bob").expect("on").target, ["admin"]);
}

#[test]
fn nested_groups_are_expanded_once_each_and_a_cycle_ends() {
    let s = settings(&[
        ("ldap_sync_user_data_roles", "true"),
        ("ldap_sync_user_data_roles_basedn", "ou=groups,dc=x"),
        ("ldap_sync_user_data_roles_filter", "(&(cn=#{groupName})(member=#{userdn}))"),
        ("ldap_sync_user_data_rolesmap", r#"{"top":"admin"}"#),
        ("ldap_nested_groups", "true"),
    ]);
    let top = group("cn=top,ou=groups,dc=x", "member", &["uid=ann,dc=x", "cn=inner,ou=groups,dc=x"]);
    let inner = group("cn=inner,ou=groups,dc=x", "member", &["uid=bob,dc=x", "cn=top,ou=groups,dc=x", "CN=Deeper,OU=Groups,DC=X"]);
    let deeper = group("cn=deeper,ou=groups,dc=x", "member", &["uid=carl,dc=x", "cn=inner,ou=groups,dc=x"]);
    let mut dir = ByFilter::default().answer("(&(cn=top)(member=*))", vec![top.clone()]).answer("(member=*)", vec![top, inner, deeper]);
    let facts = GroupFacts::read(&mut dir, &s).expect("reads");
    for user in ["ann", "bob", "carl"] {
        assert_eq!(facts.roles_for(&format!("uid={user},dc=x"), user).expect("on").target, ["admin"], "{user}");
    }
    assert!(facts.roles_for("cn=inner,ou=groups,dc=x", "inner").expect("on").target.is_empty(), "a group is no member");
    assert_eq!(dir.asked.len(), 2, "{:?}", dir.asked);
}

#[test]
fn on_active_directory_nested_groups_use_the_in_chain_rule() {
    let s = settings(&[
        ("ldap_sync_user_data_roles", "true"),
        ("ldap_sync_user_data_roles_basedn", "ou=groups,dc=x"),
        ("ldap_sync_user_data_roles_filter", "(&(cn=#{groupName})(member=#{userdn}))"),
        ("ldap_sync_user_data_rolesmap", r#"{"top":"admin"}"#),
        ("ldap_nested_groups", "true"),
    ]);
    let mut dir = ByFilter { controls: vec![OID_DIRSYNC.to_owned()], ..ByFilter::default() }
        .answer("(&(cn=top)(member=*))", vec![group("cn=top,ou=groups,dc=x", "member", &[])])
        .answer("(memberOf:1.2.840.113556.1.4.1941:=cn=top,ou=groups,dc=x)", vec![DirectoryEntry::new("CN=Ann,DC=x", vec![])]);
    let facts = GroupFacts::read(&mut dir, &s).expect("reads");
    assert_eq!(facts.roles_for("cn=ann,dc=x", "ann").expect("on").target, ["admin"]);
}

#[test]
fn ranged_members_are_read_to_the_end() {
    let s = settings(&[
        ("ldap_group_filter_enable", "true"),
        ("ldap_group_filter_objectclass", "group"),
        ("ldap_group_filter_group_member_attribute", "member"),
        ("ldap_group_filter_group_member_format", "#{userdn}"),
        ("ldap_group_filter_group_name", "chat"),
    ]);
    let first = group("cn=chat,dc=x", "member;range=0-1", &["uid=a,dc=x", "uid=b,dc=x"]);
    let second = group("cn=chat,dc=x", "member;range=2-*", &["uid=c,dc=x"]);
    let mut dir = ByFilter::default()
        .answer("(&(objectclass=group)(cn=chat))", vec![first])
        .answer("cn=chat,dc=x|(objectClass=*)|member;range=2-*", vec![second]);
    let facts = GroupFacts::read(&mut dir, &s).expect("reads");
    assert!(facts.filters());
    for (dn, inside) in [("uid=a,dc=x", true), ("uid=c,dc=x", true), ("uid=d,dc=x", false), ("UID=A,DC=X", false)] {
        assert_eq!(facts.admits(dn, Some("x")), inside, "{dn}");
    }
}

#[test]
fn a_missing_filter_group_or_a_failed_group_read_stops_the_run() {
    let s = settings(&[("ldap_group_filter_enable", "true"), ("ldap_group_filter_group_member_format", "#{username}")]);
    let err = GroupFacts::read(&mut ByFilter::default(), &s).expect_err("no group");
    assert_eq!(
        err.to_string(),
        "groups: the group filter's group was not found: no entry under \"dc=x\" matches (&(objectclass=groupOfUniqueNames)(cn=ROCKET_CHAT)) (ldap_group_filter_*)"
    );
    let s = settings(&[
        ("ldap_sync_user_data_roles", "true"),
        ("ldap_sync_user_data_roles_basedn", "ou=groups,dc=x"),
        ("ldap_sync_user_data_rolesmap", r#"{"missing":"admin"}"#),
    ]);
    let err = GroupFacts::read(&mut ByFilter::default(), &s).expect_err("read fails");
    assert!(err.to_string().starts_with("groups: reading the groups missing: "), "{err}");
}

#[test]
fn role_ids_are_cut_at_the_first_dot_followed_by_something() {
    assert_eq!(role_id("admin.anything"), "admin");
    assert_eq!(role_id("admin."), "admin.");
    assert_eq!(role_id("a.b.c"), "a");
    assert_eq!(role_id("plain"), "plain");
}

#[test]
fn dns_normalize_without_case_and_separator_spaces() {
    assert_eq!(normalize_dn(" CN=Ann Lee , OU=People,DC=X "), "cn=ann lee,ou=people,dc=x");
    assert_eq!(normalize_dn("cn=a\\, b,dc=x"), "cn=a\\, b,dc=x");
}
