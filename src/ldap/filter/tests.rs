//! Shared helpers for the filter tests, and the builders' tests.

use ldap3_proto::proto::{LdapFilter, LdapMatchingRuleAssertion, LdapSubstringFilter};

use super::*;

pub(super) fn eq(attr: &str, value: &str) -> LdapFilter {
    LdapFilter::Equality(attr.into(), value.into())
}

pub(super) fn sub(attr: &str, initial: Option<&str>, any: &[&str], final_: Option<&str>) -> LdapFilter {
    LdapFilter::Substring(
        attr.into(),
        LdapSubstringFilter {
            initial: initial.map(Into::into),
            any: any.iter().map(|s| (*s).to_owned()).collect(),
            final_: final_.map(Into::into),
        },
    )
}

pub(super) fn ext(attr: Option<&str>, dn: bool, rule: Option<&str>, value: &str) -> LdapFilter {
    LdapFilter::Extensible(LdapMatchingRuleAssertion {
        matching_rule: rule.map(Into::into),
        type_: attr.map(Into::into),
        match_value: value.into(),
        dn_attributes: dn,
    })
}

/// Parses, checks the result, and checks that rendering parses back to it.
#[track_caller]
pub(super) fn check(text: &str, expected: LdapFilter) {
    assert_eq!(parse(text), Ok(expected.clone()), "{text}");
    let rendered = to_string(&expected);
    assert_eq!(parse(&rendered), Ok(expected), "{text} rendered as {rendered}");
}

#[track_caller]
pub(super) fn check_err(text: &str, message: &str, position: usize) {
    let err = parse(text).expect_err(text);
    assert_eq!(err.to_string(), message, "{text}");
    assert_eq!(err.position(), position, "{text}");
}
// ---- builders ----

#[test]
fn builders() {
    assert_eq!(present("mail"), LdapFilter::Present("mail".into()));
    assert_eq!(equality("uid", "a*b"), eq("uid", "a*b"));
    assert_eq!(to_string(&equality("uid", "a*b")), r"(uid=a\2ab)");
    assert_eq!(and(vec![present("mail")]), present("mail"));
    assert_eq!(or(vec![present("mail")]), present("mail"));
    assert_eq!(and(vec![]), LdapFilter::And(vec![]));
    assert_eq!(or(vec![]), LdapFilter::Or(vec![]));
    assert_eq!(and(vec![present("a"), equality("b", "c")]), LdapFilter::And(vec![present("a"), eq("b", "c")]));
    assert_eq!(or(vec![present("a"), equality("b", "c")]), LdapFilter::Or(vec![present("a"), eq("b", "c")]));
    let combined = and(vec![
        parse_user_filter("objectClass=person").expect("valid").expect("non-empty"),
        or(vec![equality("uid", "jdoe"), equality("mail", "jdoe@example.com")]),
    ]);
    assert_eq!(to_string(&combined), "(&(objectClass=person)(|(uid=jdoe)(mail=jdoe@example.com)))");
    assert_eq!(parse(&to_string(&combined)), Ok(combined));
}
