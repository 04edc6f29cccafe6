//! Human: a line per check grouped by endpoint, then the verdict and the likely causes.
//!
//! Modelled on `flutter doctor`: a mark you can scan (✓ ! ✗ -), the code for searching, the one
//! line that says what happened, and the time it took. Colour is decided once by the caller
//! (`colored`'s global override), so this stays a pure function of the report.

use crate::model::{Check, Report, Role, Status};
use crate::term::paint;
use colored::Colorize;
use std::fmt::Write;

fn line(out: &mut String, c: &Check) {
    let took = if c.status == Status::Skip || c.duration_ms == 0.0 {
        String::new()
    } else if c.duration_ms >= 1000.0 {
        format!("  {:.2} s", c.duration_ms / 1000.0)
    } else {
        format!("  {:.1} ms", c.duration_ms)
    };
    let summary = if c.status == Status::Skip {
        c.summary.dimmed().to_string()
    } else {
        c.summary.clone()
    };
    let _ = writeln!(
        out,
        "  {} {:<8} {} {}{}",
        paint(c.status.mark(), c.status),
        c.probe.name(),
        paint(&format!("{:<22}", c.code), c.status),
        summary,
        took.dimmed()
    );
}

/// Writes the checks of one group; a run of skips with the same reason becomes one line, so a
/// failed DNS lookup is not followed by four lines saying the same thing.
fn lines(out: &mut String, checks: &[&Check]) {
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
            let _ = writeln!(
                out,
                "  {} {}",
                paint(Status::Skip.mark(), Status::Skip),
                format!("{} skipped: {}", names.join(", "), c.summary).dimmed()
            );
        } else {
            line(out, c);
        }
        i = j;
    }
}

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} · {} · report {} · {}",
        r.tool.name.bold(),
        r.tool.version,
        r.region,
        r.report_id,
        r.started_at
    );
    // A per-uplink run is grouped by uplink first; a plain run is one group.
    let groups: Vec<Option<&crate::model::Uplink>> = if r.uplinks.is_empty() {
        vec![None]
    } else {
        r.uplinks.iter().map(Some).collect()
    };
    for group in &groups {
        let over = group.map(|u| u.name.as_str());
        if let Some(u) = group {
            let _ = writeln!(
                out,
                "\n{} {}  {}",
                "over".bold(),
                u.who().bold(),
                paint(u.status.verdict(), u.status)
            );
        }
        endpoint_groups(&mut out, r, over);
        let link_checks: Vec<&Check> = r
            .checks
            .iter()
            .filter(|c| over.is_some() && c.interface.as_deref() == over && c.target.is_none())
            .collect();
        if !link_checks.is_empty() {
            let _ = writeln!(out, "\n{}", "this link".bold());
            lines(&mut out, &link_checks);
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
        lines(&mut out, &orphans);
    }

    let (fail, warn, pass, skip) = (
        r.count(Status::Fail),
        r.count(Status::Warn),
        r.count(Status::Pass),
        r.count(Status::Skip),
    );
    let verdict = r.status.verdict();
    let _ = writeln!(
        out,
        "\n{} {}: {fail} failed, {warn} warning(s), {pass} passed, {skip} skipped in {:.1} s",
        paint(r.status.mark(), r.status),
        paint(verdict, r.status),
        r.duration_ms / 1000.0
    );

    suspects(&mut out, r);
    out
}

/// The endpoints' checks over one uplink (`None`: a run on the system's routing).
fn endpoint_groups(out: &mut String, r: &Report, over: Option<&str>) {
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
        lines(out, &checks);
    }
}

/// The likely causes, the first three with their evidence and steps.
fn suspects(out: &mut String, r: &Report) {
    if !r.suspects.is_empty() {
        let heading = if r.status == Status::Pass {
            "The network path is fine. What a network check cannot test:"
        } else {
            "Most likely causes:"
        };
        let _ = writeln!(out, "\n{}", heading.bold());
        const SHOWN: usize = 3;
        for (i, s) in r.suspects.iter().take(SHOWN).enumerate() {
            let difficulty = s
                .difficulty
                .map(|d| format!(" · difficulty {d}/5"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "\n {}. {}  [{} confidence{difficulty}]",
                i + 1,
                s.title.bold(),
                s.confidence.as_str()
            );
            let _ = writeln!(out, "    {} {}", "You see:".dimmed(), s.symptom);
            if !s.evidence.is_empty() {
                let _ = writeln!(out, "    {} {}", "Because:".dimmed(), because(&s.evidence));
            }
            for (n, step) in s.steps.iter().enumerate() {
                let _ = writeln!(out, "    {}. {}", n + 1, step);
            }
            let _ = writeln!(
                out,
                "    {}",
                format!("More: bmw-netcheck explain {}", s.id).dimmed()
            );
        }
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
