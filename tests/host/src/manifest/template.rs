//! Spin templates (`"{{ name }}"` mixed with literal text) and Spin's rules
//! for variable names. Pure text handling: no manifest, no environment.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Context as _, bail};

/// A Spin template: literal text with `{{ variable }}` expressions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Expr(String),
}

impl Template {
    /// Parses a template the way Spin's `spin-expressions` does: `{{` opens
    /// an expression that runs to the next `}}` (trimmed); there is no escape.
    pub fn parse(template: &str) -> anyhow::Result<Self> {
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            if let Some(expr_rest) = rest.strip_prefix("{{") {
                let Some((expr, after)) = expr_rest.split_once("}}") else {
                    bail!("invalid template {template:?}: unmatched '{{{{'");
                };
                parts.push(Part::Expr(expr.trim().to_owned()));
                rest = after;
            } else if let Some(idx) = rest.find("{{") {
                let (lit, after) = rest.split_at(idx);
                parts.push(Part::Lit(lit.to_owned()));
                rest = after;
            } else {
                parts.push(Part::Lit(rest.to_owned()));
                rest = "";
            }
        }
        Ok(Self { parts })
    }

    /// The variable names the template refers to.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(e) => Some(e.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// Substitutes resolved application variables.
    pub fn resolve(&self, values: &BTreeMap<String, String>) -> anyhow::Result<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(l) => out.push_str(l),
                Part::Expr(name) => out.push_str(values.get(name).with_context(|| format!("unknown variable {name:?} in template"))?),
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Lit(l) => f.write_str(l)?,
                Part::Expr(e) => write!(f, "{{{{ {e} }}}}")?,
            }
        }
        Ok(())
    }
}

/// Checks a variable name the way Spin does (`spin-expressions` `Key::validate`):
/// lower-case ASCII letters, digits and single underscores, starting with a
/// letter and ending with a letter or digit. The error is Spin's reason text.
pub fn validate_variable_name(name: &str) -> Result<(), String> {
    let reason = if name.is_empty() {
        "must not be empty".to_owned()
    } else if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')) {
        format!(
            "invalid character {c:?}. Variable names may contain only lower-case letters, \
             numbers, and underscores."
        )
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        "must start with a lowercase ASCII letter".to_owned()
    } else if !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        "must end with a lowercase ASCII letter or digit".to_owned()
    } else if name.contains("__") {
        "must not contain multiple consecutive underscores".to_owned()
    } else {
        return Ok(());
    };
    Err(format!("{name:?}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let vars: BTreeMap<String, String> = [("a", "1"), ("bee", "two")].into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        for (tmpl, want) in [
            ("", ""),
            ("plain", "plain"),
            ("{{ a }}", "1"),
            ("{{a}}", "1"),
            ("x-{{ a }}-{{ bee }}-y", "x-1-two-y"),
            ("{{ a }}{{ bee }}", "1two"),
            ("tcp://{{ bee }}:{{ a }}", "tcp://two:1"),
            ("a } b }}", "a } b }}"),
        ] {
            let t = Template::parse(tmpl).expect(tmpl);
            assert_eq!(t.resolve(&vars).expect(tmpl), want, "{tmpl:?}");
        }
        assert!(Template::parse("{{ a }} {{ unmatched").is_err());
        assert!(Template::parse("{{ nope }}").expect("parses").resolve(&vars).is_err());
        assert_eq!(Template::parse("x{{a}}y").expect("parses").to_string(), "x{{ a }}y");
    }

    #[test]
    fn variable_names() {
        for good in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3", "ldap_ip"] {
            assert!(validate_variable_name(good).is_ok(), "{good}");
        }
        for bad in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y", "LDAP_IP"] {
            assert!(validate_variable_name(bad).is_err(), "{bad}");
        }
    }
}
