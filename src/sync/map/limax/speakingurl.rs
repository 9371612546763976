//! speakingurl 14.0.1's `getSlug`, with the options limax 4.2.3 passes for
//! Rocket.Chat: `lang: 'en'`, `separator: '.'`, `maintainCase: false`,
//! `custom: {}` (so `symbols` on, no `uric`, `mark`, `titleCase` or
//! `truncate`, and `langCharMap.en`, which is empty).
//!
//! A character that no map holds is not transliterated: it becomes the
//! separator unless it is `[A-Za-z0-9_]`, `.`, `-` or white space.
//!
//! The loop reads `input[i]`, a UTF-16 unit. Every key it can match is one
//! BMP unit, so a character beyond the BMP is two unmatched units: two
//! separators, which the end collapses into one, and neither unit is ASCII
//! nor a look-ahead mark; one unmatched `char` gives the same slug.

use super::tables::{CHAR_MAP, DIATRIC_UNITS, DIATRICS, LOOK_AHEAD, SYMBOLS};
use super::{LimaxError, is_js_space};

/// limax passes `replacement: '.'` as speakingurl's `separator`.
const SEPARATOR: char = '.';

/// `getSlug(input, { lang: 'en', separator: '.', maintainCase: false, custom: {} })`.
pub(super) fn slug(input: &str) -> Result<String, LimaxError> {
    let input: Vec<char> = input.trim_matches(is_js_space).chars().collect();
    let mut state = State::default();
    for (i, &ch) in input.iter().enumerate() {
        let next = input.get(i + 1).copied();
        let piece = state.transliterate(ch, next)?;
        state.push_allowed(&piece);
    }
    Ok(finish(&state.result))
}

/// The loop's variables.
#[derive(Debug, Default)]
struct State {
    result: String,
    last_char_was_symbol: bool,
    last_char_was_diatric: bool,
    /// Burmese or Dhivehi marks waiting for the sequence to end.
    diatric_string: String,
}

impl State {
    /// One turn of the loop: what `ch` adds before the disallowed-char replacement.
    fn transliterate(&mut self, ch: char, next: Option<char>) -> Result<String, LimaxError> {
        if let Some(mapped) = lookup(&CHAR_MAP, ch) {
            return Ok(self.mapped(ch, mapped, next));
        }
        if DIATRIC_UNITS.binary_search(&ch).is_ok() {
            return self.diatric(ch, next);
        }
        if let Some(symbol) = lookup(&SYMBOLS, ch) {
            return Ok(self.symbol(symbol, next));
        }
        Ok(self.other(ch))
    }

    /// `ch in charMap`.
    fn mapped(&mut self, ch: char, mapped: &str, next: Option<char>) -> String {
        let piece = if next.is_some_and(|n| LOOK_AHEAD.contains(&n)) {
            // "the transliteration changes entirely when some special characters are added"
            self.diatric_string.push(ch);
            String::new()
        } else if self.last_char_was_diatric {
            let piece = format!("{}{mapped}", diatric_or_undefined(&self.diatric_string));
            self.diatric_string.clear();
            piece
        } else if self.last_char_was_symbol && has_alphanumeric(mapped) {
            format!(" {mapped}")
        } else {
            mapped.to_owned()
        };
        self.last_char_was_symbol = false;
        self.last_char_was_diatric = false;
        piece
    }

    /// `ch in diatricMap`: wait for the sequence to end, unless the input does.
    fn diatric(&mut self, ch: char, next: Option<char>) -> Result<String, LimaxError> {
        self.diatric_string.push(ch);
        self.last_char_was_diatric = true;
        if next.is_some() {
            return Ok(String::new());
        }
        // `ch = diatricMap[diatricString]`, then `ch.replace(...)` throws on `undefined`.
        diatric(&self.diatric_string).map(str::to_owned).ok_or_else(|| LimaxError::UnknownTrailingDiatrics(self.diatric_string.clone()))
    }

    /// `symbol[ch]`: the English word, set off by separators from letters and digits.
    fn symbol(&mut self, symbol: &str, next: Option<char>) -> String {
        let after_alphanumeric = self.result.chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric());
        let mut piece = if self.last_char_was_symbol || after_alphanumeric { format!("{SEPARATOR}{symbol}") } else { symbol.to_owned() };
        if next.is_some_and(|n| n.is_ascii_alphanumeric()) {
            piece.push(SEPARATOR);
        }
        self.last_char_was_symbol = true;
        piece
    }

    /// Any other character, kept as it is for the replacement to judge.
    fn other(&mut self, ch: char) -> String {
        // Upstream's second test, `result.substr(-1).match(/A-Za-z0-9]/)`, lacks
        // its `[` and never matches one character; only the first one counts.
        let piece = if self.last_char_was_diatric {
            let piece = format!("{}{ch}", diatric_or_undefined(&self.diatric_string));
            self.diatric_string.clear();
            self.last_char_was_diatric = false;
            piece
        } else if self.last_char_was_symbol && ch.is_ascii_alphanumeric() {
            format!(" {ch}")
        } else {
            ch.to_string()
        };
        self.last_char_was_symbol = false;
        piece
    }

    /// `result += ch.replace(/[^\w\s\._-]/g, separator)`.
    fn push_allowed(&mut self, piece: &str) {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') || is_js_space(c);
        self.result.extend(piece.chars().map(|c| if allowed(c) { c } else { SEPARATOR }));
    }
}

/// White space runs and separator runs become one separator, none at
/// either end, then lower case. What is left is `[a-z0-9_.-]`.
fn finish(result: &str) -> String {
    let mut out = String::with_capacity(result.len());
    for c in result.chars() {
        let c = if is_js_space(c) { SEPARATOR } else { c.to_ascii_lowercase() };
        if c == SEPARATOR && (out.is_empty() || out.ends_with(SEPARATOR)) {
            continue;
        }
        out.push(c);
    }
    if out.ends_with(SEPARATOR) {
        out.pop();
    }
    out
}

/// A `(char, &str)` table's value, the table sorted by `char`.
fn lookup(table: &'static [(char, &'static str)], ch: char) -> Option<&'static str> {
    table.binary_search_by_key(&ch, |&(k, _)| k).ok().and_then(|i| table.get(i)).map(|&(_, v)| v)
}

/// `diatricMap[diatricString]`.
fn diatric(sequence: &str) -> Option<&'static str> {
    DIATRICS.binary_search_by_key(&sequence, |&(k, _)| k).ok().and_then(|i| DIATRICS.get(i)).map(|&(_, v)| v)
}

/// `diatricMap[diatricString] + ...`: JavaScript writes a missing entry as `undefined`.
fn diatric_or_undefined(sequence: &str) -> &'static str {
    diatric(sequence).unwrap_or("undefined")
}

/// `.match(/[A-Za-z0-9]/)`.
fn has_alphanumeric(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_alphanumeric())
}
