//! The component's log: one JSON object per line on stderr, which Spin keeps
//! in `.spin/logs/<component>_stderr.txt`.
//!
//! ```json
//! {"level":"info","msg":"sync finished","runId":"x8Yq…","phase":"offboarding","outcome":"success","created":3}
//! ```
//!
//! * `level`: `info`, `warn` or `error`; `msg`: a fixed text, so lines can be
//!   counted and grepped; then the run's id and phase while a sync runs, then
//!   the event's own fields (counts, `dn` and `reason` for an entry problem).
//! * Nothing secret is ever passed here: no password, token, TOTP secret,
//!   backup code or hash (the e2e test `secrets.rs` reads every line).
//!
//! An instance serves one request, so the run's context is per thread.

use std::cell::RefCell;
use std::io::Write as _;

use serde_json::{Map, Value};

/// How bad an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

#[derive(Default)]
struct RunContext {
    run_id: Option<String>,
    phase: Option<&'static str>,
}

thread_local! {
    static RUN: RefCell<RunContext> = RefCell::default();
    /// `ldap.syncPreview`'s dry run: every line says `"dryRun": true`.
    static DRY_RUN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the lines that follow as a dry run's (or stops marking them).
pub fn set_dry_run(on: bool) {
    DRY_RUN.with(|d| d.set(on));
}

/// Every later line carries `runId` (until [`end_run`]).
pub fn start_run(run_id: &str) {
    RUN.with(|r| *r.borrow_mut() = RunContext { run_id: Some(run_id.to_owned()), phase: None });
}

/// Every later line of the run carries `phase`.
pub fn set_phase(phase: &'static str) {
    RUN.with(|r| r.borrow_mut().phase = Some(phase));
}

/// The run is over: no more `runId` or `phase`.
pub fn end_run() {
    RUN.with(|r| *r.borrow_mut() = RunContext::default());
}

/// The line for an event (without its newline).
pub fn line(level: Level, msg: &str, fields: &[(&str, Value)]) -> String {
    let mut object = Map::new();
    object.insert("level".to_owned(), Value::from(level.name()));
    object.insert("msg".to_owned(), Value::from(msg));
    RUN.with(|r| {
        let r = r.borrow();
        if let Some(id) = &r.run_id {
            object.insert("runId".to_owned(), Value::from(id.as_str()));
        }
        if let Some(phase) = r.phase {
            object.insert("phase".to_owned(), Value::from(phase));
        }
    });
    if DRY_RUN.with(std::cell::Cell::get) {
        object.insert("dryRun".to_owned(), Value::Bool(true));
    }
    for (name, value) in fields {
        object.insert((*name).to_owned(), value.clone());
    }
    Value::Object(object).to_string()
}

/// Writes one event. A failing stderr is ignored: logging never fails a request.
pub fn event(level: Level, msg: &str, fields: &[(&str, Value)]) {
    let mut text = line(level, msg, fields);
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// [`event`] at `info`.
pub fn info(msg: &str, fields: &[(&str, Value)]) {
    event(Level::Info, msg, fields);
}

/// [`event`] at `warn`.
pub fn warn(msg: &str, fields: &[(&str, Value)]) {
    event(Level::Warn, msg, fields);
}

/// [`event`] at `error`.
pub fn error(msg: &str, fields: &[(&str, Value)]) {
    event(Level::Error, msg, fields);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_is_one_json_object_with_the_runs_context() {
        end_run();
        assert_eq!(line(Level::Info, "hello", &[("n", json!(1))]), r#"{"level":"info","msg":"hello","n":1}"#);
        start_run("r1");
        set_phase("users");
        let text = line(Level::Warn, "entry skipped", &[("dn", json!("uid=a\n\"b\"")), ("reason", json!("no e-mail"))]);
        assert!(!text.contains('\n'), "{text}");
        let value: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            value,
            json!({"level": "warn", "msg": "entry skipped", "runId": "r1", "phase": "users", "dn": "uid=a\n\"b\"", "reason": "no e-mail"})
        );
        end_run();
        assert_eq!(line(Level::Error, "x", &[]), r#"{"level":"error","msg":"x"}"#);
        set_dry_run(true);
        assert_eq!(line(Level::Info, "x", &[]), r#"{"level":"info","msg":"x","dryRun":true}"#);
        set_dry_run(false);
    }
}
