//! What JavaScript answers (checked against V8's `String.prototype.replace`
//! and `match`), and the patterns the regex crate cannot take.

use super::*;

fn re(pattern: &str, flags: &str) -> JsRegex {
    JsRegex::new(pattern, flags).unwrap_or_else(|e| unreachable!("/{pattern}/{flags}: {e}"))
}

fn matched(pattern: &str, flags: &str, input: &str) -> Option<Vec<Option<String>>> {
    re(pattern, flags).match_in(input)
}

fn texts(items: &[Option<&str>]) -> Option<Vec<Option<String>>> {
    Some(items.iter().map(|i| i.map(str::to_owned)).collect())
}

#[test]
fn flags_are_javascripts() {
    assert_eq!(re("OLD", "i").replace("OLD-value old-value", "new"), "new-value old-value");
    assert_eq!(re("o", "g").replace("foo", "0"), "f00");
    assert_eq!(re("^b", "m").replace("a\nb\r\nb", "B"), "a\nB\r\nb", "m: ^ after a line break; no g: the first");
    assert_eq!(re("^b", "gm").replace("a\rb\nb", "B"), "a\rB\nB", "\\r ends a line too");
    assert_eq!(re("a.b", "").replace("a\nb a-b", "x"), "a\nb x", ". stops at line terminators");
    assert_eq!(re("a.b", "s").replace("a\u{2028}b", "x"), "x");
    assert_eq!(re("a.b", "").replace("a\u{2028}b", "x"), "a\u{2028}b");
    assert_eq!(re("a", "dgimsuy").replace("aab", "x"), "xxb", "every flag parses");
    for bad in ["gg", "x", "G", "uv"] {
        assert!(matches!(JsRegex::new("a", bad), Err(RegexError::Flags(_) | RegexError::Unsupported(_))), "{bad}");
    }
    assert_eq!(JsRegex::new("a", "v").err(), Some(RegexError::Unsupported("the v flag's class syntax (unicodeSets)")));
}

#[test]
fn sticky_matches_only_where_the_last_match_ended() {
    assert_eq!(re("a", "y").replace("baa", "x"), "baa", "not at 0");
    assert_eq!(re("a", "y").replace("aab", "x"), "xab");
    assert_eq!(re("a", "gy").replace("aaba", "x"), "xxba", "stops at the first gap");
    assert_eq!(matched("a", "gy", "aaba"), texts(&[Some("a"), Some("a")]));
}

#[test]
fn empty_matches_advance_one_character() {
    assert_eq!(re("b*", "g").replace("abc", "-"), "-a--c-");
    assert_eq!(re("", "g").replace("añ", "|"), "|a|ñ|");
    assert_eq!(re("x*", "gu").replace("a😀", "-"), "-a-😀-");
    assert_eq!(matched("b*", "g", "abc"), texts(&[Some(""), Some("b"), Some(""), Some("")]));
}

#[test]
fn match_gives_groups_or_every_match() {
    assert_eq!(matched("(hello) (world)", "", "hello world"), texts(&[Some("hello world"), Some("hello"), Some("world")]));
    assert_eq!(matched("(a)|(b)", "", "b"), texts(&[Some("b"), None, Some("b")]), "a group that took no part is undefined");
    assert_eq!(matched("o", "g", "foo"), texts(&[Some("o"), Some("o")]));
    assert_eq!(matched("x", "g", "foo"), None);
    assert_eq!(matched("x", "", "foo"), None);
}

#[test]
fn classes_mean_what_they_mean_in_javascript() {
    // \d and \w are ASCII; \s is JavaScript's white space.
    assert_eq!(re(r"\d+", "g").replace("a١٢3", "#"), "a١٢#");
    assert_eq!(re(r"\w+", "g").replace("é_x1 ü", "#"), "é# ü");
    assert_eq!(re(r"\W", "g").replace("a-é", "#"), "a##");
    assert_eq!(re(r"\s", "g").replace("a\u{FEFF}b\u{85}c", "_"), "a_b\u{85}c");
    assert_eq!(re(r"[\d\s-]+", "g").replace("1 2-3x", "#"), "#x");
    assert_eq!(re(r"[^\w]", "g").replace("a.b", "#"), "a#b");
    assert_eq!(re(r"\bé", "g").replace("aé é", "#"), "a# é", "\\b is ASCII: a boundary after a, none after a space before é");
    assert_eq!(re(r"a\b", "g").replace("aé a", "#"), "#é #");
    assert_eq!(re(r"[\b]", "").replace("a\u{8}", "#"), "a#", "[\\b] is a backspace");
    // [] never matches; [^] matches anything.
    assert_eq!(re("a[]", "").replace("a]", "#"), "a]");
    assert_eq!(re("a[^]b", "").replace("a\nb", "#"), "#");
    // A [ inside a class, & and ~ are literal.
    assert_eq!(re("[[&~]", "g").replace("a[&~", "#"), "a###");
    assert_eq!(re("[+--]", "g").replace("+,-.", "#"), "###.");
}

#[test]
fn escapes_mean_what_they_mean_in_javascript() {
    // Without u, escaped letters are the letters; braces that are no quantifier are literal.
    assert_eq!(re(r"\a\e\z", "").replace("aez", "#"), "#");
    assert_eq!(re(r"\<b\>", "").replace("<b>", "#"), "#");
    assert_eq!(re(r"a{2}", "").replace("aaa", "#"), "#a");
    assert_eq!(re(r"a{,2}", "").replace("a{,2}", "#"), "#");
    assert_eq!(re(r"\{x}", "").replace("{x}", "#"), "#");
    assert_eq!(re(r"x]", "").replace("x]", "#"), "#");
    assert_eq!(re(r"\x41\u0042\cJ", "").replace("AB\n", "#"), "#");
    assert_eq!(re(r"\ud83d\ude00", "").replace("a😀", "#"), "a#", "a surrogate pair is one character");
    assert_eq!(re(r"\u{1F600}", "u").replace("a😀", "#"), "a#");
    assert_eq!(re(r"\p{Lu}+", "u").replace("abCDe", "#"), "ab#e");
    assert_eq!(re(r"\p{Lu}", "").replace("p{Lu}", "#"), "#", "without u, \\p is p");
    assert_eq!(re(r"\0", "").replace("a\0", "#"), "a#");
    assert_eq!(re(r"\k", "").replace("k", "#"), "#");
    assert_eq!(re(r"\/\.\$", "").replace("/.$", "#"), "#");
    assert_eq!(re(r"(?<user>[^@]+)@", "").replace("ann@x", "$<user>"), "annx");
}

#[test]
fn what_the_regex_crate_cannot_do_is_an_error() {
    for (pattern, flags) in [
        (r"(?<=@)\w+", ""),
        (r"a(?!b)", ""),
        (r"(a)\1", ""),
        (r"(?<n>a)\k<n>", ""),
        (r"\ud83d", ""),
        (r"\q", "u"),
        (r"[a", ""),
        ("a\\", ""),
        ("(a", ""),
        ("*a", ""),
        (r"\p{NoSuchProperty}", "u"),
        ("a{1000}{1000}{1000}", ""),
    ] {
        let e = JsRegex::new(pattern, flags).expect_err(pattern);
        assert!(!e.to_string().is_empty() && !e.to_string().contains('\n'), "/{pattern}/{flags}: {e}");
    }
    assert_eq!(JsRegex::new(r"(?<=a)b", "").err(), Some(RegexError::Unsupported("lookahead and lookbehind")));
    assert_eq!(JsRegex::new(r"(a)\1", "").err(), Some(RegexError::Unsupported("backreferences (and octal escapes)")));
}

#[test]
fn replacement_patterns_follow_get_substitution() {
    let r = re("(b)(c)?", "");
    assert_eq!(r.replace("abd", "[$&|$`|$'|$$|$1|$2|$3|$0|$<x>|$]"), "a[b|a|d|$|b||$3|$0|$<x>|$]d");
    // Two digits only when that group exists.
    let twelve = re("(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)", "");
    assert_eq!(twelve.replace("abcdefghijkl", "$12-$13-$01-$00"), "l-a3-a-$00");
    let named = re("(?<first>a)(b)", "");
    assert_eq!(named.replace("ab", "$<first>$<nope>$2$<open"), "ab$<open");
    // A plain-text match has no groups.
    let mut out = String::new();
    substitute("<$&$1$<x>>", &Matched { haystack: "xay", start: 1, end: 2, captures: None }, &mut out);
    assert_eq!(out, "<a$1$<x>>");
}

#[test]
fn debug_shows_the_pattern_as_written() {
    assert_eq!(format!("{:?}", re(r"@.*$", "gi")), "/@.*$/gi");
}
