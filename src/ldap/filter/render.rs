//! Filter → RFC 4515 text, and the escaping of values inside filter text.

use ldap3_proto::proto::LdapFilter;

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

fn push_escaped(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('\\');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0f)]));
}

/// Renders a filter as RFC 4515 text, escaping values with [`escape_value`].
///
/// For every filter [`parse`](super::parse) returns, `parse(&to_string(&f)) == Ok(f)`.
/// Attribute descriptions and matching rules are written as they are (they cannot
/// be escaped in RFC 4515). Recursion follows the filter's depth, which is at
/// most [`MAX_DEPTH`](super::MAX_DEPTH) for parsed filters and shallow for the builders'.
pub fn to_string(filter: &LdapFilter) -> String {
    let mut out = String::new();
    write_filter(&mut out, filter);
    out
}

fn write_filter(out: &mut String, filter: &LdapFilter) {
    out.push('(');
    match filter {
        LdapFilter::And(parts) | LdapFilter::Or(parts) => {
            out.push(if matches!(filter, LdapFilter::And(_)) { '&' } else { '|' });
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
#[cfg(test)]
mod tests;
