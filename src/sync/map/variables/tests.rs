//! Upstream's spec cases (apps/meteor/server/lib/ldap/operations/*.spec.ts
//! and *.test.ts, getLdapDynamicValue.spec.ts), through the whole path: a
//! map parsed as the settings parse it, applied to an entry. Where upstream
//! expects `undefined` the attribute is empty, as `processLdapVariables`
//! stores `output || ''`.

use serde_json::{Value, json};

use super::*;

fn entry(attrs: &[(&str, &[&str])]) -> DirectoryEntry {
    DirectoryEntry::new(
        "uid=x,dc=example,dc=org",
        attrs.iter().map(|(n, vs)| ((*n).to_owned(), vs.iter().map(|v| v.as_bytes().to_vec()).collect())).collect(),
    )
}

fn parse(map: Value) -> Variables {
    Variables::parse(&map.to_string()).unwrap_or_else(|e| unreachable!("{map}: {e}"))
}

/// The values `apply` gives attribute `name` (`None`: no such attribute).
fn derived(e: &DirectoryEntry, name: &str) -> Option<Vec<String>> {
    e.values(name).map(|vs| vs.into_iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect())
}

/// Runs `output` on an entry whose `in` holds `input` (`None`: no `in`).
fn run_on(output: Value, input: Option<&str>) -> String {
    let mut e = match input {
        Some(text) => entry(&[("in", &[text])]),
        None => entry(&[]),
    };
    apply(&mut e, &parse(json!({"out": {"input": "in", "output": output}})));
    let values = derived(&e, "out").unwrap_or_default();
    assert_eq!(values.len(), 1, "{values:?}");
    values.concat()
}

fn run(output: Value, input: &str) -> String {
    run_on(output, Some(input))
}

fn problem(output: Value) -> Problem {
    match Variables::parse(&json!({"v": {"input": "in", "output": output}}).to_string()) {
        Err(VariableMapError::Variable { name, problem }) if name == "v" => problem,
        other => unreachable!("{other:?}"),
    }
}

// replace.spec.ts

#[test]
fn replace_validation() {
    assert_eq!(
        problem(json!({"operation": "replace", "pattern": "", "replacement": "new-value"})),
        Problem::Field { operation: "replace", field: "pattern", expected: "a non-empty string" }
    );
    assert_eq!(
        problem(json!({"operation": "replace", "pattern": "old-value", "replacement": 123})),
        Problem::Field { operation: "replace", field: "replacement", expected: "a string" }
    );
    assert_eq!(
        problem(json!({"operation": "replace", "pattern": "old-value"})),
        Problem::Field { operation: "replace", field: "replacement", expected: "a string" }
    );
}

#[test]
fn replace_string() {
    let op = |extra: Value| {
        let mut o = json!({"operation": "replace", "pattern": "old", "replacement": "new"});
        if let (Some(map), Value::Object(extra)) = (o.as_object_mut(), extra) {
            map.extend(extra);
        }
        o
    };
    assert_eq!(run(op(json!({})), "old-value old-value"), "new-value old-value", "the first occurrence");
    assert_eq!(run(op(json!({"all": true})), "old-value old-value"), "new-value new-value", "all when `all`");
    assert_eq!(run(op(json!({"regex": true})), "old-value old-value"), "new-value old-value", "regex: the first");
    assert_eq!(run(op(json!({"regex": true, "all": true})), "old-value old-value"), "new-value new-value", "regex and all");
    assert_eq!(run(op(json!({"regex": true, "all": true, "flags": "g"})), "old-value old-value"), "new-value new-value", "no second g");
    assert_eq!(
        run(json!({"operation": "replace", "pattern": "OLD", "replacement": "new", "regex": true, "flags": "i"}), "OLD-value old-value"),
        "new-value old-value",
        "uses the provided flags"
    );
}

#[test]
fn replace_details_follow_javascript() {
    // Without `regex` the pattern is text and flags are never read; `$&` still works.
    assert_eq!(run(json!({"operation": "replace", "pattern": ".", "replacement": "[$&]", "flags": 5}), "a.b.c"), "a[.]b.c");
    // A `g` flag replaces every match even without `all`.
    assert_eq!(run(json!({"operation": "replace", "pattern": "o", "replacement": "0", "regex": true, "flags": "g"}), "foo"), "f00");
    // The e-mail's domain, the example upstream's PR gives.
    let domain = json!({"operation": "replace", "pattern": "@.*$", "replacement": "", "regex": true});
    assert_eq!(run(domain, "ann.lee@corp.example"), "ann.lee");
    let groups = json!({"operation": "replace", "pattern": "^(\\w+)\\.(\\w+)@.*$", "replacement": "$2_$1", "regex": "yes"});
    assert_eq!(run(groups, "ann.lee@corp.example"), "lee_ann", "regex is truthiness, as in JavaScript");
    assert_eq!(run_on(json!({"operation": "replace", "pattern": "x", "replacement": "y"}), None), "");
}

// match.spec.ts

#[test]
fn match_validation() {
    assert_eq!(
        problem(json!({"operation": "match", "pattern": "", "regex": true})),
        Problem::Field { operation: "match", field: "pattern", expected: "a non-empty string" }
    );
    assert_eq!(problem(json!({"operation": "match", "pattern": "pattern"})), Problem::MatchResult);
}

#[test]
fn match_with_and_without_regex() {
    let values = json!({"operation": "match", "pattern": "hello", "valueIfTrue": "matched", "valueIfFalse": "not matched"});
    assert_eq!(run(values.clone(), "hello"), "matched");
    assert_eq!(run(values, "world"), "not matched");
    let anchored =
        json!({"operation": "match", "pattern": "^hello$", "regex": true, "valueIfTrue": "matched", "valueIfFalse": "not matched"});
    assert_eq!(run(anchored.clone(), "hello"), "matched");
    assert_eq!(run(anchored, "world"), "not matched");
    let flags =
        json!({"operation": "match", "pattern": "^HELLO$", "regex": true, "flags": "i", "valueIfTrue": "matched", "valueIfFalse": "no"});
    assert_eq!(run(flags, "hello"), "matched");
    // Without `regex`, String.prototype.match still makes a regex of the text (flags unread).
    let dot = json!({"operation": "match", "pattern": "h.llo", "flags": "i", "valueIfTrue": "yes", "valueIfFalse": "no"});
    assert_eq!((run(dot.clone(), "hallo"), run(dot, "HALLO")), ("yes".to_owned(), "no".to_owned()));
    assert_eq!(run(json!({"operation": "match", "pattern": "x", "valueIfTrue": "yes"}), "a"), "", "no valueIfFalse: undefined");
}

#[test]
fn match_index_to_use() {
    assert_eq!(run(json!({"operation": "match", "pattern": "(hello) (world)", "regex": true, "indexToUse": 1}), "hello world"), "hello");
    assert_eq!(run(json!({"operation": "match", "pattern": "(hello)", "regex": true, "indexToUse": 2}), "hello"), "", "out of range");
    // Out of range falls back to valueIfTrue; a group that took no part is undefined.
    let fallback = json!({"operation": "match", "pattern": "(a)", "regex": true, "indexToUse": 5, "valueIfTrue": "t"});
    assert_eq!(run(fallback, "a"), "t");
    assert_eq!(run(json!({"operation": "match", "pattern": "(a)|(b)", "regex": true, "indexToUse": 1, "valueIfTrue": "t"}), "b"), "");
    // With g, the index picks among the matches; a fraction or a negative index is undefined.
    assert_eq!(run(json!({"operation": "match", "pattern": "\\d+", "regex": true, "flags": "g", "indexToUse": 1}), "a1b22c333"), "22");
    assert_eq!(run(json!({"operation": "match", "pattern": "(a)", "regex": true, "indexToUse": 0.5, "valueIfTrue": "t"}), "a"), "");
    assert_eq!(run(json!({"operation": "match", "pattern": "(a)", "regex": true, "indexToUse": -1, "valueIfTrue": "t"}), "a"), "");
}

// substring.spec.ts and substring.test.ts

#[test]
fn substring_validation() {
    let start = Problem::Field { operation: "substring", field: "start", expected: "a number" };
    assert_eq!(problem(json!({"operation": "substring"})), start);
    assert_eq!(
        problem(json!({"operation": "substring", "start": 0, "end": null})),
        Problem::Field { operation: "substring", field: "end", expected: "a number" }
    );
}

#[test]
fn substring_follows_javascript() {
    let sub = |start: f64, end: Option<f64>| {
        let mut op = json!({"operation": "substring", "start": start});
        if let (Some(end), Some(map)) = (end, op.as_object_mut()) {
            map.insert("end".into(), json!(end));
        }
        run(op, "hello world")
    };
    assert_eq!(sub(6.0, None), "world");
    assert_eq!(sub(0.0, None), "hello world");
    assert_eq!(sub(6.0, Some(8.0)), "wo");
    assert_eq!(sub(5.0, Some(0.0)), "hello", "backwards when end < start");
    assert_eq!((sub(0.0, Some(0.0)), sub(5.0, Some(5.0))), (String::new(), String::new()));
    assert_eq!(sub(-4.0, Some(5.0)), "hello", "negative is zero");
    assert_eq!(sub(5.0, Some(-4.0)), "hello");
    assert_eq!(sub(-5.0, Some(-4.0)), "");
    assert_eq!(sub(1.9, Some(99.0)), "ello world", "fractions truncate, ends clamp");
    // UTF-16 code units: an emoji is two.
    assert_eq!(run(json!({"operation": "substring", "start": 0, "end": 3}), "a😀b"), "a😀");
}

// split.spec.ts

#[test]
fn split_follows_upstream() {
    assert_eq!(
        problem(json!({"operation": "split", "pattern": ""})),
        Problem::Field { operation: "split", field: "pattern", expected: "a non-empty string" }
    );
    assert_eq!(run(json!({"operation": "split", "pattern": ","}), "hello,world"), "hello");
    assert_eq!(run(json!({"operation": "split", "pattern": ",", "indexToUse": 1}), "hello,world"), "world");
    assert_eq!(run(json!({"operation": "split", "pattern": ",", "indexToUse": 2}), "hello,world"), "", "out of range: undefined");
    assert_eq!(run(json!({"operation": "split", "pattern": ","}), "helloworld"), "helloworld");
    assert_eq!(run(json!({"operation": "split", "pattern": ","}), ""), "");
    assert_eq!(run_on(json!({"operation": "split", "pattern": ","}), None), "", "undefined input");
    assert_eq!(run(json!({"operation": "split", "pattern": "@"}), "ann@corp.example"), "ann");
}

// fallback.spec.ts

#[test]
fn fallback_follows_upstream() {
    let with_default = |output: Value, input: Option<&str>| {
        let mut e = match input {
            Some(text) => entry(&[("in", &[text]), ("defaultFallback", &["defaultFallbackValue"])]),
            None => entry(&[("defaultFallback", &["defaultFallbackValue"])]),
        };
        apply(&mut e, &parse(json!({"out": {"input": "in", "output": output}})));
        derived(&e, "out").unwrap_or_default().concat()
    };
    let op = json!({"operation": "fallback", "fallback": "defaultFallback"});
    assert_eq!(with_default(op.clone(), Some("validInput")), "validInput");
    let min5 = json!({"operation": "fallback", "fallback": "defaultFallback", "minLength": 5});
    assert_eq!(with_default(min5, Some("validInput")), "validInput");
    assert_eq!(with_default(op.clone(), Some("")), "defaultFallbackValue", "invalid input");
    let min10 = json!({"operation": "fallback", "fallback": "defaultFallback", "minLength": 10});
    assert_eq!(with_default(min10, Some("short")), "defaultFallbackValue", "too short");
    assert_eq!(with_default(op, None), "defaultFallbackValue", "undefined input");
    let min0 = json!({"operation": "fallback", "fallback": "defaultFallback", "minLength": 0});
    assert_eq!(with_default(min0, Some("")), "defaultFallbackValue", "empty with minLength 0");
    // A template, and no fallback at all.
    let template = json!({"operation": "fallback", "fallback": "#{defaultFallback}!", "minLength": 3});
    assert_eq!(with_default(template, Some("ab")), "defaultFallbackValue!");
    assert_eq!(with_default(json!({"operation": "fallback"}), Some("")), "");
}

// getLdapDynamicValue.spec.ts, as a variable's input

#[test]
fn inputs_are_upstreams_dynamic_values() {
    let user = entry(&[("displayName", &["John Doe"]), ("email", &["john.doe@example.com"]), ("uid", &["johndoe"]), ("emptyField", &[""])]);
    let input = |setting: &str| {
        let mut e = user.clone();
        apply(&mut e, &parse(json!({"out": {"input": setting}})));
        derived(&e, "out").unwrap_or_default().concat()
    };
    assert_eq!(input("displayName"), "John Doe");
    assert_eq!(input("Hello, #{displayName}!"), "Hello, John Doe!");
    assert_eq!(input("Hello, #{nonExistentField}!"), "Hello, !");
    assert_eq!(input("nonExistentField,email,uid"), "john.doe@example.com");
    assert_eq!(input("nonExistentField,anotherNonExistentField"), "");
    assert_eq!(input("  email   "), "john.doe@example.com");
    assert_eq!(input("User: #{displayName}, Email: #{email}, UID: #{uid}"), "User: John Doe, Email: john.doe@example.com, UID: johndoe");
    assert_eq!(input("emptyField"), "");
    assert_eq!(input("#{emptyField}"), "");
}

// processLdapVariables.ts

#[test]
fn variables_run_in_javascripts_property_order_and_read_earlier_ones() {
    let vars = parse(json!({
        "local": {"input": "mail", "output": {"operation": "split", "pattern": "@"}},
        "10": {"input": "#{1}-ten"},
        "1": {"input": "#{local}-one"},
        "handle": {"input": "#{local}", "output": {"operation": "replace", "pattern": ".", "replacement": "_", "all": true}},
    }));
    let mut e = entry(&[("mail", &["ann.lee@corp.example"])]);
    apply(&mut e, &vars);
    // Integer-like names first, ascending: "1" and "10" run before `local` is set.
    assert_eq!(derived(&e, "1"), Some(vec!["-one".to_owned()]));
    assert_eq!(derived(&e, "10"), Some(vec!["-one-ten".to_owned()]));
    assert_eq!(derived(&e, "local"), Some(vec!["ann.lee".to_owned()]));
    assert_eq!(derived(&e, "handle"), Some(vec!["ann_lee".to_owned()]));
    // What "1" reads is the directory's `local`; `10` and `handle` read variables.
    assert_eq!(vars.directory_attributes(), vec!["local", "mail"]);
    assert!(vars.defines("LOCAL") && !vars.defines("mail"));
}

#[test]
fn a_variable_replaces_an_attribute_of_its_name_and_reads_it_first() {
    let vars = parse(
        json!({"mail": {"input": "mail", "output": {"operation": "replace", "pattern": "@old.example", "replacement": "@new.example"}}}),
    );
    let mut e = entry(&[("Mail", &["a@old.example"]), ("cn", &["A"])]);
    apply(&mut e, &vars);
    assert_eq!(derived(&e, "mail"), Some(vec!["a@new.example".to_owned()]));
    assert_eq!(e.attributes().filter(|(n, _)| n.eq_ignore_ascii_case("mail")).count(), 1);
    assert_eq!(vars.directory_attributes(), vec!["mail"], "its own input is the directory's");
}

#[test]
fn variables_without_input_are_skipped_and_without_output_copied() {
    let vars = parse(json!({
        "none": {"output": {"operation": "nonsense"}},
        "empty": {"input": "", "output": {"operation": "nonsense"}},
        "text": "not an object",
        "copy": {"input": "ou"},
        "nothing": {"input": "missing"},
    }));
    let mut e = entry(&[("ou", &["Sales", "EMEA"])]);
    apply(&mut e, &vars);
    assert_eq!(derived(&e, "copy"), Some(vec!["Sales".to_owned(), "EMEA".to_owned()]), "a list is passed on as it is");
    assert_eq!(derived(&e, "nothing"), Some(vec![String::new()]), "undefined || '': an empty value");
    assert_eq!(e.texts("nothing"), Vec::<String>::new(), "which the mapping reads as no value");
    assert_eq!(derived(&e, "none"), None);
    assert!(Variables::parse("{}").expect("empty").is_empty());
}

#[test]
fn string_operations_on_a_multi_valued_attribute_take_its_first_value() {
    // Upstream throws (a list has no `replace`); the username rule applies.
    let vars = parse(json!({
        "first": {"input": "ou", "output": {"operation": "replace", "pattern": "S", "replacement": "s"}},
        "both": {"input": "ou", "output": {"operation": "fallback", "fallback": "cn", "minLength": 2}},
        "short": {"input": "ou", "output": {"operation": "fallback", "fallback": "cn", "minLength": 3}},
    }));
    let mut e = entry(&[("ou", &["Sales", "EMEA"]), ("cn", &["Ann"])]);
    apply(&mut e, &vars);
    assert_eq!(derived(&e, "first"), Some(vec!["sales".to_owned()]));
    assert_eq!(derived(&e, "both"), Some(vec!["Sales".to_owned(), "EMEA".to_owned()]), "a list's length is its number of values");
    assert_eq!(derived(&e, "short"), Some(vec!["Ann".to_owned()]));
}

#[test]
fn maps_upstream_would_fail_on_are_refused_with_the_variable_named() {
    let err = |map: &str| Variables::parse(map).expect_err(map).to_string();
    assert_eq!(err("{not json"), "the value is not a JSON object");
    assert_eq!(err("[]"), "the value is not a JSON object");
    assert_eq!(
        err(r#"{"x": {"input": "cn", "output": {"operation": "Replace"}}}"#),
        "variable \"x\": unknown operation \"Replace\": expected replace, match, substring, split or fallback"
    );
    assert_eq!(
        err(r#"{"x": {"input": "cn", "output": {}}}"#),
        "variable \"x\": unknown operation (none): expected replace, match, substring, split or fallback"
    );
    assert_eq!(
        err(r#"{"x": {"input": 5}}"#),
        "variable \"x\": \"input\" must be a string: attributes (the first with a value) or a #{attr} template"
    );
    assert_eq!(err(r#"{"DN": {"input": "cn"}}"#), "variable \"DN\": this name is reserved");
    assert_eq!(err(r#"{"_raw": {"input": "cn"}}"#), "variable \"_raw\": this name is reserved");
    let lookbehind =
        r#"{"x": {"input": "mail", "output": {"operation": "replace", "pattern": "(?<=@).*", "regex": true, "replacement": ""}}}"#;
    assert_eq!(err(lookbehind), "variable \"x\": replace: lookahead and lookbehind cannot be used (the regex crate does not support them)");
    let backref = r#"{"x": {"input": "cn", "output": {"operation": "match", "pattern": "(a)\\1", "valueIfTrue": "y"}}}"#;
    assert!(err(backref).starts_with("variable \"x\": match: backreferences"), "{}", err(backref));
    let flags =
        r#"{"x": {"input": "cn", "output": {"operation": "replace", "pattern": "a", "regex": true, "flags": "q", "replacement": ""}}}"#;
    assert!(err(flags).contains("invalid flags \"q\""), "{}", err(flags));
}

#[test]
fn debug_names_every_argument_for_the_settings_digest() {
    let vars = parse(
        json!({"u": {"input": "mail", "output": {"operation": "replace", "pattern": "@.*", "regex": true, "all": true, "replacement": ""}}}),
    );
    let debug = format!("{vars:?}");
    assert!(debug.contains("/@.*/g") && debug.contains("\"u\"") && debug.contains("mail"), "{debug}");
}
