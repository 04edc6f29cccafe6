//! Reporters: pure functions from a [`Report`] to bytes, one file per format.
//!
//! They read the model only; they never look at probes or the network, so every format can be
//! tested (and fuzzed) from a report value alone. Redaction is not their job either: the caller
//! redacts the report (`crate::redact`) and tells Markdown whether it did.

use crate::model::Report;

pub mod human;
pub mod json;
pub mod markdown;
pub mod nagios;
pub mod prometheus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    /// `personal_redacted`: host name, user names and private addresses were removed.
    Markdown {
        personal_redacted: bool,
    },
    Prometheus,
    Nagios,
}

/// Renders `report` in `format`. Every format renders the report after [`crate::sanitize::report`]
/// has made each of its strings plain, visible text, whatever produced it (a probe, a saved file).
pub fn render(report: &Report, format: Format) -> Vec<u8> {
    let mut clean = report.clone();
    crate::sanitize::report(&mut clean);
    let report = &clean;
    match format {
        Format::Human => human::render(report).into_bytes(),
        Format::Json => json::render(report),
        Format::Markdown { personal_redacted } => {
            markdown::render(report, personal_redacted).into_bytes()
        }
        Format::Prometheus => prometheus::render(report).into_bytes(),
        Format::Nagios => nagios::render(report).into_bytes(),
    }
}
