//! The `sort` and `query` parameters of `users.list`: JSON in the query
//! string, checked as upstream 7.x checks them
//! (`apps/meteor/app/api/server/helpers/parseJsonQuery.ts`,
//! `apps/meteor/app/api/server/lib/isValidQuery.ts`), then evaluated over
//! stored documents by a small matcher for the part of MongoDB's query
//! language that passes those checks. Pure: no store, no HTTP.
//!
//! The matcher knows equality (through dotted paths and arrays, as MongoDB
//! matches them), `$or`, `$and`, and the field operators `$regex` (with
//! `$options`), `$eq`, `$ne`, `$in`, `$nin` and `$exists`. There is no regex
//! engine in the component, so a `$regex` must be a literal text, optionally
//! anchored (`^ann`, `son$`, `^ann$`), with metacharacters escaped by `\`;
//! `$options` may only be `i`. Any other operator or pattern is refused with
//! `error-invalid-query` rather than evaluated wrongly.

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use crate::api::ApiError;

/// `parseJsonQuery` names itself in the details of its errors.
const HELPER_METHOD: &str = "parseJsonQuery";
/// The error type of every refused `query`.
const INVALID_QUERY: &str = "error-invalid-query";
/// Keys `removeDangerousProps` drops at every level before validation.
const DANGEROUS_KEYS: &[&str] = &["constructor", "__proto__", "prototype"];
/// Top-level `$` keys `clean()` keeps (`pathAllowConf.def`); others vanish silently.
const CLEAN_ALLOWED: &[&str] = &["$or", "$and", "$regex"];
/// `queryOperations` of `users.list`: the only top-level operations `isValidQuery` accepts.
const OPERATIONS: &[&str] = &["$or", "$and"];
/// `API.v1.defaultFieldsToExclude`: never queryable; dropped silently at top level.
const EXCLUDED_FOR_ALL: &[&str] = &["joinCode", "members", "importIds", "e2e"];
/// `API.v1.limitedUserFieldsToExclude`: also dropped without `view-full-other-user-info`.
const EXCLUDED_FOR_LIMITED: &[&str] = &[
    "avatarOrigin",
    "emails",
    "phone",
    "statusConnection",
    "createdAt",
    "lastLogin",
    "services",
    "requirePasswordChange",
    "requirePasswordChangeReason",
    "roles",
    "statusDefault",
    "_updatedAt",
    "settings",
    "inviteToken",
];
/// `API.v1.limitedUserFieldsToExcludeIfIsPrivilegedUser`: dropped even with it.
const EXCLUDED_FOR_PRIVILEGED: &[&str] = &["services", "inviteToken"];
/// The `<field>.*` rules of `users.list`: a field that is projected lets any
/// path starting with the prefix through (`startsWith`, as upstream checks,
/// so `nameInsensitive` passes under `name`).
const PREFIX_RULES: &[(&str, &str)] =
    &[("emails", "emails.address"), ("username", "username"), ("name", "name"), ("type", "type"), ("customFields", "customFields")];

/// The order of a listing: `sort` (default `{"username": 1}`) plus upstream's
/// additions; ties end in `_id` order so that pages are stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    keys: Vec<(String, Direction)>,
}

/// One sort key's direction (`1` / `-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ascending,
    Descending,
}

impl Sort {
    /// Parses `sort` as `parseJsonQuery` does: a JSON object whose values are
    /// all `1` or `-1`, else `error-invalid-sort`. An absent or empty
    /// parameter, or `{}` (on which MongoDB would fail), gives the default.
    /// As upstream, `status` also sorts `active`, and `name` adds `nameInsensitive`.
    pub fn parse(raw: Option<&str>) -> Result<Sort, ApiError> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Ok(Sort::default_order());
        };
        let invalid = || ApiError::Query {
            error: format!("Invalid sort parameter provided: \"{raw}\""),
            error_type: "error-invalid-sort",
            helper_method: Some(HELPER_METHOD),
        };
        let Ok(Value::Object(spec)) = serde_json::from_str::<Value>(raw) else {
            return Err(invalid());
        };
        let mut keys: Vec<(String, Direction)> = Vec::with_capacity(spec.len() + 2);
        for (key, value) in &spec {
            let direction = match value.as_f64() {
                Some(1.0) => Direction::Ascending,
                Some(-1.0) => Direction::Descending,
                _ => return Err(invalid()),
            };
            // MongoDB refuses empty and `$` field paths in `$sort`.
            if key.is_empty() || key.starts_with('$') || key.split('.').any(str::is_empty) {
                return Err(invalid());
            }
            keys.push((key.clone(), direction));
        }
        // `actualSort.active = sort.status`: an existing `active` key keeps its
        // place and takes the new direction, as a JavaScript assignment does.
        let mut set = |key: &str, direction: Direction| match keys.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = direction,
            None => keys.push((key.to_owned(), direction)),
        };
        if let Some(direction) = find_direction(&spec, "status") {
            set("active", direction);
        }
        if let Some(direction) = find_direction(&spec, "name") {
            set("nameInsensitive", direction);
        }
        if keys.is_empty() {
            return Ok(Sort::default_order());
        }
        Ok(Sort { keys })
    }

    /// `{"username": 1}`.
    /// Whether this is the default order (`{"username": 1}`), which the
    /// listing index keeps.
    pub fn is_default(&self) -> bool {
        *self == Sort::default_order()
    }

    fn default_order() -> Sort {
        Sort { keys: vec![("username".to_owned(), Direction::Ascending)] }
    }

    /// Sorts projected rows (each with its `nameInsensitive`).
    pub fn apply(&self, rows: &mut [Map<String, Value>]) {
        rows.sort_by(|a, b| self.compare(a, b));
    }

    fn compare(&self, a: &Map<String, Value>, b: &Map<String, Value>) -> Ordering {
        for (path, direction) in &self.keys {
            // `name` sorts case-insensitively (lower-cased name first, the
            // exact name only between equal ones). Upstream's `$sort` lists
            // `name` before the `nameInsensitive` it adds, so MongoDB
            // compares the exact name first; we sort as the route intends.
            let ordering = if path == "name" {
                compare_at(a, b, "nameInsensitive", *direction).then_with(|| compare_at(a, b, "name", *direction))
            } else {
                compare_at(a, b, path, *direction)
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        compare_at(a, b, "_id", Direction::Ascending)
    }
}

/// The direction given for `key`, if any.
fn find_direction(spec: &Map<String, Value>, key: &str) -> Option<Direction> {
    match spec.get(key).and_then(Value::as_f64) {
        Some(d) if d < 0.0 => Some(Direction::Descending),
        Some(_) => Some(Direction::Ascending),
        None => None,
    }
}

/// MongoDB's sort on one path: an array sorts by its smallest element
/// ascending and its largest descending; a missing field sorts as null.
fn compare_at(a: &Map<String, Value>, b: &Map<String, Value>, path: &str, direction: Direction) -> Ordering {
    static NULL: Value = Value::Null;
    let key = |doc| {
        let candidates = values_at(doc, path).into_iter().filter(|v| !v.is_array());
        let chosen = match direction {
            Direction::Ascending => candidates.min_by(|x, y| bson_order(x, y)),
            Direction::Descending => candidates.max_by(|x, y| bson_order(x, y)),
        };
        chosen.unwrap_or(&NULL)
    };
    let ordering = bson_order(key(a), key(b));
    match direction {
        Direction::Ascending => ordering,
        Direction::Descending => ordering.reverse(),
    }
}

/// BSON's comparison order across types: null < numbers < strings <
/// objects < arrays < booleans < dates; within a type, by value.
fn bson_order(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Object(_) if ejson_date(v).is_some() => 9,
            Value::Object(_) => 4,
            Value::Array(_) => 5,
            Value::Bool(_) => 8,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().unwrap_or_default().partial_cmp(&y.as_f64().unwrap_or_default()).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            x.iter().zip(y).map(|(p, q)| bson_order(p, q)).find(|o| o.is_ne()).unwrap_or_else(|| x.len().cmp(&y.len()))
        }
        _ => match (ejson_date(a), ejson_date(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => rank(a).cmp(&rank(b)).then_with(|| a.to_string().cmp(&b.to_string())),
        },
    }
}

/// The milliseconds of an EJSON date (`{"$date": ms}`), as stored.
fn ejson_date(value: &Value) -> Option<i64> {
    match value {
        Value::Object(map) if map.len() == 1 => map.get("$date").and_then(Value::as_i64),
        _ => None,
    }
}

/// A compiled `query`: every clause must hold (MongoDB's implicit `$and`).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq)]
enum Clause {
    /// `$or`.
    Any(Vec<Filter>),
    /// `$and`.
    All(Vec<Filter>),
    /// A condition on the values at a dotted path.
    Field { path: String, test: Test },
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    /// `{"path": value}`.
    Equals(Value),
    /// `{"path": {"$op": …, …}}`: all must hold.
    Operators(Vec<Operator>),
}

#[derive(Debug, Clone, PartialEq)]
enum Operator {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
    Regex(Pattern),
}

/// The supported subset of regular expressions: a literal, maybe anchored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The text to find, lower-cased when `ignore_case`.
    literal: String,
    /// `^…`: at the start.
    at_start: bool,
    /// `…$`: at the end.
    at_end: bool,
    /// `$options: "i"`.
    ignore_case: bool,
}

impl Filter {
    /// Builds the query `users.list` runs, as 7.x does: parse (`ejson.parse`,
    /// `clean`), drop the fields the caller may not query (silently, top
    /// level only), merge over `getNonEmptyQuery`'s default, validate with
    /// `isValidQuery` against the projected fields `inclusive`, then compile.
    pub fn parse(raw: Option<&str>, can_see_all: bool, inclusive: &[&str]) -> Result<Filter, ApiError> {
        let mut query = match raw.filter(|r| !r.is_empty()) {
            None => Map::new(),
            Some(raw) => match serde_json::from_str::<Value>(raw) {
                Ok(value) => cleaned(value),
                Err(_) => {
                    return Err(ApiError::Query {
                        error: format!("Invalid query parameter provided: \"{raw}\""),
                        error_type: INVALID_QUERY,
                        helper_method: Some(HELPER_METHOD),
                    });
                }
            },
        };
        let excluded = if can_see_all { EXCLUDED_FOR_PRIVILEGED } else { EXCLUDED_FOR_LIMITED };
        query.retain(|key, _| {
            let first = key.split('.').next().unwrap_or_default();
            ![key.as_str(), first].iter().any(|k| EXCLUDED_FOR_ALL.contains(k) || excluded.contains(k))
        });
        let query = with_default(query, can_see_all);
        verify(&query, "", inclusive).map_err(invalid_query)?;
        compile(&query)
    }

    /// Whether a stored document matches.
    pub fn matches(&self, doc: &Map<String, Value>) -> bool {
        self.clauses.iter().all(|clause| clause.matches(doc))
    }
}

impl Clause {
    fn matches(&self, doc: &Map<String, Value>) -> bool {
        match self {
            Clause::Any(filters) => filters.iter().any(|f| f.matches(doc)),
            Clause::All(filters) => filters.iter().all(|f| f.matches(doc)),
            Clause::Field { path, test } => test.matches(&values_at(doc, path)),
        }
    }
}

impl Test {
    fn matches(&self, candidates: &[&Value]) -> bool {
        match self {
            Test::Equals(value) => equals(candidates, value),
            Test::Operators(operators) => operators.iter().all(|op| op.matches(candidates)),
        }
    }
}

impl Operator {
    fn matches(&self, candidates: &[&Value]) -> bool {
        match self {
            Operator::Eq(value) => equals(candidates, value),
            Operator::Ne(value) => !equals(candidates, value),
            Operator::In(values) => values.iter().any(|v| equals(candidates, v)),
            Operator::Nin(values) => !values.iter().any(|v| equals(candidates, v)),
            Operator::Exists(wanted) => candidates.is_empty() != *wanted,
            Operator::Regex(pattern) => candidates.iter().any(|c| c.as_str().is_some_and(|s| pattern.matches(s))),
        }
    }
}

impl Pattern {
    /// Parses the supported subset of `$regex` with its `$options`.
    pub fn parse(path: &str, pattern: &str, options: &str) -> Result<Pattern, ApiError> {
        let ignore_case = match options {
            "" => false,
            "i" => true,
            _ => return Err(invalid_query(format!("Unsupported $options for {path}: {options}"))),
        };
        let unsupported = || invalid_query(format!("Unsupported regular expression for {path}: {pattern}"));
        let mut chars = pattern.chars().peekable();
        let at_start = chars.next_if_eq(&'^').is_some();
        let mut literal = String::with_capacity(pattern.len());
        let mut at_end = false;
        while let Some(c) = chars.next() {
            match c {
                // `\.` and friends are the literal character; `\d`, `\w`, … are classes.
                '\\' => match chars.next() {
                    Some(escaped) if escaped.is_ascii_punctuation() => literal.push(escaped),
                    _ => return Err(unsupported()),
                },
                '$' if chars.peek().is_none() => at_end = true,
                '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' => return Err(unsupported()),
                c => literal.push(c),
            }
        }
        if ignore_case {
            literal = literal.to_lowercase();
        }
        Ok(Pattern { literal, at_start, at_end, ignore_case })
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let lowered;
        let text = if self.ignore_case {
            lowered = text.to_lowercase();
            lowered.as_str()
        } else {
            text
        };
        let needle = self.literal.as_str();
        match (self.at_start, self.at_end) {
            (true, true) => text == needle,
            (true, false) => text.starts_with(needle),
            (false, true) => text.ends_with(needle),
            (false, false) => text.contains(needle),
        }
    }
}

fn invalid_query(error: String) -> ApiError {
    ApiError::Query { error, error_type: INVALID_QUERY, helper_method: None }
}

/// What `clean()` leaves of the parsed value: its own enumerable properties
/// (an object's keys, an array's indices, a string's characters; nothing of
/// a number, boolean or null), minus the dangerous keys and the top-level
/// `$` keys outside [`CLEAN_ALLOWED`]. Its nested clean is a no-op upstream
/// (the result is discarded), so deeper levels are left as they are.
fn cleaned(value: Value) -> Map<String, Value> {
    let mut map = own_properties(&value);
    map.retain(|key, _| !DANGEROUS_KEYS.contains(&key.as_str()) && (!key.starts_with('$') || CLEAN_ALLOWED.contains(&key.as_str())));
    map
}

/// JavaScript's `for…in` over a parsed JSON value.
fn own_properties(value: &Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map.clone(),
        Value::Array(items) => items.iter().enumerate().map(|(i, v)| (i.to_string(), v.clone())).collect(),
        Value::String(text) => text.chars().enumerate().map(|(i, c)| (i.to_string(), Value::String(c.to_string()))).collect(),
        Value::Number(_) | Value::Bool(_) | Value::Null => Map::new(),
    }
}

/// `getNonEmptyQuery`: without a query, users with a username or a name (or
/// an e-mail address, for callers who may see them); a query's keys replace
/// the default's (so a `$or` of the caller replaces the default `$or`).
fn with_default(query: Map<String, Value>, can_see_all: bool) -> Map<String, Value> {
    let any = || json!({"$regex": "", "$options": "i"});
    let mut alternatives = vec![json!({"username": any()}), json!({"name": any()})];
    if can_see_all {
        alternatives.push(json!({"emails.address": any()}));
    }
    let mut merged = Map::new();
    merged.insert("$or".to_owned(), Value::Array(alternatives));
    merged.extend(query);
    merged
}

/// 7.x `verifyQuery`: top-level `$` keys must be allowed operations holding
/// arrays (each item checked as a query); every other key path must be a
/// projected field or fall under a `<field>.*` rule; objects and arrays are
/// checked down to their leaves with dotted paths. The first failure wins.
fn verify(query: &Map<String, Value>, parent: &str, inclusive: &[&str]) -> Result<(), String> {
    for (key, value) in query.iter().filter(|(k, _)| !DANGEROUS_KEYS.contains(&k.as_str())) {
        let path = if parent.is_empty() { key.clone() } else { format!("{parent}.{key}") };
        if parent.is_empty() && path.starts_with('$') {
            if !OPERATIONS.contains(&path.as_str()) {
                return Err(format!("Invalid operation: {path}"));
            }
            let Value::Array(items) = value else {
                return Err(format!("Invalid parameter for operation: {path} : {}", js_string(value)));
            };
            for item in items {
                verify(&own_properties(item), "", inclusive)?;
            }
            continue;
        }
        if !attribute_allowed(&path, inclusive) {
            return Err(format!("Invalid attribute: {path}"));
        }
        // An EJSON date is a `Date` upstream: an object without own keys.
        if matches!(value, Value::Object(_) | Value::Array(_)) && ejson_date(value).is_none() {
            verify(&own_properties(value), &path, inclusive)?;
        }
    }
    Ok(())
}

fn attribute_allowed(path: &str, inclusive: &[&str]) -> bool {
    inclusive.contains(&path) || PREFIX_RULES.iter().any(|(field, prefix)| inclusive.contains(field) && path.starts_with(prefix))
}

/// `String(value)` of a non-array JSON value, for upstream's message.
fn js_string(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Object(_) => "[object Object]".to_owned(),
        other => other.to_string(),
    }
}

/// Turns a validated query into a [`Filter`]. MongoDB's own refusals keep
/// its wording (a plain 400, as upstream's wrapper answers them); what the
/// matcher does not support is `error-invalid-query`.
fn compile(query: &Map<String, Value>) -> Result<Filter, ApiError> {
    let mut clauses = Vec::with_capacity(query.len());
    for (key, value) in query.iter().filter(|(k, _)| !DANGEROUS_KEYS.contains(&k.as_str())) {
        let clause = match key.as_str() {
            "$or" => Clause::Any(compile_list(value)?),
            "$and" => Clause::All(compile_list(value)?),
            _ if key.starts_with('$') => return Err(invalid_query(format!("Unsupported query operator: {key}"))),
            _ => Clause::Field { path: key.clone(), test: compile_test(key, value)? },
        };
        clauses.push(clause);
    }
    Ok(Filter { clauses })
}

fn compile_list(value: &Value) -> Result<Vec<Filter>, ApiError> {
    let items = value.as_array().filter(|items| !items.is_empty());
    let Some(items) = items else {
        return Err(ApiError::BadRequest("$and/$or/$nor must be a nonempty array".to_owned()));
    };
    items
        .iter()
        .map(|item| match item {
            Value::Object(map) => compile(map),
            _ => Err(ApiError::BadRequest("$or/$and/$nor entries need to be full objects".to_owned())),
        })
        .collect()
}

fn compile_test(path: &str, value: &Value) -> Result<Test, ApiError> {
    let operators = match value {
        Value::Object(map) if ejson_date(value).is_none() && map.keys().any(|k| k.starts_with('$')) => map,
        _ => return Ok(Test::Equals(value.clone())),
    };
    let mut compiled = Vec::with_capacity(operators.len());
    for (name, argument) in operators {
        let operator = match name.as_str() {
            "$regex" => {
                let Some(pattern) = argument.as_str() else {
                    return Err(ApiError::BadRequest("$regex has to be a string".to_owned()));
                };
                let options = match operators.get("$options") {
                    None => "",
                    Some(Value::String(options)) => options.as_str(),
                    Some(_) => return Err(ApiError::BadRequest("$options has to be a string".to_owned())),
                };
                Operator::Regex(Pattern::parse(path, pattern, options)?)
            }
            "$options" if operators.contains_key("$regex") => continue,
            "$options" => return Err(ApiError::BadRequest("$options needs a $regex".to_owned())),
            "$eq" => Operator::Eq(argument.clone()),
            "$ne" => Operator::Ne(argument.clone()),
            "$in" | "$nin" => {
                let Some(values) = argument.as_array() else {
                    return Err(ApiError::BadRequest(format!("{name} needs an array")));
                };
                if name == "$in" { Operator::In(values.clone()) } else { Operator::Nin(values.clone()) }
            }
            "$exists" => Operator::Exists(truthy(argument)),
            _ if name.starts_with('$') => return Err(invalid_query(format!("Unsupported query operator: {path}.{name}"))),
            _ => return Err(ApiError::BadRequest(format!("unknown operator: {name}"))),
        };
        compiled.push(operator);
    }
    Ok(Test::Operators(compiled))
}

/// MongoDB's reading of `$exists`' argument.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        _ => true,
    }
}

/// Equality as MongoDB matches it: a value at the path, or an element of an
/// array there, equals `wanted`; `null` also matches a missing field.
fn equals(candidates: &[&Value], wanted: &Value) -> bool {
    if wanted.is_null() && candidates.is_empty() {
        return true;
    }
    candidates.iter().any(|candidate| same_value(candidate, wanted))
}

/// JSON equality with numbers compared as numbers (`1` equals `1.0`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The values a dotted path reaches, as MongoDB resolves it: through
/// objects, into every object of an array (or an element by index), and at
/// the end both an array and each of its elements.
pub fn values_at<'a>(doc: &'a Map<String, Value>, path: &str) -> Vec<&'a Value> {
    let segments: Vec<&str> = path.split('.').collect();
    let mut out = Vec::new();
    if let Some((first, rest)) = segments.split_first()
        && let Some(value) = doc.get(*first)
    {
        collect(value, rest, &mut out);
    }
    out
}

fn collect<'a>(value: &'a Value, rest: &[&str], out: &mut Vec<&'a Value>) {
    let Some((segment, tail)) = rest.split_first() else {
        out.push(value);
        if let Value::Array(items) = value {
            out.extend(items);
        }
        return;
    };
    match value {
        Value::Object(map) => {
            if let Some(next) = map.get(*segment) {
                collect(next, tail, out);
            }
        }
        Value::Array(items) => {
            if let Some(item) = segment.parse::<usize>().ok().and_then(|i| items.get(i)) {
                collect(item, tail, out);
            }
            for item in items.iter().filter(|item| item.is_object()) {
                collect(item, rest, out);
            }
        }
        _ => {}
    }
}
