//! Group-membership filters (`ldap_sync_user_data_roles_filter`): upstream
//! runs one per user and group, `(&(cn=#{groupName})(memberUid=#{username}))`
//! with the user's values put in. Read the other way round, the same filter
//! with its user assertion made a presence test finds every group it could
//! match for anyone, and the asserted attribute of those groups lists who
//! matches: one search per group and run instead of one per user.

use ldap3_proto::proto::LdapFilter;

use super::parse::parse_user_filter;
use super::{FilterError, escape_value};

/// `#{username}`: the user's (slugified) username.
pub const USERNAME: &str = "#{username}";
/// `#{userdn}`: the user's DN.
pub const USERDN: &str = "#{userdn}";
/// `#{groupName}`: a key of the roles map.
pub const GROUP_NAME: &str = "#{groupName}";
/// Active Directory's LDAP_MATCHING_RULE_IN_CHAIN (nested membership).
pub const IN_CHAIN_RULE: &str = "1.2.840.113556.1.4.1941";

/// What a member value of a group holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberValue {
    /// The username (`memberUid`); compared exactly, as `caseExactIA5Match`.
    Username,
    /// The user's DN (`member`, `uniqueMember`); compared as DNs.
    UserDn,
}

/// A membership filter read the other way round.
#[derive(Debug, Clone, PartialEq)]
pub struct MembershipQuery {
    /// The filter with its user assertion made a presence test.
    pub groups: LdapFilter,
    /// The attribute the user assertion named.
    pub member_attribute: String,
    pub value: MemberValue,
    /// The assertion used AD's in-chain rule: members of nested groups count.
    pub in_chain: bool,
}

/// Why a membership filter cannot be read the other way round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error(transparent)]
    Syntax(#[from] FilterError),
    #[error("it names no user: it needs one (attribute=#{{username}}) or (attribute=#{{userdn}}) assertion")]
    NoUserAssertion,
    #[error("it names the user more than once")]
    SeveralUserAssertions,
    #[error("the user may appear only in an equality assertion (attribute=#{{username}}) joined by & (not under | or !)")]
    UnsupportedUserAssertion,
}

/// Reads `template` for the group `group_name` (put in, escaped, for each
/// `#{groupName}`; `None` leaves it as text, as upstream's `once` does).
pub fn membership_query(template: &str, group_name: Option<&str>) -> Result<MembershipQuery, MembershipError> {
    let text = match group_name {
        Some(name) => template.replace(GROUP_NAME, &escape_value(name)),
        None => template.to_owned(),
    };
    let Some(filter) = parse_user_filter(&text)? else {
        return Err(MembershipError::NoUserAssertion);
    };
    let mut found = None;
    let groups = reduce(filter, true, &mut found)?;
    let (member_attribute, value, in_chain) = found.ok_or(MembershipError::NoUserAssertion)?;
    Ok(MembershipQuery { groups, member_attribute, value, in_chain })
}

type Found = Option<(String, MemberValue, bool)>;

fn reduce(filter: LdapFilter, and_only: bool, found: &mut Found) -> Result<LdapFilter, MembershipError> {
    let placeholder = |v: &str| match v {
        USERNAME => Some(MemberValue::Username),
        USERDN => Some(MemberValue::UserDn),
        _ => None,
    };
    let mut claim = |attr: String, value: MemberValue, in_chain: bool| {
        if !and_only {
            return Err(MembershipError::UnsupportedUserAssertion);
        }
        if found.is_some() {
            return Err(MembershipError::SeveralUserAssertions);
        }
        *found = Some((attr.clone(), value, in_chain));
        Ok(LdapFilter::Present(attr))
    };
    match filter {
        LdapFilter::And(parts) => Ok(LdapFilter::And(parts.into_iter().map(|p| reduce(p, and_only, found)).collect::<Result<_, _>>()?)),
        LdapFilter::Or(parts) => Ok(LdapFilter::Or(parts.into_iter().map(|p| reduce(p, false, found)).collect::<Result<_, _>>()?)),
        LdapFilter::Not(inner) => Ok(LdapFilter::Not(Box::new(reduce(*inner, false, found)?))),
        LdapFilter::Equality(attr, value) => match placeholder(&value) {
            Some(kind) => claim(attr, kind, false),
            None => names_no_user(LdapFilter::Equality(attr, value)),
        },
        LdapFilter::Extensible(mra) => {
            let in_chain = mra.matching_rule.as_deref() == Some(IN_CHAIN_RULE);
            match (placeholder(&mra.match_value), &mra.type_) {
                (Some(MemberValue::UserDn), Some(attr)) if in_chain && !mra.dn_attributes => claim(attr.clone(), MemberValue::UserDn, true),
                _ => names_no_user(LdapFilter::Extensible(mra)),
            }
        }
        other => names_no_user(other),
    }
}

/// The attribute of the one `(attribute=#{groupName})` of a membership
/// filter read with [`membership_query`] without a group name, when that is
/// the only place the group name goes and only `&` leads there: then one
/// search can ask for many groups ([`with_group_names`]), and each result
/// tells by that attribute which group it is.
pub fn group_name_attribute(groups: &LdapFilter) -> Option<String> {
    fn find(filter: &LdapFilter, out: &mut Vec<String>) {
        match filter {
            LdapFilter::And(parts) => parts.iter().for_each(|p| find(p, out)),
            LdapFilter::Equality(attr, value) if value == GROUP_NAME => out.push(attr.clone()),
            _ => {}
        }
    }
    let mut found = Vec::new();
    find(groups, &mut found);
    let mentions = super::to_string(groups).matches(GROUP_NAME).count();
    match found.as_slice() {
        [one] if mentions == 1 => Some(one.clone()),
        _ => None,
    }
}

/// `groups` with its `(attribute=#{groupName})` made `(|(attribute=<name>)...)`.
pub fn with_group_names(groups: &LdapFilter, attribute: &str, names: &[&str]) -> LdapFilter {
    match groups {
        LdapFilter::And(parts) => LdapFilter::And(parts.iter().map(|p| with_group_names(p, attribute, names)).collect()),
        LdapFilter::Equality(attr, value) if value == GROUP_NAME && attr == attribute => {
            super::or(names.iter().map(|n| LdapFilter::Equality(attr.clone(), (*n).to_owned())).collect())
        }
        other => other.clone(),
    }
}

/// A part that is not the user assertion must not mention the user at all.
fn names_no_user(filter: LdapFilter) -> Result<LdapFilter, MembershipError> {
    let text = super::to_string(&filter);
    if text.contains(USERNAME) || text.contains(USERDN) { Err(MembershipError::UnsupportedUserAssertion) } else { Ok(filter) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ldap::filter::to_string;

    fn query(t: &str, g: Option<&str>) -> Result<(String, String, MemberValue, bool), MembershipError> {
        membership_query(t, g).map(|q| (to_string(&q.groups), q.member_attribute, q.value, q.in_chain))
    }

    #[test]
    fn upstreams_default_filter_reads_as_the_groups_memberuid() {
        assert_eq!(
            query("(&(cn=#{groupName})(memberUid=#{username}))", Some("rocket-admin")).expect("reads"),
            ("(&(cn=rocket-admin)(memberUid=*))".to_owned(), "memberUid".to_owned(), MemberValue::Username, false)
        );
    }

    #[test]
    fn a_group_name_is_escaped_and_dn_members_and_in_chain_are_recognised() {
        assert_eq!(
            query("(&(objectClass=groupOfNames)(cn=#{groupName})(member=#{userdn}))", Some("a(b)*")).expect("reads"),
            ("(&(objectClass=groupOfNames)(cn=a\\28b\\29\\2a)(member=*))".to_owned(), "member".to_owned(), MemberValue::UserDn, false)
        );
        let (groups, attr, value, in_chain) =
            query("(&(objectCategory=group)(member:1.2.840.113556.1.4.1941:=#{userdn}))", None).expect("reads");
        assert_eq!(
            (groups.as_str(), attr.as_str(), value, in_chain),
            ("(&(objectCategory=group)(member=*))", "member", MemberValue::UserDn, true)
        );
    }

    #[test]
    fn many_groups_go_in_one_search_when_the_name_sits_in_one_equality() {
        let q = membership_query("(&(objectClass=groupOfNames)(cn=#{groupName})(member=#{userdn}))", None).expect("reads");
        let attr = group_name_attribute(&q.groups).expect("batchable");
        assert_eq!(attr, "cn");
        assert_eq!(
            to_string(&with_group_names(&q.groups, &attr, &["a", "b(c)"])),
            "(&(objectClass=groupOfNames)(|(cn=a)(cn=b\\28c\\29))(member=*))"
        );
        let sub = membership_query("(&(cn=x-#{groupName})(memberUid=#{username}))", None).expect("reads");
        assert_eq!(group_name_attribute(&sub.groups), None, "a name inside a longer value: one search per group");
        let twice = membership_query("(&(cn=#{groupName})(description=#{groupName})(memberUid=#{username}))", None).expect("reads");
        assert_eq!(group_name_attribute(&twice.groups), None);
    }

    #[test]
    fn filters_that_cannot_be_turned_round_are_refused() {
        assert_eq!(query("(cn=#{groupName})", Some("g")), Err(MembershipError::NoUserAssertion));
        assert_eq!(query("(|(memberUid=#{username})(cn=x))", None), Err(MembershipError::UnsupportedUserAssertion));
        assert_eq!(query("(&(memberUid=#{username})(member=#{userdn}))", None), Err(MembershipError::SeveralUserAssertions));
        assert_eq!(query("(&(cn=g)(memberUid=#{username}*))", None), Err(MembershipError::UnsupportedUserAssertion));
        assert!(matches!(query("(&(cn=g)", None), Err(MembershipError::Syntax(_))));
    }
}
