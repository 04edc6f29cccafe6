//! Validation of every JSON document the tests get from the binary against the committed JSON
//! Schema (`schema/report.schema.json`): a run report, a history line, `list`, `explain` and
//! `history` output. The runner helper calls [`validate_outcome`] on each outcome, so a field
//! that drifts from the published schema fails whichever test produced it.

use serde_json::Value;
use std::ffi::OsString;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The documents the tool writes, by their `$defs` name (`Report` is the schema's root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doc {
    Report,
    ListReport,
    ExplainEntry,
    ExplainList,
    JsonHistory,
}

/// JSON documents validated so far by this test process.
pub static VALIDATED: AtomicUsize = AtomicUsize::new(0);

/// The committed schema file.
pub fn committed() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/report.schema.json");
    let text = std::fs::read_to_string(path).expect("read schema/report.schema.json");
    serde_json::from_str(&text).expect("schema/report.schema.json is JSON")
}

fn validators() -> &'static [(Doc, jsonschema::Validator)] {
    static V: OnceLock<Vec<(Doc, jsonschema::Validator)>> = OnceLock::new();
    V.get_or_init(|| {
        let root = committed();
        let mut all = vec![(
            Doc::Report,
            jsonschema::draft202012::new(&root).expect("the committed schema compiles"),
        )];
        for (doc, name) in [
            (Doc::ListReport, "ListReport"),
            (Doc::ExplainEntry, "ExplainEntry"),
            (Doc::ExplainList, "ExplainList"),
            (Doc::JsonHistory, "JsonHistory"),
        ] {
            let wrapper = serde_json::json!({
                "$schema": root["$schema"],
                "$defs": root["$defs"],
                "$ref": format!("#/$defs/{name}"),
            });
            let v = jsonschema::draft202012::new(&wrapper)
                .unwrap_or_else(|e| panic!("$defs/{name} compiles: {e}"));
            all.push((doc, v));
        }
        all
    })
}

/// Asserts `value` is a valid `doc`, listing every violation.
pub fn assert_valid(doc: Doc, value: &Value) {
    let (_, v) = validators()
        .iter()
        .find(|(d, _)| *d == doc)
        .expect("a validator for every document");
    let errors: Vec<String> = v
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "output does not match the committed schema ($defs {doc:?}):\n{}\ndocument:\n{value:#}",
        errors.join("\n")
    );
    VALIDATED.fetch_add(1, Ordering::Relaxed);
}

/// Which document a command line writes with `--format json`, if it writes JSON at all.
fn doc_of(args: &[OsString], stdout: &Value) -> Option<Doc> {
    let words: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    let json =
        words.windows(2).any(|w| w == ["--format", "json"]) || words.contains(&"--format=json");
    if !json {
        return None;
    }
    let sub = words.iter().find(|w| {
        matches!(
            **w,
            "run" | "list" | "explain" | "history" | "show" | "watch" | "schema"
        )
    });
    match sub.copied() {
        Some("list") => Some(Doc::ListReport),
        Some("explain") if stdout.is_array() => Some(Doc::ExplainList),
        Some("explain") => Some(Doc::ExplainEntry),
        Some("history") => Some(Doc::JsonHistory),
        Some("schema") => None,
        _ => Some(Doc::Report),
    }
}

/// Validates what a run printed, when it printed JSON: one document, or JSON Lines (`watch`).
pub fn validate_outcome(args: &[OsString], stdout: &str) {
    if stdout.trim().is_empty() {
        return;
    }
    if let Ok(value) = serde_json::from_str::<Value>(stdout) {
        if let Some(doc) = doc_of(args, &value) {
            assert_valid(doc, &value);
        }
        return;
    }
    // JSON Lines: every line that is JSON is a report.
    for line in stdout.lines() {
        if let Ok(value) = serde_json::from_str::<Value>(line)
            && doc_of(args, &value) == Some(Doc::Report)
        {
            assert_valid(Doc::Report, &value);
        }
    }
}
