//! The summary of the last runs (a pure function of the reports, testable without files) and
//! its rendering for a person.

use crate::model::{Check, Probe, Report, Status};
use crate::term::{paint, sparkline};
use colored::Colorize;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// `history --format json`: the file read and the summary of its runs.
#[derive(Serialize, JsonSchema)]
pub struct JsonHistory<'a> {
    pub file: String,
    #[serde(flatten)]
    pub summary: &'a Summary,
}

/// What `history` shows, computed from the runs alone (so it is testable without files).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Summary {
    /// Runs in the log (readable ones).
    pub runs_total: usize,
    /// Lines that were not reports.
    pub lines_skipped: usize,
    /// The window: the last N runs, oldest first.
    pub runs: Vec<RunRow>,
    pub endpoints: Vec<EndpointTrend>,
    /// Checks that failed in some of the window's runs, worst first.
    pub failing_checks: Vec<CheckTrend>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RunRow {
    pub report_id: String,
    pub started_at: String,
    pub region: String,
    pub status: Status,
    pub duration_ms: f64,
    /// `target probe code` of each failed check.
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
    /// The most likely cause of a run with problems; `None` for a run that passed.
    pub top_suspect: Option<TopSuspect>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TopSuspect {
    pub id: String,
    pub confidence: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EndpointTrend {
    /// The endpoint's name; with its region or profile in brackets when the window mixes them.
    pub name: String,
    /// The region or profile name of the runs that checked it.
    pub region: String,
    /// Median latency of each run that measured it, oldest first.
    pub latency_median_ms: Vec<Point>,
    /// Runs in which a check of this endpoint failed.
    pub failed_runs: usize,
    /// Runs that checked this endpoint at all.
    pub runs: usize,
    pub first_failure: Option<String>,
    pub last_failure: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Point {
    pub started_at: String,
    pub value: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CheckTrend {
    pub probe: Probe,
    /// `None` for device probes.
    pub target: Option<String>,
    pub failed: usize,
    /// Runs in which the check ran (skips do not count).
    pub of: usize,
    /// `down` (failed every time), `failing` (since `since`), `recovered`, or `flapping`.
    pub pattern: &'static str,
    pub since: Option<String>,
    /// One mark per run of the window: ✓ ! ✗ -, or · when the check was not in that run.
    pub marks: String,
}

impl CheckTrend {
    pub fn sentence(&self) -> String {
        let on = self
            .target
            .as_deref()
            .map(|t| format!(" on {t}"))
            .unwrap_or_default();
        let base = if self.failed == self.of {
            format!(
                "{}{on} failed in all of the last {} runs",
                self.probe, self.of
            )
        } else {
            format!(
                "{}{on} failed in {} of the last {} runs",
                self.probe, self.failed, self.of
            )
        };
        match (self.pattern, &self.since) {
            ("failing", Some(since)) => format!("{base}, failing since {}", short_time(since)),
            ("recovered", _) => format!("{base}, passing again"),
            ("flapping", _) => format!("{base}: flapping"),
            _ => base,
        }
    }
}

fn failing_label(c: &Check) -> String {
    match &c.target {
        Some(t) => format!("{} {}", on_uplink(c, t), c.code),
        None => c.code.clone(),
    }
}

/// `api`, or `api via wlan0` for a check of a per-uplink run: each uplink has its own trend.
fn on_uplink(c: &Check, target: &str) -> String {
    match &c.interface {
        Some(i) => format!("{target} via {i}"),
        None => target.to_owned(),
    }
}

pub fn summarize(all: &[Report], last: usize, lines_skipped: usize) -> Summary {
    let window = &all[all.len().saturating_sub(last.max(1))..];
    Summary {
        runs_total: all.len(),
        lines_skipped,
        runs: run_rows(window),
        endpoints: endpoint_trends(window),
        failing_checks: failing_checks(window),
    }
}

/// A row per run of the window.
fn run_rows(window: &[Report]) -> Vec<RunRow> {
    window
        .iter()
        .map(|r| RunRow {
            report_id: r.report_id.clone(),
            started_at: r.started_at.clone(),
            region: r.region.clone(),
            status: r.status,
            duration_ms: r.duration_ms,
            failures: r
                .checks
                .iter()
                .filter(|c| c.status == Status::Fail)
                .map(failing_label)
                .collect(),
            warnings: r
                .checks
                .iter()
                .filter(|c| c.status == Status::Warn)
                .map(failing_label)
                .collect(),
            // A passing run's suspects are what a network check cannot test: not a finding.
            top_suspect: r
                .suspects
                .first()
                .filter(|_| r.status != Status::Pass)
                .map(|s| TopSuspect {
                    id: s.id.clone(),
                    confidence: s.confidence.as_str().to_owned(),
                }),
        })
        .collect()
}

/// Whether the window holds runs of more than one region or profile: its endpoints are then
/// told apart by it, so two profiles' endpoints of the same name never merge.
fn mixed_regions(window: &[Report]) -> bool {
    window.iter().any(|r| r.region != window[0].region)
}

/// An endpoint as the history shows it: its name, and its region or profile when the window
/// mixes them.
fn shown_name(name: &str, region: &str, mixed: bool) -> String {
    if mixed {
        format!("{name} ({region})")
    } else {
        name.to_owned()
    }
}

/// A trend per endpoint, keyed by region (or profile) and name, in order of first appearance.
fn endpoint_trends(window: &[Report]) -> Vec<EndpointTrend> {
    let mixed = mixed_regions(window);
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in window {
        let from_checks = r.checks.iter().filter_map(|c| c.target.clone());
        for n in r
            .endpoints
            .iter()
            .map(|e| e.name.clone())
            .chain(from_checks)
        {
            let key = (r.region.clone(), n);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys.into_iter()
        .map(|(region, name)| {
            let mut t = EndpointTrend {
                name: shown_name(&name, &region, mixed),
                region: region.clone(),
                latency_median_ms: Vec::new(),
                failed_runs: 0,
                runs: 0,
                first_failure: None,
                last_failure: None,
            };
            for r in window.iter().filter(|r| r.region == region) {
                let mine: Vec<&Check> = r
                    .checks
                    .iter()
                    .filter(|c| c.target.as_deref() == Some(name.as_str()))
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                t.runs += 1;
                if let Some(v) = mine
                    .iter()
                    .filter(|c| c.probe == Probe::Latency)
                    .find_map(|c| c.data_f64("median_ms"))
                {
                    t.latency_median_ms.push(Point {
                        started_at: r.started_at.clone(),
                        value: v,
                    });
                }
                if mine.iter().any(|c| c.status == Status::Fail) {
                    t.failed_runs += 1;
                    t.first_failure.get_or_insert_with(|| r.started_at.clone());
                    t.last_failure = Some(r.started_at.clone());
                }
            }
            t
        })
        .collect()
}

/// The checks that failed in some runs of the window, worst first.
fn failing_checks(window: &[Report]) -> Vec<CheckTrend> {
    // Per (probe, target): one status per run (the worst, if a probe reported several).
    let mixed = mixed_regions(window);
    let mut series: BTreeMap<(Probe, Option<String>), Vec<Option<Status>>> = BTreeMap::new();
    for (i, r) in window.iter().enumerate() {
        for c in &r.checks {
            let target = c
                .target
                .as_deref()
                .map(|t| shown_name(&on_uplink(c, t), &r.region, mixed));
            let s = series
                .entry((c.probe, target))
                .or_insert_with(|| vec![None; window.len()]);
            s[i] = Some(s[i].map_or(c.status, |old| old.max(c.status)));
        }
    }
    let mut failing_checks: Vec<CheckTrend> = series
        .into_iter()
        .filter_map(|((probe, target), statuses)| trend(probe, target, &statuses, window))
        .collect();
    failing_checks.sort_by(|a, b| {
        (b.failed * a.of.max(1))
            .cmp(&(a.failed * b.of.max(1)))
            .then(a.probe.cmp(&b.probe))
            .then(a.target.cmp(&b.target))
    });
    failing_checks
}

fn trend(
    probe: Probe,
    target: Option<String>,
    statuses: &[Option<Status>],
    window: &[Report],
) -> Option<CheckTrend> {
    let ran: Vec<(usize, bool)> = statuses
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Some(Status::Skip) | None => None,
            Some(s) => Some((i, *s == Status::Fail)),
        })
        .collect();
    let failed = ran.iter().filter(|(_, f)| *f).count();
    if failed == 0 {
        return None;
    }
    let changes = ran.windows(2).filter(|w| w[0].1 != w[1].1).count();
    let last_failed = ran.last().is_some_and(|(_, f)| *f);
    let (pattern, since) = if failed == ran.len() {
        ("down", None)
    } else if changes == 1 && last_failed {
        let first_of_block = ran
            .iter()
            .rev()
            .take_while(|(_, f)| *f)
            .last()
            .map(|(i, _)| window[*i].started_at.clone());
        ("failing", first_of_block)
    } else if changes == 1 {
        ("recovered", None)
    } else {
        ("flapping", None)
    };
    let marks = statuses
        .iter()
        .map(|s| s.map_or("·", Status::mark))
        .collect::<String>();
    Some(CheckTrend {
        probe,
        target,
        failed,
        of: ran.len(),
        pattern,
        since,
        marks,
    })
}

/// `2025-01-01T10:00:00.123Z` → `2025-01-01 10:00:00`: the history's times are all UTC.
fn short_time(rfc3339: &str) -> String {
    let t: String = rfc3339.chars().take(19).collect();
    t.replacen('T', " ", 1)
}

fn list(items: &[String], max: usize) -> String {
    if items.is_empty() {
        return "-".into();
    }
    let mut s = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        s.push_str(&format!(" (+{} more)", items.len() - max));
    }
    s
}

fn fmt_ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else {
        format!("{v:.1} ms")
    }
}

pub fn human(s: &Summary, path: &Path) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if s.runs.is_empty() {
        let _ = writeln!(
            out,
            "No runs recorded in {} yet. Every run appends to it unless --no-history is given.",
            path.display()
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{} {}: the last {} of {} run(s), newest last (times in UTC)\n",
        "History".bold(),
        path.display(),
        s.runs.len(),
        s.runs_total
    );
    run_table(&mut out, s);
    let trend: String = s
        .runs
        .iter()
        .map(|r| paint(r.status.mark(), r.status))
        .collect();
    let passed = s.runs.iter().filter(|r| r.status == Status::Pass).count();
    let _ = writeln!(
        out,
        "\n{} {trend}   {passed} of {} passed (oldest → newest)",
        "Trend".bold(),
        s.runs.len()
    );

    endpoint_lines(&mut out, s);

    if !s.failing_checks.is_empty() {
        let _ = writeln!(out, "\n{}", "Checks that failed".bold());
        for c in &s.failing_checks {
            let _ = writeln!(out, "  {}  {}", c.marks, c.sentence());
        }
    }
    if s.lines_skipped > 0 {
        let _ = writeln!(
            out,
            "\n{} line(s) of the log were not reports and were skipped.",
            s.lines_skipped
        );
    }
    out
}

/// The table of runs, a row each.
fn run_table(out: &mut String, s: &Summary) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "  {:<19}  {:<6}  {:<40}  {}",
        "started".dimmed(),
        "result".dimmed(),
        "failed (warned)".dimmed(),
        "top suspect".dimmed()
    );
    for r in &s.runs {
        let problems = if r.failures.is_empty() && !r.warnings.is_empty() {
            format!("({})", list(&r.warnings, 2))
        } else {
            list(&r.failures, 2)
        };
        let top = r
            .top_suspect
            .as_ref()
            .map(|t| format!("{} ({})", t.id, t.confidence))
            .unwrap_or_else(|| "-".into());
        let result = format!("{} {}", r.status.mark(), r.status);
        let _ = writeln!(
            out,
            "  {:<19}  {}  {:<40}  {top}",
            short_time(&r.started_at),
            paint(&format!("{result:<6}"), r.status),
            problems
        );
    }
}

/// A line per endpoint: its latency trend and its failures.
fn endpoint_lines(out: &mut String, s: &Summary) {
    use std::fmt::Write as _;
    if !s.endpoints.is_empty() {
        let _ = writeln!(out, "\n{}", "Endpoints".bold());
        let width = s.endpoints.iter().map(|e| e.name.len()).max().unwrap_or(0);
        for e in &s.endpoints {
            let values: Vec<f64> = e.latency_median_ms.iter().map(|p| p.value).collect();
            let latency = match (values.first(), values.last()) {
                (Some(a), Some(b)) => format!(
                    "latency {} {} → {}",
                    sparkline(&values),
                    fmt_ms(*a),
                    fmt_ms(*b)
                ),
                _ => "no latency samples".dimmed().to_string(),
            };
            let failures = match (&e.first_failure, &e.last_failure) {
                (Some(first), Some(last)) if e.failed_runs > 1 => format!(
                    "failed in {} of {} runs, first {}, last {}",
                    e.failed_runs,
                    e.runs,
                    short_time(first),
                    short_time(last)
                ),
                (Some(first), _) => {
                    format!("failed in 1 of {} runs, at {}", e.runs, short_time(first))
                }
                _ => format!("no failures in {} runs", e.runs),
            };
            let _ = writeln!(out, "  {:<width$}  {latency}   {failures}", e.name);
        }
    }
}
