//! `schema`: the JSON Schema (draft 2020-12) of the JSON the tool writes, generated from the very
//! Rust types that are serialized, so the published schema cannot drift from the output.
//!
//! One document describes them all. Its root is the run report (`run --format json`, each
//! history line, what `show` reads); `$defs` also holds the other documents, by name:
//! `ListReport` (`list --format json`), `ExplainEntry` (`explain ID --format json`),
//! `ExplainList` (`explain --format json`), `JsonHistory` (`history --format json`) and
//! `Measurements` (the keys each probe's checks carry in `data`, from the probes' definitions).
//! A copy is committed as `schema/report.schema.json`; a test fails when it differs from this
//! output.

use crate::error::{AppError, exit};
use crate::explain::ExplainEntry;
use crate::history::JsonHistory;
use crate::list::ListReport;
use crate::model::{Probe, Report, SCHEMA_VERSION};
use crate::probe::definition::Shape;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

/// The schema document, as a JSON value.
pub fn document() -> Value {
    // The schema describes what the tool writes: optional fields are those it may leave out.
    let mut generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    generator.subschema_for::<ListReport>();
    generator.subschema_for::<ExplainEntry>();
    generator.subschema_for::<JsonHistory<'static>>();
    generator.definitions_mut().insert(
        "ExplainList".into(),
        json!({
            "description": "`explain --format json`: every suspect of the knowledge base.",
            "type": "array",
            "items": { "$ref": "#/$defs/ExplainEntry" }
        }),
    );
    generator
        .definitions_mut()
        .insert("Measurements".into(), measurements());
    let schema = generator.into_root_schema_for::<Report>();
    let mut doc = schema.to_value();
    if let Some(obj) = doc.as_object_mut() {
        obj.insert(
            "title".into(),
            Value::String(format!(
                "bmw-netcheck report, schema_version {SCHEMA_VERSION}"
            )),
        );
        obj.insert(
            "description".into(),
            Value::String(
                "A run report (run --format json, a history line, the input of show). $defs also \
                 describes list (ListReport), explain (ExplainEntry, ExplainList) and history \
                 (JsonHistory) output."
                    .into(),
            ),
        );
    }
    doc
}

/// The measurement keys each probe's checks always carry in `data`, read from the probes'
/// definitions: a list is an array (empty when not measured), anything else a number or a
/// string (null when not measured). Documentation: `data` itself stays open to more keys.
fn measurements() -> Value {
    let probes: serde_json::Map<String, Value> = Probe::all()
        .iter()
        .map(|p| {
            let keys: serde_json::Map<String, Value> = p
                .definition()
                .keys
                .iter()
                .map(|k| {
                    let shape = match k.shape {
                        Shape::List => json!({ "type": "array" }),
                        Shape::Scalar => json!({ "type": ["number", "string", "null"] }),
                    };
                    (k.name.to_owned(), shape)
                })
                .collect();
            let doc = json!({ "type": "object", "properties": keys });
            (p.name().to_owned(), doc)
        })
        .collect();
    json!({
        "description": "The keys each probe's checks always carry in `data`, probe by probe (a check's `data` may hold more).",
        "type": "object",
        "properties": probes
    })
}

/// The document as the committed file holds it: pretty-printed, with a final newline.
pub fn text() -> String {
    let mut s = serde_json::to_string_pretty(&document()).unwrap_or_default();
    s.push('\n');
    s
}

/// Runs `schema`.
pub fn run() -> Result<i32, AppError> {
    let text = text();
    if text.trim().is_empty() {
        return Err(AppError::Internal("cannot encode the JSON Schema".into()));
    }
    crate::files::write_stdout(text.as_bytes());
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed schema is the generated one: regenerate with
    /// `cargo run -- schema > schema/report.schema.json` after changing a model type.
    #[test]
    fn committed_schema_is_the_generated_one() {
        let committed = include_str!("../schema/report.schema.json");
        assert!(
            committed == text(),
            "schema/report.schema.json is stale: run `cargo run -- schema > schema/report.schema.json`"
        );
    }

    #[test]
    fn names_draft_2020_12_and_every_document() {
        let doc = document();
        assert_eq!(
            doc["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        for name in [
            "ListReport",
            "ExplainEntry",
            "ExplainList",
            "JsonHistory",
            "Check",
            "Suspect",
            "Uplink",
        ] {
            assert!(doc["$defs"].get(name).is_some(), "$defs/{name} missing");
        }
        assert_eq!(doc["properties"]["schema_version"]["const"], 1);
    }
}
