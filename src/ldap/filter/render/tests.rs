use ldap3_proto::proto::{LdapFilter, LdapMatchingRuleAssertion, LdapSubstringFilter};

use super::super::tests::{eq, ext, sub};
use super::super::*;

// ---- escaping and rendering ----

#[test]
fn escape_value_escapes_exactly_the_rfc_set() {
    assert_eq!(escape_value(r"a*b(c)d\e"), r"a\2ab\28c\29d\5ce");
    assert_eq!(escape_value("nul\0"), r"nul\00");
    assert_eq!(escape_value("Lučić, Ana = x"), "Lučić, Ana = x");
    assert_eq!(escape_value(""), "");
    for value in ["*", "(", ")", "\\", "\0", "plain", "Smith, John (ext)", "日本語*"] {
        assert_eq!(parse(&format!("(cn={})", escape_value(value))), Ok(eq("cn", value)), "{value:?}");
    }
}

#[test]
fn to_string_renders_rfc4515() {
    assert_eq!(to_string(&eq("cn", "a*b(c)\\\0")), r"(cn=a\2ab\28c\29\5c\00)");
    assert_eq!(to_string(&sub("cn", Some("a*"), &["(", ")"], Some("\\"))), r"(cn=a\2a*\28*\29*\5c)");
    assert_eq!(to_string(&LdapFilter::Present("mail".into())), "(mail=*)");
    assert_eq!(to_string(&ext(None, true, Some("2.4.6.8.10"), "Dino")), "(:dn:2.4.6.8.10:=Dino)");
    assert_eq!(to_string(&LdapFilter::Not(Box::new(LdapFilter::Or(vec![])))), "(!(|))");
    // Case is preserved on the way through.
    assert_eq!(to_string(&parse("(:DN:1.2:=x)").expect("ok")), "(:dn:1.2:=x)");
}

/// Deterministic pseudo-random filters: render, parse, compare.
#[test]
fn random_round_trips() {
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }
    const ATTRS: &[&str] = &["cn", "sn;lang-en", "2.5.4.3", "x-1", "objectClass"];
    const RULES: &[&str] = &["caseExactMatch", "1.2.840.113556.1.4.803", "dnMatch"];
    const CHARS: &[&str] = &["a", " ", "*", "(", ")", "\\", "\0", "é", "日", "=", ":", "&", "\u{1}", "~"];

    fn value(rng: &mut Rng, min: usize) -> String {
        let len = min + rng.below(5);
        (0..len).map(|_| rng.pick(CHARS)).collect()
    }
    fn filter(rng: &mut Rng, depth: usize) -> LdapFilter {
        let kind = if depth >= 5 { 4 + rng.below(7) } else { rng.below(11) };
        let attr = rng.pick(ATTRS).to_owned();
        match kind {
            0 | 1 => {
                let parts = (0..rng.below(4)).map(|_| filter(rng, depth + 1)).collect();
                if kind == 0 { LdapFilter::And(parts) } else { LdapFilter::Or(parts) }
            }
            2 | 3 => LdapFilter::Not(Box::new(filter(rng, depth + 1))),
            4 => LdapFilter::Equality(attr, value(rng, 0)),
            5 => LdapFilter::GreaterOrEqual(attr, value(rng, 0)),
            6 => LdapFilter::LessOrEqual(attr, value(rng, 0)),
            7 => LdapFilter::Approx(attr, value(rng, 0)),
            8 => LdapFilter::Present(attr),
            9 => {
                let initial = (rng.below(2) == 0).then(|| value(rng, 1));
                let any: Vec<String> = (0..rng.below(3)).map(|_| value(rng, 1)).collect();
                let final_ = (rng.below(2) == 0 || (initial.is_none() && any.is_empty())).then(|| value(rng, 1));
                LdapFilter::Substring(attr, LdapSubstringFilter { initial, any, final_ })
            }
            _ => {
                let with_type = rng.below(2) == 0;
                let rule = (!with_type || rng.below(2) == 0).then(|| rng.pick(RULES).to_owned());
                LdapFilter::Extensible(LdapMatchingRuleAssertion {
                    matching_rule: rule,
                    type_: with_type.then_some(attr),
                    match_value: value(rng, 0),
                    dn_attributes: rng.below(2) == 0,
                })
            }
        }
    }

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2_000 {
        let f = filter(&mut rng, 1);
        let text = to_string(&f);
        assert_eq!(parse(&text), Ok(f.clone()), "{text}");
        if !text.is_empty() {
            assert_eq!(parse_user_filter(&format!("  {text} ")), Ok(Some(f)), "{text}");
        }
    }
}
