//! Human: the verdict first, in words, then what failed (each distinct finding once, with the
//! endpoints showing it), then the likely causes; `-v` lists every check instead.
//!
//! Modelled on `flutter doctor`: a failing run fits one screen, with a mark you can scan
//! (✓ ! ✗ -), the code for searching and the one line that says what happened. On a terminal,
//! text wraps to its width with hanging indents; piped, each line stays whole for tools. Colour is decided once by the caller
//! (`colored`'s global override), so this stays a pure function of the report.

use super::glance;
use crate::model::{Check, Report, Role, Status};
use crate::term::paint;
use colored::Colorize;
use std::fmt::Write;

/// The column where a check's summary starts in `-v`: mark, probe and code before it.
const SUMMARY_COLUMN: usize = 38;

fn line(out: &mut String, c: &Check, layout: Layout) {
    // Wrapped, a time stays whole: a no-break space between the number and its unit.
    let space = if layout.width.is_some() {
        '\u{a0}'
    } else {
        ' '
    };
    let took = if c.status == Status::Skip || c.duration_ms == 0.0 {
        String::new()
    } else if c.duration_ms >= 1000.0 {
        format!("  {:.2}{space}s", c.duration_ms / 1000.0)
    } else {
        format!("  {:.1}{space}ms", c.duration_ms)
    };
    let summary = if c.status == Status::Skip {
        c.summary.dimmed().to_string()
    } else {
        c.summary.clone()
    };
    let first = format!(
        "  {} {:<10} {} ",
        paint(c.status.mark(), c.status),
        c.probe.name(),
        paint(&format!("{:<22}", c.code), c.status),
    );
    let text = format!("{summary}{}", took.dimmed());
    para(out, layout, &first, SUMMARY_COLUMN, &text);
}

/// Writes the checks of one group; a run of skips with the same reason becomes one line, so a
/// failed DNS lookup is not followed by four lines saying the same thing.
fn lines(out: &mut String, checks: &[&Check], layout: Layout) {
    let mut i = 0;
    while i < checks.len() {
        let c = checks[i];
        let mut j = i + 1;
        if c.status == Status::Skip {
            while j < checks.len()
                && checks[j].status == Status::Skip
                && checks[j].summary == c.summary
            {
                j += 1;
            }
        }
        if j - i > 1 {
            let names: Vec<&str> = checks[i..j].iter().map(|c| c.probe.name()).collect();
            let first = format!("  {} ", paint(Status::Skip.mark(), Status::Skip));
            let text = format!("{} skipped: {}", names.join(", "), c.summary);
            para(out, layout, &first, 4, &text.dimmed().to_string());
        } else {
            line(out, c, layout);
        }
        i = j;
    }
}

/// How the human report is laid out beyond the report itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layout {
    /// Wrap text to this many columns (a terminal); `None` keeps each line whole for tools.
    pub width: Option<usize>,
    /// Every check, one line each (`-v`), instead of the findings grouped.
    pub verbose: bool,
}

/// Writes `text` after `first`, wrapped to the width with later lines indented by `hang`
/// columns; unwrapped when there is no width.
fn para(out: &mut String, layout: Layout, first: &str, hang: usize, text: &str) {
    match layout.width {
        None => {
            let _ = writeln!(out, "{first}{text}");
        }
        Some(width) => {
            let indent = " ".repeat(hang);
            let options = textwrap::Options::new(width.max(hang + 20))
                .initial_indent(first)
                .subsequent_indent(&indent)
                .word_splitter(textwrap::WordSplitter::NoHyphenation)
                .break_words(true);
            let _ = writeln!(out, "{}", textwrap::fill(text, options));
        }
    }
}

pub fn render(r: &Report, layout: Layout) -> String {
    let mut out = String::new();
    let header = format!(
        "{} {} · {} · report {} · {}",
        r.tool.name.bold(),
        r.tool.version,
        r.region,
        r.report_id,
        when(&r.started_at)
    );
    para(&mut out, layout, "", 2, &header);
    out.push('\n');
    let mark = format!(
        "{} {}  ",
        paint(r.status.mark(), r.status),
        paint(r.status.verdict(), r.status)
    );
    para(&mut out, layout, &mark, 8, &glance::verdict(r));
    let tally = glance::Tally::of(r).line(r.duration_ms / 1000.0);
    para(&mut out, layout, "        ", 8, &tally.dimmed().to_string());
    if layout.verbose {
        every_check(&mut out, r, layout);
    } else if r.uplinks.is_empty() {
        findings(&mut out, r, layout);
    } else {
        per_uplink(&mut out, r, layout);
    }
    suspects(&mut out, r, layout);
    if !layout.verbose && r.status != Status::Pass {
        let _ = writeln!(
            out,
            "\n{}",
            "Every check, one per line: -v (or --format json).".dimmed()
        );
    }
    out
}

/// The start of the run to the minute (`2026-12-01 09:30 UTC`): the header stays one line at
/// 80 columns, and the JSON report keeps the exact time.
fn when(rfc3339: &str) -> String {
    let b = rfc3339.as_bytes();
    let shaped = b.len() >= 17 && b[10] == b'T' && rfc3339.is_char_boundary(16);
    if shaped && rfc3339.ends_with('Z') {
        format!("{} {} UTC", &rfc3339[..10], &rfc3339[11..16])
    } else {
        rfc3339.to_owned()
    }
}

/// A run over several uplinks: the findings of each uplink under its name, then the device's.
fn per_uplink(out: &mut String, r: &Report, layout: Layout) {
    let only = |keep: &dyn Fn(&Check) -> bool| Report {
        checks: r.checks.iter().filter(|c| keep(c)).cloned().collect(),
        uplinks: Vec::new(),
        ..r.clone()
    };
    for u in &r.uplinks {
        uplink_heading(out, u);
        let mut trimmed = String::new();
        findings(
            &mut trimmed,
            &only(&|c| c.interface.as_deref() == Some(&u.name)),
            layout,
        );
        out.push_str(trimmed.trim_start_matches('\n'));
    }
    let device = only(&|c| c.interface.is_none());
    if !device.checks.is_empty() {
        let _ = writeln!(out, "\n{}", "this device".bold());
        let mut trimmed = String::new();
        findings(&mut trimmed, &device, layout);
        out.push_str(trimmed.trim_start_matches('\n'));
    }
}

/// The findings grouped: each distinct problem once with the endpoints that show it, the
/// skipped stages in a line, and what passed in a line.
fn findings(out: &mut String, r: &Report, layout: Layout) {
    let problems = glance::groups(r, |c| matches!(c.status, Status::Fail | Status::Warn));
    out.push('\n');
    for g in &problems {
        let first = format!(
            "  {} {}  ",
            paint(g.status.mark(), g.status),
            paint(&g.code, g.status)
        );
        let text = match g.targets.len() {
            0 => g.summary.clone(),
            1 => format!("{}: {}", g.targets[0], g.summary),
            n => format!("{n} endpoints: {}", g.summary),
        };
        para(out, layout, &first, 6, &text);
        if g.targets.len() > 1 {
            para(out, layout, "      on ", 9, &g.targets.join(", "));
        }
    }
    for (reason, stages, targets) in skipped(r) {
        let who = match targets.len() {
            1 => targets[0].clone(),
            n if n == r.endpoints.len() => format!("all {n} endpoints"),
            n => format!("{n} endpoints ({})", targets.join(", ")),
        };
        let text = format!("{stages} skipped on {who}: {reason}");
        let first = format!("  {} ", paint(Status::Skip.mark(), Status::Skip));
        para(out, layout, &first, 4, &text.dimmed().to_string());
    }
    let mut passed: Vec<String> = Vec::new();
    let healthy = glance::healthy_endpoints(r);
    if !healthy.is_empty() {
        passed.push(format!(
            "{} ({})",
            plural_endpoints(healthy.len()),
            healthy.join(", ")
        ));
    }
    let device: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| c.target.is_none() && c.status == Status::Pass)
        .map(|c| c.probe.name())
        .collect();
    if !device.is_empty() {
        passed.push(format!("this device's {}", device.join(", ")));
    }
    if !passed.is_empty() {
        let first = format!("  {} ", paint(Status::Pass.mark(), Status::Pass));
        para(
            out,
            layout,
            &first,
            4,
            &format!("passed: {}", passed.join("; ")),
        );
    }
}

fn plural_endpoints(n: usize) -> String {
    if n == 1 {
        "1 endpoint".to_owned()
    } else {
        format!("{n} endpoints")
    }
}

/// The skipped stages: one entry per reason and set of stages, with the endpoints it covers.
fn skipped(r: &Report) -> Vec<(String, String, Vec<String>)> {
    let mut rows: Vec<(String, String, Vec<String>)> = Vec::new();
    for ep in &r.endpoints {
        let mine: Vec<&Check> = r
            .checks
            .iter()
            .filter(|c| c.target.as_deref() == Some(ep.name.as_str()))
            .filter(|c| c.status == Status::Skip)
            .collect();
        let Some(first) = mine.first() else { continue };
        let stages: Vec<&str> = mine.iter().map(|c| c.probe.name()).collect();
        let stages = stages.join(", ");
        let reason = if ep.host.is_empty() {
            first.summary.clone()
        } else {
            first.summary.replace(&ep.host, "the name")
        };
        match rows
            .iter_mut()
            .find(|(r, s, _)| *r == reason && *s == stages)
        {
            Some(row) => row.2.push(ep.name.clone()),
            None => rows.push((reason, stages, vec![ep.name.clone()])),
        }
    }
    rows
}

/// Every check, grouped by endpoint (and uplink), one line each: `-v`.
/// The heading of one uplink's part of the report: "over", the uplink and its verdict.
fn uplink_heading(out: &mut String, u: &crate::model::Uplink) {
    let _ = writeln!(
        out,
        "\n{} {}  {}",
        "over".bold(),
        u.who().bold(),
        paint(u.status.verdict(), u.status)
    );
}

fn every_check(out: &mut String, r: &Report, layout: Layout) {
    // A per-uplink run is grouped by uplink first; a plain run is one group.
    let groups: Vec<Option<&crate::model::Uplink>> = if r.uplinks.is_empty() {
        vec![None]
    } else {
        r.uplinks.iter().map(Some).collect()
    };
    for group in &groups {
        let over = group.map(|u| u.name.as_str());
        if let Some(u) = group {
            uplink_heading(out, u);
        }
        endpoint_groups(out, r, over, layout);
        let link_checks: Vec<&Check> = r
            .checks
            .iter()
            .filter(|c| over.is_some() && c.interface.as_deref() == over && c.target.is_none())
            .collect();
        if !link_checks.is_empty() {
            let _ = writeln!(out, "\n{}", "this link".bold());
            lines(out, &link_checks, layout);
        }
    }
    let orphans: Vec<&Check> = r
        .checks
        .iter()
        .filter(|c| match &c.target {
            None => c.interface.is_none() || r.uplinks.is_empty(),
            Some(t) => !r.endpoints.iter().any(|e| &e.name == t),
        })
        .collect();
    if !orphans.is_empty() {
        let _ = writeln!(out, "\n{}", "this device".bold());
        lines(out, &orphans, layout);
    }
}

/// The endpoints' checks over one uplink (`None`: a run on the system's routing).
fn endpoint_groups(out: &mut String, r: &Report, over: Option<&str>, layout: Layout) {
    for ep in &r.endpoints {
        let checks: Vec<&Check> = r
            .checks
            .iter()
            .filter(|c| c.target.as_deref() == Some(ep.name.as_str()))
            .filter(|c| c.interface.as_deref() == over)
            .collect();
        if checks.is_empty() {
            continue;
        }
        let role = match ep.role {
            Role::Baseline => "  (baseline: not BMW)",
            Role::Info => "  (informational)",
            Role::Service => "",
        };
        let _ = writeln!(
            out,
            "\n{}  {}:{}{}",
            ep.name.bold(),
            ep.host,
            ep.port,
            role.dimmed()
        );
        lines(out, &checks, layout);
    }
}

/// The likely causes: the first in full (what you see, the evidence that decided, the steps),
/// the next two in a line each; every cause in full with `-v`. The evidence of a later cause is
/// shown only where it adds to what decided the first.
fn suspects(out: &mut String, r: &Report, layout: Layout) {
    let Some(top) = r.suspects.first() else {
        return;
    };
    let heading = if r.status == Status::Pass {
        "The network path is fine. What a network check cannot test:"
    } else {
        "Most likely cause:"
    };
    let _ = writeln!(out, "\n{}", heading.bold());
    let shown = if layout.verbose { r.suspects.len() } else { 3 };
    for (i, s) in r.suspects.iter().take(shown).enumerate() {
        let difficulty = s
            .difficulty
            .map(|d| format!(" · difficulty {d}/5"))
            .unwrap_or_default();
        let title = format!(
            "{}  [{} confidence{difficulty}]",
            s.title.bold(),
            s.confidence.as_str()
        );
        let full = i == 0 || layout.verbose;
        if i == 1 {
            let other = if layout.verbose {
                "Other causes:"
            } else {
                "Less likely:"
            };
            let _ = writeln!(out, "\n{}", other.bold());
        }
        if !full {
            let more = format!(" (bmw-netcheck explain {})", s.id)
                .dimmed()
                .to_string();
            para(
                out,
                layout,
                &format!(" {}. ", i + 1),
                4,
                &format!("{title}{more}"),
            );
            continue;
        }
        para(out, layout, &format!(" {}. ", i + 1), 4, &title);
        para(
            out,
            layout,
            &format!("    {} ", "You see:".dimmed()),
            6,
            &s.symptom,
        );
        let because = if i == 0 {
            glance::decisive(r).unwrap_or_else(|| because(&s.evidence))
        } else {
            let new: Vec<String> = s
                .evidence
                .iter()
                .filter(|e| !top.evidence.contains(e))
                .cloned()
                .collect();
            because(&new)
        };
        if !because.is_empty() {
            para(
                out,
                layout,
                &format!("    {} ", "Because:".dimmed()),
                6,
                &because,
            );
        }
        for (n, step) in s.steps.iter().enumerate() {
            para(out, layout, &format!("    {}. ", n + 1), 7, step);
        }
        let more = format!("More: bmw-netcheck explain {}", s.id);
        let _ = writeln!(out, "    {}", more.dimmed());
    }
}

/// The evidence of a suspect for a person: the first few findings, then how many more there are
/// (each of them is among the checks above, and all are in the JSON report).
fn because(evidence: &[String]) -> String {
    const EVIDENCE_SHOWN: usize = 3;
    let mut text = evidence
        .iter()
        .take(EVIDENCE_SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("; ");
    match evidence.len().saturating_sub(EVIDENCE_SHOWN) {
        0 => {}
        1 => text.push_str("; and 1 more finding above"),
        more => text.push_str(&format!("; and {more} more findings above")),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::because;

    #[test]
    fn evidence_is_cut_to_three_findings_with_a_count_of_the_rest() {
        let e = |n: usize| (1..=n).map(|i| format!("f{i}")).collect::<Vec<_>>();
        assert_eq!(because(&e(1)), "f1");
        assert_eq!(because(&e(3)), "f1; f2; f3");
        assert_eq!(because(&e(4)), "f1; f2; f3; and 1 more finding above");
        assert_eq!(because(&e(8)), "f1; f2; f3; and 5 more findings above");
    }
}
