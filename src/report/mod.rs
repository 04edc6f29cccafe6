//! Reporters: pure functions from a [`Report`] to bytes, one file per format.
//!
//! They read the model only; they never look at probes or the network, so every format can be
//! tested (and fuzzed) from a report value alone.

use crate::model::Report;

pub mod human;
pub mod json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub fn render(report: &Report, format: Format) -> Vec<u8> {
    match format {
        Format::Human => human::render(report).into_bytes(),
        Format::Json => json::render(report),
    }
}
