//! JavaScript regular expressions, as upstream's `replace` and `match`
//! operations build them (`new RegExp(pattern, flags)`), on the `regex`
//! crate: the flags, a translation of the pattern where the two syntaxes
//! mean different things, the `exec` loop of `String.prototype.match` and
//! `replace` (`lastIndex`, empty matches, sticky), and the `$` patterns of a
//! replacement (ECMA-262 `GetSubstitution`).
//!
//! What the `regex` crate cannot do (lookaround, backreferences) is a parse
//! error that the settings report, never a panic. Pure: no I/O.

use std::fmt;

use regex::{Captures, Regex, RegexBuilder};

/// A compiled JavaScript regex.
#[derive(Clone)]
pub struct JsRegex {
    /// The pattern and flags as written (for `Debug`, hence the settings digest).
    source: String,
    flags_text: String,
    flags: Flags,
    regex: Regex,
}

/// Why a pattern or its flags cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegexError {
    /// A flag JavaScript does not know, or one given twice (a `SyntaxError` upstream).
    #[error("invalid flags {0:?}: JavaScript's d, g, i, m, s, u and y, each at most once")]
    Flags(String),
    /// JavaScript syntax the `regex` crate has no equivalent for.
    #[error("{0} cannot be used (the regex crate does not support them)")]
    Unsupported(&'static str),
    /// Not a valid JavaScript pattern (a `SyntaxError` upstream).
    #[error("{0}")]
    Syntax(String),
    /// The translated pattern does not compile, or compiles too big.
    #[error("{0}")]
    Compile(String),
}

/// `RegExp` flags. `d` (match indices) changes nothing here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Flags {
    global: bool,
    ignore_case: bool,
    multiline: bool,
    dot_all: bool,
    unicode: bool,
    sticky: bool,
}

/// JavaScript's `\s`: WhiteSpace and LineTerminator (ECMA-262 §22.2.2.9),
/// as a class body. The regex crate's Unicode `\s` differs (U+0085, U+FEFF).
const SPACE: &str = r"\t\n\x0B\x0C\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}";

/// JavaScript's `\w`, always ASCII (the regex crate's is Unicode).
const WORD: &str = "0-9A-Za-z_";

/// JavaScript's `.` without `s`: anything but a LineTerminator.
const NOT_LINE_TERMINATOR: &str = r"[^\n\r\x{2028}\x{2029}]";

/// JavaScript's `[]`, which never matches (the regex crate reads `[]...]` as a class holding `]`).
const NOTHING: &str = r"[^\x{0}-\x{10FFFF}]";

impl JsRegex {
    /// `new RegExp(source, flags)`.
    pub fn new(source: &str, flags: &str) -> Result<Self, RegexError> {
        let parsed = Flags::parse(flags)?;
        let translated = translate(source, parsed)?;
        let regex = RegexBuilder::new(&translated)
            .case_insensitive(parsed.ignore_case)
            .multi_line(parsed.multiline)
            // JavaScript's `^`/`$` with `m` also stop at `\r`.
            .crlf(parsed.multiline)
            .build()
            .map_err(|e| RegexError::Compile(one_line(&e.to_string())))?;
        Ok(Self { source: source.to_owned(), flags_text: flags.to_owned(), flags: parsed, regex })
    }

    /// The matches `String.prototype.replace` and `match` use: every match
    /// when global, else the first; with `y`, each must start where the
    /// last ended (the first at 0). After an empty match the search goes on
    /// one character further, as `AdvanceStringIndex` does.
    pub fn exec_all<'h>(&self, haystack: &'h str) -> Vec<Captures<'h>> {
        let mut found = Vec::new();
        let mut at = 0;
        while at <= haystack.len() {
            let Some(caps) = self.regex.captures_at(haystack, at) else { break };
            let (start, end) = caps.get(0).map_or((at, at), |m| (m.start(), m.end()));
            // The leftmost match from `at` starts at `at` exactly when an anchored one does.
            if self.flags.sticky && start != at {
                break;
            }
            found.push(caps);
            if !self.flags.global {
                break;
            }
            at = if start == end { next_char(haystack, end) } else { end };
        }
        found
    }

    /// `input.replace(regex, replacement)` (all matches when global).
    pub fn replace(&self, input: &str, replacement: &str) -> String {
        let mut out = String::with_capacity(input.len());
        let mut copied = 0;
        for caps in self.exec_all(input) {
            let Some(m) = caps.get(0) else { continue };
            out.push_str(&input[copied..m.start()]);
            substitute(
                replacement,
                &Matched { haystack: input, start: m.start(), end: m.end(), captures: Some((&caps, &self.regex)) },
                &mut out,
            );
            copied = m.end();
        }
        out.push_str(&input[copied..]);
        out
    }

    /// `input.match(regex)`: `None` for JavaScript's `null`; when global,
    /// every matched text; else the match and its groups (`None` for a group
    /// that did not take part).
    pub fn match_in(&self, input: &str) -> Option<Vec<Option<String>>> {
        let found = self.exec_all(input);
        if found.is_empty() {
            return None;
        }
        if self.flags.global {
            return Some(found.iter().map(|caps| caps.get(0).map(|m| m.as_str().to_owned())).collect());
        }
        let caps = found.first()?;
        Some(caps.iter().map(|group| group.map(|m| m.as_str().to_owned())).collect())
    }
}

impl fmt::Debug for JsRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/{}", self.source, self.flags_text)
    }
}

impl Flags {
    fn parse(text: &str) -> Result<Self, RegexError> {
        let mut flags = Self::default();
        let mut seen = String::new();
        for c in text.chars() {
            if seen.contains(c) {
                return Err(RegexError::Flags(text.to_owned()));
            }
            seen.push(c);
            match c {
                'g' => flags.global = true,
                'i' => flags.ignore_case = true,
                'm' => flags.multiline = true,
                's' => flags.dot_all = true,
                'u' => flags.unicode = true,
                'y' => flags.sticky = true,
                'd' => {}
                'v' => return Err(RegexError::Unsupported("the v flag's class syntax (unicodeSets)")),
                _ => return Err(RegexError::Flags(text.to_owned())),
            }
        }
        Ok(flags)
    }
}

/// One match, as `GetSubstitution` sees it.
pub struct Matched<'h, 'c> {
    pub haystack: &'h str,
    pub start: usize,
    pub end: usize,
    /// The groups, for a regex; `None` for a plain-text pattern.
    pub captures: Option<(&'c Captures<'h>, &'c Regex)>,
}

/// Appends `replacement` for `m` to `out`, with JavaScript's `$` patterns:
/// `$$`, `$&`, `` $` ``, `$'`, `$1`..`$99` (two digits only when that
/// group exists), and `$<name>` when the regex has named groups. Anything
/// else is literal.
pub fn substitute(replacement: &str, m: &Matched<'_, '_>, out: &mut String) {
    let group_count = m.captures.map_or(0, |(caps, _)| caps.len() - 1);
    let group = |i: usize| m.captures.and_then(|(caps, _)| caps.get(i)).map_or("", |g| g.as_str());
    let named = m.captures.filter(|(_, regex)| regex.capture_names().flatten().next().is_some());
    let mut rest = replacement;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let bytes = after.as_bytes();
        let used = match bytes.first() {
            Some(b'$') => {
                out.push('$');
                1
            }
            Some(b'&') => {
                out.push_str(&m.haystack[m.start..m.end]);
                1
            }
            Some(b'`') => {
                out.push_str(&m.haystack[..m.start]);
                1
            }
            Some(b'\'') => {
                out.push_str(&m.haystack[m.end..]);
                1
            }
            Some(d) if d.is_ascii_digit() => {
                let one = usize::from(d - b'0');
                let (digits, index) = match bytes.get(1).filter(|d| d.is_ascii_digit()) {
                    Some(d2) if one * 10 + usize::from(d2 - b'0') <= group_count => (2, one * 10 + usize::from(d2 - b'0')),
                    _ => (1, one),
                };
                if (1..=group_count).contains(&index) {
                    out.push_str(group(index));
                } else {
                    out.push('$');
                    out.push_str(&after[..digits]);
                }
                digits
            }
            Some(b'<') if named.is_some() => match after[1..].find('>') {
                Some(gt) => {
                    let name = &after[1..1 + gt];
                    out.push_str(named.and_then(|(caps, _)| caps.name(name)).map_or("", |g| g.as_str()));
                    gt + 2
                }
                None => {
                    out.push_str("$<");
                    1
                }
            },
            _ => {
                out.push('$');
                0
            }
        };
        rest = &after[used..];
    }
    out.push_str(rest);
}

/// The byte index one character past `at`, or past the end.
fn next_char(haystack: &str, at: usize) -> usize {
    haystack[at..].chars().next().map_or(haystack.len() + 1, |c| at + c.len_utf8())
}

/// The regex crate's multi-line error ("regex parse error: ... error: why") as one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(|| message.split_whitespace().collect::<Vec<_>>().join(" "), str::to_owned)
}

/// A JavaScript pattern in the regex crate's syntax. Only what the two read
/// differently is rewritten: `\d \w \s \b` (ASCII, or JavaScript's white
/// space), `.`, `[]`/`[^]`, literal braces and brackets, escapes of letters
/// (literal in JavaScript without `u`), `\cX`, `\uXXXX` surrogate pairs.
fn translate(source: &str, flags: Flags) -> Result<String, RegexError> {
    let chars: Vec<char> = source.chars().collect();
    let named_groups = source.match_indices("(?<").any(|(at, _)| !matches!(source[at + 3..].chars().next(), Some('=' | '!')));
    let mut t = Translation { chars: &chars, at: 0, out: String::with_capacity(source.len() + 16), flags, named_groups };
    while let Some(&c) = t.chars.get(t.at) {
        t.at += 1;
        match c {
            '\\' => t.escape(false)?,
            '[' => t.class()?,
            '.' => t.out.push_str(if flags.dot_all { "(?s:.)" } else { NOT_LINE_TERMINATOR }),
            '(' => {
                let next: String = t.chars[t.at..].iter().take(3).collect();
                if ["?=", "?!", "?<=", "?<!"].iter().any(|l| next.starts_with(l)) {
                    return Err(RegexError::Unsupported("lookahead and lookbehind"));
                }
                t.out.push('(');
            }
            '{' => match quantifier_len(&t.chars[t.at..]) {
                Some(len) => {
                    t.out.push('{');
                    t.out.extend(&t.chars[t.at..t.at + len]);
                    t.at += len;
                }
                // Without `u`, a brace that is no quantifier is literal.
                None => t.out.push_str(r"\{"),
            },
            '}' => t.out.push_str(r"\}"),
            ']' => t.out.push_str(r"\]"),
            _ => t.out.push(c),
        }
    }
    Ok(t.out)
}

/// The length of `n}`, `n,}` or `n,m}` after a `{`, when that is what follows.
fn quantifier_len(rest: &[char]) -> Option<usize> {
    let digits = |from: usize| rest[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let min = digits(0);
    if min == 0 {
        return None;
    }
    let mut len = min;
    if rest.get(len) == Some(&',') {
        len += 1 + digits(len + 1);
    }
    (rest.get(len) == Some(&'}')).then_some(len + 1)
}

struct Translation<'a> {
    chars: &'a [char],
    /// The next character to read.
    at: usize,
    out: String,
    flags: Flags,
    /// `\k` is a backreference when the pattern has named groups (or `u`).
    named_groups: bool,
}

impl Translation<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    /// A character class; `[` is read. JavaScript's `[` inside is literal,
    /// and the regex crate's set operators (`&&`, `--`, `~~`) are not.
    fn class(&mut self) -> Result<(), RegexError> {
        let negated = self.peek(0) == Some('^');
        if negated {
            self.at += 1;
        }
        if self.peek(0) == Some(']') {
            self.at += 1;
            self.out.push_str(if negated { "(?s:.)" } else { NOTHING });
            return Ok(());
        }
        self.out.push_str(if negated { "[^" } else { "[" });
        let mut after_dash = false;
        loop {
            let Some(c) = self.peek(0) else {
                return Err(RegexError::Syntax("unterminated character class".to_owned()));
            };
            self.at += 1;
            match c {
                ']' => {
                    self.out.push(']');
                    return Ok(());
                }
                '\\' => self.escape(true)?,
                '[' | '&' | '~' => {
                    self.out.push('\\');
                    self.out.push(c);
                }
                '-' if after_dash => self.out.push_str(r"\-"),
                _ => self.out.push(c),
            }
            after_dash = c == '-';
        }
    }

    /// An escape; `\` is read.
    fn escape(&mut self, in_class: bool) -> Result<(), RegexError> {
        let Some(c) = self.peek(0) else {
            return Err(RegexError::Syntax(r"\ at end of pattern".to_owned()));
        };
        self.at += 1;
        let unicode = self.flags.unicode;
        let class = |body: &str, negated: bool| match (in_class, negated) {
            (true, false) => body.to_owned(),
            (_, true) => format!("[^{body}]"),
            (false, false) => format!("[{body}]"),
        };
        let text = match c {
            'd' => class("0-9", false),
            'D' => class("0-9", true),
            'w' => class(WORD, false),
            'W' => class(WORD, true),
            's' => class(SPACE, false),
            'S' => class(SPACE, true),
            'b' if in_class => r"\x08".to_owned(),
            'b' => r"(?-u:\b)".to_owned(),
            'B' if !in_class => r"(?-u:\B)".to_owned(),
            'f' | 'n' | 'r' | 't' | 'v' => format!("\\{c}"),
            '0' if !self.peek(0).is_some_and(|d| d.is_ascii_digit()) => r"\x00".to_owned(),
            '0'..='9' => return Err(RegexError::Unsupported("backreferences (and octal escapes)")),
            'k' if unicode || self.named_groups => return Err(RegexError::Unsupported("backreferences")),
            'c' => match self.peek(0) {
                Some(letter) if letter.is_ascii_alphabetic() => {
                    self.at += 1;
                    format!("\\x{{{:X}}}", u32::from(letter) % 32)
                }
                _ if unicode => return Err(RegexError::Syntax(r"invalid escape \c".to_owned())),
                // Without `u`, a lone `\c` is a backslash; the `c` is read next.
                _ => {
                    self.at -= 1;
                    r"\\".to_owned()
                }
            },
            'x' => match self.hex(0, 2) {
                Some(code) => {
                    self.at += 2;
                    format!("\\x{{{code:X}}}")
                }
                None if unicode => return Err(RegexError::Syntax(r"invalid escape \x".to_owned())),
                None => "x".to_owned(),
            },
            'u' => self.unicode_escape()?,
            'p' | 'P' if unicode => self.property(c)?,
            c if c.is_ascii_alphanumeric() && unicode => return Err(RegexError::Syntax(format!("invalid escape \\{c}"))),
            c if !c.is_ascii() && unicode => return Err(RegexError::Syntax(format!("invalid escape \\{c}"))),
            // An identity escape: the character itself (the regex crate
            // escapes its own metacharacters, and gives `\<` a meaning).
            c => regex::escape(c.encode_utf8(&mut [0; 4])),
        };
        self.out.push_str(&text);
        Ok(())
    }

    /// `\uXXXX` (a surrogate pair as one character), or with `u` `\u{X...}`; `\u` is read.
    fn unicode_escape(&mut self) -> Result<String, RegexError> {
        let unicode = self.flags.unicode;
        if unicode && self.peek(0) == Some('{') {
            let digits = self.chars[self.at + 1..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
            let code = self.hex(1, digits).filter(|_| digits > 0 && self.peek(1 + digits) == Some('}'));
            let Some(code) = code.filter(|c| char::from_u32(*c).is_some()) else {
                return Err(RegexError::Syntax(r"invalid escape \u{...}".to_owned()));
            };
            self.at += digits + 2;
            return Ok(format!("\\x{{{code:X}}}"));
        }
        let Some(unit) = self.hex(0, 4) else {
            return if unicode { Err(RegexError::Syntax(r"invalid escape \u".to_owned())) } else { Ok("u".to_owned()) };
        };
        self.at += 4;
        if !(0xD800..0xE000).contains(&unit) {
            return Ok(format!("\\x{{{unit:X}}}"));
        }
        let low = (self.peek(0) == Some('\\') && self.peek(1) == Some('u')).then(|| self.hex(2, 4)).flatten();
        match low {
            Some(low) if (0xD800..0xDC00).contains(&unit) && (0xDC00..0xE000).contains(&low) => {
                self.at += 6;
                Ok(format!("\\x{{{:X}}}", 0x1_0000 + ((unit - 0xD800) << 10) + (low - 0xDC00)))
            }
            _ => Err(RegexError::Unsupported("lone surrogates")),
        }
    }

    /// `\p{...}` / `\P{...}` with `u`, passed on; `\p` is read.
    fn property(&mut self, c: char) -> Result<String, RegexError> {
        let close = self.chars[self.at..].iter().position(|&c| c == '}');
        match (self.peek(0), close) {
            (Some('{'), Some(close)) => {
                let body: String = self.chars[self.at..=self.at + close].iter().collect();
                self.at += close + 1;
                Ok(format!("\\{c}{body}"))
            }
            _ => Err(RegexError::Syntax(format!("invalid escape \\{c}"))),
        }
    }

    /// The value of `len` hex digits `ahead` of the next character.
    fn hex(&self, ahead: usize, len: usize) -> Option<u32> {
        let digits: String = self.chars.get(self.at + ahead..self.at + ahead + len)?.iter().collect();
        if digits.len() != len || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(&digits, 16).ok()
    }
}

#[cfg(test)]
mod tests;
