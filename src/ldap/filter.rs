//! LDAP search filters: the RFC 4515 string form, parsed into and rendered from
//! `ldap3_proto`'s [`LdapFilter`].
//!
//! This module owns everything about filter text: parsing admin-supplied filters
//! (RFC 4515, plus the RFC 4526 empty `(&)` / `(|)`), escaping values that go into
//! filters, rendering a filter back to text for logs, and the few builders the sync
//! uses. It is the only code in the crate that builds an [`LdapFilter`]; everything
//! else calls [`parse`], [`parse_user_filter`] or the builders here.
//!
//! `ldap3_proto::parse_ldap_filter_str` is deliberately not used: in 0.9.0 it
//! keeps `\xx` escapes as literal text and ends values at spaces, so it does not
//! implement RFC 4515.
//!
//! Limits of the target type, decided here once:
//! * ldap3_proto carries assertion values as `String`, not octets, so an escaped
//!   value whose decoded bytes are not UTF-8 (a raw objectGUID, say) cannot be
//!   represented and is rejected with [`FilterError::NotUtf8`].
//! * Empty `any` components of a substring filter (`(cn=a**b)`) are dropped, and a
//!   value made only of stars (`(cn=**)`) becomes a presence filter. Both match
//!   the same entries, and RFC 4511 §4.5.1.7.2 needs at least one component, so
//!   `(cn=**)` could not be sent as a substring filter anyway.
//! * In `(cn:dn:=x)` the RFC 4515 grammar is ambiguous; `:dn` is read as
//!   dnAttributes, as every implementation does. An assertion with an attribute, a
//!   matching rule named `dn` and no dnAttributes therefore has no text form.
//!
//! Error positions are 0-based **byte** offsets into the text that was passed in
//! (for [`parse_user_filter`], the untrimmed text).

// `parse`, `escape_bytes`, `equality` and `FilterError::position` are for the
// login lookups and by-id searches still to come; the tests use them today.
#![cfg_attr(not(test), allow(dead_code))]

use ldap3_proto::proto::{LdapFilter, LdapMatchingRuleAssertion, LdapSubstringFilter};

/// Deepest parenthesis nesting [`parse`] accepts; `(cn=x)` is depth 1.
///
/// The parser recurses once per level, so hostile input such as 100,000 `(!`
/// would otherwise exhaust the stack (a wasm guest's stack is small). Real
/// filters are a handful of levels deep.
pub const MAX_DEPTH: usize = 32;

/// Longest filter text, in bytes, that [`parse`] and [`parse_user_filter`] accept.
///
/// Admin-configured filters are a few hundred bytes; the bound keeps the work and
/// the memory spent on a hostile or corrupted setting small.
pub const MAX_FILTER_LEN: usize = 64 * 1024;

/// What a filter string got wrong, and where.
///
/// Every variant carries `position`, the 0-based byte offset into the text passed
/// to [`parse`] or [`parse_user_filter`] (see [`FilterError::position`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Something other than what the grammar allows here.
    #[error("expected {expected} at position {position}")]
    Expected {
        /// What the grammar wanted, e.g. `')'` or `attribute description`.
        expected: &'static str,
        position: usize,
    },
    /// The text ended while the grammar still wanted something.
    #[error("unexpected end of filter at position {position}, expected {expected}")]
    UnexpectedEnd {
        expected: &'static str,
        position: usize,
    },
    /// A `\` not followed by two hex digits (RFC 4515 §3 `escaped`). The old
    /// RFC 2254 `\*` form is not accepted.
    #[error("invalid escape '{escape}' at position {position}")]
    InvalidEscape {
        /// The backslash and up to two characters after it.
        escape: String,
        position: usize,
    },
    /// `(`, NUL, or a `*` where no substring is possible, written unescaped
    /// inside a value (RFC 4515 §3 `UTF1SUBSET` excludes them; an unescaped `)`
    /// simply ends the value).
    #[error(
        "unescaped {} in value at position {position} (write it as {})",
        describe_char(*.found),
        escape_value(&.found.to_string())
    )]
    UnescapedChar { found: char, position: usize },
    /// A complete filter was followed by more text.
    #[error("trailing characters after filter at position {position}")]
    TrailingCharacters { position: usize },
    /// More than [`MAX_DEPTH`] levels of parentheses; `position` is the `(` that
    /// went too deep.
    #[error("filter nesting deeper than {MAX_DEPTH} at position {position}")]
    TooDeep { position: usize },
    /// The text is longer than [`MAX_FILTER_LEN`]; `position` is that limit.
    #[error("filter of {length} bytes is longer than {MAX_FILTER_LEN} at position {position}")]
    TooLong { length: usize, position: usize },
    /// Escapes decoded to bytes that are not UTF-8. LDAP allows any octets, but
    /// ldap3_proto filter values are `String`s; `position` is the escape that
    /// starts the bad sequence.
    #[error(
        "byte value \\{byte:02x} at position {position} cannot be represented: ldap3_proto filter values must be UTF-8"
    )]
    NotUtf8 { byte: u8, position: usize },
}

impl FilterError {
    /// 0-based byte offset into the filter text where the problem was found.
    pub fn position(&self) -> usize {
        match self {
            Self::Expected { position, .. }
            | Self::UnexpectedEnd { position, .. }
            | Self::InvalidEscape { position, .. }
            | Self::UnescapedChar { position, .. }
            | Self::TrailingCharacters { position }
            | Self::TooDeep { position }
            | Self::TooLong { position, .. }
            | Self::NotUtf8 { position, .. } => *position,
        }
    }
}

fn describe_char(c: char) -> String {
    if c == '\0' {
        "NUL".to_owned()
    } else {
        format!("'{c}'")
    }
}

/// Parses one RFC 4515 filter, e.g. `(&(objectClass=person)(uid=jdoe))`.
///
/// Strict: the text must be exactly one parenthesised filter with no whitespace
/// around or between components (RFC 4515 §3 has none); spaces inside values are
/// part of the value. `\xx` escapes are decoded.
pub fn parse(text: &str) -> Result<LdapFilter, FilterError> {
    check_length(text)?;
    let mut parser = Parser::new(text, 0, text.len());
    let filter = parser.filter(1)?;
    parser.finish()?;
    Ok(filter)
}

/// Parses a filter from a setting the way Rocket.Chat does: the text is trimmed,
/// and if it does not start with `(` it is read as if wrapped in parentheses
/// (`objectClass=person` means `(objectClass=person)`; `&(a=b)(c=d)` means
/// `(&(a=b)(c=d))`). Empty or blank text means "no filter": `Ok(None)`.
///
/// Error positions refer to `text` as given, before trimming.
pub fn parse_user_filter(text: &str) -> Result<Option<LdapFilter>, FilterError> {
    check_length(text)?;
    let start = text.len() - text.trim_start().len();
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let mut parser = Parser::new(text, start, start + trimmed.len());
    let filter = if trimmed.starts_with('(') {
        parser.filter(1)?
    } else {
        // The implied parentheses count as depth 1, as if they had been written.
        parser.filtercomp(1)?
    };
    parser.finish()?;
    Ok(Some(filter))
}

fn check_length(text: &str) -> Result<(), FilterError> {
    if text.len() > MAX_FILTER_LEN {
        return Err(FilterError::TooLong {
            length: text.len(),
            position: MAX_FILTER_LEN,
        });
    }
    Ok(())
}

/// Escapes a value for use inside filter text (RFC 4515 §3): `*`, `(`, `)`, `\`
/// and NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`; everything else, including
/// non-ASCII UTF-8, is kept as is.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' | '(' | ')' | '\\' | '\0' => push_escaped(&mut out, c as u8),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes every byte as `\xx` (RFC 4515 §3 allows escaping any octet), for
/// binary values such as ids. Note that [`parse`] can only read the result back
/// if the bytes are UTF-8 (see [`FilterError::NotUtf8`]).
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        push_escaped(&mut out, b);
    }
    out
}

fn push_escaped(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('\\');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0f)]));
}

/// Renders a filter as RFC 4515 text, escaping values with [`escape_value`].
///
/// For every filter [`parse`] returns, `parse(&to_string(&f)) == Ok(f)`.
/// Attribute descriptions and matching rules are written as they are (they cannot
/// be escaped in RFC 4515). Recursion follows the filter's depth, which is at
/// most [`MAX_DEPTH`] for parsed filters and shallow for the builders'.
pub fn to_string(filter: &LdapFilter) -> String {
    let mut out = String::new();
    write_filter(&mut out, filter);
    out
}

fn write_filter(out: &mut String, filter: &LdapFilter) {
    out.push('(');
    match filter {
        LdapFilter::And(parts) | LdapFilter::Or(parts) => {
            out.push(if matches!(filter, LdapFilter::And(_)) {
                '&'
            } else {
                '|'
            });
            for part in parts {
                write_filter(out, part);
            }
        }
        LdapFilter::Not(inner) => {
            out.push('!');
            write_filter(out, inner);
        }
        LdapFilter::Equality(attr, value) => write_simple(out, attr, "=", value),
        LdapFilter::GreaterOrEqual(attr, value) => write_simple(out, attr, ">=", value),
        LdapFilter::LessOrEqual(attr, value) => write_simple(out, attr, "<=", value),
        LdapFilter::Approx(attr, value) => write_simple(out, attr, "~=", value),
        LdapFilter::Present(attr) => {
            out.push_str(attr);
            out.push_str("=*");
        }
        LdapFilter::Substring(attr, sub) => {
            out.push_str(attr);
            out.push('=');
            if let Some(initial) = &sub.initial {
                out.push_str(&escape_value(initial));
            }
            out.push('*');
            for any in &sub.any {
                out.push_str(&escape_value(any));
                out.push('*');
            }
            if let Some(final_) = &sub.final_ {
                out.push_str(&escape_value(final_));
            }
        }
        LdapFilter::Extensible(mra) => {
            // RFC 4515 §3: extensible = attr [":dn"] [":" rule] ":=" value
            //                         / [":dn"] ":" rule ":=" value
            if let Some(attr) = &mra.type_ {
                out.push_str(attr);
            }
            if mra.dn_attributes {
                out.push_str(":dn");
            }
            if let Some(rule) = &mra.matching_rule {
                out.push(':');
                out.push_str(rule);
            }
            out.push_str(":=");
            out.push_str(&escape_value(&mra.match_value));
        }
    }
    out.push(')');
}

fn write_simple(out: &mut String, attr: &str, op: &str, value: &str) {
    out.push_str(attr);
    out.push_str(op);
    out.push_str(&escape_value(value));
}

/// All of `parts`. One part is returned as itself; no parts gives `(&)`, the
/// RFC 4526 "absolute true".
pub fn and(parts: Vec<LdapFilter>) -> LdapFilter {
    single_or(parts, LdapFilter::And)
}

/// Any of `parts`. One part is returned as itself; no parts gives `(|)`, the
/// RFC 4526 "absolute false".
pub fn or(parts: Vec<LdapFilter>) -> LdapFilter {
    single_or(parts, LdapFilter::Or)
}

fn single_or(parts: Vec<LdapFilter>, wrap: fn(Vec<LdapFilter>) -> LdapFilter) -> LdapFilter {
    match <[LdapFilter; 1]>::try_from(parts) {
        Ok([only]) => only,
        Err(parts) => wrap(parts),
    }
}

/// `(attr=*)`.
pub fn present(attr: impl Into<String>) -> LdapFilter {
    LdapFilter::Present(attr.into())
}

/// `(attr=value)`; `value` is the plain value, not escaped filter text.
pub fn equality(attr: impl Into<String>, value: impl Into<String>) -> LdapFilter {
    LdapFilter::Equality(attr.into(), value.into())
}

const OPERATORS: &str = "'=', '~=', '>=', '<=' or ':'";
const HEX_DIGITS: &str = "two hex digits after '\\'";

/// A run of a value between unescaped `*`s, decoded to octets, with the source
/// position of each octet (for [`FilterError::NotUtf8`]).
#[derive(Default)]
struct Piece {
    bytes: Vec<u8>,
    origins: Vec<usize>,
}

impl Piece {
    fn push(&mut self, byte: u8, origin: usize) {
        self.bytes.push(byte);
        self.origins.push(origin);
    }

    fn into_string(self) -> Result<String, FilterError> {
        let Piece { bytes, origins } = self;
        String::from_utf8(bytes).map_err(|err| {
            let at = err.utf8_error().valid_up_to();
            FilterError::NotUtf8 {
                byte: err.as_bytes().get(at).copied().unwrap_or_default(),
                position: origins.get(at).copied().unwrap_or_default(),
            }
        })
    }

    fn into_non_empty(self) -> Result<Option<String>, FilterError> {
        if self.bytes.is_empty() {
            Ok(None)
        } else {
            self.into_string().map(Some)
        }
    }
}

/// Recursive-descent parser over `text[pos..end]`, following the RFC 4515 §3 ABNF.
/// All delimiters are ASCII, so it scans bytes; `pos` always sits on a char
/// boundary when a slice of `text` is taken.
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, start: usize, end: usize) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            pos: start,
            end,
        }
    }

    fn byte_at(&self, at: usize) -> Option<u8> {
        if at < self.end {
            self.bytes.get(at).copied()
        } else {
            None
        }
    }

    fn peek(&self) -> Option<u8> {
        self.byte_at(self.pos)
    }

    fn fail(&self, expected: &'static str) -> FilterError {
        match self.peek() {
            None => FilterError::UnexpectedEnd {
                expected,
                position: self.pos,
            },
            Some(_) => FilterError::Expected {
                expected,
                position: self.pos,
            },
        }
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), FilterError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.fail(expected))
        }
    }

    fn finish(&self) -> Result<(), FilterError> {
        if self.pos < self.end {
            return Err(FilterError::TrailingCharacters { position: self.pos });
        }
        Ok(())
    }

    /// `filter = LPAREN filtercomp RPAREN`; `depth` is this filter's nesting level.
    fn filter(&mut self, depth: usize) -> Result<LdapFilter, FilterError> {
        let open = self.pos;
        self.expect(b'(', "'('")?;
        if depth > MAX_DEPTH {
            return Err(FilterError::TooDeep { position: open });
        }
        let is_list = matches!(self.peek(), Some(b'&' | b'|'));
        let filter = self.filtercomp(depth)?;
        self.expect(b')', if is_list { "'(' or ')'" } else { "')'" })?;
        Ok(filter)
    }

    /// `filtercomp = and / or / not / item`
    fn filtercomp(&mut self, depth: usize) -> Result<LdapFilter, FilterError> {
        match self.peek() {
            Some(b'&') => {
                self.pos += 1;
                Ok(LdapFilter::And(self.filter_list(depth)?))
            }
            Some(b'|') => {
                self.pos += 1;
                Ok(LdapFilter::Or(self.filter_list(depth)?))
            }
            Some(b'!') => {
                self.pos += 1;
                Ok(LdapFilter::Not(Box::new(self.filter(depth + 1)?)))
            }
            _ => self.item(),
        }
    }

    /// `filterlist = 1*filter`, relaxed to `*filter`: RFC 4526 §2 gives the empty
    /// `(&)` and `(|)` the meanings "absolute true" and "absolute false".
    fn filter_list(&mut self, depth: usize) -> Result<Vec<LdapFilter>, FilterError> {
        let mut parts = Vec::new();
        while self.peek() == Some(b'(') {
            parts.push(self.filter(depth + 1)?);
        }
        Ok(parts)
    }

    /// `item = simple / present / substring / extensible`
    fn item(&mut self) -> Result<LdapFilter, FilterError> {
        if self.peek() == Some(b':') {
            return self.extensible(None);
        }
        let attr = self.attribute_description()?;
        match self.peek() {
            Some(b'=') => {
                self.pos += 1;
                self.equal_or_substring(attr)
            }
            Some(b'~') => {
                self.pos += 1;
                self.expect(b'=', "'=' after '~'")?;
                Ok(LdapFilter::Approx(attr, self.plain_value()?))
            }
            Some(b'>') => {
                self.pos += 1;
                self.expect(b'=', "'=' after '>'")?;
                Ok(LdapFilter::GreaterOrEqual(attr, self.plain_value()?))
            }
            Some(b'<') => {
                self.pos += 1;
                self.expect(b'=', "'=' after '<'")?;
                Ok(LdapFilter::LessOrEqual(attr, self.plain_value()?))
            }
            Some(b':') => self.extensible(Some(attr)),
            _ => Err(self.fail(OPERATORS)),
        }
    }

    /// After `attr=`: equality, presence or substrings. RFC 4515 §3: `attr=*` is
    /// only ever a presence filter, although the substring rule also matches it.
    fn equal_or_substring(&mut self, attr: String) -> Result<LdapFilter, FilterError> {
        let mut pieces = self.value(true)?;
        if pieces.len() == 1 {
            let value = pieces.pop().map(Piece::into_string).transpose()?;
            return Ok(LdapFilter::Equality(attr, value.unwrap_or_default()));
        }
        // substring = attr EQUALS [initial] any [final]; pieces.len() >= 2 here.
        let final_ = pieces
            .pop()
            .map(Piece::into_non_empty)
            .transpose()?
            .flatten();
        let mut rest = pieces.into_iter();
        let initial = rest
            .next()
            .map(Piece::into_non_empty)
            .transpose()?
            .flatten();
        let mut any = Vec::new();
        for piece in rest {
            if let Some(value) = piece.into_non_empty()? {
                any.push(value);
            }
        }
        if initial.is_none() && any.is_empty() && final_.is_none() {
            return Ok(LdapFilter::Present(attr));
        }
        Ok(LdapFilter::Substring(
            attr,
            LdapSubstringFilter {
                initial,
                any,
                final_,
            },
        ))
    }

    /// An `assertionvalue` where `*` must be escaped (`~=`, `>=`, `<=`, `:=`).
    fn plain_value(&mut self) -> Result<String, FilterError> {
        let mut pieces = self.value(false)?;
        // value(false) never splits, so there is exactly one piece.
        Ok(pieces
            .pop()
            .map(Piece::into_string)
            .transpose()?
            .unwrap_or_default())
    }

    /// `valueencoding = 0*(normal / escaped)` (RFC 4515 §3), read up to the next
    /// `)` or the end. With `stars`, unescaped `*` split the value into pieces.
    fn value(&mut self, stars: bool) -> Result<Vec<Piece>, FilterError> {
        let mut pieces = Vec::new();
        let mut current = Piece::default();
        loop {
            let at = self.pos;
            match self.peek() {
                None | Some(b')') => break,
                Some(b'*') if stars => {
                    pieces.push(std::mem::take(&mut current));
                    self.pos += 1;
                }
                Some(found @ (b'(' | b'*' | 0)) => {
                    return Err(FilterError::UnescapedChar {
                        found: char::from(found),
                        position: at,
                    });
                }
                Some(b'\\') => {
                    let byte = self.escape()?;
                    current.push(byte, at);
                }
                Some(byte) => {
                    // Non-ASCII bytes are copied one by one; the input is a &str,
                    // so they form valid UTF-8 (`UTFMB`).
                    current.push(byte, at);
                    self.pos += 1;
                }
            }
        }
        pieces.push(current);
        Ok(pieces)
    }

    /// `escaped = ESC HEX HEX`, at a `\`. Hex digits are case-insensitive.
    fn escape(&mut self) -> Result<u8, FilterError> {
        let start = self.pos;
        let high = self.hex_digit(start, start + 1)?;
        let low = self.hex_digit(start, start + 2)?;
        self.pos = start + 3;
        Ok(high << 4 | low)
    }

    fn hex_digit(&self, escape_start: usize, at: usize) -> Result<u8, FilterError> {
        let Some(byte) = self.byte_at(at) else {
            return Err(FilterError::UnexpectedEnd {
                expected: HEX_DIGITS,
                position: at,
            });
        };
        match byte {
            b'0'..=b'9' => Ok(byte - b'0'),
            b'a'..=b'f' => Ok(byte - b'a' + 10),
            b'A'..=b'F' => Ok(byte - b'A' + 10),
            _ => Err(FilterError::InvalidEscape {
                escape: self
                    .text
                    .get(escape_start..self.end)
                    .map(|rest| rest.chars().take(3).collect())
                    .unwrap_or_default(),
                position: escape_start,
            }),
        }
    }

    /// RFC 4515 §3, at the first `:` after the optional attribute:
    /// `extensible = ( attr [dnattrs] [matchingrule] COLON EQUALS assertionvalue )
    ///             / ( [dnattrs] matchingrule COLON EQUALS assertionvalue )`
    /// with `dnattrs = COLON "dn"` (case-insensitive, as all ABNF strings) and
    /// `matchingrule = COLON oid`.
    fn extensible(&mut self, type_: Option<String>) -> Result<LdapFilter, FilterError> {
        let mut dn_attributes = false;
        if self.at_dn_attrs(type_.is_some()) {
            dn_attributes = true;
            self.pos += 3;
        }
        self.expect(b':', "':'")?;
        let matching_rule = if type_.is_some() && self.peek() == Some(b'=') {
            None
        } else {
            let rule = self.oid("matching rule")?;
            self.expect(b':', "':='")?;
            Some(rule)
        };
        self.expect(b'=', "'=' after ':'")?;
        let match_value = self.plain_value()?;
        Ok(LdapFilter::Extensible(LdapMatchingRuleAssertion {
            matching_rule,
            type_,
            match_value,
            dn_attributes,
        }))
    }

    /// Whether `:dn` here is `dnattrs`. Without an attribute the grammar needs a
    /// matching rule after it, so `(:dn:=x)` is the matching rule named `dn`.
    fn at_dn_attrs(&self, has_type: bool) -> bool {
        let colon_dn_colon = self.byte_at(self.pos) == Some(b':')
            && self
                .byte_at(self.pos + 1)
                .is_some_and(|b| b.eq_ignore_ascii_case(&b'd'))
            && self
                .byte_at(self.pos + 2)
                .is_some_and(|b| b.eq_ignore_ascii_case(&b'n'))
            && self.byte_at(self.pos + 3) == Some(b':');
        colon_dn_colon && (has_type || self.byte_at(self.pos + 4) != Some(b'='))
    }

    /// `attr = attributedescription` (RFC 4512 §2.5): `oid *( ";" option )`,
    /// `option = 1*keychar`.
    fn attribute_description(&mut self) -> Result<String, FilterError> {
        let start = self.pos;
        self.oid("attribute description")?;
        while self.peek() == Some(b';') {
            self.pos += 1;
            let option_start = self.pos;
            self.skip_keychars();
            if self.pos == option_start {
                return Err(self.fail("attribute option"));
            }
        }
        Ok(self.slice(start))
    }

    /// `oid = descr / numericoid` (RFC 4512 §1.4): `descr = ALPHA *keychar`,
    /// `numericoid = number 1*( DOT number )`, `number = DIGIT / ( LDIGIT 1*DIGIT )`.
    fn oid(&mut self, what: &'static str) -> Result<String, FilterError> {
        let start = self.pos;
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() => self.skip_keychars(),
            Some(b) if b.is_ascii_digit() => {
                self.number()?;
                let mut dots = 0;
                while self.peek() == Some(b'.') {
                    self.pos += 1;
                    self.number()?;
                    dots += 1;
                }
                if dots == 0 {
                    return Err(self.fail("'.' in numeric OID"));
                }
            }
            _ => return Err(self.fail(what)),
        }
        Ok(self.slice(start))
    }

    fn number(&mut self) -> Result<(), FilterError> {
        match self.peek() {
            // No leading zeros: "0" stands alone.
            Some(b'0') => self.pos += 1,
            Some(b) if b.is_ascii_digit() => {
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
            _ => return Err(self.fail("digit")),
        }
        Ok(())
    }

    /// `keychar = ALPHA / DIGIT / HYPHEN`
    fn skip_keychars(&mut self) {
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            self.pos += 1;
        }
    }

    /// `text[start..pos]`; both are on ASCII boundaries when this is called.
    fn slice(&self, start: usize) -> String {
        self.text
            .get(start..self.pos)
            .unwrap_or_default()
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(attr: &str, value: &str) -> LdapFilter {
        LdapFilter::Equality(attr.into(), value.into())
    }

    fn sub(attr: &str, initial: Option<&str>, any: &[&str], final_: Option<&str>) -> LdapFilter {
        LdapFilter::Substring(
            attr.into(),
            LdapSubstringFilter {
                initial: initial.map(Into::into),
                any: any.iter().map(|s| (*s).to_owned()).collect(),
                final_: final_.map(Into::into),
            },
        )
    }

    fn ext(attr: Option<&str>, dn: bool, rule: Option<&str>, value: &str) -> LdapFilter {
        LdapFilter::Extensible(LdapMatchingRuleAssertion {
            matching_rule: rule.map(Into::into),
            type_: attr.map(Into::into),
            match_value: value.into(),
            dn_attributes: dn,
        })
    }

    /// Parses, checks the result, and checks that rendering parses back to it.
    #[track_caller]
    fn check(text: &str, expected: LdapFilter) {
        assert_eq!(parse(text), Ok(expected.clone()), "{text}");
        let rendered = to_string(&expected);
        assert_eq!(
            parse(&rendered),
            Ok(expected),
            "{text} rendered as {rendered}"
        );
    }

    #[track_caller]
    fn check_err(text: &str, message: &str, position: usize) {
        let err = parse(text).expect_err(text);
        assert_eq!(err.to_string(), message, "{text}");
        assert_eq!(err.position(), position, "{text}");
    }

    // ---- RFC 4515 §4, every example ----

    #[test]
    fn rfc4515_simple_examples() {
        check("(cn=Babs Jensen)", eq("cn", "Babs Jensen"));
        check(
            "(!(cn=Tim Howes))",
            LdapFilter::Not(Box::new(eq("cn", "Tim Howes"))),
        );
        check(
            "(&(objectClass=Person)(|(sn=Jensen)(cn=Babs J*)))",
            LdapFilter::And(vec![
                eq("objectClass", "Person"),
                LdapFilter::Or(vec![
                    eq("sn", "Jensen"),
                    sub("cn", Some("Babs J"), &[], None),
                ]),
            ]),
        );
        check(
            "(o=univ*of*mich*)",
            sub("o", Some("univ"), &["of", "mich"], None),
        );
        check("(seeAlso=)", eq("seeAlso", ""));
    }

    #[test]
    fn rfc4515_extensible_examples() {
        check(
            "(cn:caseExactMatch:=Fred Flintstone)",
            ext(Some("cn"), false, Some("caseExactMatch"), "Fred Flintstone"),
        );
        check(
            "(cn:=Betty Rubble)",
            ext(Some("cn"), false, None, "Betty Rubble"),
        );
        check(
            "(sn:dn:2.4.6.8.10:=Barney Rubble)",
            ext(Some("sn"), true, Some("2.4.6.8.10"), "Barney Rubble"),
        );
        check(
            "(o:dn:=Ace Industry)",
            ext(Some("o"), true, None, "Ace Industry"),
        );
        check(
            "(:1.2.3:=Wilma Flintstone)",
            ext(None, false, Some("1.2.3"), "Wilma Flintstone"),
        );
        check(
            "(:DN:2.4.6.8.10:=Dino)",
            ext(None, true, Some("2.4.6.8.10"), "Dino"),
        );
    }

    #[test]
    fn rfc4515_escape_examples() {
        check(
            r"(o=Parens R Us \28for all your parenthetical needs\29)",
            eq("o", "Parens R Us (for all your parenthetical needs)"),
        );
        check(r"(cn=*\2A*)", sub("cn", None, &["*"], None));
        check(r"(filename=C:\5cMyFile)", eq("filename", r"C:\MyFile"));
        check(r"(bin=\00\00\00\04)", eq("bin", "\0\0\0\u{4}"));
        check(r"(sn=Lu\c4\8di\c4\87)", eq("sn", "Lučić"));
        check(
            r"(1.3.6.1.4.1.1466.0=\04\02\48\69)",
            eq("1.3.6.1.4.1.1466.0", "\u{4}\u{2}Hi"),
        );
    }

    // ---- the rest of the grammar ----

    #[test]
    fn all_item_kinds() {
        check(
            "(cn~=Jensen)",
            LdapFilter::Approx("cn".into(), "Jensen".into()),
        );
        check(
            "(uidNumber>=1000)",
            LdapFilter::GreaterOrEqual("uidNumber".into(), "1000".into()),
        );
        check(
            "(uidNumber<=1000)",
            LdapFilter::LessOrEqual("uidNumber".into(), "1000".into()),
        );
        check("(mail=*)", LdapFilter::Present("mail".into()));
        check("(cn=Babs*)", sub("cn", Some("Babs"), &[], None));
        check("(cn=*Jensen)", sub("cn", None, &[], Some("Jensen")));
        check("(cn=*abs*)", sub("cn", None, &["abs"], None));
        check("(cn=B*a*b*s)", sub("cn", Some("B"), &["a", "b"], Some("s")));
        check(
            "(userAccountControl:1.2.840.113556.1.4.803:=2)",
            ext(
                Some("userAccountControl"),
                false,
                Some("1.2.840.113556.1.4.803"),
                "2",
            ),
        );
        check(
            "(memberOf:1.2.840.113556.1.4.1941:=cn=Staff,ou=Groups,dc=example,dc=com)",
            ext(
                Some("memberOf"),
                false,
                Some("1.2.840.113556.1.4.1941"),
                "cn=Staff,ou=Groups,dc=example,dc=com",
            ),
        );
    }

    #[test]
    fn attribute_descriptions() {
        check("(cn;lang-en=Babs)", eq("cn;lang-en", "Babs"));
        check("(cn;lang-en;binary=x)", eq("cn;lang-en;binary", "x"));
        check("(2.5.4.3=Babs)", eq("2.5.4.3", "Babs"));
        check(
            "(2.5.4.3;lang-de=*)",
            LdapFilter::Present("2.5.4.3;lang-de".into()),
        );
        check(
            "(msDS-User-Account-Control-Computed=0)",
            eq("msDS-User-Account-Control-Computed", "0"),
        );
        check("(x0=1)", eq("x0", "1"));
        check("(0.0=1)", eq("0.0", "1"));
    }

    #[test]
    fn spaces_are_literal_in_values() {
        check("(cn= Babs  Jensen )", eq("cn", " Babs  Jensen "));
        check("(cn= )", eq("cn", " "));
        check("(cn= * )", sub("cn", Some(" "), &[], Some(" ")));
        check(
            r"(cn=Smith\2c John*)",
            sub("cn", Some("Smith, John"), &[], None),
        );
    }

    #[test]
    fn escapes_decode_in_every_value_position() {
        check(r"(cn=\2A)", eq("cn", "*"));
        check(r"(cn=\2a\28\29\5C\00)", eq("cn", "*()\\\0"));
        check(r"(cn=\41*\42*\43)", sub("cn", Some("A"), &["B"], Some("C")));
        check(r"(cn~=\2a)", LdapFilter::Approx("cn".into(), "*".into()));
        check(
            r"(n>=\31)",
            LdapFilter::GreaterOrEqual("n".into(), "1".into()),
        );
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
        check(
            "(cn:Dn:caseExactMatch:=x)",
            ext(Some("cn"), true, Some("caseExactMatch"), "x"),
        );
        check(
            "(:dn:caseExactMatch:=x)",
            ext(None, true, Some("caseExactMatch"), "x"),
        );
        check(
            "(cn;lang-en:dn:=x)",
            ext(Some("cn;lang-en"), true, None, "x"),
        );
        check("(cn:=)", ext(Some("cn"), false, None, ""));
        check("(cn:= a b )", ext(Some("cn"), false, None, " a b "));
        // Without an attribute the grammar needs a rule, so this `dn` is the rule.
        check("(:dn:=x)", ext(None, false, Some("dn"), "x"));
        check("(:dn:dn:=x)", ext(None, true, Some("dn"), "x"));
        check("(cn:dn:dn:=x)", ext(Some("cn"), true, Some("dn"), "x"));
        // A rule that merely starts with "dn" is a rule.
        check(
            "(cn:dnMatch:=x)",
            ext(Some("cn"), false, Some("dnMatch"), "x"),
        );
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
        assert_eq!(
            err,
            FilterError::NotUtf8 {
                byte: 0xff,
                position: 18
            }
        );
        assert_eq!(
            err.to_string(),
            r"byte value \ff at position 18 cannot be represented: ldap3_proto filter values must be UTF-8"
        );
        // A truncated sequence at the end of a value.
        assert_eq!(
            parse(r"(sn=Lu\c4)"),
            Err(FilterError::NotUtf8 {
                byte: 0xc4,
                position: 6
            })
        );
        // A stray continuation byte after a literal non-ASCII character.
        assert_eq!(
            parse(r"(sn=é\a9)"),
            Err(FilterError::NotUtf8 {
                byte: 0xa9,
                position: 6
            })
        );
        // In a substring piece and an extensible value too.
        assert_eq!(
            parse(r"(cn=a*\80*b)"),
            Err(FilterError::NotUtf8 {
                byte: 0x80,
                position: 6
            })
        );
        assert_eq!(
            parse(r"(cn:=\fe)"),
            Err(FilterError::NotUtf8 {
                byte: 0xfe,
                position: 5
            })
        );
    }

    // ---- errors and their positions ----

    #[test]
    fn structural_errors() {
        check_err(
            "",
            "unexpected end of filter at position 0, expected '('",
            0,
        );
        check_err("cn=x", "expected '(' at position 0", 0);
        check_err(" (cn=x)", "expected '(' at position 0", 0);
        check_err(
            "(cn=Babs Jensen",
            "unexpected end of filter at position 15, expected ')'",
            15,
        );
        check_err(
            "(cn=x))",
            "trailing characters after filter at position 6",
            6,
        );
        check_err(
            "(cn=x) ",
            "trailing characters after filter at position 6",
            6,
        );
        check_err(
            "(cn=x)(sn=y)",
            "trailing characters after filter at position 6",
            6,
        );
        check_err("(&(a=b)x)", "expected '(' or ')' at position 7", 7);
        check_err("(& (a=b))", "expected '(' or ')' at position 2", 2);
        check_err(
            "(&(a=b)",
            "unexpected end of filter at position 7, expected '(' or ')'",
            7,
        );
        check_err("(!)", "expected '(' at position 2", 2);
        check_err("(!(a=b)(c=d))", "expected ')' at position 7", 7);
        check_err("(!a=b)", "expected '(' at position 2", 2);
        check_err("()", "expected attribute description at position 1", 1);
        check_err(
            "(",
            "unexpected end of filter at position 1, expected attribute description",
            1,
        );
    }

    #[test]
    fn item_errors() {
        check_err("(=x)", "expected attribute description at position 1", 1);
        check_err("( cn=x)", "expected attribute description at position 1", 1);
        check_err(
            "(cn =x)",
            "expected '=', '~=', '>=', '<=' or ':' at position 3",
            3,
        );
        check_err(
            "(cn_x=y)",
            "expected '=', '~=', '>=', '<=' or ':' at position 3",
            3,
        );
        check_err(
            "(cn)",
            "expected '=', '~=', '>=', '<=' or ':' at position 3",
            3,
        );
        check_err("(cn~x)", "expected '=' after '~' at position 4", 4);
        check_err("(cn>x)", "expected '=' after '>' at position 4", 4);
        check_err("(cn<x)", "expected '=' after '<' at position 4", 4);
        check_err("(cn;=x)", "expected attribute option at position 4", 4);
        check_err("(-cn=x)", "expected attribute description at position 1", 1);
        check_err("(2=x)", "expected '.' in numeric OID at position 2", 2);
        check_err("(1.=x)", "expected digit at position 3", 3);
        check_err("(01.2=x)", "expected '.' in numeric OID at position 2", 2);
        check_err(
            "(1.02=x)",
            "expected '=', '~=', '>=', '<=' or ':' at position 4",
            4,
        );
    }

    #[test]
    fn value_errors() {
        check_err(r"(cn=a\zz)", r"invalid escape '\zz' at position 5", 5);
        check_err(r"(cn=a\2z)", r"invalid escape '\2z' at position 5", 5);
        check_err(r"(cn=\2)", r"invalid escape '\2)' at position 4", 4);
        check_err(r"(cn=\*)", r"invalid escape '\*)' at position 4", 4);
        check_err(r"(cn=\é1)", r"invalid escape '\é1' at position 4", 4);
        check_err(
            r"(cn=\",
            r"unexpected end of filter at position 5, expected two hex digits after '\'",
            5,
        );
        check_err(
            r"(cn=\4",
            r"unexpected end of filter at position 6, expected two hex digits after '\'",
            6,
        );
        check_err(
            "(cn=a(b)",
            "unescaped '(' in value at position 5 (write it as \\28)",
            5,
        );
        check_err(
            "(cn=a\0b)",
            "unescaped NUL in value at position 5 (write it as \\00)",
            5,
        );
        check_err(
            "(cn>=a*)",
            "unescaped '*' in value at position 6 (write it as \\2a)",
            6,
        );
        check_err(
            "(cn~=*)",
            "unescaped '*' in value at position 5 (write it as \\2a)",
            5,
        );
        check_err(
            "(cn:=*)",
            "unescaped '*' in value at position 5 (write it as \\2a)",
            5,
        );
        // Positions are byte offsets: "é" is two bytes.
        check_err(
            "(sn=é(",
            "unescaped '(' in value at position 6 (write it as \\28)",
            6,
        );
    }

    #[test]
    fn extensible_errors() {
        check_err("(:=x)", "expected matching rule at position 2", 2);
        check_err(
            "(:dn:=x",
            "unexpected end of filter at position 7, expected ')'",
            7,
        );
        check_err("(cn:dn)", "expected ':=' at position 6", 6);
        check_err(
            "(cn:dn:",
            "unexpected end of filter at position 7, expected matching rule",
            7,
        );
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
        assert_eq!(
            err,
            FilterError::TooDeep {
                position: 2 * MAX_DEPTH
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "filter nesting deeper than 32 at position {}",
                2 * MAX_DEPTH
            )
        );

        let and_deep = format!("{}(a=b){}", "(&".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(
            parse(&and_deep),
            Err(FilterError::TooDeep {
                position: 2 * MAX_DEPTH
            })
        );

        // Hostile input fails fast instead of overflowing the stack.
        let hostile = "(!".repeat(30_000);
        assert_eq!(
            parse(&hostile),
            Err(FilterError::TooDeep {
                position: 2 * MAX_DEPTH
            })
        );

        // The implied parentheses of a user filter count as one level.
        let user_ok = format!(
            "!{}(a=b){}",
            "(!".repeat(MAX_DEPTH - 2),
            ")".repeat(MAX_DEPTH - 2)
        );
        assert!(parse_user_filter(&user_ok).is_ok(), "{user_ok}");
        let user_deep = format!("!{}", nested_nots(MAX_DEPTH));
        assert_eq!(
            parse_user_filter(&user_deep),
            Err(FilterError::TooDeep {
                position: 1 + 2 * (MAX_DEPTH - 1)
            })
        );
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
        assert_eq!(
            err,
            FilterError::TooLong {
                length: MAX_FILTER_LEN + 1,
                position: MAX_FILTER_LEN
            }
        );
        assert_eq!(
            err.to_string(),
            "filter of 65537 bytes is longer than 65536 at position 65536"
        );
        assert_eq!(parse_user_filter(&over), Err(err));
    }

    // ---- the Rocket.Chat wrap-in-parentheses rule ----

    #[test]
    fn user_filter_wrapping() {
        assert_eq!(parse_user_filter(""), Ok(None));
        assert_eq!(parse_user_filter("  \t\n "), Ok(None));
        assert_eq!(
            parse_user_filter("objectClass=person"),
            Ok(Some(eq("objectClass", "person")))
        );
        assert_eq!(
            parse_user_filter("(objectClass=person)"),
            Ok(Some(eq("objectClass", "person")))
        );
        assert_eq!(
            parse_user_filter("  (objectClass=person)\n"),
            Ok(Some(eq("objectClass", "person")))
        );
        assert_eq!(
            parse_user_filter(" objectClass=person "),
            Ok(Some(eq("objectClass", "person")))
        );
        assert_eq!(
            parse_user_filter("&(objectClass=person)(mail=*)"),
            Ok(Some(LdapFilter::And(vec![
                eq("objectClass", "person"),
                LdapFilter::Present("mail".into())
            ])))
        );
        assert_eq!(
            parse_user_filter("!(cn=x)"),
            Ok(Some(LdapFilter::Not(Box::new(eq("cn", "x")))))
        );
        assert_eq!(
            parse_user_filter("memberOf:1.2.840.113556.1.4.1941:=cn=a,dc=b"),
            Ok(Some(ext(
                Some("memberOf"),
                false,
                Some("1.2.840.113556.1.4.1941"),
                "cn=a,dc=b"
            )))
        );
        assert_eq!(
            parse_user_filter("cn=a b*"),
            Ok(Some(sub("cn", Some("a b"), &[], None)))
        );
        assert_eq!(parse_user_filter("&"), Ok(Some(LdapFilter::And(vec![]))));
    }

    #[test]
    fn user_filter_errors_point_into_the_untrimmed_text() {
        let err = |text: &str| parse_user_filter(text).expect_err(text);
        assert_eq!(
            err("  cn=a)"),
            FilterError::TrailingCharacters { position: 6 }
        );
        assert_eq!(
            err("  (cn=a))  "),
            FilterError::TrailingCharacters { position: 8 }
        );
        assert_eq!(
            err("  (cn=a)(b=c)"),
            FilterError::TrailingCharacters { position: 8 }
        );
        assert_eq!(
            err(" (cn=a "),
            FilterError::UnexpectedEnd {
                expected: "')'",
                position: 6
            }
        );
        assert_eq!(
            err(r" cn=\zz"),
            FilterError::InvalidEscape {
                escape: r"\zz".into(),
                position: 4
            }
        );
        assert_eq!(
            err(r"cn=\4 "),
            FilterError::UnexpectedEnd {
                expected: HEX_DIGITS,
                position: 5
            }
        );
        assert_eq!(
            err(" cn"),
            FilterError::UnexpectedEnd {
                expected: OPERATORS,
                position: 3
            }
        );
        assert_eq!(
            err("&(a=b) (c=d)"),
            FilterError::TrailingCharacters { position: 6 }
        );
        assert_eq!(
            err("=x"),
            FilterError::Expected {
                expected: "attribute description",
                position: 0
            }
        );
    }

    // ---- escaping and rendering ----

    #[test]
    fn escape_value_escapes_exactly_the_rfc_set() {
        assert_eq!(escape_value(r"a*b(c)d\e"), r"a\2ab\28c\29d\5ce");
        assert_eq!(escape_value("nul\0"), r"nul\00");
        assert_eq!(escape_value("Lučić, Ana = x"), "Lučić, Ana = x");
        assert_eq!(escape_value(""), "");
        for value in [
            "*",
            "(",
            ")",
            "\\",
            "\0",
            "plain",
            "Smith, John (ext)",
            "日本語*",
        ] {
            assert_eq!(
                parse(&format!("(cn={})", escape_value(value))),
                Ok(eq("cn", value)),
                "{value:?}"
            );
        }
    }

    #[test]
    fn escape_bytes_escapes_everything() {
        assert_eq!(escape_bytes(&[0x01, 0xab, 0x00, b'A']), r"\01\ab\00\41");
        assert_eq!(escape_bytes(&[]), "");
        let text = format!("(cn={})", escape_bytes("Lučić".as_bytes()));
        assert_eq!(text, r"(cn=\4c\75\c4\8d\69\c4\87)");
        assert_eq!(parse(&text), Ok(eq("cn", "Lučić")));
        let guid = [0x01, 0x02, 0xff, 0xfe];
        assert!(matches!(
            parse(&format!("(objectGUID={})", escape_bytes(&guid))),
            Err(FilterError::NotUtf8 {
                byte: 0xff,
                position: 18
            })
        ));
    }

    #[test]
    fn to_string_renders_rfc4515() {
        assert_eq!(
            to_string(&eq("cn", "a*b(c)\\\0")),
            r"(cn=a\2ab\28c\29\5c\00)"
        );
        assert_eq!(
            to_string(&sub("cn", Some("a*"), &["(", ")"], Some("\\"))),
            r"(cn=a\2a*\28*\29*\5c)"
        );
        assert_eq!(to_string(&LdapFilter::Present("mail".into())), "(mail=*)");
        assert_eq!(
            to_string(&ext(None, true, Some("2.4.6.8.10"), "Dino")),
            "(:dn:2.4.6.8.10:=Dino)"
        );
        assert_eq!(
            to_string(&LdapFilter::Not(Box::new(LdapFilter::Or(vec![])))),
            "(!(|))"
        );
        // Case is preserved on the way through.
        assert_eq!(
            to_string(&parse("(:DN:1.2:=x)").expect("ok")),
            "(:dn:1.2:=x)"
        );
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
        const CHARS: &[&str] = &[
            "a", " ", "*", "(", ")", "\\", "\0", "é", "日", "=", ":", "&", "\u{1}", "~",
        ];

        fn value(rng: &mut Rng, min: usize) -> String {
            let len = min + rng.below(5);
            (0..len).map(|_| rng.pick(CHARS)).collect()
        }
        fn filter(rng: &mut Rng, depth: usize) -> LdapFilter {
            let kind = if depth >= 5 {
                4 + rng.below(7)
            } else {
                rng.below(11)
            };
            let attr = rng.pick(ATTRS).to_owned();
            match kind {
                0 | 1 => {
                    let parts = (0..rng.below(4)).map(|_| filter(rng, depth + 1)).collect();
                    if kind == 0 {
                        LdapFilter::And(parts)
                    } else {
                        LdapFilter::Or(parts)
                    }
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
                    let final_ = (rng.below(2) == 0 || (initial.is_none() && any.is_empty()))
                        .then(|| value(rng, 1));
                    LdapFilter::Substring(
                        attr,
                        LdapSubstringFilter {
                            initial,
                            any,
                            final_,
                        },
                    )
                }
                _ => {
                    let with_type = rng.below(2) == 0;
                    let rule =
                        (!with_type || rng.below(2) == 0).then(|| rng.pick(RULES).to_owned());
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
                assert_eq!(
                    parse_user_filter(&format!("  {text} ")),
                    Ok(Some(f)),
                    "{text}"
                );
            }
        }
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
        assert_eq!(
            and(vec![present("a"), equality("b", "c")]),
            LdapFilter::And(vec![present("a"), eq("b", "c")])
        );
        assert_eq!(
            or(vec![present("a"), equality("b", "c")]),
            LdapFilter::Or(vec![present("a"), eq("b", "c")])
        );
        let combined = and(vec![
            parse_user_filter("objectClass=person")
                .expect("valid")
                .expect("non-empty"),
            or(vec![
                equality("uid", "jdoe"),
                equality("mail", "jdoe@example.com"),
            ]),
        ]);
        assert_eq!(
            to_string(&combined),
            "(&(objectClass=person)(|(uid=jdoe)(mail=jdoe@example.com)))"
        );
        assert_eq!(parse(&to_string(&combined)), Ok(combined));
    }

    #[test]
    fn errors_report_positions_for_every_variant() {
        let cases = [
            FilterError::Expected {
                expected: "')'",
                position: 14,
            },
            FilterError::UnexpectedEnd {
                expected: "')'",
                position: 9,
            },
            FilterError::InvalidEscape {
                escape: r"\zz".into(),
                position: 5,
            },
            FilterError::UnescapedChar {
                found: '(',
                position: 3,
            },
            FilterError::TrailingCharacters { position: 12 },
            FilterError::TooDeep { position: 64 },
            FilterError::TooLong {
                length: 70_000,
                position: MAX_FILTER_LEN,
            },
            FilterError::NotUtf8 {
                byte: 0xff,
                position: 7,
            },
        ];
        let positions: Vec<usize> = cases.iter().map(FilterError::position).collect();
        assert_eq!(positions, [14, 9, 5, 3, 12, 64, MAX_FILTER_LEN, 7]);
        assert_eq!(cases[0].to_string(), "expected ')' at position 14");
        for case in &cases {
            let message = case.to_string();
            assert!(!message.ends_with('.'), "{message}");
            assert!(
                message.starts_with(|c: char| !c.is_uppercase()),
                "{message}"
            );
            assert!(
                message.contains(&format!("at position {}", case.position())),
                "{message}"
            );
        }
    }
}
