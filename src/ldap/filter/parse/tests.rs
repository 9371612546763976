use ldap3_proto::proto::LdapFilter;

use super::super::tests::{check, check_err, eq, ext, sub};
use super::super::*;
use super::{HEX_DIGITS, OPERATORS};

// ---- RFC 4515 §4, every example ----

#[test]
fn rfc4515_simple_examples() {
    check("(cn=Babs Jensen)", eq("cn", "Babs Jensen"));
    check("(!(cn=Tim Howes))", LdapFilter::Not(Box::new(eq("cn", "Tim Howes"))));
    check(
        "(&(objectClass=Person)(|(sn=Jensen)(cn=Babs J*)))",
        LdapFilter::And(vec![eq("objectClass", "Person"), LdapFilter::Or(vec![eq("sn", "Jensen"), sub("cn", Some("Babs J"), &[], None)])]),
    );
    check("(o=univ*of*mich*)", sub("o", Some("univ"), &["of", "mich"], None));
    check("(seeAlso=)", eq("seeAlso", ""));
}

#[test]
fn rfc4515_extensible_examples() {
    check("(cn:caseExactMatch:=Fred Flintstone)", ext(Some("cn"), false, Some("caseExactMatch"), "Fred Flintstone"));
    check("(cn:=Betty Rubble)", ext(Some("cn"), false, None, "Betty Rubble"));
    check("(sn:dn:2.4.6.8.10:=Barney Rubble)", ext(Some("sn"), true, Some("2.4.6.8.10"), "Barney Rubble"));
    check("(o:dn:=Ace Industry)", ext(Some("o"), true, None, "Ace Industry"));
    check("(:1.2.3:=Wilma Flintstone)", ext(None, false, Some("1.2.3"), "Wilma Flintstone"));
    check("(:DN:2.4.6.8.10:=Dino)", ext(None, true, Some("2.4.6.8.10"), "Dino"));
}

#[test]
fn rfc4515_escape_examples() {
    check(r"(o=Parens R Us \28for all your parenthetical needs\29)", eq("o", "Parens R Us (for all your parenthetical needs)"));
    check(r"(cn=*\2A*)", sub("cn", None, &["*"], None));
    check(r"(filename=C:\5cMyFile)", eq("filename", r"C:\MyFile"));
    check(r"(bin=\00\00\00\04)", eq("bin", "\0\0\0\u{4}"));
    check(r"(sn=Lu\c4\8di\c4\87)", eq("sn", "Lučić"));
    check(r"(1.3.6.1.4.1.1466.0=\04\02\48\69)", eq("1.3.6.1.4.1.1466.0", "\u{4}\u{2}Hi"));
}

// ---- the rest of the grammar ----

#[test]
fn all_item_kinds() {
    check("(cn~=Jensen)", LdapFilter::Approx("cn".into(), "Jensen".into()));
    check("(uidNumber>=1000)", LdapFilter::GreaterOrEqual("uidNumber".into(), "1000".into()));
    check("(uidNumber<=1000)", LdapFilter::LessOrEqual("uidNumber".into(), "1000".into()));
    check("(mail=*)", LdapFilter::Present("mail".into()));
    check("(cn=Babs*)", sub("cn", Some("Babs"), &[], None));
    check("(cn=*Jensen)", sub("cn", None, &[], Some("Jensen")));
    check("(cn=*abs*)", sub("cn", None, &["abs"], None));
    check("(cn=B*a*b*s)", sub("cn", Some("B"), &["a", "b"], Some("s")));
    check("(userAccountControl:1.2.840.113556.1.4.803:=2)", ext(Some("userAccountControl"), false, Some("1.2.840.113556.1.4.803"), "2"));
    check(
        "(memberOf:1.2.840.113556.1.4.1941:=cn=Staff,ou=Groups,dc=example,dc=com)",
        ext(Some("memberOf"), false, Some("1.2.840.113556.1.4.1941"), "cn=Staff,ou=Groups,dc=example,dc=com"),
    );
}

#[test]
fn attribute_descriptions() {
    check("(cn;lang-en=Babs)", eq("cn;lang-en", "Babs"));
    check("(cn;lang-en;binary=x)", eq("cn;lang-en;binary", "x"));
    check("(2.5.4.3=Babs)", eq("2.5.4.3", "Babs"));
    check("(2.5.4.3;lang-de=*)", LdapFilter::Present("2.5.4.3;lang-de".into()));
    check("(msDS-User-Account-Control-Computed=0)", eq("msDS-User-Account-Control-Computed", "0"));
    check("(x0=1)", eq("x0", "1"));
    check("(0.0=1)", eq("0.0", "1"));
}

#[test]
fn spaces_are_literal_in_values() {
    check("(cn= Babs  Jensen )", eq("cn", " Babs  Jensen "));
    check("(cn= )", eq("cn", " "));
    check("(cn= * )", sub("cn", Some(" "), &[], Some(" ")));
    check(r"(cn=Smith\2c John*)", sub("cn", Some("Smith, John"), &[], None));
}

#[test]
fn escapes_decode_in_every_value_position() {
    check(r"(cn=\2A)", eq("cn", "*"));
    check(r"(cn=\2a\28\29\5C\00)", eq("cn", "*()\\\0"));
    check(r"(cn=\41*\42*\43)", sub("cn", Some("A"), &["B"], Some("C")));
    check(r"(cn~=\2a)", LdapFilter::Approx("cn".into(), "*".into()));
    check(r"(n>=\31)", LdapFilter::GreaterOrEqual("n".into(), "1".into()));
    check(r"(n<=\31)", LdapFilter::LessOrEqual("n".into(), "1".into()));
    check(r"(cn:=\2a\28)", ext(Some("cn"), false, None, "*("));
    // Non-ASCII literal and escaped forms mix freely.
    check(r"(sn=Lu\c4\8dić)", eq("sn", "Lučić"));
    // Other control characters may appear unescaped (UTF1SUBSET).
    check("(cn=a\u{1}b)", eq("cn", "a\u{1}b"));
}

#[test]
fn substring_normalisation() {
    // Empty `any` components are dropped; all-stars is presence.
    assert_eq!(parse("(cn=a**b)"), Ok(sub("cn", Some("a"), &[], Some("b"))));
    assert_eq!(parse("(cn=**x***)"), Ok(sub("cn", None, &["x"], None)));
    assert_eq!(parse("(cn=**)"), Ok(LdapFilter::Present("cn".into())));
    assert_eq!(parse("(cn=***)"), Ok(LdapFilter::Present("cn".into())));
}

#[test]
fn extensible_forms() {
    check("(cn:DN:=x)", ext(Some("cn"), true, None, "x"));
    check("(cn:Dn:caseExactMatch:=x)", ext(Some("cn"), true, Some("caseExactMatch"), "x"));
    check("(:dn:caseExactMatch:=x)", ext(None, true, Some("caseExactMatch"), "x"));
    check("(cn;lang-en:dn:=x)", ext(Some("cn;lang-en"), true, None, "x"));
    check("(cn:=)", ext(Some("cn"), false, None, ""));
    check("(cn:= a b )", ext(Some("cn"), false, None, " a b "));
    // Without an attribute the grammar needs a rule, so this `dn` is the rule.
    check("(:dn:=x)", ext(None, false, Some("dn"), "x"));
    check("(:dn:dn:=x)", ext(None, true, Some("dn"), "x"));
    check("(cn:dn:dn:=x)", ext(Some("cn"), true, Some("dn"), "x"));
    // A rule that merely starts with "dn" is a rule.
    check("(cn:dnMatch:=x)", ext(Some("cn"), false, Some("dnMatch"), "x"));
}

#[test]
fn empty_and_or_per_rfc4526() {
    check("(&)", LdapFilter::And(vec![]));
    check("(|)", LdapFilter::Or(vec![]));
    check("(!(&))", LdapFilter::Not(Box::new(LdapFilter::And(vec![]))));
    check("(&(a=b))", LdapFilter::And(vec![eq("a", "b")]));
}

#[test]
fn non_utf8_bytes_are_rejected_with_their_position() {
    let err = parse(r"(objectGUID=\01\02\ff\fe)").expect_err("not utf-8");
    assert_eq!(err, FilterError::NotUtf8 { byte: 0xff, position: 18 });
    assert_eq!(err.to_string(), r"byte value \ff at position 18 cannot be represented: ldap3_proto filter values must be UTF-8");
    // A truncated sequence at the end of a value.
    assert_eq!(parse(r"(sn=Lu\c4)"), Err(FilterError::NotUtf8 { byte: 0xc4, position: 6 }));
    // A stray continuation byte after a literal non-ASCII character.
    assert_eq!(parse(r"(sn=é\a9)"), Err(FilterError::NotUtf8 { byte: 0xa9, position: 6 }));
    // In a substring piece and an extensible value too.
    assert_eq!(parse(r"(cn=a*\80*b)"), Err(FilterError::NotUtf8 { byte: 0x80, position: 6 }));
    assert_eq!(parse(r"(cn:=\fe)"), Err(FilterError::NotUtf8 { byte: 0xfe, position: 5 }));
}

// ---- errors and their positions ----

#[test]
fn structural_errors() {
    check_err("", "unexpected end of filter at position 0, expected '('", 0);
    check_err("cn=x", "expected '(' at position 0", 0);
    check_err(" (cn=x)", "expected '(' at position 0", 0);
    check_err("(cn=Babs Jensen", "unexpected end of filter at position 15, expected ')'", 15);
    check_err("(cn=x))", "trailing characters after filter at position 6", 6);
    check_err("(cn=x) ", "trailing characters after filter at position 6", 6);
    check_err("(cn=x)(sn=y)", "trailing characters after filter at position 6", 6);
    check_err("(&(a=b)x)", "expected '(' or ')' at position 7", 7);
    check_err("(& (a=b))", "expected '(' or ')' at position 2", 2);
    check_err("(&(a=b)", "unexpected end of filter at position 7, expected '(' or ')'", 7);
    check_err("(!)", "expected '(' at position 2", 2);
    check_err("(!(a=b)(c=d))", "expected ')' at position 7", 7);
    check_err("(!a=b)", "expected '(' at position 2", 2);
    check_err("()", "expected attribute description at position 1", 1);
    check_err("(", "unexpected end of filter at position 1, expected attribute description", 1);
}

#[test]
fn item_errors() {
    check_err("(=x)", "expected attribute description at position 1", 1);
    check_err("( cn=x)", "expected attribute description at position 1", 1);
    check_err("(cn =x)", "expected '=', '~=', '>=', '<=' or ':' at position 3", 3);
    check_err("(cn_x=y)", "expected '=', '~=', '>=', '<=' or ':' at position 3", 3);
    check_err("(cn)", "expected '=', '~=', '>=', '<=' or ':' at position 3", 3);
    check_err("(cn~x)", "expected '=' after '~' at position 4", 4);
    check_err("(cn>x)", "expected '=' after '>' at position 4", 4);
    check_err("(cn<x)", "expected '=' after '<' at position 4", 4);
    check_err("(cn;=x)", "expected attribute option at position 4", 4);
    check_err("(-cn=x)", "expected attribute description at position 1", 1);
    check_err("(2=x)", "expected '.' in numeric OID at position 2", 2);
    check_err("(1.=x)", "expected digit at position 3", 3);
    check_err("(01.2=x)", "expected '.' in numeric OID at position 2", 2);
    check_err("(1.02=x)", "expected '=', '~=', '>=', '<=' or ':' at position 4", 4);
}

#[test]
fn value_errors() {
    check_err(r"(cn=a\zz)", r"invalid escape '\zz' at position 5", 5);
    check_err(r"(cn=a\2z)", r"invalid escape '\2z' at position 5", 5);
    check_err(r"(cn=\2)", r"invalid escape '\2)' at position 4", 4);
    check_err(r"(cn=\*)", r"invalid escape '\*)' at position 4", 4);
    check_err(r"(cn=\é1)", r"invalid escape '\é1' at position 4", 4);
    check_err(r"(cn=\", r"unexpected end of filter at position 5, expected two hex digits after '\'", 5);
    check_err(r"(cn=\4", r"unexpected end of filter at position 6, expected two hex digits after '\'", 6);
    check_err("(cn=a(b)", "unescaped '(' in value at position 5 (write it as \\28)", 5);
    check_err("(cn=a\0b)", "unescaped NUL in value at position 5 (write it as \\00)", 5);
    check_err("(cn>=a*)", "unescaped '*' in value at position 6 (write it as \\2a)", 6);
    check_err("(cn~=*)", "unescaped '*' in value at position 5 (write it as \\2a)", 5);
    check_err("(cn:=*)", "unescaped '*' in value at position 5 (write it as \\2a)", 5);
    // Positions are byte offsets: "é" is two bytes.
    check_err("(sn=é(", "unescaped '(' in value at position 6 (write it as \\28)", 6);
}

#[test]
fn extensible_errors() {
    check_err("(:=x)", "expected matching rule at position 2", 2);
    check_err("(:dn:=x", "unexpected end of filter at position 7, expected ')'", 7);
    check_err("(cn:dn)", "expected ':=' at position 6", 6);
    check_err("(cn:dn:", "unexpected end of filter at position 7, expected matching rule", 7);
    check_err("(cn:1.2.3=x)", "expected ':=' at position 9", 9);
    check_err("(cn:1.2.3:x)", "expected '=' after ':' at position 10", 10);
    check_err("(:=)", "expected matching rule at position 2", 2);
    check_err("(cn:)", "expected matching rule at position 4", 4);
}

// ---- limits ----

fn nested_nots(levels: usize) -> String {
    // `levels` parentheses deep in total, innermost `(a=b)` included.
    format!("{}(a=b){}", "(!".repeat(levels - 1), ")".repeat(levels - 1))
}

#[test]
fn depth_limit() {
    let ok = nested_nots(MAX_DEPTH);
    assert!(parse(&ok).is_ok());
    assert_eq!(parse(&to_string(&parse(&ok).expect("ok"))), parse(&ok));

    let deep = nested_nots(MAX_DEPTH + 1);
    let err = parse(&deep).expect_err("too deep");
    assert_eq!(err, FilterError::TooDeep { position: 2 * MAX_DEPTH });
    assert_eq!(err.to_string(), format!("filter nesting deeper than 32 at position {}", 2 * MAX_DEPTH));

    let and_deep = format!("{}(a=b){}", "(&".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert_eq!(parse(&and_deep), Err(FilterError::TooDeep { position: 2 * MAX_DEPTH }));

    // Hostile input fails fast instead of overflowing the stack.
    let hostile = "(!".repeat(30_000);
    assert_eq!(parse(&hostile), Err(FilterError::TooDeep { position: 2 * MAX_DEPTH }));

    // The implied parentheses of a user filter count as one level.
    let user_ok = format!("!{}(a=b){}", "(!".repeat(MAX_DEPTH - 2), ")".repeat(MAX_DEPTH - 2));
    assert!(parse_user_filter(&user_ok).is_ok(), "{user_ok}");
    let user_deep = format!("!{}", nested_nots(MAX_DEPTH));
    assert_eq!(parse_user_filter(&user_deep), Err(FilterError::TooDeep { position: 1 + 2 * (MAX_DEPTH - 1) }));
}

#[test]
fn wide_lists_are_fine() {
    let text = format!("(|{})", "(uid=x)".repeat(5_000));
    assert!(matches!(parse(&text), Ok(LdapFilter::Or(parts)) if parts.len() == 5_000));
}

#[test]
fn length_limit() {
    let value = "x".repeat(MAX_FILTER_LEN - "(cn=)".len());
    let max = format!("(cn={value})");
    assert_eq!(max.len(), MAX_FILTER_LEN);
    assert!(parse(&max).is_ok());

    let over = format!("(cn={value}x)");
    let err = parse(&over).expect_err("too long");
    assert_eq!(err, FilterError::TooLong { length: MAX_FILTER_LEN + 1, position: MAX_FILTER_LEN });
    assert_eq!(err.to_string(), "filter of 65537 bytes is longer than 65536 at position 65536");
    assert_eq!(parse_user_filter(&over), Err(err));
}

// ---- the Rocket.Chat wrap-in-parentheses rule ----

#[test]
fn user_filter_wrapping() {
    assert_eq!(parse_user_filter(""), Ok(None));
    assert_eq!(parse_user_filter("  \t\n "), Ok(None));
    assert_eq!(parse_user_filter("objectClass=person"), Ok(Some(eq("objectClass", "person"))));
    assert_eq!(parse_user_filter("(objectClass=person)"), Ok(Some(eq("objectClass", "person"))));
    assert_eq!(parse_user_filter("  (objectClass=person)\n"), Ok(Some(eq("objectClass", "person"))));
    assert_eq!(parse_user_filter(" objectClass=person "), Ok(Some(eq("objectClass", "person"))));
    assert_eq!(
        parse_user_filter("&(objectClass=person)(mail=*)"),
        Ok(Some(LdapFilter::And(vec![eq("objectClass", "person"), LdapFilter::Present("mail".into())])))
    );
    assert_eq!(parse_user_filter("!(cn=x)"), Ok(Some(LdapFilter::Not(Box::new(eq("cn", "x"))))));
    assert_eq!(
        parse_user_filter("memberOf:1.2.840.113556.1.4.1941:=cn=a,dc=b"),
        Ok(Some(ext(Some("memberOf"), false, Some("1.2.840.113556.1.4.1941"), "cn=a,dc=b")))
    );
    assert_eq!(parse_user_filter("cn=a b*"), Ok(Some(sub("cn", Some("a b"), &[], None))));
    assert_eq!(parse_user_filter("&"), Ok(Some(LdapFilter::And(vec![]))));
}

#[test]
fn user_filter_errors_point_into_the_untrimmed_text() {
    let err = |text: &str| parse_user_filter(text).expect_err(text);
    assert_eq!(err("  cn=a)"), FilterError::TrailingCharacters { position: 6 });
    assert_eq!(err("  (cn=a))  "), FilterError::TrailingCharacters { position: 8 });
    assert_eq!(err("  (cn=a)(b=c)"), FilterError::TrailingCharacters { position: 8 });
    assert_eq!(err(" (cn=a "), FilterError::UnexpectedEnd { expected: "')'", position: 6 });
    assert_eq!(err(r" cn=\zz"), FilterError::InvalidEscape { escape: r"\zz".into(), position: 4 });
    assert_eq!(err(r"cn=\4 "), FilterError::UnexpectedEnd { expected: HEX_DIGITS, position: 5 });
    assert_eq!(err(" cn"), FilterError::UnexpectedEnd { expected: OPERATORS, position: 3 });
    assert_eq!(err("&(a=b) (c=d)"), FilterError::TrailingCharacters { position: 6 });
    assert_eq!(err("=x"), FilterError::Expected { expected: "attribute description", position: 0 });
}

#[test]
fn errors_report_positions_for_every_variant() {
    let cases = [
        FilterError::Expected { expected: "')'", position: 14 },
        FilterError::UnexpectedEnd { expected: "')'", position: 9 },
        FilterError::InvalidEscape { escape: r"\zz".into(), position: 5 },
        FilterError::UnescapedChar { found: '(', position: 3 },
        FilterError::TrailingCharacters { position: 12 },
        FilterError::TooDeep { position: 64 },
        FilterError::TooLong { length: 70_000, position: MAX_FILTER_LEN },
        FilterError::NotUtf8 { byte: 0xff, position: 7 },
    ];
    let positions: Vec<usize> = cases.iter().map(FilterError::position).collect();
    assert_eq!(positions, [14, 9, 5, 3, 12, 64, MAX_FILTER_LEN, 7]);
    assert_eq!(cases[0].to_string(), "expected ')' at position 14");
    for case in &cases {
        let message = case.to_string();
        assert!(!message.ends_with('.'), "{message}");
        assert!(message.starts_with(|c: char| !c.is_uppercase()), "{message}");
        assert!(message.contains(&format!("at position {}", case.position())), "{message}");
    }
}
