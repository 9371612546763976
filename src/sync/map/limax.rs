//! limax 4.2.3, as Rocket.Chat calls it for usernames: `limax(text, {
//! replacement: '.' })` (apps/meteor/server/lib/ldap/Manager.ts, `slugify`).
//! A port, step by step, of `lib/limax.mjs` and of the three packages it
//! calls; their data is generated from the npm packages by
//! `tests/fixtures/limax/gen-tables.js`, and `tests/fixtures/limax/expected.tsv`
//! holds what the real limax gives. Pure: no I/O.
//!
//! limax's steps: join words split by an apostrophe; then romanise kana
//! ([`hepburn`]) if there is any, else Chinese ([`pinyin`]) if there is a CJK
//! ideograph in U+4E00..=U+9FA5; then NFKD, drop the combining marks but the
//! diaeresis, NFC; then [`speakingurl`] makes the slug.
//!
//! JavaScript strings are UTF-16 and its regexes here have no `u` flag, so
//! they see surrogates, not characters. Each step says why working on `char`s
//! gives the same answer, or works on UTF-16 units where it would not.
//!
//! Known gaps: NFKD and NFC come from `unicode-normalization`, not from
//! node's ICU, so a character whose decomposition the two Unicode versions
//! disagree on may differ; and pinyin-pro is the 3.29.4 that limax's
//! `^3.27.0` resolves to today (tests/fixtures/limax/package-lock.json), not
//! necessarily the one in Rocket.Chat's own lock file.

mod hepburn;
mod pinyin;
mod speakingurl;
#[rustfmt::skip]
mod tables;

use unicode_normalization::UnicodeNormalization;

/// Why limax gives no slug: it throws.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimaxError {
    /// The text ends inside a sequence of Burmese vowel signs that
    /// speakingurl's `diatricMap` has no entry for, so it calls `.replace` on
    /// `undefined` and throws a `TypeError`. Usually Burmese typed in the
    /// Zawgyi order (vowel signs swapped); Rocket.Chat's login or sync of
    /// that user fails.
    #[error("speakingurl cannot transliterate the trailing Burmese vowel signs {0:?}")]
    UnknownTrailingDiatrics(String),
}

/// `limax(text, { replacement: '.' })`.
pub fn limax(text: &str) -> Result<String, LimaxError> {
    let text = join_apostrophes(text);
    // limax: `lang.startsWith('ja') || hepburn.containsKana(text)`, then
    // `pinyin && (lang.startsWith('zh') || /[\u4e00-\u9fa5]+/.test(text))`;
    // Rocket.Chat passes no `lang`.
    let (text, mandarin) = if hepburn::contains_kana(&text) {
        (hepburn::romanize(&text), false)
    } else if text.chars().any(|c| ('\u{4e00}'..='\u{9fa5}').contains(&c)) {
        (pinyin::romanize(&text), true)
    } else {
        (text, false)
    };
    let slug = speakingurl::slug(&deburr(&text))?;
    // `mergeDigitSuffixes` is the `tone` option, on by default, for Mandarin.
    Ok(if mandarin { merge_digit_suffixes(&slug) } else { slug })
}

/// JavaScript's `\s`: ECMA-262's WhiteSpace (tab, VT, FF, U+FEFF, every Zs)
/// and LineTerminator (LF, CR, U+2028, U+2029).
fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
    )
}

/// The apostrophe-like marks limax removes inside a word.
const APOSTROPHES: [u16; 8] = [0x27, 0x2018, 0x2019, 0x201a, 0x201b, 0x2032, 0x2035, 0x0301];

/// `text.replace(/(\S)['\u2018\u2019\u201A\u201B\u2032\u2035\u0301](\S)/g, '$1$2')`.
///
/// On UTF-16 units: after `a'😀'b` the regex resumes inside the emoji, whose
/// low surrogate is the `\S` of a second match (`a😀b`); `char`s would keep
/// the second apostrophe.
fn join_apostrophes(text: &str) -> String {
    let units: Vec<u16> = text.encode_utf16().collect();
    let is_space = |u: u16| char::from_u32(u32::from(u)).is_some_and(is_js_space);
    let mut out = Vec::with_capacity(units.len());
    let mut rest = units.as_slice();
    while let [first, tail @ ..] = rest {
        if let [mark, second, after @ ..] = tail
            && !is_space(*first)
            && APOSTROPHES.contains(mark)
            && !is_space(*second)
        {
            out.extend([*first, *second]);
            rest = after;
            continue;
        }
        out.push(*first);
        rest = tail;
    }
    // Only BMP units that are not surrogates were dropped, so pairs stay whole.
    String::from_utf16_lossy(&out)
}

/// `text.normalize('NFKD').replace(/[\u0300-\u0307\u0309-\u036f]/g, '').normalize('NFC')`:
/// accents go, the diaeresis (U+0308) stays so that speakingurl maps `ä` to `ae`.
fn deburr(text: &str) -> String {
    text.nfkd().filter(|c| !matches!(c, '\u{300}'..='\u{307}' | '\u{309}'..='\u{36f}')).nfc().collect()
}

/// `slug.replace(/([^0-9])-([0-9])/g, '$1$2')`. With `.` as the separator and
/// Mandarin text reduced to `[0-9A-Za-z ]` this finds nothing; kept for fidelity.
fn merge_digit_suffixes(slug: &str) -> String {
    let chars: Vec<char> = slug.chars().collect();
    let mut out = String::with_capacity(slug.len());
    let mut rest = chars.as_slice();
    while let [first, tail @ ..] = rest {
        if let ['-', digit, after @ ..] = tail
            && !first.is_ascii_digit()
            && digit.is_ascii_digit()
        {
            out.extend([*first, *digit]);
            rest = after;
            continue;
        }
        out.push(*first);
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests;
