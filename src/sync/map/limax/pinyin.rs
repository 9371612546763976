//! pinyin-pro 3.29.4's `pinyin(text, { type: 'all', toneType: 'none',
//! nonZh: 'consecutive' })` and what limax 4.2.3 makes of its items: each
//! Chinese one as its pinyin and tone number, the rest as they are, joined
//! by spaces; then `[^0-9A-Za-z ]` removed and the spaces around a lone
//! letter dropped.
//!
//! pinyin-pro reads words, not characters: its dictionary of 2- to
//! 5-character words (no surnames: limax leaves `surname` off) is matched
//! everywhere, and the segmentation of highest probability wins
//! (`common/segmentit/max-probability.mjs`). A character outside the chosen
//! words takes its first reading in DICT1, but for `了`, `々`, and the tone
//! changes of `一` and `不` (`core/pinyin/handle.mjs`).
//!
//! Characters, not UTF-16 units: pinyin-pro splits its input with
//! `splitString`, which keeps surrogate pairs together.

use super::tables::{
    CJK_READINGS, CJK_START, DICT_PROBABILITY, LIAO, NO_READING, OTHER_READINGS, RULE_PROBABILITY, RULE_WORDS, SANDHI, SANDHI_IGNORE,
    SANDHI_NEUTRAL, TOKEN_ENDS, TOKEN_TEXT, TONG, UNKNOWN_PROBABILITY, WORDS,
};

/// limax's Mandarin branch: the text it hands on to speakingurl.
pub(super) fn romanize(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let words = max_probability(&matches(&chars), chars.len());
    let readings = readings(&chars, &words);
    let joined = join(&chars, &readings);
    join_lone_letters(&joined)
}

/// A dictionary word found in the text.
#[derive(Debug, Clone, Copy)]
struct Word {
    start: usize,
    len: usize,
    probability: f64,
    /// One [`token`] a character.
    tokens: &'static [u16],
}

impl Word {
    fn end(&self) -> usize {
        self.start + self.len - 1
    }
}

/// Every occurrence of every word, in the order of the Aho-Corasick search
/// (`AC.match`): by last character, and the longest first for one last
/// character (the node, then its failure links).
fn matches(chars: &[char]) -> Vec<Word> {
    let mut found = Vec::new();
    for end in 0..chars.len() {
        for (index, (text, tokens)) in WORDS.iter().enumerate().rev() {
            let len = index + 2;
            let Some(start) = (end + 1).checked_sub(len) else { continue };
            let Some(window) = chars.get(start..=end) else { continue };
            if let Some((word, tokens)) = find_word(window, text, tokens) {
                let probability = if RULE_WORDS.binary_search(&word).is_ok() { RULE_PROBABILITY } else { DICT_PROBABILITY };
                found.push(Word { start, len, probability, tokens });
            }
        }
    }
    found
}

/// The word `window` spells in a table of fixed-width, sorted records, and its tokens.
fn find_word(window: &[char], text: &'static str, tokens: &'static [u16]) -> Option<(&'static str, &'static [u16])> {
    let mut key = String::with_capacity(window.len() * 3);
    key.extend(window);
    // Every word character is 3 bytes of UTF-8 (gen-tables.js checks it).
    let width = window.len() * 3;
    if key.len() != width {
        return None;
    }
    let (mut low, mut high) = (0, text.len() / width);
    while low < high {
        let mid = low + (high - low) / 2;
        let record = text.get(mid * width..(mid + 1) * width)?;
        match record.cmp(key.as_str()) {
            std::cmp::Ordering::Less => low = mid + 1,
            std::cmp::Ordering::Greater => high = mid,
            std::cmp::Ordering::Equal => return Some((record, tokens.get(mid * window.len()..(mid + 1) * window.len())?)),
        }
    }
    None
}

/// One cell of `maxProbability`'s table: the best reading of the text from
/// here on. Probabilities below 1e-300 are scaled up and counted in `decimal`.
#[derive(Debug, Clone, Copy)]
struct Path {
    probability: f64,
    decimal: i32,
    /// The word that starts here, if the best path starts with one.
    word: Option<usize>,
    /// Where the next word of the path can start.
    next: usize,
}

impl Path {
    /// `checkDecimal`.
    fn carried(mut self) -> Path {
        if self.probability < 1e-300 {
            self.probability *= 1e300;
            self.decimal += 1;
        }
        self
    }
}

/// `getMaxProbability(a, b)`: on a tie the newer path, `b`, wins.
fn better(a: Option<Path>, b: Path) -> Path {
    let Some(a) = a else { return b };
    if a.decimal < b.decimal || (a.decimal == b.decimal && a.probability > b.probability) { a } else { b }
}

/// `maxProbability(patterns, length)`: the words of the best segmentation, in order.
fn max_probability(found: &[Word], length: usize) -> Vec<Word> {
    let terminal = Path { probability: 1.0, decimal: 0, word: None, next: length };
    let mut dp: Vec<Option<Path>> = vec![None; length];
    let mut pending = found.iter().enumerate().rev().peekable();
    for i in (0..length).rev() {
        let suffix = dp.get(i + 1).copied().flatten().unwrap_or(terminal);
        let next = if suffix.word.is_some() { i + 1 } else { suffix.next };
        while let Some((index, word)) = pending.next_if(|(_, w)| w.end() == i) {
            // A normal-priority word adds nothing to `decimal` (`getPatternDecimal`).
            let path = Path { probability: word.probability * suffix.probability, decimal: suffix.decimal, word: Some(index), next };
            if let Some(cell) = dp.get_mut(word.start) {
                *cell = Some(better(*cell, path.carried()));
            }
        }
        let unknown = Path { probability: UNKNOWN_PROBABILITY * suffix.probability, decimal: 0, word: None, next };
        if let Some(cell) = dp.get_mut(i) {
            *cell = Some(better(*cell, unknown.carried()));
        }
    }
    let mut words = Vec::new();
    let mut index = 0;
    while let Some(Some(path)) = dp.get(index) {
        words.extend(path.word.and_then(|w| found.get(w)));
        index = path.next;
    }
    words
}

/// `getPinyin`: each character's token, `None` where pinyin-pro keeps the
/// character as it is (`isZh: false`).
fn readings(chars: &[char], words: &[Word]) -> Vec<Option<u16>> {
    let mut out = Vec::with_capacity(chars.len());
    let mut words = words.iter().peekable();
    while out.len() < chars.len() {
        let i = out.len();
        if let Some(word) = words.next_if(|w| w.start == i) {
            out.extend(word.tokens.iter().map(|&t| Some(t)));
            continue;
        }
        out.push(special_reading(chars, i));
    }
    out
}

/// `processSepecialPinyin`: `々`, then `了`, then `一`/`不`, else DICT1.
fn special_reading(chars: &[char], i: usize) -> Option<u16> {
    let cur = *chars.get(i)?;
    let pre = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
    let next = chars.get(i + 1).copied();
    let pre_reading = pre.and_then(dict1);
    match cur {
        // `processReduplicationChar`: the reading before it, else `tóng`.
        '々' => Some(pre_reading.unwrap_or(TONG)),
        // `processToneSandhiLiao`.
        '了' if pre_reading.is_none() => Some(LIAO),
        _ => tone_sandhi(cur, pre, next).or_else(|| dict1(cur)),
    }
}

/// `processToneSandhi` for `一` and `不`: neutral between two equal Chinese
/// characters (说一说), else by the next character's tone.
fn tone_sandhi(cur: char, pre: Option<char>, next: Option<char>) -> Option<u16> {
    let neutral = SANDHI_NEUTRAL.iter().find(|&&(c, _)| c == cur)?.1;
    if pre.is_some() && pre == next && pre.and_then(dict1).is_some() {
        return Some(neutral);
    }
    let next = next?;
    let ignored = SANDHI_IGNORE.iter().any(|&(c, suffixes)| c == cur && suffixes.contains(next));
    if ignored {
        return None;
    }
    let tone = tone(dict1(next)?)?;
    SANDHI.iter().find(|&&(c, t, _)| c == cur && t == tone).map(|&(_, _, token)| token)
}

/// DICT1's first reading of `c` (`getSingleWordPinyin`), if DICT1 holds it.
fn dict1(c: char) -> Option<u16> {
    let code = u32::from(c);
    if let Some(offset) = code.checked_sub(CJK_START)
        && let Some(&token) = usize::try_from(offset).ok().and_then(|o| CJK_READINGS.get(o))
    {
        return (token != NO_READING).then_some(token);
    }
    OTHER_READINGS.binary_search_by_key(&c, |&(k, _)| k).ok().and_then(|i| OTHER_READINGS.get(i)).map(|&(_, t)| t)
}

/// The text of a token.
fn token(index: u16) -> &'static str {
    let index = usize::from(index);
    let start = index.checked_sub(1).and_then(|i| TOKEN_ENDS.get(i)).map_or(0, |&e| usize::from(e));
    let end = TOKEN_ENDS.get(index).map_or(start, |&e| usize::from(e));
    TOKEN_TEXT.get(start..end).unwrap_or("")
}

/// The tone number a token ends with (`getNumOfTone`), 1 to 4.
fn tone(index: u16) -> Option<u8> {
    token(index).bytes().next_back().filter(|b| (b'1'..=b'4').contains(b)).map(|b| b - b'0')
}

/// limax: `data.join(' ')` of the items (consecutive non-Chinese characters
/// are one item, `nonZh: 'consecutive'`), then `[^0-9A-Za-z ]` removed.
fn join(chars: &[char], readings: &[Option<u16>]) -> String {
    let mut out = String::with_capacity(chars.len() * 4);
    let mut previous_was_other = false;
    for (i, (&c, reading)) in chars.iter().zip(readings).enumerate() {
        let continues_other = reading.is_none() && previous_was_other;
        if i > 0 && !continues_other {
            out.push(' ');
        }
        match reading {
            Some(t) => out.push_str(token(*t)),
            None => out.push(c),
        }
        previous_was_other = reading.is_none();
    }
    out.retain(|c| c.is_ascii_alphanumeric() || c == ' ');
    out
}

/// limax: `text.replace(/([^1-4]) ([A-Za-z]) /g, '$1$2')`, "caused by
/// non-Mandarin symbols in otherwise Mandarin text".
fn join_lone_letters(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut rest = chars.as_slice();
    while let [first, tail @ ..] = rest {
        if let [' ', letter, ' ', after @ ..] = tail
            && !('1'..='4').contains(first)
            && letter.is_ascii_alphabetic()
        {
            out.extend([*first, *letter]);
            rest = after;
            continue;
        }
        out.push(*first);
        rest = tail;
    }
    out
}
