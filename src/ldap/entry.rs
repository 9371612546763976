//! [`DirectoryEntry`]: what the sync sees of a search result entry. No
//! ldap3_proto type crosses this boundary.

use std::fmt;

/// A distinguished name, as the server sent it (RFC 4514 text).
///
/// Compared exactly, as text: Rocket.Chat keeps DNs in `importIds` and
/// matches them exactly, and a modrdn that only changes case is still a new
/// DN there. Whether two spellings name the same entry is the server's
/// business (matching rules per attribute), so no rule here pretends to know.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Dn(String);

impl Dn {
    /// A DN from its text.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The DN as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One entry: its DN and the attributes the search asked for, values raw.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryEntry {
    pub dn: Dn,
    attributes: Vec<(String, Vec<Vec<u8>>)>,
}

impl DirectoryEntry {
    /// Builds an entry (also used by tests).
    pub fn new(dn: impl Into<String>, attributes: Vec<(String, Vec<Vec<u8>>)>) -> Self {
        Self { dn: Dn::new(dn), attributes }
    }

    /// The values of attribute `name`. Attribute descriptions are
    /// case-insensitive (RFC 4512 §2.5), so `mail` finds `Mail`.
    /// The pseudo-attribute `dn` yields the DN.
    pub fn values(&self, name: &str) -> Option<Vec<&[u8]>> {
        if name.eq_ignore_ascii_case("dn") {
            return Some(vec![self.dn.as_str().as_bytes()]);
        }
        self.attributes.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, vals)| vals.iter().map(Vec::as_slice).collect())
    }

    /// Keeps only the attributes whose description `keep` accepts.
    pub fn retain_attributes(&mut self, keep: impl Fn(&str) -> bool) {
        self.attributes.retain(|(name, _)| keep(name));
    }

    /// Adds an attribute at the end.
    pub fn push_attribute(&mut self, name: &str, values: Vec<Vec<u8>>) {
        self.attributes.push((name.to_owned(), values));
    }

    /// Removes attribute `name` (case-insensitive) and returns its values.
    pub fn take(&mut self, name: &str) -> Option<Vec<Vec<u8>>> {
        let at = self.attributes.iter().position(|(n, _)| n.eq_ignore_ascii_case(name))?;
        Some(self.attributes.remove(at).1)
    }

    /// Every attribute as received: description and raw values.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &[Vec<u8>])> {
        self.attributes.iter().map(|(name, values)| (name.as_str(), values.as_slice()))
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

impl PartialEq<&str> for Dn {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}
