//! `explain`: what a suspect means, what points to it and how to fix it — from the embedded
//! knowledge base, so it works offline (the situation in which people most need it).

use crate::cli::ExplainFormat;
use crate::error::{AppError, exit};
use crate::knowledge::{Evidence, Knowledge, RoleFilter, SuspectDef, When};
use schemars::JsonSchema;
use serde::Serialize;
use std::fmt::Write;

fn condition(e: &Evidence) -> String {
    let mut parts = Vec::new();
    match e.role {
        RoleFilter::Any => {}
        RoleFilter::Service => parts.push("on a BMW endpoint"),
        RoleFilter::Baseline => parts.push("on the neutral baseline"),
        RoleFilter::Info => parts.push("on an informational endpoint"),
    }
    match e.when {
        None => {}
        Some(When::BaselineOk) => parts.push("while the neutral baseline works"),
        Some(When::BaselineFailed) => parts.push("while the neutral baseline fails too"),
        Some(When::BaselineNotOk) => parts.push("while no neutral baseline is reached"),
        Some(When::ClockSkewed) => parts.push("while the device clock is off"),
        Some(When::ClockOk) => parts.push("while the device clock is right"),
        Some(When::NetworkFailed) => parts.push("while some endpoint check fails"),
        Some(When::LinkSteady) => {
            parts.push("while no loss or high latency is measured on the hosts that answer")
        }
        Some(When::LinkWeak) => {
            parts.push("while loss or high latency is measured on the hosts that answer")
        }
    }
    let mut text = parts.join(" ");
    if let Some(r) = &e.reason {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("(reason: {r})"));
    }
    if let Some(r) = &e.unless_reason {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("(unless reason: {r})"));
    }
    text
}

fn human(s: &SuspectDef) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} — {}", s.id, s.title);
    let difficulty = s
        .difficulty
        .map_or_else(|| "not rated".to_owned(), |d| format!("{d}/5"));
    let _ = writeln!(out, "\nWhat you see: {}", s.symptom);
    let _ = writeln!(out, "Difficulty:   {difficulty}");
    let _ = writeln!(out, "\nSteps:");
    for (i, step) in s.steps.iter().enumerate() {
        let _ = writeln!(out, "  {}. {}", i + 1, step.text());
    }
    if s.evidence.is_empty() {
        let _ = writeln!(
            out,
            "\nA network check cannot see this cause; it is listed when every network check passes."
        );
    } else {
        let _ = writeln!(out, "\nWhat points to it (weight):");
        for e in &s.evidence {
            let cond = condition(e);
            let _ = writeln!(out, "  {:<22} {:>2}  {}", e.code, e.weight, cond);
        }
    }
    out
}

/// `explain <id> --format json` (and each element of `explain --format json`): typed, so the
/// published JSON Schema describes it (`$defs/ExplainEntry`).
#[derive(Serialize, JsonSchema)]
pub struct ExplainEntry {
    pub id: String,
    pub title: String,
    pub symptom: String,
    pub difficulty: Option<u8>,
    /// Whether a network check can find evidence for it.
    pub testable: bool,
    pub steps: Vec<String>,
    pub evidence: Vec<ExplainEvidence>,
}

#[derive(Serialize, JsonSchema)]
pub struct ExplainEvidence {
    pub code: String,
    pub weight: u32,
    pub condition: String,
}

fn as_json(s: &SuspectDef) -> serde_json::Value {
    let entry = ExplainEntry {
        id: s.id.clone(),
        title: s.title.clone(),
        symptom: s.symptom.clone(),
        difficulty: s.difficulty,
        testable: s.kind == crate::knowledge::Kind::Network || !s.evidence.is_empty(),
        steps: s.step_texts(),
        evidence: s
            .evidence
            .iter()
            .map(|e| ExplainEvidence {
                code: e.code.clone(),
                weight: e.weight,
                condition: condition(e),
            })
            .collect(),
    };
    serde_json::to_value(entry).unwrap_or(serde_json::Value::Null)
}

fn listing(kb: &Knowledge) -> String {
    let mut out = String::from("Suspects (bmw-netcheck explain <id>):\n");
    for s in &kb.suspect {
        let _ = writeln!(out, "  {:<26} {}", s.id, s.title);
    }
    out
}

/// Runs `explain`. Unknown ids are a usage error (exit 3) that lists the known ones.
pub fn run(id: Option<&str>, format: ExplainFormat) -> Result<i32, AppError> {
    let kb = Knowledge::builtin().map_err(AppError::Internal)?;
    let text = match (id, format) {
        (None, ExplainFormat::Human) => listing(&kb),
        (None, ExplainFormat::Json) => {
            let all: Vec<_> = kb.suspect.iter().map(as_json).collect();
            format!(
                "{}\n",
                serde_json::to_string_pretty(&all).unwrap_or_default()
            )
        }
        (Some(id), format) => {
            let s = kb.get(id).ok_or_else(|| {
                let ids = kb.suspect.iter().map(|s| s.id.as_str());
                let hint = crate::cli::closest(id, ids.clone())
                    .map(|c| format!(" (did you mean '{c}'?)"))
                    .unwrap_or_default();
                AppError::usage(format!(
                    "unknown suspect '{id}'{hint}; known: {}",
                    ids.collect::<Vec<_>>().join(", ")
                ))
            })?;
            match format {
                ExplainFormat::Human => human(s),
                ExplainFormat::Json => {
                    format!(
                        "{}\n",
                        serde_json::to_string_pretty(&as_json(s)).unwrap_or_default()
                    )
                }
            }
        }
    };
    crate::files::write_stdout(text.as_bytes());
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_suspect_explains_itself() {
        let kb = Knowledge::builtin().expect("valid");
        for s in &kb.suspect {
            let text = human(s);
            assert!(text.starts_with(&s.id));
            assert!(text.contains(s.steps[0].text()));
            let j = as_json(s);
            assert_eq!(j["id"], s.id.as_str());
        }
        let dns = kb.get("dns_filter").expect("dns_filter");
        assert!(human(dns).contains("while the neutral baseline works"));
    }
}
