use super::limax;
use crate::sync::map::slugify;

/// What the real limax 4.2.3 gives, with Rocket.Chat's `[^0-9a-z-_.]`
/// removal after it; `tests/fixtures/limax/generate.js` writes it.
const EXPECTED: &str = include_str!("../../../../tests/fixtures/limax/expected.tsv");

/// generate.js's mark for a name limax throws on.
const THROWS: &str = "<throws>";

#[test]
fn slugify_matches_limax_on_every_fixture_name() {
    let mut mismatches = Vec::new();
    let mut count = 0;
    for line in EXPECTED.lines() {
        count += 1;
        let Some((name, expected)) = line.split_once('\t') else {
            mismatches.push(format!("{line:?}: no tab"));
            continue;
        };
        let got = if expected == THROWS {
            match limax(name) {
                Err(_) if slugify(name).is_empty() => THROWS.to_owned(),
                other => format!("{other:?}"),
            }
        } else {
            slugify(name)
        };
        if got != expected {
            mismatches.push(format!("{name:?}: limax {expected:?}, ours {got:?}"));
        }
    }
    assert!(count >= 60, "only {count} fixture names");
    assert!(mismatches.is_empty(), "{} of {count} names differ:\n{}", mismatches.len(), mismatches.join("\n"));
}

#[test]
fn apostrophes_join_across_utf16_units() {
    // After `a'😀` the regex resumes on the emoji's low surrogate.
    assert_eq!(super::join_apostrophes("a'😀'b"), "a😀b");
    assert_eq!(super::join_apostrophes("a'b'c"), "ab'c");
    assert_eq!(super::join_apostrophes("' a'"), "' a'");
}

#[test]
fn deburr_keeps_the_diaeresis_only() {
    assert_eq!(super::deburr("Ba\u{308}r Rene\u{301} ﬁ"), "B\u{e4}r Rene fi");
}
