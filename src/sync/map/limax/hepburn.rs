//! hepburn 1.3.0's `containsKana` and `fromKana`, and what limax does
//! after it: `text.replace(/([^A-Za-z0-9\- ]+)/g, '')`, which also drops
//! kanji, long vowels written with a macron (`コー` is `KŌ`, so `K`) and
//! every non-ASCII letter of the rest of the text.
//!
//! Its regexes see UTF-16 units; the only `.` (after a sokuon) may take half
//! of a character beyond the BMP, but limax's removal drops both halves, as
//! it drops the whole `char` here.

use super::tables::{
    HALFWIDTHS, HALFWIDTHS_COMBINED, HIRAGANA_DIGRAPHS, HIRAGANA_MONOGRAPHS, KANA, KATAKANA_DIGRAPHS, KATAKANA_MONOGRAPHS,
};

/// `hepburn.containsKana(text)`.
pub(super) fn contains_kana(text: &str) -> bool {
    text.chars().any(|c| KANA.binary_search(&c).is_ok())
}

/// `hepburn.fromKana(text)`, then limax's `[^A-Za-z0-9\- ]` removal.
pub(super) fn romanize(text: &str) -> String {
    from_kana(text).chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ' ')).collect()
}

/// `fromKana`: the six bulk replacements, then the sokuon, `N'` and chōonpu fixes.
fn from_kana(text: &str) -> String {
    let tables: [&[(&str, &str)]; 6] =
        [&HALFWIDTHS_COMBINED, &HALFWIDTHS, &HIRAGANA_DIGRAPHS, &KATAKANA_DIGRAPHS, &HIRAGANA_MONOGRAPHS, &KATAKANA_MONOGRAPHS];
    let text = tables.iter().fold(text.to_owned(), |text, table| bulk_replace(&text, table));
    choonpu(&syllabic_n(&sokuon(&text)))
}

/// `str.replace(new RegExp(Object.keys(map).join('|'), 'g'), ...)`: at each
/// position the first key, in the table's order, that matches.
fn bulk_replace(text: &str, table: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some((value, after)) = table.iter().find_map(|&(key, value)| rest.strip_prefix(key).map(|after| (value, after))) {
            out.push_str(value);
            rest = after;
            continue;
        }
        let mut chars = rest.chars();
        out.extend(chars.next());
        rest = chars.as_str();
    }
    out
}

/// The small tsu: `replace(/[っッ]C/g, "TC")`, then `replace(/[っッ](.)/g, "$1$1")`.
fn sokuon(text: &str) -> String {
    let is_sokuon = |c: char| matches!(c, 'っ' | 'ッ');
    let before_c = rewrite(text, |window| match window {
        [s, 'C', ..] if is_sokuon(*s) => Some(("TC".to_owned(), 2)),
        _ => None,
    });
    // `.` is any unit but a line terminator.
    rewrite(&before_c, |window| match window {
        [s, c, ..] if is_sokuon(*s) && !matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}') => Some((format!("{c}{c}"), 2)),
        _ => None,
    })
}

/// `replace(/[NM]'([^YAEIOU]|$)/g, "N$1")`.
fn syllabic_n(text: &str) -> String {
    rewrite(text, |window| match window {
        ['N' | 'M', '\'', next, ..] if !matches!(next, 'Y' | 'A' | 'E' | 'I' | 'O' | 'U') => Some((format!("N{next}"), 3)),
        ['N' | 'M', '\''] => Some(("N".to_owned(), 2)),
        _ => None,
    })
}

/// The long-vowel mark after a vowel: `replace(/Aー/g, "Ā")` and the same
/// for I, U, E, O (one pass: no replacement makes a new match).
fn choonpu(text: &str) -> String {
    rewrite(text, |window| {
        let long = match window {
            ['A', 'ー', ..] => 'Ā',
            ['I', 'ー', ..] => 'Ī',
            ['U', 'ー', ..] => 'Ū',
            ['E', 'ー', ..] => 'Ē',
            ['O', 'ー', ..] => 'Ō',
            _ => return None,
        };
        Some((long.to_string(), 2))
    })
}

/// A global regex replacement, left to right without overlap: `rule` looks
/// at the text from the current `char` on and either replaces that many
/// `char`s or lets the current one through.
fn rewrite(text: &str, rule: impl Fn(&[char]) -> Option<(String, usize)>) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut rest = chars.as_slice();
    while let [first, tail @ ..] = rest {
        if let Some((replacement, len)) = rule(rest)
            && let Some(after) = rest.get(len..)
        {
            out.push_str(&replacement);
            rest = after;
            continue;
        }
        out.push(*first);
        rest = tail;
    }
    out
}
