//! RFC 4515 filter text → [`LdapFilter`]: a recursive-descent parser over
//! bytes, bounded by [`MAX_DEPTH`] and [`MAX_FILTER_LEN`].

use ldap3_proto::proto::{LdapFilter, LdapMatchingRuleAssertion, LdapSubstringFilter};

use super::{FilterError, MAX_DEPTH, MAX_FILTER_LEN};

/// Parses one RFC 4515 filter, e.g. `(&(objectClass=person)(uid=jdoe))`.
///
/// Strict: the text must be exactly one parenthesised filter with no whitespace
/// around or between components (RFC 4515 §3 has none); spaces inside values are
/// part of the value. `\xx` escapes are decoded. The grammar's own entry
/// point; settings go through [`parse_user_filter`].
#[cfg(test)]
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
        return Err(FilterError::TooLong { length: text.len(), position: MAX_FILTER_LEN });
    }
    Ok(())
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
        if self.bytes.is_empty() { Ok(None) } else { self.into_string().map(Some) }
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
        Self { text, bytes: text.as_bytes(), pos: start, end }
    }

    fn byte_at(&self, at: usize) -> Option<u8> {
        if at < self.end { self.bytes.get(at).copied() } else { None }
    }

    fn peek(&self) -> Option<u8> {
        self.byte_at(self.pos)
    }

    fn fail(&self, expected: &'static str) -> FilterError {
        match self.peek() {
            None => FilterError::UnexpectedEnd { expected, position: self.pos },
            Some(_) => FilterError::Expected { expected, position: self.pos },
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
        let final_ = pieces.pop().map(Piece::into_non_empty).transpose()?.flatten();
        let mut rest = pieces.into_iter();
        let initial = rest.next().map(Piece::into_non_empty).transpose()?.flatten();
        let mut any = Vec::new();
        for piece in rest {
            if let Some(value) = piece.into_non_empty()? {
                any.push(value);
            }
        }
        if initial.is_none() && any.is_empty() && final_.is_none() {
            return Ok(LdapFilter::Present(attr));
        }
        Ok(LdapFilter::Substring(attr, LdapSubstringFilter { initial, any, final_ }))
    }

    /// An `assertionvalue` where `*` must be escaped (`~=`, `>=`, `<=`, `:=`).
    fn plain_value(&mut self) -> Result<String, FilterError> {
        let mut pieces = self.value(false)?;
        // value(false) never splits, so there is exactly one piece.
        Ok(pieces.pop().map(Piece::into_string).transpose()?.unwrap_or_default())
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
                    return Err(FilterError::UnescapedChar { found: char::from(found), position: at });
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
            return Err(FilterError::UnexpectedEnd { expected: HEX_DIGITS, position: at });
        };
        match byte {
            b'0'..=b'9' => Ok(byte - b'0'),
            b'a'..=b'f' => Ok(byte - b'a' + 10),
            b'A'..=b'F' => Ok(byte - b'A' + 10),
            _ => Err(FilterError::InvalidEscape {
                escape: self.text.get(escape_start..self.end).map(|rest| rest.chars().take(3).collect()).unwrap_or_default(),
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
        Ok(LdapFilter::Extensible(LdapMatchingRuleAssertion { matching_rule, type_, match_value, dn_attributes }))
    }

    /// Whether `:dn` here is `dnattrs`. Without an attribute the grammar needs a
    /// matching rule after it, so `(:dn:=x)` is the matching rule named `dn`.
    fn at_dn_attrs(&self, has_type: bool) -> bool {
        let colon_dn_colon = self.byte_at(self.pos) == Some(b':')
            && self.byte_at(self.pos + 1).is_some_and(|b| b.eq_ignore_ascii_case(&b'd'))
            && self.byte_at(self.pos + 2).is_some_and(|b| b.eq_ignore_ascii_case(&b'n'))
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
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-') {
            self.pos += 1;
        }
    }

    /// `text[start..pos]`; both are on ASCII boundaries when this is called.
    fn slice(&self, start: usize) -> String {
        self.text.get(start..self.pos).unwrap_or_default().to_owned()
    }
}

#[cfg(test)]
mod tests;
