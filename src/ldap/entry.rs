//! [`DirectoryEntry`]: what the sync sees of a search result entry. No
//! ldap3_proto type crosses this boundary.

/// One entry: its DN and the attributes the search asked for, values raw.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryEntry {
    pub dn: String,
    attributes: Vec<(String, Vec<Vec<u8>>)>,
}

impl DirectoryEntry {
    /// Builds an entry (also used by tests).
    pub fn new(dn: impl Into<String>, attributes: Vec<(String, Vec<Vec<u8>>)>) -> Self {
        Self { dn: dn.into(), attributes }
    }

    /// The values of attribute `name`. Attribute descriptions are
    /// case-insensitive (RFC 4512 §2.5), so `mail` finds `Mail`.
    /// The pseudo-attribute `dn` yields the DN.
    pub fn values(&self, name: &str) -> Option<Vec<&[u8]>> {
        if name.eq_ignore_ascii_case("dn") {
            return Some(vec![self.dn.as_bytes()]);
        }
        self.attributes
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, vals)| vals.iter().map(Vec::as_slice).collect())
    }

    /// The values of `name` that are non-empty, decoded as UTF-8 (lossily).
    pub fn texts(&self, name: &str) -> Vec<String> {
        self.values(name)
            .unwrap_or_default()
            .into_iter()
            .filter(|v| !v.is_empty())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }
}
