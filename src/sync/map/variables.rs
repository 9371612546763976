//! LDAP DataSync variables (`ldap_datasync_usevariables`,
//! `ldap_datasync_variablemap`): derived attributes added to each entry
//! before it is mapped, so that the username, e-mail, name and custom-field
//! settings can name them like attributes. Upstream's
//! `processLdapVariables` and `operations/*.ts`
//! (apps/meteor/server/lib/ldap), operation for operation.
//!
//! The map is parsed once, with the settings, into [`Variables`]; what
//! upstream would throw on every entry (a missing pattern, a bad regex) is
//! a parse error here. [`apply`] then only computes. Pure: no I/O.

mod js_regex;

use serde_json::Value;

use crate::ldap::DirectoryEntry;
use crate::settings::Template;

use js_regex::{JsRegex, Matched, RegexError};

/// The parsed `ldap_datasync_variablemap`: derived attributes in upstream's
/// order (JavaScript's property order: integer-like names ascending, then
/// the others as written), each of which may read the ones before it.
#[derive(Debug, Clone)]
pub struct Variables {
    attributes: Vec<DerivedAttribute>,
}

/// Why `ldap_datasync_variablemap` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariableMapError {
    /// Not JSON, or JSON but not an object.
    #[error("the value is not a JSON object")]
    NotAnObject,
    /// One variable's definition is wrong; upstream would throw on every entry.
    #[error("variable {name:?}: {problem}")]
    Variable { name: String, problem: Problem },
}

/// What is wrong with one variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// `dn` and `_raw` are not attributes upstream's entries could take a
    /// variable for without breaking (the DN kept as the import id, the raw
    /// values the unique id comes from).
    #[error("this name is reserved")]
    ReservedName,
    /// `input` is not a string.
    #[error("\"input\" must be a string: attributes (the first with a value) or a #{{attr}} template")]
    InputNotText,
    /// `output` without a known `operation`; upstream would copy the input unchanged.
    #[error("unknown operation {0}: expected replace, match, substring, split or fallback")]
    UnknownOperation(String),
    /// A field missing, empty where upstream requires a value, or of the wrong type.
    #[error("{operation} needs \"{field}\" as {expected}")]
    Field { operation: &'static str, field: &'static str, expected: &'static str },
    /// `match` with neither `valueIfTrue` nor `indexToUse`.
    #[error("match needs \"valueIfTrue\" (a string) or \"indexToUse\" (a number)")]
    MatchResult,
    /// The regex or its flags cannot be used.
    #[error("{operation}: {error}")]
    Regex { operation: &'static str, error: RegexError },
}

/// One variable: the attribute it adds, what it reads, and the operation.
#[derive(Debug, Clone)]
struct DerivedAttribute {
    name: String,
    /// Upstream's `getLdapDynamicValue`: attributes or a `#{attr}` template.
    input: Template,
    operation: Operation,
}

/// `output.operation`, with its arguments checked and its regexes compiled.
#[derive(Debug, Clone)]
enum Operation {
    /// No `output`: the input as it is.
    Copy,
    /// `input.replace(pattern, replacement)` / `replaceAll`.
    Replace { pattern: ReplacePattern, replacement: String },
    /// `input.match(regex)`.
    Match { regex: JsRegex, index: Option<f64>, if_true: Option<String>, if_false: Option<String> },
    /// `input.substring(start, end)`, in UTF-16 code units.
    Substring { start: f64, end: Option<f64> },
    /// `input.split(pattern)[index]`, the first part by default.
    Split { pattern: String, index: Option<f64> },
    /// The input when it is non-empty and at least `min_length` long, else `fallback`'s value.
    Fallback { fallback: Option<Template>, min_length: Option<f64> },
}

#[derive(Debug, Clone)]
enum ReplacePattern {
    /// `regex` off: the text itself, first occurrence or (`all`) every one.
    Text { text: String, all: bool },
    /// `regex` on: every match when global (`all` adds the `g` flag).
    Regex(JsRegex),
}

/// A value as upstream's entry holds it: a string, or the list of a
/// multi-valued attribute (which an attribute-list input passes on as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolved {
    One(String),
    Many(Vec<String>),
}

impl Variables {
    /// Parses the map (upstream's `LDAPVariableMap`): `{"<name>": {"input":
    /// "<attributes or template>", "output": {"operation": ..., ...}}}`.
    /// A variable without a (truthy) `input` is skipped, as upstream does.
    pub fn parse(text: &str) -> Result<Self, VariableMapError> {
        let map: serde_json::Map<String, Value> = serde_json::from_str(text).map_err(|_| VariableMapError::NotAnObject)?;
        let mut attributes = Vec::new();
        for (name, definition) in in_property_order(map) {
            match DerivedAttribute::parse(&name, &definition) {
                Ok(Some(attribute)) => attributes.push(attribute),
                Ok(None) => {}
                Err(problem) => return Err(VariableMapError::Variable { name, problem }),
            }
        }
        Ok(Self { attributes })
    }

    /// Whether no variable is defined.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }

    /// Whether `name` is a variable's (attribute names ignore case).
    pub fn defines(&self, name: &str) -> bool {
        self.attributes.iter().any(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The directory attributes the variables read: their inputs and
    /// fallbacks, except names a variable before defines.
    pub fn directory_attributes(&self) -> Vec<&str> {
        let mut read = Vec::new();
        for (at, attribute) in self.attributes.iter().enumerate() {
            let fallback = match &attribute.operation {
                Operation::Fallback { fallback: Some(template), .. } => template.attributes(),
                _ => Vec::new(),
            };
            for name in attribute.input.attributes().into_iter().chain(fallback) {
                if !self.attributes[..at].iter().any(|earlier| earlier.name.eq_ignore_ascii_case(name)) {
                    read.push(name);
                }
            }
        }
        read
    }
}

/// Adds each variable to `entry`, in order, replacing an attribute of the
/// same name (upstream assigns `entry[name]`). An empty result is an empty
/// value, which the mapping treats as no value, as upstream does `''`.
pub fn apply(entry: &mut DirectoryEntry, variables: &Variables) {
    for attribute in &variables.attributes {
        let input = resolve(&attribute.input, entry);
        let output = attribute.operation.run(input, entry).unwrap_or(Resolved::One(String::new()));
        while entry.take(&attribute.name).is_some() {}
        let values = match output {
            Resolved::One(text) => vec![text.into_bytes()],
            Resolved::Many(values) => values.into_iter().map(String::into_bytes).collect(),
        };
        entry.push_attribute(&attribute.name, values);
    }
}

impl DerivedAttribute {
    /// `None` for a variable upstream skips (`!variableData?.input`).
    fn parse(name: &str, definition: &Value) -> Result<Option<Self>, Problem> {
        let input = match definition.get("input") {
            Some(v) if truthy(v) => v.as_str().ok_or(Problem::InputNotText)?,
            _ => return Ok(None),
        };
        if name.eq_ignore_ascii_case("dn") || name == "_raw" {
            return Err(Problem::ReservedName);
        }
        let operation = match definition.get("output") {
            None | Some(Value::Null) => Operation::Copy,
            Some(output) => Operation::parse(output)?,
        };
        Ok(Some(Self { name: name.to_owned(), input: Template::parse(input), operation }))
    }
}

impl Operation {
    fn parse(output: &Value) -> Result<Self, Problem> {
        let Some(kind) = output.get("operation").and_then(Value::as_str) else {
            let shown = output.get("operation").map_or_else(|| "(none)".to_owned(), Value::to_string);
            return Err(Problem::UnknownOperation(shown));
        };
        let fields = Fields { output, operation: "" };
        match kind {
            "replace" => Self::replace(Fields { operation: "replace", ..fields }),
            "match" => Self::matching(Fields { operation: "match", ..fields }),
            "substring" => {
                let f = Fields { operation: "substring", ..fields };
                let start = f.number("start")?.ok_or(f.problem("start", "a number"))?;
                Ok(Self::Substring { start, end: f.number("end")? })
            }
            "split" => {
                let f = Fields { operation: "split", ..fields };
                Ok(Self::Split { pattern: f.pattern()?, index: f.number("indexToUse")? })
            }
            "fallback" => {
                let f = Fields { operation: "fallback", ..fields };
                let fallback = f.text("fallback")?.filter(|t| !t.is_empty()).map(Template::parse);
                Ok(Self::Fallback { fallback, min_length: f.number("minLength")? })
            }
            other => Err(Problem::UnknownOperation(format!("{other:?}"))),
        }
    }

    /// upstream: `if (!operation.pattern || typeof operation.replacement !== 'string') throw`.
    fn replace(f: Fields<'_>) -> Result<Self, Problem> {
        let text = f.pattern()?;
        let replacement = f.text("replacement")?.ok_or(f.problem("replacement", "a string"))?.to_owned();
        let all = f.truthy("all");
        if !f.truthy("regex") {
            return Ok(Self::Replace { pattern: ReplacePattern::Text { text, all }, replacement });
        }
        let mut flags = f.text("flags")?.unwrap_or_default().to_owned();
        if all && !flags.contains('g') {
            flags.push('g');
        }
        let regex = JsRegex::new(&text, &flags).map_err(|error| Problem::Regex { operation: "replace", error })?;
        Ok(Self::Replace { pattern: ReplacePattern::Regex(regex), replacement })
    }

    /// upstream: `if (!operation.pattern || (typeof valueIfTrue !== 'string' && typeof indexToUse !== 'number')) throw`.
    /// Without `regex`, `input.match(pattern)` still makes a regex of the
    /// string (`new RegExp(pattern)`), only without flags.
    fn matching(f: Fields<'_>) -> Result<Self, Problem> {
        let pattern = f.pattern()?;
        let if_true = f.text("valueIfTrue")?.map(str::to_owned);
        let index = f.number("indexToUse")?;
        if if_true.is_none() && index.is_none() {
            return Err(Problem::MatchResult);
        }
        let flags = if f.truthy("regex") { f.text("flags")?.unwrap_or_default() } else { "" };
        let regex = JsRegex::new(&pattern, flags).map_err(|error| Problem::Regex { operation: "match", error })?;
        Ok(Self::Match { regex, index, if_true, if_false: f.text("valueIfFalse")?.map(str::to_owned) })
    }

    /// The operation's result (`None`: JavaScript's `undefined`). `entry`
    /// is what a fallback reads, with the variables before this one.
    fn run(&self, input: Resolved, entry: &DirectoryEntry) -> Option<Resolved> {
        // Upstream calls string methods on the input; on a multi-valued
        // attribute's list they throw (and the sync with them). The first
        // value is taken instead, as for the username.
        let first = |input: Resolved| match input {
            Resolved::One(text) => text,
            Resolved::Many(values) => values.into_iter().next().unwrap_or_default(),
        };
        match self {
            Self::Copy => Some(input),
            Self::Replace { pattern, replacement } => Some(Resolved::One(replace(&first(input), pattern, replacement))),
            Self::Match { regex, index, if_true, if_false } => {
                let Some(result) = regex.match_in(&first(input)) else { return if_false.clone().map(Resolved::One) };
                match index {
                    Some(i) if result.len() as f64 > *i => js_index(&result, *i).cloned().flatten().map(Resolved::One),
                    _ => if_true.clone().map(Resolved::One),
                }
            }
            Self::Substring { start, end } => Some(Resolved::One(substring(&first(input), *start, *end))),
            Self::Split { pattern, index } => {
                let text = first(input);
                if text.is_empty() {
                    return Some(Resolved::One(text));
                }
                let parts: Vec<&str> = text.split(pattern.as_str()).collect();
                let part = match index {
                    Some(i) if parts.len() as f64 > *i => js_index(&parts, *i).copied(),
                    Some(_) => None,
                    None => parts.first().copied(),
                };
                part.map(|p| Resolved::One(p.to_owned()))
            }
            Self::Fallback { fallback, min_length } => {
                let long_enough = |len: usize| min_length.is_none_or(|min| len as f64 >= min);
                let valid = match &input {
                    Resolved::One(text) => !text.is_empty() && long_enough(text.encode_utf16().count()),
                    // A list is truthy; its length is its number of values.
                    Resolved::Many(values) => long_enough(values.len()),
                };
                if valid {
                    return Some(input);
                }
                fallback.as_ref().map(|template| resolve(template, entry))
            }
        }
    }
}

/// An operation's fields, read as upstream checks them.
#[derive(Clone, Copy)]
struct Fields<'a> {
    output: &'a Value,
    operation: &'static str,
}

impl Fields<'_> {
    fn problem(&self, field: &'static str, expected: &'static str) -> Problem {
        Problem::Field { operation: self.operation, field, expected }
    }

    /// `pattern`, which upstream requires truthy (a non-empty string).
    fn pattern(&self) -> Result<String, Problem> {
        match self.text("pattern")? {
            Some(text) if !text.is_empty() => Ok(text.to_owned()),
            _ => Err(self.problem("pattern", "a non-empty string")),
        }
    }

    fn text(&self, field: &'static str) -> Result<Option<&str>, Problem> {
        match self.output.get(field) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(self.problem(field, "a string")),
        }
    }

    fn number(&self, field: &'static str) -> Result<Option<f64>, Problem> {
        match self.output.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(self.problem(field, "a number")),
            Some(_) => Err(self.problem(field, "a number")),
        }
    }

    fn truthy(&self, field: &str) -> bool {
        self.output.get(field).is_some_and(truthy)
    }
}

/// `getLdapDynamicValue(entry, setting) || ''`.
fn resolve(template: &Template, entry: &DirectoryEntry) -> Resolved {
    let mut values = template.values(|attr| entry.texts(attr));
    match values.len() {
        0 => Resolved::One(String::new()),
        1 => Resolved::One(values.remove(0)),
        _ => Resolved::Many(values),
    }
}

fn replace(input: &str, pattern: &ReplacePattern, replacement: &str) -> String {
    let (text, all) = match pattern {
        ReplacePattern::Regex(regex) => return regex.replace(input, replacement),
        ReplacePattern::Text { text, all } => (text.as_str(), *all),
    };
    let mut out = String::with_capacity(input.len());
    let mut copied = 0;
    for (start, found) in input.match_indices(text).take(if all { usize::MAX } else { 1 }) {
        out.push_str(&input[copied..start]);
        let end = start + found.len();
        js_regex::substitute(replacement, &Matched { haystack: input, start, end, captures: None }, &mut out);
        copied = end;
    }
    out.push_str(&input[copied..]);
    out
}

/// `String.prototype.substring`: in UTF-16 code units, fractions truncated,
/// each bound clamped to the string, and swapped when start > end.
fn substring(input: &str, start: f64, end: Option<f64>) -> String {
    let units: Vec<u16> = input.encode_utf16().collect();
    let clamp = |at: f64| at.trunc().clamp(0.0, units.len() as f64) as usize;
    let (a, b) = (clamp(start), end.map_or(units.len(), clamp));
    String::from_utf16_lossy(&units[a.min(b)..a.max(b)])
}

/// `array[number]`: only a whole, non-negative number is an index.
fn js_index<T>(items: &[T], index: f64) -> Option<&T> {
    if index.fract() != 0.0 || index < 0.0 {
        return None;
    }
    items.get(index as usize)
}

/// JavaScript's truthiness of a JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The map's entries in `for...in` order: names that are array indices
/// (`0` to 2³²−2, no leading zeros) ascending, then the others as written
/// (a repeated name keeps its first place and its last value, as
/// `JSON.parse` does; so does `serde_json`'s ordered map).
fn in_property_order(map: serde_json::Map<String, Value>) -> Vec<(String, Value)> {
    let index = |name: &str| {
        let canonical = name == "0" || (!name.starts_with('0') && !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()));
        name.parse::<u64>().ok().filter(|n| canonical && *n < u64::from(u32::MAX))
    };
    let (mut indices, names): (Vec<_>, Vec<_>) = map.into_iter().partition(|(name, _)| index(name).is_some());
    indices.sort_by_key(|(name, _)| index(name));
    indices.extend(names);
    indices
}

#[cfg(test)]
mod tests;
