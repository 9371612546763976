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
//!
//! [`parse`] (RFC 4515 text → filter) lives in `parse.rs`, [`to_string`] and the
//! escaping in `render.rs`; this file holds the limits, the error and the builders.

mod membership;
mod parse;
mod render;

use ldap3_proto::proto::LdapFilter;

pub use membership::{IN_CHAIN_RULE, MemberValue, MembershipQuery, group_name_attribute, membership_query, with_group_names};
#[cfg(test)]
pub use parse::parse;
pub use parse::parse_user_filter;
pub use render::{escape_value, to_string};

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
    UnexpectedEnd { expected: &'static str, position: usize },
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
    #[error("byte value \\{byte:02x} at position {position} cannot be represented: ldap3_proto filter values must be UTF-8")]
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
    if c == '\0' { "NUL".to_owned() } else { format!("'{c}'") }
}

/// `ldap_user_search_filter`, parsed once ([`parse_user_filter`]); a blank
/// setting is no filter.
#[derive(Debug, Clone, PartialEq)]
pub struct UserFilter(Option<LdapFilter>);

impl UserFilter {
    /// Parses the setting's text.
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        parse_user_filter(text).map(Self)
    }

    /// `(&<user filter><clause>)`, or the clause alone without a user filter.
    pub fn and(&self, clause: LdapFilter) -> LdapFilter {
        and(self.0.iter().cloned().chain([clause]).collect())
    }
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

/// `(attr>=value)`; `value` is the plain value, not escaped filter text.
pub fn greater_or_equal(attr: impl Into<String>, value: impl Into<String>) -> LdapFilter {
    LdapFilter::GreaterOrEqual(attr.into(), value.into())
}

/// `(attr:rule:=value)`; `value` is the plain value, not escaped filter text.
pub fn extensible(attr: impl Into<String>, rule: impl Into<String>, value: impl Into<String>) -> LdapFilter {
    LdapFilter::Extensible(ldap3_proto::proto::LdapMatchingRuleAssertion {
        matching_rule: Some(rule.into()),
        type_: Some(attr.into()),
        match_value: value.into(),
        dn_attributes: false,
    })
}

/// `(attr=value)`; `value` is the plain value, not escaped filter text.
pub fn equality(attr: impl Into<String>, value: impl Into<String>) -> LdapFilter {
    LdapFilter::Equality(attr.into(), value.into())
}
#[cfg(test)]
mod tests;
