//! Nagios / Icinga plugin output: a first line a monitoring system can show as the service's state
//! (`BMW-NETCHECK CRITICAL - …`), performance data after `|`, then the details as long output.
//!
//! The exit code already follows the plugin convention; this format gives the first line, which
//! is all many monitoring UIs display, the verdict and the reason.

use crate::model::{Check, Report, Status};
use crate::probe::definition::Perf;
use std::fmt::Write;

fn state(s: Status) -> &'static str {
    match s {
        Status::Fail => "CRITICAL",
        Status::Warn => "WARNING",
        _ => "OK",
    }
}

/// A performance-data label: quoted when it holds anything but letters, digits, `_` and `-`.
fn label(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c == '\'' || c == '=' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if clean
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        clean
    } else {
        format!("'{clean}'")
    }
}

/// Keeps plugin output parseable: no `|` (it starts performance data) and no line breaks.
fn flat(text: &str) -> String {
    text.replace('|', "/").replace(['\n', '\r'], " ")
}

fn problem(c: &Check) -> String {
    match &c.target {
        Some(t) => format!("{t} {}", c.code),
        None => c.code.clone(),
    }
}

pub fn render(r: &Report) -> String {
    let problems: Vec<&Check> = r
        .checks
        .iter()
        .filter(|c| matches!(c.status, Status::Fail | Status::Warn))
        .collect();
    let mut first = format!("BMW-NETCHECK {} - ", state(r.status));
    if problems.is_empty() {
        let passed = r.count(Status::Pass);
        let _ = write!(first, "all {passed} checks passed ({})", r.region);
    } else {
        let shown: Vec<String> = problems.iter().take(4).map(|c| problem(c)).collect();
        let more = problems.len().saturating_sub(4);
        let _ = write!(
            first,
            "{} failed, {} warning(s): {}{}",
            r.count(Status::Fail),
            r.count(Status::Warn),
            shown.join(", "),
            if more > 0 {
                format!(" (+{more} more)")
            } else {
                String::new()
            }
        );
        if let Some(s) = r.suspects.first() {
            let _ = write!(first, "; likely: {} ({})", s.title, s.confidence.as_str());
        }
    }
    let mut perf = vec![
        format!("duration={:.3}s;;;0", r.duration_ms / 1000.0),
        format!("failed={};;;0", r.count(Status::Fail)),
        format!("warnings={};;;0", r.count(Status::Warn)),
    ];
    for c in &r.checks {
        let Some(target) = &c.target else { continue };
        // What each probe shows is its definition's word: no probe is named here.
        for m in c.probe.definition().metrics {
            let Some(v) = c.data_f64(m.key) else { continue };
            match m.nagios {
                Perf::Millis(name) => {
                    let name = label(&format!("{target}_{name}"));
                    perf.push(format!("{name}={v:.1}ms;;;0"));
                }
                Perf::Percent(name) => {
                    let name = label(&format!("{target}_{name}"));
                    perf.push(format!("{name}={v:.1}%;;;0;100"));
                }
                Perf::None => {}
            }
        }
    }
    let mut out = format!("{} | {}\n", flat(&first), perf.join(" "));
    for c in &problems {
        let _ = writeln!(
            out,
            "[{}] {}: {}",
            state(c.status),
            problem(c),
            flat(&c.summary)
        );
    }
    if let Some(s) = r.suspects.first()
        && let Some(step) = s.steps.first()
    {
        let _ = writeln!(out, "First step: {}", flat(step));
    }
    let _ = writeln!(
        out,
        "Report {} ({} {})",
        r.report_id, r.tool.name, r.tool.version
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Probe, SCHEMA_VERSION, Tool};

    fn report(checks: Vec<Check>) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            report_id: "abc".into(),
            tool: Tool::this(),
            started_at: String::new(),
            duration_ms: 1234.0,
            region: "rest_of_world".into(),
            status: Report::overall(&checks),
            checks,
            suspects: Vec::new(),
            endpoints: Vec::new(),
            device: None,
            redacted: Vec::new(),
            uplinks: Vec::new(),
        }
    }

    #[test]
    fn first_line_carries_state_reason_and_perfdata() {
        let r = report(vec![
            Check::new(
                Probe::Dns,
                Some("api"),
                Status::Fail,
                "dns.sinkholed",
                "a | b",
            ),
            Check::new(Probe::Tcp, Some("my api"), Status::Pass, "tcp.ok", "")
                .with("connect_ms", 21.5),
        ]);
        let out = render(&r);
        let first = out.lines().next().unwrap_or("");
        assert!(
            first
                .starts_with("BMW-NETCHECK CRITICAL - 1 failed, 0 warning(s): api dns.sinkholed |"),
            "{first}"
        );
        assert!(first.contains("duration=1.234s;;;0"));
        assert!(first.contains("'my api_connect'=21.5ms;;;0"), "{first}");
        assert_eq!(first.matches('|').count(), 1);
        assert!(out.contains("[CRITICAL] api dns.sinkholed: a / b"));
    }

    #[test]
    fn ok_when_all_pass() {
        let r = report(vec![Check::new(
            Probe::Dns,
            Some("api"),
            Status::Pass,
            "dns.ok",
            "",
        )]);
        assert!(render(&r).starts_with("BMW-NETCHECK OK - all 1 checks passed (rest_of_world) |"));
    }
}
