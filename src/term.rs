//! The terminal: whether to colour, and the marks and colours of a status.
//!
//! Colour is decided once per process ([`decide_color`], which sets `colored`'s global
//! override), so the renderers stay pure functions of the report; the mark and the colour of a
//! status are defined here once for every renderer and command.

use crate::model::Status;
use colored::Colorize;
use std::io::IsTerminal;

/// `--color`: when to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ColorWhen {
    #[default]
    Auto,
    Always,
    Never,
}

/// Decides colour once, from the flag, `NO_COLOR` and whether stdout is a terminal.
pub fn decide_color(when: ColorWhen, to_file: bool) -> bool {
    let on = match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            !to_file
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    };
    colored::control::set_override(on);
    on
}

/// The width to wrap the human report to: `COLUMNS` when set (a way to force it), else the
/// terminal's when stdout is one; `None` (lines kept whole, for tools) when writing to a file or
/// a pipe.
pub fn width(to_file: bool) -> Option<usize> {
    if to_file {
        return None;
    }
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| (20..=1000).contains(n))
    {
        return Some(n);
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    crossterm::terminal::size()
        .ok()
        .map(|(cols, _)| usize::from(cols))
        .filter(|n| *n >= 20)
}

/// `text` in the colour of `status` (when colour is on).
pub fn paint(text: &str, status: Status) -> String {
    match status {
        Status::Pass => text.green().to_string(),
        Status::Warn => text.yellow().to_string(),
        Status::Fail => text.red().bold().to_string(),
        Status::Skip => text.dimmed().to_string(),
    }
}

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A sparkline, scaled between the series' minimum and maximum.
pub fn sparkline(values: &[f64]) -> String {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (Some(lo), Some(hi)) = (
        finite.iter().copied().reduce(f64::min),
        finite.iter().copied().reduce(f64::max),
    ) else {
        return String::new();
    };
    values
        .iter()
        .map(|v| {
            if !v.is_finite() {
                ' '
            } else if (hi - lo).abs() < f64::EPSILON {
                SPARKS[3]
            } else {
                let i = ((v - lo) / (hi - lo) * 7.0).round() as usize;
                SPARKS[i.min(7)]
            }
        })
        .collect()
}
