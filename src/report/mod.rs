//! Reporters: pure functions from a [`Report`] to bytes, one file per format.
//!
//! They read the model only; they never look at probes or the network, so every format can be
//! tested (and fuzzed) from a report value alone. Redaction is not their job either: the caller
//! redacts the report (`crate::redact`) and tells Markdown whether it did.

use crate::model::Report;

pub mod glance;
pub mod human;
pub mod json;
pub mod markdown;
pub mod nagios;
pub mod prometheus;

/// The formats a report is rendered in: one enum for the renderers and for `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Human,
    Json,
    /// For a support ticket: redacted, readable when pasted
    Markdown,
    /// Text exposition for node_exporter's textfile collector
    Prometheus,
    /// Monitoring-plugin output: a status line with performance data (Nagios, Icinga, Sensu)
    Nagios,
}

impl Format {
    /// The value as `--format` spells it.
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// How a report is rendered beyond its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenderOptions {
    /// Markdown: host name, user names and private addresses were removed (the report says
    /// which). The caller redacts; the renderer only tells the reader.
    pub personal_redacted: bool,
}

/// Renders `report` in `format`. Every format renders the report after [`crate::sanitize::report`]
/// has made each of its strings plain, visible text, whatever produced it (a probe, a saved file).
/// The human format is laid out for tools (no wrapping), grouped.
pub fn render(report: &Report, format: Format, options: RenderOptions) -> Vec<u8> {
    render_laid_out(report, format, options, human::Layout::default())
}

/// [`render`], with the human format wrapped to a terminal's width or listing every check.
pub fn render_laid_out(
    report: &Report,
    format: Format,
    options: RenderOptions,
    layout: human::Layout,
) -> Vec<u8> {
    let mut clean = report.clone();
    crate::sanitize::report(&mut clean);
    render_plain(&clean, format, options, layout)
}

/// [`render_laid_out`] of a report that has passed through [`crate::sanitize::report`] already
/// (the caller's own, made plain in place): no copy.
pub fn render_plain(
    report: &Report,
    format: Format,
    options: RenderOptions,
    layout: human::Layout,
) -> Vec<u8> {
    match format {
        Format::Human => human::render(report, layout).into_bytes(),
        Format::Json => json::render(report),
        Format::Markdown => markdown::render(report, options.personal_redacted).into_bytes(),
        Format::Prometheus => prometheus::render(report).into_bytes(),
        Format::Nagios => nagios::render(report).into_bytes(),
    }
}
